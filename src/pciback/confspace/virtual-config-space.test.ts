// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FULL_DEVICE_LAYOUT as L,
  MemoryHostDevice,
  buildConfigImage,
  fullTestDevice,
  recordingLogger,
} from '../../../test/support/memory-host-device.js';
import { PCI_CAP_ID } from '../../abi/pci-regs.js';
import { isPcibackError } from '../../errors.js';
import { CONFSPACE_ERROR, VirtualConfigSpace } from './virtual-config-space.js';
import { DENIED_WRITE_REASON, OUT_OF_RANGE_OFFSET } from './audit.js';

function setup(options: { permissive?: boolean } = {}) {
  const dev = fullTestDevice();
  const global = { permissive: options.permissive ?? false };
  const logger = recordingLogger();
  const space = VirtualConfigSpace.create(dev, { global, logger });
  dev.clearCalls();
  return { dev, global, logger, space };
}

test('VirtualConfigSpace.create() builds the field list in the original order', () => {
  const { space } = setup();
  const list = space.fields().map((f) => `${f.name}@${f.byteOffset.toString(16)}/${f.sizeBytes}`);
  assert.deepEqual(list, [
    'vendor-id@0/2',
    'device-id@2/2',
    'command@4/2',
    'interrupt-line@3c/1',
    'interrupt-pin@3d/1',
    'cache-line-size@c/1',
    'latency-timer@d/1',
    'bist@f/1',
    'bar@10/4',
    'bar@14/4',
    'bar@18/4',
    'bar@1c/4',
    'bar@20/4',
    'bar@24/4',
    'rom@30/4',
    // Registration order VPD, PM, MSI, MSI-X, not chain order (PM comes first there).
    'cap-header@50/2',
    'vpd-address@52/2',
    'vpd-data@54/4',
    'cap-header@40/2',
    'pm-pmc@42/2',
    'pm-control@44/2',
    'pm-bridge-ext@46/1',
    'pm-data@47/1',
    'cap-header@60/2',
    'msi-flags@62/2',
    'cap-header@70/2',
    'msix-flags@72/2',
  ]);
});

test('VirtualConfigSpace.create() uses header_1 for a bridge: two BARs and the ROM at 0x38', () => {
  const dev = new MemoryHostDevice({ config: buildConfigImage({ headerType: 1 }) });
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  const offsets = space.fields().map((f) => f.byteOffset);
  assert.deepEqual(offsets.slice(8), [0x10, 0x14, 0x38]);
});

test('VirtualConfigSpace.create() refuses header types other than 0 and 1', () => {
  const dev = new MemoryHostDevice({ config: buildConfigImage({ headerType: 2 }) });
  assert.throws(
    () => VirtualConfigSpace.create(dev, { global: { permissive: false } }),
    (err) => isPcibackError(err, CONFSPACE_ERROR.unsupportedHeader),
  );
});

test('VirtualConfigSpace.create() fails when an init handler fails', () => {
  const dev = fullTestDevice();
  dev.failReadsAt(0x04, -19);
  assert.throws(
    () => VirtualConfigSpace.create(dev, { global: { permissive: false } }),
    (err) =>
      isPcibackError(err, CONFSPACE_ERROR.initFailed) &&
      /command.*-19/.test((err as Error).message),
  );
});

test('VirtualConfigSpace.create() fails when two capabilities overlap (duplicate field offset)', () => {
  // PM at 0x40 owns 0x44 (PMCSR); an MSI capability at 0x44 puts its header there.
  const dev = new MemoryHostDevice({
    config: buildConfigImage({
      capabilities: [
        { id: PCI_CAP_ID.PM, byteOffset: 0x40 },
        { id: PCI_CAP_ID.MSI, byteOffset: 0x44 },
      ],
    }),
  });
  assert.throws(
    () => VirtualConfigSpace.create(dev, { global: { permissive: false } }),
    (err) =>
      isPcibackError(err, CONFSPACE_ERROR.initFailed) && /overlaps/.test((err as Error).message),
  );
});

test('VirtualConfigSpace.create() clears PME_Enable in hardware and nothing else', () => {
  const dev = fullTestDevice();
  assert.equal(dev.peek(L.pm + 4, 2), 0x2108);
  VirtualConfigSpace.create(dev, { global: { permissive: false } });
  assert.equal(dev.peek(L.pm + 4, 2), 0x2008);
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: L.pm + 4, sizeBytes: 2, value: 0x2008 },
  ]);
});

