// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  XENSTORE_DOMAIN_INTERFACE_OFFSET,
  XENSTORE_DOMAIN_INTERFACE_WORD,
  XENSTORE_ERROR,
  XENSTORE_RING_SIZE,
} from '../../abi/index.js';
import {
  XsRingConsumer,
  XsRingProducer,
  setXsRingError,
  setXsRingIndexes,
  xsRingError,
  xsRingErrorName,
  xsRingIndexes,
  xsRingPage,
  type XsRingName,
  type XsRingPage,
} from './ring-buffer.js';

function newPage(shared = false): XsRingPage {
  const buffer = shared ? new SharedArrayBuffer(4096) : new ArrayBuffer(4096);
  return xsRingPage(new Uint8Array(buffer));
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 7) & 0xff;
  return out;
}

/** Both indexes of one ring set to `start` (an empty ring at an arbitrary position). */
function startAt(page: XsRingPage, start: number): void {
  setXsRingIndexes(page, { reqCons: start, reqProd: start, rspCons: start, rspProd: start });
}

function dataOffset(ring: XsRingName): number {
  return ring === 'req'
    ? XENSTORE_DOMAIN_INTERFACE_OFFSET.req
    : XENSTORE_DOMAIN_INTERFACE_OFFSET.rsp;
}

test('xsRingPage() refuses a buffer shorter than the 4.17 struct or not 4-byte aligned', () => {
  assert.throws(() => xsRingPage(new Uint8Array(2075)), RangeError);
  assert.throws(() => xsRingPage(new Uint8Array(new ArrayBuffer(4100), 2, 4096)), RangeError);
  const page = xsRingPage(new Uint8Array(new ArrayBuffer(8192), 4096, 4096));
  assert.equal(page.words.byteOffset, 4096);
  assert.equal(page.words.length, 1024);
});

test('A message wraps correctly around the 1024-byte buffer at every start offset, both rings', () => {
  for (const ring of ['req', 'rsp'] as const) {
    for (let start = 0; start < XENSTORE_RING_SIZE; start++) {
      // Start below 2^32 too, so that many of these also cross the index wrap.
      for (const base of [0, 0xfffffc00]) {
        const page = newPage();
        const index = (base + start) >>> 0;
        startAt(page, index);
        const message = pattern(100, start);
        const w = new XsRingProducer(page, ring).write(message);
        assert.deepEqual(w, { ok: true, written: 100 });
        // The bytes sit at (index + i) & 1023 of the ring's data area.
        const data = dataOffset(ring);
        for (let i = 0; i < 100; i++) {
          assert.equal(page.bytes[data + ((index + i) & 1023)], message[i]);
        }
        const r = new XsRingConsumer(page, ring).read(4096);
        assert.ok(r.ok);
        assert.deepEqual(r.bytes, message);
        const after = xsRingIndexes(page);
        const expected = (index + 100) >>> 0;
        if (ring === 'req') assert.deepEqual([after.reqCons, after.reqProd], [expected, expected]);
        else assert.deepEqual([after.rspCons, after.rspProd], [expected, expected]);
      }
    }
  }
});

test('A full ring takes no more bytes and an empty ring gives none', () => {
  const page = newPage();
  startAt(page, 0x7ffffe00);
  const producer = new XsRingProducer(page, 'req');
  const consumer = new XsRingConsumer(page, 'req');
  assert.equal(consumer.available(), 0);
  assert.deepEqual(consumer.read(10), { ok: true, bytes: new Uint8Array(0) });
  assert.deepEqual(producer.write(pattern(1000, 1)), { ok: true, written: 1000 });
  // Only what fits goes in; the caller keeps the rest.
  assert.deepEqual(producer.write(pattern(100, 2)), { ok: true, written: 24 });
  assert.equal(producer.free(), 0);
  assert.deepEqual(producer.write(pattern(5, 3)), { ok: true, written: 0 });
  assert.equal(consumer.available(), XENSTORE_RING_SIZE);
  const first = consumer.read(600);
  assert.ok(first.ok);
  assert.equal(first.bytes.length, 600);
  assert.equal(producer.free(), 600);
  const rest = consumer.read(4096);
  assert.ok(rest.ok);
  assert.equal(rest.bytes.length, 424);
  assert.deepEqual(rest.bytes.subarray(400), pattern(100, 2).subarray(0, 24));
  assert.equal(consumer.totalBytes, 1024);
  assert.equal(producer.totalBytes, 1024);
});

test('Indexes near 2^32: a 40-byte message crosses both the index wrap and the buffer wrap', () => {
  const page = newPage(true);
  startAt(page, 0xfffffff0);
  const message = pattern(40, 9);
  assert.deepEqual(new XsRingProducer(page, 'rsp').write(message), { ok: true, written: 40 });
  assert.equal(xsRingIndexes(page).rspProd, 0x18);
  const r = new XsRingConsumer(page, 'rsp').read(40);
  assert.ok(r.ok);
  assert.deepEqual(r.bytes, message);
  assert.equal(xsRingIndexes(page).rspCons, 0x18);
});

