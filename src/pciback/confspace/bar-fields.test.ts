// SPDX-License-Identifier: MIT
// BARs and the expansion ROM (spec §5.7), including the regression rows of "xen-pciback:
// return proper values during BAR sizing" (2016).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FULL_DEVICE_LAYOUT as L,
  MemoryHostDevice,
  buildConfigImage,
  fullTestDevice,
} from '../../../test/support/memory-host-device.js';
import { EMPTY_RESOURCE, IORESOURCE, type PciResource } from '../../pci/resource.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

function setup(dev = fullTestDevice()) {
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  dev.clearCalls();
  return { dev, space };
}

function sized(space: VirtualConfigSpace, offset: number, probe = 0xffffffff): number {
  space.write(offset, 4, probe);
  const { value } = space.read(offset, 4);
  return value;
}

test('§5.7 example: a 4 KiB 32-bit BAR at 0xfeb00000 reads val 0xfeb00000 and len_val 0xfffff000', () => {
  const { space } = setup();
  assert.deepEqual(space.read(0x10, 4), { value: 0xfeb00000, err: 0 });
  assert.equal(sized(space, 0x10), 0xfffff000);
});

test('§5.7 example: a 16 KiB 64-bit prefetchable BAR at 0x3_8000_0000 (low and high halves)', () => {
  const { space } = setup();
  assert.equal(space.read(0x14, 4).value, 0x8000000c);
  assert.equal(space.read(0x18, 4).value, 0x00000003);
  assert.equal(sized(space, 0x14), 0xffffc00c);
  assert.equal(sized(space, 0x18), 0xffffffff);
});

test('BAR sizing: 0xfffffff0 written to a memory BAR reads back len_val', () => {
  const { space } = setup();
  assert.equal(sized(space, 0x10, 0xfffffff0), 0xfffff000);
  assert.equal(sized(space, 0x14, 0xfffffff0), 0xffffc00c);
});

test('BAR sizing: the upper half of a 64-bit BAR needs exactly 0xffffffff', () => {
  const { space } = setup();
  assert.equal(sized(space, 0x18, 0xfffffff0), 0x00000003);
  assert.equal(sized(space, 0x18, 0xfffffffe), 0x00000003);
  assert.equal(sized(space, 0x18, 0xffffffff), 0xffffffff);
});

test('BAR sizing: an I/O BAR accepts 0xfffffffc (two low bits are read-only)', () => {
  const { space } = setup();
  assert.equal(space.read(0x1c, 4).value, L.bar3 | 1);
  assert.equal(sized(space, 0x1c, 0xfffffffc), 0xffffffe1);
  space.write(0x1c, 4, L.bar3 | 1);
  assert.equal(sized(space, 0x1c, 0xfffffff8), L.bar3 | 1);
});

test('ROM sizing: 0xfffff800 (address mask) reads back the ROM size mask', () => {
  const { space } = setup();
  assert.equal(space.read(0x30, 4).value, L.rom);
  assert.equal(sized(space, 0x30, 0xfffff800), 0xffff0000);
  space.write(0x30, 4, L.rom);
  assert.equal(sized(space, 0x30, 0xfffff000), L.rom);
  assert.equal(sized(space, 0x30, 0xffffffff), 0xffff0000);
});

test('ROM: the enable bit is never forwarded and the write is audited', () => {
  const { space, dev } = setup();
  assert.equal(space.write(0x30, 4, L.rom | 1), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  assert.equal(space.read(0x30, 4).value, L.rom);
  assert.deepEqual(
    space.deniedWrites().map((d) => [d.byteOffset, d.reason]),
    [[0x30, 'bar-relocation']],
  );
});

test('BAR restore: writing val back when hardware lost it writes val to hardware', () => {
  const { space, dev } = setup();
  dev.poke(0x10, 4, 0); // e.g. after a reset the hardware BAR is empty
  assert.equal(space.write(0x10, 4, L.bar0), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x10, sizeBytes: 4, value: L.bar0 },
  ]);
  assert.deepEqual(space.deniedWrites(), []);
});

