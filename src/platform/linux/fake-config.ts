// SPDX-License-Identifier: MIT
/**
 * Config-space helpers of the fake sysfs: a small config image for functions given by
 * a few fields, the kernel's resource table decoded from the BARs (as
 * `__pci_read_base` leaves it), the reset methods the kernel would probe, and the
 * write masks that keep read-only bits when a test (or the code under test) writes
 * `config`.
 *
 * The masks are deliberately simple (register-level, not per device): enough that an
 * ID, a capability pointer or a BAR's low bits cannot be overwritten, that BAR sizing
 * (write all-ones, read back) works, and that status bits are write-one-to-clear.
 */
import {
  PCI_AF_CAP_FLR,
  PCI_AF_CAP_OFFSET,
  PCI_AF_CAP_TP,
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID,
  PCI_CAPABILITY_LIST_OFFSET,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_EXP_DEVCAP_FLR,
  PCI_EXP_DEVCAP_OFFSET,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_EXP_DEVSTA_OFFSET,
  PCI_EXP_FLAGS_OFFSET,
  PCI_EXP_CAP_V2_SIZE,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_CARDBUS,
  PCI_HEADER_TYPE_NORMAL,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSI_FLAGS_OFFSET,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_SIZEOF,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS_OFFSET,
  PCI_STATUS_CAP_LIST,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
} from '../../abi/pci-regs.js';
import { ConfigSpace } from '../../pci/config-space.js';
import {
  findCapability,
  walkCapabilities,
  walkExtendedCapabilities,
} from '../../pci/capabilities.js';
import {
  EMPTY_RESOURCE,
  IORESOURCE,
  PCI_NUM_RESOURCES,
  PCI_ROM_RESOURCE,
  type PciResource,
} from '../../pci/resource.js';
import type { PciResetMethod } from '../pci-host.js';

/** `IORESOURCE_SIZEALIGN`: the kernel sets it on every BAR it sizes. */
export const IORESOURCE_SIZEALIGN = 0x00040000;
/** `IORESOURCE_READONLY`: set on expansion ROMs. */
export const IORESOURCE_READONLY = 0x00004000;

/** Where the simple builder puts its capabilities. */
const SIMPLE_PM_OFFSET = 0x40;
const SIMPLE_EXP_OFFSET = 0x50;

/** A function described by a few fields instead of a config dump. */
export interface SimpleConfigSpec {
  readonly vendorId: number;
  readonly deviceId: number;
  /** 24-bit class code (base, sub, prog-if). */
  readonly classCode: number;
  /** 0 endpoint (default), 1 PCI bridge, 2 CardBus bridge. */
  readonly headerType?: number;
  readonly revision?: number;
  readonly subsystemVendorId?: number;
  readonly subsystemDeviceId?: number;
  /** Interrupt pin (1 = INTA#); default INTA# when `irq` is non-zero. */
  readonly interruptPin?: number;
  /** Interrupt line firmware programmed. */
  readonly irq?: number;
  /** Memory BARs: index (0..5) to size; assigned from `barBase` upward, 32-bit, non-prefetchable. */
  readonly barSizes?: ReadonlyMap<number, bigint>;
  /** Secondary and subordinate bus of a bridge. */
  readonly secondaryBus?: number;
  readonly subordinateBus?: number;
  /** Adds a PM capability at 0x40 (`noSoftReset`: D3hot->D0 keeps state, so no PM reset). */
  readonly pm?: { readonly noSoftReset?: boolean };
  /** Adds a PCIe capability at 0x50 (4 KiB config space); `flr`: Function Level Reset capable. */
  readonly pcie?: { readonly flr?: boolean };
}

/**
 * A config image for `spec`: 256 bytes (4096 with `pcie`), BARs assigned from `barBase`
 * (aligned to their size).
 *
 * @throws {RangeError} for a BAR size that is not a power of two of at least 16 bytes.
 */
