// SPDX-License-Identifier: MIT
/**
 * Our toolstack (attachPci cold + hot, listPci/formatPciList, detachPci with index
 * compaction and the last detach removing both trees, watchAerFailures) end to end over a
 * Unix socket, against Xen's real C xenstored and oxenstored and against
 * `pciback xenstored`: one scenario, the same assertions for each daemon. The backend is a
 * parameter ({@link PcibackPeerFactory}); today the scripted one of
 * test/support/scripted-pciback.ts plays pciback.
 */
import assert from 'node:assert/strict';
import { PcibackError } from '../../src/errors.js';
import {
  attachPci,
  detachPci,
  formatPciList,
  listPci,
  parsePciSpec,
  waitForBackendState,
  watchAerFailures,
} from '../../src/toolstack/index.js';
import { isXsError, XsClient } from '../../src/xenstore/client/index.js';
import {
  connectXenstored,
  testOnEveryXenstored,
  type XenstoredHandle,
} from '../support/real-xenstored.js';
import { startScriptedPciback, type PcibackPeerFactory } from '../support/scripted-pciback.js';

const D = 5;
const BE = `/local/domain/0/backend/pci/${D}/0`;
const FE = `/local/domain/${D}/device/pci/0`;
const OWN_BE = '[n0,r5]';
const OWN_FE = '[n5,r0]';

async function client(xsd: XenstoredHandle): Promise<XsClient> {
  return new XsClient(await connectXenstored(xsd.socketPath), { timeoutMs: 5000 });
}

/** Every node under `root` as `path = value [perms]`. */
async function dump(xs: XsClient, root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (path: string): Promise<void> => {
    const perms = (await xs.getPerms(path)).map((p) => `${p.letter}${p.domid}`).join(',');
    out[path.slice(root.length) || '.'] = `${await xs.readString(path)} [${perms}]`;
    for (const child of await xs.directory(path)) await walk(`${path}/${child}`);
  };
  await walk(root);
  return out;
}

async function exists(xs: XsClient, path: string): Promise<boolean> {
  try {
    await xs.read(path);
    return true;
  } catch (e) {
    if (isXsError(e, 'ENOENT')) return false;
    throw e;
  }
}

/**
 * The scenario. `startPciback` supplies the backend; every assertion holds for any
 * conforming xenstored.
 */
