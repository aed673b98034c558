// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineFramer } from './framing.js';

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

test('LineFramer returns the same lines wherever the stream is split', () => {
  const text = '{"id":1,"method":"status"}\n\n{"id":"é","method":"x"}\r\nlast\n';
  const bytes = encode(text);
  const expected = ['{"id":1,"method":"status"}', '', '{"id":"é","method":"x"}\r', 'last'];
  for (let cut = 0; cut <= bytes.length; cut++) {
    const framer = new LineFramer({ maxLineBytes: 64 });
    const lines = [
      ...framer.push(bytes.subarray(0, cut)).lines,
      ...framer.push(bytes.subarray(cut)).lines,
    ];
    assert.deepEqual(lines, expected, `split at byte ${cut}`);
    assert.equal(framer.pendingBytes, 0);
  }
  // One byte at a time (a multi-byte character split between chunks too).
  const framer = new LineFramer({ maxLineBytes: 64 });
  const lines: string[] = [];
  for (const byte of bytes) lines.push(...framer.push(Uint8Array.of(byte)).lines);
  assert.deepEqual(lines, expected);
});

test('LineFramer keeps an unfinished line until its newline arrives', () => {
  const framer = new LineFramer({ maxLineBytes: 16 });
  assert.deepEqual(framer.push(encode('abc')), { lines: [], overflow: false });
  assert.equal(framer.pendingBytes, 3);
  assert.deepEqual(framer.push(encode('def\ng')), { lines: ['abcdef'], overflow: false });
  assert.equal(framer.pendingBytes, 1);
});

test('LineFramer accepts a line of exactly the bound and fails one byte over, across chunks', () => {
  const exact = new LineFramer({ maxLineBytes: 8 });
  assert.deepEqual(exact.push(encode('1234')).lines, []);
  assert.deepEqual(exact.push(encode('5678\n')).lines, ['12345678']);

  const over = new LineFramer({ maxLineBytes: 8 });
  assert.deepEqual(over.push(encode('ok\n1234')), { lines: ['ok'], overflow: false });
  assert.deepEqual(over.push(encode('56789')), { lines: [], overflow: true });
  assert.equal(over.failed, true);
  assert.equal(over.pendingBytes, 0, 'nothing beyond the bound is kept');
  assert.deepEqual(over.push(encode('\nmore\n')), { lines: [], overflow: true });
});

test('LineFramer fails a huge chunk without a newline without keeping it', () => {
  const framer = new LineFramer({ maxLineBytes: 1024 });
  const result = framer.push(new Uint8Array(10 * 1024 * 1024).fill(0x41));
  assert.deepEqual(result, { lines: [], overflow: true });
  assert.equal(framer.pendingBytes, 0);
});

test('LineFramer refuses a bound that is not a positive integer', () => {
  assert.throws(() => new LineFramer({ maxLineBytes: 0 }), RangeError);
  assert.throws(() => new LineFramer({ maxLineBytes: 1.5 }), RangeError);
});
