// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ORACLES_DIR } from '../../test/support/paths.js';
import { abiReport } from './report.js';

const oracleText = readFileSync(join(ORACLES_DIR, 'xen-abi.json'), 'utf8');

test('abiReport() deep-equals the oracle built from the real headers', () => {
  assert.deepEqual(abiReport(), JSON.parse(oracleText));
});

test('abiReport() has the oracle key order at every level', () => {
  // deepEqual ignores key order; the serialised form does not.
  assert.equal(JSON.stringify(abiReport()), JSON.stringify(JSON.parse(oracleText)));
});

test('abiReport() returns a fresh object each call', () => {
  const a = abiReport();
  (a as Record<string, unknown>)['struct xen_pci_op'] = {};
  assert.equal(abiReport()['struct xen_pci_op']?.['__sizeof__'], 548);
});
