// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XS_TYPE } from '../../abi/index.js';
import { encodeXsMessage, utf8Decode, utf8Encode } from '../protocol/index.js';
import { XenStore } from '../store/index.js';
import {
  XsClient,
  XsError,
  createMemoryTransportPair,
  isXsError,
  type XsWatchEventInfo,
} from './index.js';
import { FakeXenstored, type FakeConnectionOptions } from './test-support.js';

function setup(options: FakeConnectionOptions = {}, timeoutMs = 2000) {
  const daemon = new FakeXenstored(new XenStore());
  const client = new XsClient(daemon.connect(options), { timeoutMs });
  return { daemon, client };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<XsError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof XsError, `expected an XsError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, the request succeeded`);
}

function tick(ms = 5): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

test('XsClient.write() then read() round-trips bytes and strings', async () => {
  const { client } = setup();
  await client.write('/a/b', 'hello');
  assert.equal(await client.readString('/a/b'), 'hello');
  await client.write('/bin', Uint8Array.of(1, 0, 2));
  assert.deepEqual(await client.read('/bin'), Uint8Array.of(1, 0, 2));
  await client.write('/empty', '');
  assert.equal((await client.read('/empty')).length, 0);
  client.close();
});

test('XsClient.mkdir(), directory() and rm() manage nodes', async () => {
  const { client } = setup();
  await client.mkdir('/d/x');
  await client.mkdir('/d/y');
  await client.mkdir('/d/x'); // existing: no error
  assert.deepEqual(await client.directory('/d'), ['x', 'y']);
  await client.rm('/d/x');
  assert.deepEqual(await client.directory('/d'), ['y']);
  await rejectsWith(client.read('/d/x'), 'ENOENT');
  client.close();
});

test('XsClient.directory() falls back to DIRECTORY_PART when DIRECTORY is E2BIG', async () => {
  const { client, daemon } = setup();
  const names = Array.from({ length: 300 }, (_, i) => `child-with-a-long-name-${i}`);
  for (const n of names) await client.mkdir(`/big/${n}`);
  assert.deepEqual(await client.directory('/big'), names);
  assert.ok(daemon.received.some((m) => m.type === XS_TYPE.DIRECTORY_PART));
  client.close();
  const o = setup({ noDirectoryPart: true });
  for (const n of names) await o.client.mkdir(`/big/${n}`);
  await rejectsWith(o.client.directory('/big'), 'E2BIG');
  o.client.close();
});

test('XsClient.getPerms() and setPerms() round-trip permission lists', async () => {
  const { client } = setup();
  await client.introduce(5, { gfn: 0x1234, port: 3 });
  await client.mkdir('/p');
  assert.deepEqual(await client.getPerms('/p'), [{ letter: 'n', domid: 0 }]);
  const perms = [
    { letter: 'n', domid: 5 },
    { letter: 'r', domid: 0 },
  ] as const;
  await client.setPerms('/p', perms);
  assert.deepEqual(await client.getPerms('/p'), perms);
  await rejectsWith(client.setPerms('/p', [{ letter: 'b', domid: 77 }]), 'ENOENT');
  await rejectsWith(client.setPerms('/p', []), 'EINVAL');
  client.close();
});

test('XsClient errors reject with the xenstore error name as code', async () => {
  const daemon = new FakeXenstored();
  const dom0 = new XsClient(daemon.connect());
  await dom0.introduce(5, { gfn: 1, port: 1 });
  await dom0.write('/secret', 'x');
  const guest = new XsClient(daemon.connect({ domid: 5, privileged: false }));
  const e = await rejectsWith(guest.read('/secret'), 'EACCES');
  assert.ok(isXsError(e, 'EACCES'));
  assert.match(e.message, /READ "\/secret"/);
  await rejectsWith(guest.introduce(6, { gfn: 1, port: 1 }), 'EACCES');
  await rejectsWith(dom0.read('/nope'), 'ENOENT');
  await rejectsWith(dom0.read('bad path!'), 'EINVAL');
  await rejectsWith(dom0.rm('/'), 'EINVAL');
  await rejectsWith(dom0.transactionEnd(99, true), 'ENOENT');
  await rejectsWith(dom0.write('/big', 'x'.repeat(5000)), 'E2BIG');
  dom0.close();
  guest.close();
});

