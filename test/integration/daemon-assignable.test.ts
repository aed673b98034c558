// SPDX-License-Identifier: MIT
/**
 * `pciback daemon --platform linux --fake-sysfs FILE` as a separate process, driven by
 * `pciback assignable-add|-remove|-list` processes through its control socket: xl's
 * output formats, a clean stop on SIGTERM, a restart that keeps everything, a SIGKILL in
 * the middle of a burst of adds after which nothing reported as done is lost, and
 * reconcile's repairs in the log after a device was rebound behind the daemon's back.
 *
 * The fake host is test/integration/fixtures/daemon-fake-host.json (real config dumps
 * from shared/oracles); its driver bindings survive restarts through --fake-sysfs-state,
 * as a kernel's survive a restart of the daemon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, spawnDaemon, type CliRun, type SpawnedDaemon } from '../support/cli-process.js';
import { DUMPS_DIR, REPO_ROOT } from '../support/paths.js';

const FIXTURE = join(REPO_ROOT, 'test', 'integration', 'fixtures', 'daemon-fake-host.json');

interface Sandbox {
  readonly dir: string;
  readonly host: string;
  readonly hostState: string;
  readonly stateDir: string;
  readonly control: string;
  readonly env: NodeJS.ProcessEnv;
}

/** A directory with the fixture (its dump paths pointed at DUMPS_DIR) and the daemon's paths. */
function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'pciback-daemon-it-'));
  const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as {
    functions: Record<string, unknown>[];
  };
  for (const fn of fixture.functions) {
    if (typeof fn.dump === 'string') {
      fn.dump = join(DUMPS_DIR, fn.dump.replace(/^.*oracles\/dumps\//, ''));
    }
  }
  const host = join(dir, 'host.json');
  writeFileSync(host, JSON.stringify(fixture));
  return {
    dir,
    host,
    hostState: join(dir, 'host-state.json'),
    stateDir: join(dir, 'state'),
    control: join(dir, 'run', 'control.sock'),
    // No default socket of a real daemon is ever reached.
    env: { ...process.env, XDG_RUNTIME_DIR: join(dir, 'xdg') },
  };
}

function cli(
  box: Sandbox,
  args: readonly string[],
  options: { uid?: number } = {},
): Promise<CliRun> {
  return runCli(args, { env: box.env, ...options });
}

/** An assignable-* command against the sandbox's daemon. */
function viaDaemon(box: Sandbox, ...args: string[]): Promise<CliRun> {
  return cli(box, [...args, '--control', box.control]);
}

function startDaemon(box: Sandbox): Promise<SpawnedDaemon> {
  return spawnDaemon(
    [
      '--platform',
      'linux',
      '--fake-sysfs',
      box.host,
      '--fake-sysfs-state',
      box.hostState,
      '--state-dir',
      box.stateDir,
      '--control',
      box.control,
    ],
    { env: box.env },
  );
}

function hostState(
  box: Sandbox,
): Record<string, { driver: string | null; driverOverride: string | null }> {
  return (
    JSON.parse(readFileSync(box.hostState, 'utf8')) as {
      functions: Record<string, { driver: string | null; driverOverride: string | null }>;
    }
  ).functions;
}

test("pciback daemon serves assignable-add, -remove and -list in xl's formats and stops on SIGTERM", async () => {
  const box = sandbox();
  const daemon = await startDaemon(box);
  try {
    // 07:00.0 was on pciback at boot (hide=): reconcile adopted it.
    assert.deepEqual(await viaDaemon(box, 'assignable-list'), {
      code: 0,
      stdout: '0000:07:00.0 \n',
      stderr: '',
    });

    assert.deepEqual(await viaDaemon(box, 'assignable-add', '-n', 'nic', '03:00.0'), {
      code: 0,
      stdout: '',
      stderr:
        'pciback: warning: Other members of IOMMU group 7 stay in dom0 while "0000:03:00.0" is passed through: "0000:03:00.1" (driver "igb")\n',
    });
    assert.deepEqual(hostState(box)['0000:03:00.0'], {
      driver: 'pciback',
      driverOverride: 'pciback',
    });

    // The NVMe dump has bus mastering on: its driver is using it.
    const busy = await viaDaemon(box, 'assignable-add', '0000:04:00.0');
    assert.equal(busy.code, 1);
    assert.match(
      busy.stderr,
      /^pciback: Cannot make device "0000:04:00\.0" assignable: driver "nvme" is using it \(bus mastering is on[^\n]*: stop what uses it, or give --force\n$/,
    );
    const forced = await viaDaemon(box, 'assignable-add', '--force', '04:00.0');
    assert.equal(forced.code, 0);
    assert.match(
      forced.stderr,
      /^pciback: warning: Taking device "0000:04:00\.0" from driver "nvme" while it is in use/,
    );

    const taken = await viaDaemon(box, 'assignable-add', '-n', 'nic', '05:00.0');
    assert.deepEqual(
      [taken.code, taken.stderr],
      [
        1,
        'pciback: Cannot make device "0000:05:00.0" assignable: the name "nic" is used by device "0000:03:00.0"\n',
      ],
    );
    const missing = await viaDaemon(box, 'assignable-add', '0a:00.0');
    assert.deepEqual(
      [missing.code, missing.stderr],
      [
        1,
        'pciback: Cannot make device "0000:0a:00.0" assignable: no such PCI device on the linux host\n',
      ],
    );

    // xl: "%04x:%02x:%02x.%01x %s", the name only with -n; the line ends in a space without one.
    assert.equal(
      (await viaDaemon(box, 'assignable-list')).stdout,
      '0000:03:00.0 \n0000:04:00.0 \n0000:07:00.0 \n',
    );
    assert.equal(
      (await viaDaemon(box, 'assignable-list', '-n')).stdout,
      '0000:03:00.0 nic\n0000:04:00.0 \n0000:07:00.0 \n',
    );
    const json = JSON.parse((await viaDaemon(box, 'assignable-list', '--json')).stdout) as {
      address: string;
      name: string | null;
      originalDriver: { state: string; name?: string } | null;
      status: string;
    }[];
    assert.deepEqual(
      json.map((row) => [
        row.address,
        row.name,
        row.originalDriver?.name ?? row.originalDriver?.state ?? null,
        row.status,
      ]),
      [
        ['0000:03:00.0', 'nic', 'igb', 'seized'],
        ['0000:04:00.0', null, 'nvme', 'seized'],
        // Adopted at start: no driver of the fake kernel's alias table matches the GPU.
        ['0000:07:00.0', null, 'none', 'seized'],
      ],
    );

    assert.deepEqual(await viaDaemon(box, 'assignable-remove', '-r', 'nic'), {
      code: 0,
      stdout: '',
      stderr: '',
    });
    assert.deepEqual(hostState(box)['0000:03:00.0'], { driver: 'igb', driverOverride: null });
    assert.equal(
      (await viaDaemon(box, 'assignable-list', '-n')).stdout,
      '0000:04:00.0 \n0000:07:00.0 \n',
    );
    const unknown = await viaDaemon(box, 'assignable-remove', 'nic');
    assert.deepEqual(
      [unknown.code, unknown.stderr],
      [
        1,
        'pciback: Cannot remove "nic" from the assignable devices: no device has that name, and it is not a PCI address\n',
      ],
    );
    assert.equal(
      (await viaDaemon(box, 'assignable-add')).code,
      2,
      'a missing argument is a usage error',
    );

    daemon.child.kill('SIGTERM');
    assert.deepEqual(await daemon.exited, { code: 0, signal: null });
    assert.equal(existsSync(box.control), false, 'the socket is removed');
    assert.ok(daemon.logs().some((l) => l.msg === 'Stopped'));

    // Without a daemon, --platform linux acts on the (fake) host directly: same view.
    const direct = await cli(box, [
      'assignable-list',
      '-n',
      '--platform',
      'linux',
      '--fake-sysfs',
      box.host,
      '--fake-sysfs-state',
      box.hostState,
      '--state-dir',
      box.stateDir,
    ]);
    assert.deepEqual(direct, { code: 0, stdout: '0000:04:00.0 \n0000:07:00.0 \n', stderr: '' });
    const noDaemon = await cli(box, ['assignable-list']);
    assert.equal(noDaemon.code, 1);
    assert.match(
      noDaemon.stderr,
      /^pciback: Cannot reach a pciback daemon at "[^"]+" \(no such socket\): start "pciback daemon"/,
    );
  } finally {
    daemon.child.kill('SIGKILL');
    rmSync(box.dir, { recursive: true, force: true });
  }
});

test('after a restart and after a SIGKILL in the middle of adds, nothing reported as done is lost', async () => {
  const box = sandbox();
  let daemon = await startDaemon(box);
  try {
    assert.equal((await viaDaemon(box, 'assignable-add', '-n', 'nic', '03:00.0')).code, 0);
    daemon.child.kill('SIGTERM');
    assert.deepEqual(await daemon.exited, { code: 0, signal: null });

    daemon = await startDaemon(box);
    assert.equal(
      (await viaDaemon(box, 'assignable-list', '-n')).stdout,
      '0000:03:00.0 nic\n0000:07:00.0 \n',
      'a clean restart keeps devices and names',
    );
    assert.deepEqual(
      daemon.logs().filter((l) => l.kind !== undefined),
      [],
      'nothing to repair after a clean stop',
    );

    // Two adds, then three at once with the daemon killed as soon as one is answered.
    const done = new Map<string, string>();
    for (const [bdf, name] of [
      ['03:00.1', 'nic1'],
      ['05:00.0', 'usb'],
    ] as const) {
      const run = await viaDaemon(box, 'assignable-add', '-n', name, bdf);
      assert.equal(run.code, 0, run.stderr);
      done.set(`0000:${bdf}`, name);
    }
    const burst = [
      ['06:00.0', 'eth'],
      ['08:00.0', 'lone'],
      ['04:00.0', 'disk'],
    ].map(([bdf = '', name = '']) =>
      viaDaemon(box, 'assignable-add', '--force', '-n', name, bdf).then((run) => ({
        bdf,
        name,
        run,
      })),
    );
    await Promise.race(burst);
    daemon.child.kill('SIGKILL');
    assert.equal((await daemon.exited).signal, 'SIGKILL');
    for (const { bdf, name, run } of await Promise.all(burst)) {
      if (run.code === 0) done.set(`0000:${bdf}`, name);
      else
        assert.match(
          run.stderr,
          /^pciback: .*pciback daemon/,
          `a failed add says why: ${run.stderr}`,
        );
    }
    assert.ok(done.size >= 3, 'at least one add of the burst was answered');
    const afterKill = await viaDaemon(box, 'assignable-list');
    assert.deepEqual(
      [afterKill.code, afterKill.stderr.replace(/".*"/, 'PATH')],
      [1, 'pciback: Cannot connect to the pciback daemon at PATH: nothing listens there\n'],
    );

    // Behind the daemon's back, someone gives 03:00.1 back to igb.
    const state = JSON.parse(readFileSync(box.hostState, 'utf8')) as {
      functions: Record<string, { driver: string | null; driverOverride: string | null }>;
    };
    state.functions['0000:03:00.1'] = { driver: 'igb', driverOverride: null };
    writeFileSync(box.hostState, JSON.stringify(state));

    daemon = await startDaemon(box);
    const repairs = daemon.logs().filter((l) => l.kind !== undefined);
    assert.ok(
      repairs.some((l) => l.kind === 'device-rebound' && l.device === '0000:03:00.1'),
      `reconcile logged the rebound device: ${JSON.stringify(repairs)}`,
    );
    // Each other repair can only be an add cut short after the host moved.
    for (const repair of repairs) {
      if (repair.device === '0000:03:00.1') continue;
      assert.equal(repair.kind, 'device-adopted', JSON.stringify(repair));
      assert.ok(!done.has(repair.device ?? ''), 'a device reported as done needs no repair');
    }

    const listed = new Map(
      (await viaDaemon(box, 'assignable-list', '-n')).stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => {
          const [address = '', name = ''] = line.split(' ');
          return [address, name] as const;
        }),
    );
    assert.equal(listed.get('0000:03:00.0'), 'nic');
    assert.equal(listed.has('0000:03:00.1'), false, 'it is on igb now, not assignable');
    for (const [address, name] of done) {
      if (address === '0000:03:00.1') continue;
      assert.equal(listed.get(address), name, `${address} was reported as done`);
    }

    // Its record was kept (status rebound): remove forgets it and leaves it on igb.
    const removed = await viaDaemon(box, 'assignable-remove', '-r', 'nic1');
    assert.equal(removed.code, 0);
    assert.match(removed.stderr, /is not on stub "pciback" but on driver "igb": it is left there/);

    daemon.child.kill('SIGTERM');
    assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  } finally {
    daemon.child.kill('SIGKILL');
    rmSync(box.dir, { recursive: true, force: true });
  }
});

test('without root, the linux platform refuses to write /sys with a one-line reason', async () => {
  const box = sandbox();
  try {
    // As root, run the commands as nobody; otherwise as ourselves.
    const uid = process.getuid?.() === 0 ? 65534 : undefined;
    const add = await cli(
      box,
      ['assignable-add', '--platform', 'linux', '03:00.0'],
      uid === undefined ? {} : { uid },
    );
    assert.equal(add.code, 1);
    assert.match(
      add.stderr,
      /^pciback: Cannot change PCI devices as user \d+: must run as root: it writes \/sys\/bus\/pci[^\n]*\n$/,
    );
    const daemon = await cli(
      box,
      ['daemon', '--platform', 'linux', '--state-dir', box.stateDir, '--control', box.control],
      uid === undefined ? {} : { uid },
    );
    assert.equal(daemon.code, 1);
    assert.match(daemon.stderr, /must run as root: it writes \/sys\/bus\/pci/);
    assert.equal(existsSync(box.stateDir), false, 'refused before the state directory is made');
  } finally {
    rmSync(box.dir, { recursive: true, force: true });
  }
});
