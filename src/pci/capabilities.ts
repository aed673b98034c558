// SPDX-License-Identifier: MIT
/**
 * Walkers for the standard (0x34 chain) and extended (0x100 chain) capability lists.
 * Both are bounded: a list that loops, points outside the config space or into the
 * header ends the walk; it never hangs and never throws.
 */
import {
  PCI_CAPABILITY_LIST_OFFSET,
  PCI_CB_CAPABILITY_LIST_OFFSET,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_CARDBUS,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_NORMAL,
  PCI_HEADER_TYPE_OFFSET,
  PCI_CAP_LIST_NEXT_OFFSET,
  PCI_EXT_CAP_ID_MASK,
  PCI_EXT_CAP_NEXT_MASK,
  PCI_EXT_CAP_NEXT_SHIFT,
  PCI_EXT_CAP_START_OFFSET,
  PCI_EXT_CAP_VER_MASK,
  PCI_EXT_CAP_VER_SHIFT,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_OFFSET,
  PCI_STD_HEADER_SIZEOF,
  PCI_CFG_SPACE_SIZE,
} from '../abi/pci-regs.js';

/** Read-only access to a config image (implemented by `ConfigSpace` and devices). */
export interface ConfigReader {
  /** Bytes of config space present: 64, 256 or 4096. */
  readonly sizeBytes: number;
  read8(byteOffset: number): number;
  read16(byteOffset: number): number;
  read32(byteOffset: number): number;
}

/** One entry of the standard capability list. */
export interface PciCapability {
  readonly id: number;
  readonly byteOffset: number;
}

/** One entry of the extended capability list. */
export interface PciExtCapability {
  readonly id: number;
  readonly version: number;
  readonly byteOffset: number;
}

/** At most 48 capabilities fit between 0x40 and 0xff (Linux's `PCI_FIND_CAP_TTL`). */
const STD_CAP_TTL = 48;
/** At most (4096 - 256) / 8 extended capabilities fit. */
const EXT_CAP_TTL = (4096 - 256) / 8;

/**
 * The standard capability list in chain order. Empty when the status register says
 * there is no list. Pointers have their low two bits ignored (reserved, as Linux does).
 */
export function walkCapabilities(config: ConfigReader): PciCapability[] {
  const found: PciCapability[] = [];
  if (config.sizeBytes < PCI_STD_HEADER_SIZEOF) return found;
  if ((config.read16(PCI_STATUS_OFFSET) & PCI_STATUS_CAP_LIST) === 0) return found;
  const start = capabilityListOffset(config);
  if (start === undefined) return found;
  const limit = Math.min(config.sizeBytes, PCI_CFG_SPACE_SIZE);
  const seen = new Set<number>();
  let pointer = config.read8(start) & 0xfc;
  for (let ttl = STD_CAP_TTL; ttl > 0; ttl--) {
    if (pointer < PCI_STD_HEADER_SIZEOF || pointer + 2 > limit || seen.has(pointer)) break;
    seen.add(pointer);
    const id = config.read8(pointer);
    if (id === 0xff) break; // a device that is not there reads all-ones
    found.push({ id, byteOffset: pointer });
    pointer = config.read8(pointer + PCI_CAP_LIST_NEXT_OFFSET) & 0xfc;
  }
  return found;
}

/**
 * Where the list starts, by header layout (Linux `__pci_bus_find_cap_start`): 0x34 for
 * normal and bridge headers, 0x14 for CardBus bridges, none for unknown layouts.
 */
function capabilityListOffset(config: ConfigReader): number | undefined {
  switch (config.read8(PCI_HEADER_TYPE_OFFSET) & PCI_HEADER_TYPE_MASK) {
    case PCI_HEADER_TYPE_NORMAL:
    case PCI_HEADER_TYPE_BRIDGE:
      return PCI_CAPABILITY_LIST_OFFSET;
    case PCI_HEADER_TYPE_CARDBUS:
      return PCI_CB_CAPABILITY_LIST_OFFSET;
    default:
      return undefined;
  }
}

/** The first standard capability with `id`, or undefined. */
export function findCapability(config: ConfigReader, id: number): number | undefined {
  return walkCapabilities(config).find((cap) => cap.id === id)?.byteOffset;
}

/**
 * The extended capability list in chain order (empty for a 256-byte space, or when
 * the header at 0x100 is 0 or all-ones).
 */
export function walkExtendedCapabilities(config: ConfigReader): PciExtCapability[] {
  const found: PciExtCapability[] = [];
  if (config.sizeBytes <= PCI_EXT_CAP_START_OFFSET) return found;
  const seen = new Set<number>();
  let pointer = PCI_EXT_CAP_START_OFFSET;
  for (let ttl = EXT_CAP_TTL; ttl > 0; ttl--) {
    if (pointer < PCI_EXT_CAP_START_OFFSET || pointer + 4 > config.sizeBytes) break;
    if (seen.has(pointer)) break;
    seen.add(pointer);
    const header = config.read32(pointer) >>> 0;
    // 0 means "no extended capabilities"; all-ones means the space is not there.
    if (header === 0 || header === 0xffffffff) break;
    found.push({
      id: header & PCI_EXT_CAP_ID_MASK,
      version: (header >>> PCI_EXT_CAP_VER_SHIFT) & PCI_EXT_CAP_VER_MASK,
      byteOffset: pointer,
    });
    pointer = (header >>> PCI_EXT_CAP_NEXT_SHIFT) & PCI_EXT_CAP_NEXT_MASK;
    if (pointer === 0) break;
  }
  return found;
}

/** The first extended capability with `id`, or undefined. */
export function findExtendedCapability(config: ConfigReader, id: number): number | undefined {
  return walkExtendedCapabilities(config).find((cap) => cap.id === id)?.byteOffset;
}
