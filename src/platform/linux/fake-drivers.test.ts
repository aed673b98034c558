// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PciAddress } from '../../pci/address.js';
import {
  FAKE_STUB_DRIVERS,
  driverMatches,
  idMatches,
  parseDynamicId,
  removeIdMatches,
  type FakeProbeView,
} from './fake-drivers.js';

const NIC: FakeProbeView = {
  address: PciAddress.parse('0000:03:00.0'),
  vendorId: 0x8086,
  deviceId: 0x10c9,
  subsystemVendorId: 0x8086,
  subsystemDeviceId: 0xa03c,
  classCode: 0x020000,
  headerType: 0,
  iommuGroup: 7,
  driverOverride: null,
  path: [PciAddress.parse('0000:03:00.0'), PciAddress.parse('0000:00:1c.0')],
};

test('parseDynamicId() reads new_id text as sscanf("%x %x %x %x %x %x %lx") does', () => {
  assert.deepEqual(parseDynamicId('8086 10c9\n'), {
    fields: 2,
    id: { vendor: 0x8086, device: 0x10c9 },
  });
  assert.deepEqual(parseDynamicId('8086 10c9 ffffffff a03c 020000 ffff00'), {
    fields: 6,
    id: {
      vendor: 0x8086,
      device: 0x10c9,
      subdevice: 0xa03c,
      classCode: 0x020000,
      classMask: 0xffff00,
    },
  });
  assert.equal(parseDynamicId('8086'), undefined);
  assert.equal(parseDynamicId('zz 10c9'), undefined);
  assert.equal(parseDynamicId(''), undefined);
});

test('idMatches() treats absent fields as PCI_ANY_ID and compares the class under its mask', () => {
  assert.equal(idMatches({}, NIC), true);
  assert.equal(idMatches({ vendor: 0x8086, device: 0x10c9 }, NIC), true);
  assert.equal(idMatches({ vendor: 0x8086, device: 0x10ca }, NIC), false);
  assert.equal(idMatches({ subdevice: 0xa03d }, NIC), false);
  assert.equal(idMatches({ classCode: 0x020000, classMask: 0xff0000 }, NIC), true);
  assert.equal(idMatches({ classCode: 0x010000, classMask: 0xff0000 }, NIC), false);
  // A class without a mask matches anything (class_mask 0).
  assert.equal(idMatches({ classCode: 0x010000 }, NIC), true);
});

test('driverMatches() honours driver_override before any ID, as pci_match_device does', () => {
  const nvme = {
    name: 'nvme',
    ids: [{ classCode: 0x010802, classMask: 0xffffff }],
    dynamicIds: [],
  };
  const igb = { name: 'igb', ids: [{ vendor: 0x8086, device: 0x10c9 }], dynamicIds: [] };
  assert.equal(driverMatches(igb, NIC), true);
  assert.equal(driverMatches(nvme, NIC), false);
  const overridden = { ...NIC, driverOverride: 'nvme' };
  assert.equal(driverMatches(nvme, overridden), true, 'the override matches with any ID');
  assert.equal(driverMatches(igb, overridden), false, 'and no other driver matches');
});

test('driverMatches() uses dynamic IDs and skips override-only entries without an override', () => {
  const vfio = FAKE_STUB_DRIVERS['vfio-pci'];
  const state = {
    name: vfio.name,
    ids: vfio.ids ?? [],
    dynamicIds: [] as { vendor: number; device: number }[],
  };
  assert.equal(driverMatches(state, NIC), false);
  assert.equal(driverMatches(state, { ...NIC, driverOverride: 'vfio-pci' }), true);
  state.dynamicIds.push({ vendor: 0x8086, device: 0x10c9 });
  assert.equal(driverMatches(state, NIC), true);
});

test('the stub presets probe like the kernel drivers', () => {
  const pciback = FAKE_STUB_DRIVERS.pciback;
  assert.equal(pciback.probe?.(NIC), undefined);
  assert.equal(pciback.probe?.({ ...NIC, headerType: 2 }), 'ENODEV');
  const vfioProbe = FAKE_STUB_DRIVERS['vfio-pci'].probe;
  assert.ok(vfioProbe);
  assert.equal(vfioProbe(NIC), undefined);
  assert.equal(vfioProbe({ ...NIC, iommuGroup: null }), 'EINVAL');
  assert.equal(vfioProbe({ ...NIC, headerType: 1 }), 'EINVAL');
  assert.equal(FAKE_STUB_DRIVERS['pci-stub'].probe, undefined);
});

test('removeIdMatches() follows remove_id_store: wildcards in the pattern, exact vendor and device', () => {
  const entry = { vendor: 0x8086, device: 0x10c9, subvendor: 0x8086, subdevice: 0xa03c };
  assert.equal(removeIdMatches(entry, { vendor: 0x8086, device: 0x10c9 }), true);
  assert.equal(removeIdMatches(entry, { vendor: 0x8086, device: 0x10c9, subdevice: 0xa03c }), true);
  assert.equal(
    removeIdMatches(entry, { vendor: 0x8086, device: 0x10c9, subdevice: 0x0001 }),
    false,
  );
  assert.equal(removeIdMatches(entry, { vendor: 0x8086, device: 0x10ca }), false);
});
