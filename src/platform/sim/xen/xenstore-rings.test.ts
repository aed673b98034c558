// SPDX-License-Identifier: MIT
// Guest xenstore rings on the simulated host: the domain builder's page, grant and port,
// INTRODUCE through SimXenstoreRings, a guest client over createGuestXenstoreTransport
// (on this thread and in a worker next to a pcifront-style blocking wait), RELEASE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { isPcibackError } from '../../../errors.js';
import { XsClient, isXsError } from '../../../xenstore/client/index.js';
import { XsServer, connectInProcess } from '../../../xenstore/server/index.js';
import { XenStore } from '../../../xenstore/store/index.js';
import { DOM0, evtchnPort, type DomId } from '../../types.js';
import { PORT_STATE } from './event-area.js';
import { createGuestXenstoreTransport } from './guest-xenstore.js';
import { isSimGuestInit } from './guest-init.js';
import { GNTTAB_RESERVED_XENSTORE, SimHypervisor } from './hypervisor.js';
import { ManualJiffiesClock } from './jiffies.js';
import { GTF, XEN_PAGE_SIZE } from './xen-abi.js';
import type { XenstoreGuestMessage } from './xenstore-guest-worker.js';
import { SimXenstoreRings } from './xenstore-rings.js';

interface Host {
  readonly xen: SimHypervisor;
  readonly rings: SimXenstoreRings;
  readonly server: XsServer;
  readonly dom0: XsClient;
  close(): void;
}

function host(): Host {
  const xen = new SimHypervisor({ clock: new ManualJiffiesClock() });
  const rings = new SimXenstoreRings(xen);
  const store = new XenStore({
    domainExists: (domid) => xen.guestInit(domid as DomId) !== undefined,
  });
  const server = new XsServer({ store, domainRings: rings });
  const dom0 = new XsClient(connectInProcess(server), { timeoutMs: 5000 });
  return {
    xen,
    rings,
    server,
    dom0,
    close() {
      dom0.close();
      server.closeAll();
      xen.dispose();
    },
  };
}

