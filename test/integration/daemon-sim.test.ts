// SPDX-License-Identifier: MIT
/**
 * `pciback daemon --platform sim`: the simulated host with its guests running, the
 * assignable-device operations on its bus through the control socket, and xl's
 * attach/detach on its xenstore, in one process; SIGTERM stops it cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, spawnDaemon, type CliRun } from '../support/cli-process.js';

const cli = (...args: string[]): Promise<CliRun> => runCli(args);

test(
  'the sim daemon serves assignable-* and attach/detach on the same simulated host',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'daemon-sim-'));
    const control = join(dir, 'ctl.sock');
    const xs = join(dir, 'xs.sock');
    const daemon = await spawnDaemon([
      '--platform',
      'sim',
      '--state-dir',
      join(dir, 'state'),
      '--control',
      control,
      '--xenstore-socket',
      xs,
    ]);
    const exited = daemon.exited.then((e) => e.code);
    try {
      assert.match(
        daemon.stdout(),
        /pciback daemon listening on .*ctl\.sock \(platform sim, stub driver "pciback"/,
      );
      const C = ['--control', control];
      const X = ['--socket', xs];
      // Every seized device of the built-in machine is attached: none is assignable now.
      assert.deepEqual(await cli('assignable-list', ...C), { code: 0, stdout: '', stderr: '' });
      // A detached device goes back to the stub and is listed (xl's trailing space).
      assert.equal((await cli('detach', 'guest2', '03:00.0', ...X)).code, 0);
      assert.equal((await cli('assignable-list', ...C)).stdout, '0000:03:00.0 \n');
      // The root port is busy (bus mastering on) until forced; then named, then given back.
      const refused = await cli('assignable-add', '00:1c.0', ...C);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /driver "pcieport" is using it .*--force/);
      assert.equal((await cli('assignable-add', '-n', 'port', '--force', '00:1c.0', ...C)).code, 0);
      assert.equal(
        (await cli('assignable-list', '-n', ...C)).stdout,
        '0000:00:1c.0 port\n0000:03:00.0 \n',
      );
      assert.equal((await cli('assignable-remove', '-r', 'port', ...C)).code, 0);
      assert.equal((await cli('assignable-list', '-n', ...C)).stdout, '0000:03:00.0 \n');
      // Attached again, it leaves the list.
      assert.equal((await cli('attach', 'guest1', '03:00.0', ...X)).code, 0);
      assert.equal((await cli('assignable-list', ...C)).stdout, '');
      // Unbound from pciback while guest1 uses it (§6.4): released and reset at once, the
      // guest loses it, and the toolstack is told through the backend's error node.
      const unbind = await cli('stub-attr', 'unbind', '0000:03:00.0', ...C);
      assert.deepEqual(unbind, { code: 0, stdout: '', stderr: '' });
      await daemon.until(() => daemon.stderr().includes('pciback reports'), 'the report');
      assert.match(
        daemon.stderr(),
        /guest1 \(domid (\d+)\): pciback reports: 19 Device 0000:03:00\.0 was unbound from pciback while in use by domain \1/,
      );
      const stray = await cli('stub-attr', 'unbind', '0000:03:00.0', ...C);
      assert.equal(stray.code, 1);
      assert.match(stray.stderr, /not bound to it/);
      // The toolstack's detach then completes (the backend answers it as a removal).
      assert.deepEqual(await cli('detach', 'guest1', '03:00.0', ...X), {
        code: 0,
        stdout: '',
        stderr: '',
      });
      // Bound back, it is free and assignable again.
      assert.equal((await cli('stub-attr', 'bind', '0000:03:00.0', ...C)).code, 0);
      assert.equal((await cli('assignable-list', ...C)).stdout, '0000:03:00.0 \n');
      const badBdf = await cli('stub-attr', 'bind', '3:0.0', ...C);
      assert.equal(badBdf.code, 1);
      assert.match(badBdf.stderr, /give a full address such as 0000:03:00\.0/);
      // AER from the CLI: guest1 runs no AER driver, so the error kills it (aerfail) and
      // every device it held comes back to the pool.
      const aer = await cli('aer-inject', '0000:02:00.0', ...C);
      assert.equal(aer.code, 0, aer.stderr);
      assert.match(aer.stdout, /0000:02:00\.0 error_detected -> NONE/);
      assert.match(aer.stdout, /domain \d+: aerState = aerfail, destroyed by the toolstack/);
      await daemon.until(() => /guest1 \(domid \d+\): destroyed/.test(daemon.stderr()), 'guest1');
      assert.equal(
        (await cli('assignable-list', ...C)).stdout,
        '0000:02:00.0 \n0000:03:00.0 \n0000:04:00.0 \n0000:04:00.1 \n',
      );
      daemon.child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.equal(existsSync(control), false, 'the control socket is removed');
    } finally {
      daemon.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
