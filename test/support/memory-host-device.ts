// SPDX-License-Identifier: MIT
/**
 * A `HostPciDevice` whose "hardware" is a plain byte array: every byte reads back what
 * was last written, with no register semantics (no read-only bits, no RW1C). Tests put
 * it behind the config-space virtualizer and assert exactly what reached hardware:
 * every `writeConfig` and every PCI-core call is recorded in `calls`, and the effect a
 * Linux PCI core call would have on the registers is applied to the bytes directly (not
 * through `writeConfig`), so the two can be told apart.
 *
 * The PCI-core effects follow Linux (`drivers/pci/pci.c`), simplified where noted.
 */
import {
  PCI_CAP_ID,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_CAPABILITY_LIST_OFFSET,
  PCI_DEVICE_ID_OFFSET,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_OFFSET,
  PCI_INTERRUPT_PIN_OFFSET,
  PCI_LATENCY_TIMER_OFFSET,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_OFFSET,
  PCI_PM_CAP_D1,
  PCI_PM_CAP_D2,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_CTRL_STATE_MASK,
  PCI_PM_PMC_OFFSET,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_OFFSET,
  PCI_VENDOR_ID_OFFSET,
} from '../../src/abi/pci-regs.js';
import { PciAddress } from '../../src/pci/address.js';
import { findCapability, type ConfigReader } from '../../src/pci/capabilities.js';
import {
  EMPTY_RESOURCE,
  IORESOURCE,
  PCI_NUM_RESOURCES,
  PCI_ROM_RESOURCE,
  type PciResource,
} from '../../src/pci/resource.js';
import type {
  ConfigAccessSize,
  ConfigReadResult,
  HostPciDevice,
  Logger,
  PciPowerState,
} from '../../src/platform/types.js';

const EINVAL = -22;
const EIO = -5;

/** One thing that reached the device, in order. */
export type MemoryDeviceCall =
  | { readonly op: 'readConfig'; readonly byteOffset: number; readonly sizeBytes: number }
  | {
      readonly op: 'writeConfig';
      readonly byteOffset: number;
      readonly sizeBytes: number;
      readonly value: number;
    }
  | { readonly op: 'enableDevice'; readonly result: number }
  | { readonly op: 'disableDevice' }
  | { readonly op: 'setMaster' }
  | { readonly op: 'clearMaster' }
  | { readonly op: 'setMwi'; readonly result: number }
  | { readonly op: 'clearMwi' }
  | { readonly op: 'intx'; readonly enable: boolean }
  | { readonly op: 'setPowerState'; readonly state: PciPowerState; readonly result: number };

/** Names of the recorded operations. */
export type MemoryDeviceOp = MemoryDeviceCall['op'];

/** How to build a {@link MemoryHostDevice}. */
export interface MemoryHostDeviceOptions {
  /** Initial config bytes (copied; shorter images are zero-padded). */
  readonly config?: Uint8Array;
  /** 256 or 4096 (default: 4096). */
  readonly configSizeBytes?: number;
  /** Default `0000:03:00.0`. */
  readonly address?: PciAddress;
  /** Cached vendor ID; default: from the image. */
  readonly vendorId?: number;
  /** Cached device ID; default: from the image. */
  readonly deviceId?: number;
  /** Default: from byte 0x0e of the image. */
  readonly headerType?: number;
  /** Resource table (missing entries are empty). */
  readonly resources?: readonly PciResource[];
  /** `dev->irq`; default 0. */
  readonly irq?: number;
  /** Result `enableDevice` returns (default 0); non-zero means nothing changes. */
  readonly enableResult?: number;
  /** Result `setMwi` returns (default 0). */
  readonly mwiResult?: number;
  /** Forced result of `setPowerState` (default: derived from the PM capability). */
  readonly powerStateResult?: number;
  /** Record `readConfig` calls too (default false: reads are many). */
  readonly recordReads?: boolean;
  /** Apply x86's "raise a latency timer below 16 to 64" in `setMaster` (default true). */
  readonly raiseLatencyOnSetMaster?: boolean;
}

/**
 * A byte-array PCI function behind the `HostPciDevice` interface.
 *
 * @example
 * const dev = new MemoryHostDevice({ config: image, irq: 11 });
 * dev.writeConfig(0x0c, 1, 0x10);
 * dev.peek(0x0c, 1); // 0x10
 * dev.callsOf('writeConfig'); // [{ op: 'writeConfig', byteOffset: 12, ... }]
 */
