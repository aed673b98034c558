// SPDX-License-Identifier: MIT
/**
 * A sysfs function as pciback's userspace stub uses it once the kernel's stub driver
 * (pciback, vfio-pci, pci-stub) holds it: the PCI core's view ({@link LinuxHostPciDevice}),
 * plus what the MSI layer, the config save/restore and the AER core need:
 * - config space through the `config` file, BAR memory (the MSI-X table) through the
 *   BAR's `resource<N>` file at the table's offset;
 * - `pci_save_state`/`pci_restore_state` (`pci/config-state.ts`, the same code as the
 *   simulator's PCI core);
 * - `dev->irq`: the MSI IRQ while the MSI layer has MSI on, else the kernel's `irq`;
 * - AER: the error bits a function records, set by an injector the platform provides
 *   (a fake tree's {@link FakeSysfs.setHardwareBits}); the link reset of the port above.
 *
 * Deviations, and why:
 * - The real kernel only `mmap`s a memory BAR's `resource<N>`; `read`/`write` on it fail.
 *   This device uses pread/pwrite (Node has no mmap), which a fake tree serves. On real
 *   Xen the hypervisor programs MSI-X itself when dom0 maps the pirq, so nothing here
 *   needs the table on a real host; a failed table access is dropped and logged, as a
 *   write to an undecoded BAR is.
 * - No interrupt is ever raised by a sysfs function in this process: enable, disable and
 *   the pirq mapping are real, message delivery is not.
 * - Without an injector, `injectAerError` throws: injecting into a real device needs the
 *   kernel's aer-inject (`/dev/aer_inject`), which this platform does not drive.
 */
