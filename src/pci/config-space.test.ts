// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigSpace, isConfigSpaceSize } from './config-space.js';
import { DUMPS_DIR } from '../../test/support/paths.js';

function curated(name: string): ConfigSpace {
  return new ConfigSpace(new Uint8Array(readFileSync(join(DUMPS_DIR, 'curated', name))));
}

test('ConfigSpace accepts images of 64, 256 and 4096 bytes only', () => {
  for (const size of [64, 256, 4096]) {
    assert.equal(new ConfigSpace(new Uint8Array(size)).sizeBytes, size);
    assert.equal(ConfigSpace.empty(size).sizeBytes, size);
    assert.ok(isConfigSpaceSize(size));
  }
  assert.equal(ConfigSpace.empty().sizeBytes, 4096);
  for (const size of [0, 63, 65, 128, 255, 257, 4095, 4097, 8192]) {
    assert.throws(() => new ConfigSpace(new Uint8Array(size)), RangeError);
    assert.throws(() => ConfigSpace.empty(size), RangeError);
    assert.ok(!isConfigSpaceSize(size));
  }
});

test('ConfigSpace rejects something that is not a Uint8Array with TypeError', () => {
  assert.throws(() => new ConfigSpace([1, 2, 3] as unknown as Uint8Array), TypeError);
});

test('ConfigSpace copies its input and bytes() returns a copy', () => {
  const input = new Uint8Array(64);
  const cs = new ConfigSpace(input);
  input[0] = 0xaa;
  assert.equal(cs.read8(0), 0);
  const out = cs.bytes();
  out[1] = 0xbb;
  assert.equal(cs.read8(1), 0);
  cs.write8(2, 0xcc);
  assert.equal(out[2], 0);
  assert.equal(cs.bytes()[2], 0xcc);
});

test('ConfigSpace copies only the viewed part of a Uint8Array on a larger buffer', () => {
  const backing = new Uint8Array(512).fill(0xee);
  backing.set([0x86, 0x80], 100);
  const cs = new ConfigSpace(backing.subarray(100, 164));
  assert.equal(cs.sizeBytes, 64);
  assert.equal(cs.vendorId, 0x8086);
  assert.equal(cs.read8(63), 0xee);
});

test('ConfigSpace reads and writes little-endian', () => {
  const cs = ConfigSpace.empty(256);
  cs.write32(0x10, 0x12345678);
  assert.deepEqual([...cs.bytes().subarray(0x10, 0x14)], [0x78, 0x56, 0x34, 0x12]);
  assert.equal(cs.read16(0x10), 0x5678);
  assert.equal(cs.read16(0x12), 0x1234);
  assert.equal(cs.read8(0x13), 0x12);
  cs.write16(0x20, 0xbeef);
  assert.equal(cs.read8(0x20), 0xef);
  assert.equal(cs.read8(0x21), 0xbe);
});

test('ConfigSpace.read32() returns an unsigned value', () => {
  const cs = ConfigSpace.empty(64);
  cs.write32(0, 0xffffffff);
  assert.equal(cs.read32(0), 0xffffffff);
  assert.equal(cs.read(0, 4), 0xffffffff);
});

test('ConfigSpace writes accept the signed form of the same bit pattern', () => {
  const cs = ConfigSpace.empty(64);
  cs.write32(0, ~0);
  assert.equal(cs.read32(0), 0xffffffff);
  cs.write16(4, -2);
  assert.equal(cs.read16(4), 0xfffe);
  cs.write8(6, -128);
  assert.equal(cs.read8(6), 0x80);
});

test('ConfigSpace writes reject values that do not fit the width with RangeError', () => {
  const cs = ConfigSpace.empty(64);
  assert.throws(() => {
    cs.write8(0, 0x100);
  }, RangeError);
  assert.throws(() => {
    cs.write8(0, -129);
  }, RangeError);
  assert.throws(() => {
    cs.write16(0, 0x10000);
  }, RangeError);
  assert.throws(() => {
    cs.write32(0, 2 ** 32);
  }, RangeError);
  assert.throws(() => {
    cs.write32(0, -(2 ** 31) - 1);
  }, RangeError);
  assert.throws(() => {
    cs.write8(0, 1.5);
  }, RangeError);
  assert.throws(() => {
    cs.write8(0, Number.NaN);
  }, RangeError);
  assert.equal(cs.read32(0), 0, 'a rejected write changes nothing');
});