export class MemoryHostDevice implements HostPciDevice {
  readonly address: PciAddress;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly headerType: number;
  readonly configSizeBytes: number;
  /** Everything that reached the device, in order. */
  readonly calls: MemoryDeviceCall[] = [];
  /** What `enableDevice` returns; non-zero fails without changing anything. */
  enableResult: number;
  /** What `setMwi` returns; non-zero fails without changing anything. */
  mwiResult: number;
  /** Forced `setPowerState` result; undefined derives it from the PM capability. */
  powerStateResult: number | undefined;
  /** `dev->irq`; tests change it to model MSI overwriting it. */
  irqNumber: number;

  readonly #bytes: Uint8Array;
  readonly #resources: PciResource[];
  readonly #recordReads: boolean;
  readonly #raiseLatency: boolean;
  readonly #readFailures = new Map<number, number>();
  #enableCount = 0;
  #busMaster = false;

  constructor(options: MemoryHostDeviceOptions = {}) {
    this.configSizeBytes = options.configSizeBytes ?? PCI_CFG_SPACE_EXP_SIZE;
    if (
      this.configSizeBytes !== PCI_CFG_SPACE_SIZE &&
      this.configSizeBytes !== PCI_CFG_SPACE_EXP_SIZE
    ) {
      throw new RangeError(
        `Cannot create a memory device of ${this.configSizeBytes} bytes: expected 256 or 4096`,
      );
    }
    this.#bytes = new Uint8Array(this.configSizeBytes);
    if (options.config !== undefined) {
      this.#bytes.set(options.config.subarray(0, this.configSizeBytes));
    }
    this.address = options.address ?? new PciAddress(0, 3, 0, 0);
    this.vendorId = options.vendorId ?? this.peek(PCI_VENDOR_ID_OFFSET, 2);
    this.deviceId = options.deviceId ?? this.peek(PCI_DEVICE_ID_OFFSET, 2);
    this.headerType =
      options.headerType ?? this.peek(PCI_HEADER_TYPE_OFFSET, 1) & PCI_HEADER_TYPE_MASK;
    this.#resources = Array.from(
      { length: PCI_NUM_RESOURCES },
      (_, i) => options.resources?.[i] ?? EMPTY_RESOURCE,
    );
    this.irqNumber = options.irq ?? 0;
    this.enableResult = options.enableResult ?? 0;
    this.mwiResult = options.mwiResult ?? 0;
    this.powerStateResult = options.powerStateResult;
    this.#recordReads = options.recordReads ?? false;
    this.#raiseLatency = options.raiseLatencyOnSetMaster ?? true;
  }

  // --- config accessors (the platform's, x86-like) ---

  readConfig(byteOffset: number, sizeBytes: ConfigAccessSize): ConfigReadResult {
    if (this.#recordReads) this.calls.push({ op: 'readConfig', byteOffset, sizeBytes });
    if (!this.#inRange(byteOffset, sizeBytes)) {
      return { value: allOnes(sizeBytes), err: EINVAL };
    }
    const failure = this.#readFailures.get(byteOffset);
    if (failure !== undefined) return { value: allOnes(sizeBytes), err: failure };
    return { value: this.peek(byteOffset, sizeBytes), err: 0 };
  }

  writeConfig(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): number {
    this.calls.push({ op: 'writeConfig', byteOffset, sizeBytes, value: value >>> 0 });
    if (!this.#inRange(byteOffset, sizeBytes)) return EINVAL;
    this.poke(byteOffset, sizeBytes, value);
    return 0;
  }

  /** Make reads starting at `byteOffset` fail with `err` (undefined: stop failing). */
  failReadsAt(byteOffset: number, err: number | undefined): void {
    if (err === undefined) this.#readFailures.delete(byteOffset);
    else this.#readFailures.set(byteOffset, err);
  }

  // --- direct access for tests (not recorded) ---

  /** Read `sizeBytes` little-endian bytes without recording a call. */
  peek(byteOffset: number, sizeBytes: number): number {
    let value = 0;
    for (let i = sizeBytes - 1; i >= 0; i--) {
      value = value * 256 + (this.#bytes[byteOffset + i] ?? 0);
    }
    return value;
  }

  /** Write `sizeBytes` little-endian bytes without recording a call. */
  poke(byteOffset: number, sizeBytes: number, value: number): void {
    let v = value >>> 0;
    for (let i = 0; i < sizeBytes; i++) {
      this.#bytes[byteOffset + i] = v & 0xff;
      v >>>= 8;
    }
  }

  /** A copy of the whole config space. */
  snapshot(): Uint8Array {
    return this.#bytes.slice();
  }

  /** The recorded calls of one kind. */
  callsOf<K extends MemoryDeviceOp>(op: K): Extract<MemoryDeviceCall, { op: K }>[] {
    return this.calls.filter((c): c is Extract<MemoryDeviceCall, { op: K }> => c.op === op);
  }

  /** Forget the recorded calls. */
  clearCalls(): void {
    this.calls.length = 0;
  }

  /** The current enable count (`dev->enable_cnt`). */
  get enableCount(): number {
    return this.#enableCount;
  }

  // --- HostPciDevice: resources and IRQ ---

  resources(): readonly PciResource[] {
    return this.#resources;
  }

  irq(): number {
    return this.irqNumber;
  }

  // --- HostPciDevice: PCI core services ---

  isEnabled(): boolean {
    return this.#enableCount > 0;
  }

  /**
   * `pci_enable_device`: the first enable turns on decode for the resources present
   * (ROM only when its enable bit was set at boot) and clears INTX_DISABLE when the
   * device has a pin and MSI/MSI-X are off in hardware. Simplified: no resource claim
   * checks; failure is injected with `enableResult`.
   */
  enableDevice(): number {
    const result = this.enableResult;
    this.calls.push({ op: 'enableDevice', result });
    if (result !== 0) return result;
    this.#enableCount++;
    if (this.#enableCount > 1) return 0;
    let cmd = this.peek(PCI_COMMAND_OFFSET, 2);
    this.#resources.forEach((res, i) => {
      if (i === PCI_ROM_RESOURCE && (res.flags & IORESOURCE.ROM_ENABLE) === 0) return;
      if ((res.flags & IORESOURCE.IO) !== 0) cmd |= PCI_COMMAND_IO;
      if ((res.flags & IORESOURCE.MEM) !== 0) cmd |= PCI_COMMAND_MEMORY;
    });
    if (this.peek(PCI_INTERRUPT_PIN_OFFSET, 1) !== 0 && !this.#msiOrMsixOn()) {
      cmd &= ~PCI_COMMAND_INTX_DISABLE;
    }
    this.poke(PCI_COMMAND_OFFSET, 2, cmd);
    return 0;
  }

  /** `pci_disable_device`: the last disable clears MASTER only (decode stays on). */
  disableDevice(): void {
    this.calls.push({ op: 'disableDevice' });
    this.#enableCount--;
    if (this.#enableCount !== 0) return;
    const cmd = this.peek(PCI_COMMAND_OFFSET, 2);
    if ((cmd & PCI_COMMAND_MASTER) !== 0) {
      this.poke(PCI_COMMAND_OFFSET, 2, cmd & ~PCI_COMMAND_MASTER);
    }
    this.#busMaster = false;
  }

  isBusMaster(): boolean {
    return this.#busMaster;
  }

  /** `pci_set_master` plus x86 `pcibios_set_master` (latency timer below 16 -> 64). */
  setMaster(): void {
    this.calls.push({ op: 'setMaster' });
    const cmd = this.peek(PCI_COMMAND_OFFSET, 2);
    if ((cmd & PCI_COMMAND_MASTER) === 0) {
      this.poke(PCI_COMMAND_OFFSET, 2, cmd | PCI_COMMAND_MASTER);
    }
    this.#busMaster = true;
    if (this.#raiseLatency && this.peek(PCI_LATENCY_TIMER_OFFSET, 1) < 16) {
      this.poke(PCI_LATENCY_TIMER_OFFSET, 1, 64);
    }
  }

  /** `pci_clear_master`. */
  clearMaster(): void {
    this.calls.push({ op: 'clearMaster' });
    const cmd = this.peek(PCI_COMMAND_OFFSET, 2);
    if ((cmd & PCI_COMMAND_MASTER) !== 0) {
      this.poke(PCI_COMMAND_OFFSET, 2, cmd & ~PCI_COMMAND_MASTER);
    }
    this.#busMaster = false;
  }

  /** `pci_set_mwi`: cache line size 64 bytes (16 dwords) unless already a multiple. */
  setMwi(): number {
    const result = this.mwiResult;
    this.calls.push({ op: 'setMwi', result });
    if (result !== 0) return result;
    const line = this.peek(PCI_CACHE_LINE_SIZE_OFFSET, 1);
    if (line === 0 || line % 16 !== 0) this.poke(PCI_CACHE_LINE_SIZE_OFFSET, 1, 16);
    const cmd = this.peek(PCI_COMMAND_OFFSET, 2);
    if ((cmd & PCI_COMMAND_INVALIDATE) === 0) {
      this.poke(PCI_COMMAND_OFFSET, 2, cmd | PCI_COMMAND_INVALIDATE);
    }
    return 0;
  }

  /** `pci_clear_mwi`. */
  clearMwi(): void {
    this.calls.push({ op: 'clearMwi' });
    const cmd = this.peek(PCI_COMMAND_OFFSET, 2);
    if ((cmd & PCI_COMMAND_INVALIDATE) !== 0) {
      this.poke(PCI_COMMAND_OFFSET, 2, cmd & ~PCI_COMMAND_INVALIDATE);
    }
  }

  /** `pci_intx`. */
  intx(enable: boolean): void {
    this.calls.push({ op: 'intx', enable });
    const cmd = this.peek(PCI_COMMAND_OFFSET, 2);
    const next = enable ? cmd & ~PCI_COMMAND_INTX_DISABLE : cmd | PCI_COMMAND_INTX_DISABLE;
    if (next !== cmd) this.poke(PCI_COMMAND_OFFSET, 2, next);
  }

  /**
   * `pci_set_power_state`, simplified: with a PM capability, D1/D2 need their support
   * bits and the state is written to PMCSR; without one only D0 succeeds (-EIO else).
   */
  setPowerState(state: PciPowerState): number {
    const pm = findCapability(this.#reader(), PCI_CAP_ID.PM);
    let result = this.powerStateResult;
    if (result === undefined) {
      if (pm === undefined) {
        result = state === 0 ? 0 : EIO;
      } else {
        const pmc = this.peek(pm + PCI_PM_PMC_OFFSET, 2);
        const unsupported =
          (state === 1 && (pmc & PCI_PM_CAP_D1) === 0) ||
          (state === 2 && (pmc & PCI_PM_CAP_D2) === 0);
        result = unsupported ? EIO : 0;
      }
    }
    this.calls.push({ op: 'setPowerState', state, result });
    if (result === 0 && pm !== undefined) {
      const pmcsr = this.peek(pm + PCI_PM_CTRL_OFFSET, 2);
      this.poke(pm + PCI_PM_CTRL_OFFSET, 2, (pmcsr & ~PCI_PM_CTRL_STATE_MASK) | state);
    }
    return result;
  }

  #inRange(byteOffset: number, sizeBytes: number): boolean {
    return (
      Number.isInteger(byteOffset) &&
      byteOffset >= 0 &&
      byteOffset + sizeBytes <= this.configSizeBytes &&
      byteOffset % sizeBytes === 0
    );
  }

  #reader(): ConfigReader {
    return {
      sizeBytes: this.configSizeBytes,
      read8: (o) => this.peek(o, 1),
      read16: (o) => this.peek(o, 2),
      read32: (o) => this.peek(o, 4),
    };
  }

  #msiOrMsixOn(): boolean {
    const reader = this.#reader();
    const msi = findCapability(reader, PCI_CAP_ID.MSI);
    const msix = findCapability(reader, PCI_CAP_ID.MSIX);
    return (
      (msi !== undefined &&
        (this.peek(msi + PCI_MSI_FLAGS_OFFSET, 2) & PCI_MSI_FLAGS_ENABLE) !== 0) ||
      (msix !== undefined &&
        (this.peek(msix + PCI_MSIX_FLAGS_OFFSET, 2) & PCI_MSIX_FLAGS_ENABLE) !== 0)
    );
  }
}

