// SPDX-License-Identifier: MIT
/**
 * Root bus scanning as pcifront does it (spec §9 "Connection" steps 2-3): probe every
 * devfn 0x00-0xff of each published root with a dword read at 0, then read the header,
 * size the BARs and walk the capabilities, all through the backend's config ops. The
 * result is plain data (JSON-serializable) so a guest worker can post it.
 */
import {
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_MULTIFUNCTION_BIT,
  PCI_HEADER_TYPE_NORMAL,
  PCI_HEADER_TYPE_OFFSET,
  PCI_INTERRUPT_LINE_OFFSET,
  PCI_PRIMARY_BUS_OFFSET,
  PCI_REVISION_ID_OFFSET,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS_OFFSET,
  PCI_STATUS_OFFSET,
  PCI_SUBSYSTEM_VENDOR_ID_OFFSET,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
} from '../abi/pci-regs.js';
import {
  walkCapabilities,
  walkExtendedCapabilities,
  type ConfigReader,
} from '../pci/capabilities.js';
import { PCIBIOS } from '../abi/pcibios.js';
import type { GuestFunctionAddress, Pcifront } from './pcifront.js';

/** A root bus the backend published (`root-N` = `DDDD:BB`). */
export interface GuestPciRoot {
  readonly domain: number;
  readonly bus: number;
}

/** The root pcifront falls back to when the backend publishes none (spec §9 step 2). */
export const DEFAULT_ROOTS: readonly GuestPciRoot[] = Object.freeze([
  Object.freeze({ domain: 0, bus: 0 }),
]);

/**
 * Parses a `root-N` value (`%x:%x`, spec §9 step 2): two hex numbers, domain <= 0xffff,
 * bus <= 0xff.
 *
 * @throws {SyntaxError} naming the part that is wrong.
 * @example
 * parseRoot('0000:00'); // { domain: 0, bus: 0 }
 */
export function parseRoot(text: string): GuestPciRoot {
  const match = /^\s*([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,8})\s*$/.exec(text);
  if (match === null) {
    throw new SyntaxError(`Invalid PCI root "${text}": expected two hex numbers "DDDD:BB"`);
  }
  const domain = parseInt(match[1] ?? '', 16);
  const bus = parseInt(match[2] ?? '', 16);
  if (domain > 0xffff) {
    throw new SyntaxError(`Invalid PCI root "${text}": domain is out of range 0-0xffff`);
  }
  if (bus > 0xff) throw new SyntaxError(`Invalid PCI root "${text}": bus is out of range 0-0xff`);
  return { domain, bus };
}

/** One sized BAR. */
export interface GuestBar {
  /** BAR number (the lower one of a 64-bit pair). */
  readonly index: number;
  readonly kind: 'memory' | 'io';
  readonly is64Bit: boolean;
  readonly prefetchable: boolean;
  /** Base address (exact below 2^53, which covers every physical address in use). */
  readonly address: number;
  readonly sizeBytes: number;
}

/** The expansion ROM BAR. */
export interface GuestRom {
  readonly address: number;
  readonly sizeBytes: number;
  readonly enabled: boolean;
}

/** One standard capability with its first dword (ID, next, 16-bit control). */
export interface GuestCapability {
  readonly id: number;
  readonly byteOffset: number;
  /** The dword at the capability: bits 31:16 are its control/flags word. */
  readonly header: number;
}

/** One extended capability. */
export interface GuestExtCapability {
  readonly id: number;
  readonly version: number;
  readonly byteOffset: number;
}

/** A function the guest found, as plain serializable data. */
export interface GuestPciDevice {
  /** `DDDD:BB:SS.F`. */
  readonly address: string;
  readonly domain: number;
  readonly bus: number;
  readonly devfn: number;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  /** 24-bit class code: base class, sub-class, programming interface. */
  readonly classCode: number;
  /** Header layout without the multi-function bit. */
  readonly headerType: number;
  readonly multiFunction: boolean;
  readonly command: number;
  readonly status: number;
  /** Type 0 only. */
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  /** 0 none, 1..4 INTA..INTD. */
  readonly interruptPin: number;
  readonly interruptLine: number;
  readonly bars: readonly GuestBar[];
  readonly rom?: GuestRom;
  readonly capabilities: readonly GuestCapability[];
  readonly extendedCapabilities: readonly GuestExtCapability[];
  /** 256, or 4096 for a PCIe function. */
  readonly configSizeBytes: number;
  /** Type 1 only. */
  readonly bridge?: {
    readonly primaryBus: number;
    readonly secondaryBus: number;
    readonly subordinateBus: number;
  };
}