test('read() answers -2 with value 0 for bad sizes and misaligned offsets', () => {
  const { space, dev } = setup();
  dev.clearCalls();
  for (const [offset, size] of [
    [0, 3],
    [0, 0],
    [0, -1],
    [0, 8],
    [2, 4],
    [1, 2],
    [-2, 4],
    [-1, 2],
  ] as const) {
    assert.deepEqual(space.read(offset, size), { value: 0, err: -2 }, `${offset}/${size}`);
  }
  assert.equal(dev.calls.length, 0);
});

test('read() passes aligned negative and out-of-range offsets to the platform (-22, all-ones)', () => {
  const { space } = setup();
  assert.deepEqual(space.read(-4, 4), { value: 0xffffffff, err: -22 });
  assert.deepEqual(space.read(-2, 2), { value: 0xffff, err: -22 });
  assert.deepEqual(space.read(-1, 1), { value: 0xff, err: -22 });
  assert.deepEqual(space.read(4096, 4), { value: 0xffffffff, err: -22 });
  assert.deepEqual(space.read(0x7ffffffc, 4), { value: 0xffffffff, err: -22 });
  assert.deepEqual(space.read(-0x80000000, 4), { value: 0xffffffff, err: -22 });
});

test('read() and write() reject offsets and sizes that are not int32 (caller bugs)', () => {
  const { space } = setup();
  assert.throws(() => space.read(0.5, 4), RangeError);
  assert.throws(() => space.read(2 ** 31, 4), RangeError);
  assert.throws(() => space.read(0, Number.NaN), RangeError);
  assert.throws(() => space.write(0, 4, 1.5), RangeError);
  assert.throws(() => space.write(0, 4, 2 ** 32), RangeError);
  assert.doesNotThrow(() => space.write(0x40, 4, -1));
});

test('read() returns only the requested bytes of a wider field', () => {
  const { space } = setup();
  assert.deepEqual(space.read(0x00, 1), { value: 0x86, err: 0 });
  assert.deepEqual(space.read(0x01, 1), { value: 0x80, err: 0 });
  assert.deepEqual(space.read(0x12, 2), { value: 0xfeb0, err: 0 });
});

test('read() reports success when a failed hardware read is overwritten by field reads', () => {
  const { space, dev } = setup();
  dev.failReadsAt(0x00, -22);
  // The dword read at 0 fails in hardware, but the vendor and device fields cover it.
  assert.deepEqual(space.read(0x00, 4), { value: 0x10c98086, err: 0 });
});

test('read() stops at a failing field read and returns the value merged so far', () => {
  const { space, dev } = setup();
  dev.failReadsAt(L.pm + 2, -5);
  // Hardware dword is read fine; the cap header merges; PMC fails: its PME bits stay raw.
  const hw = dev.peek(L.pm, 4);
  assert.deepEqual(space.read(L.pm, 4), { value: hw, err: -5 });
});

test('write() answers -2 for invalid requests and touches nothing', () => {
  const { space, dev } = setup({ permissive: true });
  assert.equal(space.write(0x04, 3, 7), -2);
  assert.equal(space.write(0x06, 4, 7), -2);
  assert.equal(space.write(0x05, 2, 7), -2);
  assert.equal(dev.calls.length, 0);
});

test('write() drops uncovered writes with success, warns once and audits each', () => {
  const { space, dev, logger } = setup();
  assert.equal(space.write(0x06, 2, 0xffff), 0);
  assert.equal(space.write(0x08, 4, 0x12345678), 0);
  assert.equal(space.write(0x06, 2, 0xffff), 0);
  assert.equal(dev.callsOf('writeConfig').length, 0);
  assert.equal(logger.at('warn').length, 1);
  assert.match(logger.at('warn')[0]?.msg ?? '', /0x6 \(size 2\)/);
  assert.deepEqual(space.deniedWrites(), [
    { byteOffset: 0x06, sizeBytes: 2, reason: DENIED_WRITE_REASON.uncovered, count: 2 },
    { byteOffset: 0x08, sizeBytes: 4, reason: DENIED_WRITE_REASON.uncovered, count: 1 },
  ]);
});

test('write() drops aligned negative offsets with success unless permissive (then -22)', () => {
  const { space, global } = setup();
  assert.equal(space.write(-4, 4, 0), 0);
  assert.deepEqual(space.deniedWrites(), [
    { byteOffset: OUT_OF_RANGE_OFFSET, sizeBytes: 4, reason: 'uncovered-register', count: 1 },
  ]);
  global.permissive = true;
  assert.equal(space.write(-4, 4, 0), -22);
  assert.equal(space.write(4096, 4, 0), -22);
});

test('write() sends uncovered writes to hardware in global or per-device permissive mode', () => {
  const { space, dev, global } = setup();
  global.permissive = true;
  assert.equal(space.write(0x06, 2, 0x1234), 0);
  global.permissive = false;
  space.policy.permissive = true;
  assert.equal(space.write(0x2c, 4, 0xdeadbeef), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x06, sizeBytes: 2, value: 0x1234 },
    { op: 'writeConfig', byteOffset: 0x2c, sizeBytes: 4, value: 0xdeadbeef },
  ]);
});

