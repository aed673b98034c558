// SPDX-License-Identifier: MIT
// Quirk fields and the sysfs `quirks` syntax (spec §5.9, §6.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullTestDevice } from '../../../test/support/memory-host-device.js';
import {
  checkQuirkRegAndMask,
  checkQuirkSize,
  parseQuirkFieldSpec,
  parseQuirkSpec,
} from './quirks.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

function setup() {
  const dev = fullTestDevice();
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  dev.clearCalls();
  return { dev, space };
}

test('parseQuirkSpec() reads DDDD:BB:DD.F-REG:SIZE:MASK in hex', () => {
  const q = parseQuirkSpec('0000:03:00.1-e0:4:ffffffff');
  assert.equal(q.address.toString(), '0000:03:00.1');
  assert.deepEqual([q.reg, q.sizeBytes, q.mask], [0xe0, 4, 0xffffffff]);
});

test('parseQuirkSpec() accepts the domain-less form, 0x prefixes and surrounding whitespace', () => {
  const q = parseQuirkSpec('  0a:1f.7-0x100:2:0xFFFF\n');
  assert.equal(q.address.toString(), '0000:0a:1f.7');
  assert.deepEqual([q.reg, q.sizeBytes, q.mask], [0x100, 2, 0xffff]);
});

test('parseQuirkSpec() errors name the part that is wrong', () => {
  const cases: [string, RegExp][] = [
    ['0000:03:00.0', /"-" is missing/],
    ['0000:03:00.9-e0:4:0', /address is wrong.*function/],
    ['zz:00.0-e0:4:0', /address is wrong/],
    ['03:00.0-e0:4', /REG:SIZE:MASK.*2 part/],
    ['03:00.0-e0:4:0:1', /4 part/],
    ['03:00.0-g0:4:0', /register "g0"/],
    ['03:00.0-e0::0', /size ""/],
    ['03:00.0-e0:4:123456789', /mask "123456789"/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(
      () => parseQuirkSpec(text),
      (err) => err instanceof SyntaxError && pattern.test(err.message),
      text,
    );
  }
});

test('parseQuirkSpec() applies the register and mask checks made before the device lookup', () => {
  assert.throws(() => parseQuirkSpec('03:00.0-1000:4:0'), /register "0x1000"/);
  assert.throws(() => parseQuirkSpec('03:00.0-e0:1:100'), /does not fit in 1 byte/);
  assert.throws(() => parseQuirkSpec('03:00.0-e0:0:1'), /does not fit in 0 byte/);
  // The size rule comes after the lookup in the original: parsing accepts size 3.
  assert.equal(parseQuirkSpec('03:00.0-e0:3:ff').sizeBytes, 3);
});

test('parseQuirkFieldSpec() parses the REG:SIZE:MASK part alone', () => {
  assert.deepEqual(parseQuirkFieldSpec('3c:1:ff'), { reg: 0x3c, sizeBytes: 1, mask: 0xff });
  assert.throws(() => parseQuirkFieldSpec('3c-1-ff'), SyntaxError);
});

test('checkQuirkRegAndMask() and checkQuirkSize() throw RangeError', () => {
  assert.doesNotThrow(() => {
    checkQuirkRegAndMask({ reg: 0xfff, sizeBytes: 4, mask: 0xffffffff });
  });
  assert.throws(() => {
    checkQuirkRegAndMask({ reg: -1, sizeBytes: 4, mask: 0 });
  }, RangeError);
  assert.throws(() => {
    checkQuirkRegAndMask({ reg: 0x10, sizeBytes: 2, mask: 0x10000 });
  }, RangeError);
  assert.throws(() => {
    checkQuirkSize(3);
  }, /size "3"/);
  assert.throws(() => {
    checkQuirkSize(8);
  }, RangeError);
});

test('addQuirkField() makes a register guest read/write without permissive mode', () => {
  const { space, dev } = setup();
  // The ABI doc's example: register 0xe0 becomes pass-through.
  assert.equal(space.write(0xe0, 4, 0x11223344), 0);
  assert.equal(dev.peek(0xe0, 4), 0);
  space.addQuirkField(0xe0, 4, 0xffffffff);
  assert.equal(space.write(0xe0, 4, 0x11223344), 0);
  assert.equal(dev.peek(0xe0, 4), 0x11223344);
  dev.poke(0xe0, 4, 0x55667788);
  assert.equal(space.read(0xe0, 4).value, 0x55667788);
  assert.equal(space.read(0xe2, 2).value, 0x5566);
  assert.deepEqual(space.quirkFields(), [{ byteOffset: 0xe0, sizeBytes: 4, mask: 0xffffffff }]);
});

test('addQuirkField() at an existing field offset is a silent no-op', () => {
  const { space, dev } = setup();
  space.addQuirkField(0x10, 4, 0); // BAR0
  space.addQuirkField(0xe0, 2, 0);
  space.addQuirkField(0xe0, 4, 0); // duplicate quirk
  assert.deepEqual(space.quirkFields(), [{ byteOffset: 0xe0, sizeBytes: 2, mask: 0 }]);
  space.write(0x10, 4, 0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
});

test('addQuirkField() validates like the original (RangeError -> -EINVAL in the stub)', () => {
  const { space } = setup();
  assert.throws(() => {
    space.addQuirkField(0x1000, 4, 0);
  }, RangeError);
  assert.throws(() => {
    space.addQuirkField(0xe0, 3, 0);
  }, RangeError);
  assert.throws(() => {
    space.addQuirkField(0xe0, 2, 0x1ffff);
  }, RangeError);
  assert.deepEqual(space.quirkFields(), []);
});

test('A quirk over MIN_GNT/MAX_LAT lets a dword write at 0x3c reach them', () => {
  const { space, dev } = setup();
  space.addQuirkField(0x3e, 2, 0xffff);
  space.write(0x3c, 4, 0xbeef00ff);
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x3e, sizeBytes: 2, value: 0xbeef },
  ]);
});

