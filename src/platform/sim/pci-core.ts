// SPDX-License-Identifier: MIT
/**
 * The simulator's Linux PCI core: what `drivers/pci` does for one function, over a
 * simulated function's config cycles (spec §5.6 platform notes, §4.7, §6.3 and the
 * §11 "PCI core" row). The hardware model (`devices/`) answers the cycles; this class
 * keeps the kernel's own bookkeeping: cached IDs, the resource table sized at
 * enumeration, the enable count, `is_busmaster`, the current IRQ.
 *
 * Behaviour follows Linux (v6.x, x86) where the interface leaves room:
 * - Config accessors: misaligned or out-of-range accesses fail with -EINVAL and read
 *   all-ones of the access size.
 * - Resources are sized at creation the way `__pci_read_base` does (decode off, write
 *   all-ones, read back, restore); a VF's come from its PF's VF BARs. A BAR that reads
 *   address 0 is flagged IORESOURCE_UNSET; `enableDevice` then fails with -EINVAL as
 *   `pci_enable_resources` does for an unassigned BAR.
 * - `enableDevice` powers the function to D0, turns on I/O/memory decode for the
 *   resource types present (the ROM only when it was enabled at boot; a bridge gets
 *   both) and clears INTX_DISABLE when there is a pin and MSI/MSI-X are off.
 *   `disableDevice` on the last reference clears MASTER only (spec §4.7: decode stays
 *   on); an unbalanced disable is ignored (Linux warns and lets the count go negative).
 * - `isBusMaster` is the kernel's `is_busmaster` flag: false at creation even when
 *   firmware left MASTER set, true after `setMaster`.
 * - `setMaster` on x86 raises a latency timer below 16 to 64, except on PCIe functions
 *   (`pcibios_set_master` skips them: the register is hardwired there).
 * - `setPowerState` writes PMCSR without clearing PME_Status (Linux writes back the
 *   bit it read, which would clear it). A D3hot->D0 transition that reset the function
 *   is followed by `pci_restore_bars`.
 * - `resetFunction` is `__pci_reset_function_locked` without device-specific, ACPI and
 *   bus resets: FLR, then AF FLR (needs TP and FLR), then PM (No_Soft_Reset clear, in
 *   D0). It does not save or restore state; callers do.
 */
import {
  PCI_AF_CTRL_FLR,
  PCI_AF_CTRL_OFFSET,
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_CAP_ID,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_D0,
  PCI_D3HOT,
  PCI_EXP_DEVCTL_BCR_FLR,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_CARDBUS,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_NORMAL,
  PCI_HEADER_TYPE_OFFSET,
  PCI_INTERRUPT_LINE_OFFSET,
  PCI_INTERRUPT_PIN_OFFSET,
  PCI_LATENCY_TIMER_OFFSET,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_CTRL_PME_STATUS,
  PCI_PM_CTRL_STATE_MASK,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS_OFFSET,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
  PCI_DEVICE_ID_OFFSET,
  PCI_VENDOR_ID_OFFSET,
} from '../../abi/pci-regs.js';
import type { AerErrorEvent, SimulatedFunction } from '../../devices/index.js';
import {
  restoreConfigState,
  saveConfigState,
  type ConfigStateAccess,
  type SavedConfigState,
} from '../../pci/config-state.js';
import type { PciAddress } from '../../pci/address.js';
import { findCapability } from '../../pci/capabilities.js';
import {
  EMPTY_RESOURCE,
  IORESOURCE,
  PCI_NUM_RESOURCES,
  PCI_ROM_RESOURCE,
  type PciResource,
} from '../../pci/resource.js';
import type { ConfigAccessSize, ConfigReadResult, HostPciDevice, PciPowerState } from '../types.js';

/** Linux errnos the PCI core returns. */
const EIO = -5;
const EINVAL = -22;
const ENOTTY = -25;

/** x86 `pci_cache_line_size`: 64-byte cache lines, in dwords. */
const X86_CACHE_LINE_DWORDS = 16;
/** x86 `pcibios_set_master`: a latency timer below 16 is raised to 64. */
const MIN_LATENCY = 16;
const RAISED_LATENCY = 64;

/** How a function was reset (`resetFunction`). */
export type ResetMethod = 'flr' | 'af-flr' | 'pm' | 'none';

