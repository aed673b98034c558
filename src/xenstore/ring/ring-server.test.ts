// SPDX-License-Identifier: MIT
// XsRingServer against a scripted guest on a plain 4 KiB page, with a fake session that
// answers each request. The real dispatcher behind a ring is tested in
// ../server/server-rings.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XENSTORE_CONNECTION, XENSTORE_ERROR, XS_TYPE } from '../../abi/index.js';
import { XsFramer, encodeXsMessage, type XsMessage } from '../protocol/index.js';
import {
  XsRingConsumer,
  XsRingProducer,
  setXsRingConnection,
  setXsRingIndexes,
  xsRingConnection,
  xsRingError,
  xsRingIndexes,
  xsRingPage,
  type XsRingPage,
} from './ring-buffer.js';
import {
  XsRingServer,
  type XsRingChannel,
  type XsRingServerOptions,
  type XsRingSession,
  type XsRingSessionSink,
} from './ring-server.js';

/** Answers every request with a reply of `replyBytes` payload bytes (same type and id). */
class FakeSession implements XsRingSession {
  readonly framer = new XsFramer();
  readonly received: XsMessage[] = [];
  readonly sink: XsRingSessionSink;
  replyBytes = 4;
  closed = false;

  constructor(sink: XsRingSessionSink) {
    this.sink = sink;
  }

  receive(chunk: Uint8Array): void {
    this.framer.push(chunk);
    for (const m of this.framer) {
      this.received.push(m);
      this.sink.send(
        encodeXsMessage({
          type: m.type,
          reqId: m.reqId,
          txId: 0,
          payload: new Uint8Array(this.replyBytes).fill(m.reqId & 0xff),
        }),
      );
    }
  }

  close(): void {
    this.closed = true;
  }
}

interface Rig {
  readonly page: XsRingPage;
  readonly ring: XsRingServer;
  readonly session: FakeSession | undefined;
  /** Kick the server, as the guest's notify would. */
  kick(): void;
  /** Kicks the server sent to the guest. */
  readonly guestKicks: () => number;
  readonly channelClosed: () => boolean;
  /** Guest side. */
  readonly req: XsRingProducer;
  readonly rsp: XsRingConsumer;
  readonly log: string[];
}

function rig(
  options: Partial<XsRingServerOptions> & { onNotify?: () => void; replyBytes?: number } = {},
  prepare?: (page: XsRingPage) => void,
): Rig {
  const bytes = new Uint8Array(new ArrayBuffer(4096));
  const page = xsRingPage(bytes);
  prepare?.(page);
  let onEvent: () => void = () => undefined;
  let kicks = 0;
  let closed = false;
  const channel: XsRingChannel = {
    page: bytes,
    notify: () => {
      kicks += 1;
      options.onNotify?.();
    },
    onEvent: (cb) => {
      onEvent = cb;
    },
    close: () => {
      closed = true;
    },
  };
  let session: FakeSession | undefined;
  const log: string[] = [];
  const ring = new XsRingServer(
    channel,
    (sink) => {
      session = new FakeSession(sink);
      session.replyBytes = options.replyBytes ?? 4;
      return session;
    },
    {
      domid: 5,
      // Synchronous scheduling: each test decides when things run.
      scheduleMicrotask: (cb) => {
        cb();
      },
      log: (line) => log.push(line),
      ...options,
    },
  );
  return {
    page,
    ring,
    session,
    kick: () => {
      onEvent();
    },
    guestKicks: () => kicks,
    channelClosed: () => closed,
    req: new XsRingProducer(page, 'req'),
    rsp: new XsRingConsumer(page, 'rsp'),
    log,
  };
}

function request(reqId: number, payloadBytes = 4): Uint8Array {
  return encodeXsMessage({
    type: XS_TYPE.READ,
    reqId,
    txId: 0,
    payload: new Uint8Array(payloadBytes).fill(0x61),
  });
}

function readReplies(r: Rig, framer: XsFramer): XsMessage[] {
  const got = r.rsp.read(4096);
  assert.ok(got.ok);
  framer.push(got.bytes);
  return framer.drain();
}

