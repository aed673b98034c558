// SPDX-License-Identifier: MIT
/**
 * The kernel's view of a device's address ranges (`struct resource` in
 * `include/linux/ioport.h`): what the PCI core assigned to each BAR, which is what
 * pciback reports to a guest instead of the hardware BAR (spec §5.7).
 */

/** Resource flags, `IORESOURCE_*` of `include/linux/ioport.h` (spec §11). */
export const IORESOURCE = {
  /** Low 4 bits mirror the BAR's own low bits (I/O bit 0; memory type and prefetch). */
  BITS_MASK: 0x0000000f,
  IO: 0x00000100,
  MEM: 0x00000200,
  PREFETCH: 0x00002000,
  /** ROM enable bit found at boot (ROM resources only, stored in the low bits). */
  ROM_ENABLE: 0x00000001,
  MEM_64: 0x00100000,
  DISABLED: 0x10000000,
  UNSET: 0x20000000,
  BUSY: 0x80000000,
} as const;

/** Index of the expansion ROM in a device's resource table (`PCI_ROM_RESOURCE`). */
export const PCI_ROM_RESOURCE = 6;
/** BARs 0..5 then the ROM. */
export const PCI_NUM_RESOURCES = 7;

/** One entry of a device's resource table. A missing BAR has `flags` 0. */
export interface PciResource {
  /** Bus address the range was assigned. */
  readonly start: bigint;
  /** Length in bytes (a power of two for BARs); 0 when unassigned. */
  readonly sizeBytes: bigint;
  /** `IORESOURCE` bits. */
  readonly flags: number;
}

/** The resource of an absent BAR. */
export const EMPTY_RESOURCE: PciResource = Object.freeze({ start: 0n, sizeBytes: 0n, flags: 0 });
