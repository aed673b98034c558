// SPDX-License-Identifier: MIT
// The per-byte index must give exactly what the original's list walk gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullTestDevice } from '../../../test/support/memory-host-device.js';
import type { ConfigField, FieldEntry } from './field.js';
import { FieldIndex, INDEXED_BYTES } from './field-index.js';
import { fieldIndexOf, VirtualConfigSpace } from './virtual-config-space.js';

/** The original: walk the whole list, keep intersecting entries in list order. */
function listWalk(entries: readonly FieldEntry[], offset: number, size: number): FieldEntry[] {
  return entries.filter(
    (e) => offset + size > e.byteOffset && e.byteOffset + e.field.sizeBytes > offset,
  );
}

function field(byteOffset: number, sizeBytes: 1 | 2 | 4, name = 'f'): ConfigField {
  return { name, byteOffset, sizeBytes, mask: 0, dynamic: false };
}

function assertIndexMatchesWalk(index: FieldIndex): number {
  let checked = 0;
  for (let offset = -8; offset < INDEXED_BYTES + 8; offset++) {
    for (const size of [1, 2, 4]) {
      const expected = listWalk(index.entries, offset, size);
      const actual = index.intersecting(offset, size);
      if (actual.length !== expected.length || actual.some((entry, i) => entry !== expected[i])) {
        assert.fail(
          `offset 0x${offset.toString(16)} size ${size}: index ${JSON.stringify(actual.map((e) => e.byteOffset))}, walk ${JSON.stringify(expected.map((e) => e.byteOffset))}`,
        );
      }
      checked += expected.length;
    }
  }
  return checked;
}

test('FieldIndex matches a list walk for every offset on a device with all capabilities and quirks', () => {
  const space = VirtualConfigSpace.create(fullTestDevice(), { global: { permissive: false } });
  // Quirks overlapping built-in fields, misaligned ones, and one reaching past 0xfff.
  space.addQuirkField(0x05, 1, 0);
  space.addQuirkField(0x0e, 2, 0);
  space.addQuirkField(0x3e, 2, 0);
  space.addQuirkField(0x41, 4, 0);
  space.addQuirkField(0x71, 2, 0);
  space.addQuirkField(0xe0, 4, 0);
  space.addQuirkField(0x100, 4, 0);
  space.addQuirkField(0xffd, 4, 0);
  space.addQuirkField(0xfff, 4, 0);
  const index = fieldIndexOf(space);
  assert.equal(index.entries.length, 27 + 9);
  const hits = assertIndexMatchesWalk(index);
  assert.ok(hits > 300, `the comparison must have found fields (${hits})`);
  // Still identical after the quirks are removed.
  space.resetForNextGuest();
  assert.equal(index.entries.length, 27);
  assertIndexMatchesWalk(index);
});

test('FieldIndex keeps list order, not offset order, for overlapping entries', () => {
  const index = new FieldIndex();
  const late = index.append(field(0x42, 2, 'late-low'), 0, undefined);
  const early = index.append(field(0x40, 4, 'wide'), 0, undefined);
  const third = index.append(field(0x43, 1, 'inner'), 0, undefined);
  assert.deepEqual(index.intersecting(0x40, 4), [late, early, third]);
  assert.deepEqual(index.intersecting(0x43, 1), [late, early, third]);
  assert.deepEqual(index.intersecting(0x40, 2), [early]);
});

test('FieldIndex.removeWhere() patches the bytes of removed entries only', () => {
  const index = new FieldIndex();
  const a = index.append(field(0x10, 4), 0, undefined);
  const b = index.append(field(0x12, 2), 0, undefined);
  const c = index.append(field(0x20, 1), 0, undefined);
  assert.deepEqual(
    index.removeWhere((e) => e.byteOffset === 0x20),
    [c],
  );
  assert.equal(index.entries.length, 2);
  assert.deepEqual(index.intersecting(0x20, 1), []);
  index.removeWhere((e) => e === a);
  assert.deepEqual(index.intersecting(0x10, 4), [b]);
  assert.equal(index.hasEntryAt(0x10), false);
  assert.equal(index.hasEntryAt(0x12), true);
});

test('FieldIndex refuses entries outside the index and duplicates (callers check first)', () => {
  const index = new FieldIndex();
  index.append(field(0x10, 4), 0, undefined);
  assert.throws(() => index.append(field(0x10, 1), 0, undefined), RangeError);
  assert.throws(() => index.append(field(0x1000, 4), 0, undefined), RangeError);
  assert.throws(() => index.append(field(-1, 1), 0, undefined), RangeError);
  assert.doesNotThrow(() => index.append(field(0xfff, 4), 0, undefined));
});

test('FieldIndex answers a dword access inside one field without allocating a new array', () => {
  const index = new FieldIndex();
  index.append(field(0x10, 4), 0, undefined);
  assert.equal(index.intersecting(0x10, 4), index.intersecting(0x10, 4));
  assert.equal(index.intersecting(0x10, 2), index.intersecting(0x12, 2));
});
