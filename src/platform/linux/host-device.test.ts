// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
} from '../../abi/pci-regs.js';
import { isPcibackError } from '../../errors.js';
import { PciAddress } from '../../pci/address.js';
import { ConfigSpace } from '../../pci/config-space.js';
import { IORESOURCE } from '../../pci/resource.js';
import type { Logger } from '../types.js';
import { DUMPS_DIR } from '../../../test/support/paths.js';
import { FakeSysfs, type FakePciFunctionSpec } from './fake-sysfs.js';
import { LinuxHostPciDevice } from './host-device.js';

const NIC = PciAddress.parse('0000:01:00.0');
const OLD = PciAddress.parse('0000:00:05.0'); // conventional PCI, PM capability
const STUB = PciAddress.parse('0000:00:06.0'); // held by pci-stub
const UNSET = PciAddress.parse('0000:00:07.0'); // held by pci-stub, BAR never assigned
const PLAIN = PciAddress.parse('0000:00:08.0'); // no capabilities

function specs(): FakePciFunctionSpec[] {
  const nic = readFileSync(join(DUMPS_DIR, 'curated/nic-intel-82576-8086_10c9-sriov-msix.bin'));
  return [
    { address: NIC, config: new Uint8Array(nic), irq: 16 },
    {
      address: OLD,
      simple: {
        vendorId: 0x1106,
        deviceId: 0x3038,
        classCode: 0x0c0300,
        irq: 10,
        pm: {},
        barSizes: new Map([[0, 0x1000n]]),
      },
    },
    {
      address: STUB,
      simple: {
        vendorId: 0x10ec,
        deviceId: 0x8168,
        classCode: 0x020000,
        irq: 11,
        barSizes: new Map([[2, 0x1000n]]),
      },
      driver: 'pci-stub',
    },
    {
      address: UNSET,
      simple: { vendorId: 0x10ec, deviceId: 0x8169, classCode: 0x020000 },
      resources: [{ start: 0n, sizeBytes: 0x1000n, flags: IORESOURCE.MEM | IORESOURCE.UNSET }],
      driver: 'pci-stub',
    },
    { address: PLAIN, simple: { vendorId: 0x1b36, deviceId: 0x0001, classCode: 0x088000 } },
  ];
}

interface Fixture {
  sysfs: FakeSysfs;
  sleeps: number[];
  logged: { level: string; obj: object }[];
  open: (address: PciAddress) => LinuxHostPciDevice;
}

function withDevices(run: (fx: Fixture) => void, unprivileged = false): void {
  const sysfs = FakeSysfs.create({ functions: specs(), drivers: ['pci-stub'], unprivileged });
  const sleeps: number[] = [];
  const logged: { level: string; obj: object }[] = [];
  const logger: Logger = {
    debug: (obj) => logged.push({ level: 'debug', obj }),
    info: (obj) => logged.push({ level: 'info', obj }),
    warn: (obj) => logged.push({ level: 'warn', obj }),
    error: (obj) => logged.push({ level: 'error', obj }),
  };
  try {
    run({
      sysfs,
      sleeps,
      logged,
      open: (address) =>
        new LinuxHostPciDevice(sysfs, address, { logger, sleepMs: (ms) => sleeps.push(ms) }),
    });
  } finally {
    sysfs.dispose();
  }
}

const command = (sysfs: FakeSysfs, address: PciAddress): number =>
  new ConfigSpace(sysfs.configBytes(address)).command;

test('LinuxHostPciDevice reads identity, size, header type, resources and IRQ from sysfs', () => {
  withDevices(({ sysfs, open }) => {
    const nic = open(NIC);
    assert.equal(nic.vendorId, 0x8086);
    assert.equal(nic.deviceId, 0x10c9);
    assert.equal(nic.configSizeBytes, 4096);
    assert.equal(nic.headerType, 0);
    assert.equal(nic.irq(), 16);
    assert.equal(nic.sysfsDir, 'bus/pci/devices/0000:01:00.0');
    assert.equal(nic.resources()[0]?.start, 0xe0800000n);
    assert.equal(open(OLD).configSizeBytes, 256);
    assert.equal(open(STUB).kernelEnableCount(), 0);
    const removeFault = sysfs.injectFault({ path: /\/irq$/, errno: 'EIO' });
    assert.equal(nic.irq(), 16, 'the IRQ found at open when irq cannot be read');
    removeFault();
  });
});

test('readConfig() returns what the config file holds at every aligned offset and size', () => {
  withDevices(({ sysfs, open }) => {
    const nic = open(NIC);
    const image = new ConfigSpace(sysfs.configBytes(NIC));
    for (let at = 0; at < 4096; at += 4) {
      assert.deepEqual(nic.readConfig(at, 4), { value: image.read32(at), err: 0 });
    }
    for (let at = 0; at < 256; at += 2) {
      assert.deepEqual(nic.readConfig(at, 2), { value: image.read16(at), err: 0 });
    }
    for (let at = 0; at < 256; at++) {
      assert.deepEqual(nic.readConfig(at, 1), { value: image.read8(at), err: 0 });
    }
  });
});

