// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PCI_CHANNEL_IO,
  PCI_ERS_RESULT,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_OP,
  XEN_PCI_SHAREDINFO_OFFSET,
  XEN_PCIE_AER_OP_OFFSET,
  decodePciOp,
  decodePcieAerOp,
} from '../../abi/pciif.js';
import { PciAddress } from '../../pci/address.js';
import { XEN_EOI_FLAG } from '../../platform/types.js';
import {
  FakeEventChannel,
  fakeGrantMapper,
  fakeMapping,
  opActive,
  postOp,
} from '../device/test-fakes.js';
import { createTopology } from '../topology/index.js';
import type { PcibackDevice } from '../device/index.js';
import { PcibackChannel } from './pciback-channel.js';
import { channelFixture } from './channel-test-helpers.js';

const READ = { cmd: XEN_PCI_OP.conf_read, domain: 0, bus: 0, devfn: 0, offset: 0, size: 4 };

function view(fx: ReturnType<typeof channelFixture>): DataView {
  return new DataView(fx.mapping.bytes.buffer, fx.mapping.bytes.byteOffset, 4096);
}

test('PcibackChannel answers a posted op, clears XEN_PCIF_active and notifies', () => {
  const fx = channelFixture();
  postOp(fx.mapping, READ);
  fx.kick();
  assert.equal(opActive(fx.mapping), true);
  fx.runJobs();
  assert.equal(opActive(fx.mapping), false);
  assert.equal(fx.evtchn.notifies, 1);
  const op = decodePciOp(view(fx), XEN_PCI_SHAREDINFO_OFFSET.op);
  assert.deepEqual([op.err, op.value], [0, 0x10c98086]);
  assert.equal(fx.chan.stats().opsByCmd.conf_read, 1);
});

test('PcibackChannel answers dev_not_found for a device of another guest', () => {
  const fx = channelFixture();
  postOp(fx.mapping, { ...READ, devfn: 0x08 });
  fx.kick();
  fx.runJobs();
  assert.equal(decodePciOp(view(fx), XEN_PCI_SHAREDINFO_OFFSET.op).err, -1);
});

test('PcibackChannel takes the event channel from an event that arrives before attach', () => {
  const mapping = fakeMapping();
  const jobs: (() => void)[] = [];
  const chan = new PcibackChannel<PcibackDevice>({
    mapping,
    grantMapper: fakeGrantMapper(),
    topology: createTopology<PcibackDevice>('vpci'),
    frontendDomid: 5,
    schedule: (job) => jobs.push(job),
  });
  const evtchn = new FakeEventChannel();
  chan.handler(evtchn);
  assert.deepEqual(evtchn.eois, [XEN_EOI_FLAG.SPURIOUS]);
  chan.attachEventChannel(evtchn);
  assert.throws(() => {
    chan.attachEventChannel(new FakeEventChannel());
  }, /already attached/);
});

test('disconnect() answers a claimed op, unbinds, unmaps, and later events do no work', () => {
  const fx = channelFixture();
  postOp(fx.mapping, READ);
  fx.kick();
  fx.chan.disconnect();
  assert.equal(opActive(fx.mapping), false);
  assert.equal(fx.chan.stats().ops, 1);
  assert.equal(fx.evtchn.bound, false);
  assert.deepEqual(fx.unmaps, [fx.mapping.handle]);
  assert.equal(fx.chan.connected, false);
  // The stale job does nothing; disconnect is idempotent.
  fx.runJobs();
  fx.chan.disconnect();
  assert.equal(fx.chan.stats().ops, 1);
  assert.deepEqual(fx.unmaps.length, 1);
  postOp(fx.mapping, READ);
  const other = new FakeEventChannel();
  fx.chan.handler(other);
  assert.equal(fx.jobs.length, 0);
  assert.deepEqual(other.eois, [XEN_EOI_FLAG.SPURIOUS]);
});

