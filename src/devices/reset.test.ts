// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_COMMAND_MEMORY,
  PCI_D3HOT,
  PCI_ERR_UNCOR_MASK_OFFSET,
  PCI_ERR_UNCOR_STATUS_OFFSET,
  PCI_EXP_DEVCTL_BCR_FLR,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_EXP_DEVSTA_OFFSET,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXT_CAP_ID,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_CTRL_PME_ENABLE,
} from '../abi/pci-regs.js';
import { findCapability, findExtendedCapability } from '../pci/capabilities.js';
import { afBody, pcieBody, pmBody } from './capability-bodies.js';
import { buildCatalogDevice } from './catalog/index.js';
import { ConfigImageBuilder } from './config-image-builder.js';
import { SimulatedFunction } from './simulated-function.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

function cap(fn: SimulatedFunction, id: number): number {
  const offset = findCapability(fn, id);
  assert.ok(offset !== undefined, `capability 0x${id.toString(16)} present`);
  return offset;
}

function extCap(fn: SimulatedFunction, id: number): number {
  const offset = findExtendedCapability(fn, id);
  assert.ok(offset !== undefined, `extended capability 0x${id.toString(16)} present`);
  return offset;
}

function nic(): SimulatedFunction {
  return must(buildCatalogDevice('nic-sriov')[0]).device;
}

