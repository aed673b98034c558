// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PcibackError } from '../errors.js';
import { XsClient, type XsTransaction } from '../xenstore/client/index.js';
import { FakeXenstored } from '../xenstore/client/test-support.js';
import { XenStore } from '../xenstore/store/index.js';
import { XS_TYPE } from '../abi/index.js';
import { attachPci, detachPci, formatPciList, listPci, parsePciSpec } from './index.js';

const D = 5;
const BE = `/local/domain/0/backend/pci/${D}/0`;
const FE = `/local/domain/${D}/device/pci/0`;

function setup() {
  const store = new XenStore();
  store.introduceDomain(D);
  const daemon = new FakeXenstored(store);
  const client = new XsClient(daemon.connect(), { timeoutMs: 2000 });
  return { daemon, client };
}

/** Every node under `root` as `path = value [perms]`. */
async function dump(client: XsClient, root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (path: string): Promise<void> => {
    const perms = (await client.getPerms(path)).map((p) => `${p.letter}${p.domid}`).join(',');
    out[path.slice(root.length) || '.'] = `${await client.readString(path)} [${perms}]`;
    for (const child of await client.directory(path)) await walk(`${path}/${child}`);
  };
  await walk(root);
  return out;
}

async function exists(client: XsClient, path: string): Promise<boolean> {
  try {
    await client.read(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A minimal pciback: on backend state 1 or 7 it exports devices in state 1 (vdev-i,
 * state-i=3), releases those in state 5, and goes to Connected (via Reconfigured).
 */
async function fakeBackend(daemon: FakeXenstored): Promise<XsClient> {
  const be = new XsClient(daemon.connect(), { timeoutMs: 2000 });
  await be.watch(`${BE}/state`, 'fake-be', () => {
    void (async () => {
      let state: string;
      try {
        state = await be.readString(`${BE}/state`);
      } catch {
        return;
      }
      if (state !== '1' && state !== '7') return;
      const num = Number(await be.readString(`${BE}/num_devs`));
      for (let i = 0; i < num; i++) {
        if ((await be.readString(`${BE}/state-${i}`)) === '1') {
          await be.write(`${BE}/vdev-${i}`, `0000:00:${(i + 1).toString(16).padStart(2, '0')}.00`);
          await be.write(`${BE}/state-${i}`, '3');
        }
      }
      if (state === '7') await be.write(`${BE}/state`, '8');
      await be.write(`${BE}/state`, '4');
    })();
  });
  return be;
}

const OWN_BE = '[n0,r5]';
const OWN_FE = '[n5,r0]';

test('attachPci() first device: every key, value and permission of peers.md §1.3, in one transaction', async () => {
  const { daemon, client } = setup();
  daemon.received.length = 0;
  const r = await attachPci(client, {
    domid: D,
    domainName: 'guest',
    spec: parsePciSpec('03:00.0@08,permissive=1'),
  });
  assert.equal(r.index, 0);
  assert.equal(r.hotplug, false);
  assert.deepEqual(await dump(client, BE), {
    '.': ` ${OWN_BE}`,
    '/frontend': `${FE} ${OWN_BE}`,
    '/frontend-id': `5 ${OWN_BE}`,
    '/online': `1 ${OWN_BE}`,
    '/state': `1 ${OWN_BE}`,
    '/domain': `guest ${OWN_BE}`,
    '/key-0': `0000:03:00.0 ${OWN_BE}`,
    '/dev-0': `0000:03:00.0 ${OWN_BE}`,
    '/vdevfn-0': `40 ${OWN_BE}`,
    '/opts-0': `msitranslate=0,power_mgmt=0,permissive=1,rdm_policy=strict ${OWN_BE}`,
    '/state-0': `1 ${OWN_BE}`,
    '/num_devs': `1 ${OWN_BE}`,
  });
  assert.deepEqual(await dump(client, FE), {
    '.': ` ${OWN_FE}`,
    '/backend': `${BE} ${OWN_FE}`,
    '/backend-id': `0 ${OWN_FE}`,
    '/state': `1 ${OWN_FE}`,
  });
  assert.equal(await client.readString('/libxl/pci/0000-03-00-0/domid'), '5');
  // Every node operation ran inside the same (non-zero) transaction.
  const ops = new Set<number>([XS_TYPE.WRITE, XS_TYPE.MKDIR, XS_TYPE.RM, XS_TYPE.SET_PERMS]);
  const txIds = new Set(daemon.received.filter((m) => ops.has(m.type)).map((m) => m.txId));
  assert.equal(txIds.size, 1);
  assert.ok(![...txIds].includes(0));
  // rm then mkdir, as libxl.
  assert.ok(daemon.received.some((m) => m.type === XS_TYPE.RM));
  client.close();
});

test('attachPci() omits vdevfn-N when 0 and writes name-N for a named device', async () => {
  const { client } = setup();
  await client.write('/libxl/pci/0000-04-00-1/name', 'nic');
  await attachPci(client, { domid: D, domainName: 'g', spec: parsePciSpec('name=nic') });
  assert.equal(await client.readString(`${BE}/dev-0`), '0000:04:00.1');
  assert.equal(await client.readString(`${BE}/name-0`), 'nic');
  assert.equal(await exists(client, `${BE}/vdevfn-0`), false);
  await assert.rejects(
    attachPci(client, { domid: D, domainName: 'g', spec: parsePciSpec('name=none') }),
    (e: unknown) => e instanceof PcibackError && e.code === 'PCI_NAME_NOT_FOUND',
  );
  client.close();
});

test('attachPci() hot add waits for Connected, appends *-1, bumps num_devs, state=7; refuses a duplicate', async () => {
  const { daemon, client } = setup();
  await attachPci(client, { domid: D, domainName: 'guest', spec: parsePciSpec('03:00.0') });
  const be = await fakeBackend(daemon);
  // Capture the keys right after the hot-add commit, before the fake backend reacts.
  const seen: string[] = [];
  const spy = new XsClient(daemon.connect(), { timeoutMs: 2000 });
  await spy.watch(`${BE}/state`, 'spy', () => {
    void spy.readString(`${BE}/state`).then(
      (s) => seen.push(s),
      () => undefined,
    );
  });
  const r = await attachPci(client, {
    domid: D,
    domainName: 'guest',
    spec: parsePciSpec('03:00.1@0a,msitranslate=1,rdm_policy=relaxed'),
  });
  assert.deepEqual([r.index, r.hotplug], [1, true]);
  assert.equal(await client.readString(`${BE}/num_devs`), '2');
  assert.equal(await client.readString(`${BE}/key-1`), '0000:03:00.1');
  assert.equal(await client.readString(`${BE}/dev-1`), '0000:03:00.1');
  assert.equal(await client.readString(`${BE}/vdevfn-1`), '50');
  assert.equal(
    await client.readString(`${BE}/opts-1`),
    'msitranslate=1,power_mgmt=0,permissive=0,rdm_policy=relaxed',
  );
  assert.deepEqual(
    (await client.getPerms(`${BE}/dev-1`)).map((p) => `${p.letter}${p.domid}`),
    ['n0', 'r5'],
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(seen.includes('7'), `backend states seen: ${seen.join(' ')}`);
  assert.equal(await client.readString(`${BE}/state-1`), '3'); // exported by the fake
  assert.equal(await client.readString(`${BE}/state`), '4');
  await assert.rejects(
    attachPci(client, { domid: D, domainName: 'guest', spec: parsePciSpec('0000:03:00.1') }),
    (e: unknown) =>
      e instanceof PcibackError &&
      e.code === 'PCI_ALREADY_ATTACHED' &&
      e.message.includes('"0000:03:00.1"'),
  );
  assert.equal(await client.readString(`${BE}/num_devs`), '2');
  be.close();
  spy.close();
  client.close();
});

test('detachPci() sets state-i=5 and state=7, then compacts indexes; the last detach removes both trees', async () => {
  const { daemon, client } = setup();
  await attachPci(client, { domid: D, domainName: 'guest', spec: parsePciSpec('03:00.0@08') });
  const be = await fakeBackend(daemon);
  await attachPci(client, { domid: D, domainName: 'guest', spec: parsePciSpec('03:00.1') });
  await attachPci(client, { domid: D, domainName: 'guest', spec: parsePciSpec('04:00.0@0c') });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(
    formatPciList(await listPci(client, D)),
    'Vdev Device\n08.0 0000:03:00.0\n02.0 0000:03:00.1\n0c.0 0000:04:00.0\n',
  );
  const closing: string[] = [];
  const spy = new XsClient(daemon.connect(), { timeoutMs: 2000 });
  await spy.watch(`${BE}/state-0`, 'spy', () => {
    void spy.readString(`${BE}/state-0`).then(
      (s) => closing.push(s),
      () => undefined,
    );
  });

  const r = await detachPci(client, { domid: D, bdf: '03:00.0' });
  assert.deepEqual(r, { index: 0, removedBackend: false });
  assert.ok(closing.includes('5'), `state-0 seen: ${closing.join(' ')}`);
  assert.equal(await client.readString(`${BE}/num_devs`), '2');
  assert.equal(await client.readString(`${BE}/dev-0`), '0000:03:00.1');
  assert.equal(await client.readString(`${BE}/key-0`), '0000:03:00.1');
  assert.equal(await client.readString(`${BE}/vdev-0`), '0000:00:02.00'); // moved down
  assert.equal(await client.readString(`${BE}/state-0`), '3');
  assert.equal(await exists(client, `${BE}/vdevfn-0`), false); // the removed device's
  assert.equal(await client.readString(`${BE}/dev-1`), '0000:04:00.0');
  assert.equal(await client.readString(`${BE}/vdevfn-1`), '60');
  for (const key of ['state', 'key', 'dev', 'vdev', 'opts', 'vdevfn']) {
    assert.equal(await exists(client, `${BE}/${key}-2`), false, `${key}-2`);
  }
  assert.equal(await exists(client, '/libxl/pci/0000-03-00-0/domid'), false);
  assert.equal(await client.readString('/libxl/pci/0000-04-00-0/domid'), '5');
  assert.equal(
    formatPciList(await listPci(client, D)),
    'Vdev Device\n02.0 0000:03:00.1\n0c.0 0000:04:00.0\n',
  );

  await assert.rejects(
    detachPci(client, { domid: D, bdf: '03:00.0' }),
    (e: unknown) => e instanceof PcibackError && e.code === 'PCI_NOT_ATTACHED',
  );
  await detachPci(client, { domid: D, bdf: '0000:04:00.0' });
  const last = await detachPci(client, { domid: D, bdf: '03:00.1' });
  assert.deepEqual(last, { index: 0, removedBackend: true });
  assert.equal(await exists(client, BE), false);
  assert.equal(await exists(client, `/local/domain/0/backend/pci/${D}`), false);
  assert.equal(await exists(client, FE), false);
  assert.equal(await exists(client, '/libxl/pci/0000-03-00-1/domid'), false);
  assert.deepEqual(await listPci(client, D), []);
  assert.equal(formatPciList([]), '');
  be.close();
  spy.close();
  client.close();
});

test('listPci() reads opts-N like libxl (leading spaces skipped) and skips bad dev-N', async () => {
  const { client } = setup();
  await client.write(`${BE}/num_devs`, '2');
  await client.write(`${BE}/dev-0`, 'junk');
  await client.write(`${BE}/dev-1`, '0000:0a:1f.7');
  await client.write(`${BE}/vdevfn-1`, 'ff');
  await client.write(
    `${BE}/opts-1`,
    'msitranslate=1, power_mgmt=1,permissive=1,rdm_policy=relaxed',
  );
  const rows = await listPci(client, D);
  assert.equal(rows.length, 1);
  assert.deepEqual(
    { ...rows[0], address: rows[0]?.address.toString() },
    {
      index: 1,
      address: '0000:0a:1f.7',
      vdevfn: 0xff,
      name: null,
      permissive: true,
      msitranslate: true,
      power_mgmt: true,
      rdm_policy: 'relaxed',
    },
  );
  assert.equal(formatPciList(rows), 'Vdev Device\n1f.7 0000:0a:1f.7\n');
  client.close();
});

test('attachPci() retries the whole transaction when another client writes in the backend dir', async () => {
  const { daemon } = setup();
  const other = new XsClient(daemon.connect(), { timeoutMs: 2000 });
  let attempts = 0;
  class Interfering extends XsClient {
    override transaction<T>(
      body: (tx: XsTransaction) => Promise<T>,
      options?: { maxRetries?: number },
    ): Promise<T> {
      return super.transaction(async (tx) => {
        const result = await body(tx);
        attempts++;
        if (attempts === 1) await other.write(`${BE}/aerState`, 'aerfail');
        return result;
      }, options);
    }
  }
  const client = new Interfering(daemon.connect(), { timeoutMs: 2000 });
  await attachPci(client, { domid: D, domainName: 'guest', spec: parsePciSpec('03:00.0') });
  assert.equal(attempts, 2);
  assert.equal(await client.readString(`${BE}/num_devs`), '1');
  assert.equal(await client.readString(`${BE}/dev-0`), '0000:03:00.0');
  // The retry's rm of the backend directory removed the interfering key, as libxl's does.
  assert.equal(await exists(client, `${BE}/aerState`), false);
  other.close();
  client.close();
});

test('attachPci() refuses a device attached to another domain and a wildcard function', async () => {
  const { client } = setup();
  await client.write('/libxl/pci/0000-03-00-0/domid', '7');
  await assert.rejects(
    attachPci(client, { domid: D, domainName: 'g', spec: parsePciSpec('03:00.0') }),
    (e: unknown) => e instanceof PcibackError && e.code === 'PCI_ASSIGNED_ELSEWHERE',
  );
  await assert.rejects(
    attachPci(client, { domid: D, domainName: 'g', spec: parsePciSpec('03:00.*@04') }),
    RangeError,
  );
  assert.equal(await exists(client, BE), false);
  client.close();
});
