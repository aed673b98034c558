// SPDX-License-Identifier: MIT
// The passthrough backend (spec §8.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassthroughTopology } from './passthrough.js';
import { CLASS_PCI_BRIDGE, recorder, testDevice, type TestDevice } from './test-devices.js';
import { TOPOLOGY_ERROR, TopologyError } from './types.js';

function rootsOf(topo: PassthroughTopology<TestDevice>): string[] {
  const roots: string[] = [];
  topo.publishRoots((domain, bus) => {
    roots.push(`${domain.toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}`);
  });
  return roots;
}

test('PassthroughTopology.add() publishes each device at its real address', () => {
  const topo = new PassthroughTopology<TestDevice>();
  const { calls, publish } = recorder();
  const a = testDevice('03:00.0');
  const b = testDevice('0001:82:1f.7');
  assert.equal(topo.add(a, 0, publish), a.address);
  topo.add(b, 5, publish);
  assert.deepEqual(calls, [
    [0, '0000:03:00.0'],
    [5, '0001:82:1f.7'],
  ]);
});

test('PassthroughTopology.get() matches segment, bus and the full devfn exactly', () => {
  const topo = new PassthroughTopology<TestDevice>();
  const a = testDevice('0001:82:1f.7');
  topo.add(a, 0, recorder().publish);
  assert.equal(topo.get(1, 0x82, 0xff), a);
  assert.equal(topo.get(1, 0x82, 0x1ff), undefined, 'no devfn aliasing');
  assert.equal(topo.get(0, 0x82, 0xff), undefined);
  assert.equal(topo.get(0x10001, 0x82, 0xff), undefined, 'no domain truncation');
  assert.equal(topo.get(1, 0x182, 0xff), undefined, 'no bus truncation');
  for (const v of [-1, 0.5, NaN, Infinity, 2 ** 32, Number.MAX_VALUE]) {
    assert.equal(topo.get(v, 0x82, 0xff), undefined);
    assert.equal(topo.get(1, v, 0xff), undefined);
    assert.equal(topo.get(1, 0x82, v), undefined);
  }
});

test('PassthroughTopology.add() accepts bridges', () => {
  const topo = new PassthroughTopology<TestDevice>();
  const bridge = testDevice('00:1c.0', { classCode: CLASS_PCI_BRIDGE });
  assert.equal(topo.add(bridge, 0, recorder().publish).toString(), '0000:00:1c.0');
});

test('PassthroughTopology.publishRoots() publishes each device bus once, in export order', () => {
  const topo = new PassthroughTopology<TestDevice>();
  const { publish } = recorder();
  for (const [i, a] of ['05:00.0', '03:00.0', '05:00.1', '0001:05:00.0', '03:01.0'].entries()) {
    topo.add(testDevice(a), i, publish);
  }
  assert.deepEqual(rootsOf(topo), ['0000:05', '0000:03', '0001:05']);
});

test('PassthroughTopology.publishRoots() publishes no root for a device behind an exported bridge', () => {
  const topo = new PassthroughTopology<TestDevice>();
  const { publish } = recorder();
  // Root port 00:1c.0 -> switch up 02:00.0 -> switch down 03:00.0 -> endpoint 04:00.0.
  const rootPort = testDevice('00:1c.0', { classCode: CLASS_PCI_BRIDGE });
  const endpoint = testDevice('04:00.0', { bridges: ['03:00.0', '02:00.0', '00:1c.0'] });
  const sibling = testDevice('02:00.0', { classCode: CLASS_PCI_BRIDGE, bridges: ['00:1c.0'] });
  topo.add(endpoint, 0, publish);
  assert.deepEqual(rootsOf(topo), ['0000:04'], 'no upstream bridge exported yet');
  topo.add(rootPort, 1, publish);
  assert.deepEqual(rootsOf(topo), ['0000:00'], 'the endpoint is reached through the root port');
  topo.add(sibling, 2, publish);
  assert.deepEqual(rootsOf(topo), ['0000:00']);
  topo.release(rootPort);
  assert.deepEqual(rootsOf(topo), ['0000:02'], 'the switch now covers the endpoint');
});

test('PassthroughTopology.find() and get() are inverse; find() answers only for held devices', () => {
  const topo = new PassthroughTopology<TestDevice>();
  const devs = ['03:00.0', '03:00.1', '0002:00:1f.7'].map((a) => testDevice(a));
  for (const [i, d] of devs.entries()) topo.add(d, i, recorder().publish);
  for (const d of devs) {
    const g = topo.find(d);
    assert.ok(g);
    assert.ok(g.equals(d.address));
    assert.equal(topo.get(g.domain, g.bus, g.devfn), d);
  }
  // Deviation from the original, which answers the real address for any device.
  assert.equal(topo.find(testDevice('07:00.0')), undefined);
});

test('PassthroughTopology.release() removes only that object; the device can be added again', () => {
  const topo = new PassthroughTopology<TestDevice>();
  const { publish } = recorder();
  const a = testDevice('03:00.0');
  const b = testDevice('04:00.0');
  topo.add(a, 0, publish);
  topo.add(b, 1, publish);
  assert.equal(topo.release(testDevice('03:00.0')), false);
  assert.equal(topo.release(a), true);
  assert.equal(topo.release(a), false);
  assert.equal(topo.get(0, 3, 0), undefined);
  assert.equal(topo.add(a, 2, publish).toString(), '0000:03:00.0');
  assert.deepEqual(topo.devices(), [b, a]);
});

test('PassthroughTopology.add() refuses a second device with an address already held', () => {
  const topo = new PassthroughTopology<TestDevice>();
  topo.add(testDevice('03:00.0'), 0, recorder().publish);
  assert.throws(
    () => topo.add(testDevice('03:00.0'), 1, recorder().publish),
    (err) => err instanceof TopologyError && err.code === TOPOLOGY_ERROR.alreadyExported,
  );
  assert.equal(topo.size, 1);
});

test('PassthroughTopology.clear() returns the devices in export order and empties the topology', () => {
  const topo = new PassthroughTopology<TestDevice>();
  const devs = ['05:00.0', '03:00.0', '04:00.0'].map((a) => testDevice(a));
  for (const [i, d] of devs.entries()) topo.add(d, i, recorder().publish);
  assert.deepEqual(topo.clear(), devs);
  assert.equal(topo.size, 0);
  assert.deepEqual(rootsOf(topo), []);
});