function allOnes(sizeBytes: number): number {
  return sizeBytes === 4 ? 0xffffffff : (1 << (sizeBytes * 8)) - 1;
}

/** One capability placed by {@link buildConfigImage}. */
export interface CapabilitySpec {
  readonly id: number;
  readonly byteOffset: number;
  /** Bytes after the 2-byte header (ID, next), at `byteOffset + 2`. */
  readonly body?: readonly number[];
}

/** What {@link buildConfigImage} writes; unspecified registers are 0. */
export interface ConfigImageSpec {
  readonly sizeBytes?: number;
  readonly vendorId?: number;
  readonly deviceId?: number;
  readonly command?: number;
  readonly status?: number;
  readonly headerType?: number;
  /** Raw BAR register values from 0x10 (type 0: up to 6; type 1: up to 2). */
  readonly bars?: readonly number[];
  /** Raw ROM BAR register (0x30, or 0x38 for bridges). */
  readonly rom?: number;
  readonly interruptPin?: number;
  readonly interruptLine?: number;
  readonly cacheLineSize?: number;
  readonly latencyTimer?: number;
  readonly bist?: number;
  /** Standard capabilities, chained in the order given. */
  readonly capabilities?: readonly CapabilitySpec[];
  /** Extra raw bytes written last: `[byteOffset, bytes]`. */
  readonly raw?: readonly (readonly [number, readonly number[]])[];
}