describe('function resets', () => {
  test('a written BCR_FLR resets an FLR-capable function to its power-on values', () => {
    const fn = nic();
    const exp = cap(fn, PCI_CAP_ID.EXP);
    const bar0 = fn.configRead(0x10, 4);
    assert.notEqual(bar0 & ~0xf, 0, 'firmware assigned BAR 0');
    fn.configWrite(0x04, 2, 0x0506);
    fn.configWrite(0x0c, 1, 0x20);
    fn.configWrite(exp + PCI_EXP_DEVCTL_OFFSET, 2, 0x000f);
    fn.injectAerError({ uncorrectable: 0x00004000 });
    assert.notEqual(fn.configRead(exp + PCI_EXP_DEVSTA_OFFSET, 2) & 0xf, 0);
    fn.configWrite(exp + PCI_EXP_DEVCTL_OFFSET, 2, 0x000f | PCI_EXP_DEVCTL_BCR_FLR);

    assert.deepEqual(fn.resetCounts(), { flr: 1, afFlr: 0, pm: 0, bus: 0 });
    assert.equal(fn.configRead(0x04, 2), 0, 'command');
    assert.equal(fn.configRead(0x0c, 1), 0, 'cache line size');
    assert.equal(fn.configRead(0x10, 4), 0x4, 'BAR 0 back to address 0, 64-bit type kept');
    assert.equal(fn.configRead(exp + PCI_EXP_DEVCTL_OFFSET, 2), 0x2810, 'Device Control default');
    assert.equal(fn.configRead(exp + PCI_EXP_DEVSTA_OFFSET, 2) & 0xf, 0, 'Device Status errors');
    assert.equal(fn.configRead(0x3c, 1), 11, 'interrupt line kept (no reset value)');
  });

  test('sticky AER and PME bits survive a reset', () => {
    const fn = nic();
    const aer = extCap(fn, PCI_EXT_CAP_ID.ERR);
    const pm = cap(fn, PCI_CAP_ID.PM);
    fn.configWrite(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4, 0x00100000);
    fn.injectAerError({ uncorrectable: 0x00004000 });
    fn.configWrite(pm + PCI_PM_CTRL_OFFSET, 2, PCI_PM_CTRL_PME_ENABLE);
    fn.functionLevelReset();
    assert.equal(fn.configRead(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4), 0x00100000, 'RWS mask');
    assert.equal(fn.configRead(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4), 0x00004000, 'RW1CS status');
    assert.equal(
      fn.configRead(pm + PCI_PM_CTRL_OFFSET, 2) & PCI_PM_CTRL_PME_ENABLE,
      PCI_PM_CTRL_PME_ENABLE,
    );
    fn.configWrite(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4, 0xffffffff);
    assert.equal(
      fn.configRead(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4),
      0,
      'still write-one-to-clear',
    );
  });

  test('sticky bits survive the PM D3hot->D0 reset too', () => {
    const fn = nic();
    const aer = extCap(fn, PCI_EXT_CAP_ID.ERR);
    const pm = cap(fn, PCI_CAP_ID.PM);
    fn.configWrite(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4, 0x00100000);
    fn.configWrite(pm + PCI_PM_CTRL_OFFSET, 2, PCI_PM_CTRL_PME_ENABLE | PCI_D3HOT);
    fn.configWrite(pm + PCI_PM_CTRL_OFFSET, 2, PCI_PM_CTRL_PME_ENABLE);
    assert.equal(fn.resetCounts().pm, 1);
    assert.equal(fn.configRead(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4), 0x00100000);
    assert.equal(fn.configRead(pm + PCI_PM_CTRL_OFFSET, 2) & 0x0103, PCI_PM_CTRL_PME_ENABLE);
    assert.equal(fn.configRead(0x10, 4), 0x4, 'BAR back to its power-on value');
  });

  test('a reset disables MSI-X and masks every table entry', () => {
    const fn = nic();
    const msix = cap(fn, PCI_CAP_ID.MSIX);
    const bar3 = fn.configRead(0x1c, 4);
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY);
    fn.configWrite(msix + 2, 2, PCI_MSIX_FLAGS_ENABLE);
    fn.mmioWrite(3, 12, 4, 0);
    assert.equal(fn.mmioRead(3, 12, 4), 0, 'entry 0 unmasked');
    fn.functionLevelReset();
    assert.equal(fn.configRead(msix + 2, 2) & PCI_MSIX_FLAGS_ENABLE, 0);
    // The table is in BAR 3, which lost its address: give it back and decode again.
    fn.configWrite(0x1c, 4, bar3);
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY);
    for (let entry = 0; entry < fn.msixTableSize; entry++) {
      assert.equal(fn.mmioRead(3, entry * 16 + 12, 4), 1, `entry ${entry} masked`);
    }
  });

  test('BCR_FLR does nothing on a function that does not advertise FLR', () => {
    const fn = must(buildCatalogDevice('xhci')[0]).device;
    const exp = cap(fn, PCI_CAP_ID.EXP);
    fn.configWrite(0x04, 2, 0x0006);
    fn.configWrite(exp + PCI_EXP_DEVCTL_OFFSET, 2, PCI_EXP_DEVCTL_BCR_FLR);
    assert.equal(fn.configRead(0x04, 2), 0x0006);
    assert.equal(
      fn.configRead(exp + PCI_EXP_DEVCTL_OFFSET, 2) & PCI_EXP_DEVCTL_BCR_FLR,
      0,
      'reads 0',
    );
    assert.deepEqual(fn.resetCounts(), { flr: 0, afFlr: 0, pm: 0, bus: 0 });
  });

  test('an AF FLR write resets a function whose AF capability has FLR', () => {
    const image = new ConfigImageBuilder(256).identity({
      vendorId: 0x8086,
      deviceId: 0x2934,
      revision: 3,
      classCode: 0x0c0300,
      headerType: 0,
    });
    image.set32(0x20, 0xe001);
    image.addCapability(PCI_CAP_ID.AF, afBody({ flr: true, transactionsPending: true }));
    const fn = new SimulatedFunction(image.build());
    assert.deepEqual(fn.resetCapabilities(), { flr: false, afFlr: true, pmSoftReset: false });
    fn.configWrite(0x04, 2, 0x0005);
    const af = cap(fn, PCI_CAP_ID.AF);
    fn.configWrite(af + 4, 1, 0x01);
    assert.equal(fn.configRead(0x04, 2), 0);
    assert.equal(fn.configRead(0x20, 4), 0x1, 'I/O BAR back to 0');
    assert.equal(fn.configRead(af + 4, 1), 0, 'Initiate FLR reads 0');
    assert.deepEqual(fn.resetCounts(), { flr: 0, afFlr: 1, pm: 0, bus: 0 });
  });

  test('D3hot->D0 with No_Soft_Reset clear resets the function', () => {
    const fn = must(buildCatalogDevice('xhci')[0]).device;
    const pm = cap(fn, PCI_CAP_ID.PM);
    assert.equal(fn.resetCapabilities().pmSoftReset, true);
    fn.configWrite(0x04, 2, 0x0006);
    fn.configWrite(pm + PCI_PM_CTRL_OFFSET, 2, PCI_D3HOT);
    assert.equal(fn.powerState(), PCI_D3HOT);
    assert.equal(fn.configRead(0x04, 2), 0x0006, 'entering D3hot resets nothing');
    fn.configWrite(pm + PCI_PM_CTRL_OFFSET, 2, 0);
    assert.equal(fn.powerState(), 0);
    assert.equal(fn.configRead(0x04, 2), 0);
    assert.equal(fn.configRead(0x10, 4), 0x4);
    assert.deepEqual(fn.resetCounts(), { flr: 0, afFlr: 0, pm: 1, bus: 0 });
  });

  test('D3hot->D0 with No_Soft_Reset set keeps the function configured', () => {
    const fn = must(buildCatalogDevice('nvme')[0]).device;
    const pm = cap(fn, PCI_CAP_ID.PM);
    fn.configWrite(0x04, 2, 0x0006);
    fn.configWrite(pm + PCI_PM_CTRL_OFFSET, 2, PCI_D3HOT);
    fn.configWrite(pm + PCI_PM_CTRL_OFFSET, 2, 0);
    assert.equal(fn.configRead(0x04, 2), 0x0006);
    assert.equal(fn.resetCounts().pm, 0);
  });

  test('resetCapabilities() reads DevCap FLR, AF FLR and No_Soft_Reset', () => {
    const image = new ConfigImageBuilder(256).identity({
      vendorId: 1,
      deviceId: 2,
      revision: 0,
      classCode: 0xff0000,
      headerType: 0,
    });
    image.addCapability(PCI_CAP_ID.PM, pmBody({ noSoftReset: true }));
    image.addCapability(
      PCI_CAP_ID.EXP,
      pcieBody({ type: PCI_EXP_TYPE_ENDPOINT, devcap: 0x10000000 }),
    );
    const fn = new SimulatedFunction(image.build());
    assert.deepEqual(fn.resetCapabilities(), { flr: true, afFlr: false, pmSoftReset: false });
    assert.deepEqual(nic().resetCapabilities(), { flr: true, afFlr: false, pmSoftReset: true });
  });
});
