// SPDX-License-Identifier: MIT
// MSI / MSI-X Message Control writes and allow_interrupt_control (Linux 5.6+ and its
// relaxations: MASKALL allowed, INTx considered off while MSI/MSI-X are on), spec §5.8
// and the §10 row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FULL_DEVICE_LAYOUT as L,
  fullTestDevice,
} from '../../../test/support/memory-host-device.js';
import {
  PCI_COMMAND_INTX_DISABLE,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSI_FLAGS_ENABLE,
} from '../../abi/pci-regs.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

const MSI_FLAGS = L.msi + 2;
const MSIX_FLAGS = L.msix + 2;
const MSI_HW = 0x0180; // 64-bit, maskable (from the test image)
const MSIX_HW = 0x0009; // 10 entries

function setup(allowInterruptControl: boolean, permissive = false) {
  const dev = fullTestDevice();
  const space = VirtualConfigSpace.create(dev, {
    global: { permissive },
    policy: { permissive: false, allowInterruptControl },
  });
  dev.clearCalls();
  return { dev, space };
}

test('allow_interrupt_control off: an MSI enable write answers -3 and writes nothing', () => {
  const { space, dev } = setup(false);
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW | PCI_MSI_FLAGS_ENABLE), -3);
  assert.equal(space.write(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_ENABLE), -3);
  assert.equal(space.write(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_MASKALL), -3);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  assert.deepEqual(
    space.deniedWrites().map((d) => [d.byteOffset, d.reason, d.count]),
    [
      [MSI_FLAGS, 'interrupt-control', 1],
      [MSIX_FLAGS, 'interrupt-control', 2],
    ],
  );
});

test('allow_interrupt_control off: writing the unchanged value succeeds without a write', () => {
  const { space, dev } = setup(false);
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW), 0);
  assert.equal(space.write(L.msi, 4, (MSI_HW << 16) | dev.peek(L.msi, 2)), 0);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
  assert.deepEqual(space.deniedWrites(), []);
});

test('allow_interrupt_control on: MSI enable and disable are written raw', () => {
  const { space, dev } = setup(true);
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW | PCI_MSI_FLAGS_ENABLE), 0);
  assert.equal(dev.peek(MSI_FLAGS, 2), MSI_HW | PCI_MSI_FLAGS_ENABLE);
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW), 0);
  assert.equal(dev.peek(MSI_FLAGS, 2), MSI_HW);
});

test('allow_interrupt_control on: enabling MSI while INTx is on is allowed', () => {
  const { space, dev } = setup(true);
  assert.equal(dev.peek(0x04, 2) & PCI_COMMAND_INTX_DISABLE, 0);
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW | PCI_MSI_FLAGS_ENABLE), 0);
});

test('allow_interrupt_control on: enabling MSI while MSI-X is on in hardware answers -3', () => {
  const { space, dev } = setup(true);
  dev.poke(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_ENABLE); // e.g. a device model did it
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW | PCI_MSI_FLAGS_ENABLE), -3);
  assert.equal(dev.peek(MSI_FLAGS, 2), MSI_HW);
});

test('allow_interrupt_control on: enabling MSI-X while MSI is on answers -3', () => {
  const { space, dev } = setup(true);
  space.write(MSI_FLAGS, 2, MSI_HW | PCI_MSI_FLAGS_ENABLE);
  assert.equal(space.write(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_ENABLE), -3);
  assert.equal(dev.peek(MSIX_FLAGS, 2), MSIX_HW);
});

test('allow_interrupt_control on: re-writing an enabled type (e.g. masking) is allowed', () => {
  const { space, dev } = setup(true);
  assert.equal(space.write(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_ENABLE), 0);
  assert.equal(
    space.write(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL),
    0,
  );
  assert.equal(dev.peek(MSIX_FLAGS, 2), MSIX_HW | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
});

test('allow_interrupt_control on: the MSI-X Function Mask toggles without enabling', () => {
  const { space, dev } = setup(true);
  assert.equal(space.write(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_MASKALL), 0);
  assert.equal(space.write(MSIX_FLAGS, 2, MSIX_HW), 0);
  assert.equal(dev.callsOf('writeConfig').length, 2);
});

test('allow_interrupt_control on: other Message Control bits answer -3', () => {
  const { space, dev } = setup(true);
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW | 0x0010), -3); // multiple message enable
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW | 0x0011), -3); // ... even with enable
  assert.equal(space.write(MSIX_FLAGS, 2, MSIX_HW + 1), -3); // table size (read-only)
  assert.deepEqual(dev.callsOf('writeConfig'), []);
});

test('allow_interrupt_control on: with MSI and MSI-X both on in hardware, enabling either fails', () => {
  const { space, dev } = setup(true);
  dev.poke(MSI_FLAGS, 2, MSI_HW | PCI_MSI_FLAGS_ENABLE);
  dev.poke(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_ENABLE);
  assert.equal(
    space.write(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL),
    -3,
  );
  // Disabling is always allowed.
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW), 0);
});

test('allow_interrupt_control on: a failing hardware read refuses the enable', () => {
  const { space, dev } = setup(true);
  dev.failReadsAt(0x04, -5);
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW | PCI_MSI_FLAGS_ENABLE), -3);
});

test('allow_interrupt_control can be switched off again (the stub clears it on release)', () => {
  const { space } = setup(true);
  space.policy.allowInterruptControl = false;
  assert.equal(space.write(MSI_FLAGS, 2, MSI_HW | PCI_MSI_FLAGS_ENABLE), -3);
});

test('Permissive mode writes Message Control raw, without any check', () => {
  const { space, dev } = setup(false, true);
  dev.poke(MSIX_FLAGS, 2, MSIX_HW | PCI_MSIX_FLAGS_ENABLE);
  assert.equal(space.write(MSI_FLAGS, 2, 0xffff), 0);
  assert.equal(dev.peek(MSI_FLAGS, 2), 0xffff);
});

test('MSI address/data registers have no fields: permissive-only writes', () => {
  const strict = setup(true);
  assert.equal(strict.space.write(L.msi + 4, 4, 0xfee00000), 0);
  assert.deepEqual(strict.dev.callsOf('writeConfig'), []);
  const permissive = setup(false, true);
  assert.equal(permissive.space.write(L.msi + 4, 4, 0xfee00000), 0);
  assert.equal(permissive.dev.peek(L.msi + 4, 4), 0xfee00000);
});