/**
 * A config image with a capability chain, for tests.
 *
 * @example
 * buildConfigImage({ vendorId: 0x8086, capabilities: [{ id: PCI_CAP_ID.PM, byteOffset: 0x40 }] });
 */
export function buildConfigImage(spec: ConfigImageSpec): Uint8Array {
  const bytes = new Uint8Array(spec.sizeBytes ?? PCI_CFG_SPACE_EXP_SIZE);
  const put = (off: number, size: number, value: number): void => {
    let v = value >>> 0;
    for (let i = 0; i < size; i++) {
      bytes[off + i] = v & 0xff;
      v >>>= 8;
    }
  };
  const headerType = spec.headerType ?? 0;
  put(0x00, 2, spec.vendorId ?? 0x8086);
  put(0x02, 2, spec.deviceId ?? 0x1234);
  put(0x04, 2, spec.command ?? 0);
  put(0x06, 2, spec.status ?? 0);
  put(0x0c, 1, spec.cacheLineSize ?? 0);
  put(0x0d, 1, spec.latencyTimer ?? 0);
  put(0x0e, 1, headerType);
  put(0x0f, 1, spec.bist ?? 0);
  (spec.bars ?? []).forEach((bar, i) => {
    put(0x10 + 4 * i, 4, bar);
  });
  if (spec.rom !== undefined) put(headerType === 1 ? 0x38 : 0x30, 4, spec.rom);
  put(0x3c, 1, spec.interruptLine ?? 0);
  put(0x3d, 1, spec.interruptPin ?? 0);
  const caps = spec.capabilities ?? [];
  if (caps.length > 0) {
    put(PCI_STATUS_OFFSET, 2, (spec.status ?? 0) | PCI_STATUS_CAP_LIST);
    put(PCI_CAPABILITY_LIST_OFFSET, 1, caps[0]?.byteOffset ?? 0);
    caps.forEach((cap, i) => {
      put(cap.byteOffset, 1, cap.id);
      put(cap.byteOffset + 1, 1, caps[i + 1]?.byteOffset ?? 0);
      (cap.body ?? []).forEach((b, j) => {
        put(cap.byteOffset + 2 + j, 1, b);
      });
    });
  }
  for (const [off, raw] of spec.raw ?? []) {
    raw.forEach((b, j) => {
      put(off + j, 1, b);
    });
  }
  return bytes;
}

