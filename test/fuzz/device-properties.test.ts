// SPDX-License-Identifier: MIT
// Property: whatever config writes arrive, a simulated function never changes a bit
// outside `writable | rw1c` and never sets a bit through RW1C. The exceptions are the
// documented side-effect registers (BIST completion, the VPD F flag, MSI pending bits)
// and resets a write triggers (FLR, AF FLR, PM D3hot->D0), after which every
// non-sticky bit must be back at its power-on value.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  PCI_BIST_OFFSET,
  PCI_CAP_ID,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_PENDING_32_OFFSET,
  PCI_MSI_PENDING_64_OFFSET,
  PCI_VPD_ADDR_OFFSET,
} from '../../src/abi/pci-regs.js';
import {
  CATALOG_MODELS,
  SimulatedFunction,
  buildCatalogDevice,
  functionFromDump,
  type CatalogModel,
} from '../../src/devices/index.js';
import { walkCapabilities, walkExtendedCapabilities } from '../../src/pci/capabilities.js';
import { parseDumpFile } from '../../src/pci/dump.js';
import { DUMPS_DIR } from '../support/paths.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

type Factory = () => SimulatedFunction;

const catalogFactories: Factory[] = (Object.keys(CATALOG_MODELS) as CatalogModel[]).flatMap(
  (model) =>
    buildCatalogDevice(model).map(
      ({ fn }) =>
        () =>
          must(buildCatalogDevice(model)[fn]).device,
    ),
);
const curatedDir = join(DUMPS_DIR, 'curated');
const dumpFactories: Factory[] = readdirSync(curatedDir)
  .filter((name) => name.endsWith('.txt'))
  .map((name) => {
    const [dump] = parseDumpFile(readFileSync(join(curatedDir, name)), name);
    return () => functionFromDump(must(dump));
  });
const factories = [...catalogFactories, ...dumpFactories];

interface Profile {
  readonly writable: Uint8Array;
  readonly rw1c: Uint8Array;
  readonly sticky: Uint8Array;
  readonly defaults: Uint8Array;
  /** Bytes whose bits the device itself may change on a write. */
  readonly sideEffect: Set<number>;
  /** Offsets worth hitting more often than at random. */
  readonly hotOffsets: number[];
}

function bytesOf(fn: SimulatedFunction, pick: (offset: number) => number): Uint8Array {
  const out = new Uint8Array(fn.sizeBytes);
  for (let offset = 0; offset < fn.sizeBytes; offset += 4) {
    const value = pick(offset);
    for (let i = 0; i < 4; i++) out[offset + i] = (value >>> (8 * i)) & 0xff;
  }
  return out;
}

function profile(fn: SimulatedFunction): Profile {
  const sideEffect = new Set<number>([PCI_BIST_OFFSET]);
  const caps = walkCapabilities(fn);
  for (const cap of caps) {
    if (cap.id === PCI_CAP_ID.VPD) sideEffect.add(cap.byteOffset + PCI_VPD_ADDR_OFFSET + 1);
    if (cap.id === PCI_CAP_ID.MSI) {
      const flags = fn.configRead(cap.byteOffset + 2, 2);
      if ((flags & PCI_MSI_FLAGS_MASKBIT) !== 0) {
        const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
        const pending =
          cap.byteOffset + (is64 ? PCI_MSI_PENDING_64_OFFSET : PCI_MSI_PENDING_32_OFFSET);
        for (let i = 0; i < 4; i++) sideEffect.add(pending + i);
      }
    }
  }
  const starts = [
    0,
    ...caps.map((c) => c.byteOffset),
    ...walkExtendedCapabilities(fn).map((c) => c.byteOffset),
  ];
  const hotOffsets = starts.flatMap((start) => Array.from({ length: 16 }, (_, i) => start + 4 * i));
  return {
    writable: bytesOf(fn, (o) => fn.registerMasks(o, 4).writable),
    rw1c: bytesOf(fn, (o) => fn.registerMasks(o, 4).rw1c),
    sticky: bytesOf(fn, (o) => fn.registerMasks(o, 4).sticky),
    defaults: bytesOf(fn, (o) => fn.registerMasks(o, 4).defaultValue),
    sideEffect,
    hotOffsets: hotOffsets.filter((o) => o < fn.sizeBytes),
  };
}

const profiles = new Map<number, Profile>();
function profileOf(index: number): Profile {
  let found = profiles.get(index);
  if (found === undefined) {
    found = profile(must(factories[index])());
    profiles.set(index, found);
  }
  return found;
}

interface Write {
  readonly hot: boolean;
  readonly pick: number;
  readonly size: 1 | 2 | 4;
  readonly value: number;
  readonly misalign: boolean;
}

const writeArb: fc.Arbitrary<Write> = fc.record({
  hot: fc.boolean(),
  pick: fc.nat(),
  size: fc.constantFrom(1 as const, 2 as const, 4 as const),
  value: fc.oneof(fc.constant(0xffffffff), fc.constant(0), fc.nat({ max: 0xffffffff })),
  misalign: fc.nat({ max: 19 }).map((n) => n === 0),
});

test('random config writes never change bits outside writable | rw1c, nor set RW1C bits', () => {
  fc.assert(
    fc.property(
      fc.nat({ max: factories.length - 1 }),
      fc.array(writeArb, { maxLength: 40 }),
      (index, writes) => {
        const fn = must(factories[index])();
        const p = profileOf(index);
        let before = bytesOf(fn, (o) => fn.configRead(o, 4));
        let resets = fn.resetCounts();
        for (const w of writes) {
          const base = w.hot
            ? (p.hotOffsets[w.pick % p.hotOffsets.length] ?? 0)
            : w.pick % fn.sizeBytes;
          const offset = base - (base % w.size) + (w.misalign && w.size > 1 ? 1 : 0);
          fn.configWrite(offset, w.size, w.value);
          const after = bytesOf(fn, (o) => fn.configRead(o, 4));
          const nowResets = fn.resetCounts();
          const reset = JSON.stringify(nowResets) !== JSON.stringify(resets);
          const misaligned = offset % w.size !== 0;
          for (let at = 0; at < fn.sizeBytes; at++) {
            const old = must(before[at]);
            const now = must(after[at]);
            if (misaligned) {
              assert.equal(now, old, `a misaligned write changed byte 0x${at.toString(16)}`);
              continue;
            }
            if (p.sideEffect.has(at)) continue;
            const programmable = must(p.writable[at]) | must(p.rw1c[at]);
            const where = `byte 0x${at.toString(16)} after ${w.size}-byte write of 0x${w.value.toString(16)} at 0x${offset.toString(16)}`;
            if (reset) {
              const nonSticky = ~must(p.sticky[at]) & 0xff;
              assert.equal(now & nonSticky, must(p.defaults[at]) & nonSticky, `reset: ${where}`);
            }
            if (!reset)
              assert.equal((now ^ old) & ~programmable & 0xff, 0, `RO bit changed: ${where}`);
            const rw1cOnly = must(p.rw1c[at]) & ~must(p.writable[at]);
            assert.equal(now & ~old & rw1cOnly, 0, `RW1C bit set: ${where}`);
          }
          before = after;
          resets = nowResets;
        }
      },
    ),
    { numRuns: 120, interruptAfterTimeLimit: 1800 },
  );
});
