// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PCI_MSI_FLAGS_OFFSET } from '../../abi/pci-regs.js';
import { XEN_PCI_ERR, XEN_PCI_OP } from '../../abi/pciif.js';
import { FULL_DEVICE_LAYOUT } from '../../../test/support/memory-host-device.js';
import { FAKE_MSI_IRQ_BASE, fakePirqOf } from '../device/test-fakes.js';
import { doOneOp } from './do-one-op.js';
import { MSI_ERRNO, msiMaxVectors } from './msi-ops.js';
import { opOf, opsFixture } from './op-test-helpers.js';

test('doOneOp() reads config space through the topology and the virtualizer', () => {
  const fx = opsFixture();
  const r = fx.run({ cmd: XEN_PCI_OP.conf_read, offset: 0, size: 4 });
  assert.deepEqual(r, { err: 0, value: 0x10c98086 });
  assert.equal(fx.dev.stats().opsByCmd.conf_read, 1);
});

test('doOneOp() answers dev_not_found for an address not exported to this guest', () => {
  const fx = opsFixture();
  const r = doOneOp(opOf({ cmd: 0, domain: 0, bus: 0, devfn: 8, size: 4, value: 77 }), {
    topology: fx.topology,
    frontendDomid: 5,
  });
  assert.deepEqual(r, { err: XEN_PCI_ERR.dev_not_found, value: 77 });
});

test('doOneOp() rejects misaligned and odd-sized config accesses with invalid_offset', () => {
  const fx = opsFixture();
  assert.deepEqual(fx.run({ cmd: 0, offset: 1, size: 2 }), { err: -2, value: 0 });
  assert.deepEqual(fx.run({ cmd: 0, offset: 0, size: 3 }), { err: -2, value: 0 });
  assert.equal(fx.run({ cmd: 1, offset: 2, size: 4, value: 1 }).err, -2);
});

test('doOneOp() passes the platform error for an offset beyond the config space', () => {
  const fx = opsFixture();
  assert.deepEqual(fx.run({ cmd: 0, offset: 0x1000, size: 4 }), { err: -22, value: 0xffffffff });
});

test('doOneOp() answers not_implemented for AER commands and unknown commands', () => {
  const fx = opsFixture();
  for (const cmd of [6, 7, 8, 9, 11, 0xffffffff]) {
    assert.deepEqual(fx.run({ cmd, value: 9 }), { err: XEN_PCI_ERR.not_implemented, value: 9 });
  }
  assert.equal(fx.dev.stats().opsByCmd.unknown, 2);
});

test('doOneOp() installs the fake INTx handler when a command write enables decoding', () => {
  const fx = opsFixture();
  const r = fx.run({ cmd: 1, offset: 4, size: 2, value: PCI_COMMAND_MEMORY | PCI_COMMAND_IO });
  assert.equal(r.err, 0);
  assert.equal(fx.dev.enableIntx, true);
  assert.equal(fx.dev.isrOn, true);
  assert.equal(fx.dev.ackIntr, true);
  assert.deepEqual(fx.irqLines.requests, [
    { irq: FULL_DEVICE_LAYOUT.irq, name: 'xen-pciback[0000:03:00.0]' },
  ]);
  fx.run({ cmd: 1, offset: 4, size: 2, value: 0 });
  assert.equal(fx.dev.isrOn, false);
  assert.deepEqual(fx.irqLines.frees, [
    { irq: FULL_DEVICE_LAYOUT.irq, name: 'xen-pciback[0000:03:00.0]' },
  ]);
});

test('doOneOp() leaves the handler alone when the op that changed enable_intx failed', () => {
  const fx = opsFixture();
  fx.host.enableResult = -16;
  const r = fx.run({ cmd: 1, offset: 4, size: 2, value: PCI_COMMAND_MEMORY });
  assert.equal(r.err, -16);
  assert.equal(fx.irqLines.requests.length, 0);
});

test('enable_msi returns the pirq of the MSI IRQ and clears ack_intr', () => {
  const fx = opsFixture();
  fx.run({ cmd: 1, offset: 4, size: 2, value: PCI_COMMAND_MEMORY });
  assert.equal(fx.dev.ackIntr, true);
  const r = fx.run({ cmd: XEN_PCI_OP.enable_msi });
  assert.deepEqual(r, { err: 0, value: fakePirqOf(FAKE_MSI_IRQ_BASE) });
  assert.equal(fx.dev.ackIntr, false);
  assert.deepEqual(fx.msi.calls, ['enableMsi(1)']);
});

