// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTopology, DEFAULT_TOPOLOGY_KIND } from './create-topology.js';
import { PassthroughTopology } from './passthrough.js';
import { CLASS_PCI_BRIDGE, recorder, testDevice, type TestDevice } from './test-devices.js';
import type { TopologyKind } from './types.js';
import { VpciTopology } from './vpci.js';

test('createTopology() builds the backend named by kind; vpci is the default kind', () => {
  assert.equal(DEFAULT_TOPOLOGY_KIND, 'vpci');
  const vpci = createTopology<TestDevice>('vpci');
  const pt = createTopology<TestDevice>('passthrough');
  assert.ok(vpci instanceof VpciTopology);
  assert.ok(pt instanceof PassthroughTopology);
  assert.equal(vpci.kind, 'vpci');
  assert.equal(pt.kind, 'passthrough');
  const dev = testDevice('03:00.1');
  assert.equal(vpci.add(dev, 0, recorder().publish).toString(), '0000:00:00.1');
  assert.equal(pt.add(dev, 0, recorder().publish).toString(), '0000:03:00.1');
});

test('createTopology() passes refuseBridges to vpci', () => {
  const topo = createTopology<TestDevice>('vpci', { refuseBridges: true });
  assert.throws(() =>
    topo.add(testDevice('00:1c.0', { classCode: CLASS_PCI_BRIDGE }), 0, recorder().publish),
  );
});

test('createTopology() throws a TypeError for an unknown kind', () => {
  assert.throws(() => createTopology('slot' as TopologyKind), {
    name: 'TypeError',
    message: 'Cannot create a topology of kind "slot": expected "vpci" or "passthrough"',
  });
});
