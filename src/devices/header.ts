// SPDX-License-Identifier: MIT
/**
 * Write masks and side effects of the type-0 and type-1 headers (PCI 3.0 §6.2,
 * PCI-to-PCI Bridge 1.2 §3.2, PCIe 6.0 §7.5.1). BARs and the ROM are in `bars.ts`.
 *
 * Choices where the specifications leave room:
 * - Command: MEMORY, MASTER, PARITY, SERR and INTX_DISABLE are implemented; IO only
 *   for functions with an I/O BAR and for bridges. Conventional PCI functions also
 *   implement INVALIDATE (memory write and invalidate) and, for VGA devices and
 *   bridges, VGA_PALETTE; PCIe hardwires those, SPECIAL, WAIT and FAST_BACK to 0. An
 *   SR-IOV VF hardwires IO, MEMORY and INTX_DISABLE to 0 (PCIe 6.0 §9.3.4.1.3).
 * - Latency timers are read-only on PCIe (§7.5.1.1.8: they read 0 on real devices;
 *   an image keeps its value) and read/write on conventional PCI.
 * - BIST completes at once: a start request clears itself with completion code 0.
 * - A CardBus (type 2) header keeps only the common registers; the rest is read-only.
 */
import {
  PCI_BIST_CAPABLE,
  PCI_BIST_CODE_MASK,
  PCI_BIST_OFFSET,
  PCI_BIST_START,
  PCI_BRIDGE_CONTROL_OFFSET,
  PCI_BRIDGE_CTL_BUS_RESET,
  PCI_BRIDGE_CTL_FAST_BACK,
  PCI_BRIDGE_CTL_ISA,
  PCI_BRIDGE_CTL_MASTER_ABORT,
  PCI_BRIDGE_CTL_PARITY,
  PCI_BRIDGE_CTL_SERR,
  PCI_BRIDGE_CTL_VGA,
  PCI_BRIDGE_CTL_VGA_16,
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
  PCI_COMMAND_VGA_PALETTE,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_NORMAL,
  PCI_INTERRUPT_LINE_OFFSET,
  PCI_IO_BASE_OFFSET,
  PCI_IO_BASE_UPPER16_OFFSET,
  PCI_IO_LIMIT_OFFSET,
  PCI_IO_LIMIT_UPPER16_OFFSET,
  PCI_IO_RANGE_TYPE_32,
  PCI_IO_RANGE_TYPE_MASK,
  PCI_LATENCY_TIMER_OFFSET,
  PCI_MEMORY_BASE_OFFSET,
  PCI_MEMORY_LIMIT_OFFSET,
  PCI_PREF_BASE_UPPER32_OFFSET,
  PCI_PREF_LIMIT_UPPER32_OFFSET,
  PCI_PREF_MEMORY_BASE_OFFSET,
  PCI_PREF_MEMORY_LIMIT_OFFSET,
  PCI_PREF_RANGE_TYPE_64,
  PCI_PREF_RANGE_TYPE_MASK,
  PCI_PRIMARY_BUS_OFFSET,
  PCI_SEC_LATENCY_TIMER_OFFSET,
  PCI_SEC_STATUS_OFFSET,
  PCI_SECONDARY_BUS_OFFSET,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_OFFSET,
  PCI_STATUS_RW1C_MASK,
  PCI_SUBORDINATE_BUS_OFFSET,
} from '../abi/pci-regs.js';
import { sliceWrite, type ConfigWriteAccess } from './access.js';
import type { DeviceFeature, FunctionContext } from './feature.js';

/** What the header masks depend on. */
export interface HeaderTraits {
  /** Header layout without the multi-function bit (0, 1 or 2). */
  readonly headerType: number;
  /** The function has a PCI Express capability. */
  readonly isPcie: boolean;
  /** The function implements an I/O BAR. */
  readonly hasIoBar: boolean;
  /** The function is an SR-IOV virtual function. */
  readonly isVirtualFunction: boolean;
  /** Base class 03 (display controller): VGA palette snooping applies. */
  readonly isDisplay: boolean;
}

/** Window base/limit registers are 16 bits whose low nibble says the decode width. */
const WINDOW_ADDRESS_MASK = 0xfff0;
/** I/O base/limit registers keep address bits 15:12 in their high nibble. */
const IO_WINDOW_ADDRESS_MASK = 0xf0;

