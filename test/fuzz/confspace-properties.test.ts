// SPDX-License-Identifier: MIT
// Properties of the config-space virtualizer (spec §5): what a guest can and cannot
// change in hardware, that reads never throw, that uncovered registers read raw, and
// that the per-byte field index equals the original's list walk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FULL_DEVICE_LAYOUT as L,
  fullTestDevice,
  type MemoryDeviceCall,
  type MemoryHostDevice,
} from '../support/memory-host-device.js';
import {
  PCI_COMMAND_GUEST_MASK,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSI_FLAGS_ENABLE,
  PCI_PM_CTRL_STATE_MASK,
  PCI_VPD_ADDR_F,
} from '../../src/abi/pci-regs.js';
import { VirtualConfigSpace } from '../../src/pciback/confspace/index.js';
import { INDEXED_BYTES } from '../../src/pciback/confspace/field-index.js';
import { fieldIndexOf } from '../../src/pciback/confspace/virtual-config-space.js';
import type { ConfigAccessSize } from '../../src/platform/types.js';

const IO_MEM = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
const PMCSR = L.pm + 4;
const VPD_ADDR = L.vpd + 2;
const MSI_FLAGS = L.msi + 2;
const MSIX_FLAGS = L.msix + 2;
/** PME_Status | Data_Select, written out here so the model does not trust the code. */
const PM_OK_BITS = 0x9e00;

/** Registers worth hitting often; everything else comes from the uniform range. */
const HOT_OFFSETS = [
  0x00,
  0x04,
  0x05,
  0x06,
  0x0c,
  0x0d,
  0x0e,
  0x0f,
  0x10,
  0x14,
  0x18,
  0x1c,
  0x30,
  0x3c,
  0x3e,
  L.pm,
  PMCSR,
  L.vpd,
  VPD_ADDR,
  L.msi,
  MSI_FLAGS,
  L.msix,
  MSIX_FLAGS,
  L.exp + 8,
  0x100,
  0x104,
];

const offsetArb = fc.oneof(
  fc.integer({ min: 0, max: 4095 }),
  fc.constantFrom(...HOT_OFFSETS),
  fc.constantFrom(...HOT_OFFSETS).map((o) => o & ~3),
);
const sizeArb = fc.constantFrom<ConfigAccessSize>(1, 2, 4);
const valueArb = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(
    0,
    0xffffffff,
    0xfffffff0,
    0xfffffffc,
    0xfffff800,
    0x0007,
    0x0400,
    0x0100,
    0x8000,
    0x8001,
    0x0001,
    0x4000,
    0xc000,
    0x40,
    L.bar0,
  ),
);
const writeArb = fc.record({ offset: offsetArb, size: sizeArb, value: valueArb });

function read16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] ?? 0) | ((bytes[offset + 1] ?? 0) << 8);
}

function read32(bytes: Uint8Array, offset: number): number {
  return (read16(bytes, offset) | (read16(bytes, offset + 2) << 16)) >>> 0;
}

/**
 * Check one guest write's effect on hardware against what spec §5 lets a
 * non-permissive guest change. Returns the list of violations (empty when fine).
 */