test('disable_msi turns MSI off, sets ack_intr and returns the legacy pirq', () => {
  const fx = opsFixture();
  fx.run({ cmd: XEN_PCI_OP.enable_msi });
  const r = fx.run({ cmd: XEN_PCI_OP.disable_msi });
  assert.deepEqual(r, { err: 0, value: fakePirqOf(FULL_DEVICE_LAYOUT.irq) });
  assert.equal(fx.dev.ackIntr, true);
  assert.equal(fx.msi.msiEnabled(), false);
});

test('enable_msix returns one 16-bit pirq per entry and value 0', () => {
  const fx = opsFixture();
  fx.run({ cmd: 1, offset: 4, size: 2, value: PCI_COMMAND_MEMORY });
  fx.msi.msixIrqs = [0x10005, 0, 301];
  const r = fx.run({
    cmd: XEN_PCI_OP.enable_msix,
    value: 3,
    msixEntries: [
      { entry: 4, vector: 0xffff },
      { entry: 5, vector: 0xfffe },
      { entry: 9, vector: 0xffff },
    ],
  });
  assert.equal(r.err, 0);
  assert.equal(r.value, 0);
  // Truncated to 16 bits; an entry with IRQ 0 keeps the request's vector.
  assert.deepEqual(r.msixVectors, [fakePirqOf(0x10005) & 0xffff, 0xfffe, fakePirqOf(301)]);
  assert.deepEqual(fx.msi.calls, ['enableMsix(4,5,9)']);
  assert.equal(fx.dev.ackIntr, false);
});

test('enable_msix passes a platform failure through as err and value', () => {
  const fx = opsFixture();
  fx.run({ cmd: 1, offset: 4, size: 2, value: PCI_COMMAND_MEMORY });
  fx.msi.enableMsixResult = { ok: false, errno: -22 };
  fx.dev.setAckIntr(true);
  const r = fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 2 });
  assert.deepEqual(r, { err: -22, value: -22 >>> 0 });
  assert.equal(fx.dev.ackIntr, false);
  assert.equal(fx.logger.at('warn').length, 1);
});

test('disable_msix on a device without MSI-X changes nothing and answers the legacy pirq', () => {
  const fx = opsFixture();
  const r = fx.run({ cmd: XEN_PCI_OP.disable_msix });
  assert.deepEqual(r, { err: 0, value: fakePirqOf(FULL_DEVICE_LAYOUT.irq) });
  assert.deepEqual(fx.msi.calls, []);
});

function withMultipleMessageCapable(log2: number): ReturnType<typeof opsFixture> {
  const fx = opsFixture();
  const at = FULL_DEVICE_LAYOUT.msi + PCI_MSI_FLAGS_OFFSET;
  fx.host.poke(at, 2, (fx.host.peek(at, 2) & ~0x0e) | (log2 << 1));
  return fx;
}

test('enable_multi_msi takes nvec from info and returns the first pirq of the block', () => {
  const fx = withMultipleMessageCapable(3);
  assert.equal(msiMaxVectors(fx.host), 8);
  const r = fx.run({ cmd: XEN_PCI_OP.enable_multi_msi, info: 8, value: 1 });
  assert.deepEqual(r, { err: 0, value: fakePirqOf(FAKE_MSI_IRQ_BASE) });
  assert.deepEqual(fx.msi.calls, ['enableMsi(8)']);
  assert.equal(fx.dev.ackIntr, false);
  assert.equal(fx.dev.stats().opsByCmd.enable_multi_msi, 1);
});

test('enable_multi_msi refuses nvec that is not a power of two or exceeds the capability', () => {
  const fx = withMultipleMessageCapable(2);
  for (const info of [0, 3, 8, 64, 0xffffffff]) {
    assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_multi_msi, info }), {
      err: MSI_ERRNO.EINVAL,
      value: 0,
    });
  }
  assert.deepEqual(fx.msi.calls, []);
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_multi_msi, info: 4 }).err, 0);
});

test('enable_multi_msi applies the XSA-157 state checks and answers op_failed', () => {
  const fx = withMultipleMessageCapable(1);
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_multi_msi, info: 2 }).err, 0);
  assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_multi_msi, info: 2 }), {
    err: XEN_PCI_ERR.op_failed,
    value: 0,
  });
  assert.deepEqual(fx.msi.calls, ['enableMsi(2)']);
  fx.run({ cmd: XEN_PCI_OP.disable_msi });
  fx.msi.enableMsiResult = -28;
  assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_multi_msi, info: 2 }), {
    err: XEN_PCI_ERR.op_failed,
    value: 0,
  });
});

test('doOneOp() turns a throwing platform into op_failed', () => {
  const fx = opsFixture();
  fx.msi.enableMsi = () => {
    throw new Error('boom');
  };
  assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_msi, value: 3 }), { err: -5, value: 3 });
  assert.equal(fx.logger.at('error').length, 1);
});
