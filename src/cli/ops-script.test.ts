// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHex, formatOffset, parseOpsScript } from './ops-script.js';

test('parseOpsScript() reads hex and decimal numbers and skips comments', () => {
  const ops = parseOpsScript(
    '# header\nread 0x10 4\n\nwrite 4 2 0x0007 # enable\nhw-read 0x04 2\n',
  );
  assert.deepEqual(ops, [
    { op: 'read', offset: 0x10, size: 4, line: 2 },
    { op: 'write', offset: 4, size: 2, value: 7, line: 4 },
    { op: 'hw-read', offset: 4, size: 2, line: 5 },
  ]);
});

test('parseOpsScript() keeps bad sizes and negative offsets for the virtualizer to judge', () => {
  assert.deepEqual(parseOpsScript('read -4 4\nread 0x10 3'), [
    { op: 'read', offset: -4, size: 4, line: 1 },
    { op: 'read', offset: 0x10, size: 3, line: 2 },
  ]);
});

test('parseOpsScript() names the line of an unknown op, a bad number or a wrong arity', () => {
  assert.throws(() => parseOpsScript('read 0 4\npoke 0 4'), /line 2: unknown op "poke"/);
  assert.throws(() => parseOpsScript('read 0xZZ 4'), /line 1: offset "0xZZ" is not a number/);
  assert.throws(() => parseOpsScript('write 0 4'), /line 1: "write" takes 3 arguments, got 2/);
  assert.throws(() => parseOpsScript('write 0 4 0x100000000'), /line 1: value .* out of range/);
});

test('formatHex() pads to the access size and formatOffset() shows two digits at least', () => {
  assert.equal(formatHex(0xfebf0000, 4), '0xfebf0000');
  assert.equal(formatHex(0, 2), '0x0000');
  assert.equal(formatHex(0xff, 1), '0xff');
  assert.equal(formatOffset(0x4), '0x04');
  assert.equal(formatOffset(0x1000), '0x1000');
  assert.equal(formatOffset(-4), '-0x04');
});
