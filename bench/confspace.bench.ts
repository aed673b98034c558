// SPDX-License-Identifier: MIT
/**
 * Suite "confspace": a guest's 4-byte reads over the whole 64-byte header through the
 * virtualizer, against raw reads of the same simulated hardware through the platform
 * accessor (the baseline: what pciback adds on top of the PCI core). Target ratio ≤ 3.
 *
 * The two tasks take turns in {@link ROUNDS} short rounds (A B, then B A, ...) and the
 * ratio is the median of the rounds' ratios: on a shared machine, load that changes
 * while one task runs would otherwise land on one side only (one-shot runs of this suite
 * gave 2x and 7x on the same code).
 */
import { Bench } from 'tinybench';
import { PciAddress } from '../src/pci/address.js';
import { buildCatalogDevice } from '../src/devices/catalog/index.js';
import { seizeForGuest } from '../src/cli/device-setup.js';
import { ratio, type BenchRow, type SuiteResult } from './report.js';

const HEADER_DWORDS = 16;
/** Alternating rounds; their ratios' median is the suite's figure. */
const ROUNDS = 8;

interface RoundResult {
  readonly medianNs: number;
  readonly p99Ns: number;
  readonly samples: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** Run the suite; `timeMs` per task in all (split over the rounds). */
export async function runConfspaceBench(timeMs: number): Promise<SuiteResult> {
  const [nic] = buildCatalogDevice('nic-sriov');
  if (nic === undefined) throw new Error('catalog NIC has no function 0');
  const { host, space } = seizeForGuest(nic.device, new PciAddress(0, 1, 0, 0));
  let sink = 0;
  const tasks = {
    raw: () => {
      for (let i = 0; i < HEADER_DWORDS; i++) sink ^= host.readConfig(i * 4, 4).value;
    },
    virtualized: () => {
      for (let i = 0; i < HEADER_DWORDS; i++) sink ^= space.read(i * 4, 4).value;
    },
  };
  const runOne = async (which: keyof typeof tasks): Promise<RoundResult> => {
    const bench = new Bench({ name: 'confspace', time: timeMs / ROUNDS, warmupTime: 50 });
    bench.add(which, tasks[which]);
    await bench.run();
    const result = bench.tasks[0]?.result;
    if (result?.state !== 'completed') throw new Error(`bench task "${which}" did not complete`);
    // Per read: the task reads 16 dwords; latency is in milliseconds.
    return {
      medianNs: (result.latency.p50 * 1e6) / HEADER_DWORDS,
      p99Ns: (result.latency.p99 * 1e6) / HEADER_DWORDS,
      samples: result.latency.samplesCount,
    };
  };
  const raw: RoundResult[] = [];
  const virtualized: RoundResult[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      raw.push(await runOne('raw'));
      virtualized.push(await runOne('virtualized'));
    } else {
      virtualized.push(await runOne('virtualized'));
      raw.push(await runOne('raw'));
    }
  }
  if (sink === 0.5) process.stdout.write(''); // keep `sink` alive
  const row = (name: string, rounds: readonly RoundResult[]): BenchRow => ({
    name,
    medianNs: median(rounds.map((r) => r.medianNs)),
    p99Ns: median(rounds.map((r) => r.p99Ns)),
    samples: rounds.reduce((n, r) => n + r.samples, 0),
  });
  const ratios = raw.map((r, i) => (virtualized[i]?.medianNs ?? NaN) / r.medianNs);
  return {
    suite: 'confspace',
    description:
      `Guest 4-byte reads of the 64-byte header of the catalog SR-IOV NIC through the virtualizer, against raw platform reads of the same simulated hardware, in ${ROUNDS} alternating rounds of the same run (figures: medians over the rounds). ` +
      `Per-round ratios: ${ratios.map((q) => q.toFixed(2)).join(', ')}.`,
    rows: [
      row('raw header read (platform accessor, per 4-byte read)', raw),
      row('virtualized header read (pciback, per 4-byte read)', virtualized),
    ],
    ratios: [ratio('virtualized / raw (median of the rounds)', median(ratios), 3)],
  };
}
