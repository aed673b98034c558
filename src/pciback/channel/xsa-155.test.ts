// SPDX-License-Identifier: MIT
/**
 * XSA-155 (CVE-2015-8550) "xen/pciback: Save xen_pci_op commands before processing it"
 * and its follow-up "Save the number of MSI-X entries to be copied later" (pciback-fixes
 * P2): the op is read once; only err, value and vectors[0..nr) are written back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PCI_COMMAND_MEMORY, PCI_COMMAND_OFFSET } from '../../abi/pci-regs.js';
import {
  SH_INFO_MAX_VEC,
  XEN_PCI_OP,
  XEN_PCI_OP_OFFSET,
  XEN_PCI_SHAREDINFO_OFFSET,
  XEN_PCI_SHAREDINFO_SIZE,
  decodePciOp,
  type XenMsixEntry,
} from '../../abi/pciif.js';
import { FAKE_MSIX_IRQ_BASE, fakePirqOf, postOp } from '../device/test-fakes.js';
import { channelFixture } from './channel-test-helpers.js';

const OP = XEN_PCI_SHAREDINFO_OFFSET.op;

/** A channel whose frontend rewrites the shared op right after the snapshot was taken. */
function racingFixture(mutate: (view: DataView) => void): ReturnType<typeof channelFixture> {
  const page: { view?: DataView } = {};
  const fx = channelFixture({
    wrapTopology: (t) => ({
      get: (d, b, f) => {
        // The device lookup is the first thing after the snapshot (§4.3 step 2).
        if (page.view !== undefined) mutate(page.view);
        return t.get(d, b, f);
      },
      find: (dev) => t.find(dev),
    }),
  });
  page.view = new DataView(fx.mapping.bytes.buffer, fx.mapping.bytes.byteOffset, 4096);
  return fx;
}

function entries(n: number): XenMsixEntry[] {
  return Array.from({ length: n }, (_, i) => ({ entry: i, vector: 0xffff }));
}

function opOnPage(fx: ReturnType<typeof channelFixture>) {
  return decodePciOp(new DataView(fx.mapping.bytes.buffer, fx.mapping.bytes.byteOffset), OP);
}

test('XSA-155: rewriting cmd, size and value after the snapshot changes nothing', () => {
  const fx = racingFixture((view) => {
    view.setUint32(OP + XEN_PCI_OP_OFFSET.cmd, XEN_PCI_OP.enable_msi, true);
    view.setInt32(OP + XEN_PCI_OP_OFFSET.size, 1, true);
    view.setInt32(OP + XEN_PCI_OP_OFFSET.offset, 2, true);
  });
  postOp(fx.mapping, { cmd: XEN_PCI_OP.conf_read, domain: 0, bus: 0, devfn: 0, size: 4 });
  fx.kick();
  fx.runJobs();
  const op = opOnPage(fx);
  assert.equal(op.err, 0);
  assert.equal(op.value, 0x10c98086);
  assert.deepEqual(fx.msi.calls, []);
  // The backend never writes cmd back: the attacker's value is still there.
  assert.equal(op.cmd, XEN_PCI_OP.enable_msi);
  assert.deepEqual(fx.dev.stats().opsByCmd.conf_read, 1);
});

