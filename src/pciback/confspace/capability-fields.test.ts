// SPDX-License-Identifier: MIT
// Capability fields (spec §5.8): headers, Power Management, VPD, and the capabilities
// that are passed through untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FULL_DEVICE_LAYOUT as L,
  MemoryHostDevice,
  buildConfigImage,
  fullTestDevice,
  type FullTestDeviceOptions,
} from '../../../test/support/memory-host-device.js';
import { PCI_CAP_ID } from '../../abi/pci-regs.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

function setup(options: FullTestDeviceOptions = {}, permissive = false) {
  const dev = fullTestDevice(options);
  const space = VirtualConfigSpace.create(dev, { global: { permissive } });
  dev.clearCalls();
  return { dev, space };
}

const PMC = L.pm + 2;
const PMCSR = L.pm + 4;

test('Capability headers read raw and ignore writes, even in permissive mode', () => {
  const { space, dev } = setup({}, true);
  assert.deepEqual(space.read(L.pm, 2), { value: (L.vpd << 8) | PCI_CAP_ID.PM, err: 0 });
  assert.equal(space.write(L.pm, 2, 0x0000), 0);
  assert.equal(space.write(L.msix + 1, 1, 0x00), 0); // next pointer
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  assert.equal(dev.peek(L.msix + 1, 1), L.exp);
});

test('PM: PMC hides the PME support bits (11-15)', () => {
  const { space, dev } = setup();
  assert.equal(dev.peek(PMC, 2), 0xc803);
  assert.deepEqual(space.read(PMC, 2), { value: 0x0003, err: 0 });
  assert.equal(space.read(L.pm, 4).value, (0x0003 << 16) | (L.vpd << 8) | PCI_CAP_ID.PM);
});

test('PM: a PMCSR write of a new state goes to the PCI core, not to hardware', () => {
  const { space, dev } = setup();
  assert.equal(space.write(PMCSR, 2, 0x2008 | 3), 0);
  assert.deepEqual(
    dev.calls.map((c) => c.op),
    ['setPowerState'],
  );
  assert.deepEqual(dev.callsOf('setPowerState')[0], { op: 'setPowerState', state: 3, result: 0 });
  assert.equal(dev.peek(PMCSR, 2) & 3, 3);
});

test('PM: PME_Enable can never be set by the guest (and the attempt is audited)', () => {
  const { space, dev } = setup();
  assert.equal(space.write(PMCSR, 2, 0x0100), 0);
  assert.equal(dev.peek(PMCSR, 2) & 0x0100, 0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  assert.deepEqual(
    space.deniedWrites().map((d) => [d.byteOffset, d.reason]),
    [[PMCSR, 'pme-enable']],
  );
});

test('PM: PME_Status and Data_Select (PM_OK_BITS 0x9e00) are written raw over the old value', () => {
  const { space, dev } = setup();
  // old = 0x2008 (NoSoftReset, Data_Scale 1); guest sets Data_Select 5 and PME_Status.
  assert.equal(space.write(PMCSR, 2, 0x8000 | (5 << 9)), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: PMCSR, sizeBytes: 2, value: 0x2008 | 0x8000 | (5 << 9) },
  ]);
  assert.deepEqual(dev.callsOf('setPowerState')[0]?.state, 0);
  // Writing back what it reads changes nothing and is not audited.
  dev.clearCalls();
  const cur = space.read(PMCSR, 2).value;
  assert.equal(space.write(PMCSR, 2, cur), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  assert.deepEqual(space.deniedWrites(), []);
});

test('PM: a power state the PCI core refuses answers -3 (PCIBIOS_SET_FAILED)', () => {
  const { space } = setup(); // PMC says no D1 support
  assert.equal(space.write(PMCSR, 2, 0x2008 | 1), -3);
  assert.deepEqual(
    space.deniedWrites().map((d) => d.reason),
    ['power-state-refused'],
  );
});

test('PM: PMCSR_BSE and Data are read-only; a PMCSR read error is returned', () => {
  const { space, dev } = setup({}, true);
  assert.equal(space.write(L.pm + 6, 2, 0xffff), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  dev.failReadsAt(PMCSR, -5);
  assert.equal(space.write(PMCSR, 2, 0), -5);
  assert.equal(space.read(PMCSR, 2).err, -5);
});

test('VPD: address writes without the F flag go to hardware, with it they answer -3', () => {
  const { space, dev } = setup();
  assert.equal(space.write(L.vpd + 2, 2, 0x0040), 0);
  assert.equal(space.write(L.vpd + 2, 2, 0x8040), -3);
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: L.vpd + 2, sizeBytes: 2, value: 0x0040 },
  ]);
  assert.deepEqual(
    space.deniedWrites().map((d) => [d.byteOffset, d.reason]),
    [[L.vpd + 2, 'vpd-write']],
  );
});

test('VPD: data reads raw and ignores writes (even permissive)', () => {
  const { space, dev } = setup({}, true);
  assert.equal(space.read(L.vpd + 4, 4).value, 0x12345678);
  assert.equal(space.write(L.vpd + 4, 4, 0), 0);
  assert.equal(dev.peek(L.vpd + 4, 4), 0x12345678);
});

test('VPD: a dword write over address and flags with F set fails and writes nothing', () => {
  const { space, dev } = setup();
  // Covers cap header (ignored) and address (refused): the error of the last field wins.
  assert.equal(space.write(L.vpd, 4, 0x80000000), -3);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
});

test('Capabilities without fields (PCIe, vendor) read raw and write only in permissive mode', () => {
  const strict = setup();
  assert.equal(strict.space.read(L.exp + 8, 2).value, strict.dev.peek(L.exp + 8, 2));
  assert.equal(strict.space.write(L.exp + 8, 2, 0x000f), 0);
  assert.deepEqual(strict.dev.callsOf('writeConfig'), []);
  const permissive = setup({}, true);
  permissive.space.write(L.exp + 8, 2, 0x000f);
  assert.equal(permissive.dev.peek(L.exp + 8, 2), 0x000f);
});

test('Only the first capability of each ID is virtualized', () => {
  const dev = new MemoryHostDevice({
    config: buildConfigImage({
      capabilities: [
        { id: PCI_CAP_ID.PM, byteOffset: 0x40, body: [0x03, 0xf8] },
        { id: PCI_CAP_ID.PM, byteOffset: 0x48, body: [0x03, 0xf8] },
      ],
    }),
  });
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  assert.equal(space.read(0x42, 2).value, 0x0003);
  assert.equal(space.read(0x4a, 2).value, 0xf803);
});

test('No capability list (status bit clear) means no capability fields', () => {
  const image = buildConfigImage({ capabilities: [{ id: PCI_CAP_ID.PM, byteOffset: 0x40 }] });
  image[0x06] = 0; // clear PCI_STATUS_CAP_LIST
  const space = VirtualConfigSpace.create(new MemoryHostDevice({ config: image }), {
    global: { permissive: false },
  });
  assert.equal(space.fields().length, 15);
});
