// SPDX-License-Identifier: MIT
// The control protocol over a real Unix socket: well-behaved clients through
// ControlClient, hostile and broken ones through raw sockets.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcibackError, isPcibackError } from '../../errors.js';
import type { AddAssignableResult } from '../assignable-service.js';
import { ControlClient } from './client.js';
import { CONTROL_ERROR, type DaemonStatus } from './protocol.js';
import { serveControlSocket, type ControlHandlers, type ControlServerOptions } from './server.js';

function status(): DaemonStatus {
  return {
    pid: 1,
    platform: 'linux',
    stubDriver: 'pciback',
    stateDir: '/state',
    databasePath: '/state/pciback.sqlite',
    controlPath: '/run/control.sock',
    sysfsRoot: '/sys',
    fakeSysfs: null,
    startedAtMs: 0,
    uptimeMs: 0,
    repairs: [],
    assignable: 0,
    methods: ['status'],
  };
}

function added(bdf: string, name: string | null): AddAssignableResult {
  return {
    address: bdf,
    name,
    stubDriver: 'pciback',
    alreadyAssignable: false,
    originalDriver: { state: 'none' },
    reset: { state: 'unknown' },
    warnings: [],
  };
}

const HANDLERS: ControlHandlers = {
  'assignable.add': (p) => {
    if (p.bdf === 'boom') throw new Error('a bug');
    if (p.bdf === 'busy') throw new PcibackError('ASSIGNABLE_IN_USE', 'Cannot make it assignable');
    return added(p.bdf, p.name ?? null);
  },
  'assignable.remove': async (p) => {
    // Slow on purpose: requests of other clients wait for it.
    await new Promise((resolve) => setTimeout(resolve, 20));
    return {
      address: p.ref,
      name: null,
      recorded: false,
      wasOnStub: true,
      driver: p.rebind === true ? 'igb' : null,
      warnings: [],
    };
  },
  'assignable.list': (p) => [{ address: '0000:03:00.0', name: p.verbose === true ? 'v' : null }],
  'aer.inject': () => {
    throw new PcibackError('NOT_SUPPORTED', 'only the simulator can');
  },
  'stub.attribute': (p) => ({ text: p.name }),
  status,
};

async function serve(
  t: TestContext,
  options: Partial<ControlServerOptions> = {},
): Promise<{ path: string; dir: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'pciback-control-'));
  const server = await serveControlSocket(join(dir, 'run', 'control.sock'), {
    handlers: HANDLERS,
    ...options,
  });
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { path: server.path, dir, close: () => server.close() };
}

