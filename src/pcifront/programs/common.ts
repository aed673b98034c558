// SPDX-License-Identifier: MIT
/** Helpers shared by the built-in guest programs. */
import {
  PCI_CAP_ID,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_MSIX_FLAGS_QSIZE,
} from '../../abi/pci-regs.js';
import type { EvtchnPort } from '../../platform/types.js';
import {
  DEFAULT_ROOTS,
  enumerate,
  type EnumerationResult,
  type GuestPciDevice,
} from '../enumerate.js';
import type { GuestProgramEnv, ProgramReport } from './types.js';

/** Collects a program's lines while forwarding them to the guest console. */
export class ProgramLog {
  readonly lines: string[] = [];
  readonly #env: GuestProgramEnv;

  constructor(env: GuestProgramEnv) {
    this.#env = env;
  }

  line(text: string): void {
    this.lines.push(text);
    this.#env.log(text);
  }

  report(
    program: string,
    ok: boolean,
    summary: string,
    data: Readonly<Record<string, unknown>>,
  ): ProgramReport {
    this.line(summary);
    return { program, ok, summary, lines: [...this.lines], data };
  }
}

/** Scans the env's roots (0000:00 when the backend published none). */
export function scan(env: GuestProgramEnv): EnumerationResult {
  return enumerate(env.front, { roots: env.roots.length > 0 ? env.roots : DEFAULT_ROOTS });
}

/** The standard capability `id` of a device, or undefined. */
export function capabilityOf(
  device: GuestPciDevice,
  id: number,
): GuestPciDevice['capabilities'][number] | undefined {
  return device.capabilities.find((c) => c.id === id);
}

/** MSI-X table size from the capability's control word, or 0 without MSI-X. */
export function msixTableSize(device: GuestPciDevice): number {
  const cap = capabilityOf(device, PCI_CAP_ID.MSIX);
  return cap === undefined ? 0 : ((cap.header >>> 16) & PCI_MSIX_FLAGS_QSIZE) + 1;
}

/**
 * What a guest driver's `pci_enable_device` + `pci_set_master` write: decode for the
 * BAR kinds present, and bus mastering. Returns the op's err.
 */
export function enableDevice(env: GuestProgramEnv, device: GuestPciDevice): number {
  const current = env.front.readConfig(device, PCI_COMMAND_OFFSET, 2);
  if (current.pcibios !== 0) return current.err;
  let bits = PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
  if (device.bars.some((b) => b.kind === 'io')) bits |= PCI_COMMAND_IO;
  return env.front.writeConfig(device, PCI_COMMAND_OFFSET, 2, current.value | bits).err;
}

/**
 * Waits for a few interrupts on the pirqs and says what arrived. Uses the env's
 * `bindPirq`/`waitInterrupts` when given, else the hypercalls' `bindPirq` and `wait`.
 * The ports bound here are closed again either way, as a guest kernel unbinds a pirq's
 * port before disabling MSI: a pirq number freed by the disable is reused by the next
 * enable in the same domain, and a port still bound to it would refuse the new binding.
 * Never blocks longer than `timeoutMs`.
 */
export function observeInterrupts(
  env: GuestProgramEnv,
  pirqs: readonly number[],
  options: { count: number; timeoutMs: number },
): { observed: number; text: string } {
  const hv = env.hv;
  const bind =
    env.bindPirq ??
    (typeof hv.bindPirq === 'function'
      ? (pirq: number): EvtchnPort | undefined => {
          const port = hv.bindPirq(pirq);
          return port > 0 ? (port as EvtchnPort) : undefined;
        }
      : undefined);
  if (bind === undefined) {
    return { observed: 0, text: 'interrupts: not observed (no interrupt delivery)' };
  }
  const ports: EvtchnPort[] = [];
  for (const pirq of pirqs) {
    const port = bind(pirq);
    if (port !== undefined) ports.push(port);
  }
  if (ports.length === 0) return { observed: 0, text: 'interrupts: not observed (no pirq bound)' };
  const wait = env.waitInterrupts ?? ((p, n, t) => waitOnHypercalls(env, p, n, t));
  const fired = wait(ports, options.count, options.timeoutMs);
  for (const port of ports) hv.closePort(port);
  if (fired.length === 0) {
    return { observed: 0, text: `interrupts: not observed within ${options.timeoutMs} ms` };
  }
  return {
    observed: fired.length,
    text: `interrupts: ${fired.length} observed on port(s) ${[...new Set(fired)].join(', ')}`,
  };
}

/** Collects events on `ports` through `hv.wait` until `count` or the deadline. */
function waitOnHypercalls(
  env: GuestProgramEnv,
  ports: readonly EvtchnPort[],
  count: number,
  timeoutMs: number,
): number[] {
  const wanted = new Set<number>(ports);
  const fired: number[] = [];
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = deadline - performance.now();
    if (fired.length >= count || left <= 0) return fired;
    for (const port of env.hv.wait(Math.min(left, 50))) {
      if (wanted.has(port)) fired.push(port);
    }
  }
}

/** Latency statistics in ms. */
export interface LatencyStats {
  count: number;
  minMs: number;
  medianMs: number;
  maxMs: number;
}

/** min/median/max of `samples` (all 0 when empty). */
export function latencyStats(samples: readonly number[]): LatencyStats {
  if (samples.length === 0) return { count: 0, minMs: 0, medianMs: 0, maxMs: 0 };
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (n: number): number => Math.round(n * 1000) / 1000;
  return {
    count: sorted.length,
    minMs: round(sorted[0] ?? 0),
    medianMs: round(sorted[Math.floor(sorted.length / 2)] ?? 0),
    maxMs: round(sorted[sorted.length - 1] ?? 0),
  };
}
