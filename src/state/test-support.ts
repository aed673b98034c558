// SPDX-License-Identifier: MIT
/**
 * Test helpers for `state/`: temporary state directories and a settable clock. Not
 * exported from the folder's index.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { isPcibackError } from '../errors.js';
import { AssignableDb, type AssignableDbOptions } from './assignable-db.js';

/** A fresh directory under the system temp dir, removed when the test ends. */
export function tempDir(t: TestContext, prefix = 'pciback-state-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A clock the test moves: starts at 2026-01-01T00:00:00Z, +1 ms per reading. */
export class TestClock {
  nowMs = Date.UTC(2026, 0, 1);
  readonly read = (): number => this.nowMs++;
}

/** A database in a fresh directory with a test clock; closed when the test ends. */
export function openTestDb(
  t: TestContext,
  options: AssignableDbOptions = {},
): { db: AssignableDb; dir: string; clock: TestClock } {
  const dir = tempDir(t);
  const clock = new TestClock();
  const db = AssignableDb.open(join(dir, 'state'), { nowMs: clock.read, ...options });
  t.after(() => {
    db.close();
  });
  return { db, dir: join(dir, 'state'), clock };
}

/** An `assert.throws` matcher for a `PcibackError` with `code` whose message matches. */
export function stateError(code: string, message?: RegExp): (err: unknown) => boolean {
  return (err) => {
    if (!isPcibackError(err, code)) return false;
    if (message !== undefined && !message.test(err.message)) {
      throw new Error(`Message "${err.message}" does not match ${String(message)}`);
    }
    return true;
  };
}