test('readConfig() fails misaligned and out-of-range accesses with -EINVAL and all-ones', () => {
  withDevices(({ open }) => {
    const old = open(OLD);
    assert.deepEqual(old.readConfig(1, 2), { value: 0xffff, err: -22 });
    assert.deepEqual(old.readConfig(2, 4), { value: 0xffffffff, err: -22 });
    assert.deepEqual(old.readConfig(256, 1), { value: 0xff, err: -22 });
    assert.deepEqual(old.readConfig(254, 4), { value: 0xffffffff, err: -22 });
    assert.deepEqual(old.readConfig(-4, 4), { value: 0xffffffff, err: -22 });
    assert.deepEqual(old.readConfig(0, 3 as 4), { value: 0xffffffff, err: -22 });
  });
});

test('readConfig() past 64 bytes without privileges fails with -EPERM, like the kernel cut', () => {
  withDevices(({ open }) => {
    const nic = open(NIC);
    assert.deepEqual(nic.readConfig(0, 2), { value: 0x8086, err: 0 });
    assert.deepEqual(nic.readConfig(0x3c, 4).err, 0);
    assert.deepEqual(nic.readConfig(0x40, 4), { value: 0xffffffff, err: -1 });
    assert.equal(nic.writeConfig(0x04, 2, 0), -13, 'writes need root: -EACCES');
  }, true);
});

test('a failed config access gives its errno and is logged, never thrown', () => {
  withDevices(({ sysfs, open, logged }) => {
    const old = open(OLD);
    sysfs.injectFault({ path: /\/config$/, errno: 'EIO', count: 2 });
    assert.deepEqual(old.readConfig(0, 4), { value: 0xffffffff, err: -5 });
    assert.equal(old.writeConfig(4, 2, 0), -5);
    assert.equal(logged.filter((l) => l.level === 'debug').length, 2);
    assert.deepEqual(old.readConfig(0, 2), { value: 0x1106, err: 0 });
  });
});

test('writeConfig() writes little-endian at the offset and the device keeps its read-only bits', () => {
  withDevices(({ sysfs, open }) => {
    const old = open(OLD);
    assert.equal(old.writeConfig(0x0c, 1, 0x10), 0);
    assert.equal(old.readConfig(0x0c, 1).value, 0x10);
    assert.equal(old.writeConfig(0x00, 4, 0x12345678), 0);
    assert.equal(old.readConfig(0x00, 4).value, 0x30381106);
    assert.equal(old.writeConfig(0x10, 4, 0xffffffff), 0);
    assert.equal(old.readConfig(0x10, 4).value, 0xfffff000);
    assert.equal(old.writeConfig(0x101, 1, 0), -22);
    assert.equal(old.writeConfig(3, 2, 0), -22);
    const last = sysfs.writeLog().at(-1);
    assert.ok(last);
    assert.equal(last.byteOffset, 0x10);
    assert.deepEqual([...last.data], [0xff, 0xff, 0xff, 0xff]);
  });
});

test('enableDevice() on an unbound function goes through the enable file once', () => {
  withDevices(({ sysfs, open }) => {
    const old = open(OLD);
    assert.equal(old.isEnabled(), false);
    assert.equal(old.enableDevice(), 0);
    assert.equal(old.enableDevice(), 0);
    assert.equal(old.isEnabled(), true);
    assert.equal(old.enableCount, 2);
    assert.equal(sysfs.enableCount(OLD), 1, 'one kernel reference for this driver');
    assert.equal(old.kernelEnableCount(), 1);
    assert.equal(command(sysfs, OLD) & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);
    old.setMaster();
    old.disableDevice();
    assert.equal(sysfs.enableCount(OLD), 1);
    old.disableDevice();
    old.disableDevice(); // unbalanced: ignored
    assert.equal(sysfs.enableCount(OLD), 0);
    assert.equal(old.isBusMaster(), false);
    assert.equal(command(sysfs, OLD) & PCI_COMMAND_MASTER, 0);
    const enableWrites = sysfs.writeLog().filter((w) => w.path.endsWith('/enable'));
    assert.deepEqual(
      enableWrites.map((w) => w.text),
      ['1', '0'],
    );
  });
});

test('enableDevice() on a function a stub holds enables it in config space (EBUSY from enable)', () => {
  withDevices(({ sysfs, open }) => {
    const stub = open(STUB);
    assert.equal(stub.writeConfig(0x04, 2, PCI_COMMAND_INTX_DISABLE), 0);
    assert.equal(stub.enableDevice(), 0);
    assert.equal(stub.isEnabled(), true);
    assert.equal(sysfs.enableCount(STUB), 0, "the kernel count is the stub's business");
    assert.equal(sysfs.writeLog().find((w) => w.path.endsWith('/enable'))?.errno, 'EBUSY');
    const enabled = command(sysfs, STUB);
    assert.equal(enabled & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);
    assert.equal(enabled & PCI_COMMAND_INTX_DISABLE, 0, 'INTx on: it has a pin and no MSI');
    stub.setMaster();
    stub.disableDevice();
    const disabled = command(sysfs, STUB);
    assert.equal(disabled & PCI_COMMAND_MASTER, 0);
    assert.equal(disabled & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY, 'decode stays on (spec §4.7)');
    assert.equal(sysfs.writeLog().filter((w) => w.path.endsWith('/enable')).length, 1);
  });
});