/** Command register bits the function implements. */
export function commandWritableMask(traits: HeaderTraits): number {
  const isBridge = traits.headerType === PCI_HEADER_TYPE_BRIDGE;
  let mask = PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR;
  if (traits.isVirtualFunction) return mask;
  mask |= PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE;
  if (traits.hasIoBar || isBridge) mask |= PCI_COMMAND_IO;
  if (!traits.isPcie) {
    mask |= PCI_COMMAND_INVALIDATE;
    if (traits.isDisplay || isBridge) mask |= PCI_COMMAND_VGA_PALETTE;
  }
  return mask;
}

/** Installs the masks of the registers common to every header, then the type-1 ones. */
export function installHeaderMasks(ctx: FunctionContext, traits: HeaderTraits): void {
  const { regs } = ctx;
  regs.setMask('writable', PCI_COMMAND_OFFSET, 2, commandWritableMask(traits));
  regs.setMask('rw1c', PCI_STATUS_OFFSET, 2, PCI_STATUS_RW1C_MASK);
  regs.setMask('writable', PCI_CACHE_LINE_SIZE_OFFSET, 1, 0xff);
  regs.setMask('writable', PCI_LATENCY_TIMER_OFFSET, 1, traits.isPcie ? 0 : 0xff);
  const bist = regs.read(PCI_BIST_OFFSET, 1);
  regs.setMask(
    'writable',
    PCI_BIST_OFFSET,
    1,
    (bist & PCI_BIST_CAPABLE) !== 0 ? PCI_BIST_START : 0,
  );
  if (
    traits.headerType === PCI_HEADER_TYPE_NORMAL ||
    traits.headerType === PCI_HEADER_TYPE_BRIDGE
  ) {
    regs.setMask('writable', PCI_INTERRUPT_LINE_OFFSET, 1, 0xff);
  }
  if (traits.headerType === PCI_HEADER_TYPE_BRIDGE) installBridgeMasks(ctx, traits);
}

function installBridgeMasks(ctx: FunctionContext, traits: HeaderTraits): void {
  const { regs } = ctx;
  regs.setMask('writable', PCI_PRIMARY_BUS_OFFSET, 1, 0xff);
  regs.setMask('writable', PCI_SECONDARY_BUS_OFFSET, 1, 0xff);
  regs.setMask('writable', PCI_SUBORDINATE_BUS_OFFSET, 1, 0xff);
  regs.setMask('writable', PCI_SEC_LATENCY_TIMER_OFFSET, 1, traits.isPcie ? 0 : 0xff);
  regs.setMask('writable', PCI_IO_BASE_OFFSET, 1, IO_WINDOW_ADDRESS_MASK);
  regs.setMask('writable', PCI_IO_LIMIT_OFFSET, 1, IO_WINDOW_ADDRESS_MASK);
  regs.setMask('rw1c', PCI_SEC_STATUS_OFFSET, 2, PCI_STATUS_RW1C_MASK);
  regs.setMask('writable', PCI_MEMORY_BASE_OFFSET, 2, WINDOW_ADDRESS_MASK);
  regs.setMask('writable', PCI_MEMORY_LIMIT_OFFSET, 2, WINDOW_ADDRESS_MASK);
  // The memory window's low nibble is reserved (reads 0).
  regs.set(PCI_MEMORY_BASE_OFFSET, 2, regs.read(PCI_MEMORY_BASE_OFFSET, 2) & WINDOW_ADDRESS_MASK);
  regs.set(PCI_MEMORY_LIMIT_OFFSET, 2, regs.read(PCI_MEMORY_LIMIT_OFFSET, 2) & WINDOW_ADDRESS_MASK);
  regs.setMask('writable', PCI_PREF_MEMORY_BASE_OFFSET, 2, WINDOW_ADDRESS_MASK);
  regs.setMask('writable', PCI_PREF_MEMORY_LIMIT_OFFSET, 2, WINDOW_ADDRESS_MASK);
  const pref64 =
    (regs.read(PCI_PREF_MEMORY_BASE_OFFSET, 2) & PCI_PREF_RANGE_TYPE_MASK) ===
    PCI_PREF_RANGE_TYPE_64;
  const upper32 = pref64 ? 0xffffffff : 0;
  regs.setMask('writable', PCI_PREF_BASE_UPPER32_OFFSET, 4, upper32);
  regs.setMask('writable', PCI_PREF_LIMIT_UPPER32_OFFSET, 4, upper32);
  const io32 = (regs.read(PCI_IO_BASE_OFFSET, 1) & PCI_IO_RANGE_TYPE_MASK) === PCI_IO_RANGE_TYPE_32;
  const upper16 = io32 ? 0xffff : 0;
  regs.setMask('writable', PCI_IO_BASE_UPPER16_OFFSET, 2, upper16);
  regs.setMask('writable', PCI_IO_LIMIT_UPPER16_OFFSET, 2, upper16);
  let control =
    PCI_BRIDGE_CTL_PARITY |
    PCI_BRIDGE_CTL_SERR |
    PCI_BRIDGE_CTL_ISA |
    PCI_BRIDGE_CTL_VGA |
    PCI_BRIDGE_CTL_VGA_16 |
    PCI_BRIDGE_CTL_BUS_RESET;
  if (!traits.isPcie) control |= PCI_BRIDGE_CTL_MASTER_ABORT | PCI_BRIDGE_CTL_FAST_BACK;
  regs.setMask('writable', PCI_BRIDGE_CONTROL_OFFSET, 2, control);
}

