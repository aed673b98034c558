// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPcibackError } from '../../errors.js';
import { PciAddress } from '../../pci/address.js';
import { FakeSysfs, type FakePciFunctionSpec } from './fake-sysfs.js';
import { LinuxPciHost } from './linux-pci-host.js';
import {
  STUB_DRIVERS,
  chooseStubDriver,
  iommuGroupPeers,
  iommuGroupWarning,
  isStubDriverName,
} from './stub-driver.js';

const hostWith = (drivers: string[]): { drivers(): readonly string[] } => ({
  drivers: () => drivers,
});

test('chooseStubDriver() prefers pciback, then vfio-pci, then pci-stub', () => {
  assert.equal(chooseStubDriver(hostWith(['nvme', 'pci-stub', 'vfio-pci', 'pciback'])), 'pciback');
  assert.equal(chooseStubDriver(hostWith(['pci-stub', 'vfio-pci'])), 'vfio-pci');
  assert.equal(chooseStubDriver(hostWith(['pci-stub'])), 'pci-stub');
  assert.deepEqual([...STUB_DRIVERS], ['pciback', 'vfio-pci', 'pci-stub']);
});

test('chooseStubDriver() takes a loaded preferred stub and names the module of a missing one', () => {
  assert.equal(chooseStubDriver(hostWith(['pciback', 'pci-stub']), 'pci-stub'), 'pci-stub');
  assert.throws(
    () => chooseStubDriver(hostWith(['pci-stub']), 'pciback'),
    (err: unknown) =>
      isPcibackError(err, 'NO_SUCH_DRIVER') &&
      err.message ===
        'Cannot use stub driver "pciback": it is not loaded (no bus/pci/drivers/pciback): run "modprobe xen-pciback"',
  );
  assert.throws(() => chooseStubDriver(hostWith(['nvme']), 'nvme'), {
    name: 'RangeError',
    message: /Cannot use "nvme" as the stub driver/,
  });
});

test('chooseStubDriver() without any stub says which modules to load', () => {
  assert.throws(
    () => chooseStubDriver(hostWith(['nvme', 'igb'])),
    (err: unknown) =>
      isPcibackError(err, 'NO_SUCH_DRIVER') &&
      /modprobe xen-pciback/.test(err.message) &&
      /modprobe vfio-pci/.test(err.message) &&
      /modprobe pci-stub/.test(err.message),
  );
  assert.equal(isStubDriverName('vfio-pci'), true);
  assert.equal(isStubDriverName('igb'), false);
});

test('chooseStubDriver() reads the drivers of a real sysfs tree', () => {
  const sysfs = FakeSysfs.create({
    functions: [{ address: '0000:00:02.0', simple: { vendorId: 1, deviceId: 2, classCode: 0 } }],
    drivers: ['pci-stub', 'vfio-pci'],
  });
  try {
    assert.equal(chooseStubDriver(new LinuxPciHost({ io: sysfs })), 'vfio-pci');
  } finally {
    sysfs.dispose();
  }
});

function groupMachine(): FakePciFunctionSpec[] {
  const simple = { vendorId: 0x8086, deviceId: 0x1234, classCode: 0x040300 };
  return [
    { address: '0000:00:1f.0', simple, driver: 'lpc_ich', iommuGroup: 9 },
    { address: '0000:00:1f.3', simple, driver: 'snd_hda_intel', iommuGroup: 9 },
    { address: '0000:00:1f.4', simple, iommuGroup: 9 },
    { address: '0000:00:02.0', simple, driver: 'i915', iommuGroup: 1 },
    { address: '0000:00:03.0', simple },
  ];
}

test('iommuGroupPeers() lists the other members of the group with their drivers, in bus order', () => {
  const sysfs = FakeSysfs.create({ functions: groupMachine() });
  try {
    const host = new LinuxPciHost({ io: sysfs });
    const audio = PciAddress.parse('0000:00:1f.3');
    const peers = iommuGroupPeers(host, audio);
    assert.deepEqual(
      peers.map((p) => [p.address.toString(), p.driver]),
      [
        ['0000:00:1f.0', 'lpc_ich'],
        ['0000:00:1f.4', null],
      ],
    );
    assert.equal(
      iommuGroupWarning({ address: audio, iommuGroup: 9 }, peers),
      'Other members of IOMMU group 9 stay in dom0 while "0000:00:1f.3" is passed through: ' +
        '"0000:00:1f.0" (driver "lpc_ich"), "0000:00:1f.4" (no driver)',
    );
    assert.deepEqual(
      iommuGroupPeers(host, PciAddress.parse('0000:00:02.0')),
      [],
      'alone in its group',
    );
    const gpu = host.info(PciAddress.parse('0000:00:02.0'));
    assert.ok(gpu);
    assert.equal(iommuGroupWarning(gpu, []), undefined);
    assert.equal(
      iommuGroupWarning({ address: audio, iommuGroup: null }, peers),
      undefined,
      'no group, no warning',
    );
    assert.deepEqual(iommuGroupPeers(host, PciAddress.parse('0000:00:03.0')), [], 'no IOMMU group');
    assert.throws(
      () => iommuGroupPeers(host, PciAddress.parse('0000:09:00.0')),
      (err: unknown) =>
        isPcibackError(err, 'NO_SUCH_DEVICE') && /"0000:09:00\.0"/.test(err.message),
    );
  } finally {
    sysfs.dispose();
  }
});
