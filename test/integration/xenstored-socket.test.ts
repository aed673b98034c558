// SPDX-License-Identifier: MIT
/**
 * `pciback xenstored`'s socket daemon, in-process on a temp socket, spoken to in raw
 * xenstore protocol through node:net (spec/xenstore.md §1, §3, §5, §6, §12).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XS_TYPE } from '../../src/abi/index.js';
import {
  XsFramer,
  encodeNulStrings,
  encodePathRequest,
  encodeTransactionEndRequest,
  encodeWatch,
  encodeWriteRequest,
  encodeXsMessage,
  parseDirectoryReply,
  parseTransactionStartReply,
  parseWatch,
  utf8Decode,
  utf8Encode,
  type XsMessage,
} from '../../src/xenstore/protocol/index.js';
import {
  serveXenstoreUnixSocket,
  type XsUnixSocketServer,
} from '../../src/xenstore/transport/unix-socket.js';

/** A raw protocol client: sends frames, keeps every message received. */
class RawClient {
  readonly socket: Socket;
  readonly received: XsMessage[] = [];
  readonly #framer = new XsFramer();
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#framer.push(new Uint8Array(chunk));
      this.received.push(...this.#framer.drain());
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => {
        resolve(new RawClient(s));
      });
      s.once('error', reject);
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  send(type: number, payload: Uint8Array, ids: { reqId?: number; txId?: number } = {}): void {
    this.socket.write(
      encodeXsMessage({ type, reqId: ids.reqId ?? 0, txId: ids.txId ?? 0, payload }),
    );
  }

