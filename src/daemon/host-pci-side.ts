// SPDX-License-Identifier: MIT
/**
 * The PCI side of a {@link SimHost}: which bus the host's pciback serves guests from.
 * The hypervisor, xenstore, toolstack and guests are always the simulator's; the bus is
 * the simulated machine's (`SimPciHost`, the default) or the Linux platform's
 * (`LinuxPciHost` over sysfs, a fake tree in tests), which is the composition of a
 * real dom0 deployment: the kernel's stub driver holds the device, our userspace stub
 * does everything else through sysfs.
 */
import type { PciAddress } from '../pci/address.js';
import type { SavedConfigState } from '../pci/config-state.js';
import type { PciStub, PciStubPlatformDevice } from '../pciback/stub/index.js';
import type { PciHostPlatform } from '../platform/pci-host.js';
import type { AerCoreDevice } from '../platform/sim/aer-core.js';
import type { SimInterrupts } from '../platform/sim/interrupts/index.js';
import type { SimHypervisor } from '../platform/sim/xen/hypervisor.js';
import type { HostPciDevice, Logger } from '../platform/types.js';

/** One function of the side: the PCI core's view, with what the AER core needs. */
export interface HostPciSideDevice extends HostPciDevice, AerCoreDevice {
  saveState(): SavedConfigState;
  restoreState(state: SavedConfigState): void;
}

/** What a side offers the host. */
export interface HostPciSide {
  /** The bus, as the stub, the assignable service and reconcile see it. */
  readonly pci: PciHostPlatform;
  /** The driver that holds assignable functions on this bus (default `pciback`). */
  readonly stubDriverName?: string;
  /** Every function present now, in bus order (`BB:DD.*` expansion, device results). */
  functions(): readonly PciAddress[];
  /** The PCI core's view of one function, undefined when absent. */
  device(address: PciAddress): HostPciSideDevice | undefined;
  /** What `pcibackDeviceFactory` builds a seized function's backend state from. */
  stubDevice(address: PciAddress): PciStubPlatformDevice | undefined;
  /**
   * Hook the stub into the bus's driver core (its probe/remove follow the bus's binds
   * and unbinds) and do the boot-time binding (`hide=` first, then dom0's drivers).
   */
  connectStub(stub: PciStub): void;
  /** Per-function interrupt statistics for the device results, when the side has them. */
  deviceStats?(address: PciAddress): unknown;
  /**
   * Device activity: raise the enabled vectors of the functions `inUse` says a guest
   * holds. Only simulated hardware has any.
   */
  raiseInterrupts?(inUse: (address: PciAddress) => boolean): void;
  /** Release what the side holds. */
  close?(): void;
}

/** What a side is built from: the host's hypervisor and interrupt plumbing. */
export interface HostPciSideEnvironment {
  readonly xen: SimHypervisor;
  readonly interrupts: SimInterrupts;
  readonly logger: Logger;
}

/** Builds a side once the host's hypervisor and interrupts exist. */
export type HostPciSideFactory = (env: HostPciSideEnvironment) => HostPciSide;
