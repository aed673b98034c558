// SPDX-License-Identifier: MIT
/**
 * Suite "confspace": a guest's 4-byte reads over the whole 64-byte header through the
 * virtualizer, against raw reads of the same simulated hardware through the platform
 * accessor (the baseline: what pciback adds on top of the PCI core). Target ratio ≤ 3.
 */
import { Bench } from 'tinybench';
import { PciAddress } from '../src/pci/address.js';
import { buildCatalogDevice } from '../src/devices/catalog/index.js';
import { seizeForGuest } from '../src/cli/device-setup.js';
import { ratio, type BenchRow, type SuiteResult } from './report.js';

const HEADER_DWORDS = 16;

/** Run the suite; `timeMs` per task. */
export async function runConfspaceBench(timeMs: number): Promise<SuiteResult> {
  const [nic] = buildCatalogDevice('nic-sriov');
  if (nic === undefined) throw new Error('catalog NIC has no function 0');
  const { host, space } = seizeForGuest(nic.device, new PciAddress(0, 1, 0, 0));
  let sink = 0;
  const bench = new Bench({ name: 'confspace', time: timeMs, warmupTime: 100 });
  bench
    .add('raw header read (platform accessor, 16 dwords)', () => {
      for (let i = 0; i < HEADER_DWORDS; i++) sink ^= host.readConfig(i * 4, 4).value;
    })
    .add('virtualized header read (pciback, 16 dwords)', () => {
      for (let i = 0; i < HEADER_DWORDS; i++) sink ^= space.read(i * 4, 4).value;
    });
  await bench.run();
  if (sink === 0.5) process.stdout.write(''); // keep `sink` alive
  const rows: BenchRow[] = bench.tasks.map((task) => {
    const result = task.result;
    if (result.state !== 'completed') throw new Error(`bench task "${task.name}" ${result.state}`);
    // Per read: the task reads 16 dwords; latency is in milliseconds.
    return {
      name: task.name.replace(', 16 dwords', ', per 4-byte read'),
      medianNs: (result.latency.p50 * 1e6) / HEADER_DWORDS,
      p99Ns: (result.latency.p99 * 1e6) / HEADER_DWORDS,
      samples: result.latency.samplesCount,
    };
  });
  const [raw, virtualized] = rows;
  if (raw === undefined || virtualized === undefined) throw new Error('confspace bench lost a row');
  return {
    suite: 'confspace',
    description:
      'Guest 4-byte reads of the 64-byte header of the catalog SR-IOV NIC through the virtualizer, against raw platform reads of the same simulated hardware in the same run.',
    rows,
    ratios: [ratio('virtualized / raw (median)', virtualized.medianNs / raw.medianNs, 3)],
  };
}
