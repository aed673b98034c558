// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RegisterFile, applyMaskedWrite } from './register-file.js';

describe('applyMaskedWrite()', () => {
  test('keeps read-only bits, takes writable bits and clears RW1C bits written with 1', () => {
    // bits 0-3 RW, bits 8-11 RW1C, the rest RO
    assert.equal(applyMaskedWrite(0x0f5a, 0x0000, { writable: 0x000f, rw1c: 0x0f00 }), 0x0f50);
    assert.equal(applyMaskedWrite(0x0f5a, 0x0305, { writable: 0x000f, rw1c: 0x0f00 }), 0x0c55);
    assert.equal(applyMaskedWrite(0xf000, 0xffff, { writable: 0x000f, rw1c: 0x0f00 }), 0xf00f);
  });

  test('never sets an RW1C bit', () => {
    assert.equal(applyMaskedWrite(0x0000, 0xffff, { writable: 0x0000, rw1c: 0xffff }), 0x0000);
  });
});

describe('RegisterFile', () => {
  function file(): RegisterFile {
    const image = new Uint8Array(64);
    image.set([0x34, 0x12, 0xff, 0x00], 0x10);
    const regs = new RegisterFile(image);
    regs.setMask('writable', 0x10, 2, 0x00ff);
    regs.setMask('rw1c', 0x12, 1, 0xf0);
    regs.setMask('sticky', 0x12, 1, 0x30);
    return regs;
  }

  test('write() applies the masks byte by byte, whatever the access width', () => {
    const regs = file();
    regs.write(0x10, 4, 0x00f0_5656);
    assert.equal(regs.read(0x10, 2), 0x1256, 'RO high byte kept, RW low byte written');
    assert.equal(regs.read(0x12, 1), 0x0f, 'RW1C bits cleared where written 1, RO low nibble kept');
    regs.write(0x12, 1, 0x00);
    assert.equal(regs.read(0x12, 1), 0x0f, 'writing 0 to RW1C bits changes nothing');
  });

  test('set() ignores the masks (hardware-internal updates)', () => {
    const regs = file();
    regs.set(0x10, 2, 0xbeef);
    assert.equal(regs.read(0x10, 2), 0xbeef);
  });

  test('reset() restores defaults except sticky bits', () => {
    const regs = file();
    regs.deriveDefaults();
    regs.set(0x12, 1, 0xf5);
    regs.write(0x10, 1, 0x99);
    regs.reset();
    assert.equal(regs.read(0x10, 1), 0x00, 'RW bits default to 0');
    assert.equal(regs.read(0x11, 1), 0x12, 'RO bits default to the image');
    assert.equal(regs.read(0x12, 1), 0x3f, 'sticky RW1C bits survive, the other RW1C bits clear');
  });

  test('deriveDefaults() keeps sticky bits of the image and zeroes programmable ones', () => {
    const regs = file();
    regs.deriveDefaults();
    assert.equal(regs.defaultValue(0x10, 2), 0x1200);
    assert.equal(regs.defaultValue(0x12, 1), 0x3f);
  });

  test('loadDefaults() rejects an image of another size', () => {
    assert.throws(() => {
      file().loadDefaults(new Uint8Array(256));
    }, RangeError);
  });
});