/** A raw connection: what it receives, and when it closes. */
function raw(
  path: string,
): Promise<{ socket: Socket; lines: () => unknown[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    const closed = new Promise<void>((done) => {
      socket.on('close', () => {
        done();
      });
    });
    socket.once('error', reject);
    socket.once('connect', () => {
      resolve({
        socket,
        lines: () =>
          text
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as unknown),
        closed,
      });
    });
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('ControlClient calls methods and gets results; daemon errors keep their code', async (t) => {
  const { path } = await serve(t);
  const client = await ControlClient.connect(path, { timeoutMs: 5000 });
  try {
    assert.deepEqual(
      await client.request('assignable.add', { bdf: '03:00.0', name: 'nic' }),
      added('03:00.0', 'nic'),
    );
    assert.deepEqual(await client.request('assignable.list', { verbose: true }), [
      { address: '0000:03:00.0', name: 'v' },
    ]);
    await assert.rejects(client.request('assignable.add', { bdf: 'busy' }), (err: unknown) => {
      assert.ok(isPcibackError(err, 'ASSIGNABLE_IN_USE'));
      assert.equal(err.message, 'Cannot make it assignable');
      return true;
    });
    // A handler's bug is an internal error for that request only.
    await assert.rejects(
      client.request('assignable.add', { bdf: 'boom' }),
      (err: unknown) => isPcibackError(err, CONTROL_ERROR.internal) && /a bug/.test(err.message),
    );
    assert.equal((await client.request('status', {})).platform, 'linux');
  } finally {
    client.close();
  }
});

test('the control socket is mode 0600 in a 0700 directory; a stale socket is replaced, unsafe paths refused', async (t) => {
  const first = await serve(t);
  assert.equal(statSync(first.path).mode & 0o777, 0o600);
  assert.equal(statSync(join(first.dir, 'run')).mode & 0o777, 0o700);
  await assert.rejects(serveControlSocket(first.path, { handlers: HANDLERS }), (err: unknown) =>
    isPcibackError(err, 'CONTROL_SOCKET_IN_USE'),
  );
  await first.close();
  assert.equal(existsSync(first.path), false, 'close() removes the socket');

  const dir = mkdtempSync(join(tmpdir(), 'pciback-control-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const open = join(dir, 'open');
  mkdirSync(open, { mode: 0o777 });
  chmodSync(open, 0o777);
  await assert.rejects(
    serveControlSocket(join(open, 'c.sock'), { handlers: HANDLERS }),
    (err: unknown) =>
      isPcibackError(err, 'CONTROL_SOCKET_PATH') && /others can write to it/.test(err.message),
  );
  const file = join(dir, 'not-a-socket');
  writeFileSync(file, '');
  await assert.rejects(serveControlSocket(file, { handlers: HANDLERS }), (err: unknown) =>
    isPcibackError(err, 'CONTROL_SOCKET_PATH'),
  );
});

test('a line that is not JSON gets one error and the connection is closed; the daemon goes on', async (t) => {
  const { path } = await serve(t);
  const peer = await raw(path);
  peer.socket.write('{"id":1,"method":"status"}\n{not json\n{"id":2,"method":"status"}\n');
  await peer.closed;
  const lines = peer.lines() as { id: unknown; result?: unknown; error?: { code: string } }[];
  // The request before the bad line is answered first; the one after it never is.
  assert.deepEqual(
    lines.map((l) => [l.id, l.error?.code ?? (l.result === undefined ? 'none' : 'ok')]),
    [
      [1, 'ok'],
      [null, CONTROL_ERROR.parse],
    ],
  );

  const client = await ControlClient.connect(path, { timeoutMs: 5000 });
  assert.equal((await client.request('status', {})).stubDriver, 'pciback');
  client.close();
});

test('an overlong line gets one error and the connection is closed before it is buffered', async (t) => {
  const { path } = await serve(t, { maxLineBytes: 1024 });
  const peer = await raw(path);
  peer.socket.write(`{"id":1,"method":"status","params":{"x":"${'a'.repeat(4096)}`);
  await peer.closed;
  const lines = peer.lines() as { id: unknown; error?: { code: string; message: string } }[];
  assert.deepEqual(
    lines.map((l) => l.error?.code),
    [CONTROL_ERROR.lineTooLong],
  );
  assert.match(lines.map((l) => l.error?.message).join(), /more than 1024 bytes/);
});

test('bad requests, unknown methods and bad parameters get errors and the connection stays open', async (t) => {
  const { path } = await serve(t);
  const peer = await raw(path);
  peer.socket.write(
    [
      '[1,2]',
      '{"id":{"x":1},"method":"status"}',
      '{"id":3,"method":"status","extra":1}',
      '{"id":4,"method":"reboot"}',
      '{"id":5,"method":"assignable.add","params":{"bdf":3}}',
      '{"id":6,"method":"assignable.add","params":{"bdf":"03:00.0","evil":true}}',
      '{"id":"seven","method":"status"}',
      '',
    ].join('\n'),
  );
  await until(() => peer.lines().length === 7, 'seven responses');
  const lines = peer.lines() as {
    id: unknown;
    result?: unknown;
    error?: { code: string; message: string };
  }[];
  assert.deepEqual(
    lines.map((l) => [l.id, l.error?.code ?? 'ok']),
    [
      [null, CONTROL_ERROR.invalidRequest],
      [null, CONTROL_ERROR.invalidRequest],
      [3, CONTROL_ERROR.invalidRequest],
      [4, CONTROL_ERROR.unknownMethod],
      [5, CONTROL_ERROR.invalidParams],
      [6, CONTROL_ERROR.invalidParams],
      ['seven', 'ok'],
    ],
  );
  assert.match(
    lines[3]?.error?.message ?? '',
    /^Unknown method "reboot": expected one of "assignable.add"/,
  );
  assert.match(lines[4]?.error?.message ?? '', /^Invalid parameters of "assignable.add": bdf: /);
  assert.equal(peer.socket.destroyed, false);
  peer.socket.destroy();
});

test('concurrent clients are answered in turn, each with its own ids', async (t) => {
  const { path } = await serve(t);
  const clients = await Promise.all(
    Array.from({ length: 8 }, () => ControlClient.connect(path, { timeoutMs: 5000 })),
  );
  try {
    const results = await Promise.all(
      clients.flatMap((client, index) => [
        client.request('assignable.remove', { ref: `dev${index}`, rebind: index % 2 === 0 }),
        client.request('assignable.add', { bdf: `bdf${index}` }),
      ]),
    );
    for (let index = 0; index < clients.length; index++) {
      const removed = results[2 * index] as { address: string; driver: string | null };
      const add = results[2 * index + 1] as AddAssignableResult;
      assert.equal(removed.address, `dev${index}`);
      assert.equal(removed.driver, index % 2 === 0 ? 'igb' : null);
      assert.equal(add.address, `bdf${index}`);
    }
  } finally {
    for (const client of clients) client.close();
  }
});

test('more clients than allowed are refused with an error; the others are served', async (t) => {
  const { path } = await serve(t, { maxClients: 2 });
  const a = await ControlClient.connect(path, { timeoutMs: 5000 });
  const b = await ControlClient.connect(path, { timeoutMs: 5000 });
  const c = await ControlClient.connect(path, { timeoutMs: 5000 });
  try {
    await assert.rejects(c.request('status', {}), (err: unknown) =>
      isPcibackError(err, CONTROL_ERROR.tooManyClients),
    );
    assert.equal((await a.request('status', {})).pid, 1);
    assert.equal((await b.request('status', {})).pid, 1);
  } finally {
    a.close();
    b.close();
    c.close();
  }
});

test('ControlClient times out when the daemon does not answer, and says nothing listens when none does', async (t) => {
  const slow: ControlHandlers = {
    ...HANDLERS,
    status: () =>
      new Promise<DaemonStatus>((resolve) => {
        setTimeout(() => {
          resolve(status());
        }, 500);
      }),
  };
  const { path, dir } = await serve(t, { handlers: slow });
  const client = await ControlClient.connect(path, { timeoutMs: 5000 });
  try {
    await assert.rejects(
      client.request('status', {}, { timeoutMs: 50 }),
      (err: unknown) =>
        isPcibackError(err, CONTROL_ERROR.timeout) &&
        /did not answer "status" within 50 ms/.test(err.message),
    );
  } finally {
    client.close();
  }
  await assert.rejects(
    ControlClient.connect(join(dir, 'nothing.sock')),
    (err: unknown) =>
      isPcibackError(err, CONTROL_ERROR.closed) && /no such socket/.test(err.message),
  );
});
