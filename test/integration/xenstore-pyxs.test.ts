// SPDX-License-Identifier: MIT
/**
 * Debian's python3-pyxs client against `pciback xenstored --socket` (spawned as its own
 * process), and the same script against Xen's real C xenstored: both must report exactly
 * what is pinned below (write/read/list/rm, transactions with a conflict, Monitor watches,
 * INTRODUCE, permissions). The script is fixtures/pyxs_scenario.py.
 *
 * pyxs facts the expectations rely on: `commit()` turns EAGAIN into `False`; every other
 * error is a `PyXSError(errno, strerror)`, recorded here by errno name; replies must echo
 * the request's req_id and tx_id or pyxs raises `UnexpectedPacket`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/paths.js';
import {
  realXenstoredUnavailable,
  startOurXenstored,
  startRealXenstored,
  type XenstoredHandle,
} from '../support/real-xenstored.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(REPO_ROOT, 'test', 'integration', 'fixtures', 'pyxs_scenario.py');

const havePyxs = spawnSync(PYTHON, ['-c', 'import pyxs']).status === 0;
const noPyxs = havePyxs
  ? false
  : 'python3-pyxs is not installed (scripts/setup-test-deps.sh installs it: apt-get install python3-pyxs)';

const E = (name: string): { error: string } => ({ error: name });

/** What the scenario reports, as Xen's C xenstored 4.17 answers it (the oracle). */
const EXPECTED: Record<string, unknown> = {
  write: null,
  read: 'hello world',
  write_dir_c: null,
  write_dir_a: null,
  write_dir_b: null,
  // Children in creation order, as C lists them.
  list_dir: ['c', 'a', 'b'],
  list_pyxs: ['a', 'dir'],
  read_parent_created_empty: '',
  read_missing: E('ENOENT'),
  read_missing_default: 'dflt',
  list_missing: E('ENOENT'),
  exists_dir: true,
  mkdir: null,
  read_mkdir: '',
  mkdir_existing_keeps_value: 'hello world',
  rm: null,
  exists_after_rm: false,
  read_child_after_rm: E('ENOENT'),
  rm_missing_parent_exists: null,
  rm_missing_parent_missing: E('ENOENT'),
  walk: [
    ['/pyxs/m', '', ['n']],
    ['/pyxs/m/n', '', []],
  ],
  domain_path: '/local/domain/5',
  // [read inside, read by another client before commit, commit(), read after]
  tx_commit: ['in-tx', '<absent>', true, 'in-tx'],
  // [read in tx, commit() after another client's write, value after]
  tx_conflict_commit: ['0', false, 'other'],
  tx_conflict_raw: E('EAGAIN'),
  tx_conflict_value: 'other2',
  tx_rollback: false,
  watch: null,
  watch_initial_event: ['/pyxs/w', 'tok'],
  watch_event_write: ['/pyxs/w/k', 'tok'],
  // [events before the commit (none), the event the commit fires]
  watch_event_tx_commit: [[], ['/pyxs/w/t', 'tok']],
  watch_event_rm: ['/pyxs/w', 'tok'],
  watch_unrelated_quiet: [],
  unwatch: null,
  after_unwatch_quiet: [],
  introduced_before: false,
  introduce: null,
  introduced_after: true,
  perms_write: null,
  perms_default: ['n0'],
  perms_set: null,
  perms_get: ['n0', 'r5', 'w7', 'b9'],
  perms_child_inherits: ['n0', 'r5', 'w7', 'b9'],
  perms_set_owner: ['r5'],
  perms_owner_unknown_domain: E('ENOENT'),
  perms_after_refused: ['r5'],
  perms_get_missing: E('ENOENT'),
  perms_set_missing: E('ENOENT'),
  cleanup: null,
  cleanup_check: false,
};

async function runScenario(xsd: XenstoredHandle): Promise<Record<string, unknown>> {
  const { stdout } = await run(PYTHON, [SCRIPT, xsd.socketPath], { timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** Compare step by step so a failure names the step. */
function assertReport(actual: Record<string, unknown>, daemon: string): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(EXPECTED).sort());
  for (const [step, want] of Object.entries(EXPECTED)) {
    assert.deepEqual(actual[step], want, `${daemon}: step "${step}"`);
  }
}

test(
  'python3-pyxs gets the pinned answers from pciback xenstored',
  { skip: noPyxs, timeout: 90_000 },
  async () => {
    const xsd = await startOurXenstored();
    try {
      assertReport(await runScenario(xsd), xsd.name);
    } finally {
      await xsd.stop();
    }
  },
);

test(
  "python3-pyxs gets the same answers from Xen's C xenstored (the oracle of the pinned values)",
  { skip: noPyxs || (realXenstoredUnavailable('c') ?? false), timeout: 90_000 },
  async () => {
    const xsd = await startRealXenstored('c', [0, 5]);
    try {
      assertReport(await runScenario(xsd), xsd.name);
    } finally {
      await xsd.stop();
    }
  },
);