export function buildSimpleConfig(spec: SimpleConfigSpec, barBase = 0xe0000000n): Uint8Array {
  const size = spec.pcie === undefined ? PCI_CFG_SPACE_SIZE : PCI_CFG_SPACE_EXP_SIZE;
  const cs = ConfigSpace.empty(size);
  const headerType = spec.headerType ?? PCI_HEADER_TYPE_NORMAL;
  cs.write16(0x00, spec.vendorId);
  cs.write16(0x02, spec.deviceId);
  cs.write8(0x08, spec.revision ?? 0);
  cs.write8(0x09, spec.classCode & 0xff);
  cs.write16(0x0a, (spec.classCode >>> 8) & 0xffff);
  cs.write8(0x0e, headerType);
  const irq = spec.irq ?? 0;
  cs.write8(0x3c, irq === 0 ? 0xff : irq & 0xff);
  cs.write8(0x3d, spec.interruptPin ?? (irq === 0 ? 0 : 1));
  if (headerType === PCI_HEADER_TYPE_NORMAL) {
    cs.write16(0x2c, spec.subsystemVendorId ?? 0);
    cs.write16(0x2e, spec.subsystemDeviceId ?? 0);
  } else {
    cs.write8(0x19, spec.secondaryBus ?? 0);
    cs.write8(0x1a, spec.subordinateBus ?? spec.secondaryBus ?? 0);
  }
  let next = barBase;
  const barCount = barCountOf(headerType);
  for (const [index, sizeBytes] of [...(spec.barSizes ?? new Map<number, bigint>())].sort(
    (a, b) => a[0] - b[0],
  )) {
    if (
      index < 0 ||
      index >= barCount ||
      sizeBytes < 16n ||
      (sizeBytes & (sizeBytes - 1n)) !== 0n
    ) {
      throw new RangeError(
        `Cannot build BAR ${index} of ${sizeBytes} bytes: it must be a power of two >= 16 in BARs 0-${barCount - 1}`,
      );
    }
    next = (next + sizeBytes - 1n) & ~(sizeBytes - 1n);
    cs.write32(PCI_BASE_ADDRESS_0_OFFSET + 4 * index, Number(next & 0xfffffff0n));
    next += sizeBytes;
  }
  const caps: { id: number; at: number; length: number }[] = [];
  if (spec.pm !== undefined)
    caps.push({ id: PCI_CAP_ID.PM, at: SIMPLE_PM_OFFSET, length: PCI_PM_SIZEOF });
  if (spec.pcie !== undefined)
    caps.push({ id: PCI_CAP_ID.EXP, at: SIMPLE_EXP_OFFSET, length: PCI_EXP_CAP_V2_SIZE });
  if (caps.length > 0) {
    cs.write16(0x06, PCI_STATUS_CAP_LIST);
    cs.write8(PCI_CAPABILITY_LIST_OFFSET, caps[0]?.at ?? 0);
    caps.forEach((cap, i) => {
      cs.write8(cap.at, cap.id);
      cs.write8(cap.at + 1, caps[i + 1]?.at ?? 0);
    });
  }
  if (spec.pm !== undefined) {
    cs.write16(SIMPLE_PM_OFFSET + 2, 0x0003); // PM 1.2
    cs.write16(
      SIMPLE_PM_OFFSET + PCI_PM_CTRL_OFFSET,
      spec.pm.noSoftReset === true ? PCI_PM_CTRL_NO_SOFT_RESET : 0,
    );
  }
  if (spec.pcie !== undefined) {
    cs.write16(SIMPLE_EXP_OFFSET + PCI_EXP_FLAGS_OFFSET, 0x0002); // v2, endpoint
    cs.write32(
      SIMPLE_EXP_OFFSET + PCI_EXP_DEVCAP_OFFSET,
      spec.pcie.flr === true ? PCI_EXP_DEVCAP_FLR : 0,
    );
  }
  return cs.bytes();
}

/** BARs per header layout: 6, 2 (bridge), 1 (CardBus), else none. */
export function barCountOf(headerType: number): number {
  if (headerType === PCI_HEADER_TYPE_NORMAL) return PCI_TYPE0_BAR_COUNT;
  if (headerType === PCI_HEADER_TYPE_BRIDGE) return PCI_TYPE1_BAR_COUNT;
  if (headerType === PCI_HEADER_TYPE_CARDBUS) return 1;
  return 0;
}

