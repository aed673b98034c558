// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XsClient, isXsError } from '../client/index.js';
import { connectInProcess } from './in-process.js';
import { XsServer } from './server.js';

test('connectInProcess() gives a privileged dom0 client by default and drops the connection on close', async () => {
  const server = new XsServer();
  const dom0 = new XsClient(connectInProcess(server));
  await dom0.write('/vm/a', 'x');
  assert.equal(await dom0.readString('/vm/a'), 'x');
  assert.equal(await dom0.isDomainIntroduced(0), true);
  assert.equal(server.connectionCount, 1);
  dom0.close();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(server.connectionCount, 0);
});

test('connectInProcess() with options connects as an unprivileged guest', async () => {
  const server = new XsServer();
  const guest = new XsClient(connectInProcess(server, { domid: 5, privileged: false }));
  try {
    assert.equal(await guest.getDomainPath(5), '/local/domain/5');
    await assert.rejects(guest.write('/vm/b', 'y'), (e: unknown) => isXsError(e, 'EACCES'));
  } finally {
    guest.close();
  }
});
