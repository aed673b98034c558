// SPDX-License-Identifier: MIT
// A real XsClient ↔ XsServer over guest ring pages (plain 4 KiB pages, synchronous
// notify functions), with INTRODUCE/RELEASE attaching and closing the rings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XENSTORE_ERROR, XS_TYPE } from '../../abi/index.js';
import { XsClient, isXsError, type XsWatchEventInfo } from '../client/index.js';
import { encodeXsMessage } from '../protocol/index.js';
import { XenStore } from '../store/index.js';
import {
  XsRingProducer,
  setXsRingError,
  setXsRingIndexes,
  xsRingError,
  xsRingIndexes,
  xsRingPage,
} from '../ring/index.js';
import { connectInProcess } from './in-process.js';
import { XsServer } from './server.js';
import { TestRingHost, type TestGuest } from './test-support.js';

interface World {
  readonly server: XsServer;
  readonly host: TestRingHost;
  readonly dom0: XsClient;
  readonly log: string[];
  guestClient(guest: TestGuest, timeoutMs?: number): XsClient;
  close(): void;
}

function world(): World {
  const host = new TestRingHost();
  const log: string[] = [];
  // Domains exist when the host knows them (the store checks owners in SET_PERMS).
  const store = new XenStore({ domainExists: (domid) => host.guests.has(domid) });
  const server = new XsServer({ store, domainRings: host, log: (l) => log.push(l) });
  const dom0 = new XsClient(connectInProcess(server), { timeoutMs: 5000 });
  const clients: XsClient[] = [dom0];
  return {
    server,
    host,
    dom0,
    log,
    guestClient(guest, timeoutMs = 5000) {
      const c = new XsClient(guest.transport(), { timeoutMs });
      clients.push(c);
      return c;
    },
    close() {
      for (const c of clients) c.close();
      server.closeAll();
    },
  };
}

/** What the toolstack does before INTRODUCE: the domain's home, owned by it. */
async function introduce(w: World, guest: TestGuest): Promise<void> {
  const home = `/local/domain/${guest.domid}`;
  await w.dom0.mkdir(home);
  await w.dom0.setPerms(home, [{ letter: 'n', domid: guest.domid }]);
  await w.dom0.introduce(guest.domid, { gfn: 0, port: guest.port });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.fail(`Timed out waiting for ${what}`);
}

test('A guest XsClient reads, writes, lists, watches and commits a transaction over its ring', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    await introduce(w, g5);
    const ring = w.server.domainRing(5);
    assert.ok(ring);
    assert.equal(ring.state, 'active');
    assert.equal(await w.dom0.isDomainIntroduced(5), true);
    const xs = w.guestClient(g5);

    assert.equal(await xs.getDomainPath(5), '/local/domain/5');
    await xs.write('data/x', 'hello'); // relative to /local/domain/5
    assert.equal(await xs.readString('data/x'), 'hello');
    assert.equal(await w.dom0.readString('/local/domain/5/data/x'), 'hello');
    assert.deepEqual(await xs.directory('/local/domain/5/data'), ['x']);
    await assert.rejects(xs.read('/tool/xenstored/none'), (e: unknown) => isXsError(e));

    const events: XsWatchEventInfo[] = [];
    await xs.watch('data', 'g', (ev) => events.push(ev));
    await w.dom0.write('/local/domain/5/data/y', 'from dom0');
    await until(() => events.length >= 2, 'the watch event');
    assert.deepEqual(
      events.map((e) => e.path),
      ['data', 'data/y'],
    );

    await xs.transaction(async (tx) => {
      const v = await tx.readString('data/x');
      await tx.write('data/x', `${v}!`);
    });
    assert.equal(await w.dom0.readString('/local/domain/5/data/x'), 'hello!');
    // Unprivileged: another domain's home and privileged requests are refused.
    await assert.rejects(xs.write('/local/domain/6/x', 'no'), (e: unknown) =>
      isXsError(e, 'EACCES'),
    );
    await assert.rejects(xs.isDomainIntroduced(5), (e: unknown) => isXsError(e, 'EACCES'));

    const { stats } = ring;
    assert.ok(stats.requests >= 10 && stats.responses >= stats.requests);
  } finally {
    w.close();
  }
});

