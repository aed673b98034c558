// SPDX-License-Identifier: MIT
/**
 * Base address registers: which BARs a function implements, how large each is, and
 * the write masks that give them their sizing behaviour (PCI 3.0 §6.2.5.1): address
 * bits below the size are hardwired 0 and the type bits are read-only, so writing
 * all-ones reads back the size mask with the type bits.
 *
 * The same description serves the BARs of a header, the VF BARs of an SR-IOV
 * capability and the expansion ROM.
 */
import {
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
} from '../abi/pci-regs.js';
import type { RegisterFile } from './register-file.js';

/** The address space and width a BAR decodes. */
export type BarKind = 'io' | 'mem32' | 'mem64';

/** One implemented BAR (a 64-bit BAR is one entry at its lower index). */
export interface BarLayout {
  /** BAR number (0..5; 0..1 in a bridge). */
  readonly index: number;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
  /** Power-of-two size in bytes. */
  readonly sizeBytes: bigint;
}

/** The expansion ROM BAR. */
export interface RomLayout {
  readonly sizeBytes: bigint;
}

/** A BAR with its current address, as a device reports it. */
export interface BarDescriptor extends BarLayout {
  /** Bus address the BAR decodes now (0 when unassigned). */
  readonly address: bigint;
  /** Low bits of the BAR register (I/O bit 0; memory type and prefetch bits). */
  readonly flagBits: number;
}

/** Smallest sizes the specifications allow. */
const MIN_IO_SIZE = 4n;
const MIN_MEM_SIZE = 16n;
/** Expansion ROMs are at least 2 KiB (the address field starts at bit 11). */
export const MIN_ROM_SIZE = 2048n;
/** I/O space on x86 is 64 KiB; no single BAR can be larger. */
const MAX_IO_SIZE = 0x10000n;
const MAX_MEM32_SIZE = 0x80000000n;
const MAX_MEM64_SIZE = 1n << 63n;

/**
 * Bounds of {@link inferBarSize}: the natural alignment of an address is an upper
 * bound for the size of the BAR it sits in (BARs are naturally aligned), so inference
 * takes it, clamped to sizes that real devices use.
 */
export const INFERRED_SIZE_LIMITS = {
  /** I/O BARs larger than 256 bytes are not allowed by PCI 3.0 §6.2.5.1. */
  ioMax: 256n,
  /** 32-bit memory BARs beyond 256 MiB are rare; larger alignments are packing. */
  mem32Max: 256n << 20n,
  /** 64-bit BARs: up to 4 GiB. */
  mem64Max: 4n << 30n,
  romMax: 16n << 20n,
  /** An I/O BAR at address 0 (unassigned): 32 bytes. */
  ioDefault: 32n,
  /** A memory BAR at address 0 (unassigned): one 4 KiB page. */
  memDefault: 4096n,
} as const;

