// SPDX-License-Identifier: MIT
/**
 * `npm run bench`: runs the benchmark suites (not part of the tests) and records the
 * results in bench/results/ beside earlier runs. `BENCH_TIME_MS` sets the time per task of
 * the tinybench suites. Suites: confspace, P1 conf_read, P2 enumerate, P5 flood, P6 xenstore.
 * `BENCH_SUITES=P6` (comma list of suite-name prefixes, case-insensitive) runs a subset.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runConfspaceBench } from './confspace.bench.js';
import { runConfReadBench } from './conf-read.bench.js';
import { runEnumerateBench } from './enumerate.bench.js';
import { runFloodBench } from './flood.bench.js';
import { targetText, writeResults, type SuiteResult } from './report.js';
import { runXenstoreBench } from './xenstore.js';

const RESULTS_DIR = join(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  '..',
  'bench',
  'results',
);
const timeMs = Number(process.env.BENCH_TIME_MS ?? 1000);

const selected = (process.env.BENCH_SUITES ?? '')
  .split(',')
  .map((s) => s.trim().toLowerCase())
  .filter((s) => s !== '');
const suites: [string, () => Promise<SuiteResult>][] = [
  ['confspace', () => runConfspaceBench(timeMs)],
  ['P1 conf_read', () => runConfReadBench()],
  ['P2 enumerate', () => runEnumerateBench()],
  ['P5 flood', () => runFloodBench()],
  ['P6 xenstore', () => runXenstoreBench()],
];
const results: SuiteResult[] = [];
for (const [name, run] of suites) {
  if (selected.length > 0 && !selected.some((p) => name.toLowerCase().startsWith(p))) continue;
  results.push(await run());
}
for (const r of results) {
  for (const q of r.ratios) {
    process.stdout.write(
      `${r.suite}: ${q.name} = ${q.value.toFixed(2)} (target ${targetText(q)}: ${q.meetsTarget ? 'met' : 'NOT met'})\n`,
    );
  }
}
writeResults(RESULTS_DIR, results);