/** Where {@link fullTestDevice} puts things. */
export const FULL_DEVICE_LAYOUT = {
  /** Standard capabilities (chain order PM, VPD, MSI, MSI-X, PCIe, vendor). */
  pm: 0x40,
  vpd: 0x50,
  msi: 0x60,
  msix: 0x70,
  exp: 0x80,
  vndr: 0x90,
  /** Extended capabilities: AER at 0x100, DSN at 0x140. */
  aer: 0x100,
  dsn: 0x140,
  /** Linux IRQ (differs from the hardware interrupt line 0x0b on purpose). */
  irq: 0x12b,
  /** Hardware interrupt line register. */
  hwLine: 0x0b,
  /** Assigned addresses. */
  bar0: 0xfeb00000,
  bar0Size: 0x1000,
  bar1: 0x3_8000_0000,
  bar1Size: 0x4000,
  bar3: 0xe000,
  bar3Size: 0x20,
  rom: 0xfea00000,
  romSize: 0x10000,
} as const;

/** Options of {@link fullTestDevice}. */
export interface FullTestDeviceOptions extends Omit<MemoryHostDeviceOptions, 'config'> {
  /** Overrides of the image (capabilities are always the full set). */
  readonly image?: Omit<ConfigImageSpec, 'capabilities'>;
}

