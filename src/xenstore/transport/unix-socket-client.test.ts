// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XsClient, isXsError } from '../client/index.js';
import { FakeXenstored } from '../client/test-support.js';
import {
  XENSTORED_DEFAULT_SOCKET_PATH,
  connectXenstoreUnixSocket,
  xenstoredSocketPath,
} from './unix-socket-client.js';

async function withDaemon(fn: (path: string, sockets: Socket[]) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xs-client-'));
  const path = join(dir, 'socket');
  const daemon = new FakeXenstored();
  const sockets: Socket[] = [];
  const server: Server = createServer((sock) => {
    sockets.push(sock);
    const port = daemon.attach((bytes) => sock.write(bytes));
    sock.on('data', (chunk) => {
      port.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    sock.on('close', () => {
      port.close();
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    await fn(path, sockets);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) =>
      server.close(() => {
        r();
      }),
    );
    await rm(dir, { recursive: true, force: true });
  }
}

test('xenstoredSocketPath() follows XENSTORED_PATH, then XENSTORED_RUN_DIR', () => {
  assert.equal(xenstoredSocketPath({ XENSTORED_PATH: '/x/s' }), '/x/s');
  assert.equal(xenstoredSocketPath({ XENSTORED_RUN_DIR: '/run/xs' }), '/run/xs/socket');
  assert.equal(xenstoredSocketPath({}), XENSTORED_DEFAULT_SOCKET_PATH);
});

test('connectXenstoreUnixSocket() carries XsClient requests and watch events over a socket', async () => {
  await withDaemon(async (path) => {
    const client = new XsClient(await connectXenstoreUnixSocket(path));
    const seen: string[] = [];
    await client.watch('/sock', 'tok', (ev) => seen.push(ev.path));
    await client.write('/sock/a', 'over the socket');
    assert.equal(await client.readString('/sock/a'), 'over the socket');
    const values = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        client.write(`/sock/n${i}`, String(i)).then(() => client.readString(`/sock/n${i}`)),
      ),
    );
    assert.deepEqual(
      values,
      Array.from({ length: 50 }, (_, i) => String(i)),
    );
    assert.deepEqual(seen.slice(0, 2), ['/sock', '/sock/a']);
    client.close();
  });
});

test('connectXenstoreUnixSocket() rejects pending requests when the daemon hangs up', async () => {
  await withDaemon(async (path, sockets) => {
    const client = new XsClient(await connectXenstoreUnixSocket(path));
    await client.write('/x', '1');
    for (const s of sockets) s.destroy();
    await assert.rejects(client.read('/x'), (e) => isXsError(e, 'ECONNRESET'));
  });
});

test('connectXenstoreUnixSocket() fails with XS_CONNECT_FAILED when nothing listens', async () => {
  await assert.rejects(connectXenstoreUnixSocket(join(tmpdir(), 'no-such-xenstored-socket')), {
    code: 'XS_CONNECT_FAILED',
  });
});