test('ConfigSpace.read() and write() dispatch on the access size', () => {
  const cs = ConfigSpace.empty(256);
  cs.write(0x40, 4, 0xa1b2c3d4);
  assert.equal(cs.read(0x40, 1), 0xd4);
  assert.equal(cs.read(0x42, 2), 0xa1b2);
  cs.write(0x41, 1, 0x00);
  cs.write(0x42, 2, 0x1234);
  assert.equal(cs.read(0x40, 4), 0x123400d4);
  assert.throws(() => cs.read(0x40, 3 as 1), RangeError);
  assert.throws(() => {
    cs.write(0x40, 8 as 4, 0);
  }, RangeError);
});

test('ConfigSpace rejects misaligned accesses with RangeError', () => {
  const cs = ConfigSpace.empty(256);
  assert.throws(() => cs.read16(1), /not 2-byte aligned/);
  assert.throws(() => cs.read32(2), /not 4-byte aligned/);
  assert.throws(() => {
    cs.write16(3, 0);
  }, RangeError);
  assert.throws(() => {
    cs.write32(6, 0);
  }, RangeError);
  assert.throws(() => cs.read(5, 4), RangeError);
});

test('ConfigSpace rejects accesses outside the image with RangeError', () => {
  for (const size of [64, 256, 4096]) {
    const cs = ConfigSpace.empty(size);
    assert.equal(cs.read8(size - 1), 0);
    assert.equal(cs.read32(size - 4), 0);
    assert.throws(() => cs.read8(size), RangeError);
    assert.throws(() => cs.read16(size), RangeError);
    assert.throws(() => cs.read32(size), /the config space has/);
    assert.throws(() => {
      cs.write8(size, 0);
    }, RangeError);
    assert.throws(() => cs.read8(-1), RangeError);
    assert.throws(() => cs.read8(0.5), RangeError);
    assert.throws(() => cs.read8(Number.NaN), RangeError);
  }
});

test('ConfigSpace decodes the header of the Samsung NVMe dump', () => {
  const cs = curated('nvme-samsung-pm174x.bin');
  assert.equal(cs.sizeBytes, 4096);
  assert.equal(cs.vendorId, 0x144d);
  assert.equal(cs.deviceId, 0xa826);
  assert.equal(cs.command, 0x0406);
  assert.equal(cs.status, 0x0011);
  assert.equal(cs.revision, 0x00);
  assert.equal(cs.classCode, 0x010802);
  assert.equal(cs.progIf, 0x02);
  assert.equal(cs.headerType, 0);
  assert.equal(cs.isMultiFunction, false);
  assert.equal(cs.subsystemVendorId, 0x144d);
  assert.equal(cs.subsystemId, 0xaa0a);
  assert.equal(cs.barCount, 6);
  assert.equal(cs.bar(0), 0x88400004); // 64-bit memory BAR, low half
  assert.equal(cs.bar(1), 0);
  assert.equal(cs.expansionRom, 0);
  assert.equal(cs.interruptLine, 0xff);
  assert.equal(cs.interruptPin, 0x01);
  assert.equal(cs.capabilityPointer, 0x40);
});

test('ConfigSpace decodes a bridge header: two BARs, ROM at 0x38, SSVID capability', () => {
  // Haswell-E root port: header type 1, subsystem IDs in the SSVID capability at 0x40.
  const cs = curated('rootport-intel-haswell-e-8086_2f04-aer.bin');
  assert.equal(cs.vendorId, 0x8086);
  assert.equal(cs.deviceId, 0x2f04);
  assert.equal(cs.headerType, 1);
  assert.equal(cs.classCode >>> 8, 0x0604);
  assert.equal(cs.barCount, 2);
  assert.doesNotThrow(() => cs.bar(1));
  assert.throws(() => cs.bar(2), /header type 1 has BARs 0-1/);
  assert.equal(cs.expansionRom, cs.read32(0x38));
  assert.equal(cs.subsystemVendorId, cs.read16(0x44));
  assert.equal(cs.subsystemId, cs.read16(0x46));
  assert.notEqual(cs.subsystemVendorId, 0);
});

