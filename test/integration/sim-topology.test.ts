// SPDX-License-Identifier: MIT
/**
 * End to end through the simulated host: what guests enumerate in both topologies
 * (spec §8.1 vpci, §8.2 passthrough), compared with the catalog devices' own config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimMachine, type SimRunResult } from '../../src/daemon/sim-machine.js';
import {
  catalogIdentities,
  guestNamed,
  reportOf,
  runSimCli,
  simMachine,
  simMachineDocument,
  type SimDomainInit,
} from '../support/sim-machines.js';

interface EnumeratedDevice {
  readonly address: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  readonly classCode: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly interruptPin: number;
  readonly multiFunction: boolean;
}

const HANG_GUARD_MS = 120_000;

/**
 * The GPU's two functions are listed apart with the NVMe and the xHCI between them, so
 * only the "same real slot joins the slot" rule (§8.1 add step 2) can put 04:00.1 beside
 * 04:00.0.
 */
const DOMAINS: readonly SimDomainInit[] = [
  {
    name: 'mixed',
    pci: ['0000:02:00.0', '0000:04:00.0', '0000:03:00.0', '0000:04:00.1'],
    program: 'enumerate',
  },
  { name: 'nic', pci: ['0000:01:00.0'], program: 'enumerate' },
];

/** real -> virtual address each topology must give (vpci: §8.1 examples; passthrough: real). */
const EXPECTED_VPCI: Record<string, Record<string, string>> = {
  mixed: {
    '0000:02:00.0': '0000:00:00.0',
    '0000:04:00.0': '0000:00:01.0',
    '0000:03:00.0': '0000:00:02.0',
    '0000:04:00.1': '0000:00:01.1',
  },
  nic: { '0000:01:00.0': '0000:00:00.0' },
};

function enumerated(result: SimRunResult, name: string): EnumeratedDevice[] {
  const guest = guestNamed(result, name);
  assert.equal(guest.status, 'ok', `${name}: ${guest.error ?? ''}`);
  const report = reportOf(guest);
  assert.equal(report.ok, true, report.summary);
  return report.data.devices as EnumeratedDevice[];
}

/** `0000:00:01.01` (xenstore vdev-N, func as %02x) -> `0000:00:01.1`. */
function normalizeVdev(vdev: string): string {
  const dot = vdev.lastIndexOf('.');
  return `${vdev.slice(0, dot)}.${Number.parseInt(vdev.slice(dot + 1), 16).toString(16)}`;
}

/**
 * Checks that every attached function appears at `expected[real]` in the guest's scan
 * with the IDs and class of the hardware, and that the guest sees nothing else.
 */
function assertGuestView(
  result: SimRunResult,
  name: string,
  expected: Readonly<Record<string, string>>,
): void {
  const identities = catalogIdentities();
  const guest = guestNamed(result, name);
  const published = Object.fromEntries(guest.devices.map((d) => [d.real, normalizeVdev(d.guest)]));
  assert.deepEqual(published, expected, `${name}: published vdev addresses`);
  const seen = enumerated(result, name);
  assert.deepEqual(
    seen.map((d) => d.address).sort(),
    Object.values(expected).sort(),
    `${name}: the guest sees exactly its devices`,
  );
  for (const [real, virtual] of Object.entries(expected)) {
    const hw = identities.get(real);
    assert.ok(hw !== undefined, real);
    const device = seen.find((d) => d.address === virtual);
    assert.ok(device !== undefined, `${name}: ${real} not found at ${virtual}`);
    assert.deepEqual(
      {
        vendorId: device.vendorId,
        deviceId: device.deviceId,
        revision: device.revision,
        classCode: device.classCode,
        subsystemVendorId: device.subsystemVendorId,
        subsystemId: device.subsystemId,
        interruptPin: device.interruptPin,
      },
      hw,
      `${name}: ${real} as ${virtual}`,
    );
  }
}

test(
  'vpci keeps the GPU functions together in one slot and gives other devices the next slots',
  { timeout: HANG_GUARD_MS },
  async () => {
    const result = await runSimMachine(simMachine(DOMAINS), { guestTimeoutMs: 60_000 });
    assert.equal(result.topology, 'vpci');
    for (const [name, expected] of Object.entries(EXPECTED_VPCI)) {
      assertGuestView(result, name, expected);
      const report = reportOf(guestNamed(result, name));
      assert.deepEqual(report.data.busesScanned, ['0000:00'], `${name}: one root, 0000:00`);
    }
    // The GPU's functions sit in one virtual slot, so the guest sees a multi-function device.
    const gpu = enumerated(result, 'mixed').filter((d) => d.address.startsWith('0000:00:01.'));
    assert.equal(gpu.length, 2);
    assert.ok(gpu.every((d) => d.multiFunction));
  },
);

test(
  'passthrough shows guests the real addresses and publishes the root of every bus',
  { timeout: HANG_GUARD_MS },
  async () => {
    const result = await runSimMachine(simMachine(DOMAINS, { passthrough: true }), {
      guestTimeoutMs: 60_000,
    });
    assert.equal(result.topology, 'passthrough');
    const mixed = Object.fromEntries(DOMAINS[0]?.pci.map((a) => [a, a]) ?? []);
    assertGuestView(result, 'mixed', mixed);
    assertGuestView(result, 'nic', { '0000:01:00.0': '0000:01:00.0' });
    // No exported device sits behind another exported one: one root per bus (§8.2 publish).
    const buses = (name: string): string[] =>
      [...(reportOf(guestNamed(result, name)).data.busesScanned as string[])].sort();
    assert.deepEqual(buses('mixed'), ['0000:02', '0000:03', '0000:04']);
    assert.deepEqual(buses('nic'), ['0000:01']);
  },
);

test(
  'pciback sim --machine FILE --json prints the same guest view the API returns',
  { timeout: HANG_GUARD_MS },
  async () => {
    const run = await runSimCli(simMachineDocument(DOMAINS), { hangGuardMs: 90_000 });
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as SimRunResult;
    assert.equal(result.topology, 'vpci');
    for (const [name, expected] of Object.entries(EXPECTED_VPCI)) {
      assertGuestView(result, name, expected);
    }
    // Every seized function is released (no owner) once its guest is done.
    const seized = result.devices.filter((d) => d.seized).map((d) => [d.address, d.owner]);
    assert.deepEqual(seized, [
      ['0000:01:00.0', null],
      ['0000:02:00.0', null],
      ['0000:03:00.0', null],
      ['0000:04:00.0', null],
      ['0000:04:00.1', null],
    ]);
  },
);
