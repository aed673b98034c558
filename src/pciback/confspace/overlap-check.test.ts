// SPDX-License-Identifier: MIT
// "xen-pciback: Fix conf_space read/write overlap check" (2016): fields strictly inside
// a wider request must be found and merged at the right shift (spec §5.2, §5.3, §10).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FULL_DEVICE_LAYOUT as L,
  MemoryHostDevice,
  buildConfigImage,
  fullTestDevice,
} from '../../../test/support/memory-host-device.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

test('Overlap fix: a dword read at 0x3c returns the virtual line, the raw pin and raw MIN_GNT/MAX_LAT', () => {
  const dev = fullTestDevice({ image: { raw: [[0x3e, [0x12, 0x34]]] } });
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  assert.deepEqual(space.read(0x3c, 4), {
    value: (0x3412 << 16) | (0x01 << 8) | (L.irq & 0xff),
    err: 0,
  });
});

test('Overlap fix: a dword write at 0x0c writes cache line, ignores latency, filters BIST, drops 0x0e', () => {
  const dev = fullTestDevice({ image: { latencyTimer: 0x40, bist: 0x80 } });
  const space = VirtualConfigSpace.create(dev, { global: { permissive: true } });
  dev.clearCalls();
  assert.equal(space.write(0x0c, 4, 0x41ff2208), 0);
  // BIST 0x41 is neither START nor 0x80 with bit 6 changed: filtered.
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x0c, sizeBytes: 1, value: 0x08 },
  ]);
  assert.equal(dev.peek(0x0c, 4), 0x80004008);
  // BIST 0xc0 = current with START set: written.
  dev.clearCalls();
  space.write(0x0c, 4, 0xc0ff4008);
  assert.deepEqual(
    dev.callsOf('writeConfig').map((c) => [c.byteOffset, c.value]),
    [
      [0x0c, 0x08],
      [0x0f, 0xc0],
    ],
  );
});

test('Overlap fix: a word write at 0x0e reaches only the BIST field, never the header type', () => {
  const dev = fullTestDevice({ image: { bist: 0 } });
  const space = VirtualConfigSpace.create(dev, { global: { permissive: true } });
  dev.clearCalls();
  space.write(0x0e, 2, 0x4081);
  assert.deepEqual(
    dev.callsOf('writeConfig').map((c) => [c.byteOffset, c.sizeBytes, c.value]),
    [[0x0f, 1, 0x40]],
  );
});

test('Overlap fix: a dword write at 0x3c never reaches a bridge control register, even permissive', () => {
  const dev = new MemoryHostDevice({ config: buildConfigImage({ headerType: 1 }) });
  const space = VirtualConfigSpace.create(dev, { global: { permissive: true } });
  dev.clearCalls();
  space.write(0x3c, 4, 0x004b0100);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  // Only a 1- or 2-byte access at 0x3e reaches it, and only in permissive mode.
  space.write(0x3e, 2, 0x004b);
  assert.deepEqual(
    dev.callsOf('writeConfig').map((c) => [c.byteOffset, c.sizeBytes, c.value]),
    [[0x3e, 2, 0x004b]],
  );
});

test('Overlap fix: a dword read at 0x0c merges raw cache line, latency and BIST around raw 0x0e', () => {
  const dev = fullTestDevice({
    image: { cacheLineSize: 0x10, latencyTimer: 0x40, bist: 0x80, headerType: 0x80 },
    headerType: 0,
  });
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  assert.deepEqual(space.read(0x0c, 4), { value: 0x80804010, err: 0 });
});