async function toolstackScenario(
  xsd: XenstoredHandle,
  startPciback: PcibackPeerFactory,
): Promise<void> {
  const xs = await client(xsd);
  const aerClient = await client(xsd);
  const pcibackKill = await client(xsd);
  const peer = await startPciback(xsd.socketPath, { backendDomid: 0 });
  try {
    // Domain creation as libxl does it: introduce, then the home directory.
    await xs.introduce(D, { gfn: 0x1234, port: 17 });
    assert.equal(await xs.isDomainIntroduced(D), true);
    await xs.mkdir(`/local/domain/${D}`);
    await xs.setPerms(`/local/domain/${D}`, [
      { letter: 'n', domid: 0 },
      { letter: 'r', domid: D },
    ]);
    await xs.write(`/local/domain/${D}/name`, 'guest');

    // Cold plug: the first device creates both trees; the backend exports it.
    const cold = await attachPci(xs, {
      domid: D,
      domainName: 'guest',
      spec: parsePciSpec('03:00.0@08,permissive=1'),
    });
    assert.deepEqual(
      [cold.index, cold.hotplug, cold.address.toString()],
      [0, false, '0000:03:00.0'],
    );
    await waitForBackendState(xs, BE, 4, 5000);
    assert.deepEqual(await dump(xs, BE), {
      '.': ` ${OWN_BE}`,
      '/frontend': `${FE} ${OWN_BE}`,
      '/frontend-id': `5 ${OWN_BE}`,
      '/online': `1 ${OWN_BE}`,
      '/state': `4 ${OWN_BE}`,
      '/domain': `guest ${OWN_BE}`,
      '/key-0': `0000:03:00.0 ${OWN_BE}`,
      '/dev-0': `0000:03:00.0 ${OWN_BE}`,
      '/vdevfn-0': `40 ${OWN_BE}`,
      '/opts-0': `msitranslate=0,power_mgmt=0,permissive=1,rdm_policy=strict ${OWN_BE}`,
      '/state-0': `3 ${OWN_BE}`,
      '/num_devs': `1 ${OWN_BE}`,
      '/vdev-0': `0000:00:01.00 ${OWN_BE}`,
      '/root-0': `0000:00 ${OWN_BE}`,
      '/root_num': `1 ${OWN_BE}`,
    });
    assert.deepEqual(await dump(xs, FE), {
      '.': ` ${OWN_FE}`,
      '/backend': `${BE} ${OWN_FE}`,
      '/backend-id': `0 ${OWN_FE}`,
      '/state': `1 ${OWN_FE}`,
    });
    assert.equal(await xs.readString('/libxl/pci/0000-03-00-0/domid'), '5');

    // Hot plug: each waits for Connected, appends *-N and switches the backend to 7.
    const hot1 = await attachPci(xs, {
      domid: D,
      domainName: 'guest',
      spec: parsePciSpec('03:00.1'),
    });
    const hot2 = await attachPci(xs, {
      domid: D,
      domainName: 'guest',
      spec: parsePciSpec('04:00.0@0c,msitranslate=1,rdm_policy=relaxed'),
    });
    assert.deepEqual([hot1.index, hot1.hotplug, hot2.index, hot2.hotplug], [1, true, 2, true]);
    // The backend only exports on state 1 or 7: state-N = 3 proves the hot adds set 7.
    // (Watching the state from here would be racy: the backend moves on 7 → 8 → 4 at once.)
    await waitForBackendState(xs, BE, 4, 5000);
    assert.equal(await xs.readString(`${BE}/num_devs`), '3');
    assert.equal(await xs.readString(`${BE}/state-1`), '3');
    assert.equal(await xs.readString(`${BE}/state-2`), '3');
    assert.equal(await xs.readString(`${BE}/vdev-2`), '0000:00:03.00');
    assert.equal(await xs.readString(`${BE}/vdevfn-2`), '60');
    assert.equal(
      await xs.readString(`${BE}/opts-2`),
      'msitranslate=1,power_mgmt=0,permissive=0,rdm_policy=relaxed',
    );
    assert.equal(await exists(xs, `${BE}/vdevfn-1`), false);
    assert.equal(
      formatPciList(await listPci(xs, D)),
      'Vdev Device\n08.0 0000:03:00.0\n02.0 0000:03:00.1\n0c.0 0000:04:00.0\n',
    );
    await assert.rejects(
      attachPci(xs, { domid: D, domainName: 'guest', spec: parsePciSpec('0000:03:00.1') }),
      (e: unknown) => e instanceof PcibackError && e.code === 'PCI_ALREADY_ATTACHED',
    );

    // AER: pciback's kill_domain_by_device (a transaction writing aerState) → one destroy.
    const destroyed: [number, string][] = [];
    const aer = await watchAerFailures(aerClient, {
      destroyDomain: (domid, reason) => {
        destroyed.push([domid, reason]);
      },
    });
    await pcibackKill.transaction(async (tx) => {
      await tx.write(`${BE}/aerState`, 'aerfail');
    });
    for (let i = 0; i < 200 && destroyed.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(destroyed.length, 1);
    const [domid, reason] = destroyed[0] ?? [-1, ''];
    assert.equal(domid, D);
    assert.ok(reason.includes(`"${BE}/aerState" = "aerfail"`), reason);
    await pcibackKill.rm(`${BE}/aerState`);
    await aer.close();

    // Detach the first device: state-0=5 + state=7, then indexes compacted.
    const r0 = await detachPci(xs, { domid: D, bdf: '03:00.0', timeoutMs: 5000 });
    assert.deepEqual(r0, { index: 0, removedBackend: false });
    assert.equal(await xs.readString(`${BE}/num_devs`), '2');
    assert.equal(await xs.readString(`${BE}/dev-0`), '0000:03:00.1');
    assert.equal(await xs.readString(`${BE}/key-0`), '0000:03:00.1');
    assert.equal(await xs.readString(`${BE}/vdev-0`), '0000:00:02.00');
    assert.equal(await xs.readString(`${BE}/state-0`), '3');
    assert.equal(await exists(xs, `${BE}/vdevfn-0`), false);
    assert.equal(await xs.readString(`${BE}/dev-1`), '0000:04:00.0');
    assert.equal(await xs.readString(`${BE}/vdevfn-1`), '60');
    for (const key of ['state', 'key', 'dev', 'vdev', 'opts', 'vdevfn']) {
      assert.equal(await exists(xs, `${BE}/${key}-2`), false, `${key}-2`);
    }
    assert.equal(await exists(xs, '/libxl/pci/0000-03-00-0/domid'), false);
    assert.equal(
      formatPciList(await listPci(xs, D)),
      'Vdev Device\n02.0 0000:03:00.1\n0c.0 0000:04:00.0\n',
    );
    await assert.rejects(
      detachPci(xs, { domid: D, bdf: '03:00.0', timeoutMs: 5000 }),
      (e: unknown) => e instanceof PcibackError && e.code === 'PCI_NOT_ATTACHED',
    );

    // The last two: the very last removes both trees.
    assert.deepEqual(await detachPci(xs, { domid: D, bdf: '0000:04:00.0', timeoutMs: 5000 }), {
      index: 1,
      removedBackend: false,
    });
    assert.deepEqual(await detachPci(xs, { domid: D, bdf: '03:00.1', timeoutMs: 5000 }), {
      index: 0,
      removedBackend: true,
    });
    assert.equal(await exists(xs, `/local/domain/0/backend/pci/${D}`), false);
    assert.equal(await exists(xs, `/local/domain/${D}/device`), false);
    assert.equal(await xs.readString(`/local/domain/${D}/name`), 'guest');
    assert.equal(await exists(xs, '/libxl/pci/0000-03-00-1/domid'), false);
    assert.equal(await exists(xs, '/libxl/pci/0000-04-00-0/domid'), false);
    assert.deepEqual(await listPci(xs, D), []);
    assert.equal(formatPciList(await listPci(xs, D)), '');
  } finally {
    await peer.close();
    for (const c of [xs, aerClient, pcibackKill]) c.close();
  }
}

testOnEveryXenstored(
  'the toolstack attaches, lists and detaches PCI devices through',
  [0, D],
  30_000,
  (xsd) => toolstackScenario(xsd, startScriptedPciback),
);