test('write() uses only the low bytes of the value for narrow uncovered writes', () => {
  const { space, dev } = setup({ permissive: true });
  space.write(0x09, 1, 0xabcdef12);
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x09, sizeBytes: 1, value: 0x12 },
  ]);
});

test('write() keeps read-only fields read-only even in permissive mode', () => {
  const { space, dev } = setup({ permissive: true });
  assert.equal(space.write(0x00, 4, 0), 0); // vendor + device IDs
  assert.equal(space.write(0x3c, 1, 0x55), 0); // interrupt line
  assert.equal(space.write(L.pm + 2, 2, 0xffff), 0); // PMC
  assert.equal(space.write(L.vpd + 4, 4, 0), 0); // VPD data
  assert.equal(dev.callsOf('writeConfig').length, 0);
  assert.deepEqual(
    space.deniedWrites().map((d) => [d.byteOffset, d.reason]),
    [
      [0x00, 'read-only-field'],
      [0x02, 'read-only-field'],
      [0x3c, 'read-only-field'],
      [L.pm + 2, 'read-only-field'],
      [L.vpd + 4, 'read-only-field'],
    ],
  );
});

test('write() does not audit a read-only field written with the value the guest reads', () => {
  const { space } = setup();
  const ids = space.read(0x00, 4).value;
  assert.equal(space.write(0x00, 4, ids), 0);
  assert.deepEqual(space.deniedWrites(), []);
});

test('write() calls onIntxChange after a successful write that changed enable_intx', () => {
  const dev = fullTestDevice();
  const seen: boolean[] = [];
  const space = VirtualConfigSpace.create(dev, {
    global: { permissive: false },
    onIntxChange: (enabled) => seen.push(enabled),
  });
  assert.equal(space.intxEnabled, false);
  space.write(0x04, 2, 0x0002);
  space.write(0x04, 2, 0x0006); // still enabled: no change
  space.write(0x04, 2, 0x0000);
  assert.deepEqual(seen, [true, false]);
  assert.equal(space.intxEnabled, false);
});

test('write() returns the enable error and leaves cmd.val and enable_intx alone', () => {
  const dev = fullTestDevice({ enableResult: -16 });
  const seen: boolean[] = [];
  const space = VirtualConfigSpace.create(dev, {
    global: { permissive: false },
    onIntxChange: (enabled) => seen.push(enabled),
  });
  assert.equal(space.write(0x04, 2, 0x0002), -16);
  assert.equal(space.read(0x04, 2).value, 0);
  assert.equal(space.intxEnabled, false);
  assert.deepEqual(seen, []);
});

test('clearIntxEnabled() resets enable_intx as control_isr(reset) does', () => {
  const { space } = setup();
  space.write(0x04, 2, 0x0002);
  assert.equal(space.intxEnabled, true);
  space.clearIntxEnabled();
  assert.equal(space.intxEnabled, false);
});

test('resetForNextGuest() leaves sizing mode, drops quirks and keeps cmd.val', () => {
  const { space, dev } = setup();
  space.write(0x04, 2, 0x0406);
  space.write(0x10, 4, 0xffffffff);
  space.addQuirkField(0xe0, 4, 0);
  dev.clearCalls();
  space.resetForNextGuest();
  assert.equal(space.read(0x10, 4).value, L.bar0);
  assert.deepEqual(space.quirkFields(), []);
  assert.equal(space.read(0x04, 2).value & 0x0403, 0x0402);
  // Reset handlers never write the command register (XSA-120 addendum).
  assert.equal(dev.callsOf('writeConfig').length, 0);
});

test('release() runs once and any later access throws CONFSPACE_RELEASED', () => {
  const { space } = setup();
  space.release();
  space.release();
  assert.deepEqual(space.fields(), []);
  assert.throws(
    () => space.read(0, 4),
    (err) => isPcibackError(err, CONFSPACE_ERROR.released),
  );
  assert.throws(
    () => space.write(0, 4, 0),
    (err) => isPcibackError(err, CONFSPACE_ERROR.released),
  );
});

test('policy defaults to all off and is the live object given to create()', () => {
  const dev = fullTestDevice();
  const policy = { permissive: false, allowInterruptControl: false };
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false }, policy });
  assert.equal(space.policy, policy);
  const other = VirtualConfigSpace.create(fullTestDevice(), { global: { permissive: false } });
  assert.deepEqual(other.policy, { permissive: false, allowInterruptControl: false });
});
