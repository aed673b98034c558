// SPDX-License-Identifier: MIT
// XSA-120 / CVE-2015-2150 "Non-maskable interrupts triggerable by guests"
// (af6fc858a35b "xen-pciback: limit guest control of command register") and its
// addendum CVE-2015-8553 (7681f31ec9cd "Don't disable PCI_COMMAND on PCI device reset"):
// a guest must never turn memory/IO decoding off in hardware.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fullTestDevice,
  recordingLogger,
  type FullTestDeviceOptions,
} from '../../../test/support/memory-host-device.js';
import {
  PCI_COMMAND_GUEST_MASK,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
} from '../../abi/pci-regs.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

function setup(permissive: boolean, options: FullTestDeviceOptions = {}) {
  const dev = fullTestDevice(options);
  const logger = recordingLogger();
  const space = VirtualConfigSpace.create(dev, { global: { permissive }, logger });
  dev.clearCalls();
  return { dev, space, logger };
}

const IO_MEM = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;

test('XSA-120: non-permissive, enable 0x0007 then write 0: hardware keeps IO/MEM, guest sees them off', () => {
  const { space, dev } = setup(false);
  assert.equal(space.write(0x04, 2, 0x0007), 0);
  assert.deepEqual(
    dev.calls.map((c) => c.op),
    ['enableDevice', 'setMaster'],
  );
  assert.equal(dev.peek(0x04, 2) & 0x0007, 0x0007);
  assert.equal(space.read(0x04, 2).value & 0x0007, 0x0007);

  dev.clearCalls();
  assert.equal(space.write(0x04, 2, 0x0000), 0);
  // pci_disable_device clears MASTER and the kernel's bus-master flag, so no clearMaster.
  assert.deepEqual(
    dev.calls.map((c) => c.op),
    ['disableDevice'],
  );
  // Hardware decode stays on (pci_disable_device does not clear it); MASTER is off.
  assert.equal(dev.peek(0x04, 2) & IO_MEM, IO_MEM);
  assert.equal(dev.peek(0x04, 2) & PCI_COMMAND_MASTER, 0);
  // The guest reads its virtual IO/MEM (0) and the real MASTER (0).
  assert.equal(space.read(0x04, 2).value & 0x0007, 0);
  // No config write to the command register ever happened.
  assert.deepEqual(dev.callsOf('writeConfig'), []);
});

test('XSA-120: the guest sees MASTER (and the other PCI_COMMAND_GUEST bits) from hardware', () => {
  const { space, dev } = setup(false);
  dev.poke(0x04, 2, PCI_COMMAND_MASTER | PCI_COMMAND_INVALIDATE | IO_MEM);
  // Virtual IO/MEM are 0 (cmd.val from seize time), MASTER and INVALIDATE are real.
  assert.equal(space.read(0x04, 2).value, PCI_COMMAND_MASTER | PCI_COMMAND_INVALIDATE);
});

test('XSA-120: non-permissive PARITY/SERR/INTX_DISABLE writes stay virtual', () => {
  const { space, dev } = setup(false);
  const bits = PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;
  assert.equal(space.write(0x04, 2, bits), 0);
  assert.equal(dev.peek(0x04, 2), 0);
  assert.deepEqual(dev.calls, []);
  assert.equal(space.read(0x04, 2).value, bits);
});

test('XSA-120: the virtual command value starts as the hardware value at seize time', () => {
  const { space } = setup(false, { image: { command: 0x0546 } });
  assert.equal(space.read(0x04, 2).value, 0x0546);
});

test('XSA-120: permissive, write 0 after enabling changes hardware only within 0x02bc', () => {
  const { space, dev } = setup(true);
  dev.poke(0x04, 2, PCI_COMMAND_SERR | PCI_COMMAND_PARITY);
  space.write(0x04, 2, 0x0007);
  const before = dev.peek(0x04, 2);
  assert.equal(before & 0x0007, 0x0007);
  dev.clearCalls();
  assert.equal(space.write(0x04, 2, 0x0000), 0);
  const after = dev.peek(0x04, 2);
  assert.equal((before ^ after) & ~PCI_COMMAND_GUEST_MASK, 0);
  assert.equal(after & PCI_COMMAND_MASTER, 0);
  assert.equal(after & IO_MEM, IO_MEM);
  // Hardware (0x0143) differs from the guest's 0, so the masked value is written: it is
  // (0 & GUEST) | (hw & ~GUEST), i.e. unchanged here because disable cleared MASTER.
  assert.deepEqual(dev.callsOf('writeConfig'), [
    { op: 'writeConfig', byteOffset: 0x04, sizeBytes: 2, value: after },
  ]);
});

