// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PCI_CAP_ID, PCI_D3HOT } from '../../abi/pci-regs.js';
import { ConfigImageBuilder, SimulatedFunction, afBody, pmBody } from '../../devices/index.js';
import { PciAddress } from '../../pci/index.js';
import { SimHostPciDevice } from '../../platform/sim/pci-core.js';
import type { SimPciHostEntry } from '../../platform/sim/sim-pci-host.js';
import { checkBusReset, resetWithLadder, type ResetLadderOptions } from './reset-ladder.js';
import { buildTestMachine, type TestMachine } from './test-machine.js';

const A = (text: string): PciAddress => PciAddress.parse(text);

/** The reason of a failed outcome (fails the test when it succeeded). */
function reasonOf(outcome: { readonly ok: boolean; readonly reason?: string }): string {
  assert.equal(outcome.ok, false, 'expected a failure');
  return outcome.reason ?? assert.fail('a failure has a reason');
}

/** A function with the AF FLR and a PM capability without No_Soft_Reset. */
function afAndPm(bdf: string): SimPciHostEntry {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x8086,
    deviceId: 0x15b8,
    revision: 0,
    classCode: 0x020000,
    headerType: 0,
  });
  image.addCapability(PCI_CAP_ID.PM, pmBody({}));
  image.addCapability(PCI_CAP_ID.AF, afBody({ flr: true, transactionsPending: true }));
  const address = A(bdf);
  const hw = new SimulatedFunction(image.build());
  return { address, host: new SimHostPciDevice(hw, { address, irq: 0 }), originalDriver: 'e1000e' };
}

/**
 * 00:02.0 NVMe, 00:14.0 xHCI, 00:1f.6 AF+PM NIC, 00:1c.0 root port over bus 1 with the
 * GPU (01:00.0) and its audio (01:00.1), 00:03.0 a second GPU on the root bus. Nothing
 * is hidden: every function is on its dom0 driver.
 */
function machine(): TestMachine {
  return buildTestMachine(
    [
      { bdf: '0000:00:02.0', model: 'nvme' },
      { bdf: '0000:00:14.0', model: 'xhci' },
      { bdf: '0000:00:1c.0', model: 'root-port', secondaryBus: 1 },
      { bdf: '0000:01:00.0', model: 'gpu' },
      { bdf: '0000:00:03.0', model: 'gpu' },
    ],
    { extra: [afAndPm('0000:00:1f.6')] },
  );
}

function options(users: Record<string, number> = {}): ResetLadderOptions {
  return {
    stubDriver: 'pciback',
    userOf: (a) => users[a.toString()] ?? null,
  };
}

