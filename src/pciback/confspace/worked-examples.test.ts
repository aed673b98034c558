// SPDX-License-Identifier: MIT
// The worked examples of spec §5.12 (non-permissive, no allow_interrupt_control), one
// regression test each, plus their permissive counterparts where the spec gives them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FULL_DEVICE_LAYOUT as L,
  fullTestDevice,
  recordingLogger,
  type FullTestDeviceOptions,
} from '../../../test/support/memory-host-device.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

function setup(options: FullTestDeviceOptions = {}, permissive = false) {
  const dev = fullTestDevice(options);
  const logger = recordingLogger();
  const space = VirtualConfigSpace.create(dev, { global: { permissive }, logger });
  dev.clearCalls();
  return { dev, space, logger };
}

test('§5.12: a dword read at 0x00 returns the cached vendor and device IDs, not hardware', () => {
  // An SR-IOV VF reads 0xffff for its IDs in hardware; the kernel caches the real ones.
  const { space, dev } = setup({
    vendorId: 0x8086,
    deviceId: 0x10ca,
    image: { vendorId: 0xffff, deviceId: 0xffff },
  });
  assert.equal(dev.peek(0, 4), 0xffffffff);
  assert.deepEqual(space.read(0x00, 4), { value: 0x10ca8086, err: 0 });
  assert.deepEqual(space.read(0x02, 2), { value: 0x10ca, err: 0 });
});

test('§5.12: a byte write of 0x04 at 0x05 sets INTX_DISABLE virtually, not in hardware', () => {
  const { space, dev } = setup();
  assert.equal(space.write(0x05, 1, 0x04), 0);
  assert.equal(dev.peek(0x04, 2) & 0x0400, 0);
  assert.deepEqual(dev.callsOf('intx'), []);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  assert.equal(space.read(0x04, 2).value & 0x0400, 0x0400);
  // The merge used the command field's own view: the low byte stayed what the guest read.
  assert.equal(space.read(0x04, 2).value & 0x00ff, 0);
});

test('§5.12: a word read at 0x3c returns the Linux IRQ low byte and the raw pin', () => {
  const { space, dev } = setup();
  assert.equal(dev.peek(0x3c, 1), L.hwLine);
  assert.deepEqual(space.read(0x3c, 2), { value: (0x01 << 8) | (L.irq & 0xff), err: 0 });
  // The line follows dev->irq (MSI overwrites it).
  dev.irqNumber = 0x37;
  assert.equal(space.read(0x3c, 1).value, 0x37);
});

test('§5.12: a dword write 0x00ff0010 at 0x0c writes the cache line, filters BIST and drops 0x0e', () => {
  // Hardware BIST 0x80 (capable): writing 0x00 differs beyond bit 6, so it is ignored.
  const capable = setup({ image: { bist: 0x80, latencyTimer: 0x20 } });
  assert.equal(capable.space.write(0x0c, 4, 0x00ff0010), 0);
  assert.deepEqual(capable.dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x0c, sizeBytes: 1, value: 0x10 },
  ]);
  assert.equal(capable.dev.peek(0x0c, 4), 0x80002010);
  // Hardware BIST 0x00: equal apart from bit 6, so the byte is written raw.
  const plain = setup({ image: { bist: 0x00 } });
  assert.equal(plain.space.write(0x0c, 4, 0x00ff0010), 0);
  assert.deepEqual(plain.dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x0c, sizeBytes: 1, value: 0x10 },
    { op: 'writeConfig', byteOffset: 0x0f, sizeBytes: 1, value: 0x00 },
  ]);
  // Header type (0x0e) untouched in both, also in permissive mode.
  const permissive = setup({ image: { bist: 0x00 } }, true);
  permissive.space.write(0x0c, 4, 0x00ff0010);
  assert.equal(
    permissive.dev.callsOf('writeConfig').some((c) => c.byteOffset === 0x0e),
    false,
  );
});

test('§5.12: BIST accepts exactly "start" (0x40) or the current value with bit 6 changed', () => {
  const { space, dev } = setup({ image: { bist: 0x83 } });
  space.write(0x0f, 1, 0x00); // refused
  space.write(0x0f, 1, 0xc3); // current with START: allowed
  space.write(0x0f, 1, 0x40); // exactly START: allowed
  space.write(0x0f, 1, 0x41); // refused (differs from current 0x40 beyond bit 6)
  assert.deepEqual(
    dev.callsOf('writeConfig').map((c) => c.value),
    [0xc3, 0x40],
  );
  assert.deepEqual(
    space.deniedWrites().map((d) => [d.byteOffset, d.reason, d.count]),
    [[0x0f, 'bist-filtered', 2]],
  );
});

test('§5.12: a dword write of 0xffffffff at 0x10 makes reads return len_val until a normal write', () => {
  const { space, dev } = setup();
  assert.equal(space.read(0x10, 4).value, L.bar0);
  assert.equal(space.write(0x10, 4, 0xffffffff), 0);
  assert.equal(space.read(0x10, 4).value, 0xfffff000);
  assert.equal(space.write(0x10, 4, L.bar0), 0);
  assert.equal(space.read(0x10, 4).value, L.bar0);
  // Hardware still had the address, so nothing was written.
  assert.deepEqual(dev.callsOf('writeConfig'), []);
});

test('§5.12: a word write at 0x06 (status) is dropped with one warning unless permissive', () => {
  const { space, dev, logger } = setup({ image: { status: 0xf900 } });
  assert.equal(space.write(0x06, 2, 0xf900), 0);
  assert.equal(space.write(0x06, 2, 0xf900), 0);
  assert.equal(dev.callsOf('writeConfig').length, 0);
  assert.equal(logger.at('warn').length, 1);
  const permissive = setup({ image: { status: 0xf900 } }, true);
  assert.equal(permissive.space.write(0x06, 2, 0xf900), 0);
  assert.deepEqual(permissive.dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x06, sizeBytes: 2, value: 0xf900 },
  ]);
  assert.equal(permissive.logger.at('warn').length, 0);
});

test('§5.12: a dword write at 0x100 is dropped unless permissive or a quirk covers it', () => {
  const dropped = setup();
  assert.equal(dropped.space.write(0x100, 4, 0x12345678), 0);
  assert.deepEqual(dropped.dev.callsOf('writeConfig'), []);
  const permissive = setup({}, true);
  assert.equal(permissive.space.write(0x100, 4, 0x12345678), 0);
  assert.equal(permissive.dev.peek(0x100, 4), 0x12345678);
  const quirked = setup();
  quirked.space.addQuirkField(0x100, 4, 0xffffffff);
  assert.equal(quirked.space.write(0x100, 4, 0x12345678), 0);
  assert.equal(quirked.dev.peek(0x100, 4), 0x12345678);
});