/**
 * A type-0 PCIe function with every capability the virtualizer knows (VPD, PM, MSI,
 * MSI-X) plus PCIe, vendor-specific and extended capabilities, and a resource table
 * with a 32-bit memory BAR (0), a 64-bit prefetchable BAR (1-2), an I/O BAR (3), two
 * empty BARs (4, 5) and a ROM. Hardware BAR registers match the resources.
 */
export function fullTestDevice(options: FullTestDeviceOptions = {}): MemoryHostDevice {
  const L = FULL_DEVICE_LAYOUT;
  const config = buildConfigImage({
    vendorId: 0x8086,
    deviceId: 0x10c9,
    command: 0,
    interruptPin: 1,
    interruptLine: L.hwLine,
    bist: 0x80,
    bars: [L.bar0, (L.bar1 & 0xffffffff) | 0xc, Math.floor(L.bar1 / 2 ** 32), L.bar3 | 1, 0, 0],
    rom: L.rom,
    ...options.image,
    capabilities: [
      // PMC: version 3, PME from D0, D3hot, D3cold. PMCSR: NoSoftReset, PME_Enable,
      // Data_Scale 1 (init must clear PME_Enable).
      { id: PCI_CAP_ID.PM, byteOffset: L.pm, body: [0x03, 0xc8, 0x08, 0x21, 0x00, 0x00] },
      { id: PCI_CAP_ID.VPD, byteOffset: L.vpd, body: [0x00, 0x00, 0x78, 0x56, 0x34, 0x12] },
      // MSI: 64-bit capable, per-vector masking.
      { id: PCI_CAP_ID.MSI, byteOffset: L.msi, body: [0x80, 0x01] },
      // MSI-X: 10 entries, table in BAR0 at 0, PBA in BAR0 at 0x800.
      {
        id: PCI_CAP_ID.MSIX,
        byteOffset: L.msix,
        body: [0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00],
      },
      // PCIe v2 endpoint; DevCap with FLR.
      {
        id: PCI_CAP_ID.EXP,
        byteOffset: L.exp,
        body: [0x02, 0x00, 0xc2, 0x8c, 0x00, 0x10, 0x10, 0x28, 0x09, 0x00],
      },
      { id: PCI_CAP_ID.VNDR, byteOffset: L.vndr, body: [0x08, 0xaa, 0xbb, 0xcc, 0xdd, 0xee] },
    ],
    raw: [
      // AER v1 -> next 0x140; DSN v1 (end).
      [L.aer, [0x01, 0x00, 0x01, 0x14, 0x11, 0x22, 0x33, 0x44]],
      [L.dsn, [0x03, 0x00, 0x01, 0x00, 0xe0, 0x46, 0x2b, 0xff, 0xff, 0x21, 0x1b, 0x00]],
      ...(options.image?.raw ?? []),
    ],
  });
  const deviceOptions: MemoryHostDeviceOptions = { ...options };
  delete (deviceOptions as { image?: unknown }).image;
  return new MemoryHostDevice({
    irq: L.irq,
    resources: [
      { start: BigInt(L.bar0), sizeBytes: BigInt(L.bar0Size), flags: IORESOURCE.MEM },
      {
        start: BigInt(L.bar1),
        sizeBytes: BigInt(L.bar1Size),
        flags: IORESOURCE.MEM | IORESOURCE.PREFETCH | IORESOURCE.MEM_64 | 0xc,
      },
      EMPTY_RESOURCE,
      { start: BigInt(L.bar3), sizeBytes: BigInt(L.bar3Size), flags: IORESOURCE.IO | 0x1 },
      EMPTY_RESOURCE,
      EMPTY_RESOURCE,
      { start: BigInt(L.rom), sizeBytes: BigInt(L.romSize), flags: IORESOURCE.MEM },
    ],
    ...deviceOptions,
    config,
  });
}

/** One captured log line. */
export interface LogRecord {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string | undefined;
}

/** A `Logger` that keeps what it is given, for assertions. */
export interface RecordingLogger extends Logger {
  readonly records: LogRecord[];
  /** The records of one level. */
  at(level: LogRecord['level']): LogRecord[];
}

/** A logger that records every call. */
export function recordingLogger(): RecordingLogger {
  const records: LogRecord[] = [];
  const log =
    (level: LogRecord['level']) =>
    (obj: object, msg?: string): void => {
      records.push({ level, obj, msg });
    };
  return {
    records,
    at: (level) => records.filter((r) => r.level === level),
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
  };
}
