// SPDX-License-Identifier: MIT
/**
 * XSA-157 (CVE-2015-8551, CVE-2015-8552), "Linux pciback missing sanity checks", with the
 * corrected tests (a)-(g) of pciback-fixes P3 and the CVE-2013-0231 log bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PCI_COMMAND_MEMORY, PCI_COMMAND_OFFSET } from '../../abi/pci-regs.js';
import { XEN_PCI_ERR, XEN_PCI_OP } from '../../abi/pciif.js';
import { FULL_DEVICE_LAYOUT, fullTestDevice } from '../../../test/support/memory-host-device.js';
import { fakePirqOf } from '../device/test-fakes.js';
import { MSI_ERRNO } from './msi-ops.js';
import { opsFixture } from './op-test-helpers.js';

const enableMem = { cmd: XEN_PCI_OP.conf_write, offset: 4, size: 2, value: PCI_COMMAND_MEMORY };

test('XSA-157 (a): a second enable_msi answers op_failed with value 0 and never reaches the platform', () => {
  const fx = opsFixture();
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_msi }).err, 0);
  assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_msi }), {
    err: XEN_PCI_ERR.op_failed,
    value: 0,
  });
  assert.deepEqual(fx.msi.calls, ['enableMsi(1)']);
  assert.equal(fx.run({ cmd: XEN_PCI_OP.disable_msi }).err, 0);
  assert.deepEqual(fx.msi.calls, ['enableMsi(1)', 'disableMsi']);
});

test('XSA-157 (a): enable_msi while MSI-X is on answers op_failed without a platform call', () => {
  const fx = opsFixture();
  fx.run(enableMem);
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 1 }).err, 0);
  assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_msi }), { err: -5, value: 0 });
  assert.equal(fx.msi.calls.filter((c) => c.startsWith('enableMsi(')).length, 0);
});

test('XSA-157 (b): a second enable_msix answers -EALREADY (-114)', () => {
  const fx = opsFixture();
  fx.run(enableMem);
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 2 }).err, 0);
  assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 2 }), {
    err: MSI_ERRNO.EALREADY,
    value: 2,
  });
  assert.equal(fx.msi.calls.length, 1);
});

test('XSA-157 (c): no fake INTx handler is installed on the MSI IRQ; disable_msi then works', () => {
  const fx = opsFixture();
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_msi }).err, 0);
  assert.equal(fx.run(enableMem).err, 0);
  assert.equal(fx.dev.enableIntx, true);
  // irq_handlers shows "off".
  assert.equal(fx.dev.isrOn, false);
  assert.equal(fx.irqLines.requests.length, 0);
  assert.equal(fx.run({ cmd: XEN_PCI_OP.disable_msi }).err, 0);
});

test('XSA-157 (d): disable_msi/msix on a fresh device answer 0 and the legacy pirq, ack_intr unchanged', () => {
  const fx = opsFixture();
  for (const cmd of [XEN_PCI_OP.disable_msi, XEN_PCI_OP.disable_msix]) {
    assert.deepEqual(fx.run({ cmd }), { err: 0, value: fakePirqOf(FULL_DEVICE_LAYOUT.irq) });
    assert.equal(fx.dev.ackIntr, false);
  }
  assert.deepEqual(fx.msi.calls, []);
});

test('XSA-157 (e): enable_msix with MEMORY clear in the command register answers -ENXIO (-6)', () => {
  const fx = opsFixture();
  assert.equal(fx.host.peek(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_MEMORY, 0);
  assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 1 }), {
    err: MSI_ERRNO.ENXIO,
    value: 1,
  });
  assert.deepEqual(fx.msi.calls, []);
});

test('XSA-157 (e): enable_msix while MSI is on answers -ENXIO', () => {
  const fx = opsFixture();
  fx.run(enableMem);
  fx.run({ cmd: XEN_PCI_OP.enable_msi });
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 1 }).err, MSI_ERRNO.ENXIO);
});

test('XSA-157 (e): a VF is judged by its PF command register (PF MEMORY clear -> -6)', () => {
  const pf = fullTestDevice();
  const fx = opsFixture({ physfn: pf, irq: 0 });
  // The VF's own register says MEMORY, the PF's does not.
  fx.host.poke(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY);
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 1 }).err, MSI_ERRNO.ENXIO);
  pf.poke(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY);
  fx.host.poke(PCI_COMMAND_OFFSET, 2, 0);
  assert.equal(fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 1 }).err, 0);
});

test('XSA-157 (f): 1000 repeated enable_msi make one platform call and bounded log output', () => {
  const fx = opsFixture();
  fx.run({ cmd: XEN_PCI_OP.enable_msi });
  for (let i = 0; i < 1000; i++) {
    assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_msi }), { err: -5, value: 0 });
  }
  assert.deepEqual(fx.msi.calls, ['enableMsi(1)']);
  // The fixture's limiter clock never moves: one burst of 10 lines.
  assert.equal(fx.logger.at('warn').length, 10);
  assert.equal(fx.dev.warnLimiter.suppressed, 990);
});

test('XSA-157 (g): enable_msix with nvec 129 answers -EINVAL (-22), value unchanged', () => {
  const fx = opsFixture();
  fx.run(enableMem);
  assert.deepEqual(fx.run({ cmd: XEN_PCI_OP.enable_msix, value: 129 }), {
    err: MSI_ERRNO.EINVAL,
    value: 129,
  });
  assert.deepEqual(fx.msi.calls, []);
});
