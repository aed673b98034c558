// SPDX-License-Identifier: MIT
// pciback-fixes.md P8: vpci's "refuse bridges" check is dead code in the original
// (`(dev->class >> 24) == PCI_BASE_CLASS_BRIDGE` on a 24-bit class). We are
// bug-compatible by default, as the fixes document says, and offer the intended check
// behind `refuseBridges`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLASS_ETHERNET, CLASS_PCI_BRIDGE, recorder, testDevice } from './test-devices.js';
import { TOPOLOGY_ERRNO, TOPOLOGY_ERROR, TopologyError } from './types.js';
import { PCI_BASE_CLASS_BRIDGE, VPCI_REFUSES_BRIDGES, VpciTopology } from './vpci.js';

const CLASS_HOST_BRIDGE = 0x060000;
const CLASS_ISA_BRIDGE = 0x060100;

test('VPCI_REFUSES_BRIDGES is false: vpci accepts bridges by default, as the original does (P8)', () => {
  assert.equal(VPCI_REFUSES_BRIDGES, false);
  assert.equal(new VpciTopology().refusesBridges, false);
  // What the original computes: the 24-bit class shifted by 24 is never the bridge class.
  assert.notEqual(CLASS_PCI_BRIDGE >>> 24, PCI_BASE_CLASS_BRIDGE);
});

test('VpciTopology.add() places PCI-PCI, host and ISA bridges by the normal slot rules (P8, bug-compatible)', () => {
  const topo = new VpciTopology();
  const { calls, publish } = recorder();
  const p2p = testDevice('00:1c.0', { classCode: CLASS_PCI_BRIDGE });
  const p2pFn1 = testDevice('00:1c.1', { classCode: CLASS_PCI_BRIDGE });
  const host = testDevice('00:00.0', { classCode: CLASS_HOST_BRIDGE });
  const isa = testDevice('00:1f.0', { classCode: CLASS_ISA_BRIDGE });
  topo.add(p2p, 0, publish);
  topo.add(p2pFn1, 1, publish);
  topo.add(host, 2, publish);
  topo.add(isa, 3, publish);
  assert.deepEqual(calls, [
    [0, '0000:00:00.0'],
    [1, '0000:00:00.1'],
    [2, '0000:00:01.0'],
    [3, '0000:00:02.0'],
  ]);
});

test('VpciTopology.get() reaches nothing behind an exported bridge: only bus 0 answers (P8)', () => {
  const topo = new VpciTopology();
  const bridge = testDevice('00:1c.0', { classCode: CLASS_PCI_BRIDGE });
  const behind = testDevice('02:00.0', { bridges: ['00:1c.0'] });
  topo.add(bridge, 0, recorder().publish);
  topo.add(behind, 1, recorder().publish);
  for (let devfn = 0; devfn < 256; devfn++) assert.equal(topo.get(0, 2, devfn), undefined);
  // The device behind it, exported itself, has its own slot on bus 0.
  assert.equal(topo.find(behind)?.toString(), '0000:00:01.0');
});

test('VpciTopology.add() with refuseBridges throws -EFAULT "Can\'t export bridges on the virtual PCI bus"', () => {
  const topo = new VpciTopology({ refuseBridges: true });
  const { calls, publish } = recorder();
  for (const classCode of [CLASS_PCI_BRIDGE, CLASS_HOST_BRIDGE, CLASS_ISA_BRIDGE]) {
    assert.throws(
      () => topo.add(testDevice('00:1c.0', { classCode }), 0, publish),
      (err) =>
        err instanceof TopologyError &&
        err.code === TOPOLOGY_ERROR.bridgeRefused &&
        err.errno === TOPOLOGY_ERRNO.EFAULT &&
        err.fatalMessage === "Can't export bridges on the virtual PCI bus" &&
        err.message.startsWith(
          'Cannot export "0000:00:1c.0" on the virtual PCI bus: it is a bridge (class 0x06',
        ),
    );
  }
  assert.equal(topo.size, 0);
  // Other classes, including ones with 0x06 in a lower byte, still pass.
  topo.add(testDevice('03:00.0', { classCode: CLASS_ETHERNET }), 0, publish);
  topo.add(testDevice('04:00.0', { classCode: 0x000604 }), 1, publish);
  assert.equal(calls.length, 2);
});