/** The toolstack's part: the domain's home owned by it, then INTRODUCE. */
async function introduce(h: Host, domid: DomId): Promise<void> {
  const xs = h.xen.xenstoreOf(domid);
  assert.ok(xs);
  await h.dom0.mkdir(`/local/domain/${domid}`);
  await h.dom0.setPerms(`/local/domain/${domid}`, [{ letter: 'n', domid }]);
  await h.dom0.introduce(domid, { gfn: xs.gfn, port: xs.port });
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate')
    .length;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) assert.fail(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('createDomain() sets up the xenstore ring like the domain builder', () => {
  const xen = new SimHypervisor({ clock: new ManualJiffiesClock(), backend: { autoStart: false } });
  try {
    const { domid, init } = xen.createDomain({ memoryPages: 4 });
    assert.ok(init.xenstore);
    assert.equal(init.xenstore.gfn, 0);
    assert.deepEqual(xen.xenstoreOf(domid), init.xenstore);
    assert.equal(isSimGuestInit(init), true);
    // Grant ref 1: frame 0, to dom0, read-write.
    const grants = new Int32Array(init.grantTable);
    const word = Atomics.load(grants, GNTTAB_RESERVED_XENSTORE * 2);
    assert.equal(word & 0xffff, GTF.permit_access);
    assert.equal(word >>> 16, DOM0);
    assert.equal(Atomics.load(grants, GNTTAB_RESERVED_XENSTORE * 2 + 1), 0);
    // The store port: unbound for dom0, masked until the guest's driver takes it.
    const port = init.xenstore.port;
    assert.deepEqual(xen.eventArea.portEntry(domid, port), {
      state: PORT_STATE.UNBOUND,
      remoteDomid: DOM0,
      remotePort: 0,
    });
    assert.equal(xen.eventArea.isMasked(domid, port), true);
    // The page is zeroed, and the guest's allocator and grant table keep off it.
    assert.ok(new Uint8Array(init.memory, 0, XEN_PAGE_SIZE).every((b) => b === 0));
    const guest = xen.guestHypercalls(domid);
    assert.equal(guest.allocPage(), 1);
    assert.equal(guest.grantAccess(DOM0, 1), 8);
    assert.notEqual(guest.allocUnbound(DOM0), port);

    const bare = xen.createDomain({ memoryPages: 1, xenstore: false });
    assert.equal(bare.init.xenstore, undefined);
    assert.equal(xen.xenstoreOf(bare.domid), undefined);
    assert.equal(xen.xenstoreOf(DOM0), undefined);
    assert.throws(() => xen.createDomain({ memoryPages: 1, reservedPages: 0 }), RangeError);
    assert.equal(isSimGuestInit({ ...init, xenstore: { gfn: -1, port: 1 } }), false);
    assert.equal(isSimGuestInit({ ...init, xenstore: { gfn: 0, port: 0 } }), false);
    assert.throws(
      () => createGuestXenstoreTransport(xen.guestHypercalls(bare.domid), bare.init),
      (e: unknown) => isPcibackError(e, 'XS_NO_RING'),
    );
  } finally {
    xen.dispose();
  }
});

test('A guest on this thread uses xenstore over its ring; RELEASE cuts it off; nothing keeps running', async () => {
  const baseline = timers();
  const h = host();
  const { domid, init } = h.xen.createDomain({ memoryPages: 8, name: 'guest' });
  const hv = h.xen.guestHypercalls(domid, { spinIterations: 0 });
  let guest: XsClient | undefined;
  try {
    await introduce(h, domid);
    assert.equal(h.rings.openRings, 1);
    assert.equal(h.xen.grantMapper(DOM0).mappedCount, 1);
    guest = new XsClient(createGuestXenstoreTransport(hv, init, { sweepIntervalMs: 20 }), {
      timeoutMs: 3000,
    });

    await guest.write('data/x', 'from guest');
    assert.equal(await guest.readString('data/x'), 'from guest');
    assert.equal(await h.dom0.readString(`/local/domain/${domid}/data/x`), 'from guest');
    assert.deepEqual(await guest.directory('data'), ['x']);

    const events: string[] = [];
    await guest.watch('data', 'w', (ev) => events.push(ev.path));
    await h.dom0.write(`/local/domain/${domid}/data/y`, 'from dom0');
    await until(() => events.includes('data/y'), 'the watch event');

    // Another port of the guest (pcifront's), kicked by dom0: xenstore traffic neither
    // consumes its pending bit nor shows up in wait() (the store port is masked).
    const opPort = hv.allocUnbound(DOM0);
    const bound = h.xen.eventChannels(DOM0).bindInterdomain(domid, opPort, () => undefined);
    assert.ok(bound.ok);
    bound.channel.notify();
    for (let i = 0; i < 5; i++) await guest.write(`data/n${i}`, String(i));
    assert.equal(hv.poll(opPort, 0), true);
    assert.deepEqual(hv.wait(0), [opPort]);
    assert.deepEqual(hv.wait(0), []);
    await guest.write('data/after-wait', '1');
    bound.channel.unbind();

    await h.dom0.release(domid);
    assert.equal(h.rings.openRings, 0);
    assert.equal(h.xen.grantMapper(DOM0).mappedCount, 0);
    // dom0's end is gone: the guest's port is unbound for dom0 again.
    assert.equal(
      h.xen.eventArea.portEntry(domid, init.xenstore?.port ?? 0).state,
      PORT_STATE.UNBOUND,
    );
    await assert.rejects(guest.read('data/x', { timeoutMs: 150 }), (e: unknown) =>
      isXsError(e, 'ETIMEDOUT'),
    );
  } finally {
    guest?.close();
    h.close();
  }
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(timers(), baseline);
});

test('Destroying the domain closes its xenstore transport and fails pending requests', async () => {
  const h = host();
  const { domid, init } = h.xen.createDomain({ memoryPages: 4 });
  const hv = h.xen.guestHypercalls(domid, { spinIterations: 0 });
  const transport = createGuestXenstoreTransport(hv, init, { sweepIntervalMs: 10 });
  const guest = new XsClient(transport, { timeoutMs: 3000 });
  try {
    await introduce(h, domid);
    await guest.write('a', '1');
    h.xen.destroyDomain(domid);
    await until(() => transport.closed, 'the transport to close');
    await assert.rejects(guest.read('a'), (e: unknown) => isXsError(e, 'ECONNRESET'));
  } finally {
    guest.close();
    h.close();
  }
});

test('INTRODUCE of a missing domain or with a wrong port fails and leaves nothing mapped', async () => {
  const h = host();
  try {
    const { domid } = h.xen.createDomain({ memoryPages: 4 });
    await assert.rejects(h.dom0.introduce(40, { gfn: 0, port: 1 }), (e: unknown) =>
      isXsError(e, 'ENOENT'),
    );
    const xs = h.xen.xenstoreOf(domid);
    assert.ok(xs);
    await assert.rejects(h.dom0.introduce(domid, { gfn: 0, port: xs.port + 5 }), (e: unknown) =>
      isXsError(e, 'EINVAL'),
    );
    assert.equal(h.xen.grantMapper(DOM0).mappedCount, 0);
    assert.equal(h.rings.openRings, 0);
    assert.equal(await h.dom0.isDomainIntroduced(domid), false);
    assert.equal(evtchnPort(xs.port), xs.port);
  } finally {
    h.close();
  }
});

test('A guest worker uses xenstore while blocking in a pcifront-style wait, then exits by itself', async () => {
  const h = host();
  const { domid, init } = h.xen.createDomain({ memoryPages: 8 });
  const home = `/local/domain/${domid}`;
  const worker = new Worker(new URL('./xenstore-guest-worker.js', import.meta.url), {
    workerData: { xen: init },
  });
  const seen: XenstoreGuestMessage[] = [];
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  let opChannel: { notify(): void } | undefined;
  try {
    await introduce(h, domid);
    await h.dom0.write(`${home}/data/from-dom0`, 'hello guest');
    await new Promise<void>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('message', (m: XenstoreGuestMessage) => {
        seen.push(m);
        switch (m.type) {
          case 'ready': {
            const r = h.xen
              .eventChannels(DOM0)
              .bindInterdomain(domid, evtchnPort(m.opPort), () => undefined);
            if (!r.ok) reject(new Error(`bind failed: ${r.errno}`));
            else opChannel = r.channel;
            break;
          }
          case 'blocking': {
            // dom0 answers the read while the guest thread is blocked; the op kick comes
            // only once the reply is in the guest's ring.
            // Replies so far: the WRITE's and the READ's.
            const ring = h.server.domainRing(domid);
            void until(() => (ring?.stats.responses ?? 0) >= 2, 'the reply').then(() => {
              setTimeout(() => opChannel?.notify(), 50);
            }, reject);
            break;
          }
          case 'event':
            if (m.path === 'data/cmd') void h.dom0.write(`${home}/data/cmd/go`, '1');
            break;
          case 'done':
            resolve();
            break;
          case 'failed':
            reject(new Error(m.message));
            break;
          case 'written':
          case 'unblocked':
          case 'read':
            break;
        }
      });
    });
    assert.equal(await h.dom0.readString(`${home}/data/worker`), 'up');
    const unblocked = seen.find((m) => m.type === 'unblocked');
    assert.ok(unblocked?.type === 'unblocked');
    assert.equal(unblocked.opEvent, true);
    assert.ok(unblocked.blockedMs >= 40, `blocked only ${unblocked.blockedMs} ms`);
    assert.deepEqual(
      seen.find((m) => m.type === 'read'),
      { type: 'read', value: 'hello guest' },
    );
    assert.deepEqual(
      seen.flatMap((m) => (m.type === 'event' ? [m.path] : [])),
      ['data/cmd', 'data/cmd/go'],
    );
    // The worker ends on its own: no timer or wait of the transport is left behind.
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => {
        setTimeout(() => {
          r('still running');
        }, 5000);
      }),
    ]);
    assert.equal(code, 0);
  } finally {
    await worker.terminate();
    h.close();
  }
});
