// SPDX-License-Identifier: MIT
/**
 * One real PCI function through sysfs: config space through the `config` file, the
 * enable count through `enable`, and the PCI core services pciback calls (bus master,
 * MWI, INTx, power states) as the config writes Linux's PCI core makes
 * (`drivers/pci/pci.c`, x86).
 *
 * Where this deviates from the kernel, and why:
 * - Config accessors follow x86 Linux (and the simulator): a misaligned or out-of-range
 *   access fails with -EINVAL and reads all-ones. A read the kernel cuts short (a
 *   process without CAP_SYS_ADMIN gets only the first 64 bytes) fails with -EPERM;
 *   other sysfs failures give their own errno.
 * - `enableDevice` writes `1` to `enable`, which is `pci_enable_device`. The kernel
 *   refuses that with EBUSY while a driver holds the function, and one always does once
 *   the function is handed to a stub (pciback, pci-stub, vfio-pci). Then the first
 *   enable is done in config space the way `pci_enable_device` would: power to D0,
 *   decode on for the resources present, INTx on when there is a pin and MSI/MSI-X are
 *   off. `disableDevice` undoes whichever path was taken (the last disable clears
 *   MASTER; decode stays on, spec §4.7).
 * - The enable count and `isBusMaster` are this object's (the driver's references, as
 *   `dev->enable_cnt` counts them for one driver); the kernel's count from other users
 *   is {@link LinuxHostPciDevice.kernelEnableCount}.
 * - Power transitions wait the spec's delays (10 ms around D3hot, 200 µs for D2)
 *   through the injected `sleepMs`, and a D3hot->D0 transition that resets the function
 *   writes the BARs back from the resource table (`pci_restore_bars`).
 */
