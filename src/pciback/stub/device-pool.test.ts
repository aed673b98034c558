// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PCI_COMMAND_MEMORY, PCI_COMMAND_OFFSET } from '../../abi/pci-regs.js';
import { isPcibackError } from '../../errors.js';
import { PciAddress } from '../../pci/index.js';
import { domId, type DeviceOwnerRegistry, type DomId } from '../../platform/types.js';
import { recordingLogger } from '../../../test/support/memory-host-device.js';
import { deviceFixture } from '../device/test-fakes.js';
import { PciDevicePool } from './device-pool.js';

/** A device-owner registry with the platform's return codes. */
function owners(): DeviceOwnerRegistry & { readonly map: Map<string, DomId> } {
  const map = new Map<string, DomId>();
  return {
    map,
    register(address, domid) {
      if (map.has(address.toString())) return -17;
      map.set(address.toString(), domid);
      return 0;
    },
    find: (address) => map.get(address.toString()),
    unregister: (address) => (map.delete(address.toString()) ? 0 : -2),
  };
}

const A = PciAddress.parse('0000:03:00.0');
const B = PciAddress.parse('0000:04:00.1');

test('PciDevicePool.claim() hands out a seized device once and refuses unknown addresses', () => {
  const pool = new PciDevicePool({ owners: owners() });
  const dev = deviceFixture({ address: A }).dev;
  pool.add(dev);
  assert.equal(pool.claim(B, domId(5)), undefined, 'not seized');
  assert.equal(pool.claim(A, domId(5)), dev);
  assert.equal(pool.userOf(A), 5);
  assert.equal(pool.claim(A, domId(5)), undefined, 'in use, even by the same domain');
  assert.equal(pool.claim(A, domId(6)), undefined, 'in use');
});

test('PciDevicePool.release() resets the device, clears allow_interrupt_control, unregisters the owner and frees it', () => {
  const reg = owners();
  const pool = new PciDevicePool({ owners: reg });
  const fx = deviceFixture({ address: A });
  pool.add(fx.dev);
  assert.equal(pool.claim(A, domId(5)), fx.dev);
  reg.register(A, domId(5));
  // The guest enabled decoding (pci_enable_device) and MSI; the device is permissive.
  assert.equal(fx.dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY), 0);
  assert.equal(fx.host.isEnabled(), true);
  assert.equal(fx.msi.enableMsi(1), 0);
  fx.dev.config.policy.allowInterruptControl = true;
  fx.dev.config.policy.permissive = true;

  pool.release(fx.dev);
  assert.equal(fx.host.isEnabled(), false, 'resetDevice disabled it');
  assert.equal(fx.msi.msiEnabled(), false, 'resetDevice turned MSI off');
  assert.equal(fx.dev.config.policy.allowInterruptControl, false);
  assert.equal(fx.dev.config.policy.permissive, true, 'permissive is never cleared (§3.2)');
  assert.equal(reg.find(A), undefined);
  assert.equal(pool.userOf(A), null);
  assert.equal(pool.claim(A, domId(6)), fx.dev, 'free for the next guest');
});

test('PciDevicePool.release() only warns for a device it does not hold or that nobody claimed', () => {
  const logger = recordingLogger();
  const pool = new PciDevicePool({ owners: owners(), logger });
  const held = deviceFixture({ address: A });
  const stranger = deviceFixture({ address: A }).dev; // same address, another object
  pool.add(held.dev);
  assert.equal(held.dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY), 0);
  pool.release(held.dev);
  pool.release(stranger);
  assert.equal(logger.at('warn').length, 2);
  assert.equal(held.host.isEnabled(), true, 'nothing was reset');
});

test('PciDevicePool.add() refuses a second device at one address; list() is in address order with users', () => {
  const pool = new PciDevicePool({ owners: owners() });
  const b = deviceFixture({ address: B }).dev;
  const a = deviceFixture({ address: A }).dev;
  pool.add(b);
  pool.add(a);
  assert.throws(
    () => {
      pool.add(deviceFixture({ address: A }).dev);
    },
    (e: unknown) => isPcibackError(e, 'DEVICE_ALREADY_SEIZED'),
  );
  pool.claim(B, domId(7));
  assert.deepEqual(
    pool.list().map((e) => [e.address.toString(), e.user]),
    [
      ['0000:03:00.0', null],
      ['0000:04:00.1', 7],
    ],
  );
  assert.equal(pool.size, 2);
  assert.equal(pool.get(A), a);
});
