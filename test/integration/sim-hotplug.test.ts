// SPDX-License-Identifier: MIT
/**
 * Hot plug end to end on the live simulator (`pciback sim --keep-running`): the CLI's
 * `attach`, `detach` and `list` go through the store's Unix socket; pciback's XenBus
 * backend exports or releases the device; the guest's pcifront follows Reconfiguring and
 * Reconfigured and rescans through the PV channel, and what it sees is checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startLiveSim } from '../../src/daemon/sim-live.js';
import type { SimGuest } from '../../src/daemon/sim-host.js';
import type { GuestToHost } from '../../src/platform/sim/guest/messages.js';
import { CLI_PATH } from '../support/paths.js';
import { simMachine } from '../support/sim-machines.js';

const execFileAsync = promisify(execFile);

async function cli(
  socket: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      [CLI_PATH, ...args, '--socket', socket],
      {
        timeout: 30_000,
      },
    );
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

type Rescan = Extract<GuestToHost, { type: 'rescanned' }>;
type Connected = Extract<GuestToHost, { type: 'connected' }>;

function rescanned(guest: SimGuest): Promise<Rescan> {
  return guest.waitFor((m): m is Rescan => m.type === 'rescanned', 20_000);
}

function connected(guest: SimGuest): Promise<Connected> {
  return guest.waitFor((m): m is Connected => m.type === 'connected', 20_000);
}

test(
  'attach, detach and list through the live simulator: the guest rescans and sees each change',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-hotplug-'));
    const lines: string[] = [];
    const live = await startLiveSim(
      simMachine([
        { name: 'web', pci: ['0000:01:00.0'], program: 'enumerate' },
        { name: 'spare', pci: [], program: 'enumerate' },
      ]),
      { socketPath: join(dir, 'xs.sock'), onLine: (l) => lines.push(l) },
    );
    try {
      const web = live.host.guest('web');
      const spare = live.host.guest('spare');
      assert.ok(web !== undefined && spare !== undefined);
      const webUp = await connected(web);
      assert.deepEqual(
        webUp.devices.map((d) => d.address),
        ['0000:00:00.0'],
      );
      const sock = live.socketPath;

      // Hot add the NVMe: pcifront rescans after Reconfigured and finds it in slot 1.
      let rescan = rescanned(web);
      assert.deepEqual(await cli(sock, 'attach', 'web', '02:00.0'), { code: 0, out: '', err: '' });
      assert.deepEqual((await rescan).added, ['0000:00:01.0']);
      assert.equal(
        (await cli(sock, 'list', 'web')).out,
        'Vdev Device\n00.0 0000:01:00.0\n01.0 0000:02:00.0\n',
      );

      // Hot remove the NIC: the guest removes it, rescans, and the toolstack compacts.
      rescan = rescanned(web);
      assert.equal((await cli(sock, 'detach', 'web', '0000:01:00.0')).code, 0);
      assert.deepEqual((await rescan).removed, ['0000:00:00.0']);
      assert.equal((await cli(sock, 'list', 'web')).out, 'Vdev Device\n01.0 0000:02:00.0\n');
      const nic = live.host.deviceResults().find((d) => d.address === '0000:01:00.0');
      assert.equal(nic?.owner, null, 'the NIC went back to pciback');

      // A guest booted without devices probes pcifront when its first device arrives;
      // the NIC, reset and released, serves a second guest.
      const spareUp = connected(spare);
      assert.equal((await cli(sock, 'attach', 'spare', '01:00.0')).code, 0);
      assert.deepEqual(
        (await spareUp).devices.map((d) => [d.address, d.ids]),
        [['0000:00:00.0', '8086:10fb']],
      );
      assert.equal(
        live.host.deviceResults().find((d) => d.address === '0000:01:00.0')?.owner,
        spare.domid,
      );

      // A device pciback does not hold is refused with pciback's own words.
      const refused = await cli(sock, 'attach', 'web', '00:1c.0');
      assert.equal(refused.code, 1);
      assert.match(
        refused.err,
        /pciback refused it: 22 Couldn't locate PCI device \(0000:00:1c\.0\)! perhaps already in-use\?/,
      );
      assert.ok(
        lines.some((l) => l.startsWith('web (domid') && l.includes('rescanned, +0000:00:01.0')),
      );
    } finally {
      await live.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'aerState = aerfail written by pciback makes the toolstack destroy that guest and say why',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-aerfail-'));
    const lines: string[] = [];
    const live = await startLiveSim(
      simMachine([
        { name: 'victim', pci: ['0000:01:00.0'], program: 'enumerate' },
        { name: 'bystander', pci: ['0000:02:00.0'], program: 'enumerate' },
      ]),
      { socketPath: join(dir, 'xs.sock'), onLine: (l) => lines.push(l) },
    );
    try {
      const victim = live.host.guest('victim');
      const bystander = live.host.guest('bystander');
      assert.ok(victim !== undefined && bystander !== undefined);
      await Promise.all([connected(victim), connected(bystander)]);
      // What pciback's kill_domain_by_device writes (spec §6.6), at its hard-coded path.
      const { stdout } = await execFileAsync(
        'xenstore-write',
        [`/local/domain/0/backend/pci/${victim.domid}/0/aerState`, 'aerfail'],
        { env: { ...process.env, XENSTORED_PATH: live.socketPath } },
      );
      assert.equal(stdout, '');
      await waitUntil(() => live.host.guest('victim') === undefined, 10_000);
      assert.match(victim.destroyedBecause ?? '', /aerState.*aerfail/);
      assert.ok(
        lines.some((l) => /^victim \(domid \d+\): destroyed: .*aerfail/.test(l)),
        lines.join('\n'),
      );
      assert.equal(
        live.host.deviceResults().find((d) => d.address === '0000:01:00.0')?.owner,
        null,
      );
      assert.ok(live.host.guest('bystander') !== undefined, 'the other guest is untouched');
      assert.equal(
        (await cli(live.socketPath, 'list', 'bystander')).out,
        'Vdev Device\n00.0 0000:02:00.0\n',
      );
    } finally {
      await live.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