/** Result of {@link SimHostPciDevice.resetFunction}. */
export interface ResetResult {
  readonly method: ResetMethod;
  /** 0, -ENOTTY (-25) when no method applies, -EINVAL (-22) for a PM reset outside D0. */
  readonly err: number;
}

export type { SavedConfigState, SavedRegister } from '../../pci/config-state.js';

/**
 * The Linux IRQ the simulated firmware routed to a function: the interrupt line it
 * programmed (0xff, "not connected", and 0 mean none). What `dev->irq` is at
 * enumeration in the simulator.
 */
export function firmwareIrq(hardware: SimulatedFunction): number {
  const line = hardware.configRead(PCI_INTERRUPT_LINE_OFFSET, 1);
  return line === 0xff ? 0 : line;
}

/** Options of {@link SimHostPciDevice}. */
export interface SimHostPciDeviceOptions {
  readonly address: PciAddress;
  /** Legacy IRQ (`dev->irq` at enumeration); 0 for none, as for VFs. */
  readonly irq: number;
  /** Vendor ID to cache; read from the hardware when absent (give it for VFs). */
  readonly vendorId?: number;
  /** Device ID to cache; read from the hardware when absent (give it for VFs). */
  readonly deviceId?: number;
  /** For an SR-IOV VF: its physical function (`pci_physfn`). */
  readonly physfn?: SimHostPciDevice;
  /** Architecture quirks (`pcibios_set_master`); x86 by default. */
  readonly arch?: 'x86' | 'generic';
}

/**
 * One function as the simulated host's PCI core presents it to drivers.
 *
 * @example
 * const [gpu] = buildCatalogDevice('gpu');
 * const host = new SimHostPciDevice(gpu.device, { address: PciAddress.parse('0000:01:00.0'), irq: 16 });
 * host.enableDevice(); // 0
 * host.resources()[1]; // { start: 0x380000000n, sizeBytes: 0x10000000n, flags: MEM|PREFETCH|MEM_64|0xc }
 */
export class SimHostPciDevice implements HostPciDevice {
  readonly address: PciAddress;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly headerType: number;
  readonly configSizeBytes: number;
  /** The simulated hardware behind this device. */
  readonly hardware: SimulatedFunction;
  /** The PF of an SR-IOV VF, else undefined. */
  readonly physfn: SimHostPciDevice | undefined;

  readonly #legacyIrq: number;
  readonly #resources: readonly PciResource[];
  readonly #arch: 'x86' | 'generic';
  #enableCount = 0;
  #isBusMaster = false;
  #msiIrq: number | undefined;

