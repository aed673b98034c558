// SPDX-License-Identifier: MIT
/** End to end through the simulated host: MSI and MSI-X interrupts reach the guests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimMachine } from '../../src/daemon/sim-machine.js';
import { guestNamed, reportOf, simMachine } from '../support/sim-machines.js';

interface IrqOutcome {
  readonly address: string;
  readonly enabled: boolean;
  readonly interruptsObserved: number;
  readonly disableErr: number;
}

interface DeviceIrqCounters {
  readonly msi: { readonly raised: number; readonly delivered: number };
  readonly msix: { readonly raised: number; readonly delivered: number };
}

test(
  'MSI and MSI-X interrupts reach the guest that enabled them on every function',
  { timeout: 120_000 },
  async () => {
    const result = await runSimMachine(
      simMachine([
        // Both GPU functions: the second MSI enable in one domain reuses the pirq the first
        // disable freed, so its port must have been closed in between.
        { name: 'msi', pci: ['0000:04:00.*', '0000:02:00.0'], program: 'msi' },
        { name: 'msix', pci: ['0000:01:00.0', '0000:03:00.0'], program: 'msix' },
      ]),
      { guestTimeoutMs: 60_000 },
    );
    const expected = { msi: 3, msix: 2 };
    for (const [name, count] of Object.entries(expected)) {
      const guest = guestNamed(result, name);
      assert.equal(guest.status, 'ok', `${name}: ${guest.error ?? ''}`);
      const report = reportOf(guest);
      assert.equal(report.ok, true, report.lines.join('\n'));
      const outcomes = report.data.devices as IrqOutcome[];
      assert.equal(outcomes.length, count, `${name}: every function with the capability`);
      for (const o of outcomes) {
        assert.equal(o.enabled, true, `${name} ${o.address}`);
        assert.equal(o.disableErr, 0, `${name} ${o.address}`);
        assert.ok(o.interruptsObserved > 0, `${name} ${o.address}: ${report.lines.join('\n')}`);
      }
    }
    const counters = (address: string): DeviceIrqCounters => {
      const device = result.devices.find((d) => d.address === address);
      assert.ok(device !== undefined, address);
      return device.interrupts as DeviceIrqCounters;
    };
    for (const address of ['0000:04:00.0', '0000:04:00.1', '0000:02:00.0']) {
      assert.ok(counters(address).msi.delivered > 0, `${address} MSI delivered`);
    }
    for (const address of ['0000:01:00.0', '0000:03:00.0']) {
      assert.ok(counters(address).msix.delivered > 0, `${address} MSI-X delivered`);
    }
  },
);
