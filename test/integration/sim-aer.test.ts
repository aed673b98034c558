// SPDX-License-Identifier: MIT
/**
 * PCIe AER recovery end to end on the live simulator (spec §6.6, §9): an error injected
 * into a passed-through device's hardware goes through dom0's AER core to pciback's
 * handlers, over `aer_op` to the owning guest's pcifront and its driver, and back; a
 * guest without an AER driver is killed through `aerState` = `aerfail` and the
 * toolstack's watch, while the other guests keep working.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PCI_CHANNEL_IO, PCI_ERS_RESULT } from '../../src/abi/pciif.js';
import { injectAerError } from '../../src/daemon/sim-aer.js';
import type { SimGuest, SimHost } from '../../src/daemon/sim-host.js';
import { startLiveSim } from '../../src/daemon/sim-live.js';
import { PciAddress } from '../../src/pci/address.js';
import type { GuestToHost } from '../../src/platform/sim/guest/messages.js';
import { parsePciSpec } from '../../src/toolstack/index.js';
import { simMachine } from '../support/sim-machines.js';

const NIC = PciAddress.parse('0000:01:00.0');
const NVME = PciAddress.parse('0000:02:00.0');
const GPU = PciAddress.parse('0000:04:00.0');

type Console = Extract<GuestToHost, { type: 'console' }>;
type Rescan = Extract<GuestToHost, { type: 'rescanned' }>;

/** Resolves once the guest printed a console line matching `pattern`. */
function consoleLine(guest: SimGuest, pattern: RegExp): Promise<Console> {
  return guest.waitFor((m): m is Console => m.type === 'console' && pattern.test(m.line), 20_000);
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function owner(host: SimHost, address: PciAddress): number | null | undefined {
  return host.deviceResults().find((d) => d.address === address.toString())?.owner;
}

test(
  'AER on the live simulator: a guest with an AER driver recovers; one without is destroyed through aerState',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-aer-'));
    const lines: string[] = [];
    const live = await startLiveSim(
      simMachine([
        { name: 'recovering', pci: ['0000:01:00.0'], program: 'aer' },
        { name: 'unaware', pci: ['0000:02:00.0'], program: 'enumerate' },
        { name: 'bystander', pci: ['0000:03:00.0'], program: 'enumerate' },
      ]),
      { socketPath: join(dir, 'xs.sock'), onLine: (l) => lines.push(l) },
    );
    try {
      const host = live.host;
      const recovering = host.guest('recovering');
      const unaware = host.guest('unaware');
      const bystander = host.guest('bystander');
      assert.ok(recovering && unaware && bystander);
      for (const guest of [recovering, unaware, bystander]) {
        const outcome = await guest.outcome;
        assert.equal(outcome.status, 'ok', `${guest.name}: ${outcome.error ?? ''}`);
      }
      const guestConsole: string[] = [];
      recovering.onMessage((m) => {
        if (m.type === 'console') guestConsole.push(m.line);
      });

      // 1. Non-fatal: error_detected(normal) -> CAN_RECOVER, mmio_enabled, resume.
      let resumed = consoleLine(recovering, /resume\(\)/);
      const nonFatal = await injectAerError(host, NIC, { fatal: false });
      await resumed;
      assert.equal(nonFatal.recovered, true, nonFatal.log.join('\n'));
      assert.equal(nonFatal.channelState, PCI_CHANNEL_IO.normal);
      assert.deepEqual(
        nonFatal.calls.map((c) => [c.address, c.callback, c.result]),
        [
          ['0000:01:00.0', 'error_detected', PCI_ERS_RESULT.CAN_RECOVER],
          ['0000:01:00.0', 'mmio_enabled', PCI_ERS_RESULT.RECOVERED],
          ['0000:01:00.0', 'resume', null],
        ],
      );
      assert.deepEqual(nonFatal.kills, []);
      assert.equal(nonFatal.statusCleared, true);
      // The guest's driver saw each callback at the address it knows the NIC by.
      assert.deepEqual(guestConsole, [
        'aer: 0000:00:00.0 error_detected(normal) -> CAN_RECOVER',
        'aer: 0000:00:00.0 mmio_enabled() -> RECOVERED',
        'aer: 0000:00:00.0 resume()',
      ]);

      // 2. Fatal: frozen, the link is reset, the driver asks for slot_reset and checks
      // the device answers again through pcifront while dom0 waits.
      guestConsole.length = 0;
      resumed = consoleLine(recovering, /resume\(\)/);
      const fatal = await injectAerError(host, NIC, { fatal: true });
      await resumed;
      assert.equal(fatal.recovered, true, fatal.log.join('\n'));
      assert.equal(fatal.channelState, PCI_CHANNEL_IO.frozen);
      assert.deepEqual(fatal.linkReset, ['0000:01:00.0']);
      assert.deepEqual(
        fatal.calls.map((c) => [c.callback, c.result]),
        [
          ['error_detected', PCI_ERS_RESULT.NEED_RESET],
          ['slot_reset', PCI_ERS_RESULT.RECOVERED],
          ['resume', null],
        ],
      );
      assert.deepEqual(guestConsole, [
        'aer: 0000:00:00.0 error_detected(frozen) -> NEED_RESET',
        'aer: 0000:00:00.0 slot_reset() -> RECOVERED (device 8086:10fb)',
        'aer: 0000:00:00.0 resume()',
      ]);
      const channel = host.connectionStats(recovering.domid)?.channel;
      assert.ok(channel);
      assert.equal(channel.aerRequests, 6);
      assert.equal(channel.aerTimeouts, 0);
      // `pciback sim --keep-running` shows the guest's console lines as they come.
      assert.ok(
        lines.includes(`recovering (domid ${recovering.domid}): aer: 0000:00:00.0 resume()`),
        lines.join('\n'),
      );

      // 3. A guest without an AER driver: pcifront answers NONE, pciback writes
      // aerState = aerfail, and the toolstack destroys the guest.
      const killed = await injectAerError(host, NVME, { fatal: false });
      assert.deepEqual(killed.calls[0], {
        address: '0000:02:00.0',
        callback: 'error_detected',
        result: PCI_ERS_RESULT.NONE,
      });
      assert.ok(killed.kills.length >= 1, killed.log.join('\n'));
      assert.deepEqual(killed.kills[0], {
        device: '0000:02:00.0',
        frontendDomid: unaware.domid,
        callback: 'error_detected',
        written: true,
      });
      assert.ok(killed.kills.every((k) => k.frontendDomid === unaware.domid));
      await until('the unaware guest is gone', () => host.guest('unaware') === undefined);
      assert.match(unaware.destroyedBecause ?? '', /aerState" = "aerfail"/);
      assert.ok(lines.some((l) => l.startsWith('unaware (domid') && l.includes('aerfail')));
      await until('the NVMe is back in the pool', () => owner(host, NVME) === null);

      // 4. A device no guest holds: pciback logs and votes its defaults for both functions.
      const idle = await injectAerError(host, GPU, { fatal: true });
      assert.equal(idle.recovered, true);
      assert.deepEqual(
        idle.calls.map((c) => `${c.address} ${c.callback}`),
        [
          '0000:04:00.0 error_detected',
          '0000:04:00.1 error_detected',
          '0000:04:00.0 mmio_enabled',
          '0000:04:00.1 mmio_enabled',
          '0000:04:00.0 resume',
          '0000:04:00.1 resume',
        ],
      );
      assert.deepEqual(idle.kills, []);
      assert.ok(idle.log.some((l) => l.includes('not found/assigned')));

      // 5. The others keep working: the recovering guest recovers again, and the GPU is
      // hot-added to the bystander, which rescans and finds both functions.
      assert.equal((await injectAerError(host, NIC)).recovered, true);
      // SimHost attaches one function at a time: the second rescan shows both.
      const rescan = bystander.waitFor(
        (m): m is Rescan =>
          m.type === 'rescanned' && m.devices.some((d) => d.address === '0000:00:01.1'),
        20_000,
      );
      await host.attach(bystander.domid, parsePciSpec('04:00.*'));
      assert.deepEqual(
        (await rescan).devices.map((d) => d.address),
        ['0000:00:00.0', '0000:00:01.0', '0000:00:01.1'],
      );
      assert.equal(owner(host, GPU), bystander.domid);
      assert.equal(host.guest('recovering'), recovering);
      assert.equal(host.guest('bystander'), bystander);

      await assert.rejects(
        injectAerError(host, PciAddress.parse('0000:07:00.0')),
        /Cannot inject an AER error into "0000:07:00.0"/,
      );
    } finally {
      await live.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
