// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
} from '../abi/pci-regs.js';
import { findCapability } from '../pci/capabilities.js';
import { buildCatalogDevice } from './catalog/index.js';
import type { MsiMessage } from './hooks.js';
import type { SimulatedFunction } from './simulated-function.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

/** The catalog NVMe: MSI-X table at BAR 0 + 0x3000, PBA at 0x2000, 33 entries. */
function nvme(): { fn: SimulatedFunction; flags: number; sent: MsiMessage[] } {
  const sent: MsiMessage[] = [];
  const [entry] = buildCatalogDevice('nvme', { hooks: { onMessage: (m) => sent.push(m) } });
  const fn = must(entry).device;
  const msix = findCapability(fn, PCI_CAP_ID.MSIX);
  assert.ok(msix !== undefined);
  return { fn, flags: msix + 2, sent };
}

const TABLE = 0x3000;
const PBA = 0x2000;

function program(fn: SimulatedFunction, entry: number, address: bigint, data: number): void {
  fn.mmioWrite(0, TABLE + entry * 16, 4, Number(address & 0xffffffffn));
  fn.mmioWrite(0, TABLE + entry * 16 + 4, 4, Number(address >> 32n));
  fn.mmioWrite(0, TABLE + entry * 16 + 8, 4, data);
}

describe('MSI-X', () => {
  test('table entries are RW except address bits 1:0 and vector control beyond the mask bit', () => {
    const { fn } = nvme();
    for (let dword = 0; dword < 4; dword++) fn.mmioWrite(0, TABLE + 16 + 4 * dword, 4, 0xffffffff);
    assert.deepEqual(
      [0, 1, 2, 3].map((d) => fn.mmioRead(0, TABLE + 16 + 4 * d, 4)),
      [0xfffffffc, 0xffffffff, 0xffffffff, 0x00000001],
    );
    assert.equal(fn.mmioRead(0, TABLE + 12, 4), 1, 'entries start masked');
  });

  test('the PBA is read-only', () => {
    const { fn } = nvme();
    fn.mmioWrite(0, PBA, 4, 0xffffffff);
    assert.equal(fn.mmioRead(0, PBA, 4), 0);
  });

  test('an unmasked entry is delivered with its address and data', () => {
    const { fn, flags, sent } = nvme();
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    fn.configWrite(flags, 2, PCI_MSIX_FLAGS_ENABLE);
    program(fn, 2, 0xfee00000n, 0x41);
    fn.mmioWrite(0, TABLE + 2 * 16 + 12, 4, 0);
    assert.equal(fn.signalMsix(2), true);
    assert.deepEqual(sent, [{ address: 0xfee00000n, data: 0x41, source: 'msix', vector: 2 }]);
  });

  test('a masked entry sets its PBA bit and is delivered on unmask', () => {
    const { fn, flags, sent } = nvme();
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    fn.configWrite(flags, 2, PCI_MSIX_FLAGS_ENABLE);
    program(fn, 32, 0xfee01000n, 0x51);
    assert.equal(fn.signalMsix(32), false);
    assert.equal(fn.mmioRead(0, PBA + 4, 4), 0x1, 'bit 32 of the PBA');
    assert.equal(sent.length, 0);
    fn.mmioWrite(0, TABLE + 32 * 16 + 12, 4, 0);
    assert.deepEqual(sent, [{ address: 0xfee01000n, data: 0x51, source: 'msix', vector: 32 }]);
    assert.equal(fn.mmioRead(0, PBA + 4, 4), 0);
  });

  test('the function mask holds every entry pending until it clears', () => {
    const { fn, flags, sent } = nvme();
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    fn.configWrite(flags, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    program(fn, 0, 0xfee00000n, 0x30);
    fn.mmioWrite(0, TABLE + 12, 4, 0);
    assert.equal(fn.signalMsix(0), false);
    assert.equal(fn.mmioRead(0, PBA, 4), 0x1);
    fn.configWrite(flags, 2, PCI_MSIX_FLAGS_ENABLE);
    assert.equal(sent.length, 1);
  });

  test('events while MSI-X is disabled are dropped, not made pending', () => {
    const { fn, sent } = nvme();
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert.equal(fn.signalMsix(0), false);
    assert.equal(fn.mmioRead(0, PBA, 4), 0);
    assert.equal(fn.signalMsix(99), false, 'no such entry');
    assert.equal(sent.length, 0);
  });

  test('with memory decode off the table reads all-ones and writes are dropped (XSA-157)', () => {
    const { fn, flags } = nvme();
    fn.configWrite(0x04, 2, 0);
    assert.equal(fn.mmioRead(0, TABLE, 4), 0xffffffff);
    fn.mmioWrite(0, TABLE + 12, 4, 0);
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY);
    assert.equal(fn.mmioRead(0, TABLE + 12, 4), 1, 'the unmask never reached the device');
    fn.configWrite(flags, 2, PCI_MSIX_FLAGS_ENABLE);
    assert.equal(fn.configRead(flags, 2) & 0x07ff, 32, 'table size is RO');
  });

  test('plain BAR memory is RAM behind the same decode rules', () => {
    const { fn } = nvme();
    fn.configWrite(0x04, 2, PCI_COMMAND_MEMORY);
    fn.mmioWrite(0, 0x14, 4, 0x00460001);
    assert.equal(fn.mmioRead(0, 0x14, 4), 0x00460001);
    assert.equal(fn.mmioRead(0, 0x16, 2), 0x0046);
    assert.equal(fn.mmioRead(0, 0x15, 2), 0xffff, 'misaligned');
    assert.equal(fn.mmioRead(0, 0x4000, 4), 0xffffffff, 'past the BAR');
    assert.equal(fn.mmioRead(1, 0, 4), 0xffffffff, 'upper half of a 64-bit BAR is no BAR');
    fn.configWrite(0x04, 2, 0);
    assert.equal(fn.mmioRead(0, 0x14, 4), 0xffffffff);
  });
});