test('ConfigSpace reports no subsystem IDs for a bridge without an SSVID capability', () => {
  const cs = ConfigSpace.empty(256);
  cs.write8(0x0e, 0x01);
  assert.equal(cs.subsystemVendorId, undefined);
  assert.equal(cs.subsystemId, undefined);
});

test('ConfigSpace.isMultiFunction reads bit 7 and headerType masks it off', () => {
  const cs = ConfigSpace.empty(64);
  cs.write8(0x0e, 0x81);
  assert.equal(cs.isMultiFunction, true);
  assert.equal(cs.headerType, 1);
  cs.write8(0x0e, 0x00);
  assert.equal(cs.isMultiFunction, false);
});

test('ConfigSpace handles a CardBus header: one BAR, pointer at 0x14, IDs at 0x40', () => {
  const cs = ConfigSpace.empty(256);
  cs.write8(0x0e, 0x02);
  cs.write8(0x14, 0xa0);
  cs.write8(0x34, 0x55);
  cs.write16(0x40, 0x10cf);
  cs.write16(0x42, 0x143d);
  assert.equal(cs.barCount, 1);
  assert.throws(() => cs.bar(1), RangeError);
  assert.equal(cs.capabilityPointer, 0xa0);
  assert.equal(cs.subsystemVendorId, 0x10cf);
  assert.equal(cs.subsystemId, 0x143d);
  assert.equal(cs.expansionRom, undefined);
  // A 64-byte image ends before the CardBus subsystem registers.
  const short = ConfigSpace.empty(64);
  short.write8(0x0e, 0x02);
  assert.equal(short.subsystemVendorId, undefined);
});

test('ConfigSpace has no BARs for an unknown header type', () => {
  const cs = ConfigSpace.empty(64);
  cs.write8(0x0e, 0x7f);
  assert.equal(cs.barCount, 0);
  assert.throws(() => cs.bar(0), RangeError);
  assert.equal(cs.subsystemVendorId, undefined);
  assert.equal(cs.expansionRom, undefined);
});

test('ConfigSpace.bar() rejects indexes outside 0-5 with RangeError', () => {
  const cs = ConfigSpace.empty(64);
  cs.write32(0x24, 0xfe000000);
  assert.equal(cs.bar(5), 0xfe000000);
  for (const bad of [-1, 6, 1.5, Number.NaN]) assert.throws(() => cs.bar(bad), RangeError);
});

test('ConfigSpace.classCode is 24 bits: base, sub-class, programming interface', () => {
  const cs = ConfigSpace.empty(64);
  cs.write32(0x08, 0x0c033001);
  assert.equal(cs.revision, 0x01);
  assert.equal(cs.classCode, 0x0c0330);
  assert.equal(cs.progIf, 0x30);
});

test('ConfigSpace getters read the same bytes as the raw accessors on every curated dump', () => {
  for (const name of [
    'gpu-nvidia-gp108m-10de_1d10.bin',
    'nic-intel-82576-8086_10c9-sriov-msix.bin',
    'virtio-net-legacy-256.bin',
    'xhci-ti-tusb73x0-104c_8241.bin',
  ]) {
    const cs = curated(name);
    const ids = /([0-9a-f]{4})_([0-9a-f]{4})/.exec(name);
    if (ids !== null) {
      assert.equal(cs.vendorId, Number.parseInt(ids[1] ?? '', 16), name);
      assert.equal(cs.deviceId, Number.parseInt(ids[2] ?? '', 16), name);
    }
    assert.equal(cs.read32(0), ((cs.deviceId << 16) | cs.vendorId) >>> 0, name);
    assert.equal(cs.read32(4), ((cs.status << 16) | cs.command) >>> 0, name);
    assert.equal(cs.interruptPin, cs.read8(0x3d), name);
  }
});
