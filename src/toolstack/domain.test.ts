// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XsServer } from '../xenstore/server/index.js';
import { XenStore } from '../xenstore/store/index.js';
import { connectInProcess } from '../xenstore/server/test-support.js';
import { XsClient, isXsError } from '../xenstore/client/index.js';
import { formatPermission } from '../xenstore/protocol/index.js';
import { parsePciSpec } from './pci-spec.js';
import { attachPci } from './attach.js';
import { createDomainNodes, destroyDomainNodes } from './domain.js';

function setup() {
  // Domain 4 exists in the hypervisor before the toolstack introduces it.
  const server = new XsServer({ store: new XenStore({ domainExists: (d) => d === 4 }) });
  const dom0 = new XsClient(connectInProcess(server), { timeoutMs: 2000 });
  const guest = new XsClient(connectInProcess(server, { domid: 4, privileged: false }), {
    timeoutMs: 2000,
  });
  return { server, dom0, guest };
}

async function perms(client: XsClient, path: string): Promise<string> {
  return (await client.getPerms(path)).map(formatPermission).join(' ');
}

test('createDomainNodes() lays out the home with libxl permissions and introduces the domain', async () => {
  const { dom0, guest } = setup();
  try {
    await createDomainNodes(dom0, { domid: 4, name: 'web', store: { gfn: 0, port: 3 } });
    assert.equal(await dom0.isDomainIntroduced(4), true);
    assert.equal(await dom0.readString('/local/domain/4/name'), 'web');
    assert.equal(await dom0.readString('/local/domain/4/domid'), '4');
    assert.equal(await perms(dom0, '/local/domain/4'), 'n0 r4');
    assert.equal(await perms(dom0, '/local/domain/4/device'), 'n0 r4');
    assert.equal(await perms(dom0, '/local/domain/4/error'), 'n4 r0');
    // The guest reads its name and writes only where it owns the directory.
    assert.equal(await guest.readString('name'), 'web');
    await guest.write('data/x', '1');
    await guest.write('error/device/pci/0/error', '22 bad');
    await assert.rejects(guest.write('name', 'evil'), (e) => isXsError(e, 'EACCES'));
    await assert.rejects(guest.write('device/x', '1'), (e) => isXsError(e, 'EACCES'));
  } finally {
    dom0.close();
    guest.close();
  }
});

test('destroyDomainNodes() removes the PCI trees, releases the domain and removes its home', async () => {
  const { dom0, guest } = setup();
  try {
    await createDomainNodes(dom0, { domid: 4, name: 'web', store: { gfn: 0, port: 3 } });
    await attachPci(dom0, { domid: 4, domainName: 'web', spec: parsePciSpec('03:00.0') });
    const released: string[] = [];
    await dom0.watch('@releaseDomain', 'rel', (e) => released.push(e.path));
    await destroyDomainNodes(dom0, 4);
    for (const gone of ['/local/domain/0/backend/pci/4', '/local/domain/4', '/vm/4']) {
      await assert.rejects(dom0.read(gone), (e) => isXsError(e, 'ENOENT'), gone);
    }
    assert.equal(await dom0.isDomainIntroduced(4), false);
    assert.deepEqual(released, ['@releaseDomain', '@releaseDomain']); // initial + release
    // A second destroy of the same domain is harmless.
    await destroyDomainNodes(dom0, 4);
  } finally {
    dom0.close();
    guest.close();
  }
});
