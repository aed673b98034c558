// SPDX-License-Identifier: MIT
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPcibackError } from '../errors.js';
import type { Logger } from '../platform/types.js';
import { AssignableDb } from '../state/index.js';
import { ControlClient, serveControlSocket } from './control/index.js';
import { startDaemon } from './daemon.js';

function setup(t: TestContext): { dir: string; hostFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pciback-daemon-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const hostFile = join(dir, 'host.json');
  writeFileSync(
    hostFile,
    JSON.stringify([
      {
        address: '0000:03:00.0',
        driver: 'igb',
        iommuGroup: 7,
        simple: { vendorId: '0x8086', deviceId: '0x10c9', classCode: '0x020000' },
      },
      {
        address: '0000:07:00.0',
        driver: 'pciback',
        iommuGroup: 11,
        simple: { vendorId: '0x10de', deviceId: '0x1d10', classCode: '0x030000' },
      },
    ]),
  );
  return { dir, hostFile };
}

function recorder(): { logger: Logger; lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg: msg ?? '' });
    };
  return {
    lines,
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  };
}

test('startDaemon() reconciles, serves the control socket and stops cleanly', async (t) => {
  const { dir, hostFile } = setup(t);
  const { logger, lines } = recorder();
  const controlPath = join(dir, 'run', 'control.sock');
  const daemon = await startDaemon({
    platform: 'linux',
    stateDir: join(dir, 'state'),
    controlPath,
    logger,
    session: { fakeSysfs: hostFile, fakeSysfsState: join(dir, 'state.json') },
  });
  assert.deepEqual(
    daemon.repairs.map((r) => [r.kind, r.device.toString()]),
    [['device-adopted', '0000:07:00.0']],
  );
  assert.ok(
    lines.some((l) => l.level === 'warn' && (l.obj as { kind?: string }).kind === 'device-adopted'),
    'each repair is logged',
  );
  const client = await ControlClient.connect(controlPath, { timeoutMs: 5000 });
  try {
    const status = await client.request('status', {});
    assert.equal(status.platform, 'linux');
    assert.equal(status.stubDriver, 'pciback');
    assert.equal(status.stateDir, join(dir, 'state'));
    assert.equal(status.fakeSysfs, hostFile);
    assert.equal(status.assignable, 1);
    assert.deepEqual(
      status.repairs.map((r) => r.kind),
      ['device-adopted'],
    );
    const added = await client.request('assignable.add', { bdf: '03:00.0', name: 'nic' });
    assert.equal(added.address, '0000:03:00.0');
    await assert.rejects(
      client.request('assignable.add', { bdf: '03:00.0', name: 'a b' }),
      (err: unknown) => isPcibackError(err, 'ASSIGNABLE_INVALID_NAME'),
    );
    assert.deepEqual(await client.request('assignable.list', {}), [
      { address: '0000:03:00.0', name: 'nic' },
      { address: '0000:07:00.0', name: null },
    ]);
  } finally {
    client.close();
  }
  await daemon.close();
  await daemon.close();
  assert.equal(existsSync(controlPath), false, 'the socket is removed');
  const db = AssignableDb.open(join(dir, 'state'));
  assert.equal(db.getAssignable('nic')?.address.toString(), '0000:03:00.0');
  db.close();
  assert.deepEqual(
    readdirSync(dir).filter((name) => name.startsWith('pciback-fake-sysfs-')),
    [],
    'the fake tree is deleted',
  );
});

test('startDaemon() that cannot serve its socket closes what it opened', async (t) => {
  const { dir, hostFile } = setup(t);
  const controlPath = join(dir, 'control.sock');
  const other = await serveControlSocket(controlPath, {
    handlers: {
      'assignable.add': () => {
        throw new Error('unused');
      },
      'assignable.remove': () => {
        throw new Error('unused');
      },
      'assignable.list': () => [],
      'aer.inject': () => {
        throw new Error('unused');
      },
      'stub.attribute': () => {
        throw new Error('unused');
      },
      status: () => {
        throw new Error('unused');
      },
    },
  });
  t.after(() => other.close());
  await assert.rejects(
    startDaemon({
      platform: 'linux',
      stateDir: join(dir, 'state'),
      controlPath,
      session: { fakeSysfs: hostFile, fakeSysfsState: join(dir, 'fake-state.json') },
    }),
    (err: unknown) => isPcibackError(err, 'CONTROL_SOCKET_IN_USE'),
  );
  // The fake tree (created beside the state file) is gone again.
  assert.deepEqual(
    readdirSync(dir).filter((name) => name.startsWith('pciback-fake-sysfs-')),
    [],
  );
  // The database is closed: another handle can take the write lock at once.
  const db = AssignableDb.open(join(dir, 'state'), { busyTimeoutMs: 0 });
  db.log({ kind: 'test', message: 'the lock is free' });
  db.close();
});