function aerFixture(timeoutMs = 1000) {
  const timers: { delayMs: number; callback: () => void; cancelled: boolean }[] = [];
  const fx = channelFixture({
    channel: {
      aerTimeoutMs: timeoutMs,
      setTimer: (delayMs, callback) => {
        const t = { delayMs, callback, cancelled: false };
        timers.push(t);
        return () => {
          t.cancelled = true;
        };
      },
    },
  });
  return { fx, timers };
}

test('aerRequest() posts aer_op with the guest address, waits for the answer and returns it', async () => {
  const { fx, timers } = aerFixture();
  fx.evtchn.onNotify = () => {
    // The frontend answers: result, clear XEN_PCIB_active, notify (the backend's event).
    queueMicrotask(() => {
      const v = view(fx);
      const aer = decodePcieAerOp(v, XEN_PCI_SHAREDINFO_OFFSET.aer_op);
      assert.deepEqual(aer, { cmd: 6, err: PCI_CHANNEL_IO.frozen, domain: 0, bus: 0, devfn: 0 });
      v.setInt32(
        XEN_PCI_SHAREDINFO_OFFSET.aer_op + XEN_PCIE_AER_OP_OFFSET.err,
        PCI_ERS_RESULT.NEED_RESET,
        true,
      );
      Atomics.and(fx.mapping.words, 0, ~XEN_PCI_FLAG_MASK.PCIB_active);
      fx.kick();
    });
  };
  const result = await fx.chan.aerRequest(fx.dev, {
    cmd: XEN_PCI_OP.aer_detected,
    state: PCI_CHANNEL_IO.frozen,
    defaultResult: PCI_ERS_RESULT.CAN_RECOVER,
  });
  assert.equal(result, PCI_ERS_RESULT.NEED_RESET);
  assert.equal(timers[0]?.cancelled, true);
  // The answering event was EOI'd (not spurious: it woke the waiter).
  assert.deepEqual(fx.evtchn.eois, [0]);
  assert.equal(fx.chan.stats().aerRequests, 1);
});

test('aerRequest() times out to the default result and clears XEN_PCIB_active', async () => {
  const { fx, timers } = aerFixture(300_000);
  const pending = fx.chan.aerRequest(fx.dev, {
    cmd: XEN_PCI_OP.aer_mmio,
    state: PCI_CHANNEL_IO.normal,
    defaultResult: PCI_ERS_RESULT.RECOVERED,
  });
  await Promise.resolve();
  await Promise.resolve();
  const timer = timers[0];
  assert.ok(timer);
  assert.equal(timer.delayMs, 300_000);
  timer.callback();
  assert.equal(await pending, PCI_ERS_RESULT.RECOVERED);
  assert.equal(Atomics.load(fx.mapping.words, 0) & XEN_PCI_FLAG_MASK.PCIB_active, 0);
  assert.equal(
    decodePcieAerOp(view(fx), XEN_PCI_SHAREDINFO_OFFSET.aer_op).err,
    PCI_ERS_RESULT.NONE,
  );
  assert.equal(fx.chan.stats().aerTimeouts, 1);
  // Afterwards an event with nothing to do is spurious, not swallowed.
  fx.kick();
  assert.deepEqual(fx.evtchn.eois, [XEN_EOI_FLAG.SPURIOUS]);
});

test('aerRequest() answers NONE for a device not exported on this connection', async () => {
  const { fx } = aerFixture();
  const result = await fx.chan.aerRequest(
    { address: new PciAddress(0, 9, 0, 0) },
    { cmd: 6, state: 1, defaultResult: 2 },
  );
  assert.equal(result, PCI_ERS_RESULT.NONE);
});

test('disconnect() ends a waiting aerRequest with its default', async () => {
  const { fx } = aerFixture();
  const pending = fx.chan.aerRequest(fx.dev, { cmd: 6, state: 2, defaultResult: 2 });
  await Promise.resolve();
  await Promise.resolve();
  fx.chan.disconnect();
  assert.equal(await pending, 2);
});
