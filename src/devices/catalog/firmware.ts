// SPDX-License-Identifier: MIT
/**
 * What firmware does to a catalog device before the OS sees it: assign each BAR a
 * naturally aligned address (non-prefetchable and 32-bit memory in a window below
 * 4 GiB, 64-bit prefetchable memory in a window above, I/O in the I/O window) and
 * turn decoding on, route the interrupt line, program the cache line size.
 */
import {
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_INTERRUPT_LINE_OFFSET,
  PCI_INTERRUPT_PIN_OFFSET,
} from '../../abi/pci-regs.js';
import type { BarKind } from '../bars.js';
import type { ConfigImageBuilder } from '../config-image-builder.js';

/** Where firmware places BARs (each window is used upwards from its base). */
export interface FirmwareWindows {
  /** 32-bit memory window base (default 0xf000_0000). */
  readonly mmioBase?: bigint;
  /** 64-bit prefetchable window base (default 0x3_8000_0000). */
  readonly mmio64Base?: bigint;
  /** I/O window base (default 0xe000). */
  readonly ioBase?: bigint;
}

/** Default windows: 32-bit MMIO at 0xf000_0000, 64-bit at 0x3_8000_0000, I/O at 0xe000. */
export const DEFAULT_WINDOWS = {
  mmioBase: 0xf0000000n,
  mmio64Base: 0x380000000n,
  ioBase: 0xe000n,
} as const;

/** One BAR a catalog builder wants. */
export interface BarRequest {
  readonly index: number;
  readonly kind: BarKind;
  readonly prefetchable?: boolean;
  readonly sizeBytes: bigint;
}

/** Hands out naturally aligned addresses from the three windows. */
export class FirmwareAllocator {
  #mmio: bigint;
  #mmio64: bigint;
  #io: bigint;

  constructor(windows: FirmwareWindows = {}) {
    this.#mmio = windows.mmioBase ?? DEFAULT_WINDOWS.mmioBase;
    this.#mmio64 = windows.mmio64Base ?? DEFAULT_WINDOWS.mmio64Base;
    this.#io = windows.ioBase ?? DEFAULT_WINDOWS.ioBase;
  }

  /** An address for a BAR (or window) of this kind and size. */
  allocate(
    kind: BarKind,
    sizeBytes: bigint,
    options: { readonly prefetchable?: boolean } = {},
  ): bigint {
    const prefetchable = options.prefetchable === true;
    if (kind === 'io') {
      this.#io = alignUp(this.#io, sizeBytes);
      const address = this.#io;
      this.#io += sizeBytes;
      return address;
    }
    if (kind === 'mem64' && prefetchable) {
      this.#mmio64 = alignUp(this.#mmio64, sizeBytes);
      const address = this.#mmio64;
      this.#mmio64 += sizeBytes;
      return address;
    }
    this.#mmio = alignUp(this.#mmio, sizeBytes);
    const address = this.#mmio;
    this.#mmio += sizeBytes;
    return address;
  }
}

/** The raw register value(s) of a BAR at `address`: [low, high] (high only for 64-bit). */
export function barRegisterValues(request: BarRequest, address: bigint): [number, number] {
  if (request.kind === 'io') return [Number(address & 0xffffffffn) | PCI_BASE_ADDRESS_SPACE_IO, 0];
  let typeBits = request.kind === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0;
  if (request.prefetchable === true) typeBits |= PCI_BASE_ADDRESS_MEM_PREFETCH;
  return [(Number(address & 0xffffffffn) | typeBits) >>> 0, Number(address >> 32n)];
}

/**
 * Assigns `bars` starting at `firstBarOffset` in `image` and returns their sizes by
 * index. Bigger BARs are placed first so that alignment wastes less.
 */
export function assignBars(
  image: ConfigImageBuilder,
  options: {
    /** Offset of the first BAR register (0x10, or a VF BAR array). */
    readonly firstBarOffset: number;
    readonly bars: readonly BarRequest[];
    readonly allocator: FirmwareAllocator;
    /** Each BAR is this many consecutive copies (TotalVFs for VF BARs). */
    readonly perBarMultiplier?: bigint;
  },
): Map<number, bigint> {
  const { firstBarOffset, bars, allocator, perBarMultiplier = 1n } = options;
  const sizes = new Map<number, bigint>();
  const ordered = [...bars].sort((a, b) =>
    a.sizeBytes < b.sizeBytes ? 1 : a.sizeBytes > b.sizeBytes ? -1 : 0,
  );
  for (const bar of ordered) {
    const span = bar.sizeBytes * perBarMultiplier;
    const address = allocator.allocate(bar.kind, span, { prefetchable: bar.prefetchable === true });
    const [low, high] = barRegisterValues(bar, address);
    image.set32(firstBarOffset + 4 * bar.index, low);
    if (bar.kind === 'mem64') image.set32(firstBarOffset + 4 * (bar.index + 1), high);
    sizes.set(bar.index, bar.sizeBytes);
  }
  return sizes;
}

/**
 * Decode on for the BAR types present, interrupt line routed (when the function has a
 * pin), cache line size 64 bytes: what a PC BIOS leaves behind.
 */
export function firmwareEnable(
  image: ConfigImageBuilder,
  options: { hasIo: boolean; hasMemory: boolean; irq: number; interruptPin: number },
): void {
  let command = image.get(PCI_COMMAND_OFFSET, 2);
  if (options.hasIo) command |= PCI_COMMAND_IO;
  if (options.hasMemory) command |= PCI_COMMAND_MEMORY;
  image.set16(PCI_COMMAND_OFFSET, command);
  image.set8(PCI_INTERRUPT_PIN_OFFSET, options.interruptPin);
  image.set8(PCI_INTERRUPT_LINE_OFFSET, options.interruptPin === 0 ? 0xff : options.irq & 0xff);
  image.set8(PCI_CACHE_LINE_SIZE_OFFSET, 0x10);
}

function alignUp(value: bigint, alignment: bigint): bigint {
  return ((value + alignment - 1n) / alignment) * alignment;
}
