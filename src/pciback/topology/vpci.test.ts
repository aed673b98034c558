// SPDX-License-Identifier: MIT
// The vpci backend (spec §8.1) and the 2021 fix "redo VF placement in the virtual
// topology" (§10).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPcibackError } from '../../errors.js';
import { recorder, testDevice, type TestDevice } from './test-devices.js';
import { TOPOLOGY_ERRNO, TOPOLOGY_ERROR, TopologyError } from './types.js';
import { VPCI_SLOT_MAX, VpciTopology } from './vpci.js';

function guestOf(topo: VpciTopology<TestDevice>, dev: TestDevice): string | undefined {
  return topo.find(dev)?.toString();
}

test('VpciTopology.add() places 03:00.0, 03:00.1, 02:1a.1 at 00:00.0, 00:00.1, 00:01.1 (spec example)', () => {
  const topo = new VpciTopology<TestDevice>();
  const { calls, publish } = recorder();
  const a = testDevice('03:00.0');
  const b = testDevice('03:00.1');
  const c = testDevice('02:1a.1');
  assert.equal(topo.add(a, 0, publish).toString(), '0000:00:00.0');
  assert.equal(topo.add(b, 1, publish).toString(), '0000:00:00.1');
  assert.equal(topo.add(c, 2, publish).toString(), '0000:00:01.1');
  assert.deepEqual(calls, [
    [0, '0000:00:00.0'],
    [1, '0000:00:00.1'],
    [2, '0000:00:01.1'],
  ]);
  assert.equal(topo.get(0, 0, 0x00), a);
  assert.equal(topo.get(0, 0, 0x01), b);
  assert.equal(topo.get(0, 0, 0x09), c);
  assert.equal(topo.get(0, 0, 0x08), undefined, 'no function 0 in virtual slot 1');
  assert.equal(topo.size, 3);
});

test('VpciTopology.add() keeps the functions of a multi-function device together when others come between', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const devs = ['03:00.0', '04:00.0', '03:00.2', '04:00.1', '0001:03:00.1', '03:01.3'].map((a) =>
    testDevice(a),
  );
  for (const [i, dev] of devs.entries()) topo.add(dev, i, publish);
  assert.deepEqual(
    devs.map((d) => guestOf(topo, d)),
    [
      '0000:00:00.0',
      '0000:00:01.0',
      '0000:00:00.2',
      '0000:00:01.1',
      '0000:00:02.1',
      '0000:00:03.3',
    ],
    'another segment or another real slot never joins',
  );
});

test('VpciTopology.add() gives a VF at function 0 its own slot and never lets another device join it', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const vf0 = testDevice('05:10.0', { isVirtualFn: true });
  const vf1 = testDevice('05:10.1', { isVirtualFn: true });
  const fn2 = testDevice('05:10.2');
  assert.equal(topo.add(vf0, 0, publish).toString(), '0000:00:00.0');
  assert.equal(topo.add(vf1, 1, publish).toString(), '0000:00:01.1', 'does not join the VF-0 slot');
  assert.equal(
    topo.add(fn2, 2, publish).toString(),
    '0000:00:01.2',
    'joins the slot headed by the VF at fn 1',
  );
  assert.equal(topo.get(0, 0, 0x00), vf0);
  assert.equal(topo.get(0, 0, 0x01), undefined);
});

test('VpciTopology.add() opens a new slot for a VF at function 0 even when its real slot is already exported', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  topo.add(testDevice('05:10.1', { isVirtualFn: true }), 0, publish);
  const vf0 = testDevice('05:10.0', { isVirtualFn: true });
  assert.equal(topo.add(vf0, 1, publish).toString(), '0000:00:01.0');
});

test('VpciTopology.add() joins a VF at a non-zero function to a matching slot headed by a non-VF', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  topo.add(testDevice('06:00.0'), 0, publish);
  const vf = testDevice('06:00.1', { isVirtualFn: true });
  assert.equal(topo.add(vf, 1, publish).toString(), '0000:00:00.1');
});

