// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { XENSTORE_PAYLOAD_MAX, XS_TYPE } from '../../abi/index.js';
import {
  XsFramer,
  encodeXsMessage,
  utf8Encode,
  type XsFramingError,
  type XsMessage,
} from './index.js';

const msgs: XsMessage[] = [
  { type: XS_TYPE.READ, reqId: 7, txId: 0, payload: utf8Encode('/\0') },
  { type: XS_TYPE.RESET_WATCHES, reqId: 8, txId: 0, payload: new Uint8Array(0) },
  { type: XS_TYPE.WRITE, reqId: 0xfffffffe, txId: 3, payload: utf8Encode('/t/bin\0a\0b\0') },
  { type: 999, reqId: 9, txId: 0, payload: new Uint8Array(0) },
  { type: XS_TYPE.WATCH, reqId: 10, txId: 0, payload: utf8Encode('/w\0tok\0') },
];
const stream = new Uint8Array(msgs.flatMap((m) => [...encodeXsMessage(m)]));

function errorOf(f: XsFramer): XsFramingError | undefined {
  return f.error;
}

function frameAll(chunks: Uint8Array[]): XsMessage[] {
  const f = new XsFramer();
  const out: XsMessage[] = [];
  for (const c of chunks) {
    f.push(c);
    out.push(...f);
  }
  assert.equal(f.error, undefined);
  assert.equal(f.bufferedBytes, 0);
  return out;
}

test('XsFramer reassembles a stream of several messages split at every byte position', () => {
  for (let i = 0; i <= stream.length; i++) {
    assert.deepEqual(frameAll([stream.subarray(0, i), stream.subarray(i)]), msgs, `split at ${i}`);
  }
});

test('XsFramer reassembles a stream split at every pair of byte positions', () => {
  for (let i = 0; i <= stream.length; i++) {
    for (let j = i; j <= stream.length; j++) {
      const got = frameAll([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
      assert.deepEqual(got, msgs, `split at ${i}, ${j}`);
    }
  }
});

test('XsFramer reassembles a stream fed one byte at a time', () => {
  assert.deepEqual(frameAll([...stream].map((b) => Uint8Array.of(b))), msgs);
});

test('XsFramer reassembles random messages under random splits', () => {
  const arbMsg = fc.record({
    type: fc.nat({ max: 0xffffffff }),
    reqId: fc.nat({ max: 0xffffffff }),
    txId: fc.nat({ max: 0xffffffff }),
    payload: fc.uint8Array({ maxLength: XENSTORE_PAYLOAD_MAX }),
  });
  fc.assert(
    fc.property(
      fc.array(arbMsg, { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (ms, cuts) => {
        const bytes = new Uint8Array(ms.flatMap((m) => [...encodeXsMessage(m)]));
        const points = [
          ...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length))),
        ].sort((a, b) => a - b);
        const chunks: Uint8Array[] = [];
        let prev = 0;
        for (const p of [...points, bytes.length]) {
          chunks.push(bytes.subarray(prev, p));
          prev = p;
        }
        assert.deepEqual(
          frameAll(chunks),
          ms.map((m) => ({ ...m })),
        );
      },
    ),
    { numRuns: 100 },
  );
});

test('XsFramer keeps the tail and delivers nothing before a message is complete', () => {
  const f = new XsFramer();
  const first = encodeXsMessage(msgs[0] as XsMessage);
  f.push(first.subarray(0, 17));
  assert.deepEqual(f.drain(), []);
  assert.equal(f.bufferedBytes, 17);
  f.push(first.subarray(17));
  assert.deepEqual(f.drain(), [msgs[0]]);
  assert.equal(f.bufferedBytes, 0);
});

test('XsFramer reports an oversized len from the header alone, before any payload (spec §12 case 6)', () => {
  for (const len of [XENSTORE_PAYLOAD_MAX + 1, 5000, 0xffffffff]) {
    const f = new XsFramer();
    const ok = encodeXsMessage(msgs[0] as XsMessage);
    const header = new Uint8Array(16);
    new DataView(header.buffer).setUint32(0, XS_TYPE.WRITE, true);
    new DataView(header.buffer).setUint32(12, len, true);
    // A good message, then the bad header split in two: the error comes with its last byte.
    f.push(new Uint8Array([...ok, ...header.subarray(0, 15)]));
    assert.equal(f.error, undefined);
    f.push(header.subarray(15));
    const err = errorOf(f);
    assert.ok(err, `len ${len}`);
    assert.equal(err.reason, 'oversized');
    assert.equal(err.header.len, len);
    assert.equal(f.bufferedBytes, 0, 'nothing buffered for the oversized payload');
    assert.deepEqual(f.drain(), [msgs[0]], 'messages before the bad header are delivered');
    f.push(new Uint8Array(10000));
    assert.equal(f.bufferedBytes, 0, 'input after the error is discarded');
    assert.deepEqual(f.drain(), []);
  }
});

test('XsFramer accepts exactly XENSTORE_PAYLOAD_MAX and a raised limit accepts more', () => {
  const max = {
    type: XS_TYPE.WRITE,
    reqId: 1,
    txId: 0,
    payload: new Uint8Array(XENSTORE_PAYLOAD_MAX).fill(0x61),
  };
  assert.deepEqual(frameAll([encodeXsMessage(max)]), [max]);
  const big = { type: XS_TYPE.DIRECTORY, reqId: 2, txId: 0, payload: new Uint8Array(18200) };
  const f = new XsFramer({ maxPayload: 65536 });
  f.push(encodeXsMessage(big, { maxPayload: 65536 }));
  assert.deepEqual(f.drain(), [big]);
});

test('XsFramer never throws on random garbage and never holds more than one message', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 20 }), (chunks) => {
      const f = new XsFramer();
      for (const c of chunks) {
        f.push(c);
        assert.ok(f.bufferedBytes <= 16 + XENSTORE_PAYLOAD_MAX);
        for (const m of f) assert.ok(m.payload.length <= XENSTORE_PAYLOAD_MAX);
      }
    }),
    { numRuns: 300 },
  );
});

test('XsFramer.reset() clears an error and partial input', () => {
  const f = new XsFramer();
  f.push(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
  assert.ok(f.error);
  f.reset();
  assert.equal(f.error, undefined);
  f.push(stream);
  assert.deepEqual(f.drain(), msgs);
});
