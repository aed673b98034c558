// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PciAddress } from '../../pci/address.js';
import { channelFixture } from '../channel/channel-test-helpers.js';
import { isAerChannel, xenbusAerLookup, type AerXenbusDevice } from './index.js';

const NIC = PciAddress.parse('0000:03:00.0');
const GPU = PciAddress.parse('0000:04:00.0');

function stub(users: Map<number, number | null>) {
  return {
    get: (address: PciAddress) => (users.has(address.key) ? { address } : undefined),
    userOf: (address: PciAddress) => users.get(address.key) ?? null,
  };
}

function connection(
  frontendDomid: number,
  holds: readonly PciAddress[],
  channel: object | undefined,
): AerXenbusDevice {
  return {
    frontendDomid,
    topology: {
      find: (dev) =>
        holds.some((a) => a.equals(dev.address)) ? new PciAddress(0, 0, 0, 0) : undefined,
    },
    channel,
  };
}

test('xenbusAerLookup() finds nothing for a device pciback has not seized', () => {
  const lookup = xenbusAerLookup(stub(new Map()), { devices: () => [] });
  assert.equal(lookup.find(NIC), undefined);
});

test('xenbusAerLookup() reports a seized but free device as not assigned', () => {
  const lookup = xenbusAerLookup(stub(new Map([[NIC.key, null]])), { devices: () => [] });
  assert.deepEqual(lookup.find(NIC), { device: { address: NIC }, connection: undefined });
});

test('xenbusAerLookup() gives the connected channel of the connection whose topology holds the device', () => {
  const { chan } = channelFixture();
  const lookup = xenbusAerLookup(
    stub(
      new Map([
        [NIC.key, 5],
        [GPU.key, 6],
      ]),
    ),
    { devices: () => [connection(6, [GPU], undefined), connection(5, [NIC], chan)] },
  );
  assert.deepEqual(lookup.find(NIC)?.connection, { frontendDomid: 5, channel: chan });
  // The GPU's connection exists but is not connected: no shared page.
  assert.deepEqual(lookup.find(GPU)?.connection, { frontendDomid: 6, channel: undefined });
  chan.disconnect();
  assert.deepEqual(lookup.find(NIC)?.connection, { frontendDomid: 5, channel: undefined });
});

test('xenbusAerLookup() falls back to the claiming domain when no topology holds the device', () => {
  const lookup = xenbusAerLookup(stub(new Map([[NIC.key, 7]])), { devices: () => [] });
  assert.deepEqual(lookup.find(NIC)?.connection, { frontendDomid: 7, channel: undefined });
});

test('isAerChannel() accepts a PcibackChannel and refuses other objects', () => {
  assert.equal(isAerChannel(channelFixture().chan), true);
  assert.equal(isAerChannel({ disconnect() {}, stats() {} }), false);
  assert.equal(isAerChannel(undefined), false);
});
