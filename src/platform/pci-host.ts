// SPDX-License-Identifier: MIT
/**
 * The host's PCI bus as the stub sees it (Linux: `/sys/bus/pci`; the simulator: its
 * machine): which functions exist, which driver holds each, how to move a function
 * between drivers, and how to reset it. Implemented by `platform/sim` and
 * `platform/linux`; the stub (`pciback/stub`) and the CLI only see this interface.
 *
 * Names follow Linux sysfs, so one vocabulary serves both platforms: driver names as in
 * `/sys/bus/pci/drivers`, reset methods as in `reset_method`.
 */
import type { PciAddress } from '../pci/address.js';
import type { PciResource } from '../pci/resource.js';
import type { HostPciDevice } from './types.js';

/**
 * Reset methods, named as Linux's `reset_method` file lists them (v5.15+), in the
 * kernel's default order of preference.
 */
export const PCI_RESET_METHODS = [
  'device_specific',
  'acpi',
  'flr',
  'af_flr',
  'pm',
  'bus',
  'cxl_bus',
] as const;

/** One reset method. */
export type PciResetMethod = (typeof PCI_RESET_METHODS)[number];

/** True when `name` is a method `reset_method` may list. */
export function isPciResetMethod(name: string): name is PciResetMethod {
  return (PCI_RESET_METHODS as readonly string[]).includes(name);
}

/** What the host knows of one function (sysfs attributes of `/sys/bus/pci/devices/<BDF>`). */
export interface HostPciFunctionInfo {
  readonly address: PciAddress;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemDeviceId: number;
  /** 24-bit class code (`class`: base, sub, prog-if). */
  readonly classCode: number;
  /** Header type without the multi-function bit. */
  readonly headerType: number;
  /** Bound driver (`driver` link's name), or null. */
  readonly driver: string | null;
  /** `driver_override`, or null when unset. */
  readonly driverOverride: string | null;
  /** `iommu_group` number, or null without an IOMMU. */
  readonly iommuGroup: number | null;
  /** The bridge above the function (`..` of its sysfs directory), null on a root bus. */
  readonly upstreamBridge: PciAddress | null;
  /** For a virtual function: its physical function (`physfn`). */
  readonly physfn: PciAddress | null;
  /** For a physical function: its enabled virtual functions (`virtfn*`). */
  readonly virtfns: readonly PciAddress[];
  /** Methods the kernel would try (`reset_method`); empty: the function is not resettable. */
  readonly resetMethods: readonly PciResetMethod[];
  /** Legacy IRQ (`irq`), 0 when none. */
  readonly irq: number;
}

/** What dom0 uses a function for (Linux: its network interfaces and block devices). */
export interface HostPciConsumers {
  /** Every user found, e.g. `network interface "eth0"`, `block device "nvme0n1"`. */
  readonly found: readonly string[];
  /** The users busy now, each saying why: `network interface "eth0" is up`. */
  readonly busy: readonly string[];
}

/** Outcome of {@link PciHostPlatform.reset}. */
export type PciResetOutcome =
  | { readonly ok: true; readonly method: PciResetMethod }
  | { readonly ok: false; readonly reason: string };

/**
 * The host's PCI bus. Every mutating call throws a `PcibackError` whose message names the
 * device and the cause (codes: `NO_SUCH_DEVICE`, `NO_SUCH_DRIVER`, `DEVICE_BUSY`,
 * `PERMISSION_DENIED`, `HOST_IO`).
 */
export interface PciHostPlatform {
  /** `sim` or `linux`: for messages and `--platform`. */
  readonly kind: string;
  /** Every function, in bus order. */
  list(): readonly HostPciFunctionInfo[];
  /** One function, or undefined when absent. */
  info(address: PciAddress): HostPciFunctionInfo | undefined;
  /** Config access and PCI core services for a function (for the config virtualizer). */
  open(address: PciAddress): HostPciDevice;
  /** Resources (BARs 0..5, ROM at 6) with their sizes. */
  resources(address: PciAddress): readonly PciResource[];
  /**
   * The driver dom0 would bind to the function without the stub (its id tables; Linux
   * would read `modalias` against `modules.alias`): a name, null for none, undefined
   * when the platform cannot tell. Reconcile uses it for a device seized before any
   * record was written (boot-time `hide=`).
   */
  nativeDriver?(address: PciAddress): string | null | undefined;
  /**
   * dom0's users of the function: what taking it away would break. Undefined when the
   * platform cannot tell; `found` empty when it saw none (the caller then has to judge
   * another way).
   */
  consumers?(address: PciAddress): HostPciConsumers | undefined;
  /** Drivers present (`/sys/bus/pci/drivers`). */
  drivers(): readonly string[];
  /** `driver/unbind`: detach the function from its driver; no-op when it has none. */
  unbind(address: PciAddress): void;
  /** `driver_override` (null clears it). */
  setDriverOverride(address: PciAddress, driver: string | null): void;
  /** `drivers/<driver>/bind`. */
  bind(address: PciAddress, driver: string): void;
  /** `drivers_probe`: let the driver core pick a driver (honours `driver_override`). */
  probe(address: PciAddress): void;
  /**
   * Reset with `method`, or with the kernel's first working method when omitted
   * (`reset_method` + `reset`). A bus reset also resets every other function behind the
   * same bridge: deciding whether that is allowed is the caller's business (the stub's).
   */
  reset(address: PciAddress, method?: PciResetMethod): PciResetOutcome;
}
