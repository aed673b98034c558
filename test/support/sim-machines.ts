// SPDX-License-Identifier: MIT
/**
 * Machines and helpers for the end-to-end tests of the simulated host
 * (`test/integration/sim-*.test.ts`): the catalog devices of the built-in machine, what
 * their hardware says about themselves, and `pciback sim` run as a child process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCatalogDevice } from '../../src/devices/catalog/index.js';
import { parseMachine, type Machine } from '../../src/daemon/machine-file.js';
import type { GuestResult, SimRunResult } from '../../src/daemon/sim-machine.js';
import { CLI_PATH } from './paths.js';

/** The host devices of the built-in machine: `bdf` of function 0 -> catalog model. */
export const SIM_DEVICES = [
  { bdf: '0000:00:1c.0', model: 'root-port' },
  { bdf: '0000:01:00.0', model: 'nic-sriov', irq: 16 },
  { bdf: '0000:02:00.0', model: 'nvme', irq: 17 },
  { bdf: '0000:03:00.0', model: 'xhci', irq: 18 },
  { bdf: '0000:04:00.0', model: 'gpu', irq: 19 },
] as const;

/** Everything but the root port is seized. */
export const SIM_HIDE = '(0000:01:00.0)(0000:02:00.0)(0000:03:00.0)(0000:04:00.*)';

/** One domain of {@link simMachine}. */
export interface SimDomainInit {
  readonly name: string;
  readonly pci: readonly string[];
  readonly program: string;
}

/** The machine document (unvalidated JSON) with the built-in devices and these domains. */
export function simMachineDocument(
  domains: readonly SimDomainInit[],
  options: { passthrough?: boolean } = {},
): Record<string, unknown> {
  return {
    pciback: { hide: SIM_HIDE, passthrough: options.passthrough ?? false },
    devices: SIM_DEVICES,
    domains,
  };
}

/** {@link simMachineDocument}, validated. */
export function simMachine(
  domains: readonly SimDomainInit[],
  options: { passthrough?: boolean } = {},
): Machine {
  return parseMachine(simMachineDocument(domains, options), 'sim test');
}

/** What a function's own config space says, as the guest's enumerate data spells it. */
export interface HardwareIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  readonly classCode: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly interruptPin: number;
}

/**
 * The identity of every catalog function of the machine, by real address: built from
 * the catalog itself (not through pciback), so a guest's view is compared with the
 * hardware and not with the backend's idea of it.
 */
export function catalogIdentities(): Map<string, HardwareIdentity> {
  const out = new Map<string, HardwareIdentity>();
  for (const device of SIM_DEVICES) {
    for (const { fn, device: hw } of buildCatalogDevice(device.model)) {
      const address = `${device.bdf.slice(0, -1)}${fn.toString(16)}`;
      out.set(address, {
        vendorId: hw.configRead(0x00, 2),
        deviceId: hw.configRead(0x02, 2),
        revision: hw.configRead(0x08, 1),
        classCode: hw.configRead(0x08, 4) >>> 8,
        subsystemVendorId: hw.configRead(0x2c, 2),
        subsystemId: hw.configRead(0x2e, 2),
        interruptPin: hw.configRead(0x3d, 1),
      });
    }
  }
  return out;
}

/** The guest named `name`, or a thrown AssertionError-like message. */
export function guestNamed(result: SimRunResult, name: string): GuestResult {
  const guest = result.guests.find((g) => g.name === name);
  if (guest === undefined) throw new Error(`No guest "${name}" in the run`);
  return guest;
}

/** A program report as it crosses `postMessage` (see `pcifront/programs/types.ts`). */
export interface SimReport {
  readonly program: string;
  readonly ok: boolean;
  readonly summary: string;
  readonly lines: readonly string[];
  readonly data: Record<string, unknown>;
}

/** The guest's report, or a thrown error carrying its status and error. */
export function reportOf(guest: GuestResult): SimReport {
  if (guest.report === undefined) {
    throw new Error(`Guest "${guest.name}" has no report: ${guest.status} ${guest.error ?? ''}`);
  }
  return guest.report as SimReport;
}

/** What `node CLI sim --machine FILE --json` did. */
export interface SimCliRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Writes `document` to a temporary machine file and runs the compiled CLI on it, killing
 * it after `hangGuardMs` (a hang guard, not a timing assertion).
 */
export async function runSimCli(
  document: unknown,
  options: { hangGuardMs?: number; extraArgs?: readonly string[] } = {},
): Promise<SimCliRun> {
  const dir = mkdtempSync(join(tmpdir(), 'pciback-sim-test-'));
  const file = join(dir, 'machine.json');
  writeFileSync(file, typeof document === 'string' ? document : JSON.stringify(document));
  try {
    return await new Promise<SimCliRun>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [CLI_PATH, 'sim', '--machine', file, '--json', ...(options.extraArgs ?? [])],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const guard = setTimeout(() => child.kill('SIGKILL'), options.hangGuardMs ?? 60_000);
      child.on('error', (err) => {
        clearTimeout(guard);
        reject(err);
      });
      child.on('close', (status) => {
        clearTimeout(guard);
        resolve({ status, stdout, stderr });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