import {
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_CAP_ID,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_D0,
  PCI_D1,
  PCI_D2,
  PCI_D3HOT,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_CARDBUS,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_NORMAL,
  PCI_HEADER_TYPE_OFFSET,
  PCI_INTERRUPT_PIN_OFFSET,
  PCI_LATENCY_TIMER_OFFSET,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_OFFSET,
  PCI_PM_CAP_D1,
  PCI_PM_CAP_D2,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_CTRL_PME_STATUS,
  PCI_PM_CTRL_STATE_MASK,
  PCI_PM_PMC_OFFSET,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_OFFSET,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
} from '../../abi/pci-regs.js';
import { PcibackError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import { findCapability, type ConfigReader } from '../../pci/capabilities.js';
import { IORESOURCE, PCI_ROM_RESOURCE, type PciResource } from '../../pci/resource.js';
import {
  SILENT_LOGGER,
  type ConfigAccessSize,
  type ConfigReadResult,
  type HostPciDevice,
  type Logger,
  type PciPowerState,
} from '../types.js';
import { describeErrno, errnoNumber, LINUX_ERRNO } from './errno.js';
import { isSysfsError, joinRoot, type SysfsIo } from './sysfs-io.js';
import { parseDecimalAttribute, parseHexAttribute, parseResourceFile } from './sysfs-format.js';

const EPERM = -LINUX_ERRNO.EPERM;
const EIO = -LINUX_ERRNO.EIO;
const EBUSY = -LINUX_ERRNO.EBUSY;
const EINVAL = -LINUX_ERRNO.EINVAL;

/** x86 `pci_cache_line_size`: 64-byte cache lines, in dwords. */
const X86_CACHE_LINE_DWORDS = 16;
/** x86 `pcibios_set_master`: a latency timer below 16 is raised to 64. */
const MIN_LATENCY = 16;
const RAISED_LATENCY = 64;
/** `PCI_PM_D3HOT_WAIT`: ms to wait after a transition to or from D3hot. */
const PM_D3HOT_WAIT_MS = 10;
/** `PCI_PM_D2_DELAY` is 200 µs; a millisecond is the finest a synchronous sleep gets. */
const PM_D2_DELAY_MS = 1;

/** Options of {@link LinuxHostPciDevice}. */
export interface LinuxHostPciDeviceOptions {
  /** Where failed hardware accesses are reported (they never throw). */
  readonly logger?: Logger;
  /** Blocks for `ms` (power-state delays); a real sleep by default. */
  readonly sleepMs?: (ms: number) => void;
  /** Architecture quirks (`pcibios_set_master`); x86 by default. */
  readonly arch?: 'x86' | 'generic';
}

/** How the first enable reached the device. */
type EnablePath = 'sysfs' | 'config';

/**
 * A PCI function of the running kernel, seen through `/sys/bus/pci/devices/<BDF>`.
 *
 * @example
 * const dev = new LinuxHostPciDevice(new NodeSysfsIo('/sys'), PciAddress.parse('0000:03:00.0'));
 * dev.readConfig(0, 2); // { value: 0x8086, err: 0 }
 */
export class LinuxHostPciDevice implements HostPciDevice {
  readonly address: PciAddress;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly headerType: number;
  readonly configSizeBytes: number;
  /** The device directory relative to the sysfs root. */
  readonly sysfsDir: string;

  readonly #io: SysfsIo;
  readonly #logger: Logger;
  readonly #sleepMs: (ms: number) => void;
  readonly #arch: 'x86' | 'generic';
  readonly #resources: readonly PciResource[];
  readonly #irqAtOpen: number;
  readonly #reader: ConfigReader;
  #enableCount = 0;
  #enablePath: EnablePath | undefined;
  #isBusMaster = false;

  /**
   * Reads the function's identity, resources and IRQ.
   *
   * @throws {PcibackError} `NO_SUCH_DEVICE` when the function is absent, `HOST_IO` or
   *   `PERMISSION_DENIED` when its attributes cannot be read.
   */
  constructor(io: SysfsIo, address: PciAddress, options: LinuxHostPciDeviceOptions = {}) {
    this.#io = io;
    this.address = address;
    this.sysfsDir = `bus/pci/devices/${address.toString()}`;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#sleepMs = options.sleepMs ?? sleepSync;
    this.#arch = options.arch ?? 'x86';
    if (!io.exists(this.sysfsDir)) {
      throw new PcibackError(
        'NO_SUCH_DEVICE',
        `Cannot open PCI device "${address.toString()}": it does not exist (no "${joinRoot(io.root, this.sysfsDir)}")`,
      );
    }
    try {
      this.vendorId = parseHexAttribute(io.readText(`${this.sysfsDir}/vendor`), 'vendor');
      this.deviceId = parseHexAttribute(io.readText(`${this.sysfsDir}/device`), 'device');
      const size = io.fileSizeBytes(this.#configPath);
      // The kernel sizes `config` to the function's config space: 256 or 4096 bytes.
      this.configSizeBytes =
        size >= PCI_CFG_SPACE_EXP_SIZE ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
      const header = io.readBytes(this.#configPath, PCI_HEADER_TYPE_OFFSET, 1)[0];
      if (header === undefined) {
        throw new SyntaxError('the config file ends before the header type register');
      }
      this.headerType = header & PCI_HEADER_TYPE_MASK;
      this.#resources = Object.freeze(parseResourceFile(io.readText(`${this.sysfsDir}/resource`)));
      this.#irqAtOpen = parseDecimalAttribute(io.readText(`${this.sysfsDir}/irq`), 'irq');
    } catch (err) {
      throw new PcibackError(
        isSysfsError(err) ? err.code : 'HOST_IO',
        `Cannot open PCI device "${address.toString()}": ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    const reader: ConfigReader = {
      sizeBytes: this.configSizeBytes,
      read8: (at) => this.readConfig(at, 1).value,
      read16: (at) => this.readConfig(at, 2).value,
      read32: (at) => this.readConfig(at, 4).value,
    };
    this.#reader = reader;
  }

  get #configPath(): string {
    return `${this.sysfsDir}/config`;
  }

  // --- Config accessors ------------------------------------------------------------

  readConfig(byteOffset: number, sizeBytes: ConfigAccessSize): ConfigReadResult {
    if (!this.#validAccess(byteOffset, sizeBytes))
      return { value: allOnes(sizeBytes), err: EINVAL };
    let bytes: Uint8Array;
    try {
      bytes = this.#io.readBytes(this.#configPath, byteOffset, sizeBytes);
    } catch (err) {
      return { value: allOnes(sizeBytes), err: this.#accessError(err, 'read', byteOffset) };
    }
    // The kernel serves only the first 64 bytes to a process without CAP_SYS_ADMIN.
    if (bytes.length < sizeBytes) return { value: allOnes(sizeBytes), err: EPERM };
    return { value: decodeLittleEndian(bytes), err: 0 };
  }

  writeConfig(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): number {
    if (!this.#validAccess(byteOffset, sizeBytes)) return EINVAL;
    const bytes = new Uint8Array(sizeBytes);
    for (let i = 0; i < sizeBytes; i++) bytes[i] = (value >>> (8 * i)) & 0xff;
    try {
      const written = this.#io.writeBytes(this.#configPath, byteOffset, bytes);
      return written === sizeBytes ? 0 : EIO;
    } catch (err) {
      return this.#accessError(err, 'write', byteOffset);
    }
  }

  // --- Resources and IRQ -------------------------------------------------------------

  /** The resource table as `resource` showed it when the device was opened. */
  resources(): readonly PciResource[] {
    return this.#resources;
  }

  /** `irq` as the kernel shows it now (the IRQ found at open if it cannot be read). */
  irq(): number {
    try {
      return parseDecimalAttribute(this.#io.readText(`${this.sysfsDir}/irq`), 'irq');
    } catch {
      return this.#irqAtOpen;
    }
  }

  // --- Enable / master / MWI / INTx ---------------------------------------------------

  isEnabled(): boolean {
    return this.#enableCount > 0;
  }

  /** This object's enable count. */
  get enableCount(): number {
    return this.#enableCount;
  }

  /**
   * The kernel's enable count (`enable`), which includes other users such as a bound
   * driver; 0 when it cannot be read.
   */
  kernelEnableCount(): number {
    try {
      return parseDecimalAttribute(this.#io.readText(`${this.sysfsDir}/enable`), 'enable');
    } catch {
      return 0;
    }
  }

  enableDevice(): number {
    this.#enableCount++;
    if (this.#enableCount > 1) return 0;
    const err = this.#writeAttribute('enable', '1');
    if (err === 0) {
      this.#enablePath = 'sysfs';
      return 0;
    }
    if (err === EBUSY) {
      // A driver (the stub) holds the function: enable it as pci_enable_device would.
      const configErr = this.#enableInConfig();
      if (configErr === 0) {
        this.#enablePath = 'config';
        return 0;
      }
      this.#enableCount--;
      return configErr;
    }
    this.#enableCount--;
    return err;
  }

  disableDevice(): void {
    if (this.#enableCount === 0) return;
    this.#enableCount--;
    if (this.#enableCount > 0) return;
    const path = this.#enablePath;
    this.#enablePath = undefined;
    this.#isBusMaster = false;
    // pci_disable_device clears MASTER in both cases; only the sysfs path also drops the
    // kernel's count.
    if (path === 'sysfs' && this.#writeAttribute('enable', '0') === 0) return;
    this.#updateCommand((command) => command & ~PCI_COMMAND_MASTER);
  }

  isBusMaster(): boolean {
    return this.#isBusMaster;
  }

  setMaster(): void {
    this.#updateCommand((command) => command | PCI_COMMAND_MASTER);
    this.#isBusMaster = true;
    // pcibios_set_master skips PCIe functions: the latency timer is hardwired there.
    if (this.#arch !== 'x86' || findCapability(this.#reader, PCI_CAP_ID.EXP) !== undefined) return;
    const latency = this.readConfig(PCI_LATENCY_TIMER_OFFSET, 1);
    if (latency.err === 0 && latency.value < MIN_LATENCY) {
      this.writeConfig(PCI_LATENCY_TIMER_OFFSET, 1, RAISED_LATENCY);
    }
  }

  clearMaster(): void {
    this.#updateCommand((command) => command & ~PCI_COMMAND_MASTER);
    this.#isBusMaster = false;
  }

  setMwi(): number {
    const current = this.readConfig(PCI_CACHE_LINE_SIZE_OFFSET, 1);
    if (current.err !== 0) return current.err;
    if (current.value < X86_CACHE_LINE_DWORDS || current.value % X86_CACHE_LINE_DWORDS !== 0) {
      const err = this.writeConfig(PCI_CACHE_LINE_SIZE_OFFSET, 1, X86_CACHE_LINE_DWORDS);
      if (err !== 0) return err;
      if (this.readConfig(PCI_CACHE_LINE_SIZE_OFFSET, 1).value !== X86_CACHE_LINE_DWORDS) {
        return EINVAL;
      }
    }
    return this.#updateCommand((command) => command | PCI_COMMAND_INVALIDATE);
  }

  clearMwi(): void {
    this.#updateCommand((command) => command & ~PCI_COMMAND_INVALIDATE);
  }

  intx(enable: boolean): void {
    this.#updateCommand((command) =>
      enable ? command & ~PCI_COMMAND_INTX_DISABLE : command | PCI_COMMAND_INTX_DISABLE,
    );
  }

  // --- Power ---------------------------------------------------------------------------

  /** The power state in PMCSR (D0 without a PM capability or when unreadable). */
  currentPowerState(): PciPowerState {
    const pm = findCapability(this.#reader, PCI_CAP_ID.PM);
    if (pm === undefined) return PCI_D0;
    const pmcsr = this.readConfig(pm + PCI_PM_CTRL_OFFSET, 2);
    return pmcsr.err === 0 ? ((pmcsr.value & PCI_PM_CTRL_STATE_MASK) as PciPowerState) : PCI_D0;
  }

  setPowerState(state: PciPowerState): number {
    if (!Number.isInteger(state) || state < PCI_D0 || state > PCI_D3HOT) return EINVAL;
    const pm = findCapability(this.#reader, PCI_CAP_ID.PM);
    if (pm === undefined) return state === PCI_D0 ? 0 : EIO;
    const pmcsr = this.readConfig(pm + PCI_PM_CTRL_OFFSET, 2);
    if (pmcsr.err !== 0) return pmcsr.err;
    const current = pmcsr.value & PCI_PM_CTRL_STATE_MASK;
    if (current === state) return 0;
    if (state !== PCI_D0 && current > state) return EINVAL;
    const pmc = this.readConfig(pm + PCI_PM_PMC_OFFSET, 2);
    if (pmc.err !== 0) return pmc.err;
    if (state === PCI_D1 && (pmc.value & PCI_PM_CAP_D1) === 0) return EIO;
    if (state === PCI_D2 && (pmc.value & PCI_PM_CAP_D2) === 0) return EIO;
    const willReset =
      current === PCI_D3HOT && state === PCI_D0 && (pmcsr.value & PCI_PM_CTRL_NO_SOFT_RESET) === 0;
    // Writing back a PME_Status of 1 would clear it: leave the sticky bit alone.
    const next = (pmcsr.value & ~(PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_STATUS)) | state;
    const err = this.writeConfig(pm + PCI_PM_CTRL_OFFSET, 2, next);
    if (err !== 0) return err;
    if (state === PCI_D3HOT || current === PCI_D3HOT) this.#sleepMs(PM_D3HOT_WAIT_MS);
    else if (state === PCI_D2 || current === PCI_D2) this.#sleepMs(PM_D2_DELAY_MS);
    if (this.currentPowerState() !== state) return EIO;
    if (willReset) this.#restoreBars();
    return 0;
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

  /** A negative errno for a failed config access, logged; programmer errors rethrown. */
  #accessError(err: unknown, operation: 'read' | 'write', byteOffset: number): number {
    if (!isSysfsError(err)) throw err;
    this.#logger.debug(
      { device: this.address.toString(), operation, byteOffset, errno: err.errno },
      `Config ${operation} failed: ${describeErrno(err.errno)}`,
    );
    return -errnoNumber(err.errno);
  }

  /** Writes an attribute of the device; 0 or a negative errno (logged). */
  #writeAttribute(name: string, text: string): number {
    try {
      this.#io.writeText(`${this.sysfsDir}/${name}`, text);
      return 0;
    } catch (err) {
      if (!isSysfsError(err)) throw err;
      if (err.errno !== 'EBUSY') {
        this.#logger.warn(
          { device: this.address.toString(), attribute: name, errno: err.errno },
          err.message,
        );
      }
      return -errnoNumber(err.errno);
    }
  }

  /** Read-modify-write of COMMAND; writes only when a bit changes. 0 or -errno. */
  #updateCommand(change: (command: number) => number): number {
    const command = this.readConfig(PCI_COMMAND_OFFSET, 2);
    if (command.err !== 0) return command.err;
    const next = change(command.value) & 0xffff;
    return next === command.value ? 0 : this.writeConfig(PCI_COMMAND_OFFSET, 2, next);
  }

  /** `pci_enable_device` done in config space (see the module comment). */
  #enableInConfig(): number {
    const power = this.setPowerState(PCI_D0);
    // do_pci_enable_device ignores -EIO from the power transition.
    if (power < 0 && power !== EIO) return power;
    let decode = 0;
    for (const [index, resource] of this.#resources.entries()) {
      if ((resource.flags & (IORESOURCE.IO | IORESOURCE.MEM)) === 0) continue;
      if (index === PCI_ROM_RESOURCE && (resource.flags & IORESOURCE.ROM_ENABLE) === 0) continue;
      // pci_enable_resources refuses a BAR the kernel could not assign.
      if ((resource.flags & IORESOURCE.UNSET) !== 0) return EINVAL;
      decode |= (resource.flags & IORESOURCE.IO) !== 0 ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    }
    if (this.headerType === PCI_HEADER_TYPE_BRIDGE) decode |= PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
    const err = this.#updateCommand((command) => command | decode);
    if (err !== 0) return err;
    const pin = this.readConfig(PCI_INTERRUPT_PIN_OFFSET, 1);
    if (pin.err === 0 && pin.value !== 0 && !this.#msiOrMsixEnabled()) this.intx(true);
    return 0;
  }

  #msiOrMsixEnabled(): boolean {
    const msi = findCapability(this.#reader, PCI_CAP_ID.MSI);
    if (msi !== undefined) {
      const flags = this.readConfig(msi + PCI_MSI_FLAGS_OFFSET, 2);
      if (flags.err === 0 && (flags.value & PCI_MSI_FLAGS_ENABLE) !== 0) return true;
    }
    const msix = findCapability(this.#reader, PCI_CAP_ID.MSIX);
    if (msix !== undefined) {
      const flags = this.readConfig(msix + PCI_MSIX_FLAGS_OFFSET, 2);
      if (flags.err === 0 && (flags.value & PCI_MSIX_FLAGS_ENABLE) !== 0) return true;
    }
    return false;
  }

  /** `pci_restore_bars`: each assigned BAR written back from the resource table. */
  #restoreBars(): void {
    const barCount =
      this.headerType === PCI_HEADER_TYPE_NORMAL
        ? PCI_TYPE0_BAR_COUNT
        : this.headerType === PCI_HEADER_TYPE_BRIDGE
          ? PCI_TYPE1_BAR_COUNT
          : this.headerType === PCI_HEADER_TYPE_CARDBUS
            ? 1
            : 0;
    for (let index = 0; index < barCount; index++) {
      const res = this.#resources[index];
      if (res === undefined || res.flags === 0 || (res.flags & IORESOURCE.UNSET) !== 0) continue;
      const offset = PCI_BASE_ADDRESS_0_OFFSET + 4 * index;
      const low = Number(res.start & 0xffffffffn) | (res.flags & IORESOURCE.BITS_MASK);
      this.writeConfig(offset, 4, low >>> 0);
      if ((res.flags & IORESOURCE.MEM_64) !== 0 && index + 1 < barCount) {
        this.writeConfig(offset + 4, 4, Number((res.start >> 32n) & 0xffffffffn));
      }
    }
    const rom = this.#resources[PCI_ROM_RESOURCE];
    const romOffset =
      this.headerType === PCI_HEADER_TYPE_NORMAL
        ? PCI_ROM_ADDRESS_OFFSET
        : this.headerType === PCI_HEADER_TYPE_BRIDGE
          ? PCI_ROM_ADDRESS1_OFFSET
          : undefined;
    if (romOffset !== undefined && rom !== undefined && (rom.flags & IORESOURCE.ROM_ENABLE) !== 0) {
      this.writeConfig(
        romOffset,
        4,
        (Number(rom.start & 0xffffffffn) | PCI_ROM_ADDRESS_ENABLE) >>> 0,
      );
    }
  }
}

function decodeLittleEndian(bytes: Uint8Array): number {
  let value = 0;
  for (let i = bytes.length - 1; i >= 0; i--) value = value * 256 + (bytes[i] ?? 0);
  return value;
}

function allOnes(sizeBytes: number): number {
  if (sizeBytes === 1) return 0xff;
  if (sizeBytes === 2) return 0xffff;
  return 0xffffffff;
}

/** Blocks the thread for `ms` (Node's main thread may `Atomics.wait`). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
