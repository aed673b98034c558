// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_D3HOT,
  PCI_PM_CTRL_OFFSET,
} from '../abi/pci-regs.js';
import { findCapability } from '../pci/capabilities.js';
import { pmBody } from './capability-bodies.js';
import { ConfigImageBuilder } from './config-image-builder.js';
import { SimulatedFunction } from './simulated-function.js';

function pmFunction(options: { d1?: boolean; d2?: boolean; pmeSupport?: number }): {
  fn: SimulatedFunction;
  pmcsr: number;
} {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x8086,
    deviceId: 0x100e,
    revision: 2,
    classCode: 0x020000,
    headerType: 0,
  });
  image.set32(0x10, 0xfebc0000);
  const pm = image.addCapability(PCI_CAP_ID.PM, pmBody({ ...options, noSoftReset: true }));
  const fn = new SimulatedFunction(image.build(), { barSizes: new Map([[0, 0x20000n]]) });
  assert.equal(findCapability(fn, PCI_CAP_ID.PM), pm);
  return { fn, pmcsr: pm + PCI_PM_CTRL_OFFSET };
}

describe('power management', () => {
  test('D1 and D2 are accepted only when PMC advertises them', () => {
    const without = pmFunction({});
    without.fn.configWrite(without.pmcsr, 2, 1);
    assert.equal(without.fn.powerState(), 0, 'D1 discarded');
    without.fn.configWrite(without.pmcsr, 2, 2);
    assert.equal(without.fn.configRead(without.pmcsr, 2) & 3, 0, 'D2 discarded');
    const withD1 = pmFunction({ d1: true, d2: true });
    withD1.fn.configWrite(withD1.pmcsr, 2, 1);
    assert.equal(withD1.fn.powerState(), 1);
    withD1.fn.configWrite(withD1.pmcsr, 2, 2);
    assert.equal(withD1.fn.powerState(), 2);
  });

  test('No_Soft_Reset and the data scale are read-only; data select is RW', () => {
    const { fn, pmcsr } = pmFunction({});
    fn.configWrite(pmcsr, 2, 0x7ff4);
    assert.equal(fn.configRead(pmcsr, 2), 0x1e08, 'data select written, NSR kept, scale RO');
  });

  test('PME_Enable is RW and PME_Status RW1C only with PME support', () => {
    const none = pmFunction({});
    none.fn.configWrite(none.pmcsr, 2, 0x0100);
    assert.equal(none.fn.configRead(none.pmcsr, 2) & 0x0100, 0);
    const pme = pmFunction({ pmeSupport: 0x1f });
    pme.fn.configWrite(pme.pmcsr, 2, 0x0100);
    assert.equal(pme.fn.configRead(pme.pmcsr, 2) & 0x0100, 0x0100);
    assert.deepEqual(pme.fn.registerMasks(pme.pmcsr, 2), {
      writable: 0x1f03,
      rw1c: 0x8000,
      sticky: 0x8100,
      defaultValue: 0x0008,
    });
  });

  test('a function in D3hot does not decode its BARs', () => {
    const { fn, pmcsr } = pmFunction({});
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    fn.mmioWrite(0, 0, 4, 0x12345678);
    fn.configWrite(pmcsr, 2, PCI_D3HOT);
    assert.equal(fn.mmioRead(0, 0, 4), 0xffffffff);
    fn.configWrite(pmcsr, 2, 0);
    assert.equal(fn.mmioRead(0, 0, 4), 0x12345678, 'No_Soft_Reset set: memory kept');
  });
});
