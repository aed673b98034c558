// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCatalogDevice } from '../../devices/catalog/index.js';
import { DOM0, evtchnPort } from '../../platform/types.js';
import { Pcifront } from '../pcifront.js';
import { FakeGuestHypercalls, FakePciBackend } from '../test-backend.js';
import { GUEST_PROGRAMS, createXsa332Program, isGuestProgramName } from './index.js';
import type { GuestProgramEnv } from './types.js';

function guest(extra: Partial<GuestProgramEnv> = {}): {
  env: GuestProgramEnv;
  backend: FakePciBackend;
  console: string[];
} {
  const hv = new FakeGuestHypercalls();
  const front = Pcifront.create(hv, { backendDomid: DOM0, clock: hv.clock });
  const backend = new FakePciBackend(hv, front.grantRef);
  for (const f of buildCatalogDevice('gpu')) backend.add(0, 0, f.fn, f.device);
  for (const f of buildCatalogDevice('nic-sriov')) backend.add(0, 0, 8 + f.fn, f.device);
  const console: string[] = [];
  const env: GuestProgramEnv = {
    front,
    hv,
    roots: [],
    log: (line) => console.push(line),
    ...extra,
  };
  return { env, backend, console };
}

test('GUEST_PROGRAMS names every built-in program', () => {
  assert.deepEqual(Object.keys(GUEST_PROGRAMS), [
    'enumerate',
    'msi',
    'msix',
    'attack:xsa155',
    'attack:xsa157',
    'attack:xsa332',
    'aer',
    'aer-silent',
  ]);
  assert.equal(isGuestProgramName('msi'), true);
  assert.equal(isGuestProgramName('toString'), false);
});

test('program enumerate logs the listing and reports plain data', async () => {
  const { env, console } = guest();
  const report = await GUEST_PROGRAMS.enumerate(env);
  assert.equal(report.ok, true);
  assert.equal(console[0], '00:00.0 VGA compatible controller [0300]: Device 10de:1c82 (rev a1)');
  assert.match(report.summary, /3 function\(s\) on 0000:00/);
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
});

test('program msi enables and disables MSI on each MSI function; no interrupts without delivery', async () => {
  const { env } = guest();
  const report = await GUEST_PROGRAMS.msi(env);
  assert.equal(report.ok, true, report.lines.join('\n'));
  assert.match(report.lines.join('\n'), /00:00\.0: MSI enabled, pirq 100/);
  assert.match(report.lines.join('\n'), /interrupts: not observed/);
  assert.equal((report.data['devices'] as unknown[]).length, 3);
});

test('program msix uses the env interrupt hooks when present', async () => {
  const bound: number[] = [];
  const { env } = guest({
    bindPirq: (pirq) => {
      bound.push(pirq);
      return evtchnPort(pirq + 1000);
    },
    waitInterrupts: (ports, count) => ports.slice(0, count),
  });
  const report = await GUEST_PROGRAMS.msix(env);
  assert.equal(report.ok, true, report.lines.join('\n'));
  assert.deepEqual(bound, [200, 201, 202, 203]);
  assert.match(report.lines.join('\n'), /MSI-X enabled, 4 vector\(s\), pirqs 200, 201, 202, 203/);
  assert.match(report.lines.join('\n'), /interrupts: 4 observed/);
});

test('program attack:xsa157 reports each row against a correct backend', async () => {
  const { env } = guest();
  const report = await GUEST_PROGRAMS['attack:xsa157'](env);
  const rows = report.data['rows'] as { row: string; status: string }[];
  assert.deepEqual(
    rows.map((r) => `${r.row}:${r.status}`),
    ['g:pass', 'e:pass', 'd:pass', 'a:pass', 'c:pass', 'b:pass', 'f:pass'],
    report.lines.join('\n'),
  );
  assert.equal(report.ok, true);
});

test('program attack:xsa157 fails row (a) against a backend without the XSA-157 check', async () => {
  const { env, backend } = guest();
  let msiOn = false;
  backend.override = (op) => {
    if (op.cmd === 2) {
      msiOn = true;
      return { err: 0, value: 77 }; // enables again and again
    }
    if (op.cmd === 3) msiOn = false;
    return undefined;
  };
  const report = await GUEST_PROGRAMS['attack:xsa157'](env);
  const rows = report.data['rows'] as { row: string; status: string }[];
  assert.equal(rows.find((r) => r.row === 'a')?.status, 'fail');
  assert.equal(report.ok, false);
  assert.equal(msiOn, false);
});

test('program attack:xsa155 races the backend and checks it keeps serving', async () => {
  const { env, backend } = guest();
  backend.mode = 'deferred';
  backend.deferTicks = 20;
  const report = await GUEST_PROGRAMS['attack:xsa155'](env);
  assert.equal(report.ok, true, report.lines.join('\n'));
  const cases = report.data['cases'] as { rewrites: number; err: number; name: string }[];
  assert.equal(cases.length, 4);
  assert.ok(cases.every((c) => c.rewrites > 0));
  // The fake snapshots while the value reads 100000: the nvec check rejects it.
  assert.equal(cases[0]?.err, -22);
});

test('program attack:xsa155 flags a backend that writes back fields it must not', async () => {
  const { env, backend } = guest();
  backend.override = (op) => (op.cmd === 4 ? { err: 0, value: 0, msixVectors: [] } : undefined);
  const original = backend.process.bind(backend);
  backend.process = () => {
    original();
    // A pre-XSA-155 backend writing `entry` back.
    backend.bytes[4 + 36 + 2] = 0x55;
  };
  const report = await GUEST_PROGRAMS['attack:xsa155'](env);
  assert.equal(report.ok, false);
  assert.match(
    report.lines.join('\n'),
    /FAIL enable_msix .* backend wrote msix_entries\[0\]\.entry/,
  );
});

test('program attack:xsa332 floods events and still gets answers', async () => {
  const { env, backend } = guest();
  const report = await createXsa332Program({ events: 1000, probes: 4 })(env);
  assert.equal(report.ok, true, report.lines.join('\n'));
  assert.equal(report.data['eventsSent'], 1000);
  assert.ok(backend.hv.notifies >= 1000);
});

test('every program ends with an error report when the backend is dead', async () => {
  for (const [name, program] of Object.entries(GUEST_PROGRAMS)) {
    const { env, backend } = guest();
    backend.mode = 'dead';
    const report = await program(env);
    assert.equal(report.ok, false, name);
    assert.match(report.summary, /pciback not responding/, name);
  }
});