test('Messages larger than the ring cross it over several notifications, both ways', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    await introduce(w, g5);
    const xs = w.guestClient(g5);
    const value = Uint8Array.from({ length: 3000 }, (_, i) => (i * 13) & 0xff);
    const ring = w.server.domainRing(5);
    assert.ok(ring);
    // A 3000-byte reply: dom0 writes the value, the guest reads it.
    await w.dom0.write('/local/domain/5/big', value);
    let before = ring.stats.notifications;
    assert.deepEqual(await xs.read('big'), value);
    assert.ok(ring.stats.notifications - before >= 3);
    // A 3016-byte request: parsed whole, then refused by the guest node-size quota (§8).
    before = ring.stats.requestBytes;
    await assert.rejects(xs.write('big2', value), (e: unknown) => isXsError(e, 'ENOSPC'));
    assert.equal(ring.stats.requestBytes - before, 16 + 'big2'.length + 1 + 3000);
    assert.equal(ring.state, 'active');
  } finally {
    w.close();
  }
});

test('64 pipelined requests complete in order under the outstanding quota of 20', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    await introduce(w, g5);
    await w.dom0.write('/local/domain/5/v', 'v'.repeat(200));
    const xs = w.guestClient(g5);
    // The guest queues 64 requests (as many as fit go into the ring) and kicks once; it
    // reads no replies until woken.
    g5.autoWake = false;
    g5.autoKick = false;
    const all = Array.from({ length: 64 }, () => xs.readString('v'));
    g5.kickServer();
    const ring = w.server.domainRing(5);
    assert.ok(ring);
    // Stalled at the quota, with requests still unread in the ring.
    assert.equal(ring.stats.outstanding, 20);
    assert.ok(ring.stats.requests < 64);
    const idx = xsRingIndexes(xsRingPage(g5.page));
    assert.ok(idx.reqProd !== idx.reqCons);
    g5.kickServer(); // kicks alone change nothing while the replies are unread
    assert.equal(ring.stats.outstanding, 20);
    g5.autoWake = true;
    g5.autoKick = true;
    g5.wake();
    const values = await Promise.all(all);
    assert.equal(values.length, 64);
    assert.ok(values.every((v) => v === 'v'.repeat(200)));
    assert.equal(ring.stats.requests, 64);
    assert.equal(ring.stats.responses, 64);
  } finally {
    w.close();
  }
});

test('A guest corrupting its indexes gets error RINGIDX and is ignored while another guest is served', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    const g6 = w.host.addGuest(6, 3);
    await introduce(w, g5);
    await introduce(w, g6);
    const xs5 = w.guestClient(g5);
    const xs6 = w.guestClient(g6);
    await xs5.write('a', '1');
    const page5 = xsRingPage(g5.page);
    const idx = xsRingIndexes(page5);
    setXsRingIndexes(page5, { ...idx, reqProd: idx.reqCons + 5000 });
    g5.kickServer();
    assert.equal(xsRingError(page5), XENSTORE_ERROR.RINGIDX);
    assert.equal(w.server.domainRing(5)?.state, 'ignored');
    // The hostile guest's client sees the error and fails its requests cleanly.
    await assert.rejects(xs5.read('a'), (e: unknown) => isXsError(e, 'ECONNRESET'));
    // The other guest and dom0 are unaffected; domain 5 stays introduced (C).
    await xs6.write('b', '2');
    assert.equal(await xs6.readString('b'), '2');
    assert.equal(await w.dom0.readString('/local/domain/5/a'), '1');
    assert.equal(await w.dom0.isDomainIntroduced(5), true);
    assert.match(w.log.join('\n'), /domain 5 \(error RINGIDX\)/);
  } finally {
    w.close();
  }
});

test('An oversized request header gets error PROTO; the watches of the ring are dropped', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    await introduce(w, g5);
    const xs = w.guestClient(g5);
    const events: string[] = [];
    await xs.watch('data', 'g', (ev) => events.push(ev.path));
    const page = xsRingPage(g5.page);
    const header = encodeXsMessage({
      type: XS_TYPE.WRITE,
      reqId: 77,
      txId: 0,
      payload: new Uint8Array(0),
    });
    new DataView(header.buffer).setUint32(12, 5000, true);
    assert.ok(new XsRingProducer(page, 'req').write(header).ok);
    g5.kickServer();
    assert.equal(xsRingError(page), XENSTORE_ERROR.PROTO);
    const rspBefore = xsRingIndexes(page).rspProd;
    await w.dom0.write('/local/domain/5/data/z', 'x');
    await new Promise((r) => setTimeout(r, 10));
    // No event bytes were written for the dropped watch.
    assert.equal(xsRingIndexes(page).rspProd, rspBefore);
    assert.deepEqual(events, ['data']);
  } finally {
    w.close();
  }
});

