// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PCI_CAP_ID, PCI_VPD_ADDR_F } from '../abi/pci-regs.js';
import { findCapability } from '../pci/capabilities.js';
import { vpdBody } from './capability-bodies.js';
import { buildCatalogDevice } from './catalog/index.js';
import { ConfigImageBuilder } from './config-image-builder.js';
import { SimulatedFunction } from './simulated-function.js';
import { buildVpdImage } from './vpd-image.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

function vpdFunction(rom: Uint8Array): { fn: SimulatedFunction; addr: number; data: number } {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x14e4,
    deviceId: 0x1657,
    revision: 1,
    classCode: 0x020000,
    headerType: 0,
  });
  const vpd = image.addCapability(PCI_CAP_ID.VPD, vpdBody());
  return { fn: new SimulatedFunction(image.build(), { vpd: rom }), addr: vpd + 2, data: vpd + 4 };
}

function readVpd(fn: SimulatedFunction, addr: number, data: number, address: number): number {
  fn.configWrite(addr, 2, address);
  assert.equal(
    fn.configRead(addr, 2) & PCI_VPD_ADDR_F,
    PCI_VPD_ADDR_F,
    'F set when the read completes',
  );
  return fn.configRead(data, 4);
}

describe('VPD', () => {
  test('a read request loads four ROM bytes into the data register and sets F', () => {
    const rom = buildVpdImage({ identifier: 'ABCD' });
    const { fn, addr, data } = vpdFunction(rom);
    assert.equal(readVpd(fn, addr, data, 0), 0x41000482, 'tag 0x82, length 4, then "A"');
    assert.equal(readVpd(fn, addr, data, 4), 0x90444342);
  });

  test('a write request stores the data register and clears F', () => {
    const { fn, addr, data } = vpdFunction(new Uint8Array(64));
    fn.configWrite(data, 4, 0xcafebabe);
    fn.configWrite(addr, 2, PCI_VPD_ADDR_F | 0x10);
    assert.equal(fn.configRead(addr, 2), 0x0010, 'F cleared: the write completed');
    fn.configWrite(data, 4, 0);
    assert.equal(readVpd(fn, addr, data, 0x10), 0xcafebabe);
    fn.functionLevelReset();
    assert.equal(readVpd(fn, addr, data, 0x10), 0xcafebabe, 'VPD storage survives resets');
  });

  test('addresses past the ROM read 0', () => {
    const { fn, addr, data } = vpdFunction(new Uint8Array(64).fill(0xee));
    assert.equal(readVpd(fn, addr, data, 0x7ffc), 0);
    assert.equal(readVpd(fn, addr, data, 62), 0x0000eeee);
  });

  test('a write of the low address byte alone starts nothing', () => {
    const { fn, addr } = vpdFunction(new Uint8Array(64));
    fn.configWrite(addr, 1, 0x20);
    assert.equal(fn.configRead(addr, 2), 0x0020);
  });

  test('the catalog NIC carries VPD with a valid RV checksum', () => {
    const fn = must(buildCatalogDevice('nic-sriov')[0]).device;
    const vpd = findCapability(fn, PCI_CAP_ID.VPD);
    assert.ok(vpd !== undefined);
    const bytes: number[] = [];
    for (let address = 0; address < 256; address += 4) {
      const dword = readVpd(fn, vpd + 2, vpd + 4, address);
      for (let i = 0; i < 4; i++) bytes.push((dword >>> (8 * i)) & 0xff);
    }
    assert.equal(bytes[0], 0x82);
    const rv = bytes.findIndex((b, i) => b === 0x52 && bytes[i + 1] === 0x56);
    assert.ok(rv > 0, 'RV field present');
    const sum = bytes.slice(0, rv + 4).reduce((a, b) => (a + b) & 0xff, 0);
    assert.equal(sum, 0, 'bytes through the checksum sum to 0');
  });
});

describe('buildVpdImage()', () => {
  test('rejects malformed keywords, non-ASCII text and a ROM too small', () => {
    assert.throws(() => buildVpdImage({ identifier: 'x', fields: [['PNX', '1']] }), RangeError);
    assert.throws(() => buildVpdImage({ identifier: 'carte réseau' }), RangeError);
    assert.throws(() => buildVpdImage({ identifier: 'x'.repeat(40), sizeBytes: 32 }), RangeError);
  });
});
