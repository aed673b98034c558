// SPDX-License-Identifier: MIT
// The virtualizer over the config space of a real device (Intel 82576 NIC, sysfs dump
// from ../shared/oracles): chain 0x40 PM -> 0x50 MSI -> 0x70 MSI-X (enabled) -> 0xa0 PCIe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryHostDevice } from '../../../test/support/memory-host-device.js';
import { DUMPS_DIR } from '../../../test/support/paths.js';
import { EMPTY_RESOURCE, IORESOURCE } from '../../pci/resource.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

const DUMP = join(DUMPS_DIR, 'curated', 'nic-intel-82576-8086_10c9-sriov-msix.bin');

function load() {
  const dev = new MemoryHostDevice({
    config: new Uint8Array(readFileSync(DUMP)),
    irq: 16,
    resources: [
      { start: 0xe0800000n, sizeBytes: 0x20000n, flags: IORESOURCE.MEM },
      { start: 0xe0000000n, sizeBytes: 0x400000n, flags: IORESOURCE.MEM },
      { start: 0x1020n, sizeBytes: 0x20n, flags: IORESOURCE.IO | 1 },
      { start: 0xe0840000n, sizeBytes: 0x4000n, flags: IORESOURCE.MEM },
      EMPTY_RESOURCE,
      EMPTY_RESOURCE,
      { start: 0xc7800000n, sizeBytes: 0x400000n, flags: IORESOURCE.MEM },
    ],
  });
  const space = VirtualConfigSpace.create(dev, {
    global: { permissive: false },
    policy: { permissive: false, allowInterruptControl: true },
  });
  return { dev, space };
}

test(
  'Intel 82576: fields cover PM, MSI and MSI-X; the VPD-looking byte at 0xe0 is off-chain',
  { skip: !existsSync(DUMP) },
  () => {
    const { space } = load();
    const caps = space
      .fields()
      .filter((f) => f.name === 'cap-header')
      .map((f) => f.byteOffset);
    assert.deepEqual(caps, [0x40, 0x50, 0x70]);
    assert.equal(
      space.fields().some((f) => f.byteOffset === 0xe2),
      false,
    );
  },
);

test(
  'Intel 82576: the guest view virtualizes IDs, command, BARs, line and PMC',
  { skip: !existsSync(DUMP) },
  () => {
    const { space, dev } = load();
    assert.equal(space.read(0x00, 4).value, 0x10c98086);
    // Hardware command 0x0407 at seize time is the initial virtual value.
    assert.equal(space.read(0x04, 2).value, 0x0407);
    assert.equal(space.read(0x10, 4).value, 0xe0800000);
    assert.equal(space.read(0x18, 4).value, 0x00001021);
    assert.equal(space.read(0x3c, 2).value, 0x0110);
    assert.equal(dev.peek(0x42, 2), 0xc823);
    assert.equal(space.read(0x42, 2).value, 0x0023);
    // PCIe capability: raw.
    assert.equal(space.read(0xa0, 4).value, dev.peek(0xa0, 4));
  },
);

test(
  'Intel 82576: MSI-X is on in hardware, so enabling MSI answers -3 even with the flag',
  { skip: !existsSync(DUMP) },
  () => {
    const { space, dev } = load();
    const msiFlags = dev.peek(0x52, 2);
    assert.equal(space.write(0x52, 2, msiFlags | 1), -3);
    // Disabling MSI-X and masking it are fine.
    assert.equal(space.write(0x72, 2, dev.peek(0x72, 2) | 0x4000), 0);
    assert.equal(space.write(0x72, 2, dev.peek(0x72, 2) & ~0x8000), 0);
    assert.equal(space.write(0x52, 2, msiFlags | 1), 0);
  },
);