/** Power-on values of header registers whose reset value is not simply 0. */
export function adjustHeaderDefaults(ctx: FunctionContext): void {
  const { regs } = ctx;
  // Nothing asserts INTx right after a reset.
  regs.setDefault(
    PCI_STATUS_OFFSET,
    2,
    regs.defaultValue(PCI_STATUS_OFFSET, 2) & ~PCI_STATUS_INTERRUPT,
  );
  // The interrupt line is a scratch register firmware fills in; PCI 3.0 gives it no
  // reset value and Linux never rewrites it, so a reset keeps what firmware wrote.
  regs.setDefault(PCI_INTERRUPT_LINE_OFFSET, 1, regs.read(PCI_INTERRUPT_LINE_OFFSET, 1));
  // A BIST in progress or a stale completion code is not a power-on state.
  regs.setDefault(
    PCI_BIST_OFFSET,
    1,
    regs.defaultValue(PCI_BIST_OFFSET, 1) & ~(PCI_BIST_START | PCI_BIST_CODE_MASK),
  );
}

/** BIST: a start request completes at once and passes (completion code 0). */
export class BistFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;

  constructor(ctx: FunctionContext) {
    this.#ctx = ctx;
  }

  afterConfigWrite(access: ConfigWriteAccess): void {
    const written = sliceWrite(access, { byteOffset: PCI_BIST_OFFSET, sizeBytes: 1 });
    if (written === undefined || (written.value & PCI_BIST_START) === 0) return;
    const { regs } = this.#ctx;
    const bist = regs.read(PCI_BIST_OFFSET, 1);
    if ((bist & PCI_BIST_CAPABLE) === 0) return;
    regs.set(PCI_BIST_OFFSET, 1, bist & ~(PCI_BIST_START | PCI_BIST_CODE_MASK));
  }
}

/** A bridge's Secondary Bus Reset bit, reported to the host through a hook. */
export class BridgeControlFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;
  #busReset: boolean;

  constructor(ctx: FunctionContext) {
    this.#ctx = ctx;
    this.#busReset = this.#readBusReset();
  }

  afterConfigWrite(access: ConfigWriteAccess): void {
    if (sliceWrite(access, { byteOffset: PCI_BRIDGE_CONTROL_OFFSET, sizeBytes: 2 }) === undefined)
      return;
    this.#sync();
  }

  afterReset(): void {
    this.#sync();
  }

  #sync(): void {
    const now = this.#readBusReset();
    if (now === this.#busReset) return;
    this.#busReset = now;
    this.#ctx.hooks.onSecondaryBusReset?.(now);
  }

  #readBusReset(): boolean {
    return (this.#ctx.regs.read(PCI_BRIDGE_CONTROL_OFFSET, 2) & PCI_BRIDGE_CTL_BUS_RESET) !== 0;
  }
}
