// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { PciAddress } from '../../pci/address.js';
import { DUMPS_DIR } from '../../../test/support/paths.js';
import { FakeSysfs, fakeFunctionsFromDumpFile } from './fake-sysfs.js';
import { LinuxPciHost } from './linux-pci-host.js';
import { LinuxStubDevice } from './stub-device.js';

const NIC = PciAddress.parse('0000:03:00.0');
/** Intel 82576: MSI at 0x50, MSI-X at 0x70 (10 entries in BAR 3 at 0), PCIe with AER. */
const DUMP = join(DUMPS_DIR, 'curated', 'nic-intel-82576-8086_10c9-sriov-msix.txt');

let sysfs: FakeSysfs | undefined;
afterEach(() => {
  sysfs?.dispose();
  sysfs = undefined;
});

function open(): { fake: FakeSysfs; host: LinuxPciHost; dev: LinuxStubDevice } {
  const [spec] = fakeFunctionsFromDumpFile(DUMP);
  assert.ok(spec !== undefined);
  const fake = FakeSysfs.create({
    functions: [{ ...spec, address: NIC, driver: 'pciback' }],
    drivers: ['pciback'],
  });
  sysfs = fake;
  const host = new LinuxPciHost({ io: fake });
  return {
    fake,
    host,
    dev: new LinuxStubDevice(host.open(NIC), host.io, {
      injectBits: (at, size, bits) => {
        fake.setHardwareBits(NIC, at, size, bits);
      },
    }),
  };
}

describe('LinuxStubDevice', () => {
  test('restoreState() puts the saved config back through the sysfs config file', () => {
    const { fake, dev } = open();
    dev.writeConfig(4, 2, 0x0002); // memory decode only, as at seize
    dev.writeConfig(0x72, 2, 0x0009); // the dump has MSI-X on: off, as at seize
    const saved = dev.saveState();
    dev.writeConfig(0x0c, 1, 0x20); // cache line size
    dev.setMaster();
    dev.writeConfig(0x72, 2, 0x8000); // MSI-X enable
    assert.equal(fake.configBytes(NIC)[0x0c], 0x20);
    dev.restoreState(saved);
    const config = fake.configBytes(NIC);
    assert.equal(config[0x0c], 0x10, 'cache line size undone');
    assert.equal((config[4] ?? 0) & 0x6, 0x2, 'bus mastering undone, decode kept');
    assert.equal((config[0x73] ?? 0) & 0x80, 0, 'MSI-X enable undone');
  });

  test('saveState() keeps the MSI-X table from resource3 while MSI-X is on, and restores it', () => {
    const { fake, dev } = open();
    dev.writeConfig(4, 2, 0x0006); // memory decode, bus master
    dev.writeBarDword(3, 0, 0xfee00000);
    dev.writeBarDword(3, 8, 0x41);
    dev.writeConfig(0x72, 2, 0x8000);
    const saved = dev.saveState();
    const table = saved.msixTable;
    assert.ok(table !== undefined, 'the table is saved while MSI-X is on');
    assert.equal(table.bar, 3);
    assert.equal(table.dwords[0], 0xfee00000);
    dev.writeBarDword(3, 0, 0);
    dev.restoreState(saved);
    const entry = new DataView(fake.barBytes(NIC, 3, 0, 16).slice().buffer);
    assert.equal(entry.getUint32(0, true), 0xfee00000);
    assert.equal(entry.getUint32(8, true), 0x41);
  });

  test('writeBarDword() lands in the resource<N> file at the table offset', () => {
    const { fake, dev } = open();
    dev.writeBarDword(3, 16 * 2 + 12, 1);
    assert.deepEqual([...fake.barBytes(NIC, 3, 16 * 2 + 12, 4)], [1, 0, 0, 0]);
    assert.equal(dev.readBarDword(3, 16 * 2 + 12), 1);
    assert.equal(dev.readBarDword(2, 0), 0xffffffff, 'BAR 2 has no memory file');
  });

  test('injectAerError() sets AER status and Device Status in config space', () => {
    const { fake, dev } = open();
    const event = dev.injectAerError({ uncorrectable: 0x4000 }); // completion timeout
    assert.equal(event.nonFatal, 0x4000);
    assert.equal(event.fatal, 0);
    const config = new DataView(fake.configBytes(NIC).buffer);
    assert.equal(config.getUint32(0x100 + 4, true) & 0x4000, 0x4000, 'AER uncorrectable status');
    assert.equal(config.getUint16(0xa0 + 10, true) & 0x2, 0x2, 'Device Status NFED');
  });

  test('injectAerError() without an injector is NOT_SUPPORTED (a real host)', () => {
    const { host } = open();
    const dev = new LinuxStubDevice(host.open(NIC), host.io);
    assert.throws(() => dev.injectAerError({ uncorrectable: 0x4000 }), /aer-inject/);
  });
});
