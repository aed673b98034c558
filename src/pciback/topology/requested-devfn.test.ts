// SPDX-License-Identifier: MIT
// `vdevfn-N` honoured by the topology (ours: Linux pciback ignores it, peers.md §1.8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordingLogger } from '../../../test/support/memory-host-device.js';
import { createTopology } from './create-topology.js';
import { PassthroughTopology } from './passthrough.js';
import { recorder, testDevice, type TestDevice } from './test-devices.js';
import { TOPOLOGY_ERRNO, TOPOLOGY_ERROR, TopologyError } from './types.js';
import { VpciTopology } from './vpci.js';

function isSlotInUse(err: unknown): err is TopologyError {
  return err instanceof TopologyError && err.code === TOPOLOGY_ERROR.slotInUse;
}

test('VpciTopology.add() puts a device in the requested virtual slot; automatic placement still starts at slot 0', () => {
  const topo = new VpciTopology<TestDevice>();
  const { calls, publish } = recorder();
  const a = testDevice('03:00.0');
  const b = testDevice('04:00.0');
  assert.equal(topo.add(a, 0, publish, { requestedDevfn: 0x40 }).toString(), '0000:00:08.0');
  assert.equal(topo.add(b, 1, publish).toString(), '0000:00:00.0');
  assert.deepEqual(calls, [
    [0, '0000:00:08.0'],
    [1, '0000:00:00.0'],
  ]);
  assert.equal(topo.get(0, 0, 0x40), a);
  assert.equal(topo.get(0, 0, 0x00), b);
});

test('VpciTopology.add() keeps the real function in a requested slot and says so', () => {
  const logger = recordingLogger();
  const topo = new VpciTopology<TestDevice>({ logger });
  const dev = testDevice('03:00.1');
  assert.equal(topo.add(dev, 0, () => {}, { requestedDevfn: 0x40 }).toString(), '0000:00:08.1');
  assert.equal(topo.get(0, 0, 0x41), dev);
  assert.ok(logger.records.some((r) => r.msg?.includes('keeps real function numbers') === true));
});

test('VpciTopology.add() lets functions of the same physical device share a requested slot', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const f0 = testDevice('03:00.0');
  const f1 = testDevice('03:00.1');
  const f2 = testDevice('03:00.2');
  topo.add(f0, 0, publish, { requestedDevfn: 0x50 });
  assert.equal(topo.add(f1, 1, publish, { requestedDevfn: 0x51 }).toString(), '0000:00:0a.1');
  // Without a request the sibling still joins its device's slot.
  assert.equal(topo.add(f2, 2, publish).toString(), '0000:00:0a.2');
});

test('VpciTopology.add() refuses a requested slot held by another device, naming it, and changes nothing', () => {
  const topo = new VpciTopology<TestDevice>();
  const { calls, publish } = recorder();
  const holder = testDevice('04:00.0');
  topo.add(holder, 0, publish); // automatic: slot 0
  const dev = testDevice('03:00.0');
  assert.throws(
    () => topo.add(dev, 1, publish, { requestedDevfn: 0x00 }),
    (err: unknown) =>
      isSlotInUse(err) &&
      err.errno === TOPOLOGY_ERRNO.EBUSY &&
      err.fatalMessage ===
        'Requested virtual slot 0000:00:00 for 0000:03:00.0 is in use by 0000:04:00.0' &&
      err.message.includes('"0000:04:00.0"'),
  );
  assert.equal(topo.size, 1);
  assert.equal(topo.find(dev), undefined);
  assert.deepEqual(calls, [[0, '0000:00:00.0']]);
});

test('VpciTopology.add() applies the VF rule to requested slots: a VF at function 0 never shares', () => {
  const topo = new VpciTopology<TestDevice>();
  const { publish } = recorder();
  const vf0 = testDevice('05:10.0', { isVirtualFn: true });
  const vf1 = testDevice('05:10.1', { isVirtualFn: true });
  topo.add(vf0, 0, publish, { requestedDevfn: 0x18 });
  assert.throws(() => topo.add(vf1, 1, publish, { requestedDevfn: 0x19 }), isSlotInUse);
  // The other way round: a VF at function 0 cannot join a slot either.
  const other = new VpciTopology<TestDevice>();
  other.add(vf1, 0, publish, { requestedDevfn: 0x18 });
  assert.throws(() => other.add(vf0, 1, publish, { requestedDevfn: 0x18 }), isSlotInUse);
});

test('VpciTopology.add() rejects a requested devfn outside 0..0xff as a caller bug', () => {
  const topo = new VpciTopology<TestDevice>();
  for (const bad of [-1, 0x100, 1.5, Number.NaN]) {
    assert.throws(
      () => topo.add(testDevice('03:00.0'), 0, () => {}, { requestedDevfn: bad }),
      RangeError,
    );
  }
  assert.equal(topo.size, 0);
});

test('PassthroughTopology.add() ignores a requested devfn with a warning: the guest sees the real address', () => {
  const logger = recordingLogger();
  const topo = createTopology<TestDevice>('passthrough', { logger });
  assert.ok(topo instanceof PassthroughTopology);
  const dev = testDevice('03:00.0');
  assert.equal(topo.add(dev, 0, () => {}, { requestedDevfn: 0x40 }).toString(), '0000:03:00.0');
  const warnings = logger.at('warn');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]?.msg ?? '', /requested devfn 0x40 of "0000:03:00\.0"/);
  // No request, no warning.
  topo.add(testDevice('03:00.1'), 1, () => {});
  assert.equal(logger.at('warn').length, 1);
});
