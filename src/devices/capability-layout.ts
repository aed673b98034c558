// SPDX-License-Identifier: MIT
/**
 * How much of the conventional config space each capability occupies, so that the
 * rest of 0x40..0xff can be treated as device-specific registers.
 *
 * Choice: bytes in 0x40..0xff outside every capability are device-specific registers
 * and read/write (as a driver's vendor registers would be). A capability we know has
 * its exact size; a vendor-specific one its length byte; any other capability is
 * assumed to reach the next capability (in address order) or 0x100, and is RO.
 */
import {
  PCI_CAP_AF_SIZEOF,
  PCI_CAP_ID,
  PCI_CAP_MSIX_SIZEOF,
  PCI_CAP_VNDR_LENGTH_OFFSET,
  PCI_CAP_VPD_SIZEOF,
  PCI_CFG_SPACE_SIZE,
  PCI_EXP_FLAGS_OFFSET,
  PCI_MSI_FLAGS_OFFSET,
  PCI_PM_SIZEOF,
  PCI_STD_HEADER_SIZEOF,
} from '../abi/pci-regs.js';
import type { PciCapability } from '../pci/capabilities.js';
import { msiCapabilitySize } from './msi.js';
import { pcieCapabilitySize } from './pcie.js';
import type { RegisterFile } from './register-file.js';

/** Bytes of the SSVID (bridge subsystem ID) capability. */
const SSVID_SIZEOF = 8;
/** A capability is at least its ID and next pointer. */
const MIN_CAP_SIZE = 2;

/** Byte range `[start, end)` of one capability. */
export interface CapabilityExtent {
  readonly id: number;
  readonly start: number;
  readonly end: number;
}

/** Extents of the standard capabilities in `caps`, clipped to the config space. */
export function capabilityExtents(
  regs: RegisterFile,
  caps: readonly PciCapability[],
): CapabilityExtent[] {
  const limit = Math.min(regs.sizeBytes, PCI_CFG_SPACE_SIZE);
  const starts = [...new Set(caps.map((c) => c.byteOffset))].sort((a, b) => a - b);
  return caps.map((cap) => {
    const nextStart = starts.find((s) => s > cap.byteOffset) ?? limit;
    const size = knownSize(regs, cap) ?? nextStart - cap.byteOffset;
    const end = Math.min(cap.byteOffset + Math.max(size, MIN_CAP_SIZE), limit);
    return { id: cap.id, start: cap.byteOffset, end };
  });
}

/** Makes every byte of 0x40..0xff that no capability covers read/write. */
export function markDeviceSpecificWritable(
  regs: RegisterFile,
  extents: readonly CapabilityExtent[],
): void {
  const limit = Math.min(regs.sizeBytes, PCI_CFG_SPACE_SIZE);
  for (let at = PCI_STD_HEADER_SIZEOF; at < limit; at++) {
    if (extents.some((e) => at >= e.start && at < e.end)) continue;
    regs.setMask('writable', at, 1, 0xff);
  }
}

function knownSize(regs: RegisterFile, cap: PciCapability): number | undefined {
  switch (cap.id) {
    case PCI_CAP_ID.PM:
      return PCI_PM_SIZEOF;
    case PCI_CAP_ID.VPD:
      return PCI_CAP_VPD_SIZEOF;
    case PCI_CAP_ID.MSI:
      return msiCapabilitySize(regs.read(cap.byteOffset + PCI_MSI_FLAGS_OFFSET, 2));
    case PCI_CAP_ID.MSIX:
      return PCI_CAP_MSIX_SIZEOF;
    case PCI_CAP_ID.EXP:
      return pcieCapabilitySize(regs.read(cap.byteOffset + PCI_EXP_FLAGS_OFFSET, 2));
    case PCI_CAP_ID.AF:
      return PCI_CAP_AF_SIZEOF;
    case PCI_CAP_ID.SSVID:
      return SSVID_SIZEOF;
    case PCI_CAP_ID.VNDR:
      return Math.max(regs.read(cap.byteOffset + PCI_CAP_VNDR_LENGTH_OFFSET, 1), 3);
    default:
      return undefined;
  }
}