test('XSA-155: enable_msix with nvec 128 then 100000 writes 128 vectors and nothing out of bounds', () => {
  const fx = racingFixture((view) => {
    view.setUint32(OP + XEN_PCI_OP_OFFSET.value, 100000, true);
  });
  fx.host.poke(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY);
  // Something after the shared info that must stay untouched.
  fx.mapping.bytes.fill(0xa5, XEN_PCI_SHAREDINFO_SIZE);
  postOp(fx.mapping, {
    cmd: XEN_PCI_OP.enable_msix,
    domain: 0,
    bus: 0,
    devfn: 0,
    value: SH_INFO_MAX_VEC,
    msixEntries: entries(SH_INFO_MAX_VEC),
  });
  const before = fx.mapping.bytes.slice();
  fx.kick();
  fx.runJobs();
  assert.deepEqual(fx.msi.calls, [
    `enableMsix(${entries(128)
      .map((e) => e.entry)
      .join(',')})`,
  ]);
  const op = opOnPage(fx);
  assert.equal(op.err, 0);
  assert.equal(op.value, 0);
  op.msixEntries.forEach((e, i) => {
    assert.equal(e.vector, fakePirqOf(FAKE_MSIX_IRQ_BASE + i));
    assert.equal(e.entry, i);
  });
  assert.deepEqual(
    fx.mapping.bytes.subarray(XEN_PCI_SHAREDINFO_SIZE),
    before.subarray(XEN_PCI_SHAREDINFO_SIZE),
  );
});

test('XSA-155: only err, value and vectors[0..nr) are written back; cmd and entries untouched', () => {
  const fx = channelFixture();
  fx.host.poke(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY);
  postOp(fx.mapping, {
    cmd: XEN_PCI_OP.enable_msix,
    domain: 0,
    bus: 0,
    devfn: 0,
    offset: 0x1234,
    size: 77,
    value: 3,
    info: 0xdead,
    msixEntries: entries(10),
  });
  const before = fx.mapping.bytes.slice();
  fx.kick();
  fx.runJobs();
  const after = fx.mapping.bytes;
  const allowed = new Set<number>();
  for (let b = 0; b < 4; b++) {
    allowed.add(0 + b); // flags (XEN_PCIF_active cleared)
    allowed.add(OP + XEN_PCI_OP_OFFSET.err + b);
    allowed.add(OP + XEN_PCI_OP_OFFSET.value + b);
  }
  for (let i = 0; i < 3; i++) {
    allowed.add(OP + XEN_PCI_OP_OFFSET.msix_entries + 4 * i);
    allowed.add(OP + XEN_PCI_OP_OFFSET.msix_entries + 4 * i + 1);
  }
  const changed: number[] = [];
  after.forEach((byte, i) => {
    if (byte !== before[i]) changed.push(i);
  });
  assert.deepEqual(
    changed.filter((i) => !allowed.has(i)),
    [],
  );
  const op = opOnPage(fx);
  assert.equal(op.cmd, XEN_PCI_OP.enable_msix);
  assert.equal(op.offset, 0x1234);
  assert.equal(op.size, 77);
  assert.equal(op.info, 0xdead);
  assert.equal(op.msixEntries[3]?.vector, 0xffff);
});

test('XSA-155 follow-up: a successful enable_msix of N entries returns all N vectors', () => {
  const fx = channelFixture();
  fx.host.poke(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY);
  const N = 5;
  postOp(fx.mapping, {
    cmd: XEN_PCI_OP.enable_msix,
    domain: 0,
    bus: 0,
    devfn: 0,
    value: N,
    msixEntries: entries(N),
  });
  fx.kick();
  fx.runJobs();
  const op = opOnPage(fx);
  assert.equal(op.err, 0);
  assert.equal(op.value, 0);
  assert.deepEqual(
    op.msixEntries.slice(0, N).map((e) => e.vector),
    Array.from({ length: N }, (_, i) => fakePirqOf(FAKE_MSIX_IRQ_BASE + i)),
  );
});

test('XSA-155: a failed enable_msix writes no vectors', () => {
  const fx = channelFixture();
  postOp(fx.mapping, {
    cmd: XEN_PCI_OP.enable_msix,
    domain: 0,
    bus: 0,
    devfn: 0,
    value: 2,
    msixEntries: entries(2),
  });
  fx.kick();
  fx.runJobs();
  const op = opOnPage(fx);
  assert.equal(op.err, -6);
  assert.deepEqual(
    op.msixEntries.slice(0, 2).map((e) => e.vector),
    [0xffff, 0xffff],
  );
});
