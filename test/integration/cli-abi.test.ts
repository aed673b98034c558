// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_PATH, ORACLES_DIR } from '../support/paths.js';

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('pciback abi --json prints exactly the oracle built from the real headers', () => {
  const r = run('abi', '--json');
  assert.equal(r.status, 0, r.stderr);
  const oracleText = readFileSync(join(ORACLES_DIR, 'xen-abi.json'), 'utf8');
  assert.deepEqual(JSON.parse(r.stdout), JSON.parse(oracleText));
  // Same key order too, so a plain diff of the two files is empty.
  assert.equal(JSON.stringify(JSON.parse(r.stdout)), JSON.stringify(JSON.parse(oracleText)));
});

test('pciback abi prints a table of structs, fields and constants', () => {
  const r = run('abi');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^struct xen_pci_op: size 548, align 4$/m);
  assert.match(r.stdout, /^ {2}msix_entries +36 +512$/m);
  assert.match(r.stdout, /^struct xen_pci_sharedinfo: size 572, align 4$/m);
  assert.match(r.stdout, /^ {2}aer_op +552 +20$/m);
  assert.match(r.stdout, /^ {2}XEN_PCI_MAGIC +"7"$/m);
  assert.match(r.stdout, /^ {2}struct xs_permissions: size 8, align 4$/m);
});

test('pciback hide-check lists one selector per line and exits 0', () => {
  const r = run('hide-check', '(0000:03:00.0) (04:00.*)(0000:05:*.*)');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '0000:03:00.0\n0000:04:00.*\n0000:05:*.*\n');
});

test('pciback hide-check --json prints {domain, bus, slot, func} objects', () => {
  const r = run('hide-check', '--json', '(0001:03:00.1)(04:*.*)');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    { domain: 1, bus: 3, slot: 0, func: 1 },
    { domain: 0, bus: 4, slot: '*', func: '*' },
  ]);
});

test('pciback hide-check --expand lists every function selected', () => {
  const r = run('hide-check', '--expand', '(03:00.*)');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 8);
  assert.match(r.stdout, /^0000:03:00\.7$/m);
});

test('pciback hide-check accepts the empty value', () => {
  const r = run('hide-check', '');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
});

test('pciback hide-check explains a bad value with its position and a suggestion, exit 1', () => {
  const r = run('hide-check', '(0000:82.0.0)');
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    'pciback: Invalid hide= value at position 8: expected ":" after the bus but found "."\n' +
      'Did you mean "(0000:82:00.0)"?\n',
  );
});

test('pciback hide-check names an out-of-range component, exit 1', () => {
  const r = run('hide-check', '(0000:03:00.8)');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /position 12: the function "8" is out of range/);
});

test('pciback hide-check without its argument is a usage error, exit 2', () => {
  const r = run('hide-check');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /missing required argument/);
});
