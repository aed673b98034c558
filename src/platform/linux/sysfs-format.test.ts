// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IORESOURCE } from '../../pci/resource.js';
import {
  baseName,
  formatHexAttribute,
  formatResourceLine,
  isPciSlotName,
  parseDecimalAttribute,
  parseDriverOverride,
  parseHexAttribute,
  parseResetMethods,
  parseResourceFile,
  upstreamBridgeFromPath,
} from './sysfs-format.js';

// A virtio-pci device's `resource` as a 6.x kernel prints it (a 64-bit prefetchable-less
// memory BAR 4 and nothing else; x86-64 without SR-IOV prints 7 lines).
const VIRTIO_RESOURCE = [
  '0x0000000000000000 0x0000000000000000 0x0000000000000000',
  '0x0000000000000000 0x0000000000000000 0x0000000000000000',
  '0x0000000000000000 0x0000000000000000 0x0000000000000000',
  '0x0000000000000000 0x0000000000000000 0x0000000000000000',
  '0x0000004000000000 0x000000400007ffff 0x0000000000140204',
  '0x0000000000000000 0x0000000000000000 0x0000000000000000',
  '0x0000000000000000 0x0000000000000000 0x0000000000000000',
].join('\n');

test('parseResourceFile() reads a real resource file: sizes are end - start + 1', () => {
  const resources = parseResourceFile(`${VIRTIO_RESOURCE}\n`);
  assert.equal(resources.length, 7);
  const bar4 = resources[4];
  assert.deepEqual(bar4, { start: 0x4000000000n, sizeBytes: 0x80000n, flags: 0x140204 });
  for (const index of [0, 1, 2, 3, 5, 6]) {
    assert.deepEqual(resources[index], { start: 0n, sizeBytes: 0n, flags: 0 });
  }
});

test('parseResourceFile() keeps an unassigned BAR with its size and drops lines past the ROM', () => {
  const lines = [
    '0x0000000000000000 0x0000000000000fff 0x0000000020040200', // UNSET, 4 KiB
    ...Array.from({ length: 5 }, () => '0x0000000000000000 0x0000000000000000 0x0000000000000000'),
    '0x00000000fe000000 0x00000000fe00ffff 0x0000000000046200', // ROM
    '0x00000000fd000000 0x00000000fdffffff 0x0000000000040200', // SR-IOV BAR: dropped
  ];
  const resources = parseResourceFile(lines.join('\n'));
  assert.equal(resources.length, 7);
  const [bar0, , , , , , rom] = resources;
  assert.ok(bar0 && rom);
  assert.equal(bar0.sizeBytes, 0x1000n);
  assert.ok((bar0.flags & IORESOURCE.UNSET) !== 0);
  assert.equal(rom.start, 0xfe000000n);
  assert.equal(rom.sizeBytes, 0x10000n);
});

test('parseResourceFile() pads a short file and rejects a malformed line', () => {
  assert.equal(parseResourceFile('').length, 7);
  assert.throws(() => parseResourceFile('0x0 0x0\n'), {
    name: 'SyntaxError',
    message: /line 1 of sysfs "resource"/,
  });
});

test('formatResourceLine() prints what parseResourceFile() reads back', () => {
  const resource = { start: 0xf7c00000n, sizeBytes: 0x20000n, flags: 0x40200 };
  const line = formatResourceLine(resource);
  assert.equal(line, '0x00000000f7c00000 0x00000000f7c1ffff 0x0000000000040200\n');
  assert.deepEqual(parseResourceFile(line)[0], resource);
  assert.equal(
    formatResourceLine({ start: 0n, sizeBytes: 0n, flags: 0 }),
    '0x0000000000000000 0x0000000000000000 0x0000000000000000\n',
  );
});

test('hex and decimal attributes parse as the kernel prints them, and bad text is refused', () => {
  assert.equal(parseHexAttribute('0x8086\n', 'vendor'), 0x8086);
  assert.equal(parseHexAttribute('0x0c0330\n', 'class'), 0x0c0330);
  assert.equal(formatHexAttribute(0x0c0330, 6), '0x0c0330\n');
  assert.equal(parseDecimalAttribute('16\n', 'irq'), 16);
  assert.throws(() => parseHexAttribute('8086', 'vendor'), {
    name: 'SyntaxError',
    message: /"vendor": expected 0x/,
  });
  assert.throws(() => parseDecimalAttribute('-1', 'irq'), SyntaxError);
});

test('parseDriverOverride() reads "(null)" and an empty file as unset', () => {
  assert.equal(parseDriverOverride('(null)\n'), null);
  assert.equal(parseDriverOverride('\n'), null);
  assert.equal(parseDriverOverride('vfio-pci\n'), 'vfio-pci');
});

test('parseResetMethods() keeps the kernel order and sets unknown names apart', () => {
  assert.deepEqual(parseResetMethods('flr pm bus\n'), {
    methods: ['flr', 'pm', 'bus'],
    unknown: [],
  });
  assert.deepEqual(parseResetMethods(''), { methods: [], unknown: [] });
  assert.deepEqual(parseResetMethods('device_specific future_reset\n'), {
    methods: ['device_specific'],
    unknown: ['future_reset'],
  });
});

test('upstreamBridgeFromPath() finds the nearest bridge directory, or null on a root bus', () => {
  assert.equal(upstreamBridgeFromPath('devices/pci0000:00/0000:00:02.0'), null);
  assert.equal(
    upstreamBridgeFromPath('devices/pci0000:00/0000:00:1c.0/0000:02:00.0/0000:03:00.0')?.toString(),
    '0000:02:00.0',
  );
  // Platform glue between the root bus and the function is skipped.
  assert.equal(
    upstreamBridgeFromPath('devices/LNXSYSTM:00/VMBUS:00/abcd/pci1234:00/1234:00:00.0'),
    null,
  );
  // A VMD domain (five hex digits) cannot be addressed: its functions are skipped too.
  assert.equal(
    upstreamBridgeFromPath(
      'devices/pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:06.0/10000:e1:00.0',
    ),
    null,
  );
});

test('isPciSlotName() and baseName() read sysfs names', () => {
  assert.equal(isPciSlotName('0000:03:00.0'), true);
  assert.equal(isPciSlotName('03:00.0'), false);
  assert.equal(isPciSlotName('10000:e0:06.0'), false);
  assert.equal(isPciSlotName('0000:03:00.8'), false);
  assert.equal(baseName('../../../bus/pci/drivers/virtio-pci'), 'virtio-pci');
  assert.equal(baseName('../../../kernel/iommu_groups/12/'), '12');
});
