// SPDX-License-Identifier: MIT
/**
 * Benchmark results: each suite returns rows measured in one run (a baseline and the
 * thing measured against it), and the runner appends them to `bench/results/` as one
 * JSON file and one markdown file per run, beside the earlier runs.
 */
import { mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';

/** One measured quantity. */
export interface BenchRow {
  readonly name: string;
  /** Median latency of one operation in nanoseconds. */
  readonly medianNs: number;
  /** 99th percentile latency in nanoseconds. */
  readonly p99Ns: number;
  /** Number of samples behind the figures. */
  readonly samples: number;
}

/** One measured throughput (operations per second over a timed window). */
export interface ThroughputRow {
  readonly name: string;
  readonly opsPerSec: number;
  /** Operations completed in the window. */
  readonly ops: number;
  /** Length of the window. */
  readonly seconds: number;
}

/** A ratio against a baseline measured in the same run, with its target. */
export interface BenchRatio {
  readonly name: string;
  readonly value: number;
  /** The target the ratio must meet (`value <= target`, or `>=` when `atLeast`). */
  readonly target: number;
  /** The target is a floor (throughput ratios) rather than a ceiling (latency ratios). */
  readonly atLeast?: boolean;
  readonly meetsTarget: boolean;
}

/** What one suite measured. */
export interface SuiteResult {
  readonly suite: string;
  readonly description: string;
  readonly rows: readonly BenchRow[];
  /** Throughput figures, for suites that measure operations per second. */
  readonly throughput?: readonly ThroughputRow[];
  readonly ratios: readonly BenchRatio[];
  readonly notes?: readonly string[];
}

/** Build a ratio row whose target is a ceiling (`value <= target`). */
export function ratio(name: string, value: number, target: number): BenchRatio {
  return { name, value, target, meetsTarget: value <= target };
}

/** Build a ratio row whose target is a floor (`value >= target`), e.g. ours/baseline ops/s. */
export function ratioAtLeast(name: string, value: number, target: number): BenchRatio {
  return { name, value, target, atLeast: true, meetsTarget: value >= target };
}

/** `≤ 1.5` or `≥ 1`: how the ratio's target reads. */
export function targetText(q: BenchRatio): string {
  return `${q.atLeast === true ? '≥' : '≤'} ${q.target}`;
}

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

/** Render a run as markdown. */
export function toMarkdown(when: string, results: readonly SuiteResult[]): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  let md = `# Benchmark run ${when}\n\nNode ${process.version}, ${cpus().length} x ${cpu}\n`;
  for (const r of results) {
    md += `\n## ${r.suite}\n\n${r.description}\n`;
    if (r.rows.length > 0) {
      md += `\n| measure | median ns | p99 ns | samples |\n|---|---:|---:|---:|\n`;
      for (const row of r.rows) {
        md += `| ${row.name} | ${fmt(row.medianNs)} | ${fmt(row.p99Ns)} | ${row.samples} |\n`;
      }
    }
    if (r.throughput !== undefined && r.throughput.length > 0) {
      md += `\n| measure | ops/s | ops | seconds |\n|---|---:|---:|---:|\n`;
      for (const t of r.throughput) {
        md += `| ${t.name} | ${t.opsPerSec.toFixed(0)} | ${t.ops} | ${t.seconds.toFixed(2)} |\n`;
      }
    }
    if (r.ratios.length > 0) {
      md += `\n| ratio | value | target | met |\n|---|---:|---:|---|\n`;
      for (const q of r.ratios) {
        md += `| ${q.name} | ${q.value.toFixed(2)} | ${targetText(q)} | ${q.meetsTarget ? 'yes' : 'NO'} |\n`;
      }
    }
    for (const note of r.notes ?? []) md += `\n${note}\n`;
  }
  return md;
}

/** Write `<dir>/<stamp>.json` and `.md`; returns the paths. Earlier runs stay. */
export function writeResults(dir: string, results: readonly SuiteResult[]): string[] {
  mkdirSync(dir, { recursive: true });
  const when = new Date().toISOString();
  const stamp = when.replace(/[:.]/g, '-');
  const previous = readdirSync(dir).filter((f) => f.endsWith('.json')).length;
  const json = join(dir, `${stamp}.json`);
  const md = join(dir, `${stamp}.md`);
  writeFileSync(
    json,
    JSON.stringify({ when, node: process.version, cpus: cpus().length, results }, null, 2) + '\n',
  );
  writeFileSync(md, toMarkdown(when, results));
  process.stdout.write(`bench: wrote ${json} and ${md} (${previous} earlier runs kept)\n`);
  return [json, md];
}