test('XsClient maps an unknown error name such as EQUOTA to EINVAL and keeps the wire name', async () => {
  const [c, d] = createMemoryTransportPair();
  const client = new XsClient(c);
  d.onData(() => {
    d.send(
      encodeXsMessage({
        type: XS_TYPE.ERROR,
        reqId: 1,
        txId: 0,
        payload: utf8Encode('EQUOTA\0'),
      }),
    );
  });
  const e = await rejectsWith(client.write('/q', 'v'), 'EINVAL');
  assert.equal(e.wireName, 'EQUOTA');
  client.close();
});

test('XsClient never sends an empty payload (TRANSACTION_START and RESET_WATCHES send "\\0")', async () => {
  const { client, daemon } = setup();
  const tx = await client.transactionStart();
  await client.transactionEnd(tx, false);
  await client.resetWatches();
  await client.getDomainPath(3);
  for (const m of daemon.received) assert.ok(m.payload.length > 0, `type ${m.type}`);
  const start = daemon.received.find((m) => m.type === XS_TYPE.TRANSACTION_START);
  assert.deepEqual(start?.payload, Uint8Array.of(0));
  const end = daemon.received.find((m) => m.type === XS_TYPE.TRANSACTION_END);
  assert.equal(utf8Decode(end?.payload ?? new Uint8Array(0)), 'F\0');
  client.close();
});

test('XsClient gives every request a unique non-zero req_id', async () => {
  const { client, daemon } = setup();
  await Promise.all(Array.from({ length: 20 }, (_, i) => client.write(`/r/${i}`, 'v')));
  const ids = daemon.received.map((m) => m.reqId);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(!ids.includes(0));
  client.close();
});

test('XsClient domain operations: introduce, isDomainIntroduced, getDomainPath, setTarget, release', async () => {
  const { client } = setup();
  assert.equal(await client.getDomainPath(7), '/local/domain/7');
  assert.equal(await client.isDomainIntroduced(7), false);
  await client.introduce(7, { gfn: 0xfeffc, port: 2 });
  await client.introduce(8, { gfn: 0xfeffc, port: 2 });
  assert.equal(await client.isDomainIntroduced(7), true);
  await client.setTarget(8, 7);
  await rejectsWith(client.setTarget(8, 9), 'ENOENT');
  await client.resume(7);
  await client.release(7);
  assert.equal(await client.isDomainIntroduced(7), false);
  await rejectsWith(client.release(7), 'ENOENT');
  await rejectsWith(client.release(0), 'EINVAL');
  client.close();
});

test('XsClient.watch() delivers the initial event, then events by token for the path and below', async () => {
  const { client } = setup();
  const a: XsWatchEventInfo[] = [];
  const b: XsWatchEventInfo[] = [];
  await client.watch('/w', 'ta', (ev) => a.push(ev));
  await client.watch('/other', 'tb', (ev) => b.push(ev));
  await tick();
  assert.deepEqual(a, [{ path: '/w', token: 'ta' }]);
  assert.deepEqual(b, [{ path: '/other', token: 'tb' }]);
  await client.write('/w/x', '1');
  await client.write('/unrelated', '1');
  await tick();
  assert.deepEqual(
    a.map((e) => e.path),
    ['/w', '/w/x'],
  );
  assert.equal(b.length, 1);
  await client.unwatch('/w', 'ta');
  await client.write('/w/y', '1');
  await tick();
  assert.equal(a.length, 2);
  await rejectsWith(client.unwatch('/w', 'ta'), 'ENOENT');
  await rejectsWith(
    client.watch('/other', 'tb', () => undefined),
    'EEXIST',
  );
  client.close();
});

test('XsClient.watch() sees events from another connection and special @introduceDomain events', async () => {
  const daemon = new FakeXenstored();
  const watcher = new XsClient(daemon.connect());
  const writer = new XsClient(daemon.connect());
  const seen: string[] = [];
  await watcher.watch('/shared', 'tok', (ev) => seen.push(ev.path));
  await watcher.watch('@introduceDomain', 'intro', (ev) => seen.push(ev.path));
  await writer.write('/shared/k', 'v');
  await writer.introduce(9, { gfn: 1, port: 1 });
  await tick();
  assert.deepEqual(seen, ['/shared', '@introduceDomain', '/shared/k', '@introduceDomain']);
  watcher.close();
  writer.close();
});

test('XsClient accepts events before or after the reply (C and O order)', async () => {
  for (const eventsAfterReply of [false, true]) {
    const { client } = setup({ eventsAfterReply });
    const seen: string[] = [];
    await client.watch('/o', 't', (ev) => seen.push(ev.path));
    await client.write('/o/a', '1');
    await tick();
    assert.deepEqual(seen, ['/o', '/o/a'], `eventsAfterReply=${eventsAfterReply}`);
    client.close();
  }
});