test('BAR write: any other value is ignored, leaves sizing mode and is audited', () => {
  const { space, dev } = setup();
  space.write(0x10, 4, 0xffffffff);
  assert.equal(space.write(0x10, 4, 0xc0000000), 0);
  assert.equal(space.read(0x10, 4).value, L.bar0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  assert.equal(dev.peek(0x10, 4), L.bar0);
  assert.deepEqual(space.deniedWrites(), [
    { byteOffset: 0x10, sizeBytes: 4, reason: 'bar-relocation', count: 1 },
  ]);
});

test('BAR write: sub-dword writes merge into the current view and never size', () => {
  const { space } = setup();
  space.write(0x10, 4, 0xffffffff);
  // A byte write in sizing mode merges into len_val: not all-ones, so back to val.
  space.write(0x10, 1, 0xff);
  assert.equal(space.read(0x10, 4).value, L.bar0);
  // Word writes of 0xffff to both halves never form a sizing write.
  space.write(0x10, 2, 0xffff);
  space.write(0x12, 2, 0xffff);
  assert.equal(space.read(0x10, 4).value, L.bar0);
});

test('BAR reads never touch hardware', () => {
  const { space, dev } = setup();
  dev.poke(0x10, 4, 0x12345678);
  assert.equal(space.read(0x10, 4).value, L.bar0);
  assert.equal(space.read(0x12, 2).value, L.bar0 >>> 16);
});

test('BAR init: an empty, disabled, unset or busy resource reads 0 and sizes to 0', () => {
  const flags = [0, IORESOURCE.DISABLED, IORESOURCE.UNSET, IORESOURCE.BUSY];
  const resources: PciResource[] = flags.map((extra) => ({
    start: 0xf0000000n,
    sizeBytes: 0x1000n,
    flags: extra === 0 ? 0 : IORESOURCE.MEM | extra,
  }));
  const dev = new MemoryHostDevice({
    config: buildConfigImage({ bars: [0xf0000000, 0xf0000000, 0xf0000000, 0xf0000000] }),
    resources,
  });
  const { space } = setup(dev);
  for (const offset of [0x10, 0x14, 0x18, 0x1c]) {
    assert.equal(space.read(offset, 4).value, 0, `0x${offset.toString(16)}`);
    assert.equal(sized(space, offset), 0, `0x${offset.toString(16)}`);
  }
});

test('BAR init: an upper half takes the lower resource even if it is disabled (as in C)', () => {
  const dev = new MemoryHostDevice({
    config: buildConfigImage({}),
    resources: [
      {
        start: 0x12_0000_0000n,
        sizeBytes: 0x2_0000_0000n,
        flags: IORESOURCE.MEM | IORESOURCE.MEM_64 | IORESOURCE.DISABLED | 0x4,
      },
    ],
  });
  const { space } = setup(dev);
  assert.equal(space.read(0x10, 4).value, 0);
  assert.equal(space.read(0x14, 4).value, 0x12);
  assert.equal(sized(space, 0x14), 0xfffffffe);
});

test('BAR sizing mode ends when the device is reset for the next guest', () => {
  const { space } = setup();
  space.write(0x10, 4, 0xffffffff);
  space.write(0x30, 4, 0xffffffff);
  space.resetForNextGuest();
  assert.equal(space.read(0x10, 4).value, L.bar0);
  assert.equal(space.read(0x30, 4).value, L.rom);
});

test('Bridge: BAR0/BAR1 and the ROM at 0x38 are virtual; 0x30 (I/O upper) is not a ROM', () => {
  const dev = new MemoryHostDevice({
    config: buildConfigImage({ headerType: 1, bars: [0xfe000000, 0], rom: 0xfd000000 }),
    resources: [
      { start: 0xfe000000n, sizeBytes: 0x4000n, flags: IORESOURCE.MEM },
      EMPTY_RESOURCE,
      EMPTY_RESOURCE,
      EMPTY_RESOURCE,
      EMPTY_RESOURCE,
      EMPTY_RESOURCE,
      { start: 0xfd000000n, sizeBytes: 0x800n, flags: IORESOURCE.MEM },
    ],
  });
  dev.poke(0x30, 4, 0xabcd1234);
  const { space } = setup(dev);
  assert.equal(space.read(0x10, 4).value, 0xfe000000);
  assert.equal(sized(space, 0x38), 0xfffff800);
  assert.equal(space.read(0x30, 4).value, 0xabcd1234);
  // Bus numbers at 0x18 are not BARs for a bridge: dropped.
  assert.equal(space.write(0x18, 4, 0x00020100), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
});
