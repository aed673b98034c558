// SPDX-License-Identifier: MIT
/**
 * `npm run bench`: runs the benchmark suites (not part of the tests) and records the
 * results in bench/results/ beside earlier runs. `BENCH_TIME_MS` sets the time per task of
 * the tinybench suites. Suites: confspace, P1 conf_read, P2 enumerate, P5 flood.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runConfspaceBench } from './confspace.bench.js';
import { runConfReadBench } from './conf-read.bench.js';
import { runEnumerateBench } from './enumerate.bench.js';
import { runFloodBench } from './flood.bench.js';
import { writeResults, type SuiteResult } from './report.js';

const RESULTS_DIR = join(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  '..',
  'bench',
  'results',
);
const timeMs = Number(process.env.BENCH_TIME_MS ?? 1000);

const results: SuiteResult[] = [];
results.push(await runConfspaceBench(timeMs));
results.push(await runConfReadBench());
results.push(await runEnumerateBench());
results.push(await runFloodBench());
for (const r of results) {
  for (const q of r.ratios) {
    process.stdout.write(
      `${r.suite}: ${q.name} = ${q.value.toFixed(2)} (target ≤ ${q.target}: ${q.meetsTarget ? 'met' : 'NOT met'})\n`,
    );
  }
}
writeResults(RESULTS_DIR, results);