test('XsRingServer zeroes the indexes on attach and answers RECONNECT with CONNECTED and a kick', () => {
  const r = rig({}, (page) => {
    setXsRingIndexes(page, { reqCons: 7, reqProd: 9, rspCons: 100, rspProd: 120 });
    setXsRingConnection(page, XENSTORE_CONNECTION.RECONNECT);
  });
  assert.deepEqual(xsRingIndexes(r.page), { reqCons: 0, reqProd: 0, rspCons: 0, rspProd: 0 });
  assert.equal(xsRingConnection(r.page), XENSTORE_CONNECTION.CONNECTED);
  assert.equal(r.guestKicks(), 1);
  assert.equal(r.ring.state, 'active');
  // server_features stays 0, as C 4.17 leaves it: no reconnection support advertised.
  assert.equal(r.page.words[2064 / 4], 0);
});

test('Requests queued before the attach are served without a kick, across the 2^32 and buffer wraps', () => {
  // Spec test 59: indexes preset to 0xfffffff0, a 40-byte request and its 40-byte reply.
  const framer = new XsFramer();
  const r = rig({ resetIndexes: false, replyBytes: 24 }, (page) => {
    setXsRingIndexes(page, {
      reqCons: 0xfffffff0,
      reqProd: 0xfffffff0,
      rspCons: 0xfffffff0,
      rspProd: 0xfffffff0,
    });
    assert.deepEqual(new XsRingProducer(page, 'req').write(request(3, 24)), {
      ok: true,
      written: 40,
    });
  });
  assert.ok(r.session);
  // The attach scheduled a pump (synchronous here); nothing was kicked by the guest.
  assert.equal(r.session.received.length, 1);
  assert.deepEqual(r.session.received[0]?.payload, new Uint8Array(24).fill(0x61));
  const replies = readReplies(r, framer);
  assert.equal(replies.length, 1);
  const [reply] = replies;
  assert.ok(reply);
  assert.equal(reply.reqId, 3);
  assert.deepEqual(reply.payload, new Uint8Array(24).fill(3));
  assert.deepEqual(xsRingIndexes(r.page), { reqCons: 24, reqProd: 24, rspCons: 24, rspProd: 24 });
});

test('Flow control: at 20 unsent replies the server stops reading and resumes as the guest drains', () => {
  const r = rig();
  assert.ok(r.session);
  r.session.replyBytes = 200; // 216-byte replies: fewer than 5 fit in the ring
  const framer = new XsFramer();
  const all = Array.from({ length: 64 }, (_, i) => request(i + 1));
  let sentMessages = 0;
  let partial = 0;
  const pushRequests = (): void => {
    while (sentMessages < all.length) {
      const msg = all[sentMessages];
      assert.ok(msg);
      const w = r.req.write(msg.subarray(partial));
      assert.ok(w.ok);
      partial += w.written;
      if (partial < msg.length) return;
      partial = 0;
      sentMessages += 1;
    }
  };
  pushRequests();
  r.kick();
  // Stalled: 20 queued, requests left unread in the ring.
  assert.equal(r.ring.stats.outstanding, 20);
  assert.ok(r.session.received.length < 64);
  const unread = new XsRingConsumer(r.page, 'req').available();
  assert.ok(typeof unread === 'number' && unread > 0);
  const stalledAt = r.session.received.length;
  r.kick(); // a kick alone changes nothing while the guest reads no replies
  assert.equal(r.session.received.length, stalledAt);

  const replies: XsMessage[] = [];
  let maxOutstanding = 0;
  for (let i = 0; i < 1000 && replies.length < 64; i++) {
    replies.push(...readReplies(r, framer));
    pushRequests();
    r.kick();
    maxOutstanding = Math.max(maxOutstanding, r.ring.stats.outstanding);
  }
  assert.equal(replies.length, 64);
  assert.deepEqual(
    replies.map((m) => m.reqId),
    Array.from({ length: 64 }, (_, i) => i + 1),
  );
  assert.ok(maxOutstanding <= 20);
  assert.equal(r.ring.stats.requests, 64);
  assert.equal(r.ring.stats.responses, 64);
  assert.equal(r.ring.stats.responseBytes, 64 * 216);
  assert.equal(r.ring.stats.requestBytes, 64 * 20);
});

