// SPDX-License-Identifier: MIT
// XsRingClientTransport against a scripted xenstored on a plain page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XENSTORE_ERROR } from '../../abi/index.js';
import { isPcibackError } from '../../errors.js';
import {
  XsRingConsumer,
  XsRingProducer,
  setXsRingError,
  setXsRingIndexes,
  xsRingPage,
  type XsRingPage,
} from './ring-buffer.js';
import { XsRingClientTransport, type XsRingWakeSource } from './ring-client.js';

class ManualWake implements XsRingWakeSource {
  cb: (() => void) | undefined;
  stopped = 0;
  onWake(cb: () => void): void {
    this.cb = cb;
  }
  stop(): void {
    this.stopped += 1;
    this.cb = undefined;
  }
  fire(): void {
    this.cb?.();
  }
}

interface Rig {
  readonly page: XsRingPage;
  readonly wake: ManualWake;
  readonly transport: XsRingClientTransport;
  readonly kicks: () => number;
  /** Server side. */
  readonly req: XsRingConsumer;
  readonly rsp: XsRingProducer;
}

function rig(): Rig {
  const bytes = new Uint8Array(new SharedArrayBuffer(4096));
  const page = xsRingPage(bytes);
  const wake = new ManualWake();
  let kicks = 0;
  const transport = new XsRingClientTransport(bytes, {
    notify: () => {
      kicks += 1;
    },
    wake,
  });
  return {
    page,
    wake,
    transport,
    kicks: () => kicks,
    req: new XsRingConsumer(page, 'req'),
    rsp: new XsRingProducer(page, 'rsp'),
  };
}

function bytesOf(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i) & 0xff);
}

test('send() pushes what fits, kicks, and pushes the rest on later wakes', () => {
  const r = rig();
  const big = bytesOf(3000, 1);
  r.transport.send(big);
  assert.equal(r.kicks(), 1);
  assert.equal(r.transport.stats.sentBytes, 1024);
  assert.equal(r.transport.stats.pendingBytes, 3000 - 1024);
  const got: number[] = [];
  for (let i = 0; i < 10 && got.length < 3000; i++) {
    const chunk = r.req.read(700);
    assert.ok(chunk.ok);
    got.push(...chunk.bytes);
    r.wake.fire();
  }
  assert.deepEqual(Uint8Array.from(got), big);
  assert.equal(r.transport.stats.pendingBytes, 0);
});

test('Replies written without a kick are delivered on the next wake, spurious or periodic', () => {
  const r = rig();
  const chunks: Uint8Array[] = [];
  r.transport.onData((c) => chunks.push(c));
  assert.ok(r.rsp.write(bytesOf(10, 5)).ok);
  assert.equal(chunks.length, 0);
  r.wake.fire();
  assert.deepEqual(chunks, [bytesOf(10, 5)]);
  r.wake.fire(); // nothing new: no delivery, no kick
  assert.equal(chunks.length, 1);
  assert.equal(r.kicks(), 1); // the kick that freed the rsp space
  assert.equal(r.transport.stats.wakes, 2);
});

test('Replies already waiting are delivered as soon as a data callback is registered', () => {
  const r = rig();
  assert.ok(r.rsp.write(bytesOf(5, 0)).ok);
  r.wake.fire();
  const chunks: Uint8Array[] = [];
  r.transport.onData((c) => chunks.push(c));
  assert.deepEqual(chunks, [bytesOf(5, 0)]);
});

test('A data callback that sends is served in the same check', () => {
  const r = rig();
  r.transport.onData(() => {
    r.transport.send(bytesOf(4, 9));
  });
  assert.ok(r.rsp.write(bytesOf(1, 0)).ok);
  r.wake.fire();
  const sent = r.req.read(100);
  assert.ok(sent.ok);
  assert.deepEqual(sent.bytes, bytesOf(4, 9));
});

test('The server giving up on the ring (error word) closes the transport with XS_RING_ABANDONED', () => {
  const r = rig();
  const closes: (Error | undefined)[] = [];
  r.transport.onClose((e) => closes.push(e));
  setXsRingError(r.page, XENSTORE_ERROR.PROTO);
  r.wake.fire();
  assert.equal(r.transport.closed, true);
  assert.equal(closes.length, 1);
  const [error] = closes;
  assert.ok(isPcibackError(error, 'XS_RING_ABANDONED'));
  assert.match(error.message, /error PROTO/);
  assert.equal(r.wake.stopped, 1);
  assert.throws(
    () => {
      r.transport.send(bytesOf(1, 0));
    },
    (e: unknown) => isPcibackError(e, 'XS_RING_CLOSED'),
  );
});

test('Corrupt rsp indexes close the transport with XS_RING_CORRUPT', () => {
  const r = rig();
  const closes: (Error | undefined)[] = [];
  r.transport.onClose((e) => closes.push(e));
  r.transport.onData(() => undefined);
  setXsRingIndexes(r.page, { reqCons: 0, reqProd: 0, rspCons: 0, rspProd: 2000 });
  r.wake.fire();
  assert.ok(isPcibackError(closes[0], 'XS_RING_CORRUPT'));
});

test('close() stops the wake source, reports once and is idempotent', () => {
  const r = rig();
  let closes = 0;
  r.transport.onClose(() => (closes += 1));
  r.transport.send(bytesOf(2000, 0));
  r.transport.close();
  r.transport.close();
  assert.equal(closes, 1);
  assert.equal(r.wake.stopped, 1);
  assert.equal(r.transport.stats.pendingBytes, 0);
  // A close callback registered afterwards still hears of it.
  let late = 0;
  r.transport.onClose(() => (late += 1));
  assert.equal(late, 1);
});
