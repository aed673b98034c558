// SPDX-License-Identifier: MIT
/**
 * Suite "P2 enumerate": one guest with every vpci slot full, 32 slots x 8 functions =
 * 256 functions, and the time of pcifront's `enumerate` walk as the guest sees it
 * (probe every devfn, read the header, size the BARs and ROM, walk the capabilities).
 * Each host device is a GPU-like 8-function device at 0000:BB:00.0-7 built from catalog
 * functions: the GPU and its HDMI audio function, then NVMe and xHCI functions in turn;
 * vpci keeps each device's functions in one slot. Target: ≤ 20 ms per enumeration.
 */
import type { CatalogModel } from '../src/devices/catalog/index.js';
import { DEFAULT_SPIN_ITERATIONS } from '../src/platform/sim/xen/guest-hypercalls.js';
import type { PcibackDevice } from '../src/pciback/device/index.js';
import { ratio, type SuiteResult } from './report.js';
import { BenchHost, hostAddress, latencyStats } from './sim-host.js';

/** Options of {@link runEnumerateBench}. */
export interface EnumerateBenchOptions {
  /** Timed enumerations (after one warm-up). Default 5. */
  readonly runs?: number;
}

const SLOTS = 32;
const TARGET_MS = 20;
/** The catalog model whose function 0 fills functions 2..7, in turn. */
const FILLERS: readonly CatalogModel[] = ['nvme', 'xhci'];

/** Run the suite. */
export async function runEnumerateBench(options: EnumerateBenchOptions = {}): Promise<SuiteResult> {
  const runs = options.runs ?? 5;
  const host = new BenchHost();
  try {
    const devices: PcibackDevice[] = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      const base = hostAddress(0x10 + slot, 0);
      for (const { fn, hw } of host.buildCatalog('gpu', base))
        devices.push(host.seize(base.withFunction(fn), hw));
      for (let fn = 2; fn < 8; fn++) {
        const model = FILLERS[fn % FILLERS.length] ?? 'nvme';
        const filler = host.buildCatalog(model, base.withFunction(fn))[0];
        if (filler === undefined) throw new Error(`catalog ${model} has no function 0`);
        devices.push(host.seize(base.withFunction(fn), filler.hw));
      }
    }
    const guest = await host.startGuest({
      name: 'p2',
      devices,
      spinIterations: DEFAULT_SPIN_ITERATIONS,
    });
    await guest.request({ type: 'enumerate', runs: 1 }, 'enumerate-done');
    const done = await guest.request({ type: 'enumerate', runs }, 'enumerate-done');
    await guest.stop();
    const s = latencyStats(done.timesMs);
    const notes = [
      `The guest found ${done.functions} functions (${devices.length} exported) with ${done.opsPerRun} config ops per enumeration (${((s.medianUs * 1000) / done.opsPerRun).toFixed(1)} µs per op at the median). Timed in the guest with performance.now() around enumerate(); ${runs} runs after one warm-up; "p99" of ${runs} runs is their maximum. Guest spin ${DEFAULT_SPIN_ITERATIONS}.`,
    ];
    if (done.error !== null) notes.push(`Enumeration error: ${done.error}`);
    return {
      suite: 'P2 enumerate',
      description:
        'Time for pcifront’s enumerate walk of a guest with 32 vpci slots x 8 functions (256 seized catalog functions), as the guest measures it, against the 20 ms target.',
      rows: [
        {
          name: 'enumerate walk, 32 slots x 8 functions (one walk)',
          // `latencyStats` is unit-agnostic: the samples are ms, the row wants ns.
          medianNs: s.medianUs * 1e6,
          p99Ns: s.p99Us * 1e6,
          samples: s.samples,
        },
      ],
      ratios: [ratio(`enumerate median / ${TARGET_MS} ms target`, s.medianUs / TARGET_MS, 1)],
      notes,
    };
  } finally {
    await host.dispose();
  }
}