test('A corrupt req index (req_prod = req_cons + 5000) gets error RINGIDX and the ring is ignored', () => {
  const r = rig();
  assert.ok(r.session);
  setXsRingIndexes(r.page, { reqCons: 100, reqProd: 5100, rspCons: 0, rspProd: 0 });
  r.kick();
  assert.equal(xsRingError(r.page), XENSTORE_ERROR.RINGIDX);
  assert.equal(r.ring.state, 'ignored');
  assert.equal(r.ring.error, XENSTORE_ERROR.RINGIDX);
  assert.equal(r.session.closed, true);
  assert.equal(r.guestKicks(), 1);
  assert.match(r.log.join('\n'), /domain 5 \(error RINGIDX\)/);
  // Even with sane indexes again, nothing more is read.
  setXsRingIndexes(r.page, { reqCons: 0, reqProd: 0, rspCons: 0, rspProd: 0 });
  assert.ok(r.req.write(request(1)).ok);
  r.kick();
  assert.equal(r.session.received.length, 0);
  assert.equal(xsRingIndexes(r.page).reqCons, 0);
});

test('A corrupt rsp index met while replying gets error RINGIDX too', () => {
  const r = rig();
  assert.ok(r.session);
  r.session.replyBytes = 2000; // does not fit: the reply stays queued
  assert.ok(r.req.write(request(1)).ok);
  r.kick();
  assert.equal(r.ring.stats.outstanding, 1);
  // The guest moves rsp_cons past rsp_prod.
  const idx = xsRingIndexes(r.page);
  setXsRingIndexes(r.page, { ...idx, rspCons: idx.rspProd + 10 });
  r.kick();
  assert.equal(xsRingError(r.page), XENSTORE_ERROR.RINGIDX);
  assert.equal(r.ring.stats.outstanding, 0);
});

test('A request header with len 5000 gets error PROTO at once, without waiting for its payload', () => {
  const r = rig();
  assert.ok(r.session);
  const header = encodeXsMessage({
    type: XS_TYPE.READ,
    reqId: 1,
    txId: 0,
    payload: new Uint8Array(0),
  });
  new DataView(header.buffer).setUint32(12, 5000, true);
  assert.ok(r.req.write(request(9)).ok);
  assert.ok(r.req.write(header).ok);
  r.kick();
  assert.equal(xsRingError(r.page), XENSTORE_ERROR.PROTO);
  assert.equal(r.ring.state, 'ignored');
  assert.equal(r.session.closed, true);
  // The request before the bad header was answered; its reply was dropped with the ring.
  assert.deepEqual(
    r.session.received.map((m) => m.reqId),
    [9],
  );
  assert.equal(r.ring.stats.outstanding, 0);
});

test('A session framing error (its sink closed) is reported as PROTO', () => {
  const r = rig();
  assert.ok(r.session);
  r.session.sink.close('bad frame');
  assert.equal(xsRingError(r.page), XENSTORE_ERROR.PROTO);
  assert.equal(r.ring.state, 'ignored');
});

test('Watch events for a guest that does not read them are dropped above the cap; replies are not', () => {
  const r = rig({ maxQueuedEventBytes: 1000 });
  assert.ok(r.session);
  const event = encodeXsMessage({
    type: XS_TYPE.WATCH_EVENT,
    reqId: 0,
    txId: 0,
    payload: new Uint8Array(84),
  });
  for (let i = 0; i < 30; i++) r.session.sink.send(event);
  // 1024 bytes went into the ring (10 events of 100 bytes and part of the 11th); the 11th
  // to 20th fill the 1000-byte cap; the last 10 are dropped.
  assert.equal(r.ring.stats.responses, 10);
  assert.equal(r.ring.stats.outstanding, 10);
  assert.equal(r.ring.stats.eventsDropped, 10);
  assert.match(r.log.join('\n'), /Dropped 1 watch event/);
  // A reply is queued whatever the event backlog.
  r.session.replyBytes = 500;
  assert.ok(r.req.write(request(1)).ok);
  r.kick();
  assert.equal(r.session.received.length, 1);
  assert.equal(r.ring.stats.outstanding, 11);
  const framer = new XsFramer();
  const got: XsMessage[] = [];
  for (let i = 0; i < 50 && got.length < 21; i++) {
    got.push(...readReplies(r, framer));
    r.kick();
  }
  assert.equal(got.length, 21);
  assert.equal(got.at(-1)?.reqId, 1);
});

