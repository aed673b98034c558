// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PciAddress } from '../../../pci/address.js';
import { domId } from '../../types.js';
import { SimDeviceOwners } from './device-owners.js';

const A = PciAddress.parse('0000:03:00.0');
const B = PciAddress.parse('0000:03:00.1');

test('SimDeviceOwners.register() gives a device one owner and refuses a second with EEXIST', () => {
  const owners = new SimDeviceOwners();
  assert.equal(owners.register(A, domId(5)), 0);
  assert.equal(owners.register(PciAddress.parse('03:00.0'), domId(6)), -17);
  assert.equal(owners.find(A), 5);
  assert.equal(owners.find(B), undefined);
  assert.equal(owners.register(B, domId(6)), 0);
  assert.deepEqual(
    [...owners.entries()],
    [
      ['0000:03:00.0', 5],
      ['0000:03:00.1', 6],
    ],
  );
});

test('SimDeviceOwners.unregister() frees the device and answers ENOENT when it had no owner', () => {
  const owners = new SimDeviceOwners();
  assert.equal(owners.unregister(A), -2);
  owners.register(A, domId(5));
  assert.equal(owners.unregister(A), 0);
  assert.equal(owners.find(A), undefined);
  assert.equal(owners.unregister(A), -2);
  assert.equal(owners.register(A, domId(7)), 0);
  assert.equal(owners.find(A), 7);
});