test('XsClient a throwing watch callback is logged and does not break the connection', async () => {
  const daemon = new FakeXenstored();
  const lines: string[] = [];
  const client = new XsClient(daemon.connect(), { log: (l) => lines.push(l) });
  await client.watch('/t', 'boom', () => {
    throw new Error('callback failed');
  });
  await tick();
  assert.equal(await client.getDomainPath(1), '/local/domain/1');
  assert.ok(lines.some((l) => l.includes('callback failed')));
  client.close();
});

test('XsClient.resetWatches() drops the watches on both sides', async () => {
  const { client } = setup();
  const seen: string[] = [];
  await client.watch('/r', 't', (ev) => seen.push(ev.path));
  await client.resetWatches();
  await client.write('/r/x', '1');
  await tick();
  assert.deepEqual(seen, ['/r']);
  await client.watch('/r', 't', (ev) => seen.push(ev.path)); // not EEXIST any more
  client.close();
});

test('XsClient.transactionStart()/transactionEnd() commit and abort', async () => {
  const { client } = setup();
  const tx = await client.transactionStart();
  assert.ok(tx > 0);
  await client.write('/t/a', '1', { tx });
  await rejectsWith(client.read('/t/a'), 'ENOENT'); // not visible outside before commit
  assert.equal(await client.readString('/t/a', { tx }), '1');
  await client.transactionEnd(tx, true);
  assert.equal(await client.readString('/t/a'), '1');
  const tx2 = await client.transactionStart();
  await client.write('/t/a', '2', { tx: tx2 });
  await client.transactionEnd(tx2, false);
  assert.equal(await client.readString('/t/a'), '1');
  await rejectsWith(client.transactionEnd(tx2, true), 'ENOENT'); // the id is dead
  client.close();
});

test('XsClient.transaction() reruns the whole body when the commit answers EAGAIN', async () => {
  const daemon = new FakeXenstored();
  const client = new XsClient(daemon.connect());
  const other = new XsClient(daemon.connect());
  await client.write('/counter', '0');
  let attempts = 0;
  const result = await client.transaction(async (tx) => {
    attempts++;
    const n = Number(await tx.readString('/counter'));
    if (attempts === 1) await other.write('/counter', '10'); // conflicting write
    await tx.write('/counter', String(n + 1));
    return n + 1;
  });
  assert.equal(attempts, 2);
  assert.equal(result, 11);
  assert.equal(await client.readString('/counter'), '11');
  const ends = daemon.received.filter((m) => m.type === XS_TYPE.TRANSACTION_END);
  assert.equal(ends.length, 2);
  client.close();
  other.close();
});

test('XsClient.transaction() gives up with EAGAIN after maxRetries', async () => {
  const daemon = new FakeXenstored();
  const client = new XsClient(daemon.connect());
  const other = new XsClient(daemon.connect());
  await client.write('/c', '0');
  let attempts = 0;
  await rejectsWith(
    client.transaction(
      async (tx) => {
        attempts++;
        await tx.read('/c');
        await other.write('/c', String(attempts));
        await tx.write('/c', 'mine');
      },
      { maxRetries: 2 },
    ),
    'EAGAIN',
  );
  assert.equal(attempts, 3);
  assert.equal(await client.readString('/c'), '3');
  client.close();
  other.close();
});

test('XsClient.transaction() aborts and rethrows when the body throws', async () => {
  const { client, daemon } = setup();
  await assert.rejects(
    client.transaction(async (tx) => {
      await tx.write('/abort/me', 'x');
      throw new TypeError('body failed');
    }),
    TypeError,
  );
  await rejectsWith(client.read('/abort/me'), 'ENOENT');
  const end = daemon.received.find((m) => m.type === XS_TYPE.TRANSACTION_END);
  assert.equal(utf8Decode(end?.payload ?? new Uint8Array(0)), 'F\0');
  client.close();
});

test('XsClient rejects a request with ETIMEDOUT when no reply comes', async () => {
  const { client } = setup({ mute: [XS_TYPE.READ] }, 30);
  const e = await rejectsWith(client.read('/slow'), 'ETIMEDOUT');
  assert.match(e.message, /30 ms/);
  assert.equal(client.pendingRequests, 0);
  await rejectsWith(client.read('/x', { timeoutMs: 1 }), 'ETIMEDOUT');
  assert.equal(await client.getDomainPath(2), '/local/domain/2'); // still usable
  client.close();
});

