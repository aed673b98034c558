// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { PCI_CAP_ID } from '../../abi/pci-regs.js';
import { findCapability } from '../../pci/capabilities.js';
import { ConfigSpace } from '../../pci/config-space.js';
import { parseDumpFile, type DeviceDump } from '../../pci/dump.js';
import { IORESOURCE } from '../../pci/resource.js';
import { DUMPS_DIR } from '../../../test/support/paths.js';
import {
  IORESOURCE_READONLY,
  IORESOURCE_SIZEALIGN,
  applyConfigWrite,
  buildSimpleConfig,
  configWriteMasks,
  decodeResources,
  padConfig,
  probeResetMethods,
} from './fake-config.js';

function dumpsOf(relative: string): DeviceDump[] {
  return parseDumpFile(new Uint8Array(readFileSync(join(DUMPS_DIR, relative))), relative);
}

function dumpAt(relative: string, slot: string): DeviceDump {
  const dump = dumpsOf(relative).find((d) => d.address.toShortString() === slot);
  assert.ok(dump, `${slot} is in ${relative}`);
  return dump;
}

test('buildSimpleConfig() writes the IDs, class, header and size-aligned BARs', () => {
  const config = buildSimpleConfig(
    {
      vendorId: 0x8086,
      deviceId: 0x10c9,
      classCode: 0x020000,
      revision: 1,
      subsystemVendorId: 0x8086,
      subsystemDeviceId: 0xa03c,
      irq: 11,
      barSizes: new Map([
        [0, 0x20000n],
        [3, 0x4000n],
      ]),
    },
    0xe0001000n,
  );
  const cs = new ConfigSpace(config);
  assert.equal(config.length, 256);
  assert.equal(cs.vendorId, 0x8086);
  assert.equal(cs.deviceId, 0x10c9);
  assert.equal(cs.classCode, 0x020000);
  assert.equal(cs.revision, 1);
  assert.equal(cs.subsystemVendorId, 0x8086);
  assert.equal(cs.subsystemId, 0xa03c);
  assert.equal(cs.interruptLine, 11);
  assert.equal(cs.interruptPin, 1);
  assert.equal(cs.bar(0), 0xe0020000); // aligned up to 128 KiB
  assert.equal(cs.bar(3), 0xe0040000);
  assert.equal(cs.bar(1), 0);
});

test('buildSimpleConfig() adds PM and PCIe capabilities and bridge bus numbers', () => {
  const config = buildSimpleConfig({
    vendorId: 0x10b5,
    deviceId: 0x8796,
    classCode: 0x060400,
    headerType: 1,
    secondaryBus: 4,
    subordinateBus: 6,
    pm: { noSoftReset: true },
    pcie: { flr: false },
  });
  const cs = new ConfigSpace(config);
  assert.equal(config.length, 4096);
  assert.equal(cs.headerType, 1);
  assert.equal(cs.read8(0x19), 4);
  assert.equal(cs.read8(0x1a), 6);
  assert.equal(findCapability(cs, PCI_CAP_ID.PM), 0x40);
  assert.equal(findCapability(cs, PCI_CAP_ID.EXP), 0x50);
});

test('buildSimpleConfig() refuses a BAR size that is not a power of two', () => {
  assert.throws(
    () =>
      buildSimpleConfig({
        vendorId: 1,
        deviceId: 2,
        classCode: 0,
        barSizes: new Map([[0, 3000n]]),
      }),
    { name: 'RangeError', message: /BAR 0 of 3000 bytes/ },
  );
  assert.throws(
    () =>
      buildSimpleConfig({
        vendorId: 1,
        deviceId: 2,
        classCode: 0,
        barSizes: new Map([[6, 4096n]]),
      }),
    RangeError,
  );
});

test('padConfig() pads a header-only dump to 256 bytes', () => {
  const padded = padConfig(Uint8Array.from({ length: 64 }, () => 0xab));
  assert.equal(padded.length, 256);
  assert.equal(padded[63], 0xab);
  assert.equal(padded[64], 0);
});

test('decodeResources() gives the sizes lspci printed, with the kernel flags of each BAR kind', () => {
  const virtio = dumpAt('pciutils/cap-vendor-virtio', '00:09.0');
  const resources = decodeResources(virtio.config, virtio.barSizes);
  assert.deepEqual(resources[0], {
    start: 0xc060n,
    sizeBytes: 32n,
    flags: IORESOURCE.IO | 0x1 | IORESOURCE_SIZEALIGN,
  });
  assert.deepEqual(resources[1], {
    start: 0xfebd6000n,
    sizeBytes: 4096n,
    flags: IORESOURCE.MEM | IORESOURCE_SIZEALIGN,
  });
  assert.equal(resources[2]?.sizeBytes, 512n * 1024n);
  const rom = resources[6];
  assert.ok(rom);
  assert.equal(rom.start, 0xfeb80000n);
  assert.equal(rom.sizeBytes, 256n * 1024n);
  assert.equal(
    rom.flags,
    IORESOURCE.MEM | IORESOURCE.PREFETCH | IORESOURCE_READONLY | IORESOURCE_SIZEALIGN,
  );
  const fs = dumpAt('pciutils/cap-vendor-virtio', '00:04.0');
  const bar2 = decodeResources(fs.config, fs.barSizes)[2];
  assert.ok(bar2);
  assert.equal(bar2.start, 0x200000000n);
  assert.equal(bar2.sizeBytes, 1n << 30n);
  assert.ok((bar2.flags & IORESOURCE.MEM_64) !== 0);
  assert.ok((bar2.flags & IORESOURCE.PREFETCH) !== 0);
  assert.equal(
    decodeResources(fs.config, fs.barSizes)[3]?.flags,
    0,
    'the upper half is no resource',
  );
});

