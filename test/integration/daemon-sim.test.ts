// SPDX-License-Identifier: MIT
/**
 * `pciback daemon --platform sim`: the simulated host with its guests running, the
 * assignable-device operations on its bus through the control socket, and xl's
 * attach/detach on its xenstore, in one process; SIGTERM stops it cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI_PATH } from '../support/paths.js';

const execFileAsync = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI_PATH, ...args], {
      timeout: 30_000,
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

test(
  'the sim daemon serves assignable-* and attach/detach on the same simulated host',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'daemon-sim-'));
    const control = join(dir, 'ctl.sock');
    const xs = join(dir, 'xs.sock');
    const daemon = spawn(
      process.execPath,
      [
        CLI_PATH,
        'daemon',
        '--platform',
        'sim',
        '--state-dir',
        join(dir, 'state'),
        '--control',
        control,
        '--xenstore-socket',
        xs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    daemon.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    daemon.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      daemon.once('exit', (code) => {
        resolve(code);
      }),
    );
    try {
      for (let i = 0; i < 200 && !stdout.includes('listening'); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(
        stdout,
        /pciback daemon listening on .*ctl\.sock \(platform sim, stub driver "pciback"/,
      );
      const C = ['--control', control];
      const X = ['--socket', xs];
      // Every seized device of the built-in machine is attached: none is assignable now.
      assert.deepEqual(await cli('assignable-list', ...C), { code: 0, out: '', err: '' });
      // A detached device goes back to the stub and is listed (xl's trailing space).
      assert.equal((await cli('detach', 'guest2', '03:00.0', ...X)).code, 0);
      assert.equal((await cli('assignable-list', ...C)).out, '0000:03:00.0 \n');
      // The root port is busy (bus mastering on) until forced; then named, then given back.
      const refused = await cli('assignable-add', '00:1c.0', ...C);
      assert.equal(refused.code, 1);
      assert.match(refused.err, /driver "pcieport" is using it .*--force/);
      assert.equal((await cli('assignable-add', '-n', 'port', '--force', '00:1c.0', ...C)).code, 0);
      assert.equal(
        (await cli('assignable-list', '-n', ...C)).out,
        '0000:00:1c.0 port\n0000:03:00.0 \n',
      );
      assert.equal((await cli('assignable-remove', '-r', 'port', ...C)).code, 0);
      assert.equal((await cli('assignable-list', '-n', ...C)).out, '0000:03:00.0 \n');
      // Attached again, it leaves the list.
      assert.equal((await cli('attach', 'guest1', '03:00.0', ...X)).code, 0);
      assert.equal((await cli('assignable-list', ...C)).out, '');
      // Unbound from pciback while guest1 uses it (§6.4): released and reset at once, the
      // guest loses it, and the toolstack is told through the backend's error node.
      const unbind = await cli('stub-attr', 'unbind', '0000:03:00.0', ...C);
      assert.deepEqual(unbind, { code: 0, out: '', err: '' });
      for (let i = 0; i < 100 && !stderr.includes('pciback reports'); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(
        stderr,
        /guest1 \(domid (\d+)\): pciback reports: 19 Device 0000:03:00\.0 was unbound from pciback while in use by domain \1/,
      );
      const stray = await cli('stub-attr', 'unbind', '0000:03:00.0', ...C);
      assert.equal(stray.code, 1);
      assert.match(stray.err, /not bound to it/);
      // Bound back, it is free and assignable again.
      assert.equal((await cli('stub-attr', 'bind', '0000:03:00.0', ...C)).code, 0);
      assert.equal((await cli('assignable-list', ...C)).out, '0000:03:00.0 \n');
      const badBdf = await cli('stub-attr', 'bind', '3:0.0', ...C);
      assert.equal(badBdf.code, 1);
      assert.match(badBdf.err, /give a full address such as 0000:03:00\.0/);
      daemon.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.equal(existsSync(control), false, 'the control socket is removed');
    } finally {
      daemon.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