/** The kind and prefetchability encoded in the low bits of a BAR value. */
export function decodeBarType(value: number): { kind: BarKind; prefetchable: boolean } {
  if ((value & PCI_BASE_ADDRESS_SPACE_IO) !== 0) return { kind: 'io', prefetchable: false };
  const is64 = (value & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
  return {
    kind: is64 ? 'mem64' : 'mem32',
    prefetchable: (value & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0,
  };
}

/** Options of {@link inferBarSize}. */
export interface InferBarSizeOptions {
  /** Addresses of the function's other BARs in the same space (the size stops below them). */
  readonly neighbours?: readonly bigint[];
  /** Number of consecutive BARs the register starts (TotalVFs for SR-IOV VF BARs). */
  readonly spanMultiplier?: bigint;
}

/**
 * A size for a BAR whose size nobody gave: the lowest set address bit (the address's
 * natural alignment), no larger than the gap to the next BAR above it in the same
 * address space (BARs do not overlap), rounded down to a power of two and clamped to
 * {@link INFERRED_SIZE_LIMITS}; an unassigned (zero) address gets the default of its
 * kind. The result is an upper bound of the real size. For SR-IOV VF BARs, whose
 * register starts `spanMultiplier` (TotalVFs) consecutive per-VF BARs, the gap is
 * shared among them.
 *
 * @example
 * inferBarSize('mem32', 0xfeb00000n); // 0x100000n (1 MiB alignment)
 * inferBarSize('mem32', 0xe0000000n, { neighbours: [0xe0800000n] }); // 0x800000n
 * inferBarSize('io', 0x1020n); // 0x20n
 */
export function inferBarSize(
  kind: BarKind,
  address: bigint,
  options: InferBarSizeOptions = {},
): bigint {
  const { neighbours = [], spanMultiplier = 1n } = options;
  const limits = INFERRED_SIZE_LIMITS;
  const [min, max, fallback] =
    kind === 'io'
      ? [MIN_IO_SIZE, limits.ioMax, limits.ioDefault]
      : [MIN_MEM_SIZE, kind === 'mem32' ? limits.mem32Max : limits.mem64Max, limits.memDefault];
  if (address === 0n) return fallback;
  const bound = boundByNeighbours(lowestSetBit(address), address, neighbours, spanMultiplier);
  return clamp(bound, min, max);
}

/** ROM size from its address, like {@link inferBarSize}: 2 KiB .. 16 MiB. */
export function inferRomSize(address: bigint, neighbours: readonly bigint[] = []): bigint {
  const size = boundByNeighbours(lowestSetBit(address), address, neighbours);
  return clamp(size, MIN_ROM_SIZE, INFERRED_SIZE_LIMITS.romMax);
}

/** Where the BAR registers are and what is known about their sizes. */
export interface BarRange {
  /** Offset of the first BAR register. */
  readonly firstBarOffset: number;
  /** Number of BAR registers. */
  readonly barCount: number;
}

/** Options of {@link describeBars}. */
export interface DescribeBarsOptions extends BarRange {
  /** Sizes by slot; slots not listed are inferred. */
  readonly sizes: ReadonlyMap<number, bigint>;
  /** Other memory addresses of the function (the ROM) that bound inferred sizes. */
  readonly otherMemory?: readonly bigint[];
  /** See {@link InferBarSizeOptions.spanMultiplier}. */
  readonly spanMultiplier?: bigint;
}

/**
 * Reads the BARs of an image: a register that reads 0 and has no given size is not
 * implemented; an explicit size of 0 removes a BAR. A 64-bit BAR in the last slot
 * (no room for its upper half) is treated as 32-bit.
 *
 * @throws {RangeError} for an explicit size that is not a power of two in the range
 *   the BAR's kind allows.
 */
export function describeBars(
  read32: (byteOffset: number) => number,
  options: DescribeBarsOptions,
): BarLayout[] {
  const { firstBarOffset, barCount, sizes, otherMemory = [], spanMultiplier = 1n } = options;
  interface Slot {
    readonly index: number;
    readonly kind: BarKind;
    readonly prefetchable: boolean;
    readonly address: bigint;
  }
  const slots: Slot[] = [];
  for (let index = 0; index < barCount; index++) {
    const low = read32(firstBarOffset + 4 * index);
    const given = sizes.get(index);
    if (given === 0n || (low === 0 && given === undefined)) continue;
    const type = decodeBarType(low);
    const kind = type.kind === 'mem64' && index === barCount - 1 ? 'mem32' : type.kind;
    let address: bigint;
    if (kind === 'io') address = BigInt((low & PCI_BASE_ADDRESS_IO_MASK) >>> 0);
    else address = BigInt((low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
    if (kind === 'mem64') address |= BigInt(read32(firstBarOffset + 4 * (index + 1))) << 32n;
    slots.push({ index, kind, prefetchable: type.prefetchable, address });
    if (kind === 'mem64') index++; // the upper half is part of this BAR
  }
  return slots.map((slot) => {
    const neighbours = slots
      .filter((other) => other !== slot && (other.kind === 'io') === (slot.kind === 'io'))
      .map((other) => other.address)
      .concat(slot.kind === 'io' ? [] : otherMemory);
    const sizeBytes =
      sizes.get(slot.index) ??
      inferBarSize(slot.kind, slot.address, { neighbours, spanMultiplier });
    checkBarSize(slot.kind, sizeBytes, slot.index);
    return { index: slot.index, kind: slot.kind, prefetchable: slot.prefetchable, sizeBytes };
  });
}

/** Memory addresses of the BARs in a register range (for bounding ROM inference). */
export function barAddresses(read32: (byteOffset: number) => number, range: BarRange): bigint[] {
  const { firstBarOffset, barCount } = range;
  return describeBars(read32, { firstBarOffset, barCount, sizes: new Map() })
    .filter((bar) => bar.kind !== 'io')
    .map((bar) => {
      const low = read32(firstBarOffset + 4 * bar.index);
      let address = BigInt((low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
      if (bar.kind === 'mem64')
        address |= BigInt(read32(firstBarOffset + 4 * bar.index + 4)) << 32n;
      return address;
    });
}

/** Reads the ROM BAR: absent when its address is 0 and no size is given. */
export function describeRom(
  romValue: number,
  options: { readonly size?: bigint | undefined; readonly otherMemory?: readonly bigint[] } = {},
): RomLayout | undefined {
  const { size, otherMemory = [] } = options;
  if (size === 0n) return undefined;
  const address = BigInt((romValue & PCI_ROM_ADDRESS_MASK) >>> 0);
  if (size === undefined) {
    return address === 0n ? undefined : { sizeBytes: inferRomSize(address, otherMemory) };
  }
  if (!isValidRomSize(size)) {
    throw new RangeError(
      `Invalid expansion ROM size ${size}: it must be a power of two from 2 KiB to 2 GiB`,
    );
  }
  return { sizeBytes: size };
}

/** The (low, high) writable masks of a BAR of this layout. */
export function barWritableMasks(bar: BarLayout): { low: number; high: number } {
  const sizeMask = ~(bar.sizeBytes - 1n);
  const lowBits = Number(sizeMask & 0xffffffffn);
  if (bar.kind === 'io') return { low: (lowBits & PCI_BASE_ADDRESS_IO_MASK) >>> 0, high: 0 };
  const low = (lowBits & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  if (bar.kind === 'mem32') return { low, high: 0 };
  return { low, high: Number((sizeMask >> 32n) & 0xffffffffn) };
}

/** Writable bits of a ROM BAR of this size: the address bits above it and Enable. */
export function romWritableMask(rom: RomLayout): number {
  const sizeMask = Number(~(rom.sizeBytes - 1n) & 0xffffffffn);
  return ((sizeMask & PCI_ROM_ADDRESS_MASK) | PCI_ROM_ADDRESS_ENABLE) >>> 0;
}

/**
 * Installs the masks of BARs found by {@link describeBars} over registers holding
 * their image values: unimplemented slots become read-only 0, address bits below
 * each size are cleared.
 */
export function applyBarLayout(
  regs: RegisterFile,
  layout: BarRange & { readonly bars: readonly BarLayout[] },
): void {
  const { firstBarOffset, barCount, bars } = layout;
  const claimed = new Set<number>();
  for (const bar of bars) {
    const offset = firstBarOffset + 4 * bar.index;
    const masks = barWritableMasks(bar);
    const low = regs.read(offset, 4);
    let typeBits: number;
    if (bar.kind === 'io') {
      typeBits = PCI_BASE_ADDRESS_SPACE_IO; // bit 1 of an I/O BAR is reserved (reads 0)
    } else {
      typeBits = low & ~PCI_BASE_ADDRESS_MEM_MASK;
      // A 64-bit BAR demoted to 32-bit (no room for its upper half) must not say 64.
      const said64 = (typeBits & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
      if (bar.kind === 'mem32' && said64) typeBits &= ~PCI_BASE_ADDRESS_MEM_TYPE_MASK;
    }
    regs.set(offset, 4, ((low & masks.low) | typeBits) >>> 0);
    regs.setMask('writable', offset, 4, masks.low);
    claimed.add(bar.index);
    if (bar.kind === 'mem64') {
      regs.set(offset + 4, 4, regs.read(offset + 4, 4) & masks.high);
      regs.setMask('writable', offset + 4, 4, masks.high);
      claimed.add(bar.index + 1);
    }
  }
  for (let index = 0; index < barCount; index++) {
    if (claimed.has(index)) continue;
    regs.set(firstBarOffset + 4 * index, 4, 0);
    regs.setMask('writable', firstBarOffset + 4 * index, 4, 0);
  }
}

/** Installs the ROM BAR's masks (or makes it read-only 0 when there is no ROM). */
export function applyRomLayout(
  regs: RegisterFile,
  layout: { readonly romOffset: number; readonly rom: RomLayout | undefined },
): void {
  const { romOffset, rom } = layout;
  if (rom === undefined) {
    regs.set(romOffset, 4, 0);
    regs.setMask('writable', romOffset, 4, 0);
    return;
  }
  const mask = romWritableMask(rom);
  regs.set(romOffset, 4, regs.read(romOffset, 4) & mask);
  regs.setMask('writable', romOffset, 4, mask);
}

/** The current address and flag bits of a BAR in the register file. */
export function readBar(
  regs: RegisterFile,
  where: { readonly firstBarOffset: number; readonly bar: BarLayout },
): BarDescriptor {
  const { firstBarOffset, bar } = where;
  const offset = firstBarOffset + 4 * bar.index;
  const low = regs.read(offset, 4);
  let address: bigint;
  let flagBits: number;
  if (bar.kind === 'io') {
    address = BigInt((low & PCI_BASE_ADDRESS_IO_MASK) >>> 0);
    flagBits = low & ~PCI_BASE_ADDRESS_IO_MASK;
  } else {
    address = BigInt((low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
    flagBits = low & ~PCI_BASE_ADDRESS_MEM_MASK;
    if (bar.kind === 'mem64') address |= BigInt(regs.read(offset + 4, 4)) << 32n;
  }
  return { ...bar, address, flagBits };
}

/** True when a BAR of `kind` can have `sizeBytes` (a power of two in the kind's range). */
export function isValidBarSize(kind: BarKind, sizeBytes: bigint): boolean {
  const [min, max] =
    kind === 'io'
      ? [MIN_IO_SIZE, MAX_IO_SIZE]
      : [MIN_MEM_SIZE, kind === 'mem32' ? MAX_MEM32_SIZE : MAX_MEM64_SIZE];
  return isPowerOfTwo(sizeBytes) && sizeBytes >= min && sizeBytes <= max;
}

/** True when an expansion ROM can have `sizeBytes` (a power of two, 2 KiB .. 2 GiB). */
export function isValidRomSize(sizeBytes: bigint): boolean {
  return isPowerOfTwo(sizeBytes) && sizeBytes >= MIN_ROM_SIZE && sizeBytes <= MAX_MEM32_SIZE;
}

function checkBarSize(kind: BarKind, sizeBytes: bigint, index: number): void {
  const [min, max] =
    kind === 'io'
      ? [MIN_IO_SIZE, MAX_IO_SIZE]
      : [MIN_MEM_SIZE, kind === 'mem32' ? MAX_MEM32_SIZE : MAX_MEM64_SIZE];
  if (!isValidBarSize(kind, sizeBytes)) {
    throw new RangeError(
      `Invalid size ${sizeBytes} for ${kind} BAR ${index}: it must be a power of two from ${min} to ${max} bytes`,
    );
  }
}

function isPowerOfTwo(value: bigint): boolean {
  return value > 0n && (value & (value - 1n)) === 0n;
}

/** Largest power of two no larger than `size` and the gap to the nearest address above. */
function boundByNeighbours(
  size: bigint,
  address: bigint,
  neighbours: readonly bigint[],
  spanMultiplier = 1n,
): bigint {
  let bound = size;
  for (const other of neighbours) {
    if (other <= address) continue;
    const gap = highestPowerOfTwoAtMost((other - address) / spanMultiplier);
    if (gap < bound) bound = gap;
  }
  return bound;
}

function highestPowerOfTwoAtMost(value: bigint): bigint {
  let power = 1n;
  while (power * 2n <= value) power *= 2n;
  return power;
}

function lowestSetBit(value: bigint): bigint {
  return value & -value;
}

function clamp(value: bigint, min: bigint, max: bigint): bigint {
  if (value < min) return min;
  if (value > max) return max;
  return value;
}
