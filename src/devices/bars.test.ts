// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { INFERRED_SIZE_LIMITS, describeBars, inferBarSize, inferRomSize } from './bars.js';
import { ConfigImageBuilder } from './config-image-builder.js';
import { SimulatedFunction } from './simulated-function.js';

/** A type-0 function with the given raw BAR values (and ROM). */
function withBars(
  values: Record<number, number>,
  sizes: [number, bigint][],
  rom?: number,
): SimulatedFunction {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x1af4,
    deviceId: 0x1000,
    revision: 0,
    classCode: 0x020000,
    headerType: 0,
  });
  for (const [index, value] of Object.entries(values)) image.set32(0x10 + 4 * Number(index), value);
  if (rom !== undefined) image.set32(0x30, rom);
  return new SimulatedFunction(image.build(), { barSizes: new Map(sizes) });
}

function size(fn: SimulatedFunction, offset: number): number {
  const original = fn.configRead(offset, 4);
  fn.configWrite(offset, 4, 0xffffffff);
  const mask = fn.configRead(offset, 4);
  fn.configWrite(offset, 4, original);
  return mask;
}

describe('BAR sizing', () => {
  test('an I/O BAR reads back its size mask with the I/O bit after all-ones', () => {
    const fn = withBars({ 0: 0xc061 }, [[0, 0x20n]]);
    assert.equal(fn.configRead(0x10, 4), 0xc061 & ~0x2, 'reserved bit 1 reads 0');
    assert.equal(size(fn, 0x10), 0xffffffe1);
    assert.equal(fn.configRead(0x10, 4), 0xc061 & ~0x2, 'the address comes back');
  });

  test('a 32-bit memory BAR keeps its type bits and clears address bits below its size', () => {
    const fn = withBars({ 0: 0xfeb00000 }, [[0, 0x1000n]]);
    assert.equal(size(fn, 0x10), 0xfffff000);
    fn.configWrite(0x10, 4, 0x12345678);
    assert.equal(fn.configRead(0x10, 4), 0x12345000);
  });

  test('a 64-bit prefetchable BAR sizes through both halves', () => {
    const fn = withBars({ 2: 0x8000000c, 3: 0x3 }, [[2, 0x4000n]]);
    assert.equal(size(fn, 0x18), 0xffffc00c);
    assert.equal(size(fn, 0x1c), 0xffffffff, 'the upper half is fully writable');
    assert.deepEqual(
      fn.bars().map((b) => [b.index, b.kind, b.prefetchable, b.address, b.sizeBytes]),
      [[2, 'mem64', true, 0x380000000n, 0x4000n]],
    );
  });

  test('a 64-bit BAR of 8 GiB hardwires the low address bits of its upper half', () => {
    const fn = withBars({ 0: 0x0000000c, 1: 0x4 }, [[0, 8n << 30n]]);
    assert.equal(size(fn, 0x10), 0x0000000c);
    assert.equal(size(fn, 0x14), 0xfffffffe);
  });

  test('unimplemented BARs read 0 and ignore writes', () => {
    const fn = withBars({ 0: 0xfeb00000 }, [[0, 0x1000n]]);
    for (const offset of [0x14, 0x18, 0x1c, 0x20, 0x24]) assert.equal(size(fn, offset), 0);
  });

  test('an explicit size of 0 removes a BAR the image shows', () => {
    const fn = withBars({ 0: 0xfeb00000 }, [[0, 0n]]);
    assert.equal(fn.configRead(0x10, 4), 0);
    assert.deepEqual(fn.bars(), []);
  });

  test('the expansion ROM keeps its enable bit and is at least 2 KiB', () => {
    const fn = withBars({}, [[6, 0x10000n]], 0xfeb80001);
    assert.equal(fn.configRead(0x30, 4), 0xfeb80001);
    fn.configWrite(0x30, 4, 0xffffffff);
    assert.equal(fn.configRead(0x30, 4), 0xffff0001, 'size mask plus the enable bit');
    fn.configWrite(0x30, 4, 0xfffffffe);
    assert.equal(fn.configRead(0x30, 4), 0xffff0000, 'enable is RW');
    assert.throws(() => withBars({}, [[6, 0x400n]], 0xfeb80000), RangeError);
  });

  test('invalid explicit sizes are programmer errors', () => {
    assert.throws(() => withBars({ 0: 0xfeb00000 }, [[0, 0x1800n]]), RangeError);
    assert.throws(() => withBars({ 0: 0xc001 }, [[0, 0x20000n]]), RangeError);
    assert.throws(() => withBars({ 0: 0xfeb00000 }, [[0, 8n << 30n]]), RangeError);
  });
});

describe('inferBarSize()', () => {
  test('uses the natural alignment of the address', () => {
    assert.equal(inferBarSize('mem32', 0xfeb00000n), 0x100000n);
    assert.equal(inferBarSize('io', 0x1020n), 0x20n);
  });

  test('is bounded by the next BAR above and by the limits', () => {
    assert.equal(
      inferBarSize('mem32', 0xe0000000n, { neighbours: [0xe0800000n, 0xd0000000n] }),
      0x800000n,
    );
    assert.equal(inferBarSize('mem32', 0x80000000n), INFERRED_SIZE_LIMITS.mem32Max);
    assert.equal(inferBarSize('io', 0x8000n), INFERRED_SIZE_LIMITS.ioMax);
    assert.equal(inferBarSize('mem64', 0x20000000000n), INFERRED_SIZE_LIMITS.mem64Max);
  });

  test('shares the gap among VFs for SR-IOV VF BARs', () => {
    assert.equal(
      inferBarSize('mem64', 0xd2840000n, { neighbours: [0xd2860000n], spanMultiplier: 8n }),
      0x4000n,
    );
  });

  test('gives unassigned BARs the documented defaults', () => {
    assert.equal(inferBarSize('mem64', 0n), INFERRED_SIZE_LIMITS.memDefault);
    assert.equal(inferBarSize('io', 0n), INFERRED_SIZE_LIMITS.ioDefault);
  });

  test('inferRomSize() stays within 2 KiB .. 16 MiB', () => {
    assert.equal(inferRomSize(0xfeb80800n), 0x800n);
    assert.equal(inferRomSize(0xc0000000n), 16n << 20n);
  });
});

describe('describeBars()', () => {
  test('treats a 64-bit BAR in the last slot as 32-bit', () => {
    const regs = new Map([[0x24, 0xf0000004]]);
    const bars = describeBars((o) => regs.get(o) ?? 0, {
      firstBarOffset: 0x10,
      barCount: 6,
      sizes: new Map(),
    });
    assert.deepEqual(
      bars.map((b) => [b.index, b.kind]),
      [[5, 'mem32']],
    );
  });
});
