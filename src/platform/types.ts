// SPDX-License-Identifier: MIT
/**
 * What the core receives from a platform (simulator, Linux sysfs, real Xen). The core
 * (`abi`, `pci`, `devices`, `pciback`, `pcifront`, `xenstore/protocol`, `toolstack`) only
 * sees these interfaces; `daemon/` and `cli/` choose an implementation.
 */
import type { PciAddress } from '../pci/address.js';
import type { PciResource } from '../pci/resource.js';

/** Access width of a configuration-space access. */
export type ConfigAccessSize = 1 | 2 | 4;

/** Result of a PCIBIOS-style config read: `err` is 0 or a negative errno. */
export interface ConfigReadResult {
  /** Zero-extended value; all-ones of the access size when the access failed. */
  readonly value: number;
  readonly err: number;
}

/** Linux power states settable through the PCI core (`pci_set_power_state`). */
export type PciPowerState = 0 | 1 | 2 | 3;

/**
 * One PCI function as a driver sees it through Linux's PCI core: config accessors,
 * the resource table and the core services pciback calls (spec §11 "PCI core" row).
 * Implemented by the simulator over simulated hardware and by the Linux platform
 * over sysfs.
 */
export interface HostPciDevice {
  readonly address: PciAddress;
  /** Vendor ID cached at enumeration (a VF reads 0xffff in hardware). */
  readonly vendorId: number;
  /** Device ID cached at enumeration. */
  readonly deviceId: number;
  /** Header type without the multi-function bit (0 or 1 for devices pciback takes). */
  readonly headerType: number;
  /** 256 for conventional PCI, 4096 for PCIe / PCI-X 2.0 devices. */
  readonly configSizeBytes: number;

  /**
   * Platform config read. Offsets beyond the config size or misaligned accesses
   * return `{ value: all-ones, err: -22 }` (EINVAL), like x86 Linux.
   */
  readConfig(byteOffset: number, sizeBytes: ConfigAccessSize): ConfigReadResult;
  /** Platform config write; returns 0 or a negative errno (-22 out of range). */
  writeConfig(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): number;

  /** Resource table: BARs 0..5 then the ROM at index 6 (`PCI_ROM_RESOURCE`). */
  resources(): readonly PciResource[];
  /** Current Linux IRQ number (`dev->irq`); the MSI IRQ while MSI is enabled. */
  irq(): number;

  /** True while the enable count is non-zero (`pci_is_enabled`). */
  isEnabled(): boolean;
  /**
   * `pci_enable_device`: increments the enable count; the first enable turns on I/O
   * and memory decode for the assigned resources and clears INTX_DISABLE when the
   * device has an interrupt pin and MSI/MSI-X are off. Returns 0 or a negative errno.
   */
  enableDevice(): number;
  /** `pci_disable_device`: the last disable clears bus mastering and decode state. */
  disableDevice(): void;
  /** True when the kernel believes bus mastering is on (`dev->is_busmaster`). */
  isBusMaster(): boolean;
  /** `pci_set_master`: sets MASTER; raises a latency timer below 16 to 64 (x86). */
  setMaster(): void;
  /** `pci_clear_master`. */
  clearMaster(): void;
  /** `pci_set_mwi`: programs the cache line size and sets INVALIDATE; 0 or -errno. */
  setMwi(): number;
  /** `pci_clear_mwi`. */
  clearMwi(): void;
  /** `pci_intx`: clears (enable) or sets (disable) INTX_DISABLE. */
  intx(enable: boolean): void;
  /** `pci_set_power_state`; returns 0 or a negative errno. */
  setPowerState(state: PciPowerState): number;
}

/** Structured logger; pino's `Logger` satisfies it. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything (tests, quiet CLI commands). */
export const SILENT_LOGGER: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