test('enableDevice() refuses a BAR the kernel never assigned, and reports a refused enable file', () => {
  withDevices(({ open }) => {
    const unset = open(UNSET);
    assert.equal(unset.enableDevice(), -22);
    assert.equal(unset.isEnabled(), false);
  });
  withDevices(({ open }) => {
    const old = open(OLD);
    assert.equal(old.enableDevice(), -13);
    assert.equal(old.isEnabled(), false);
  }, true);
});

test('setMaster() raises a low latency timer on conventional PCI only, clearMaster() undoes MASTER', () => {
  withDevices(({ sysfs, open }) => {
    const old = open(OLD);
    old.setMaster();
    assert.equal(old.isBusMaster(), true);
    assert.equal(command(sysfs, OLD) & PCI_COMMAND_MASTER, PCI_COMMAND_MASTER);
    assert.equal(old.readConfig(0x0d, 1).value, 64);
    old.clearMaster();
    assert.equal(old.isBusMaster(), false);
    assert.equal(command(sysfs, OLD) & PCI_COMMAND_MASTER, 0);
    const nic = open(NIC);
    nic.writeConfig(0x0d, 1, 0);
    nic.setMaster();
    assert.equal(nic.readConfig(0x0d, 1).value, 0, 'PCIe: the latency timer is left alone');
  });
});

test('setMwi() programs the cache line size and INVALIDATE; clearMwi() and intx() flip their bits', () => {
  withDevices(({ sysfs, open }) => {
    const old = open(OLD);
    assert.equal(old.setMwi(), 0);
    assert.equal(old.readConfig(0x0c, 1).value, 16);
    assert.equal(command(sysfs, OLD) & PCI_COMMAND_INVALIDATE, PCI_COMMAND_INVALIDATE);
    old.writeConfig(0x0c, 1, 32);
    assert.equal(old.setMwi(), 0);
    assert.equal(old.readConfig(0x0c, 1).value, 32, 'a multiple of 64 bytes is kept');
    old.clearMwi();
    assert.equal(command(sysfs, OLD) & PCI_COMMAND_INVALIDATE, 0);
    old.intx(false);
    assert.equal(command(sysfs, OLD) & PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_INTX_DISABLE);
    old.intx(true);
    assert.equal(command(sysfs, OLD) & PCI_COMMAND_INTX_DISABLE, 0);
  });
});

test('setPowerState() walks D0 -> D3hot -> D0 through PMCSR with the spec delays', () => {
  withDevices(({ open, sleeps }) => {
    const old = open(OLD);
    assert.equal(old.currentPowerState(), 0);
    assert.equal(old.setPowerState(1), -5, 'D1 is not supported');
    assert.equal(old.setPowerState(3), 0);
    assert.equal(old.currentPowerState(), 3);
    assert.equal(old.setPowerState(1), -22, 'no way from D3hot to D1');
    assert.equal(old.setPowerState(3), 0, 'already there');
    // The reset of D3hot -> D0 lost the BAR; pci_restore_bars writes it back.
    const bar0 = old.readConfig(0x10, 4).value;
    old.writeConfig(0x10, 4, 0);
    assert.equal(old.setPowerState(0), 0);
    assert.equal(old.currentPowerState(), 0);
    assert.equal(old.readConfig(0x10, 4).value, bar0);
    assert.deepEqual(sleeps, [10, 10]);
    assert.equal(old.setPowerState(4 as 3), -22);
  });
});

test('setPowerState() without a PM capability allows only D0', () => {
  withDevices(({ open }) => {
    const plain = open(PLAIN);
    assert.equal(plain.setPowerState(0), 0);
    assert.equal(plain.setPowerState(3), -5);
    assert.equal(plain.currentPowerState(), 0);
  });
});

test('LinuxHostPciDevice refuses a missing function and names a function it cannot read', () => {
  withDevices(({ sysfs, open }) => {
    assert.throws(
      () => open(PciAddress.parse('0000:09:00.0')),
      (err: unknown) =>
        isPcibackError(err, 'NO_SUCH_DEVICE') &&
        /"0000:09:00\.0": it does not exist/.test(err.message),
    );
    sysfs.injectFault({ path: /\/vendor$/, errno: 'EIO', count: 1 });
    assert.throws(
      () => open(OLD),
      (err: unknown) =>
        isPcibackError(err, 'HOST_IO') &&
        /^Cannot open PCI device "0000:00:05\.0": Cannot read/.test(err.message),
    );
  });
});