test('INTRODUCE of an unmappable ring answers ENOENT and changes nothing; a bad port EINVAL', async () => {
  const w = world();
  try {
    const introduced: string[] = [];
    await w.dom0.watch('@introduceDomain', 'i', (ev) => introduced.push(ev.path));
    await assert.rejects(w.dom0.introduce(9, { gfn: 0, port: 1 }), (e: unknown) =>
      isXsError(e, 'ENOENT'),
    );
    assert.equal(await w.dom0.isDomainIntroduced(9), false);
    const g5 = w.host.addGuest(5, 4);
    await assert.rejects(w.dom0.introduce(5, { gfn: 0, port: 1 }), (e: unknown) =>
      isXsError(e, 'EINVAL'),
    );
    assert.equal(await w.dom0.isDomainIntroduced(5), false);
    assert.equal(w.server.domainRing(5), undefined);
    // Only the initial event of the watch: no @introduceDomain for the failures.
    assert.deepEqual(introduced, ['@introduceDomain']);
    await w.dom0.introduce(5, { gfn: 0, port: g5.port });
    await until(() => introduced.length === 2, '@introduceDomain');
    // Domain 0 and a bad domid never reach the provider.
    await w.dom0.introduce(0, { gfn: 0, port: 1 });
    await assert.rejects(w.dom0.introduce(70000, { gfn: 0, port: 1 }), (e: unknown) =>
      isXsError(e, 'EINVAL'),
    );
    assert.equal(w.host.connects, 1);
  } finally {
    w.close();
  }
});

test('Re-INTRODUCE resets the ring like C domain_conn_reset: indexes zeroed, watches dropped, no event', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    await introduce(w, g5);
    const introduced: string[] = [];
    await w.dom0.watch('@introduceDomain', 'i', (ev) => introduced.push(ev.path));
    const xs = w.guestClient(g5);
    const events: string[] = [];
    await xs.watch('data', 'g', (ev) => events.push(ev.path));
    xs.close(); // the guest's driver reconnects after the reset
    await w.dom0.introduce(5, { gfn: 0, port: g5.port });
    const page = xsRingPage(g5.page);
    assert.deepEqual(xsRingIndexes(page), { reqCons: 0, reqProd: 0, rspCons: 0, rspProd: 0 });
    assert.equal(w.host.closes, 1);
    assert.equal(w.host.connects, 2);
    await w.dom0.write('/local/domain/5/data/q', '1');
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(xsRingIndexes(page).rspProd, 0); // the old watch is gone
    assert.deepEqual(introduced, ['@introduceDomain']);
    // The new connection works.
    const again = w.guestClient(g5);
    assert.equal(await again.readString('data/q'), '1');
  } finally {
    w.close();
  }
});

test('A ring given up on stays ignored after re-INTRODUCE until RELEASE and a fresh INTRODUCE', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    await introduce(w, g5);
    const page = xsRingPage(g5.page);
    setXsRingIndexes(page, { reqCons: 0, reqProd: 3000, rspCons: 0, rspProd: 0 });
    g5.kickServer();
    assert.equal(w.server.domainRing(5)?.state, 'ignored');
    await w.dom0.introduce(5, { gfn: 0, port: g5.port });
    assert.equal(w.server.domainRing(5)?.state, 'ignored');
    assert.equal(xsRingError(page), XENSTORE_ERROR.RINGIDX);
    assert.deepEqual(xsRingIndexes(page), { reqCons: 0, reqProd: 0, rspCons: 0, rspProd: 0 });
    await w.dom0.release(5);
    assert.equal(w.server.domainRing(5), undefined);
    // A rebooted guest brings a clean page.
    setXsRingError(page, XENSTORE_ERROR.NONE);
    await introduce(w, g5);
    assert.equal(w.server.domainRing(5)?.state, 'active');
    const xs = w.guestClient(g5);
    await xs.write('alive', 'yes');
    assert.equal(await w.dom0.readString('/local/domain/5/alive'), 'yes');
  } finally {
    w.close();
  }
});

