// SPDX-License-Identifier: MIT
/**
 * Suite "P5 flood": the p99 of well-behaved guests' conf_read round trips without and
 * with a flooding guest on the same backend, and what the flood costs the backend.
 * The flooder is a connected pcifront guest that notifies the backend's port as fast as
 * it can with `XEN_PCIF_active` clear (every event is spurious for pciback). A control
 * phase replaces the flooder with a guest that only burns CPU (no notifies), which
 * separates the cost of the backend handling the flood from the cost of one core less on
 * a small machine. Target: p99 with flood ≤ 2x p99 without.
 */
import { availableParallelism } from 'node:os';
import { DEFAULT_SPIN_ITERATIONS } from '../src/platform/sim/xen/guest-hypercalls.js';
import { ratio, type BenchRow, type SuiteResult } from './report.js';
import {
  BenchHost,
  hostAddress,
  latencyStats,
  measureMainCpu,
  sleep,
  SETTLE_MS,
  type BenchGuest,
  type LatencyStats,
} from './sim-host.js';

/** Options of {@link runFloodBench}. */
export interface FloodBenchOptions {
  /** Well-behaved guests reading at the same time. Default 2. */
  readonly guests?: number;
  /** Reads per well-behaved guest per phase. Default 10 000. */
  readonly reads?: number;
  /** Window of the CPU-only figures (idle, flood alone), in ms. Default 1000. */
  readonly windowMs?: number;
}

const TARGET = 2;
const WARMUP_READS = 2000;

function row(name: string, s: LatencyStats): BenchRow {
  return { name, medianNs: s.medianUs * 1000, p99Ns: s.p99Us * 1000, samples: s.samples };
}

async function readAll(guests: readonly BenchGuest[], count: number): Promise<number[]> {
  const done = await Promise.all(
    guests.map((g) => {
      const address = g.guestAddresses[0];
      if (address === undefined) throw new Error(`Guest "${g.name}" has no device`);
      return g.request({ type: 'reads', address, count }, 'reads-done');
    }),
  );
  const failures = done.reduce((n, d) => n + d.failures, 0);
  if (failures > 0) throw new Error(`P5: ${failures} reads failed`);
  return done.flatMap((d) => Array.from(d.latenciesUs));
}

/** Run the suite. */
export async function runFloodBench(options: FloodBenchOptions = {}): Promise<SuiteResult> {
  const nGuests = options.guests ?? 2;
  const reads = options.reads ?? 10_000;
  const windowMs = options.windowMs ?? 1000;
  const host = new BenchHost();
  try {
    const good: BenchGuest[] = [];
    for (let i = 0; i < nGuests; i++) {
      const nic = host.seizeCatalog('nic-sriov', hostAddress(1 + i, 0));
      good.push(
        await host.startGuest({
          name: `p5-good-${i}`,
          devices: nic,
          spinIterations: DEFAULT_SPIN_ITERATIONS,
        }),
      );
    }
    const flooder = await host.startGuest({
      name: 'p5-flooder',
      devices: host.seizeCatalog('nvme', hostAddress(0x20, 0)),
      spinIterations: DEFAULT_SPIN_ITERATIONS,
    });
    await readAll(good, WARMUP_READS);

    // Without flood.
    await sleep(SETTLE_MS);
    const idle = await measureMainCpu(() => sleep(windowMs));
    await sleep(SETTLE_MS);
    const base = await measureMainCpu(() => readAll(good, reads));
    const baseStats = latencyStats(base.result);

    // With flood: alone first (the cost of the flood itself), then with the readers.
    const events0 = flooder.events.events;
    const kicks0 = flooder.channel().stats().spuriousKicks;
    await sleep(SETTLE_MS);
    const floodDone = flooder.request({ type: 'flood' }, 'loop-done', 120_000);
    await sleep(100);
    const floodIdle = await measureMainCpu(() => sleep(windowMs));
    const flood = await measureMainCpu(() => readAll(good, reads));
    flooder.stopLoop();
    const floodEnd = await floodDone;
    const floodEvents = flooder.events.events - events0;
    const floodKicks = flooder.channel().stats().spuriousKicks - kicks0;
    const floodStats = latencyStats(flood.result);
    await flooder.stop();

    // Control: a guest that takes a core but never notifies.
    const burner = await host.startGuest({ name: 'p5-burner', devices: [], spinIterations: 0 });
    await sleep(SETTLE_MS);
    const burnDone = burner.request({ type: 'burn' }, 'loop-done', 120_000);
    await sleep(100);
    const burn = await measureMainCpu(() => readAll(good, reads));
    burner.stopLoop();
    await burnDone;
    const burnStats = latencyStats(burn.result);

    const pct = (n: number): string => `${n.toFixed(2)} %`;
    const who = `${nGuests} well-behaved guest${nGuests === 1 ? '' : 's'}`;
    return {
      suite: 'P5 flood',
      description: `p99 of ${who}’ conf_read round trips (${reads} dword reads each, concurrently, guest spin ${DEFAULT_SPIN_ITERATIONS}) without and with a guest notifying the backend’s port as fast as it can with XEN_PCIF_active clear, and the backend (main thread) CPU the flood costs.`,
      rows: [
        row(`conf_read, ${who}, no flood`, baseStats),
        row(`conf_read, ${who}, with flooding guest`, floodStats),
        row(`conf_read, ${who}, with CPU-burning guest (control, no notifies)`, burnStats),
      ],
      ratios: [
        ratio('p99 with flood / without', floodStats.p99Us / baseStats.p99Us, TARGET),
        ratio('median with flood / without', floodStats.medianUs / baseStats.medianUs, TARGET),
      ],
      notes: [
        `Backend main-thread CPU, % of one core (source: ${idle.source === 'schedstat' ? '/proc/self/task/<pid>/schedstat' : 'process.cpuUsage(), all threads'}): idle ${pct(idle.cpuPercent)}; flood alone ${pct(floodIdle.cpuPercent)} (${windowMs} ms windows); serving the readers without flood ${pct(base.cpuPercent)} over ${base.wallMs.toFixed(0)} ms; with flood ${pct(flood.cpuPercent)} over ${flood.wallMs.toFixed(0)} ms; with the CPU burner ${pct(burn.cpuPercent)} over ${burn.wallMs.toFixed(0)} ms.`,
        `Flood: ${floodEnd.notifies} notifies in ${floodEnd.elapsedMs.toFixed(0)} ms (${((floodEnd.notifies / floodEnd.elapsedMs) * 1000).toExponential(2)} /s) became ${floodEvents} backend events (${floodKicks} spurious kicks, late-EOI masking coalesces the rest).`,
        `Control: p99 with a guest that only spins (no notifies) is ${(burnStats.p99Us / baseStats.p99Us).toFixed(2)}x the no-flood p99, median ${(burnStats.medianUs / baseStats.medianUs).toFixed(2)}x; with ${availableParallelism()} CPUs a flooding worker takes a core whatever the backend does, so the flood/control gap is the backend's share.`,
      ],
    };
  } finally {
    await host.dispose();
  }
}