test('A pump stops after maxRoundsPerPump passes and finishes on a scheduled task', () => {
  const tasks: (() => void)[] = [];
  const r = rig({ maxRoundsPerPump: 1, scheduleTask: (cb) => tasks.push(cb) });
  assert.ok(r.session);
  assert.ok(r.req.write(request(1)).ok);
  r.kick();
  // One pass: the request was read, its reply is queued but not yet written.
  assert.equal(r.session.received.length, 1);
  assert.equal(r.ring.stats.responses, 0);
  assert.equal(tasks.length, 1);
  tasks.shift()?.();
  assert.equal(r.ring.stats.responses, 1);
});

test('Bytes the guest adds without a kick while the server works are still served (re-check until no progress)', () => {
  let injected = false;
  const late = request(2);
  const r = rig({
    onNotify: () => {
      // The guest answers the server's kick by queueing another request, without a kick.
      if (injected) return;
      injected = true;
      assert.ok(new XsRingProducer(r.page, 'req').write(late).ok);
    },
  });
  assert.ok(r.session);
  assert.ok(r.req.write(request(1)).ok);
  r.kick();
  assert.deepEqual(
    r.session.received.map((m) => m.reqId),
    [1, 2],
  );
  assert.equal(r.ring.stats.responses, 2);
});

test('close() drops the session, closes the channel once and ignores later kicks', () => {
  const r = rig();
  assert.ok(r.session);
  r.ring.close();
  r.ring.close();
  assert.equal(r.ring.state, 'closed');
  assert.equal(r.session.closed, true);
  assert.equal(r.channelClosed(), true);
  assert.ok(r.req.write(request(1)).ok);
  r.kick();
  assert.equal(r.session.received.length, 0);
});

test('Started with ignore: no session, indexes reset, the error word left as found', () => {
  let opened = 0;
  const bytes = new Uint8Array(4096);
  const page = xsRingPage(bytes);
  setXsRingIndexes(page, { reqCons: 1, reqProd: 2, rspCons: 3, rspProd: 4 });
  page.words[2072 / 4] = 3;
  const ring = new XsRingServer(
    { page: bytes, notify: () => undefined, onEvent: () => undefined, close: () => undefined },
    () => {
      opened += 1;
      return { receive: () => undefined, close: () => undefined };
    },
    { domid: 5, ignore: XENSTORE_ERROR.PROTO },
  );
  assert.equal(opened, 0);
  assert.equal(ring.state, 'ignored');
  assert.equal(ring.error, XENSTORE_ERROR.PROTO);
  assert.deepEqual(xsRingIndexes(page), { reqCons: 0, reqProd: 0, rspCons: 0, rspProd: 0 });
  assert.equal(xsRingError(page), 3);
});

test('XsRingServer refuses a short page and non-positive limits', () => {
  const channel = (page: Uint8Array): XsRingChannel => ({
    page,
    notify: () => undefined,
    onEvent: () => undefined,
    close: () => undefined,
  });
  const open = (): XsRingSession => ({ receive: () => undefined, close: () => undefined });
  assert.throws(
    () => new XsRingServer(channel(new Uint8Array(100)), open, { domid: 1 }),
    RangeError,
  );
  assert.throws(
    () => new XsRingServer(channel(new Uint8Array(4096)), open, { domid: 1, maxOutstanding: 0 }),
    RangeError,
  );
});