test('decodeResources() guesses a size from the alignment when the dump has none', () => {
  const config = buildSimpleConfig(
    { vendorId: 1, deviceId: 2, classCode: 0, barSizes: new Map([[0, 256n]]) },
    0xf0000100n,
  );
  const [bar0] = decodeResources(config);
  assert.ok(bar0);
  assert.equal(bar0.start, 0xf0000100n);
  assert.equal(bar0.sizeBytes, 256n);
});

test('probeResetMethods() finds what pci_init_reset_methods would, in the kernel order', () => {
  const flrPm = buildSimpleConfig({
    vendorId: 1,
    deviceId: 2,
    classCode: 0,
    pm: {},
    pcie: { flr: true },
  });
  assert.deepEqual(probeResetMethods(flrPm, { onRootBus: false, hasSiblings: false }), [
    'flr',
    'pm',
    'bus',
  ]);
  assert.deepEqual(probeResetMethods(flrPm, { onRootBus: true, hasSiblings: false }), [
    'flr',
    'pm',
  ]);
  assert.deepEqual(probeResetMethods(flrPm, { onRootBus: false, hasSiblings: true }), [
    'flr',
    'pm',
  ]);
  const noSoftReset = buildSimpleConfig({
    vendorId: 1,
    deviceId: 2,
    classCode: 0,
    pm: { noSoftReset: true },
  });
  assert.deepEqual(probeResetMethods(noSoftReset, { onRootBus: true, hasSiblings: false }), []);
  const af = dumpAt(
    'pciutils/cap-pci-af',
    dumpsOf('pciutils/cap-pci-af')[0]?.address.toShortString() ?? '',
  );
  assert.ok(
    probeResetMethods(af.config, { onRootBus: true, hasSiblings: true }).includes('af_flr'),
  );
  const bridge = buildSimpleConfig({
    vendorId: 1,
    deviceId: 2,
    classCode: 0x060400,
    headerType: 1,
  });
  assert.deepEqual(probeResetMethods(bridge, { onRootBus: false, hasSiblings: false }), []);
});

test('configWriteMasks() keeps IDs and capability headers, sizes BARs and clears RW1C bits', () => {
  const nic = dumpAt('pciutils/cap-pcie-2', '01:00.0');
  const config = padConfig(nic.config);
  const resources = decodeResources(config, nic.barSizes);
  const masks = configWriteMasks(config, resources);
  const cs = (): ConfigSpace => new ConfigSpace(config);
  const write = (at: number, bytes: number[]): void => {
    applyConfigWrite(config, masks, { byteOffset: at, data: Uint8Array.from(bytes) });
  };
  write(0, [0, 0, 0, 0]);
  assert.equal(cs().vendorId, 0x8086, 'vendor ID is read-only');
  write(4, [0x06, 0x04]);
  assert.equal(cs().command, 0x0406);
  // BAR sizing: all-ones reads back the size mask.
  write(0x10, [0xff, 0xff, 0xff, 0xff]);
  assert.equal(cs().bar(0), (~(128 * 1024 - 1) & 0xfffffff0) >>> 0);
  const io = cs().bar(2);
  write(0x18, [0xff, 0xff, 0xff, 0xff]);
  assert.equal(cs().bar(2) & 0x3, io & 0x3, 'the I/O indicator bit stays');
  // Status error bits are write-one-to-clear; CAP_LIST is read-only.
  config[0x07] = 0xf9;
  write(0x06, [0xff, 0x20]);
  assert.equal(cs().status, 0xd910 & ~0x2000 & 0xffff, 'only the written 1 bits clear');
  const pm = findCapability(cs(), PCI_CAP_ID.PM);
  assert.ok(pm !== undefined);
  const next = cs().read8(pm + 1);
  write(pm, [0x55, 0x66]);
  assert.equal(cs().read8(pm), PCI_CAP_ID.PM);
  assert.equal(cs().read8(pm + 1), next);
  write(pm + 4, [0x03, 0x00]);
  assert.equal(cs().read16(pm + 4) & 0x3, 3, 'the power state is writable');
});

test('a config write never changes bits outside the writable and RW1C masks', () => {
  const dumps = [
    dumpAt('pciutils/cap-pcie-2', '01:00.0'),
    dumpAt('pciutils/cap-vendor-virtio', '00:09.0'),
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...dumps),
      fc.integer({ min: 0, max: 4095 }),
      fc.uint8Array({ minLength: 1, maxLength: 4 }),
      (dump, at, data) => {
        const config = padConfig(dump.config);
        const masks = configWriteMasks(config, decodeResources(config, dump.barSizes));
        const before = config.slice();
        const offset = at % config.length;
        applyConfigWrite(config, masks, { byteOffset: offset, data });
        for (let i = 0; i < config.length; i++) {
          const changed = (before[i] ?? 0) ^ (config[i] ?? 0);
          const allowed = (masks.writable[i] ?? 0) | (masks.rw1c[i] ?? 0);
          if ((changed & ~allowed) !== 0) return false;
          if (i < offset || i >= offset + data.length) {
            if (changed !== 0) return false;
          }
        }
        return true;
      },
    ),
    { numRuns: 500 },
  );
});