function romOffsetOf(headerType: number): number | undefined {
  if (headerType === PCI_HEADER_TYPE_NORMAL) return PCI_ROM_ADDRESS_OFFSET;
  if (headerType === PCI_HEADER_TYPE_BRIDGE) return PCI_ROM_ADDRESS1_OFFSET;
  return undefined;
}

/** Pads a 64-byte header-only dump to the 256 bytes every function has. */
export function padConfig(config: Uint8Array): Uint8Array {
  if (config.length >= PCI_CFG_SPACE_SIZE) return config.slice();
  const padded = new Uint8Array(PCI_CFG_SPACE_SIZE);
  padded.set(config);
  return padded;
}

/**
 * The resource table the kernel would build from the BARs (`decode_bar` flags plus
 * `IORESOURCE_SIZEALIGN`). A BAR's size comes from `sizes` (lspci's `[size=...]`)
 * and is otherwise the largest the address alignment allows, capped at 4 KiB (memory),
 * 256 bytes (I/O) or 64 KiB (ROM). An implemented BAR at address 0 is `UNSET`.
 */
export function decodeResources(
  config: Uint8Array,
  sizes: ReadonlyMap<number, bigint> = new Map(),
): PciResource[] {
  const cs = new ConfigSpace(config.length >= PCI_CFG_SPACE_SIZE ? config : padConfig(config));
  const resources: PciResource[] = Array.from({ length: PCI_NUM_RESOURCES }, () => EMPTY_RESOURCE);
  const barCount = cs.barCount;
  for (let index = 0; index < barCount; index++) {
    const raw = cs.bar(index);
    const given = sizes.get(index);
    if ((raw & PCI_BASE_ADDRESS_SPACE_IO) !== 0) {
      const start = BigInt((raw & PCI_BASE_ADDRESS_IO_MASK) >>> 0);
      resources[index] = makeResource(
        start,
        given ?? guessSize(start, 256n),
        IORESOURCE.IO | (raw & 0x3),
      );
      continue;
    }
    const is64 =
      (raw & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64 &&
      index + 1 < barCount;
    let start = BigInt((raw & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
    if (is64) start |= BigInt(cs.bar(index + 1)) << 32n;
    if (start !== 0n || given !== undefined) {
      let flags = IORESOURCE.MEM | (raw & 0xf);
      if ((raw & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0) flags |= IORESOURCE.PREFETCH;
      if (is64) flags |= IORESOURCE.MEM_64;
      resources[index] = makeResource(start, given ?? guessSize(start, 4096n), flags);
    }
    if (is64) index++;
  }
  const romOffset = romOffsetOf(cs.headerType);
  if (romOffset !== undefined) {
    const raw = cs.read32(romOffset);
    const start = BigInt((raw & PCI_ROM_ADDRESS_MASK) >>> 0);
    const given = sizes.get(PCI_ROM_RESOURCE);
    if (start !== 0n || given !== undefined) {
      const flags =
        IORESOURCE.MEM |
        IORESOURCE.PREFETCH |
        IORESOURCE_READONLY |
        ((raw & PCI_ROM_ADDRESS_ENABLE) !== 0 ? IORESOURCE.ROM_ENABLE : 0);
      resources[PCI_ROM_RESOURCE] = makeResource(start, given ?? guessSize(start, 0x10000n), flags);
    }
  }
  return resources;
}

function makeResource(start: bigint, sizeBytes: bigint, flags: number): PciResource {
  const unset = start === 0n ? IORESOURCE.UNSET : 0;
  return Object.freeze({ start, sizeBytes, flags: (flags | IORESOURCE_SIZEALIGN | unset) >>> 0 });
}

function guessSize(start: bigint, cap: bigint): bigint {
  if (start === 0n) return cap;
  const lowest = start & -start;
  return lowest < cap ? lowest : cap;
}

/** What the fake knows of a function's place, for the bus reset probe. */
export interface ResetProbeContext {
  /** The function sits on a root bus (no bridge above it). */
  readonly onRootBus: boolean;
  /** Other functions share its bus. */
  readonly hasSiblings: boolean;
}

/**
 * The methods `pci_init_reset_methods` would find, in the kernel's order: FLR (PCIe
 * DevCap), AF FLR (TP and FLR), PM (a PM capability without No_Soft_Reset), and a
 * secondary bus reset for an endpoint alone behind its bridge. Device-specific, ACPI
 * and CXL resets need platform knowledge the fake does not have.
 */
export function probeResetMethods(
  config: Uint8Array,
  context: ResetProbeContext,
): PciResetMethod[] {
  const cs = new ConfigSpace(config.length >= PCI_CFG_SPACE_SIZE ? config : padConfig(config));
  const methods: PciResetMethod[] = [];
  const exp = findCapability(cs, PCI_CAP_ID.EXP);
  if (exp !== undefined && exp + 8 <= cs.sizeBytes) {
    if ((cs.read32(exp + PCI_EXP_DEVCAP_OFFSET) & PCI_EXP_DEVCAP_FLR) !== 0) methods.push('flr');
  }
  const af = findCapability(cs, PCI_CAP_ID.AF);
  if (af !== undefined && af + 4 <= cs.sizeBytes) {
    const cap = cs.read8(af + PCI_AF_CAP_OFFSET);
    if ((cap & PCI_AF_CAP_TP) !== 0 && (cap & PCI_AF_CAP_FLR) !== 0) methods.push('af_flr');
  }
  const pm = findCapability(cs, PCI_CAP_ID.PM);
  if (pm !== undefined && pm + 6 <= cs.sizeBytes) {
    if ((cs.read16(pm + PCI_PM_CTRL_OFFSET) & PCI_PM_CTRL_NO_SOFT_RESET) === 0) methods.push('pm');
  }
  if (!context.onRootBus && !context.hasSiblings && cs.headerType === PCI_HEADER_TYPE_NORMAL) {
    methods.push('bus');
  }
  return methods;
}

/** Which bits of each config byte a write may change, and which are write-one-to-clear. */
export interface ConfigWriteMasks {
  readonly writable: Uint8Array;
  readonly rw1c: Uint8Array;
}

/**
 * Write masks for `config` with the resource table `resources` (BAR sizes decide
 * which address bits a BAR keeps).
 */
export function configWriteMasks(
  config: Uint8Array,
  resources: readonly PciResource[],
): ConfigWriteMasks {
  const size = config.length;
  const writable = new Uint8Array(size);
  const rw1c = new Uint8Array(size);
  const cs = new ConfigSpace(config);
  const set = (at: number, mask: number, bytes: number, target = writable): void => {
    for (let i = 0; i < bytes && at + i < size; i++) target[at + i] = (mask >>> (8 * i)) & 0xff;
  };
  set(0x04, 0x07ff, 2); // COMMAND: IO .. INTX_DISABLE
  set(0x06, 0xf900, 2, rw1c); // STATUS error bits
  set(0x0c, 0xffff, 2); // cache line size, latency timer
  set(0x3c, 0xff, 1); // interrupt line
  const headerType = cs.headerType;
  const barCount = barCountOf(headerType);
  for (let index = 0; index < barCount; index++) {
    const res = resources[index] ?? EMPTY_RESOURCE;
    if (res.flags === 0 || res.sizeBytes === 0n) continue;
    const sizeMask = ~(res.sizeBytes - 1n);
    const at = PCI_BASE_ADDRESS_0_OFFSET + 4 * index;
    const lowBits =
      (res.flags & IORESOURCE.IO) !== 0 ? PCI_BASE_ADDRESS_IO_MASK : PCI_BASE_ADDRESS_MEM_MASK;
    set(at, Number(sizeMask & 0xffffffffn) & lowBits, 4);
    if ((res.flags & IORESOURCE.MEM_64) !== 0 && index + 1 < barCount) {
      set(at + 4, Number((sizeMask >> 32n) & 0xffffffffn), 4);
      index++;
    }
  }
  const romOffset = romOffsetOf(headerType);
  const rom = resources[PCI_ROM_RESOURCE] ?? EMPTY_RESOURCE;
  if (romOffset !== undefined && rom.flags !== 0 && rom.sizeBytes !== 0n) {
    set(
      romOffset,
      (Number(~(rom.sizeBytes - 1n) & 0xffffffffn) & PCI_ROM_ADDRESS_MASK) | PCI_ROM_ADDRESS_ENABLE,
      4,
    );
  }
  if (headerType === PCI_HEADER_TYPE_BRIDGE) {
    set(0x18, 0xffffffff, 4); // bus numbers, secondary latency
    set(0x1c, 0xf0f0, 2); // I/O base/limit (type nibbles read-only)
    set(0x1e, 0xf900, 2, rw1c); // secondary status
    set(0x20, 0xfff0fff0, 4); // memory base/limit
    set(0x24, 0xfff0fff0, 4); // prefetchable base/limit
    set(0x28, 0xffffffff, 4);
    set(0x2c, 0xffffffff, 4);
    set(0x30, 0xffffffff, 4); // I/O upper 16 bits
    set(0x3e, 0x0fff, 2); // bridge control
  } else if (headerType === PCI_HEADER_TYPE_CARDBUS) {
    set(0x18, 0xffffffff, 4);
    for (let at = 0x1c; at < 0x2c; at += 4) set(at, 0xffffffff, 4);
    set(0x3e, 0xffff, 2);
  }
  // Capability bodies are writable; their headers and the registers below are not.
  for (let at = 0x40; at < Math.min(size, PCI_CFG_SPACE_SIZE); at++) writable[at] = 0xff;
  for (const cap of walkCapabilities(cs)) {
    set(cap.byteOffset, 0, 2);
    const at = cap.byteOffset;
    switch (cap.id) {
      case PCI_CAP_ID.PM:
        set(at + 2, 0, 2); // PMC
        set(at + PCI_PM_CTRL_OFFSET, 0x1f03, 2); // state, PME_En, data select
        set(at + PCI_PM_CTRL_OFFSET, 0x8000, 2, rw1c); // PME_Status
        set(at + 6, 0, 2);
        break;
      case PCI_CAP_ID.EXP:
        set(at + PCI_EXP_FLAGS_OFFSET, 0, 2);
        set(at + PCI_EXP_DEVCAP_OFFSET, 0, 4);
        set(at + PCI_EXP_DEVCTL_OFFSET, 0xffff, 2);
        set(at + PCI_EXP_DEVSTA_OFFSET, 0, 2);
        set(at + PCI_EXP_DEVSTA_OFFSET, 0x000f, 2, rw1c);
        set(at + 12, 0, 4); // link capabilities
        break;
      case PCI_CAP_ID.MSI:
        set(at + PCI_MSI_FLAGS_OFFSET, 0x0071, 2); // enable, multiple message enable
        break;
      case PCI_CAP_ID.MSIX:
        set(at + PCI_MSIX_FLAGS_OFFSET, 0xc000, 2); // enable, function mask
        set(at + 4, 0, 8); // table and PBA locations
        break;
      default:
        break;
    }
  }
  if (size > PCI_CFG_SPACE_SIZE) {
    for (let at = PCI_CFG_SPACE_SIZE; at < size; at++) writable[at] = 0xff;
    for (const cap of walkExtendedCapabilities(cs)) set(cap.byteOffset, 0, 4);
  }
  return { writable, rw1c };
}

/** One write to a config image: `data` at `byteOffset`. */
export interface ConfigWrite {
  readonly byteOffset: number;
  readonly data: Uint8Array;
}

/** Applies `write` to `config` through `masks` (bytes past the end are dropped). */
export function applyConfigWrite(
  config: Uint8Array,
  masks: ConfigWriteMasks,
  write: ConfigWrite,
): void {
  const { byteOffset, data } = write;
  for (let i = 0; i < data.length; i++) {
    const at = byteOffset + i;
    if (at >= config.length) break;
    const value = data[i] ?? 0;
    const keep = (config[at] ?? 0) & ~(masks.writable[at] ?? 0);
    const written = value & (masks.writable[at] ?? 0);
    config[at] = (keep | written) & ~(value & (masks.rw1c[at] ?? 0)) & 0xff;
  }
}
