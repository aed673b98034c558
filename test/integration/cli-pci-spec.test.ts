// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CLI_PATH } from '../support/paths.js';

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The three forms xl-pci-configuration(5) calls equivalent (peers.md §1.6), verbatim. */
const MAN_PAGE_EXAMPLES = [
  '36:00.0@20,seize=1',
  '36:00.0,vslot=20,seize=1',
  'bdf=36:00.0,vslot=20,seize=1',
];

test('pciback pci-spec refuses the three man-page examples alike: vslot 20 is 0x20 > 0x1f', () => {
  // vslot is hexadecimal in xl too, and xl refuses these examples (peers.md §1.8): a slot
  // is 5 bits. Equivalent here means the same error about the same part.
  const reasons = MAN_PAGE_EXAMPLES.map((spec) => {
    const r = run('pci-spec', spec, '--json');
    assert.equal(r.status, 1, `${spec}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').length, 2, 'one line');
    assert.match(r.stderr, /^pciback: Cannot parse PCI spec ".*" at position \d+: the vslot /);
    return r.stderr.slice(r.stderr.indexOf(': the vslot'));
  });
  assert.equal(new Set(reasons).size, 1, reasons.join(''));
  assert.match(
    reasons[0] ?? '',
    /0x20 is above the largest slot 0x1f; vslot is hexadecimal, so for slot 20 \(decimal\) write 14\n$/,
  );
});

test('pciback pci-spec --json prints identical JSON for the three forms with an in-range vslot', () => {
  const outputs = [
    '36:00.0@14,seize=1',
    '36:00.0,vslot=14,seize=1',
    'bdf=36:00.0,vslot=14,seize=1',
  ].map((spec) => {
    const r = run('pci-spec', spec, '--json');
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  });
  assert.equal(outputs[1], outputs[0]);
  assert.equal(outputs[2], outputs[0]);
  const json: unknown = JSON.parse(outputs[0] ?? '');
  assert.deepEqual(json, {
    domain: 0,
    bus: 0x36,
    dev: 0,
    func: 0,
    vdevfn: 0x14 << 3,
    permissive: false,
    seize: true,
    msitranslate: false,
    power_mgmt: false,
    rdm_policy: 'strict',
    name: null,
  });
  // Exactly these keys, in this order.
  assert.deepEqual(Object.keys(json as object), [
    'domain',
    'bus',
    'dev',
    'func',
    'vdevfn',
    'permissive',
    'seize',
    'msitranslate',
    'power_mgmt',
    'rdm_policy',
    'name',
  ]);
});

test('pciback pci-spec --json gives null address fields for a name, "*" for every function', () => {
  const named = run('pci-spec', 'name=gpu,permissive=1', '--json');
  assert.equal(named.status, 0, named.stderr);
  assert.deepEqual(JSON.parse(named.stdout), {
    domain: null,
    bus: null,
    dev: null,
    func: null,
    vdevfn: null,
    permissive: true,
    seize: false,
    msitranslate: false,
    power_mgmt: false,
    rdm_policy: 'strict',
    name: 'gpu',
  });
  const wildcard = run('pci-spec', '--json', '0001:03:00.*@4, rdm_policy=relaxed');
  assert.equal(wildcard.status, 0, wildcard.stderr);
  const json = JSON.parse(wildcard.stdout) as Record<string, unknown>;
  assert.equal(json.func, '*');
  assert.equal(json.domain, 1);
  assert.equal(json.vdevfn, 0x20);
  assert.equal(json.rdm_policy, 'relaxed');
});

test('pciback pci-spec without --json prints one readable line', () => {
  const r = run('pci-spec', '36:00.0,vslot=14,seize=1');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    'device 0000:36:00.0, vslot 0x14 (vdevfn 0xa0), permissive=0 msitranslate=0 seize=1 ' +
      'power_mgmt=0 rdm_policy=strict; canonical "0000:36:00.0@14,seize=1"\n',
  );
  const named = run('pci-spec', 'name=gpu');
  assert.equal(named.status, 0, named.stderr);
  assert.match(named.stdout, /^device named "gpu", vslot chosen by the toolstack, /);
});

test('pciback pci-spec names the wrong part of a bad spec, exit 1', () => {
  const cases: readonly (readonly [string, RegExp])[] = [
    ['03:00.0,permissive=yes', /position 19: the value "yes" of "permissive" is not 0 or 1/],
    ['03:00.0,foo=1', /position 8: unknown key "foo"/],
    ['03:00.0,seize=1,seize=0', /position 16: "seize" is given twice/],
    ['03:00.8', /position 6: the BDF "03:00.8" has function "8" out of range 0-0x7/],
    ['03:00.0 ,seize=1', /position 7: unexpected whitespace after "03:00.0"/],
    ['name=gpu,bdf=03:00.0', /position 9: give either a BDF or a name, not both/],
    ['seize=1', /position 7: no device/],
    ['03:00.0,rdm_policy=loose', /position 19: the value "loose" of "rdm_policy"/],
  ];
  for (const [spec, reason] of cases) {
    const r = run('pci-spec', spec);
    assert.equal(r.status, 1, `${spec}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^pciback: Cannot parse PCI spec "/);
    assert.match(r.stderr, reason);
    assert.equal(r.stderr.split('\n').length, 2, `one line for ${spec}`);
  }
});

test('pciback pci-spec keeps the error on one line for a spec with a newline', () => {
  const r = run('pci-spec', '03:00.0,\nseize=1');
  assert.equal(r.status, 1);
  assert.equal(
    r.stderr,
    'pciback: Cannot parse PCI spec "03:00.0,\\nseize=1" at position 8: ' +
      'unexpected whitespace in "\\nseize=1": spaces are allowed only right after a comma\n',
  );
});

test('pciback pci-spec without its argument is a usage error, exit 2', () => {
  const r = run('pci-spec');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /missing required argument/);
  const json = run('pci-spec', '--json');
  assert.equal(json.status, 2);
});