  constructor(hardware: SimulatedFunction, options: SimHostPciDeviceOptions) {
    if (!Number.isInteger(options.irq) || options.irq < 0) {
      throw new RangeError(
        `Invalid IRQ ${String(options.irq)} for "${options.address.toString()}": it must be a non-negative integer`,
      );
    }
    this.hardware = hardware;
    this.address = options.address;
    this.physfn = options.physfn;
    this.#legacyIrq = options.irq;
    this.#arch = options.arch ?? 'x86';
    this.configSizeBytes = hardware.sizeBytes;
    this.vendorId = options.vendorId ?? hardware.configRead(PCI_VENDOR_ID_OFFSET, 2);
    this.deviceId = options.deviceId ?? hardware.configRead(PCI_DEVICE_ID_OFFSET, 2);
    this.headerType = hardware.configRead(PCI_HEADER_TYPE_OFFSET, 1) & PCI_HEADER_TYPE_MASK;
    this.#resources = Object.freeze(
      hardware.virtualFunction === undefined ? this.#sizeResources() : this.#vfResources(),
    );
  }

  // --- Config accessors ------------------------------------------------------------

  readConfig(byteOffset: number, sizeBytes: ConfigAccessSize): ConfigReadResult {
    if (!this.#validAccess(byteOffset, sizeBytes)) {
      return { value: allOnes(sizeBytes), err: EINVAL };
    }
    return { value: this.hardware.configRead(byteOffset, sizeBytes), err: 0 };
  }

  writeConfig(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): number {
    if (!this.#validAccess(byteOffset, sizeBytes)) return EINVAL;
    this.hardware.configWrite(byteOffset, sizeBytes, value);
    return 0;
  }

  // --- Resources and IRQ -------------------------------------------------------------

  resources(): readonly PciResource[] {
    return this.#resources;
  }

  irq(): number {
    return this.#msiIrq ?? this.#legacyIrq;
  }

  /**
   * Set by the MSI layer while MSI is enabled (`dev->irq` becomes the MSI IRQ);
   * `undefined` goes back to the legacy IRQ.
   */
  setMsiIrq(irq: number | undefined): void {
    this.#msiIrq = irq;
  }

  /** The legacy IRQ found at enumeration. */
  get legacyIrq(): number {
    return this.#legacyIrq;
  }

  // --- Enable / master / MWI / INTx ---------------------------------------------------

  isEnabled(): boolean {
    return this.#enableCount > 0;
  }

  /** The enable count (`dev->enable_cnt`). */
  get enableCount(): number {
    return this.#enableCount;
  }

  enableDevice(): number {
    this.#enableCount++;
    if (this.#enableCount > 1) return 0;
    this.setPowerState(PCI_D0);
    let decode = 0;
    for (const [index, resource] of this.#resources.entries()) {
      if ((resource.flags & (IORESOURCE.IO | IORESOURCE.MEM)) === 0) continue;
      if (index === PCI_ROM_RESOURCE && (resource.flags & IORESOURCE.ROM_ENABLE) === 0) continue;
      if ((resource.flags & IORESOURCE.UNSET) !== 0) {
        this.#enableCount--;
        return EINVAL;
      }
      decode |= (resource.flags & IORESOURCE.IO) !== 0 ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    }
    if (this.headerType === PCI_HEADER_TYPE_BRIDGE) decode |= PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
    const command = this.#read16(PCI_COMMAND_OFFSET);
    if ((command | decode) !== command) this.#write16(PCI_COMMAND_OFFSET, command | decode);
    if (!this.hardware.msiEnabled() && !this.hardware.msixEnabled()) {
      if (this.hardware.configRead(PCI_INTERRUPT_PIN_OFFSET, 1) !== 0) this.intx(true);
    }
    return 0;
  }

  disableDevice(): void {
    if (this.#enableCount === 0) return;
    this.#enableCount--;
    if (this.#enableCount > 0) return;
    const command = this.#read16(PCI_COMMAND_OFFSET);
    if ((command & PCI_COMMAND_MASTER) !== 0) {
      this.#write16(PCI_COMMAND_OFFSET, command & ~PCI_COMMAND_MASTER);
    }
    this.#isBusMaster = false;
  }

  isBusMaster(): boolean {
    return this.#isBusMaster;
  }

  setMaster(): void {
    this.#setMaster(true);
    if (this.#arch !== 'x86' || this.hardware.isPcie) return;
    const latency = this.hardware.configRead(PCI_LATENCY_TIMER_OFFSET, 1);
    if (latency < MIN_LATENCY)
      this.hardware.configWrite(PCI_LATENCY_TIMER_OFFSET, 1, RAISED_LATENCY);
  }

  clearMaster(): void {
    this.#setMaster(false);
  }

  setMwi(): number {
    const current = this.hardware.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1);
    if (current < X86_CACHE_LINE_DWORDS || current % X86_CACHE_LINE_DWORDS !== 0) {
      this.hardware.configWrite(PCI_CACHE_LINE_SIZE_OFFSET, 1, X86_CACHE_LINE_DWORDS);
      if (this.hardware.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1) !== X86_CACHE_LINE_DWORDS) {
        return EINVAL;
      }
    }
    const command = this.#read16(PCI_COMMAND_OFFSET);
    if ((command & PCI_COMMAND_INVALIDATE) === 0) {
      this.#write16(PCI_COMMAND_OFFSET, command | PCI_COMMAND_INVALIDATE);
    }
    return 0;
  }

  clearMwi(): void {
    const command = this.#read16(PCI_COMMAND_OFFSET);
    if ((command & PCI_COMMAND_INVALIDATE) !== 0) {
      this.#write16(PCI_COMMAND_OFFSET, command & ~PCI_COMMAND_INVALIDATE);
    }
  }

  intx(enable: boolean): void {
    const command = this.#read16(PCI_COMMAND_OFFSET);
    const next = enable ? command & ~PCI_COMMAND_INTX_DISABLE : command | PCI_COMMAND_INTX_DISABLE;
    if (next !== command) this.#write16(PCI_COMMAND_OFFSET, next);
  }

  // --- Power ---------------------------------------------------------------------------

  /** The power state the hardware reports (D0 without a PM capability). */
  currentPowerState(): PciPowerState {
    return this.hardware.powerState() as PciPowerState;
  }

  setPowerState(state: PciPowerState): number {
    if (!Number.isInteger(state) || state < PCI_D0 || state > PCI_D3HOT) return EINVAL;
    const pm = findCapability(this.hardware, PCI_CAP_ID.PM);
    if (pm === undefined) return state === PCI_D0 ? 0 : EIO;
    const current = this.currentPowerState();
    if (current === state) return 0;
    if (state !== PCI_D0 && current > state) return EINVAL;
    if (!this.hardware.supportsPowerState(state)) return EIO;
    const willReset =
      current === PCI_D3HOT && state === PCI_D0 && this.hardware.resetCapabilities().pmSoftReset;
    const pmcsr = this.#read16(pm + PCI_PM_CTRL_OFFSET) & ~PCI_PM_CTRL_PME_STATUS;
    this.#write16(pm + PCI_PM_CTRL_OFFSET, (pmcsr & ~PCI_PM_CTRL_STATE_MASK) | state);
    if (this.currentPowerState() !== state) return EIO;
    if (willReset) this.#restoreBars();
    return 0;
  }

  // --- Reset ---------------------------------------------------------------------------

  /**
   * Resets the function with the first method it supports: FLR, AF FLR, PM D3hot->D0.
   * State is not saved or restored here.
   */
  resetFunction(): ResetResult {
    const caps = this.hardware.resetCapabilities();
    const exp = findCapability(this.hardware, PCI_CAP_ID.EXP);
    if (caps.flr && exp !== undefined) {
      const devctl = this.#read16(exp + PCI_EXP_DEVCTL_OFFSET);
      this.#write16(exp + PCI_EXP_DEVCTL_OFFSET, devctl | PCI_EXP_DEVCTL_BCR_FLR);
      return { method: 'flr', err: 0 };
    }
    const af = findCapability(this.hardware, PCI_CAP_ID.AF);
    if (caps.afFlr && this.hardware.afTransactionsPendingCapable() && af !== undefined) {
      this.hardware.configWrite(af + PCI_AF_CTRL_OFFSET, 1, PCI_AF_CTRL_FLR);
      return { method: 'af-flr', err: 0 };
    }
    const pm = findCapability(this.hardware, PCI_CAP_ID.PM);
    if (caps.pmSoftReset && pm !== undefined) {
      if (this.currentPowerState() !== PCI_D0) return { method: 'pm', err: EINVAL };
      const pmcsr =
        this.#read16(pm + PCI_PM_CTRL_OFFSET) & ~(PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_STATUS);
      this.#write16(pm + PCI_PM_CTRL_OFFSET, pmcsr | PCI_D3HOT);
      this.#write16(pm + PCI_PM_CTRL_OFFSET, pmcsr | PCI_D0);
      return { method: 'pm', err: 0 };
    }
    return { method: 'none', err: ENOTTY };
  }

  // --- Save / restore --------------------------------------------------------------------

  /** `pci_save_state`: header dwords and the capability registers Linux saves. */
  saveState(): SavedConfigState {
    return saveConfigState(this.#stateAccess());
  }

  /**
   * `pci_restore_state`: early registers (PM first, so a D3hot->D0 reset cannot undo
   * the rest), header dwords 15..0 where they differ, then MSI, MSI-X (enabled with
   * the function masked while its table is restored) and SR-IOV.
   */
  restoreState(state: SavedConfigState): void {
    restoreConfigState(this.#stateAccess(), state);
  }

  // --- Accessors of the MSI layer and the AER core -----------------------------------------

  /** The power state (0 = D0), as the MSI layer checks it. */
  powerState(): number {
    return this.hardware.powerState();
  }

  /** A dword write to BAR memory (the MSI-X table); dropped by the hardware when not decoded. */
  writeBarDword(bar: number, byteOffset: number, value: number): void {
    this.hardware.mmioWrite(bar, byteOffset, 4, value >>> 0);
  }

  /** The hardware detects the errors (AER status, Device Status), as injected. */
  injectAerError(errors: { readonly uncorrectable: number }): AerErrorEvent {
    return this.hardware.injectAerError(errors);
  }

  /** The secondary bus reset of the port above (`aer_root_reset`) as it reaches this function. */
  linkReset(): void {
    this.hardware.reset('bus');
  }

  // --- Internals ---------------------------------------------------------------------------

  #validAccess(byteOffset: number, sizeBytes: number): boolean {
    return (
      (sizeBytes === 1 || sizeBytes === 2 || sizeBytes === 4) &&
      Number.isInteger(byteOffset) &&
      byteOffset >= 0 &&
      byteOffset % sizeBytes === 0 &&
      byteOffset + sizeBytes <= this.configSizeBytes
    );
  }

  #read16(byteOffset: number): number {
    return this.hardware.configRead(byteOffset, 2);
  }

  #stateAccess(): ConfigStateAccess {
    const hw = this.hardware;
    return {
      configSizeBytes: this.configSizeBytes,
      readConfigValue: (at, size) => hw.configRead(at, size),
      writeConfigValue: (at, size, value) => {
        hw.configWrite(at, size, value);
      },
      isVirtualFunction: hw.virtualFunction !== undefined,
      readBarDword: (bar, at) => hw.mmioRead(bar, at, 4),
      writeBarDword: (bar, at, value) => {
        hw.mmioWrite(bar, at, 4, value);
      },
    };
  }

  #write16(byteOffset: number, value: number): void {
    this.hardware.configWrite(byteOffset, 2, value);
  }

  #setMaster(enable: boolean): void {
    const command = this.#read16(PCI_COMMAND_OFFSET);
    const next = enable ? command | PCI_COMMAND_MASTER : command & ~PCI_COMMAND_MASTER;
    if (next !== command) this.#write16(PCI_COMMAND_OFFSET, next);
    this.#isBusMaster = enable;
  }

  /** `pci_restore_bars`: writes each assigned BAR back from the resource table. */
  #restoreBars(): void {
    for (let index = 0; index < barCountOf(this.headerType); index++) {
      const res = this.#resources[index];
      if (res === undefined || res.flags === 0 || (res.flags & IORESOURCE.UNSET) !== 0) continue;
      const offset = PCI_BASE_ADDRESS_0_OFFSET + 4 * index;
      const low = Number(res.start & 0xffffffffn) | (res.flags & IORESOURCE.BITS_MASK);
      this.hardware.configWrite(offset, 4, low >>> 0);
      if ((res.flags & IORESOURCE.MEM_64) !== 0) {
        this.hardware.configWrite(offset + 4, 4, Number(res.start >> 32n));
      }
    }
    const rom = this.#resources[PCI_ROM_RESOURCE];
    const romOffset = romOffsetOf(this.headerType);
    if (romOffset !== undefined && rom !== undefined && (rom.flags & IORESOURCE.ROM_ENABLE) !== 0) {
      this.hardware.configWrite(
        romOffset,
        4,
        (Number(rom.start & 0xffffffffn) | PCI_ROM_ADDRESS_ENABLE) >>> 0,
      );
    }
  }

  /** `__pci_read_base` for every BAR and the ROM, decode off while sizing. */
  #sizeResources(): PciResource[] {
    const resources: PciResource[] = Array.from(
      { length: PCI_NUM_RESOURCES },
      () => EMPTY_RESOURCE,
    );
    const hw = this.hardware;
    const barCount = barCountOf(this.headerType);
    const romOffset = romOffsetOf(this.headerType);
    const command = hw.configRead(PCI_COMMAND_OFFSET, 2);
    const decode = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
    if ((command & decode) !== 0) hw.configWrite(PCI_COMMAND_OFFSET, 2, command & ~decode);
    const probe = (byteOffset: number, pattern: number): { original: number; sized: number } => {
      const original = hw.configRead(byteOffset, 4);
      hw.configWrite(byteOffset, 4, pattern);
      const sized = hw.configRead(byteOffset, 4);
      hw.configWrite(byteOffset, 4, original);
      return { original, sized };
    };
    for (let index = 0; index < barCount; index++) {
      const offset = PCI_BASE_ADDRESS_0_OFFSET + 4 * index;
      const low = probe(offset, 0xffffffff);
      if (low.sized === 0 || low.sized === 0xffffffff) continue;
      if ((low.original & PCI_BASE_ADDRESS_SPACE_IO) !== 0) {
        let mask = (low.sized & PCI_BASE_ADDRESS_IO_MASK) >>> 0;
        // Linux: I/O BARs that hardwire the upper 16 bits decode 64 KiB of I/O space.
        if ((mask & 0xffff0000) === 0) mask = (mask | 0xffff0000) >>> 0;
        const start = BigInt((low.original & PCI_BASE_ADDRESS_IO_MASK) >>> 0);
        resources[index] = resource(
          start,
          lowestBit(BigInt(mask)),
          IORESOURCE.IO | (low.original & 0x3),
        );
        continue;
      }
      const is64 =
        (low.original & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64 &&
        index + 1 < barCount;
      let start = BigInt((low.original & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
      let mask = BigInt((low.sized & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
      let flags = IORESOURCE.MEM | (low.original & 0xf);
      if ((low.original & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0) flags |= IORESOURCE.PREFETCH;
      if (is64) {
        const high = probe(offset + 4, 0xffffffff);
        start |= BigInt(high.original) << 32n;
        mask |= BigInt(high.sized) << 32n;
        flags |= IORESOURCE.MEM_64;
      }
      if (mask !== 0n) resources[index] = resource(start, lowestBit(mask), flags);
      if (is64) index++;
    }
    if (romOffset !== undefined) {
      const rom = probe(romOffset, ~PCI_ROM_ADDRESS_ENABLE >>> 0);
      const mask = BigInt((rom.sized & PCI_ROM_ADDRESS_MASK) >>> 0);
      if (mask !== 0n) {
        const start = BigInt((rom.original & PCI_ROM_ADDRESS_MASK) >>> 0);
        const flags =
          IORESOURCE.MEM |
          IORESOURCE.PREFETCH |
          ((rom.original & PCI_ROM_ADDRESS_ENABLE) !== 0 ? IORESOURCE.ROM_ENABLE : 0);
        resources[PCI_ROM_RESOURCE] = resource(start, lowestBit(mask), flags);
      }
    }
    if ((command & decode) !== 0) hw.configWrite(PCI_COMMAND_OFFSET, 2, command);
    return resources;
  }

  /** A VF's BARs are slices of its PF's VF BARs (`sriov_init` / `pci_iov_resource`). */
  #vfResources(): PciResource[] {
    const resources: PciResource[] = Array.from(
      { length: PCI_NUM_RESOURCES },
      () => EMPTY_RESOURCE,
    );
    for (const bar of this.hardware.bars()) {
      let flags = IORESOURCE.MEM | (bar.flagBits & 0xf);
      if (bar.prefetchable) flags |= IORESOURCE.PREFETCH;
      if (bar.kind === 'mem64') flags |= IORESOURCE.MEM_64;
      resources[bar.index] = resource(bar.address, bar.sizeBytes, flags);
    }
    return resources;
  }
}

/** BARs `pci_read_bases` sizes per header type (a CardBus bridge has one, no ROM). */
function barCountOf(headerType: number): number {
  if (headerType === PCI_HEADER_TYPE_NORMAL) return PCI_TYPE0_BAR_COUNT;
  if (headerType === PCI_HEADER_TYPE_BRIDGE) return PCI_TYPE1_BAR_COUNT;
  if (headerType === PCI_HEADER_TYPE_CARDBUS) return 1;
  return 0;
}

/** Where the expansion ROM BAR is, per header type. */
function romOffsetOf(headerType: number): number | undefined {
  if (headerType === PCI_HEADER_TYPE_NORMAL) return PCI_ROM_ADDRESS_OFFSET;
  if (headerType === PCI_HEADER_TYPE_BRIDGE) return PCI_ROM_ADDRESS1_OFFSET;
  return undefined;
}

function resource(start: bigint, sizeBytes: bigint, flags: number): PciResource {
  const unset = start === 0n ? IORESOURCE.UNSET : 0;
  return Object.freeze({ start, sizeBytes, flags: (flags | unset) >>> 0 });
}

function lowestBit(value: bigint): bigint {
  return value & -value;
}

function allOnes(sizeBytes: number): number {
  if (sizeBytes === 1) return 0xff;
  if (sizeBytes === 2) return 0xffff;
  return 0xffffffff;
}
