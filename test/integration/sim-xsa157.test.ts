// SPDX-License-Identifier: MIT
/**
 * XSA-157 (CVE-2015-8551, CVE-2015-8552; pciback-fixes P3 rows (a)-(g)) end to end, on
 * devices with both MSI and MSI-X so that no row is skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimMachine } from '../../src/daemon/sim-machine.js';
import { guestNamed, reportOf, simMachine } from '../support/sim-machines.js';

interface Xsa157Row {
  readonly row: string;
  readonly target: string | null;
  readonly observed: string;
  readonly status: 'pass' | 'fail' | 'inconclusive' | 'skipped';
}

test(
  'XSA-157: rows (a)-(g) pass on the NIC and the NVMe; (e) only inconclusive because hardware decode stays on',
  { timeout: 120_000 },
  async () => {
    const result = await runSimMachine(
      simMachine([
        { name: 'nic', pci: ['0000:01:00.0'], program: 'attack:xsa157' },
        { name: 'nvme', pci: ['0000:02:00.0'], program: 'attack:xsa157' },
      ]),
      { guestTimeoutMs: 60_000 },
    );
    for (const name of ['nic', 'nvme']) {
      const guest = guestNamed(result, name);
      assert.equal(guest.status, 'ok', `${name}: ${guest.error ?? ''}`);
      const report = reportOf(guest);
      const rows = report.data.rows as Xsa157Row[];
      const why = report.lines.join('\n');
      assert.deepEqual(rows.map((r) => r.row).sort(), ['a', 'b', 'c', 'd', 'e', 'f', 'g'], why);
      for (const r of rows) {
        assert.notEqual(r.status, 'skipped', `${name} (${r.row}): ${why}`);
        assert.equal(r.target, '0000:00:00.0', `${name} (${r.row}) targets the attached device`);
        if (r.row === 'e' && r.status === 'inconclusive') {
          // The only documented reason: the guest can clear its virtual MEM bit but not
          // the hardware's (XSA-120), so the enable is legitimately allowed.
          assert.match(r.observed, /^err 0 .*\(hardware decode was already on\)$/, `${name} (e)`);
        } else {
          assert.equal(r.status, 'pass', `${name} (${r.row}): ${why}`);
        }
      }
      assert.equal(report.ok, true, report.summary);
    }
  },
);