import {
  PCI_CAP_ID,
  PCI_COMMAND_OFFSET,
  PCI_COMMAND_SERR,
  PCI_ERR_UNC_MASK,
  PCI_ERR_UNC_SEVER_DEFAULT,
  PCI_ERR_UNC_UNSUP,
  PCI_ERR_UNCOR_MASK_OFFSET,
  PCI_ERR_UNCOR_SEVER_OFFSET,
  PCI_ERR_UNCOR_STATUS_OFFSET,
  PCI_EXP_DEVCTL_FERE,
  PCI_EXP_DEVCTL_NFERE,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_EXP_DEVSTA_FED,
  PCI_EXP_DEVSTA_NFED,
  PCI_EXP_DEVSTA_OFFSET,
  PCI_EXP_DEVSTA_URD,
  PCI_EXT_CAP_ID,
} from '../../abi/pci-regs.js';
import type { AerErrorEvent } from '../../devices/index.js';
import { PcibackError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import {
  findCapability,
  findExtendedCapability,
  type ConfigReader,
} from '../../pci/capabilities.js';
import {
  restoreConfigState,
  saveConfigState,
  type ConfigStateAccess,
  type SavedConfigState,
} from '../../pci/config-state.js';
import type { PciResource } from '../../pci/resource.js';
import {
  SILENT_LOGGER,
  type ConfigAccessSize,
  type ConfigReadResult,
  type HostPciDevice,
  type Logger,
  type PciPowerState,
} from '../types.js';
import type { LinuxHostPciDevice } from './host-device.js';
import { isSysfsError, type SysfsIo } from './sysfs-io.js';

/** Sets bits the function records in its own config space (error status). */
export type ConfigBitsInjector = (byteOffset: number, sizeBytes: 1 | 2 | 4, bits: number) => void;

/** Options of {@link LinuxStubDevice}. */
export interface LinuxStubDeviceOptions {
  readonly logger?: Logger;
  /** How the function's recorded error bits get set (a fake tree's); absent: no injection. */
  readonly injectBits?: ConfigBitsInjector;
  /** The port's secondary bus reset as it reaches this function (AER fatal recovery). */
  readonly linkReset?: () => void;
}

/**
 * A function held by the kernel's stub driver, as the userspace stub, the simulated
 * hypervisor's MSI layer and the AER core use it.
 *
 * @example
 * const host = new LinuxPciHost({ io: fake });
 * const dev = new LinuxStubDevice(host.open(nic), host.io);
 * const saved = dev.saveState();
 * host.reset(nic);
 * dev.restoreState(saved);
 */
export class LinuxStubDevice implements HostPciDevice {
  readonly address: PciAddress;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly headerType: number;
  readonly configSizeBytes: number;
  /** The PCI core's view over sysfs. */
  readonly inner: LinuxHostPciDevice;
  readonly #io: SysfsIo;
  readonly #logger: Logger;
  readonly #injectBits: ConfigBitsInjector | undefined;
  readonly #linkReset: (() => void) | undefined;
  readonly #reader: ConfigReader;
  #msiIrq: number | undefined;

  constructor(inner: LinuxHostPciDevice, io: SysfsIo, options: LinuxStubDeviceOptions = {}) {
    this.inner = inner;
    this.address = inner.address;
    this.vendorId = inner.vendorId;
    this.deviceId = inner.deviceId;
    this.headerType = inner.headerType;
    this.configSizeBytes = inner.configSizeBytes;
    this.#io = io;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#injectBits = options.injectBits;
    this.#linkReset = options.linkReset;
    this.#reader = {
      sizeBytes: this.configSizeBytes,
      read8: (at) => this.readConfig(at, 1).value,
      read16: (at) => this.readConfig(at, 2).value,
      read32: (at) => this.readConfig(at, 4).value,
    };
  }

  // --- HostPciDevice, delegated ----------------------------------------------------------

  readConfig(byteOffset: number, sizeBytes: ConfigAccessSize): ConfigReadResult {
    return this.inner.readConfig(byteOffset, sizeBytes);
  }

  writeConfig(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): number {
    return this.inner.writeConfig(byteOffset, sizeBytes, value);
  }

  resources(): readonly PciResource[] {
    return this.inner.resources();
  }

  /** The MSI IRQ while MSI is on (set by the MSI layer), else the kernel's `irq`. */
  irq(): number {
    return this.#msiIrq ?? this.inner.irq();
  }

  isEnabled(): boolean {
    return this.inner.isEnabled();
  }

  enableDevice(): number {
    return this.inner.enableDevice();
  }

  disableDevice(): void {
    this.inner.disableDevice();
  }

  isBusMaster(): boolean {
    return this.inner.isBusMaster();
  }

  setMaster(): void {
    this.inner.setMaster();
  }

  clearMaster(): void {
    this.inner.clearMaster();
  }

  setMwi(): number {
    return this.inner.setMwi();
  }

  clearMwi(): void {
    this.inner.clearMwi();
  }

  intx(enable: boolean): void {
    this.inner.intx(enable);
  }

  setPowerState(state: PciPowerState): number {
    return this.inner.setPowerState(state);
  }

  // --- MSI layer -------------------------------------------------------------------------

  /** `dev->irq` becomes the MSI IRQ (`undefined`: back to the kernel's `irq`). */
  setMsiIrq(irq: number | undefined): void {
    this.#msiIrq = irq;
  }

  /** The power state in PMCSR (0 = D0). */
  powerState(): number {
    return this.inner.currentPowerState();
  }

  /** One dword of BAR memory through `resource<bar>`; all-ones when it cannot be read. */
  readBarDword(bar: number, byteOffset: number): number {
    try {
      const bytes = this.#io.readBytes(this.#barPath(bar), byteOffset, 4);
      if (bytes.length < 4) return 0xffffffff;
      return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    } catch (err) {
      if (!isSysfsError(err)) throw err;
      this.#logBarFault('read', bar, byteOffset, err.message);
      return 0xffffffff;
    }
  }

  /** One dword write to BAR memory through `resource<bar>`; dropped (logged) on failure. */
  writeBarDword(bar: number, byteOffset: number, value: number): void {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value >>> 0, true);
    try {
      this.#io.writeBytes(this.#barPath(bar), byteOffset, bytes);
    } catch (err) {
      if (!isSysfsError(err)) throw err;
      this.#logBarFault('write', bar, byteOffset, err.message);
    }
  }

  // --- Save / restore --------------------------------------------------------------------

  /** `pci_save_state` over the `config` and `resource<N>` files. */
  saveState(): SavedConfigState {
    return saveConfigState(this.#stateAccess());
  }

  /** `pci_restore_state` over the `config` and `resource<N>` files. */
  restoreState(state: SavedConfigState): void {
    restoreConfigState(this.#stateAccess(), state);
  }

  // --- AER -------------------------------------------------------------------------------

  /**
   * The function records `uncorrectable` errors as hardware does: every bit in the AER
   * Uncorrectable Status (masked ones too), the Device Status detected bits, and the
   * event telling which bits were unmasked and whether the function would report them.
   *
   * @throws {PcibackError} `NOT_SUPPORTED` without an injector (a real host).
   */
  injectAerError(errors: { readonly uncorrectable: number }): AerErrorEvent {
    const inject = this.#injectBits;
    const name = this.address.toString();
    if (inject === undefined) {
      throw new PcibackError(
        'NOT_SUPPORTED',
        `Cannot inject an AER error into "${name}": a real host needs the kernel's aer-inject, which this platform does not drive`,
      );
    }
    const unc = (errors.uncorrectable & PCI_ERR_UNC_MASK) >>> 0;
    const aer =
      this.configSizeBytes > 256
        ? findExtendedCapability(this.#reader, PCI_EXT_CAP_ID.ERR)
        : undefined;
    const severity =
      aer === undefined
        ? PCI_ERR_UNC_SEVER_DEFAULT
        : this.readConfig(aer + PCI_ERR_UNCOR_SEVER_OFFSET, 4).value;
    const mask = aer === undefined ? 0 : this.readConfig(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4).value;
    if (aer !== undefined && unc !== 0) inject(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4, unc);
    const exp = findCapability(this.#reader, PCI_CAP_ID.EXP);
    let devsta = 0;
    if ((unc & ~severity) !== 0) devsta |= PCI_EXP_DEVSTA_NFED;
    if ((unc & severity) !== 0) devsta |= PCI_EXP_DEVSTA_FED;
    if ((unc & PCI_ERR_UNC_UNSUP) !== 0) devsta |= PCI_EXP_DEVSTA_URD;
    if (exp !== undefined && devsta !== 0) inject(exp + PCI_EXP_DEVSTA_OFFSET, 2, devsta);
    const nonFatal = (unc & ~severity & ~mask) >>> 0;
    const fatal = (unc & severity & ~mask) >>> 0;
    const devctl = exp === undefined ? 0 : this.readConfig(exp + PCI_EXP_DEVCTL_OFFSET, 2).value;
    const serr = (this.readConfig(PCI_COMMAND_OFFSET, 2).value & PCI_COMMAND_SERR) !== 0;
    return {
      correctable: 0,
      nonFatal,
      fatal,
      isFatal: fatal !== 0,
      reported:
        (nonFatal !== 0 && ((devctl & PCI_EXP_DEVCTL_NFERE) !== 0 || serr)) ||
        (fatal !== 0 && ((devctl & PCI_EXP_DEVCTL_FERE) !== 0 || serr)),
    };
  }

  /** The link reset of the port above, as the platform does it (logged when it cannot). */
  linkReset(): void {
    if (this.#linkReset === undefined) {
      this.#logger.warn(
        { device: this.address.toString() },
        `Cannot reset the link of "${this.address.toString()}": the platform gave no way`,
      );
      return;
    }
    this.#linkReset();
  }

  // --- Internals -------------------------------------------------------------------------

  #barPath(bar: number): string {
    return `${this.inner.sysfsDir}/resource${bar}`;
  }

  #logBarFault(operation: string, bar: number, byteOffset: number, message: string): void {
    this.#logger.debug(
      { device: this.address.toString(), bar, byteOffset, operation },
      `BAR ${bar} ${operation} at ${byteOffset} of "${this.address.toString()}" dropped: ${message}`,
    );
  }

  #stateAccess(): ConfigStateAccess {
    return {
      configSizeBytes: this.configSizeBytes,
      readConfigValue: (at, size) => this.readConfig(at, size).value,
      writeConfigValue: (at, size, value) => {
        this.writeConfig(at, size, value >>> 0);
      },
      isVirtualFunction: this.#io.exists(`${this.inner.sysfsDir}/physfn`),
      readBarDword: (bar, at) => this.readBarDword(bar, at),
      writeBarDword: (bar, at, value) => {
        this.writeBarDword(bar, at, value);
      },
    };
  }
}
