// SPDX-License-Identifier: MIT
/**
 * BAR and expansion ROM fields (`bar_init/read/write`, `rom_write`, `bar_reset` in
 * `conf_space_header.c`, spec §5.7). The guest reads the address the kernel assigned
 * (from the resource table, never from hardware) or, after a sizing write, the size
 * mask; it can never relocate a BAR, only restore the assigned address.
 */
import {
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS_OFFSET,
} from '../../abi/pci-regs.js';
import { EMPTY_RESOURCE, IORESOURCE, PCI_ROM_RESOURCE } from '../../pci/resource.js';
import type { PciResource } from '../../pci/resource.js';
import type { HostPciDevice } from '../../platform/types.js';
import { rawRead, rawWrite } from './access.js';
import { DENIED_WRITE_REASON } from './audit.js';
import type { ConfigField, FieldContext } from './field.js';

/** `struct pci_bar_info`. */
export interface BarData {
  /** Assigned address with the BAR's low flag bits (u32). */
  readonly val: number;
  /** Size mask `-size` with the low flag bits (u32): what a sizing read returns. */
  readonly lenVal: number;
  /** 0: reads return `val`; 1: reads return `lenVal` (after a sizing write). */
  which: 0 | 1;
}

const U32 = 0xffffffffn;

function resourceAt(dev: HostPciDevice, index: number): PciResource {
  return dev.resources()[index] ?? EMPTY_RESOURCE;
}

/** Low 32 bits of a 64-bit two's complement negation (`-resource_size()` in C). */
function negLow32(value: bigint): number {
  return Number(-value & U32);
}

/** Resource index of the BAR register at `byteOffset` (`(offset - 0x10) / 4`). */
function barIndex(byteOffset: number): number {
  return (byteOffset - PCI_BASE_ADDRESS_0_OFFSET) >>> 2;
}

/** This BAR register is the upper half of the previous 64-bit memory BAR. */
function isUpperHalf(dev: HostPciDevice, index: number): boolean {
  return index > 0 && (resourceAt(dev, index - 1).flags & IORESOURCE.MEM_64) !== 0;
}

/** `bar_init` (shared by BARs and ROMs). */
function barInit(ctx: FieldContext, byteOffset: number): { ok: true; data: BarData } {
  const { dev } = ctx;
  let index: number;
  if (byteOffset === PCI_ROM_ADDRESS_OFFSET || byteOffset === PCI_ROM_ADDRESS1_OFFSET) {
    index = PCI_ROM_RESOURCE;
  } else {
    index = barIndex(byteOffset);
    if (isUpperHalf(dev, index)) {
      // No flag checks on the lower half here, exactly as in C.
      const lower = resourceAt(dev, index - 1);
      return {
        ok: true,
        data: {
          val: Number((lower.start >> 32n) & U32),
          lenVal: Number((-lower.sizeBytes >> 32n) & U32),
          which: 0,
        },
      };
    }
  }
  const res = resourceAt(dev, index);
  if (
    res.flags === 0 ||
    (res.flags & (IORESOURCE.DISABLED | IORESOURCE.UNSET | IORESOURCE.BUSY)) !== 0
  ) {
    return { ok: true, data: { val: 0, lenVal: 0, which: 0 } };
  }
  const flagBits = res.flags & IORESOURCE.BITS_MASK;
  return {
    ok: true,
    data: {
      val: (Number(res.start & U32) | flagBits) >>> 0,
      lenVal: (negLow32(res.sizeBytes) | flagBits) >>> 0,
      which: 0,
    },
  };
}

/**
 * The non-sizing branch shared by BAR and ROM writes: if hardware lost the assigned
 * address and the guest writes exactly that address, write it back ("restore");
 * leave sizing mode either way. Any other value is ignored (and audited).
 */
function restoreOrIgnore(
  ctx: FieldContext,
  byteOffset: number,
  value: number,
  data: BarData,
): void {
  // The C code ignores the read's result code; a failed read yields all-ones here.
  const hw = rawRead(ctx.dev, byteOffset, 4);
  if (hw.value !== data.val && value === data.val) {
    rawWrite(ctx.dev, byteOffset, 4, data.val);
  }
  if (value !== data.val) ctx.deny(byteOffset, 4, DENIED_WRITE_REASON.barWrite);
  data.which = 0;
}

const barCommon = {
  sizeBytes: 4,
  mask: 0,
  dynamic: false,
  init: barInit,
  // Reads never touch hardware.
  read(ctx: FieldContext, _byteOffset: number, data: BarData) {
    return ctx.result(data.which === 1 ? data.lenVal : data.val, 0);
  },
  reset(_ctx: FieldContext, _byteOffset: number, data: BarData) {
    data.which = 0;
  },
  release() {},
} as const;

/** A BAR field at `byteOffset` (0x10..0x24). */
export function barField(byteOffset: number): ConfigField<BarData> {
  return {
    ...barCommon,
    name: 'bar',
    byteOffset,
    write(ctx, absOffset, value, data) {
      const index = barIndex(absOffset);
      // Sizing needs a 32-bit write of all-ones apart from the read-only low bits:
      // 2 bits for I/O, none for an upper half, 4 for memory.
      let lowBits: number;
      if ((resourceAt(ctx.dev, index).flags & IORESOURCE.IO) !== 0) {
        lowBits = ~PCI_BASE_ADDRESS_IO_MASK >>> 0;
      } else if (isUpperHalf(ctx.dev, index)) {
        lowBits = 0;
      } else {
        lowBits = ~PCI_BASE_ADDRESS_MEM_MASK >>> 0;
      }
      if ((value | lowBits) >>> 0 === 0xffffffff) {
        data.which = 1;
      } else {
        restoreOrIgnore(ctx, absOffset, value, data);
      }
      return 0;
    },
  };
}

/** The expansion ROM field at `byteOffset` (0x30, or 0x38 for bridges). */
export function romField(byteOffset: number): ConfigField<BarData> {
  return {
    ...barCommon,
    name: 'rom',
    byteOffset,
    // ROM enable changes are never forwarded (the original has no support for them).
    write(ctx, absOffset, value, data) {
      if ((value | (~PCI_ROM_ADDRESS_MASK >>> 0)) >>> 0 === 0xffffffff) {
        data.which = 1;
      } else {
        restoreOrIgnore(ctx, absOffset, value, data);
      }
      return 0;
    },
  };
}