function violations(
  before: Uint8Array,
  after: Uint8Array,
  calls: readonly MemoryDeviceCall[],
  allowInterruptControl: boolean,
): string[] {
  const problems: string[] = [];
  const called = (op: MemoryDeviceCall['op']): boolean => calls.some((c) => c.op === op);
  const checked = new Set<number>();
  const region = (offset: number, size: number): void => {
    for (let i = 0; i < size; i++) checked.add(offset + i);
  };

  // Command: bits change only through PCI-core calls, and IO/MEM never turn off.
  region(0x04, 2);
  const cmdBefore = read16(before, 0x04);
  const cmdAfter = read16(after, 0x04);
  let cmdMay = 0;
  if (called('enableDevice')) cmdMay |= IO_MEM | PCI_COMMAND_INTX_DISABLE;
  if (called('setMaster') || called('clearMaster') || called('disableDevice')) {
    cmdMay |= PCI_COMMAND_MASTER;
  }
  if (called('setMwi') || called('clearMwi')) cmdMay |= PCI_COMMAND_INVALIDATE;
  if (called('intx')) cmdMay |= PCI_COMMAND_INTX_DISABLE;
  if ((cmdBefore ^ cmdAfter) & ~cmdMay) {
    problems.push(`command 0x${cmdBefore.toString(16)} -> 0x${cmdAfter.toString(16)}`);
  }
  if (cmdBefore & IO_MEM & ~cmdAfter) problems.push('decode turned off in hardware');
  if (
    calls.some(
      (c) => c.op === 'writeConfig' && c.byteOffset <= 0x05 && c.byteOffset + c.sizeBytes > 0x04,
    )
  ) {
    problems.push('config write to the command register');
  }
  if (!allowInterruptControl && called('intx')) problems.push('pci_intx without the flag');

  // Cache line size: the guest may write it (and pci_set_mwi programs it).
  region(0x0c, 1);
  // Latency timer: only pci_set_master's x86 fix-up.
  region(0x0d, 1);
  if (before[0x0d] !== after[0x0d] && !called('setMaster')) problems.push('latency timer');
  // BIST: only "start" or the current value with bit 6 changed.
  region(0x0f, 1);
  const bistBefore = before[0x0f] ?? 0;
  const bistAfter = after[0x0f] ?? 0;
  if (
    bistBefore !== bistAfter &&
    (bistBefore & ~0x40) !== (bistAfter & ~0x40) &&
    bistAfter !== 0x40
  ) {
    problems.push(`BIST 0x${bistBefore.toString(16)} -> 0x${bistAfter.toString(16)}`);
  }
  // BARs and ROM: only a restore of the assigned value.
  for (const [offset, val] of [
    [0x10, L.bar0],
    [0x14, ((L.bar1 & 0xffffffff) | 0xc) >>> 0],
    [0x18, Math.floor(L.bar1 / 2 ** 32)],
    [0x1c, L.bar3 | 1],
    [0x20, 0],
    [0x24, 0],
    [0x30, L.rom],
  ] as const) {
    region(offset, 4);
    const b = read32(before, offset);
    const a = read32(after, offset);
    if (a !== b && a !== val) problems.push(`BAR 0x${offset.toString(16)} -> 0x${a.toString(16)}`);
  }
  // PMCSR: PM_OK_BITS, and the state only through pci_set_power_state.
  region(PMCSR, 2);
  const pmMay = PM_OK_BITS | (called('setPowerState') ? PCI_PM_CTRL_STATE_MASK : 0);
  if ((read16(before, PMCSR) ^ read16(after, PMCSR)) & ~pmMay) problems.push('PMCSR');
  // VPD address: any value without the write flag.
  region(VPD_ADDR, 2);
  if (
    read16(before, VPD_ADDR) !== read16(after, VPD_ADDR) &&
    read16(after, VPD_ADDR) & PCI_VPD_ADDR_F
  ) {
    problems.push('VPD write flag');
  }
  // MSI / MSI-X Message Control: only with allow_interrupt_control, only allowed bits.
  region(MSI_FLAGS, 2);
  region(MSIX_FLAGS, 2);
  const msiMay = allowInterruptControl ? PCI_MSI_FLAGS_ENABLE : 0;
  const msixMay = allowInterruptControl ? PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL : 0;
  if ((read16(before, MSI_FLAGS) ^ read16(after, MSI_FLAGS)) & ~msiMay) problems.push('MSI flags');
  if ((read16(before, MSIX_FLAGS) ^ read16(after, MSIX_FLAGS)) & ~msixMay)
    problems.push('MSI-X flags');
  if (
    read16(after, MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE &&
    read16(after, MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE
  ) {
    problems.push('MSI and MSI-X both enabled');
  }
  // Everything else: untouched.
  for (let i = 0; i < after.length; i++) {
    if (!checked.has(i) && before[i] !== after[i]) {
      problems.push(`byte 0x${i.toString(16)} changed`);
    }
  }
  return problems;
}

function create(dev: MemoryHostDevice, permissive: boolean, allowInterruptControl: boolean) {
  return VirtualConfigSpace.create(dev, {
    global: { permissive },
    policy: { permissive: false, allowInterruptControl },
  });
}

test('property: without permissive mode no guest write changes a bit the spec keeps from the guest', () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(writeArb, { minLength: 1, maxLength: 40 }),
      (allow, writes) => {
        const dev = fullTestDevice();
        dev.poke(0x10, 4, 0); // hardware lost BAR0: a restore is possible
        const space = create(dev, false, allow);
        for (const w of writes) {
          const before = dev.snapshot();
          dev.clearCalls();
          const err = space.write(w.offset, w.size, w.value);
          assert.ok(Number.isInteger(err) && err <= 0);
          const problems = violations(before, dev.snapshot(), dev.calls, allow);
          if (problems.length > 0) {
            assert.fail(
              `write 0x${w.offset.toString(16)}/${w.size} = 0x${w.value.toString(16)}: ${problems.join('; ')}`,
            );
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('property: the violation model itself flags forbidden changes', () => {
  // A model that can never fail would make the property above worthless.
  const dev = fullTestDevice();
  const before = dev.snapshot();
  dev.poke(0x04, 2, IO_MEM);
  const on = dev.snapshot();
  dev.poke(0x04, 2, 0);
  assert.deepEqual(violations(on, dev.snapshot(), [], false), [
    'command 0x3 -> 0x0',
    'decode turned off in hardware',
  ]);
  dev.poke(0x06, 2, 0xffff);
  dev.poke(MSI_FLAGS, 2, 0x0181);
  dev.poke(PMCSR, 2, 0x2008); // PME_Enable cleared behind the PCI core
  assert.deepEqual(violations(before, dev.snapshot(), [], true), [
    'PMCSR',
    'byte 0x6 changed',
    'byte 0x7 changed',
  ]);
  assert.ok(violations(before, dev.snapshot(), [], false).includes('MSI flags'));
});

test('property: in permissive mode command writes change hardware only within 0x02bc (plus PCI-core effects)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 20 }),
      (values) => {
        const dev = fullTestDevice();
        const space = create(dev, true, false);
        for (const value of values) {
          const before = dev.peek(0x04, 2);
          dev.clearCalls();
          space.write(0x04, 2, value);
          const after = dev.peek(0x04, 2);
          const enabled = dev.calls.some((c) => c.op === 'enableDevice');
          const may = PCI_COMMAND_GUEST_MASK | (enabled ? IO_MEM | PCI_COMMAND_INTX_DISABLE : 0);
          assert.equal((before ^ after) & ~may, 0, `0x${value.toString(16)}`);
          assert.equal(before & IO_MEM & ~after, 0);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('property: reads never throw; invalid requests answer -2/0; values fit the access size', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -0x80000000, max: 0x7fffffff }),
      fc.integer({ min: -2, max: 9 }),
      fc.boolean(),
      (offset, size, permissive) => {
        const space = create(fullTestDevice(), permissive, false);
        const { value, err } = space.read(offset, size);
        const valid = (size === 1 || size === 2 || size === 4) && offset % size === 0;
        if (!valid) {
          assert.deepEqual({ value, err }, { value: 0, err: -2 });
          return;
        }
        assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xffffffff);
        assert.ok(value < 2 ** (8 * size));
        if (offset < 0 || offset >= 4096) {
          assert.deepEqual({ value, err }, { value: 2 ** (8 * size) - 1, err: -22 });
        } else {
          assert.equal(err, 0);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test('property: aligned reads near the config space edges are answered without throwing', () => {
  const space = create(fullTestDevice(), false, false);
  for (let offset = -16; offset < 4112; offset++) {
    for (const size of [1, 2, 4]) {
      const { value, err } = space.read(offset, size);
      assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xffffffff);
      assert.ok([0, -2, -22].includes(err), `0x${offset.toString(16)}/${size}: ${err}`);
    }
  }
});

test('property: a read of a register no field covers equals the hardware read', () => {
  const dev = fullTestDevice();
  const space = create(dev, false, false);
  const covered = new Set<number>();
  for (const f of space.fields()) {
    for (let i = 0; i < f.sizeBytes; i++) covered.add(f.byteOffset + i);
  }
  const uncovered = fc
    .tuple(fc.integer({ min: 0, max: 4095 }), sizeArb)
    .map(([o, s]) => [o - (o % s), s] as const)
    .filter(([o, s]) => Array.from({ length: s }, (_, i) => o + i).every((b) => !covered.has(b)));
  fc.assert(
    fc.property(uncovered, fc.integer({ min: 0, max: 0xffffffff }), ([offset, size], raw) => {
      dev.poke(offset, size, raw);
      assert.deepEqual(space.read(offset, size), dev.readConfig(offset, size));
    }),
    { numRuns: 2000 },
  );
});

test('property: the per-byte field index equals a list walk for random quirk sets', () => {
  const quirkArb = fc.record({
    reg: fc.oneof(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 0x80 })),
    size: sizeArb,
  });
  fc.assert(
    fc.property(
      fc.array(quirkArb, { maxLength: 12 }),
      fc.array(fc.tuple(fc.integer({ min: -4, max: INDEXED_BYTES + 4 }), sizeArb), {
        minLength: 200,
        maxLength: 400,
      }),
      fc.boolean(),
      (quirks, probes, reset) => {
        const space = create(fullTestDevice(), false, false);
        for (const q of quirks) space.addQuirkField(q.reg, q.size, 0);
        if (reset) space.resetForNextGuest();
        const index = fieldIndexOf(space);
        for (const [offset, size] of probes) {
          const walk = index.entries.filter(
            (e) => offset + size > e.byteOffset && e.byteOffset + e.field.sizeBytes > offset,
          );
          assert.deepEqual(index.intersecting(offset, size), walk);
        }
      },
    ),
    { numRuns: 150 },
  );
});