/** Options of {@link enumerate}. */
export interface EnumerateOptions {
  /** Roots to scan; default {@link DEFAULT_ROOTS}. */
  roots?: readonly GuestPciRoot[];
  /**
   * Also scan the secondary bus of each bridge found (as Linux's child-bus scan does).
   * Default true; each bus is scanned once and at most 256 buses in all.
   */
  scanBridges?: boolean;
  /**
   * Clear I/O and memory decode while sizing BARs, as Linux's `pci_read_bases` does.
   * Default true. pciback virtualises those bits, so the writes are harmless.
   */
  disableDecodeWhileSizing?: boolean;
}

/** What {@link enumerate} found. */
export interface EnumerationResult {
  readonly devices: GuestPciDevice[];
  /** The buses scanned, as `DDDD:BB`. */
  readonly busesScanned: string[];
  /**
   * Set when the scan stopped early because the backend stopped answering (an op timed
   * out): the devices found so far are still listed.
   */
  readonly error?: string;
}

/** Raised inside the scan when an op times out; turned into `EnumerationResult.error`. */
class BackendGone extends Error {}

const MAX_BUSES = 256;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** `DDDD:BB:SS.F` of a guest address. */
export function formatGuestAddress(a: GuestFunctionAddress): string {
  return `${hex(a.domain, 4)}:${hex(a.bus, 2)}:${hex(a.devfn >> 3, 2)}.${a.devfn & 7}`;
}

/** Config access to one function through the frontend; failures read as all-ones. */
class FrontConfig implements ConfigReader {
  sizeBytes: number = PCI_CFG_SPACE_SIZE;
  readonly #front: Pcifront;
  readonly #address: GuestFunctionAddress;

  constructor(front: Pcifront, address: GuestFunctionAddress) {
    this.#front = front;
    this.#address = address;
  }

  read(byteOffset: number, size: 1 | 2 | 4): number {
    const r = this.#front.readConfig(this.#address, byteOffset, size);
    if (r.timedOut) throw new BackendGone();
    return r.value;
  }

  write(byteOffset: number, size: 1 | 2 | 4, value: number): void {
    const r = this.#front.writeConfig(this.#address, byteOffset, size, value);
    if (r.timedOut) throw new BackendGone();
  }

  read8(byteOffset: number): number {
    return this.read(byteOffset, 1);
  }

  read16(byteOffset: number): number {
    return this.read(byteOffset, 2);
  }

  read32(byteOffset: number): number {
    return this.read(byteOffset, 4);
  }
}

/**
 * Linux's `pci_bus_generic_read_dev_vendor_id` test: all-ones, all-zeroes and the two
 * half-zero patterns mean "nothing here".
 */
function isAbsent(id: number): boolean {
  return id === 0xffffffff || id === 0 || id === 0x0000ffff || id === 0xffff0000;
}

/** The lowest set bit of a 64-bit size mask (BigInt: sizes can exceed 2^32). */
function lowestBit(mask: bigint): bigint {
  return mask & -mask;
}