test('VpciTopology.add() throws -ENOMEM "No more space on root virtual PCI bus" after 32 slots', () => {
  const topo = new VpciTopology<TestDevice>();
  const { calls, publish } = recorder();
  for (let i = 0; i < VPCI_SLOT_MAX; i++) {
    topo.add(testDevice(`0000:${(i + 1).toString(16)}:00.0`), i, publish);
  }
  const extra = testDevice('0000:40:00.0');
  assert.throws(
    () => topo.add(extra, 32, publish),
    (err) =>
      err instanceof TopologyError &&
      isPcibackError(err, TOPOLOGY_ERROR.noSpace) &&
      err.errno === TOPOLOGY_ERRNO.ENOMEM &&
      err.fatalMessage === 'No more space on root virtual PCI bus' &&
      err.message ===
        'Cannot export "0000:40:00.0" on the virtual PCI bus: all 32 slots are in use',
  );
  assert.equal(calls.length, 32, 'nothing published for the refused device');
  assert.equal(topo.size, 32);
  assert.equal(topo.find(extra), undefined);
  // A sibling of an exported device still fits: it joins its slot.
  const sibling = testDevice('0000:01:00.5');
  assert.equal(topo.add(sibling, 33, publish).toString(), '0000:00:00.5');
});

test('VpciTopology.get() aliases devfn values above 0xff onto slot (devfn >> 3) & 0x1f', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const dev = testDevice('03:00.1');
  topo.add(dev, 0, publish);
  for (const devfn of [0x01, 0x101, 0xff01, 0xffff_ff01]) {
    assert.equal(topo.get(0, 0, devfn), dev, `devfn 0x${devfn.toString(16)}`);
  }
  const last = testDevice('07:00.7');
  for (let i = 1; i < VPCI_SLOT_MAX; i++)
    topo.add(testDevice(`${(i + 8).toString(16)}:00.0`), i, publish);
  topo.release(topo.get(0, 0, 31 << 3) as TestDevice);
  assert.equal(topo.add(last, 99, publish).toString(), '0000:00:1f.7');
  assert.equal(topo.get(0, 0, 0xffffffff), last);
});

test('VpciTopology.get() finds nothing, and never throws, for other buses, domains or odd values', () => {
  const topo = new VpciTopology<TestDevice>();
  topo.add(testDevice('00:00.0'), 0, recorder().publish);
  const odd = [-1, 0.5, NaN, Infinity, -Infinity, 2 ** 32, 2 ** 53, Number.MAX_VALUE];
  assert.equal(topo.get(1, 0, 0), undefined);
  assert.equal(topo.get(0, 1, 0), undefined);
  assert.equal(topo.get(0xffffffff, 0xffffffff, 0), undefined);
  for (const v of odd) {
    assert.equal(topo.get(v, 0, 0), undefined);
    assert.equal(topo.get(0, v, 0), undefined);
    assert.equal(topo.get(0, 0, v), undefined);
  }
});

test('VpciTopology.find() and get() are inverse for every held device', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const devs = ['03:00.0', '03:00.1', '02:1a.1', '0002:00:1f.7'].map((a) => testDevice(a));
  for (const [i, d] of devs.entries()) topo.add(d, i, publish);
  for (const d of devs) {
    const g = topo.find(d);
    assert.ok(g);
    assert.equal(topo.get(g.domain, g.bus, g.devfn), d);
    assert.equal(g.fn, d.address.fn, 'the virtual function number is the real one');
  }
  // find matches by real address, like the original (AER passes the real pci_dev).
  assert.equal(topo.find(testDevice('02:1a.1'))?.toString(), '0000:00:01.1');
  assert.equal(topo.find(testDevice('02:1a.2')), undefined);
});