test('Corrupt indexes (prod - cons above 1024, or cons ahead of prod) are reported and nothing moves', () => {
  const cases: [number, number][] = [
    [0, 1025],
    [100, 5100], // spec test 7: req_prod = req_cons + 5000
    [10, 5], // cons ahead of prod: the u32 difference is huge
    [0xffffff00, 0x00000201], // wrapped and legitimate: 0x301 = 769 bytes used
    [0x00000201, 0xffffff00], // the same pair the wrong way round
  ];
  for (const [cons, prod] of cases) {
    const used = (prod - cons) >>> 0;
    const page = newPage();
    setXsRingIndexes(page, { reqCons: cons, reqProd: prod, rspCons: cons, rspProd: prod });
    const before = page.bytes.slice();
    const consumer = new XsRingConsumer(page, 'req');
    const producer = new XsRingProducer(page, 'rsp');
    const r = consumer.read(16);
    const w = producer.write(pattern(16, 0));
    if (used <= XENSTORE_RING_SIZE) {
      // The wrapped pair is legitimate: the check is on the u32 difference only.
      assert.ok(r.ok && w.ok, `cons ${cons} prod ${prod}`);
      continue;
    }
    assert.ok(!r.ok);
    assert.ok(!w.ok);
    assert.equal(r.corruption.ring, 'req');
    assert.equal(w.corruption.ring, 'rsp');
    assert.deepEqual([r.corruption.cons, r.corruption.prod], [cons, prod]);
    assert.match(r.corruption.message, /req_prod/);
    assert.equal(typeof consumer.available(), 'object');
    assert.equal(typeof producer.free(), 'object');
    assert.deepEqual(page.bytes, before);
  }
});

test('A ring holding exactly 1024 bytes is full, not corrupt', () => {
  const page = newPage();
  setXsRingIndexes(page, { reqCons: 5, reqProd: 5 + 1024, rspCons: 0, rspProd: 0 });
  const r = new XsRingConsumer(page, 'req').read(4096);
  assert.ok(r.ok);
  assert.equal(r.bytes.length, 1024);
});

test('XsRingConsumer.read() refuses a negative or fractional byte count', () => {
  const consumer = new XsRingConsumer(newPage(), 'req');
  assert.throws(() => consumer.read(-1), RangeError);
  assert.throws(() => consumer.read(1.5), RangeError);
});

test('The error word round-trips and its name is readable', () => {
  const page = newPage();
  assert.equal(xsRingError(page), XENSTORE_ERROR.NONE);
  setXsRingError(page, XENSTORE_ERROR.RINGIDX);
  assert.equal(page.words[XENSTORE_DOMAIN_INTERFACE_WORD.error], 2);
  assert.equal(xsRingError(page), 2);
  assert.equal(xsRingErrorName(2), 'RINGIDX');
  assert.equal(xsRingErrorName(3), 'PROTO');
  assert.equal(xsRingErrorName(77), '77');
});

test('Property: random chunk sizes in both directions deliver both byte streams intact', () => {
  const step = fc.record({
    ring: fc.constantFrom<XsRingName>('req', 'rsp'),
    write: fc.boolean(),
    size: fc.integer({ min: 0, max: 1500 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.uint8Array({ minLength: 0, maxLength: 6000 }),
      fc.uint8Array({ minLength: 0, maxLength: 6000 }),
      fc.array(step, { minLength: 1, maxLength: 200 }),
      (start, reqStream, rspStream, steps) => {
        const page = newPage();
        startAt(page, start);
        const streams = { req: reqStream, rsp: rspStream };
        const sent = { req: 0, rsp: 0 };
        const got: Record<XsRingName, number[]> = { req: [], rsp: [] };
        const producers = {
          req: new XsRingProducer(page, 'req'),
          rsp: new XsRingProducer(page, 'rsp'),
        };
        const consumers = {
          req: new XsRingConsumer(page, 'req'),
          rsp: new XsRingConsumer(page, 'rsp'),
        };
        const doRead = (ring: XsRingName, size: number): void => {
          const r = consumers[ring].read(size);
          assert.ok(r.ok);
          got[ring].push(...r.bytes);
        };
        const doWrite = (ring: XsRingName, size: number): void => {
          const stream = streams[ring];
          const w = producers[ring].write(stream.subarray(sent[ring], sent[ring] + size));
          assert.ok(w.ok);
          sent[ring] += w.written;
        };
        for (const s of steps) {
          if (s.write) doWrite(s.ring, s.size);
          else doRead(s.ring, s.size);
        }
        // Drain: alternate until both streams are through.
        for (const ring of ['req', 'rsp'] as const) {
          for (let i = 0; i < 100 && got[ring].length < streams[ring].length; i++) {
            doWrite(ring, 1024);
            doRead(ring, 1024);
          }
          assert.deepEqual(Uint8Array.from(got[ring]), streams[ring]);
        }
      },
    ),
    { numRuns: 300, interruptAfterTimeLimit: 20_000 },
  );
});