  /** Wait until `pred` holds for the received list (or the socket closed), 2 s at most. */
  async until(pred: (msgs: readonly XsMessage[]) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 2000;
    while (!pred(this.received)) {
      if (this.closed) throw new Error(`Connection closed while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Send a request and return its reply (matched by req_id, skipping watch events). */
  async request(
    type: number,
    payload: Uint8Array,
    ids: { reqId: number; txId?: number },
  ): Promise<XsMessage> {
    this.send(type, payload, ids);
    const isReply = (m: XsMessage): boolean =>
      m.type !== XS_TYPE.WATCH_EVENT && m.reqId === ids.reqId;
    await this.until((ms) => ms.some(isReply), `the reply to req_id ${ids.reqId}`);
    const i = this.received.findIndex(isReply);
    const [reply] = this.received.splice(i, 1);
    assert.ok(reply);
    return reply;
  }

  takeEvents(): { path: string; token: string }[] {
    const out: { path: string; token: string }[] = [];
    for (let i = this.received.length - 1; i >= 0; i--) {
      const m = this.received[i];
      if (m?.type !== XS_TYPE.WATCH_EVENT) continue;
      this.received.splice(i, 1);
      const w = parseWatch(m.payload);
      assert.ok(w.ok);
      out.unshift({ path: w.value.path, token: w.value.token });
    }
    return out;
  }

  close(): void {
    this.socket.destroy();
  }
}

function text(m: XsMessage): string {
  return utf8Decode(m.payload);
}

async function withDaemon(fn: (xsd: XsUnixSocketServer) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xenstored-test-'));
  const xsd = await serveXenstoreUnixSocket(join(dir, 'socket'));
  try {
    await fn(xsd);
  } finally {
    await xsd.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('xenstored answers WRITE, READ, DIRECTORY and RM with the request ids', async () => {
  await withDaemon(async (xsd) => {
    const c = await RawClient.open(xsd.path);
    let r = await c.request(XS_TYPE.WRITE, encodeWriteRequest('/vm/a/name', 'guest'), {
      reqId: 0xfffffffe,
    });
    assert.deepEqual([r.type, r.reqId, r.txId, text(r)], [XS_TYPE.WRITE, 0xfffffffe, 0, 'OK\0']);
    r = await c.request(XS_TYPE.READ, encodePathRequest('/vm/a/name'), { reqId: 2 });
    assert.deepEqual([r.type, r.reqId, text(r)], [XS_TYPE.READ, 2, 'guest']);
    await c.request(XS_TYPE.WRITE, encodeWriteRequest('/vm/a/uuid', '1234'), { reqId: 3 });
    r = await c.request(XS_TYPE.DIRECTORY, encodePathRequest('/vm/a'), { reqId: 4 });
    assert.equal(r.type, XS_TYPE.DIRECTORY);
    assert.deepEqual(parseDirectoryReply(r.payload), { ok: true, value: ['name', 'uuid'] });
    r = await c.request(XS_TYPE.RM, encodePathRequest('/vm/a'), { reqId: 5 });
    assert.equal(text(r), 'OK\0');
    r = await c.request(XS_TYPE.READ, encodePathRequest('/vm/a/name'), { reqId: 6 });
    assert.deepEqual([r.type, r.reqId, text(r)], [XS_TYPE.ERROR, 6, 'ENOENT\0']);
    c.close();
  });
});

test('xenstored answers malformed payloads with EINVAL and unknown types with ENOSYS', async () => {
  await withDaemon(async (xsd) => {
    const c = await RawClient.open(xsd.path);
    let r = await c.request(XS_TYPE.READ, utf8Encode('/no-nul'), { reqId: 1 });
    assert.deepEqual([r.type, r.reqId, text(r)], [XS_TYPE.ERROR, 1, 'EINVAL\0']);
    r = await c.request(XS_TYPE.TRANSACTION_END, utf8Encode('X\0'), { reqId: 2 });
    assert.equal(text(r), 'EINVAL\0');
    for (const [i, type] of [999, 20, 23, XS_TYPE.WATCH_EVENT, XS_TYPE.ERROR, 0xffff].entries()) {
      r = await c.request(type, utf8Encode('x\0'), { reqId: 10 + i, txId: 7 });
      assert.deepEqual([r.type, r.reqId, r.txId, text(r)], [XS_TYPE.ERROR, 10 + i, 7, 'ENOSYS\0']);
    }
    // Still serving after all that.
    r = await c.request(XS_TYPE.READ, encodePathRequest('/tool/xenstored'), { reqId: 20 });
    assert.deepEqual([r.type, text(r)], [XS_TYPE.READ, '']);
    c.close();
  });
});

test('xenstored sends the initial WATCH event after the reply, then change events', async () => {
  await withDaemon(async (xsd) => {
    const watcher = await RawClient.open(xsd.path);
    const writer = await RawClient.open(xsd.path);
    watcher.send(XS_TYPE.WATCH, encodeWatch('/data', 'tok'), { reqId: 1 });
    await watcher.until((ms) => ms.length >= 2, 'the WATCH reply and its initial event');
    const [reply, initial] = watcher.received.splice(0, 2);
    assert.deepEqual([reply?.type, reply?.reqId, reply && text(reply)], [XS_TYPE.WATCH, 1, 'OK\0']);
    assert.deepEqual([initial?.type, initial?.reqId, initial?.txId], [XS_TYPE.WATCH_EVENT, 0, 0]);
    assert.equal(initial && text(initial), 'data\0tok\0'.replace('data', '/data'));

    await writer.request(XS_TYPE.WRITE, encodeWriteRequest('/data/x', '1'), { reqId: 2 });
    await watcher.until((ms) => ms.length >= 1, 'the change event');
    assert.deepEqual(watcher.takeEvents(), [{ path: '/data/x', token: 'tok' }]);
    assert.deepEqual(writer.takeEvents(), [], 'the writer has no watch');

    // UNWATCH: no more events.
    await watcher.request(XS_TYPE.UNWATCH, encodeWatch('/data', 'tok'), { reqId: 3 });
    await writer.request(XS_TYPE.WRITE, encodeWriteRequest('/data/y', '2'), { reqId: 4 });
    await watcher.request(XS_TYPE.READ, encodePathRequest('/data/y'), { reqId: 5 });
    assert.deepEqual(watcher.takeEvents(), []);
    watcher.close();
    writer.close();
  });
});

test('xenstored drops the watches of a connection that closed', async () => {
  await withDaemon(async (xsd) => {
    const gone = await RawClient.open(xsd.path);
    await gone.request(XS_TYPE.WATCH, encodeWatch('/w', 'old'), { reqId: 1 });
    gone.close();
    await new Promise((r) => setTimeout(r, 50));
    const c = await RawClient.open(xsd.path);
    await c.request(XS_TYPE.WATCH, encodeWatch('/w', 'new'), { reqId: 1 });
    await c.request(XS_TYPE.WRITE, encodeWriteRequest('/w', 'v'), { reqId: 2 });
    assert.deepEqual(c.takeEvents(), [
      { path: '/w', token: 'new' },
      { path: '/w', token: 'new' },
    ]);
    assert.equal(xsd.server.connectionCount, 1);
    c.close();
  });
});

test('xenstored commits a transaction and fails a conflicting one with EAGAIN', async () => {
  await withDaemon(async (xsd) => {
    const a = await RawClient.open(xsd.path);
    const b = await RawClient.open(xsd.path);
    await a.request(XS_TYPE.WRITE, encodeWriteRequest('/tx/n', '0'), { reqId: 1 });

    const startA = await a.request(XS_TYPE.TRANSACTION_START, encodeNulStrings(['']), {
      reqId: 2,
    });
    const txA = parseTransactionStartReply(startA.payload);
    assert.ok(txA.ok);
    const startB = await b.request(XS_TYPE.TRANSACTION_START, encodeNulStrings(['']), {
      reqId: 2,
    });
    const txB = parseTransactionStartReply(startB.payload);
    assert.ok(txB.ok);

    // Both read n, both write it: the first commit wins.
    let r = await a.request(XS_TYPE.READ, encodePathRequest('/tx/n'), {
      reqId: 3,
      txId: txA.value,
    });
    assert.deepEqual([r.txId, text(r)], [txA.value, '0']);
    await b.request(XS_TYPE.READ, encodePathRequest('/tx/n'), { reqId: 3, txId: txB.value });
    await a.request(XS_TYPE.WRITE, encodeWriteRequest('/tx/n', 'A'), { reqId: 4, txId: txA.value });
    await b.request(XS_TYPE.WRITE, encodeWriteRequest('/tx/n', 'B'), { reqId: 4, txId: txB.value });
    // Outside the transaction the old value is still visible.
    r = await a.request(XS_TYPE.READ, encodePathRequest('/tx/n'), { reqId: 5 });
    assert.equal(text(r), '0');

    r = await a.request(XS_TYPE.TRANSACTION_END, encodeTransactionEndRequest(true), {
      reqId: 6,
      txId: txA.value,
    });
    assert.deepEqual([r.type, r.txId, text(r)], [XS_TYPE.TRANSACTION_END, txA.value, 'OK\0']);
    r = await b.request(XS_TYPE.TRANSACTION_END, encodeTransactionEndRequest(true), {
      reqId: 6,
      txId: txB.value,
    });
    assert.deepEqual([r.type, r.txId, text(r)], [XS_TYPE.ERROR, txB.value, 'EAGAIN\0']);
    r = await b.request(XS_TYPE.READ, encodePathRequest('/tx/n'), { reqId: 7 });
    assert.equal(text(r), 'A');
    // The ended transaction is gone.
    r = await b.request(XS_TYPE.READ, encodePathRequest('/tx/n'), { reqId: 8, txId: txB.value });
    assert.equal(text(r), 'ENOENT\0');
    a.close();
    b.close();
  });
});

test('xenstored closes only the connection that sent an oversized length', async () => {
  await withDaemon(async (xsd) => {
    const bad = await RawClient.open(xsd.path);
    const good = await RawClient.open(xsd.path);
    await good.request(XS_TYPE.WRITE, encodeWriteRequest('/ok', 'yes'), { reqId: 1 });
    // A request answered first, then a header announcing 4097 payload bytes.
    const header = new Uint8Array(16);
    const view = new DataView(header.buffer);
    view.setUint32(0, XS_TYPE.READ, true);
    view.setUint32(4, 9, true);
    view.setUint32(12, 4097, true);
    bad.send(XS_TYPE.READ, encodePathRequest('/ok'), { reqId: 8 });
    bad.socket.write(header);
    await bad.until(() => bad.closed, 'the daemon to close the connection');
    assert.equal(
      bad.received.find((m) => m.reqId === 9),
      undefined,
    );

    const r = await good.request(XS_TYPE.READ, encodePathRequest('/ok'), { reqId: 2 });
    assert.equal(text(r), 'yes');
    assert.equal(xsd.server.connectionCount, 1);
    good.close();
  });
});

test('xenstored replaces a stale socket file and removes it on close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenstored-test-'));
  const path = join(dir, 'socket');
  try {
    const first = await serveXenstoreUnixSocket(path);
    // A second daemon on a live socket is refused.
    await assert.rejects(serveXenstoreUnixSocket(path), /another daemon is listening/);
    await first.close();
    assert.equal(existsSync(path), false);
    // A stale socket, as left by a daemon that was killed: bound, nobody listening.
    const made = spawnSync('python3', [
      '-c',
      'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
      path,
    ]);
    if (made.status === 0) assert.equal(existsSync(path), true);
    const second = await serveXenstoreUnixSocket(path);
    const c = await RawClient.open(path);
    const r = await c.request(XS_TYPE.READ, encodePathRequest('/tool/xenstored'), { reqId: 1 });
    assert.equal(r.type, XS_TYPE.READ);
    c.close();
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
