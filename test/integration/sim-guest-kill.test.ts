// SPDX-License-Identifier: MIT
/** End to end through the simulated host: a guest destroyed in the middle of its ops. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimMachine } from '../../src/daemon/sim-machine.js';
import { guestNamed, reportOf, simMachine } from '../support/sim-machines.js';

/** Ops the victim must have had answered before it is killed (it sends over a thousand). */
const KILL_AFTER_OPS = 400;

test(
  'a guest killed in the middle of its ops leaves the backend serving the other guests',
  { timeout: 120_000 },
  async () => {
    let killedAtOps = -1;
    const result = await runSimMachine(
      simMachine([
        // attack:xsa157 sends ~1300 back-to-back ops: killed after 400 it is waiting for an
        // answer almost all the time.
        { name: 'victim', pci: ['0000:01:00.0'], program: 'attack:xsa157' },
        { name: 'busy', pci: ['0000:02:00.0'], program: 'attack:xsa157' },
        { name: 'lister', pci: ['0000:04:00.*', '0000:03:00.0'], program: 'enumerate' },
      ]),
      {
        guestTimeoutMs: 60_000,
        onGuestConnected: (guest) => {
          if (guest.name !== 'victim') return;
          const poll = (): void => {
            const ops = guest.channelStats().ops;
            if (ops < KILL_AFTER_OPS) {
              setImmediate(poll);
              return;
            }
            killedAtOps = ops;
            guest.kill('test');
          };
          setImmediate(poll);
        },
      },
    );
    const victim = guestNamed(result, 'victim');
    assert.equal(victim.status, 'killed', JSON.stringify(victim));
    assert.equal(victim.error, 'killed by the host: test');
    assert.equal(victim.report, undefined);
    assert.ok(killedAtOps >= KILL_AFTER_OPS);
    // It was killed mid-program: well short of the ~1300 ops a full run sends.
    assert.ok(victim.channel !== undefined && victim.channel.ops < 1000, JSON.stringify(victim));
    for (const name of ['busy', 'lister']) {
      const guest = guestNamed(result, name);
      assert.equal(guest.status, 'ok', `${name}: ${guest.error ?? ''}`);
      assert.equal(reportOf(guest).ok, true, `${name}: ${reportOf(guest).summary}`);
    }
    // The victim's NIC went back to pciback: no owner, and its fake INTx handler is off.
    const nic = result.devices.find((d) => d.address === '0000:01:00.0');
    assert.ok(nic !== undefined);
    assert.equal(nic.owner, null);
    assert.equal(nic.backend?.isrOn, false);
  },
);
