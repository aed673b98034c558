// SPDX-License-Identifier: MIT
// Extended configuration space 0x100-0xfff (spec §5.10): no built-in fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FULL_DEVICE_LAYOUT as L,
  MemoryHostDevice,
  buildConfigImage,
  fullTestDevice,
} from '../../../test/support/memory-host-device.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

test('Extended space: extended capabilities read raw (visible, read-only)', () => {
  const dev = fullTestDevice();
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  assert.deepEqual(space.read(L.aer, 4), { value: 0x14010001, err: 0 });
  assert.deepEqual(space.read(L.aer + 4, 4), { value: dev.peek(L.aer + 4, 4), err: 0 });
  assert.deepEqual(space.read(0xffc, 4), { value: 0, err: 0 });
  assert.equal(space.write(L.aer + 4, 4, 0xffffffff), 0);
  assert.equal(dev.peek(L.aer + 4, 4), 0x44332211);
});

test('Extended space: writes go to hardware in permissive mode', () => {
  const dev = fullTestDevice();
  const space = VirtualConfigSpace.create(dev, { global: { permissive: true } });
  assert.equal(space.write(0xffc, 4, 0xcafef00d), 0);
  assert.equal(dev.peek(0xffc, 4), 0xcafef00d);
});

test('Extended space: on a 256-byte device the platform answers -22 with all-ones', () => {
  const dev = new MemoryHostDevice({ config: buildConfigImage({}), configSizeBytes: 256 });
  const space = VirtualConfigSpace.create(dev, { global: { permissive: true } });
  assert.deepEqual(space.read(0x100, 4), { value: 0xffffffff, err: -22 });
  assert.deepEqual(space.read(0x100, 1), { value: 0xff, err: -22 });
  assert.equal(space.write(0x100, 4, 0), -22);
});

test('Extended space: a quirk makes one extended register guest-writable', () => {
  const dev = fullTestDevice();
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  space.addQuirkField(L.aer + 8, 4, 0xffffffff);
  assert.equal(space.write(L.aer + 8, 4, 0x00100000), 0);
  assert.equal(dev.peek(L.aer + 8, 4), 0x00100000);
  assert.equal(space.write(L.aer + 12, 4, 0x1), 0);
  assert.equal(dev.peek(L.aer + 12, 4), 0);
});
