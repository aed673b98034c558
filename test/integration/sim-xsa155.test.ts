// SPDX-License-Identifier: MIT
/**
 * XSA-155 (CVE-2015-8550, spec §10, pciback-fixes P2) end to end: a guest rewrites its
 * pending op in the shared page while the backend handles it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimMachine } from '../../src/daemon/sim-machine.js';
import { guestNamed, reportOf, simMachine } from '../support/sim-machines.js';

interface Xsa155Case {
  readonly name: string;
  readonly answered: boolean;
  readonly clobbered: readonly string[];
  readonly pass: boolean;
}

test(
  'XSA-155: every double-fetch race is answered consistently and the backend stays alive',
  { timeout: 120_000 },
  async () => {
    const result = await runSimMachine(
      simMachine([
        { name: 'attacker', pci: ['0000:02:00.0'], program: 'attack:xsa155' },
        { name: 'bystander', pci: ['0000:01:00.0'], program: 'enumerate' },
      ]),
      { guestTimeoutMs: 60_000 },
    );
    const attacker = guestNamed(result, 'attacker');
    assert.equal(attacker.status, 'ok', attacker.error);
    const report = reportOf(attacker);
    const cases = report.data.cases as Xsa155Case[];
    // The NVMe has MSI-X, so the enable_msix count race runs too.
    assert.equal(cases.length, 4, report.lines.join('\n'));
    for (const c of cases) {
      assert.equal(c.answered, true, c.name);
      // Nothing outside err/value/vectors changed: cmd, domain/bus/devfn, msix entry numbers.
      assert.deepEqual(c.clobbered, [], c.name);
      assert.equal(c.pass, true, c.name);
    }
    assert.equal(report.data.backendAlive, true);
    assert.equal(report.ok, true, report.summary);
    assert.equal(reportOf(guestNamed(result, 'bystander')).ok, true);
  },
);