/** Sizes one BAR: write all-ones, read back, restore (Linux `__pci_read_base`). */
function sizeBar(
  cfg: FrontConfig,
  index: number,
  barCount: number,
): { bar: GuestBar | undefined; slots: number } {
  const offset = PCI_BASE_ADDRESS_0_OFFSET + index * 4;
  const low = cfg.read32(offset);
  cfg.write(offset, 4, 0xffffffff);
  let sz = cfg.read32(offset);
  cfg.write(offset, 4, low);
  if (sz === 0xffffffff) sz = 0; // a function that went away reads all-ones
  const base = low === 0xffffffff ? 0 : low;
  if ((base & PCI_BASE_ADDRESS_SPACE_IO) !== 0) {
    // x86 I/O space is 64 KiB: only the low 16 bits size the BAR (IO_SPACE_LIMIT).
    const mask = PCI_BASE_ADDRESS_IO_MASK & 0xffff;
    const size = Number(lowestBit(BigInt((sz & mask) >>> 0)));
    if (size === 0) return { bar: undefined, slots: 1 };
    const bar: GuestBar = {
      index,
      kind: 'io',
      is64Bit: false,
      prefetchable: false,
      address: (base & mask) >>> 0,
      sizeBytes: size,
    };
    return { bar, slots: 1 };
  }
  const is64 = (base & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
  const prefetchable = (base & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0;
  let base64 = BigInt((base & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
  let sz64 = BigInt((sz & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
  let slots = 1;
  if (is64) {
    if (index + 1 >= barCount) return { bar: undefined, slots: 1 }; // no upper half: broken
    const upperOffset = offset + 4;
    const high = cfg.read32(upperOffset);
    cfg.write(upperOffset, 4, 0xffffffff);
    const szHigh = cfg.read32(upperOffset);
    cfg.write(upperOffset, 4, high);
    base64 |= BigInt(high >>> 0) << 32n;
    // Linux treats an upper half reading all-ones together with a zero lower mask as
    // "not implemented"; otherwise the two halves form one 64-bit mask.
    sz64 |= BigInt(szHigh >>> 0) << 32n;
    slots = 2;
  }
  if (sz64 === 0n) return { bar: undefined, slots };
  const size = lowestBit(sz64);
  return {
    bar: {
      index,
      kind: 'memory',
      is64Bit: is64,
      prefetchable,
      address: Number(base64),
      sizeBytes: Number(size),
    },
    slots,
  };
}

function sizeRom(cfg: FrontConfig, offset: number): GuestRom | undefined {
  const rom = cfg.read32(offset);
  // Linux writes the address mask only: the enable bit stays clear while sizing.
  cfg.write(offset, 4, PCI_ROM_ADDRESS_MASK);
  let sz = cfg.read32(offset);
  cfg.write(offset, 4, rom);
  if (sz === 0xffffffff) sz = 0;
  const size = Number(lowestBit(BigInt((sz & PCI_ROM_ADDRESS_MASK) >>> 0)));
  if (size === 0) return undefined;
  return {
    address: (rom & PCI_ROM_ADDRESS_MASK) >>> 0,
    sizeBytes: size,
    enabled: (rom & PCI_ROM_ADDRESS_ENABLE) !== 0,
  };
}

function probeFunction(
  front: Pcifront,
  address: GuestFunctionAddress,
  options: EnumerateOptions,
): GuestPciDevice | undefined {
  const cfg = new FrontConfig(front, address);
  const id = front.readConfig(address, 0, 4);
  if (id.timedOut) throw new BackendGone();
  if (id.pcibios !== PCIBIOS.SUCCESSFUL || isAbsent(id.value)) return undefined;
  const headerByte = cfg.read8(PCI_HEADER_TYPE_OFFSET);
  const headerType = headerByte & PCI_HEADER_TYPE_MASK;
  const classDword = cfg.read32(PCI_REVISION_ID_OFFSET);
  const command = cfg.read16(PCI_COMMAND_OFFSET);
  const status = cfg.read16(PCI_STATUS_OFFSET);
  const intDword = cfg.read32(PCI_INTERRUPT_LINE_OFFSET);

  const barCount =
    headerType === PCI_HEADER_TYPE_NORMAL
      ? PCI_TYPE0_BAR_COUNT
      : headerType === PCI_HEADER_TYPE_BRIDGE
        ? PCI_TYPE1_BAR_COUNT
        : 0;
  const decode = command & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
  let quiet = (options.disableDecodeWhileSizing ?? true) && decode !== 0 && barCount > 0;
  if (quiet) cfg.write(PCI_COMMAND_OFFSET, 2, command & ~decode);
  const bars: GuestBar[] = [];
  let rom: GuestRom | undefined;
  try {
    for (let i = 0; i < barCount;) {
      const { bar, slots } = sizeBar(cfg, i, barCount);
      if (bar !== undefined) bars.push(bar);
      i += slots;
    }
    if (headerType === PCI_HEADER_TYPE_NORMAL) rom = sizeRom(cfg, PCI_ROM_ADDRESS_OFFSET);
    else if (headerType === PCI_HEADER_TYPE_BRIDGE) rom = sizeRom(cfg, PCI_ROM_ADDRESS1_OFFSET);
  } catch (err) {
    // A dead backend would only time out once more on the restore: skip it.
    if (err instanceof BackendGone) quiet = false;
    throw err;
  } finally {
    if (quiet) cfg.write(PCI_COMMAND_OFFSET, 2, command);
  }

  const capabilities = walkCapabilities(cfg).map((c) => ({
    id: c.id,
    byteOffset: c.byteOffset,
    header: cfg.read32(c.byteOffset),
  }));
  const isPcie = capabilities.some((c) => c.id === PCI_CAP_ID.EXP);
  if (isPcie) cfg.sizeBytes = PCI_CFG_SPACE_EXP_SIZE;
  const extendedCapabilities = isPcie ? walkExtendedCapabilities(cfg) : [];
  // Linux's pci_cfg_space_size: a PCIe function whose 0x100 reads all-ones has 256 bytes.
  const configSizeBytes =
    isPcie && cfg.read32(0x100) !== 0xffffffff ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;

  const device: {
    -readonly [K in keyof GuestPciDevice]: GuestPciDevice[K];
  } = {
    address: formatGuestAddress(address),
    domain: address.domain,
    bus: address.bus,
    devfn: address.devfn,
    vendorId: id.value & 0xffff,
    deviceId: id.value >>> 16,
    revision: classDword & 0xff,
    classCode: classDword >>> 8,
    headerType,
    multiFunction: (headerByte & PCI_HEADER_TYPE_MULTIFUNCTION_BIT) !== 0,
    command,
    status,
    interruptPin: (intDword >>> 8) & 0xff,
    interruptLine: intDword & 0xff,
    bars,
    capabilities,
    extendedCapabilities,
    configSizeBytes,
  };
  if (rom !== undefined) device.rom = rom;
  if (headerType === PCI_HEADER_TYPE_NORMAL) {
    const sub = cfg.read32(PCI_SUBSYSTEM_VENDOR_ID_OFFSET);
    device.subsystemVendorId = sub & 0xffff;
    device.subsystemId = sub >>> 16;
  } else if (headerType === PCI_HEADER_TYPE_BRIDGE) {
    const buses = cfg.read32(PCI_PRIMARY_BUS_OFFSET);
    device.bridge = {
      primaryBus: buses & 0xff,
      secondaryBus: (buses >>> 8) & 0xff,
      subordinateBus: (buses >>> 16) & 0xff,
    };
  }
  return device;
}

/**
 * Scans the roots through `front` (spec §9 step 3): every devfn of each bus, not only
 * function 0 (a vpci slot may hold a function without its function 0). Bridges' secondary
 * buses are scanned too unless `scanBridges` is false. Never hangs: the first op that
 * times out ends the scan with `error` set.
 *
 * @example
 * const { devices } = enumerate(front, { roots: [parseRoot('0000:00')] });
 */
export function enumerate(front: Pcifront, options: EnumerateOptions = {}): EnumerationResult {
  const devices: GuestPciDevice[] = [];
  const busesScanned: string[] = [];
  const queue: GuestPciRoot[] = [...(options.roots ?? DEFAULT_ROOTS)];
  const seen = new Set<string>();
  try {
    while (queue.length > 0 && busesScanned.length < MAX_BUSES) {
      const root = queue.shift();
      if (root === undefined) break;
      const key = `${hex(root.domain, 4)}:${hex(root.bus, 2)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      busesScanned.push(key);
      for (let devfn = 0; devfn <= 0xff; devfn++) {
        const device = probeFunction(front, { domain: root.domain, bus: root.bus, devfn }, options);
        if (device === undefined) continue;
        devices.push(device);
        const secondary = device.bridge?.secondaryBus ?? 0;
        if ((options.scanBridges ?? true) && secondary !== 0) {
          queue.push({ domain: root.domain, bus: secondary });
        }
      }
    }
  } catch (err) {
    if (!(err instanceof BackendGone)) throw err;
    return {
      devices,
      busesScanned,
      error: `Cannot finish the PCI scan: pciback not responding (no answer within ${front.opTimeoutMs} ms)`,
    };
  }
  return { devices, busesScanned };
}