test('VpciTopology.release() frees the entry so the slot is reused and the device can be added again', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const a = testDevice('03:00.0');
  const b = testDevice('04:00.0');
  topo.add(a, 0, publish);
  topo.add(b, 1, publish);
  assert.equal(topo.release(testDevice('03:00.0')), false, 'another object with the same address');
  assert.equal(topo.release(a), true);
  assert.equal(topo.release(a), false, 'already released');
  assert.equal(topo.get(0, 0, 0), undefined);
  assert.equal(topo.find(a), undefined);
  const c = testDevice('05:00.0');
  assert.equal(topo.add(c, 2, publish).toString(), '0000:00:00.0', 'first empty slot');
  assert.equal(topo.add(a, 3, publish).toString(), '0000:00:02.0');
  assert.deepEqual(topo.devices(), [c, b, a]);
});

test('VpciTopology.release() of a slot head leaves its siblings in place and later siblings still join', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const f0 = testDevice('03:00.0');
  const f1 = testDevice('03:00.1');
  topo.add(f0, 0, publish);
  topo.add(f1, 1, publish);
  topo.release(f0);
  assert.equal(topo.get(0, 0, 0x01), f1);
  assert.equal(topo.add(testDevice('03:00.3'), 2, publish).toString(), '0000:00:00.3');
  assert.equal(topo.add(f0, 3, publish).toString(), '0000:00:00.0', 'function 0 comes back to it');
});

test('VpciTopology.add() refuses a second device with an address already held', () => {
  const topo = new VpciTopology<TestDevice>();
  const { calls, publish } = recorder();
  const a = testDevice('03:00.0');
  topo.add(a, 0, publish);
  for (const dup of [a, testDevice('03:00.0')]) {
    assert.throws(
      () => topo.add(dup, 1, publish),
      (err) =>
        err instanceof TopologyError &&
        err.code === TOPOLOGY_ERROR.alreadyExported &&
        err.errno === TOPOLOGY_ERRNO.EEXIST &&
        /"0000:03:00.0": it is already exported as "0000:00:00.0"/.test(err.message),
    );
  }
  assert.equal(calls.length, 1);
  assert.equal(topo.size, 1);
});

test('VpciTopology.add() keeps the device when publish throws, so clear() still returns it', () => {
  const topo = new VpciTopology<TestDevice>();
  const dev = testDevice('03:00.0');
  assert.throws(
    () =>
      topo.add(dev, 0, () => {
        throw new Error('xenstore write failed');
      }),
    /xenstore write failed/,
  );
  assert.equal(topo.get(0, 0, 0), dev);
  assert.deepEqual(topo.clear(), [dev]);
});

test('VpciTopology.add() rejects a devid that is not a non-negative integer', () => {
  const topo = new VpciTopology<TestDevice>();
  for (const devid of [-1, 0.5, NaN]) {
    assert.throws(() => topo.add(testDevice('03:00.0'), devid, recorder().publish), RangeError);
  }
  assert.equal(topo.size, 0);
});

test('VpciTopology.publishRoots() publishes the one root 0000:00, with or without devices', () => {
  const topo = new VpciTopology<TestDevice>();
  const roots: [number, number][] = [];
  topo.publishRoots((d, b) => roots.push([d, b]));
  topo.add(testDevice('0003:07:00.0'), 0, recorder().publish);
  topo.publishRoots((d, b) => roots.push([d, b]));
  assert.deepEqual(roots, [
    [0, 0],
    [0, 0],
  ]);
});

test('VpciTopology.clear() returns every device in slot order and leaves an empty, usable topology', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const a = testDevice('03:00.0');
  const b = testDevice('04:00.0');
  const a1 = testDevice('03:00.1');
  topo.add(a, 0, publish);
  topo.add(b, 1, publish);
  topo.add(a1, 2, publish);
  assert.deepEqual(topo.clear(), [a, a1, b]);
  assert.equal(topo.size, 0);
  assert.deepEqual(topo.devices(), []);
  assert.equal(topo.get(0, 0, 0), undefined);
  assert.equal(topo.add(b, 0, publish).toString(), '0000:00:00.0');
});
