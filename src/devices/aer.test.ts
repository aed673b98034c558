// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_COMMAND_SERR,
  PCI_ERR_CAP_OFFSET,
  PCI_ERR_COR_MASK_OFFSET,
  PCI_ERR_COR_STATUS_OFFSET,
  PCI_ERR_HEADER_LOG_OFFSET,
  PCI_ERR_ROOT_COMMAND_OFFSET,
  PCI_ERR_ROOT_STATUS_OFFSET,
  PCI_ERR_UNCOR_MASK_OFFSET,
  PCI_ERR_UNCOR_SEVER_OFFSET,
  PCI_ERR_UNCOR_STATUS_OFFSET,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_EXP_DEVSTA_OFFSET,
  PCI_EXT_CAP_ID,
  PCI_STATUS_SIG_SYSTEM_ERROR,
} from '../abi/pci-regs.js';
import { findCapability, findExtendedCapability } from '../pci/capabilities.js';
import { buildCatalogDevice } from './catalog/index.js';
import type { AerErrorEvent } from './hooks.js';
import type { SimulatedFunction } from './simulated-function.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

function device(model: 'nvme' | 'root-port'): {
  fn: SimulatedFunction;
  aer: number;
  exp: number;
  events: AerErrorEvent[];
} {
  const events: AerErrorEvent[] = [];
  const fn = must(
    buildCatalogDevice(model, { hooks: { onError: (e) => events.push(e) } })[0],
  ).device;
  const aer = findExtendedCapability(fn, PCI_EXT_CAP_ID.ERR);
  const exp = findCapability(fn, PCI_CAP_ID.EXP);
  assert.ok(aer !== undefined && exp !== undefined);
  return { fn, aer, exp, events };
}

describe('AER', () => {
  test('status, mask and severity registers have their PCIe masks', () => {
    const { fn, aer } = device('nvme');
    const masks = (rel: number): [number, number, number] => {
      const m = fn.registerMasks(aer + rel, 4);
      return [m.writable, m.rw1c, m.sticky];
    };
    assert.deepEqual(masks(PCI_ERR_UNCOR_STATUS_OFFSET), [0, 0x07fff030, 0x07fff030]);
    assert.deepEqual(masks(PCI_ERR_UNCOR_MASK_OFFSET), [0x07fff030, 0, 0x07fff030]);
    assert.deepEqual(masks(PCI_ERR_UNCOR_SEVER_OFFSET), [0x07fff030, 0, 0x07fff030]);
    assert.deepEqual(masks(PCI_ERR_COR_STATUS_OFFSET), [0, 0xf1c1, 0xf1c1]);
    assert.deepEqual(masks(PCI_ERR_COR_MASK_OFFSET), [0xf1c1, 0, 0xf1c1]);
    assert.deepEqual(masks(PCI_ERR_HEADER_LOG_OFFSET), [0, 0, 0xffffffff]);
  });

  test('a non-fatal error sets status, Device Status, the first error pointer and the header log', () => {
    const { fn, aer, exp, events } = device('nvme');
    fn.configWrite(exp + PCI_EXP_DEVCTL_OFFSET, 2, 0x2812); // non-fatal reporting on
    const event = fn.injectAerError({
      uncorrectable: 0x00004000, // completion timeout: non-fatal by default
      headerLog: [0x4a000001, 0x01000004, 0x00000000, 0x11223344],
    });
    assert.deepEqual(event, {
      correctable: 0,
      nonFatal: 0x4000,
      fatal: 0,
      isFatal: false,
      reported: true,
    });
    assert.deepEqual(events, [event]);
    assert.equal(fn.configRead(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4), 0x4000);
    assert.equal(fn.configRead(aer + PCI_ERR_CAP_OFFSET, 4) & 0x1f, 14, 'first error pointer');
    assert.equal(fn.configRead(aer + PCI_ERR_HEADER_LOG_OFFSET + 12, 4), 0x11223344);
    assert.equal(fn.configRead(exp + PCI_EXP_DEVSTA_OFFSET, 2) & 0xf, 0x2, 'NFED');
  });

  test('severity decides fatal errors; SERR# reports them and sets Signaled System Error', () => {
    const { fn, aer, exp, events } = device('nvme');
    fn.configWrite(aer + PCI_ERR_UNCOR_SEVER_OFFSET, 4, 0x00004000);
    fn.configWrite(0x04, 2, PCI_COMMAND_SERR);
    const event = fn.injectAerError({ uncorrectable: 0x00004000 });
    assert.equal(event.isFatal, true);
    assert.equal(event.fatal, 0x4000);
    assert.equal(event.reported, true);
    assert.equal(events.length, 1);
    assert.equal(fn.configRead(exp + PCI_EXP_DEVSTA_OFFSET, 2) & 0xf, 0x4, 'FED');
    assert.equal(fn.configRead(0x06, 2) & PCI_STATUS_SIG_SYSTEM_ERROR, PCI_STATUS_SIG_SYSTEM_ERROR);
  });

  test('masked errors are recorded in status but not reported', () => {
    const { fn, aer, exp, events } = device('nvme');
    fn.configWrite(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4, 0x00100000);
    fn.configWrite(aer + PCI_ERR_COR_MASK_OFFSET, 4, 0x00000001);
    const event = fn.injectAerError({ uncorrectable: 0x00100000, correctable: 0x00000001 });
    assert.deepEqual(event, {
      correctable: 0,
      nonFatal: 0,
      fatal: 0,
      isFatal: false,
      reported: false,
    });
    assert.equal(events.length, 0);
    assert.equal(fn.configRead(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4), 0x00100000);
    assert.equal(fn.configRead(aer + PCI_ERR_COR_STATUS_OFFSET, 4), 0x1);
    assert.equal(fn.configRead(aer + PCI_ERR_CAP_OFFSET, 4) & 0x1f, 0, 'no first error pointer');
    assert.equal(
      fn.configRead(exp + PCI_EXP_DEVSTA_OFFSET, 2) & 0xf,
      0x1 | 0x2 | 0x8,
      'DevSta logs all',
    );
  });

  test('a correctable error is reported only with Correctable Error Reporting enabled', () => {
    const { fn, exp } = device('nvme');
    assert.equal(fn.injectAerError({ correctable: 0x40 }).reported, false);
    fn.configWrite(exp + PCI_EXP_DEVCTL_OFFSET, 2, 0x2811);
    assert.equal(fn.injectAerError({ correctable: 0x40 }).reported, true);
  });

  test('root ports have RW root command and RW1C root status', () => {
    const { fn, aer } = device('root-port');
    fn.configWrite(aer + PCI_ERR_ROOT_COMMAND_OFFSET, 4, 0xffffffff);
    assert.equal(fn.configRead(aer + PCI_ERR_ROOT_COMMAND_OFFSET, 4), 0x7);
    assert.equal(fn.registerMasks(aer + PCI_ERR_ROOT_STATUS_OFFSET, 4).rw1c, 0x7f);
  });

  test('undefined error bits are ignored', () => {
    const { fn, aer } = device('nvme');
    fn.injectAerError({ uncorrectable: 0x80000001, correctable: 0x00010000 });
    assert.equal(fn.configRead(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4), 0);
    assert.equal(fn.configRead(aer + PCI_ERR_COR_STATUS_OFFSET, 4), 0);
  });
});
