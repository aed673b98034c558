// SPDX-License-Identifier: MIT
// Real guest workers against dom0's event loop. Timeouts are generous (a loaded 2-core
// machine) and nothing asserts on elapsed time; counts are exact where the rules make
// them exact. Each test has a timeout so that a lost wake-up fails instead of hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimHypervisor } from './hypervisor.js';
import {
  measureBackendRoundTrip,
  measureGuestRoundTrip,
  serveRoundTripGuest,
  startRoundTripGuest,
} from './round-trip.js';
import { XEN_EOI_FLAG, createXenbusEventCounters } from '../../types.js';

test(
  'A guest worker notifies, dom0 late-EOI handler answers, and the answer wakes the guest',
  { timeout: 180_000 },
  async () => {
    const r = await measureGuestRoundTrip({ iterations: 300, timeoutMs: 20_000 });
    assert.equal(r.iterations, 300);
    assert.equal(r.timeouts, 0);
    assert.equal(r.wrongAnswers, 0);
  },
);

test(
  'dom0 notifies a guest worker blocked in waitForEvent and gets its answer back',
  { timeout: 180_000 },
  async () => {
    const r = await measureBackendRoundTrip({ iterations: 300, timeoutMs: 20_000 });
    assert.equal(r.iterations, 300);
    assert.equal(r.timeouts, 0);
  },
);

test(
  'The same paths work with a guest that never spins (futex wake-ups only)',
  { timeout: 180_000 },
  async () => {
    const a = await measureGuestRoundTrip({
      iterations: 100,
      spinIterations: 0,
      timeoutMs: 20_000,
    });
    const b = await measureBackendRoundTrip({
      iterations: 100,
      spinIterations: 0,
      timeoutMs: 20_000,
    });
    assert.equal(a.iterations + b.iterations, 200);
    assert.equal(a.timeouts + a.wrongAnswers + b.timeouts, 0);
  },
);

test(
  'A guest whose backend never answers times out instead of hanging',
  { timeout: 180_000 },
  async () => {
    const xen = new SimHypervisor();
    const guest = await startRoundTripGuest(xen, { mode: 'client', iterations: 3, timeoutMs: 150 });
    const server = serveRoundTripGuest(xen, guest, { answer: false });
    try {
      const done = await guest.next('done', 20_000);
      assert.equal(done.timeouts, 3);
      // The hung backend still EOI'd every event (spuriously), so nothing piled up.
      assert.equal(server.counters.events, server.counters.spuriousEvents);
    } finally {
      server.close();
      await guest.stop();
      xen.dispose();
    }
  },
);

test(
  'Destroying a guest wakes its blocked worker, which leaves without being terminated',
  { timeout: 180_000 },
  async () => {
    const xen = new SimHypervisor();
    // The worker blocks in waitForEvent with a 60 s timeout: only the destroy can end it soon.
    const guest = await startRoundTripGuest(xen, { mode: 'echo', timeoutMs: 60_000 });
    try {
      // Destroy only once the worker is blocked in its poll (it registers as a poller).
      const pollers = xen.eventArea.pollersIndex(guest.domid);
      for (let i = 0; i < 10_000 && Atomics.load(xen.eventArea.words, pollers) === 0; i++) {
        await new Promise((r) => setTimeout(r, 1));
      }
      assert.equal(Atomics.load(xen.eventArea.words, pollers), 1);
      const stoppedMessage = guest.next('stopped', 30_000);
      const terminated = await guest.stop();
      assert.equal(terminated, false);
      await stoppedMessage;
    } finally {
      xen.dispose();
    }
  },
);

test(
  'A flooding guest is held off by late EOI, and killing it mid-flood leaves other guests working',
  { timeout: 180_000 },
  async () => {
    const xen = new SimHypervisor();
    const flood = await startRoundTripGuest(xen, { mode: 'flood', timeoutMs: 20_000 });
    const floodCounters = createXenbusEventCounters();
    const bound = xen.eventChannels().bindInterdomain(
      flood.domid,
      flood.guestPort,
      (ch) => {
        ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
      },
      { lateEoi: true, counters: floodCounters },
    );
    assert.ok(bound.ok);
    const floodChannel = bound.channel;
    try {
      // A well-behaved guest is served while the flood goes on.
      const client = await startRoundTripGuest(xen, {
        mode: 'client',
        iterations: 200,
        timeoutMs: 20_000,
      });
      const server = serveRoundTripGuest(xen, client);
      const done = await client.next('done', 60_000);
      server.close();
      await client.stop();
      assert.equal(done.timeouts, 0);
      assert.equal(done.wrongAnswers, 0);

      // Kill the flooder in the middle of its loop, then destroy its domain.
      await flood.worker.terminate();
      xen.destroyDomain(flood.domid);
      assert.equal(floodChannel.connected(), false);
      assert.ok(floodCounters.events > 0);
      // Every flood event was EOI'd as spurious, and with threshold 1 every second EOI was
      // deferred by exactly one jiffy (spec-fixes P1).
      assert.equal(floodCounters.spuriousEvents, floodCounters.events);
      assert.equal(floodCounters.jiffiesEoiDelayed, Math.floor(floodCounters.events / 2));

      // Another guest after the kill is served as before.
      const after = await measureGuestRoundTrip({
        hypervisor: xen,
        iterations: 100,
        timeoutMs: 20_000,
      });
      assert.equal(after.timeouts, 0);
      assert.equal(after.wrongAnswers, 0);
    } finally {
      floodChannel.unbind();
      await flood.worker.terminate();
      xen.dispose();
    }
  },
);