test('XsClient rejects every pending request with ECONNRESET when the transport closes', async () => {
  const [c, d] = createMemoryTransportPair();
  const client = new XsClient(c);
  d.onData(() => undefined); // a daemon that never answers
  const pending = [client.read('/a'), client.write('/b', 'v'), client.transactionStart()];
  await tick();
  assert.equal(client.pendingRequests, 3);
  d.close();
  for (const p of pending) await rejectsWith(p, 'ECONNRESET');
  assert.ok(client.closed);
  await rejectsWith(client.read('/after'), 'ECONNRESET');
});

test('XsClient.close() rejects pending requests', async () => {
  const { client } = setup({ mute: [XS_TYPE.READ] });
  const p = client.read('/a');
  client.close();
  await rejectsWith(p, 'ECONNRESET');
});

test('XsClient matches interleaved concurrent replies by req_id', async () => {
  const { client } = setup({ reverseReplies: true });
  await Promise.all(Array.from({ length: 10 }, (_, i) => client.write(`/i/${i}`, `v${i}`)));
  const values = await Promise.all(
    Array.from({ length: 10 }, (_, i) => client.readString(`/i/${i}`)),
  );
  assert.deepEqual(
    values,
    Array.from({ length: 10 }, (_, i) => `v${i}`),
  );
  const mixed = await Promise.allSettled([
    client.readString('/i/3'),
    client.read('/missing'),
    client.directory('/i'),
    client.getDomainPath(4),
  ]);
  assert.equal(mixed[0].status === 'fulfilled' && mixed[0].value, 'v3');
  assert.ok(mixed[1].status === 'rejected' && isXsError(mixed[1].reason, 'ENOENT'));
  assert.equal(mixed[2].status === 'fulfilled' && mixed[2].value.length, 10);
  assert.equal(mixed[3].status === 'fulfilled' && mixed[3].value, '/local/domain/4');
  client.close();
});

test('XsClient falls back to request order when the daemon echoes req_id 0', async () => {
  const { client } = setup({ echoZeroReqId: true, chunkBytes: 3 });
  await client.write('/z/a', 'A');
  await client.write('/z/b', 'B');
  const seen: string[] = [];
  await client.watch('/z', 'tok', (ev) => seen.push(ev.path));
  const [a, missing, b] = await Promise.allSettled([
    client.readString('/z/a'),
    client.read('/z/none'),
    client.readString('/z/b'),
  ]);
  assert.equal(a.status === 'fulfilled' && a.value, 'A');
  assert.ok(missing.status === 'rejected' && isXsError(missing.reason, 'ENOENT'));
  assert.equal(b.status === 'fulfilled' && b.value, 'B');
  await tick();
  assert.deepEqual(seen, ['/z']); // the event (req_id 0 too) was not taken as a reply
  client.close();
});

test('XsClient reassembles replies split at every byte', async () => {
  const { client } = setup({ chunkBytes: 1 });
  await client.write('/s', 'split');
  assert.equal(await client.readString('/s'), 'split');
  client.close();
});

test('XsClient rejects a reply of the wrong type with EPROTO and drops unknown req_ids', async () => {
  const [c, d] = createMemoryTransportPair();
  const lines: string[] = [];
  const client = new XsClient(c, { log: (l) => lines.push(l) });
  d.onData(() => {
    d.send(encodeXsMessage({ type: XS_TYPE.READ, reqId: 999, txId: 0, payload: utf8Encode('x') }));
    d.send(
      encodeXsMessage({ type: XS_TYPE.MKDIR, reqId: 1, txId: 0, payload: utf8Encode('OK\0') }),
    );
  });
  await rejectsWith(client.read('/r'), 'EPROTO');
  assert.ok(lines.some((l) => l.includes('req_id 999')));
  client.close();
});

test('XsClient closes the connection with EPROTO on an oversized reply header', async () => {
  const [c, d] = createMemoryTransportPair();
  const client = new XsClient(c, { maxReplyPayload: 4096 });
  d.onData(() => {
    const h = new Uint8Array(16);
    const v = new DataView(h.buffer);
    v.setUint32(0, XS_TYPE.READ, true);
    v.setUint32(4, 1, true);
    v.setUint32(12, 5000, true);
    d.send(h);
  });
  await rejectsWith(client.read('/r'), 'EPROTO');
  assert.ok(client.closed);
});
