// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { AssignableDb } from './assignable-db.js';
import { modelAfter, opAt, type DurabilityModel } from './fixtures/durability-ops.js';
import { tempDir } from './test-support.js';

const CHILD = fileURLToPath(new URL('./fixtures/durability-child.js', import.meta.url));

/** The operations the child reported as committed before it died. */
interface ChildRun {
  /** Index of the last `ok` line, or start - 1 when none. */
  readonly lastReported: number;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/**
 * Run the child from operation `start`; SIGKILL it `killAfterMs` after its first commit.
 */
function runChild(stateDir: string, start: number, killAfterMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, stateDir, String(start)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    // A child that never commits must not hang the suite.
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (timer === undefined && stdout.includes('ok ')) {
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(guard);
      if (timer !== undefined) clearTimeout(timer);
      // Only whole lines count: the kill may cut the last one.
      const lines = stdout.split('\n').slice(0, -1);
      let lastReported = start - 1;
      for (const line of lines) {
        const match = /^ok (\d+)$/.exec(line);
        if (match?.[1] !== undefined) {
          const index = Number(match[1]);
          assert.equal(index, lastReported + 1, `child reported ${line} out of order`);
          lastReported = index;
        } else {
          assert.equal(line, 'ready');
        }
      }
      resolve({ lastReported, signal, stderr });
    });
  });
}

function modelOf(db: AssignableDb): DurabilityModel {
  const model: DurabilityModel = new Map();
  for (const d of db.listAssignable()) model.set(d.address.toString(), null);
  for (const a of db.listAttachments()) model.set(a.address.toString(), a.domid);
  return model;
}

/** A canonical text of a model, for comparison and messages. */
function entries(model: DurabilityModel): string {
  return JSON.stringify([...model].sort(([a], [b]) => a.localeCompare(b)));
}

test('A child killed with SIGKILL at a random moment loses no change it reported committed', async (t) => {
  const stateDir = tempDir(t);
  let committed = 0; // operations 0..committed-1 are in the database
  for (let round = 0; round < 5; round++) {
    const killAfterMs = 30 + Math.floor(Math.random() * 300);
    const run = await runChild(stateDir, committed, killAfterMs);
    const context = `round ${round}, start ${committed}, killed after ${killAfterMs} ms, reported up to ${run.lastReported}\n${run.stderr}`;
    assert.equal(run.signal, 'SIGKILL', context);
    assert.ok(run.lastReported >= committed, `the child committed nothing: ${context}`);

    // The file is consistent after the kill (WAL recovery) ...
    const raw = new Database(`${stateDir}/pciback.sqlite`);
    assert.deepEqual(raw.pragma('integrity_check'), [{ integrity_check: 'ok' }], context);
    assert.deepEqual(raw.pragma('foreign_key_check'), [], context);
    // ... and every quirk belongs to a device (the cascade held).
    assert.deepEqual(
      raw
        .prepare(
          'SELECT count(*) AS n FROM quirk WHERE address NOT IN (SELECT address FROM assignable)',
        )
        .get(),
      { n: 0 },
      context,
    );
    raw.close();

    // It holds every reported operation, and at most the one after (committed, then
    // killed before it could print).
    const db = AssignableDb.open(stateDir, { eventLimit: 1_000_000 });
    const actual = modelOf(db);
    const reported = run.lastReported + 1;
    let found: number | undefined;
    for (const count of [reported, reported + 1]) {
      if (entries(actual) === entries(modelAfter(count))) found = count;
    }
    assert.ok(
      found !== undefined,
      `the database matches neither ${reported} nor ${reported + 1} operations: ${context}\n` +
        `actual ${entries(actual)}\nexpected ${entries(modelAfter(reported))}`,
    );
    // One event per operation, the newest being the last operation's.
    const events = db.recentLog({ limit: 1_000_000 });
    assert.equal(events.length, found, context);
    const lastOp = opAt(found - 1);
    assert.equal(events.at(-1)?.device?.toString(), lastOp.address.toString(), context);
    db.close();
    // The next round's child goes on from here: the file is writable after the crash.
    committed = found;
  }
  const db = AssignableDb.open(stateDir);
  db.log({ kind: 'test-done', message: 'written after the last kill' });
  db.close();
  assert.ok(committed > 0);
});