test('RELEASE closes the ring: the channel goes and the guest requests then time out', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    await introduce(w, g5);
    const xs = w.guestClient(g5, 200);
    await xs.write('x', '1');
    await w.dom0.release(5);
    assert.equal(w.server.domainRing(5), undefined);
    assert.equal(w.host.closes, 1);
    assert.equal(await w.dom0.isDomainIntroduced(5), false);
    await assert.rejects(xs.read('x'), (e: unknown) => isXsError(e, 'ETIMEDOUT'));
    // RELEASE of a domain that is not introduced: ENOENT, nothing else closed.
    await assert.rejects(w.dom0.release(5), (e: unknown) => isXsError(e, 'ENOENT'));
    assert.equal(w.host.closes, 1);
  } finally {
    w.close();
  }
});

test('Without a ring provider INTRODUCE and RELEASE only update the store', async () => {
  const server = new XsServer();
  const dom0 = new XsClient(connectInProcess(server), { timeoutMs: 5000 });
  try {
    await dom0.introduce(5, { gfn: 1234, port: 7 });
    assert.equal(await dom0.isDomainIntroduced(5), true);
    assert.equal(server.domainRing(5), undefined);
    await dom0.release(5);
    assert.equal(await dom0.isDomainIntroduced(5), false);
  } finally {
    dom0.close();
    server.closeAll();
  }
});

test('closeAll() closes every guest ring', async () => {
  const w = world();
  const g5 = w.host.addGuest(5);
  await introduce(w, g5);
  w.close();
  assert.equal(w.host.closes, 1);
  assert.equal(w.server.domainRing(5), undefined);
});

// --- Hostile guests: they exhaust their own quotas, never other connections' service. ---

test('A guest that registers watches until E2BIG leaves dom0 and other guests served', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    const g6 = w.host.addGuest(6, 2);
    await introduce(w, g5);
    await introduce(w, g6);
    const hostile = w.guestClient(g5);
    const other = w.guestClient(g6);
    let refused: unknown;
    let registered = 0;
    for (let i = 0; i < 500 && refused === undefined; i++) {
      try {
        await hostile.watch(`data/w${i}`, `t${i}`, () => undefined);
        registered += 1;
      } catch (e) {
        refused = e;
      }
    }
    assert.ok(isXsError(refused, 'E2BIG'), String(refused));
    // C refuses only when more than the quota (128) already exist: the 130th.
    assert.equal(registered, 129);
    await other.write('data/ok', '1');
    assert.equal(await w.dom0.readString('/local/domain/6/data/ok'), '1');
    await other.watch('data', 'fine', () => undefined);
  } finally {
    w.close();
  }
});

test('A guest that never reads its events cannot make the daemon buffer without bound', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    const g6 = w.host.addGuest(6, 2);
    await introduce(w, g5);
    await introduce(w, g6);
    const hostile = w.guestClient(g5);
    // A long token makes every event ~3 KiB: 1000 of them are far above the 1 MiB cap.
    await hostile.watch('data', 't'.repeat(3000), () => undefined);
    // From now on the guest neither reads its ring nor is woken.
    g5.autoWake = false;
    for (let i = 0; i < 1000; i++) await w.dom0.write(`/local/domain/5/data/n${i % 50}`, 'v');
    const ring = w.server.domainRing(5);
    assert.ok(ring !== undefined);
    assert.ok(ring.stats.eventsDropped > 0, JSON.stringify(ring.stats));
    // dom0 and another guest are answered at once.
    const other = w.guestClient(g6);
    await other.write('data/still', 'served');
    assert.equal(await w.dom0.readString('/local/domain/6/data/still'), 'served');
    assert.ok(
      w.log.some((l) => /Dropped \d+ watch event\(s\) for domain 5/.test(l)),
      w.log.join('\n'),
    );
  } finally {
    w.close();
  }
});

test('A guest that creates nodes until ENOSPC (node quota) leaves the others writing', async () => {
  const w = world();
  try {
    const g5 = w.host.addGuest(5);
    const g6 = w.host.addGuest(6, 2);
    await introduce(w, g5);
    await introduce(w, g6);
    const hostile = w.guestClient(g5);
    let refused: unknown;
    for (let i = 0; i < 2000 && refused === undefined; i++) {
      try {
        await hostile.write(`data/n${i}`, 'v');
      } catch (e) {
        refused = e;
      }
    }
    assert.ok(isXsError(refused, 'ENOSPC'), String(refused));
    await w.guestClient(g6).write('data/ok', '1');
    await w.dom0.write('/local/domain/5/data/by-dom0', 'privileged writes are not counted');
    assert.equal(await w.dom0.readString('/local/domain/6/data/ok'), '1');
  } finally {
    w.close();
  }
});
