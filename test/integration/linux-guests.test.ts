// SPDX-License-Identifier: MIT
/**
 * `pciback daemon --platform linux --fake-sysfs HOST --guests MACHINE` (issue 5): on a
 * fake sysfs tree, the Linux platform passes the simulator's flows. A device bound to a
 * normal driver is made assignable, hot-attached to a guest that enables MSI-X (the
 * vectors are programmed in the fake `config` and `resource3` files and mapped to pirqs),
 * detached (reset through sysfs `reset`, seize-time state restored: bus mastering off,
 * decode kept) and given back to its driver; AER injection is recovered by a guest with
 * an AER driver and kills one without (aerfail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, spawnDaemon, type CliRun } from '../support/cli-process.js';
import { REPO_ROOT } from '../support/paths.js';

const cli = (...args: string[]): Promise<CliRun> => runCli(args);

const NIC = '0000:03:00.0';

/** The README's example: a fake host (two real NIC dumps) and three guests. */
const EXAMPLE = join(REPO_ROOT, 'examples', 'linux-guests');

test(
  'the linux daemon with --guests serves a fake sysfs bus to simulated guests: attach, MSI-X, detach with reset and restore, AER',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'linux-guests-'));
    const control = join(dir, 'ctl.sock');
    const xs = join(dir, 'xs.sock');
    const daemon = await spawnDaemon([
      '--platform',
      'linux',
      '--fake-sysfs',
      join(EXAMPLE, 'host.json'),
      '--fake-sysfs-state',
      join(dir, 'host-state.json'),
      '--guests',
      join(EXAMPLE, 'guests.json'),
      '--state-dir',
      join(dir, 'state'),
      '--control',
      control,
      '--xenstore-socket',
      xs,
      '--log-level',
      'debug',
    ]);
    const exited = daemon.exited.then((e) => e.code);
    try {
      assert.match(
        daemon.stdout(),
        /listening on .*ctl\.sock \(platform linux, stub driver "pciback"/,
      );
      const tree = readdirSync(dir).find((n) => n.startsWith('pciback-fake-sysfs-'));
      assert.ok(tree !== undefined, 'the fake tree sits beside the state file');
      const nicDir = join(dir, tree, 'bus', 'pci', 'devices', NIC);
      const command = (): number => readFileSync(join(nicDir, 'config')).readUInt16LE(4);
      const C = ['--control', control];
      const X = ['--socket', xs];

      // hide= handed both devices to pciback at boot; the guests have them.
      await daemon.until(
        () => daemon.stderr().includes('unaware (domid 3): enumerate: 1 function(s)'),
        'unaware',
      );
      // Reconcile adopted them with the driver the fake kernel's alias table gives.
      assert.match(
        daemon.stderr(),
        /Adopted device \\"0000:05:00\.0\\" found on stub \\"pciback\\" without a record: its native driver is \\"mlx4_core\\"/,
      );
      // The guests boot in parallel: each is waited for on its own.
      await daemon.until(
        () => /rec \(domid 2\): connected, .*\[15b3:1007\]/.test(daemon.stderr()),
        'rec',
      );
      assert.deepEqual(await cli('assignable-list', ...C), { code: 0, stdout: '', stderr: '' });

      // xl pci-assignable-add of a device igb holds: busy (its interface is up) until forced,
      // then pciback (kernel and userspace) seize it.
      const busy = await cli('assignable-add', '03:00.0', ...C);
      assert.equal(busy.code, 1);
      assert.match(
        busy.stderr,
        /driver "igb" is using it \(network interface "enp3s0" is up\): stop what uses it, or give --force/,
      );
      assert.equal((await cli('assignable-add', '--force', '03:00.0', ...C)).code, 0);
      assert.equal((await cli('assignable-list', ...C)).stdout, `${NIC} \n`);
      assert.match(readFileSync(join(nicDir, 'driver_override'), 'utf8'), /^pciback/);

      // Hot attach: the guest sees it and enables MSI-X through pciback.
      assert.equal((await cli('attach', 'user', '03:00.0', ...X)).code, 0);
      await daemon.until(
        () => daemon.stderr().includes('user (domid 1): msix:'),
        'the msix program',
      );
      assert.match(daemon.stderr(), /user \(domid 1\): connected, .*\[8086:10c9\]/);
      assert.match(daemon.stderr(), /user \(domid 1\): msix: 1\/1 function\(s\) enabled/);
      assert.match(
        daemon.stderr(),
        /"device":"0000:03:00\.0","entries":\[0,1,2,3\],"irqs":\[\d+(,\d+){3}\],"domid":1,"msg":"MSI-X enabled"/,
      );
      // The MSI-X table (BAR 3, offset 0) got the messages; disable masked the entries.
      const table = readFileSync(join(nicDir, 'resource3')).subarray(0, 64);
      for (let entry = 0; entry < 4; entry++) {
        assert.equal(table.readUInt32LE(16 * entry), 0xfee00000, `entry ${entry} address`);
        assert.equal(table.readUInt32LE(16 * entry + 12), 1, `entry ${entry} masked`);
      }
      assert.equal(command() & 0x4, 0x4, 'the guest turned bus mastering on');
      assert.equal((await cli('list', 'user', ...X)).stdout, `Vdev Device\n00.0 ${NIC}\n`);

      // Detach: reset through sysfs and the seize-time state restored.
      const resetsBefore = daemon
        .stderr()
        .split(`"device":"${NIC}","method":"flr","msg":"Reset`).length;
      assert.equal((await cli('detach', 'user', '03:00.0', ...X)).code, 0);
      await daemon.until(
        () =>
          daemon.stderr().split(`"device":"${NIC}","method":"flr","msg":"Reset`).length >
          resetsBefore,
        'the reset at release',
      );
      assert.equal(command() & 0x7, 0x3, 'bus mastering cleared, decode kept');
      assert.equal((await cli('assignable-list', ...C)).stdout, `${NIC} \n`);

      // assignable-remove -r: back to igb.
      assert.equal((await cli('assignable-remove', '-r', '03:00.0', ...C)).code, 0);
      assert.match(
        readFileSync(join(dir, 'host-state.json'), 'utf8'),
        /"0000:03:00\.0": \{\s*"driver": "igb"/,
      );

      // AER: the guest with an AER driver recovers; the one without is destroyed.
      const recovered = await cli('aer-inject', '0000:05:00.0', ...C);
      assert.equal(recovered.code, 0, recovered.stderr);
      assert.match(recovered.stdout, /non-fatal error, recovery RECOVERED/);
      assert.match(recovered.stdout, /0000:05:00\.0 error_detected -> CAN_RECOVER/);
      const fatal = await cli('aer-inject', '--fatal', '0000:05:00.0', ...C);
      assert.match(fatal.stdout, /fatal error, recovery RECOVERED[\s\S]*slot_reset -> RECOVERED/);
      const killed = await cli('aer-inject', '0000:06:00.0', ...C);
      assert.match(killed.stdout, /domain 3: aerState = aerfail, destroyed by the toolstack/);
      await daemon.until(
        () => daemon.stderr().includes('unaware (domid 3): destroyed'),
        'the aerfail kill',
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