test('A quirk overlapping a built-in field merges after it (list order wins)', () => {
  const { space, dev } = setup();
  // 0x05 is inside the command field; the quirk's raw byte replaces the virtual one.
  space.write(0x04, 2, 0x0400); // virtual INTX_DISABLE
  assert.equal(space.read(0x04, 2).value, 0x0400);
  space.addQuirkField(0x05, 1, 0xff);
  assert.equal(space.read(0x04, 2).value, 0x0000);
  // A byte write at 0x05 runs the command handler (virtual) and then the raw quirk write.
  space.write(0x05, 1, 0x04);
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x05, sizeBytes: 1, value: 0x04 },
  ]);
});

test('A misaligned quirk answers the PCI core\'s "bad register number" (-2)', () => {
  const { space, dev } = setup();
  space.addQuirkField(0xe1, 2, 0);
  assert.deepEqual(space.read(0xe0, 4), { value: 0, err: -2 });
  assert.equal(space.write(0xe2, 1, 0xff), -2);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
});

test('Quirk fields are dropped when the device is reset for the next guest', () => {
  const { space, dev } = setup();
  space.addQuirkField(0xe0, 4, 0);
  space.addQuirkField(0xfff, 1, 0);
  space.resetForNextGuest();
  assert.deepEqual(space.quirkFields(), []);
  assert.equal(space.write(0xe0, 4, 1), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  // They can be added again.
  space.addQuirkField(0xe0, 4, 0);
  assert.equal(space.quirkFields().length, 1);
});

test('fields() lists every field with its mask, quirks last (the sysfs listing)', () => {
  const { space } = setup();
  space.addQuirkField(0xe0, 2, 0xabcd);
  const last = space.fields().at(-1);
  assert.deepEqual(last, {
    name: 'quirk',
    byteOffset: 0xe0,
    sizeBytes: 2,
    mask: 0xabcd,
    dynamic: true,
  });
});
