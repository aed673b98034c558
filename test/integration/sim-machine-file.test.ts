// SPDX-License-Identifier: MIT
/** Machine file validation as `pciback sim` users meet it (DESIGN.md §4). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMachine } from '../../src/daemon/machine-file.js';
import { runSimMachine } from '../../src/daemon/sim-machine.js';
import { isPcibackError } from '../../src/errors.js';
import { runSimCli, simMachine, simMachineDocument } from '../support/sim-machines.js';

const GOOD = [{ name: 'g1', pci: ['0000:02:00.0'], program: 'enumerate' }];

test(
  'pciback sim exits 1 naming domains[0].pci[0] when a PCI spec does not parse',
  { timeout: 60_000 },
  async () => {
    const run = await runSimCli(
      simMachineDocument([{ name: 'g1', pci: ['0000:zz:00.0'], program: 'enumerate' }]),
    );
    assert.equal(run.status, 1, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /^pciback: Invalid machine file ".*machine\.json": domains\[0\]\.pci\[0\]: Cannot parse PCI spec "0000:zz:00\.0"/,
    );
  },
);

test(
  'pciback sim exits 1 naming domains[1].program for an unknown program',
  { timeout: 60_000 },
  async () => {
    const run = await runSimCli(
      simMachineDocument([...GOOD, { name: 'g2', pci: [], program: 'attack:xsa999' }]),
    );
    assert.equal(run.status, 1, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /: domains\[1\]\.program: Invalid option: expected one of "enumerate"/,
    );
  },
);

test(
  'pciback sim exits 1 for a file that is not JSON, naming the file',
  { timeout: 60_000 },
  async () => {
    const run = await runSimCli('{ "devices": [');
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /^pciback: Invalid machine file ".*machine\.json": /);
  },
);

test('parseMachine() names the path of the first bad field', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...simMachineDocument(GOOD), devices: [] }, /: devices: /],
    [
      {
        ...simMachineDocument(GOOD),
        domains: [{ name: 'g1', pci: ['0000:02:00.0'], program: 'enumerate', cpus: 1 }],
      },
      /: domains\[0\]: /,
    ],
    [
      {
        ...simMachineDocument(GOOD),
        devices: [{ bdf: '0000:01:00.0', model: 'nic-sriov', irq: 256 }],
      },
      /: devices\[0\]\.irq: /,
    ],
    [{ ...simMachineDocument(GOOD), pciback: { hide: '(0000:01:00' } }, /: pciback\.hide: /],
  ];
  for (const [document, path] of cases) {
    assert.throws(
      () => parseMachine(document, 'm.json'),
      (err: unknown) =>
        isPcibackError(err) &&
        err.code === 'MACHINE_INVALID' &&
        /^Invalid machine file "m\.json": /.test(err.message) &&
        path.test(err.message),
      String(path),
    );
  }
});

test(
  'runSimMachine() refuses a domain device that is not in hide=, naming device and domain',
  { timeout: 60_000 },
  async () => {
    // The root port is on the host but pciback did not seize it.
    const machine = simMachine([{ name: 'g1', pci: ['0000:00:1c.0'], program: 'enumerate' }]);
    await assert.rejects(runSimMachine(machine), (err: unknown) => {
      assert.ok(isPcibackError(err));
      assert.equal(err.code, 'NOT_ASSIGNABLE');
      assert.equal(
        err.message,
        'Cannot attach "0000:00:1c.0" to "g1": it is not assignable (not in hide=)',
      );
      return true;
    });
  },
);

test(
  'pciback sim exits 1 with that message, and prints no JSON, for a device not in hide=',
  { timeout: 60_000 },
  async () => {
    const run = await runSimCli(
      simMachineDocument([{ name: 'g1', pci: ['0000:00:1c.0'], program: 'enumerate' }]),
    );
    assert.equal(run.status, 1, run.stderr);
    assert.equal(run.stdout, '');
    assert.equal(
      run.stderr,
      'pciback: Cannot attach "0000:00:1c.0" to "g1": it is not assignable (not in hide=)\n',
    );
  },
);
