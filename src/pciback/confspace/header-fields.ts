// SPDX-License-Identifier: MIT
/**
 * Field tables of the standard header (`header_common`, `header_0`, `header_1` in
 * `conf_space_header.c`, spec §5.5), in the original's order. Registers without a field
 * (status, class, header type, subsystem IDs, capability pointer, bridge windows, ...)
 * read raw and are writable only in permissive mode.
 */
import {
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_BIST_OFFSET,
  PCI_BIST_START,
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_DEVICE_ID_OFFSET,
  PCI_INTERRUPT_LINE_OFFSET,
  PCI_INTERRUPT_PIN_OFFSET,
  PCI_LATENCY_TIMER_OFFSET,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_OFFSET,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
  PCI_VENDOR_ID_OFFSET,
} from '../../abi/pci-regs.js';
import { rawRead, rawWrite } from './access.js';
import { DENIED_WRITE_REASON } from './audit.js';
import { barField, romField } from './bar-fields.js';
import { COMMAND_FIELD } from './command-field.js';
import type { ConfigField } from './field.js';

/** A byte field that reads raw and ignores writes. */
function readOnlyByte(name: string, byteOffset: number): ConfigField<undefined> {
  return {
    name,
    byteOffset,
    sizeBytes: 1,
    mask: 0,
    dynamic: false,
    readsRaw: true,
    read: (ctx, absOffset) => rawRead(ctx.dev, absOffset, 1),
  };
}

/** Fields of every header type, in the original's order. */
export const HEADER_COMMON_FIELDS: readonly ConfigField[] = [
  {
    // The kernel's cached ID: an SR-IOV VF reads 0xffff in hardware.
    name: 'vendor-id',
    byteOffset: PCI_VENDOR_ID_OFFSET,
    sizeBytes: 2,
    mask: 0,
    dynamic: false,
    read: (ctx) => ctx.result(ctx.dev.vendorId & 0xffff, 0),
  },
  {
    name: 'device-id',
    byteOffset: PCI_DEVICE_ID_OFFSET,
    sizeBytes: 2,
    mask: 0,
    dynamic: false,
    read: (ctx) => ctx.result(ctx.dev.deviceId & 0xffff, 0),
  },
  COMMAND_FIELD,
  {
    // Low 8 bits of the current Linux IRQ (the MSI IRQ while MSI is on), not hardware.
    name: 'interrupt-line',
    byteOffset: PCI_INTERRUPT_LINE_OFFSET,
    sizeBytes: 1,
    mask: 0,
    dynamic: false,
    read: (ctx) => ctx.result(ctx.dev.irq() & 0xff, 0),
  },
  readOnlyByte('interrupt-pin', PCI_INTERRUPT_PIN_OFFSET),
  {
    // The original lets the guest program the cache line size ("any side effects?").
    name: 'cache-line-size',
    byteOffset: PCI_CACHE_LINE_SIZE_OFFSET,
    sizeBytes: 1,
    mask: 0,
    dynamic: false,
    readsRaw: true,
    read: (ctx, absOffset) => rawRead(ctx.dev, absOffset, 1),
    write: (ctx, absOffset, value) => rawWrite(ctx.dev, absOffset, 1, value),
  },
  readOnlyByte('latency-timer', PCI_LATENCY_TIMER_OFFSET),
  {
    // Only "start BIST" (or rewriting the current value) reaches hardware.
    name: 'bist',
    byteOffset: PCI_BIST_OFFSET,
    sizeBytes: 1,
    mask: 0,
    dynamic: false,
    readsRaw: true,
    read: (ctx, absOffset) => rawRead(ctx.dev, absOffset, 1),
    write(ctx, absOffset, value) {
      const cur = rawRead(ctx.dev, absOffset, 1);
      if (cur.err !== 0) return cur.err;
      if ((cur.value & ~PCI_BIST_START) === (value & ~PCI_BIST_START) || value === PCI_BIST_START) {
        return rawWrite(ctx.dev, absOffset, 1, value);
      }
      ctx.deny(absOffset, 1, DENIED_WRITE_REASON.bist);
      return 0;
    },
  },
];

/** Type-0 header: six BARs and the ROM at 0x30. */
export const HEADER_0_FIELDS: readonly ConfigField[] = [
  ...Array.from({ length: PCI_TYPE0_BAR_COUNT }, (_, i) =>
    barField(PCI_BASE_ADDRESS_0_OFFSET + 4 * i),
  ),
  romField(PCI_ROM_ADDRESS_OFFSET),
];

/** Type-1 (bridge) header: two BARs and the ROM at 0x38. */
export const HEADER_1_FIELDS: readonly ConfigField[] = [
  ...Array.from({ length: PCI_TYPE1_BAR_COUNT }, (_, i) =>
    barField(PCI_BASE_ADDRESS_0_OFFSET + 4 * i),
  ),
  romField(PCI_ROM_ADDRESS1_OFFSET),
];
