// SPDX-License-Identifier: MIT
/**
 * XSA-332 (CVE-2020-27673, pciback-fixes P1 and P5) end to end: one guest floods its
 * event channel while another enumerates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimMachine } from '../../src/daemon/sim-machine.js';
import { guestNamed, reportOf, simMachine } from '../support/sim-machines.js';

test(
  'XSA-332: a flooding guest gets spurious late EOIs, every second one deferred, while another guest is served',
  { timeout: 120_000 },
  async () => {
    const result = await runSimMachine(
      simMachine([
        { name: 'flood', pci: ['0000:02:00.0'], program: 'attack:xsa332' },
        { name: 'other', pci: ['0000:04:00.*', '0000:01:00.0'], program: 'enumerate' },
      ]),
      { guestTimeoutMs: 60_000 },
    );
    const other = guestNamed(result, 'other');
    assert.equal(other.status, 'ok', other.error);
    assert.equal(reportOf(other).ok, true, reportOf(other).summary);
    assert.equal((reportOf(other).data.devices as unknown[]).length, 3);

    const flood = guestNamed(result, 'flood');
    assert.equal(flood.status, 'ok', flood.error);
    const report = reportOf(flood);
    // Its real ops (5 before, 10 during, 5 after the flood) were all served.
    assert.equal(report.data.eventsSent, 100_000);
    assert.equal(report.data.notifyErrors, 0);
    assert.equal(report.data.probeFailures, 0);
    assert.equal(report.ok, true, report.summary);

    const events = flood.events;
    const channel = flood.channel;
    assert.ok(events !== undefined && channel !== undefined);
    const detail = JSON.stringify({ events, channel });
    assert.equal(events.spuriousThreshold, 1);
    // Notifications sent while the channel is masked coalesce (P1), so `events` counts
    // deliveries, not the 100000 sends; every delivery either started one worker run
    // (ended by a non-spurious EOI) or ended in a spurious EOI. One delivery of slack for
    // the connect-time one.
    assert.ok(
      Math.abs(events.events - (events.spuriousEvents + channel.workerRuns)) <= 1,
      `events = spurious_events + worker runs: ${detail}`,
    );
    assert.equal(channel.spuriousKicks, events.spuriousEvents, detail);
    assert.ok(events.spuriousEvents > 0, detail);
    // Threshold 1: in a run of spurious EOIs every second one is deferred by one jiffy and
    // the deferred EOI resets the count (P1), so at most floor(spurious/2) jiffies; the
    // worker's non-spurious EOIs (the probes) also reset it, which only lowers the count.
    // S spurious and W non-spurious EOIs with S > W + 1 (the +1 for the connect-time
    // delivery) must put two spurious EOIs in a row somewhere, and the second of those is
    // deferred. (How the flood interleaves with the probes is up to the scheduler.)
    if (events.spuriousEvents > channel.workerRuns + 1) {
      assert.ok(events.jiffiesEoiDelayed > 0, `some EOIs were deferred: ${detail}`);
    }
    assert.ok(
      events.jiffiesEoiDelayed <= Math.floor(events.spuriousEvents / 2),
      `jiffies_eoi_delayed <= floor(spurious_events / 2): ${detail}`,
    );
    // The same accounting holds for the guest that only enumerated.
    const calm = other.events;
    assert.ok(calm !== undefined && other.channel !== undefined);
    assert.ok(Math.abs(calm.events - (calm.spuriousEvents + other.channel.workerRuns)) <= 1);
  },
);
