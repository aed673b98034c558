// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PCI_CAP_ID, PCI_COMMAND_MASTER } from '../abi/pci-regs.js';
import { findCapability } from '../pci/capabilities.js';
import { msiBody } from './capability-bodies.js';
import { ConfigImageBuilder } from './config-image-builder.js';
import type { MsiMessage } from './hooks.js';
import { SimulatedFunction } from './simulated-function.js';

function msiFunction(options: { is64: boolean; maskable: boolean; vectorsLog2: number }): {
  fn: SimulatedFunction;
  msi: number;
  sent: MsiMessage[];
} {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x8086,
    deviceId: 0x1502,
    revision: 4,
    classCode: 0x020000,
    headerType: 0,
  });
  image.set32(0x10, 0xfeb00000).set8(0x3d, 1);
  const msi = image.addCapability(PCI_CAP_ID.MSI, msiBody(options));
  const sent: MsiMessage[] = [];
  const fn = new SimulatedFunction(image.build(), { hooks: { onMessage: (m) => sent.push(m) } });
  return { fn, msi, sent };
}

describe('MSI', () => {
  test('a 64-bit message carries the programmed address and data', () => {
    const { fn, msi, sent } = msiFunction({ is64: true, maskable: false, vectorsLog2: 0 });
    fn.configWrite(msi + 4, 4, 0xfee01003);
    fn.configWrite(msi + 8, 4, 0x1);
    fn.configWrite(msi + 12, 2, 0x4041);
    fn.configWrite(0x04, 2, PCI_COMMAND_MASTER);
    fn.configWrite(msi + 2, 2, 0x0001);
    assert.equal(fn.configRead(msi + 4, 4), 0xfee01000, 'address bits 1:0 read 0');
    assert.equal(fn.signalMsi(0), true);
    assert.deepEqual(sent, [{ address: 0x1fee01000n, data: 0x4041, source: 'msi', vector: 0 }]);
  });

  test('multiple message enable is limited to what the function is capable of', () => {
    const { fn, msi } = msiFunction({ is64: false, maskable: false, vectorsLog2: 2 });
    fn.configWrite(msi + 2, 2, 0x0071);
    assert.equal(fn.configRead(msi + 2, 2) & 0x0070, 0x0020, '4 vectors, not 128');
    assert.equal(fn.configRead(msi + 2, 2) & 0x000e, 0x0004, 'capable field is RO');
  });

  test('the vector goes into the low data bits of a multi-message function', () => {
    const { fn, msi, sent } = msiFunction({ is64: false, maskable: false, vectorsLog2: 3 });
    fn.configWrite(msi + 4, 4, 0xfee00000);
    fn.configWrite(msi + 8, 2, 0x4063);
    fn.configWrite(0x04, 2, PCI_COMMAND_MASTER);
    fn.configWrite(msi + 2, 2, 0x0031); // 8 vectors
    assert.equal(fn.signalMsi(5), true);
    assert.deepEqual(sent, [{ address: 0xfee00000n, data: 0x4065, source: 'msi', vector: 5 }]);
    assert.equal(fn.signalMsi(8), false, 'no such vector');
  });

  test('a masked vector becomes pending and is sent on unmask', () => {
    const { fn, msi, sent } = msiFunction({ is64: true, maskable: true, vectorsLog2: 1 });
    const maskOffset = msi + 16;
    const pendingOffset = msi + 20;
    fn.configWrite(0x04, 2, PCI_COMMAND_MASTER);
    fn.configWrite(msi + 2, 2, 0x0011);
    fn.configWrite(maskOffset, 4, 0xffffffff);
    assert.equal(fn.configRead(maskOffset, 4), 0x3, 'only the two capable vectors have mask bits');
    assert.equal(fn.signalMsi(1), false);
    assert.equal(sent.length, 0);
    assert.equal(fn.configRead(pendingOffset, 4), 0x2);
    fn.configWrite(pendingOffset, 4, 0);
    assert.equal(fn.configRead(pendingOffset, 4), 0x2, 'pending bits are RO');
    fn.configWrite(maskOffset, 4, 0x1);
    assert.deepEqual(
      sent.map((m) => m.vector),
      [1],
    );
    assert.equal(fn.configRead(pendingOffset, 4), 0);
  });

  test('without bus mastering a message waits until MASTER is set', () => {
    const { fn, msi, sent } = msiFunction({ is64: false, maskable: false, vectorsLog2: 0 });
    fn.configWrite(msi + 2, 2, 0x0001);
    assert.equal(fn.signalMsi(0), false);
    assert.equal(fn.msiPending(), 1);
    fn.configWrite(0x04, 2, PCI_COMMAND_MASTER);
    assert.equal(sent.length, 1);
    assert.equal(fn.msiPending(), 0);
  });

  test('a vector raised while MSI is disabled is held and a reset drops it', () => {
    const { fn, msi, sent } = msiFunction({ is64: false, maskable: true, vectorsLog2: 0 });
    fn.configWrite(0x04, 2, PCI_COMMAND_MASTER);
    fn.signalMsi(0);
    assert.equal(fn.msiPending(), 1);
    fn.functionLevelReset();
    assert.equal(fn.msiPending(), 0);
    fn.configWrite(0x04, 2, PCI_COMMAND_MASTER);
    fn.configWrite(msi + 2, 2, 0x0001);
    assert.equal(sent.length, 0);
  });

  test('the 32-bit layout puts data at +8 and mask bits at +12', () => {
    const { fn, msi } = msiFunction({ is64: false, maskable: true, vectorsLog2: 5 });
    assert.equal(findCapability(fn, PCI_CAP_ID.MSI), msi);
    fn.configWrite(msi + 8, 4, 0xffffffff);
    assert.equal(fn.configRead(msi + 8, 4), 0x0000ffff, 'extended message data is not implemented');
    fn.configWrite(msi + 12, 4, 0xffffffff);
    assert.equal(fn.configRead(msi + 12, 4), 0xffffffff, '32 mask bits');
  });
});