describe('resetWithLadder() on catalog devices', () => {
  test('the NVMe drive gets an FLR', () => {
    const m = machine();
    try {
      const outcome = resetWithLadder(m.pci, A('0000:00:02.0'), options());
      assert.deepEqual(outcome, { ok: true, method: 'flr', skipped: [] });
      assert.equal(m.hw('0000:00:02.0').resetCounts().flr, 1);
    } finally {
      m.close();
    }
  });

  test('without PCIe FLR the AF FLR comes first; without both, PM (the xHCI)', () => {
    const m = machine();
    try {
      const af = resetWithLadder(m.pci, A('0000:00:1f.6'), options());
      assert.equal(af.ok && af.method, 'af_flr');
      assert.deepEqual(
        af.skipped.map((s) => s.method),
        ['flr'],
      );
      assert.deepEqual(m.hw('0000:00:1f.6').resetCounts(), { flr: 0, afFlr: 1, pm: 0, bus: 0 });
      const pm = resetWithLadder(m.pci, A('0000:00:14.0'), options());
      assert.equal(pm.ok && pm.method, 'pm');
      assert.deepEqual(
        pm.skipped.map((s) => s.method),
        ['flr', 'af_flr'],
      );
      assert.equal(m.hw('0000:00:14.0').resetCounts().pm, 1);
    } finally {
      m.close();
    }
  });

  test('a bus reset is refused while a sibling is bound to a dom0 driver, and says which', () => {
    const m = machine();
    try {
      const gpu = A('0000:01:00.0');
      const outcome = resetWithLadder(m.pci, gpu, options());
      assert.equal(outcome.ok, false);
      assert.match(
        reasonOf(outcome),
        /^"0000:01:00.0" is not resettable: no FLR .*; no Advanced Features FLR .*; no PM reset \(No_Soft_Reset is set .*\); bus reset refused behind bridge "0000:00:1c.0": "0000:01:00.1" is bound to dom0 driver "snd_hda_intel"$/,
      );
      assert.equal(m.hw('0000:01:00.0').resetCounts().bus, 0);
      assert.equal(m.hw('0000:01:00.1').resetCounts().bus, 0, 'the sibling was not touched');
    } finally {
      m.close();
    }
  });

  test('a bus reset is done when every sibling is free, and refused while a guest uses one', () => {
    const m = machine();
    try {
      const gpu = A('0000:01:00.0');
      const audio = A('0000:01:00.1');
      m.pci.unbind(audio);
      assert.equal(checkBusReset(m.pci, gpu, options()), undefined, 'unbound: free');
      m.stub.newSlot('0000:01:00.1');
      m.pci.bind(audio, 'pciback');
      assert.equal(checkBusReset(m.pci, gpu, options()), undefined, 'on the stub and unused: free');
      const done = resetWithLadder(m.pci, gpu, options());
      assert.equal(done.ok && done.method, 'bus');
      assert.equal(m.hw('0000:01:00.0').resetCounts().bus, 1);
      assert.equal(m.hw('0000:01:00.1').resetCounts().bus, 1);
      assert.equal(m.hw('0000:00:1c.0').resetCounts().bus, 0, 'the bridge itself is not reset');

      const busy = resetWithLadder(m.pci, gpu, options({ '0000:01:00.1': 5 }));
      assert.equal(busy.ok, false);
      assert.match(reasonOf(busy), /"0000:01:00.1" is used by domain 5$/);
      assert.equal(m.hw('0000:01:00.1').resetCounts().bus, 1);
    } finally {
      m.close();
    }
  });

  test('the audio function takes PM before the bus; a failed PM falls through to the bus', () => {
    const m = machine();
    try {
      const audio = A('0000:01:00.1');
      m.pci.unbind(A('0000:01:00.0'));
      assert.equal(resetWithLadder(m.pci, audio, options()).ok, true);
      assert.equal(m.hw('0000:01:00.1').resetCounts().pm, 1);
      assert.equal(m.host('0000:01:00.1').setPowerState(PCI_D3HOT), 0);
      const outcome = resetWithLadder(m.pci, audio, options());
      assert.equal(outcome.ok && outcome.method, 'bus');
      const pmSkip = outcome.skipped.find((s) => s.method === 'pm');
      assert.match(pmSkip?.reason ?? '', /^pm failed: .*not D0/);
    } finally {
      m.close();
    }
  });

  test('a function on a root bus with no method of its own is not resettable, with every reason', () => {
    const m = machine();
    try {
      const outcome = resetWithLadder(m.pci, A('0000:00:03.0'), options());
      assert.equal(outcome.ok, false);
      assert.deepEqual(
        outcome.skipped.map((s) => s.method),
        ['flr', 'af_flr', 'pm', 'bus'],
      );
      assert.match(
        reasonOf(outcome),
        /no bus reset \(no bridge is upstream: the device is on a root bus\)$/,
      );
      const gone = resetWithLadder(m.pci, A('0000:09:00.0'), options());
      assert.deepEqual(gone, {
        ok: false,
        reason: '"0000:09:00.0" is not resettable: it is not on the host',
        skipped: [],
      });
    } finally {
      m.close();
    }
  });
});
