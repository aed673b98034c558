// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PCI_CHANNEL_IO, PCI_ERS_RESULT, XEN_PCI_OP } from '../../abi/pciif.js';
import { buildCatalogDevice } from '../../devices/catalog/index.js';
import { DOM0 } from '../../platform/types.js';
import { Pcifront } from '../pcifront.js';
import { FakeGuestHypercalls, FakePciBackend } from '../test-backend.js';
import {
  GUEST_AER_DRIVERS,
  GUEST_PROGRAMS,
  createSilentAerDriver,
  guestAerDriver,
  recoveringAerDriver,
  silentAerDriver,
  type GuestAerDriver,
} from './index.js';

/** A pcifront with `driver`'s handler, the NVMe at 00:00.0 and the NIC at 00:01.0. */
function guest(driver: GuestAerDriver | undefined): {
  front: Pcifront;
  backend: FakePciBackend;
  console: string[];
} {
  const hv = new FakeGuestHypercalls();
  const console: string[] = [];
  const front: Pcifront = Pcifront.create(hv, {
    backendDomid: DOM0,
    clock: hv.clock,
    ...(driver === undefined
      ? {}
      : { aerHandler: driver({ log: (line) => console.push(line), front: () => front }) }),
  });
  const backend = new FakePciBackend(hv, front.grantRef);
  for (const f of buildCatalogDevice('nvme')) backend.add(0, 0, f.fn, f.device);
  for (const f of buildCatalogDevice('nic-sriov')) backend.add(0, 0, 8 + f.fn, f.device);
  return { front, backend, console };
}

/** pciback posts one request; the guest's AER worker answers it. */
function ask(
  g: ReturnType<typeof guest>,
  cmd: number,
  state: number = PCI_CHANNEL_IO.normal,
  devfn = 0,
): number {
  g.backend.postAer({ cmd, err: state, domain: 0, bus: 0, devfn });
  assert.equal(g.front.serviceAer(), 1);
  return g.backend.aerAnswer();
}

test('the aer and aer-silent programs have AER drivers; other programs have none', () => {
  assert.deepEqual(Object.keys(GUEST_AER_DRIVERS), ['aer', 'aer-silent']);
  assert.equal(guestAerDriver('aer'), recoveringAerDriver);
  assert.equal(guestAerDriver('aer-silent'), silentAerDriver);
  assert.equal(guestAerDriver('enumerate'), undefined);
});

test('program aer enables every function and reports its handlers registered', async () => {
  const g = guest(recoveringAerDriver);
  const lines: string[] = [];
  const report = await GUEST_PROGRAMS.aer({
    front: g.front,
    hv: new FakeGuestHypercalls(),
    roots: [],
    log: (line) => lines.push(line),
  });
  assert.equal(report.ok, true, report.lines.join('\n'));
  assert.deepEqual(report.data['devices'], ['0000:00:00.0', '0000:00:01.0']);
  assert.match(
    lines[0] ?? '',
    /^0000:00:00\.0: error handlers registered \(recovering; AER capability visible\)$/,
  );
  assert.equal(report.summary, 'aer: error handlers on 2/2 function(s)');
  // pci_enable_device + pci_set_master went through the backend.
  assert.ok(g.backend.seen.some((op) => op.cmd === XEN_PCI_OP.conf_write && op.offset === 4));
});

test('the recovering driver votes like a Linux driver and logs each callback', () => {
  const g = guest(recoveringAerDriver);
  assert.equal(ask(g, XEN_PCI_OP.aer_detected, PCI_CHANNEL_IO.normal), PCI_ERS_RESULT.CAN_RECOVER);
  assert.equal(ask(g, XEN_PCI_OP.aer_detected, PCI_CHANNEL_IO.frozen), PCI_ERS_RESULT.NEED_RESET);
  assert.equal(
    ask(g, XEN_PCI_OP.aer_detected, PCI_CHANNEL_IO.perm_failure),
    PCI_ERS_RESULT.DISCONNECT,
  );
  assert.equal(ask(g, XEN_PCI_OP.aer_mmio), PCI_ERS_RESULT.RECOVERED);
  assert.equal(ask(g, XEN_PCI_OP.aer_slotreset), PCI_ERS_RESULT.RECOVERED);
  // pcifront answers NONE to resume whatever the driver says (spec §9).
  assert.equal(ask(g, XEN_PCI_OP.aer_resume), PCI_ERS_RESULT.NONE);
  assert.deepEqual(g.console, [
    'aer: 0000:00:00.0 error_detected(normal) -> CAN_RECOVER',
    'aer: 0000:00:00.0 error_detected(frozen) -> NEED_RESET',
    'aer: 0000:00:00.0 error_detected(perm_failure) -> DISCONNECT',
    'aer: 0000:00:00.0 mmio_enabled() -> RECOVERED',
    'aer: 0000:00:00.0 slot_reset() -> RECOVERED (device 144d:a808)',
    'aer: 0000:00:00.0 resume()',
  ]);
  // slot_reset read the device's IDs through the backend.
  assert.ok(g.backend.seen.some((op) => op.cmd === XEN_PCI_OP.conf_read && op.offset === 0));
});

test('the recovering driver disconnects at slot_reset when the device does not answer', () => {
  const g = guest(recoveringAerDriver);
  assert.equal(
    ask(g, XEN_PCI_OP.aer_slotreset, PCI_CHANNEL_IO.normal, 0x30),
    PCI_ERS_RESULT.DISCONNECT,
  );
  assert.deepEqual(g.console, ['aer: 0000:00:06.0 slot_reset() -> DISCONNECT (device no answer)']);
});

test('a guest without an AER driver answers NONE (pciback then kills it)', () => {
  const g = guest(undefined);
  assert.equal(ask(g, XEN_PCI_OP.aer_detected, PCI_CHANNEL_IO.frozen), PCI_ERS_RESULT.NONE);
});

test('the silent driver blocks for answerAfterMs before it answers', () => {
  const slept: number[] = [];
  const driver = createSilentAerDriver({ answerAfterMs: 1234, sleep: (ms) => slept.push(ms) });
  const g = guest(driver);
  assert.equal(ask(g, XEN_PCI_OP.aer_detected, PCI_CHANNEL_IO.frozen), PCI_ERS_RESULT.NEED_RESET);
  assert.equal(ask(g, XEN_PCI_OP.aer_mmio), PCI_ERS_RESULT.RECOVERED);
  assert.deepEqual(slept, [1234, 1234]);
  assert.deepEqual(g.console.slice(0, 2), [
    'aer: 0000:00:00.0 error_detected(frozen) received; answering in 1234 ms',
    'aer: 0000:00:00.0 error_detected(frozen) -> NEED_RESET (late)',
  ]);
  assert.throws(() => createSilentAerDriver({ answerAfterMs: -1 }), RangeError);
});

test('the silent driver really blocks the thread by default', () => {
  const g = guest(createSilentAerDriver({ answerAfterMs: 30 }));
  const start = performance.now();
  assert.equal(ask(g, XEN_PCI_OP.aer_mmio), PCI_ERS_RESULT.RECOVERED);
  assert.ok(performance.now() - start >= 25);
});