test('XSA-120: permissive writes reach hardware through the PCI_COMMAND_GUEST mask', () => {
  const { space, dev } = setup(true);
  dev.poke(0x04, 2, IO_MEM | PCI_COMMAND_SERR);
  // Guest asks for SPECIAL + FAST_BACK + PARITY and no decode, no SERR.
  space.write(0x04, 2, 0x0008 | 0x0200 | PCI_COMMAND_PARITY);
  const writes = dev.callsOf('writeConfig');
  assert.deepEqual(writes, [
    {
      op: 'writeConfig',
      byteOffset: 0x04,
      sizeBytes: 2,
      value: 0x0008 | 0x0200 | IO_MEM | PCI_COMMAND_SERR,
    },
  ]);
});

test('XSA-120: permissive, a write equal to hardware is not written', () => {
  const { space, dev } = setup(true);
  dev.poke(0x04, 2, 0x0008);
  space.write(0x04, 2, 0x0008);
  assert.deepEqual(dev.callsOf('writeConfig'), []);
});

test('XSA-120 addendum (CVE-2015-8553): resetting for the next guest never writes the command register', () => {
  const { space, dev } = setup(false);
  space.write(0x04, 2, 0x0007);
  dev.clearCalls();
  space.resetForNextGuest();
  assert.deepEqual(dev.calls, []);
  assert.equal(dev.peek(0x04, 2) & IO_MEM, IO_MEM);
});

test('Command writes: INTX_DISABLE reaches pci_intx only with allow_interrupt_control', () => {
  const { space, dev } = setup(false);
  space.write(0x04, 2, PCI_COMMAND_INTX_DISABLE);
  assert.deepEqual(dev.callsOf('intx'), []);
  space.write(0x04, 2, 0);
  space.policy.allowInterruptControl = true;
  space.write(0x04, 2, PCI_COMMAND_INTX_DISABLE);
  space.write(0x04, 2, PCI_COMMAND_INTX_DISABLE); // no change: no call
  space.write(0x04, 2, 0);
  assert.deepEqual(
    dev.callsOf('intx').map((c) => c.enable),
    [false, true],
  );
  assert.equal(dev.peek(0x04, 2) & PCI_COMMAND_INTX_DISABLE, 0);
});

test('Command writes: INVALIDATE goes through pci_set_mwi/pci_clear_mwi against cmd.val', () => {
  const { space, dev } = setup(false);
  space.write(0x04, 2, PCI_COMMAND_INVALIDATE);
  space.write(0x04, 2, PCI_COMMAND_INVALIDATE);
  space.write(0x04, 2, 0);
  assert.deepEqual(
    dev.calls.map((c) => c.op),
    ['setMwi', 'clearMwi'],
  );
});

test('Command writes: a failing pci_set_mwi is logged and INVALIDATE dropped from cmd.val', () => {
  const { space, dev, logger } = setup(false, { mwiResult: -22 });
  assert.equal(space.write(0x04, 2, PCI_COMMAND_INVALIDATE | PCI_COMMAND_PARITY), 0);
  assert.equal(logger.at('warn').length, 1);
  assert.equal(space.read(0x04, 2).value, PCI_COMMAND_PARITY);
  // cmd.val lacks INVALIDATE, so asking again retries.
  dev.mwiResult = 0;
  space.write(0x04, 2, PCI_COMMAND_INVALIDATE);
  assert.equal(dev.callsOf('setMwi').length, 2);
});

test('Command writes: bus mastering follows the kernel flag, not the hardware bit', () => {
  const { space, dev } = setup(false);
  dev.poke(0x04, 2, PCI_COMMAND_MASTER); // hardware says master, kernel does not
  space.write(0x04, 2, PCI_COMMAND_MASTER);
  assert.deepEqual(
    dev.calls.map((c) => c.op),
    ['setMaster'],
  );
});
