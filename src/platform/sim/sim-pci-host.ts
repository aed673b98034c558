// SPDX-License-Identifier: MIT
/**
 * The simulated machine's PCI bus as {@link PciHostPlatform}: its functions (each a
 * {@link SimHostPciDevice}), a small model of Linux's driver core (which driver holds
 * each function, `driver_override`, bind/unbind/`drivers_probe`), and function resets
 * derived from the simulated hardware.
 *
 * Driver core model:
 * - Named dom0 drivers are plain names (`nvme`, `ixgbe`, ...): the entries' original
 *   drivers plus `dom0Drivers`. One accepts a function whose original driver it is (its
 *   ID table) or whose `driver_override` names it (as `pci_match_device` matches any
 *   device for an override). A function bound to one is "in use by dom0".
 * - Registered drivers (the stub registers `pciback` this way) get `probe(address)` and
 *   `remove(address)` calls, as `pci_driver` callbacks. Registering probes every unbound
 *   function (`driver_attach`); a probe that returns false (or throws) leaves it unbound.
 * - `probe(address)` (`drivers_probe`) tries only the override's driver when one is set;
 *   otherwise the registered drivers in registration order, then the function's
 *   original driver: pciback is taken to be built in, so it gets the first look, as on a
 *   dom0 booted with `xen-pciback.hide=`.
 * - Listeners of {@link SimPciHost.onDriverUnbinding} hear of every unbind before the
 *   driver's `remove` runs (`BUS_NOTIFY_UNBIND_DRIVER`).
 * - `bind` to a function that has a driver is EBUSY (`__driver_probe_device`), also to
 *   the same driver.
 *
 * Resets (`reset_method`, `reset`):
 * - `flr` when the function has PCIe FLR, `af_flr` for Advanced Features with TP and
 *   FLR, `pm` for a PM capability with No_Soft_Reset clear (refused outside D0), `bus`
 *   when a bridge is upstream. Deviation: Linux lists `bus` only for a function alone on
 *   its bus; here whoever resets decides whether the other functions may be reset too.
 * - A reset is transparent as sysfs `reset` is (`pci_reset_function`): the config state
 *   is saved before and restored after. A bus reset sets the bridge's Secondary Bus
 *   Reset bit, resets every function behind the bridge (each saved and restored, as
 *   `pci_reset_bus` does) and clears the bit.
 *
 * Topology: the upstream bridge of a function on bus N > 0 is the machine's type-1
 * function whose secondary bus is N (read from its config space), if any.
 */
import {
  PCI_AF_CTRL_FLR,
  PCI_AF_CTRL_OFFSET,
  PCI_BRIDGE_CONTROL_OFFSET,
  PCI_BRIDGE_CTL_BUS_RESET,
  PCI_CAP_ID,
  PCI_D0,
  PCI_D3HOT,
  PCI_EXP_DEVCTL_BCR_FLR,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_NORMAL,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_CTRL_PME_STATUS,
  PCI_PM_CTRL_STATE_MASK,
  PCI_REVISION_ID_OFFSET,
  PCI_SECONDARY_BUS_OFFSET,
  PCI_SUBSYSTEM_ID_OFFSET,
  PCI_SUBSYSTEM_VENDOR_ID_OFFSET,
} from '../../abi/pci-regs.js';
import type { CatalogModel } from '../../devices/catalog/index.js';
import { PcibackError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import { findCapability } from '../../pci/capabilities.js';
import type { PciResource } from '../../pci/resource.js';
import type {
  HostPciFunctionInfo,
  PciHostPlatform,
  PciResetMethod,
  PciResetOutcome,
} from '../pci-host.js';
import { SILENT_LOGGER, type HostPciDevice, type Logger } from '../types.js';
import type { SimInterrupts, SimMsiControl } from './interrupts/index.js';
import { assertSavedConfigState } from '../../pci/config-state.js';
import type { SavedConfigState, SimHostPciDevice } from './pci-core.js';

/** The usual Linux driver of each catalog model, per function number. */
export const CATALOG_LINUX_DRIVERS = {
  'nic-sriov': ['ixgbe'],
  nvme: ['nvme'],
  xhci: ['xhci_hcd'],
  gpu: ['nouveau', 'snd_hda_intel'],
  'root-port': ['pcieport'],
} as const satisfies Record<CatalogModel, readonly string[]>;

/** The Linux driver of the VFs of an SR-IOV catalog model. */
export const CATALOG_LINUX_VF_DRIVERS: Partial<Record<CatalogModel, string>> = {
  'nic-sriov': 'ixgbevf',
};

/**
 * The driver Linux would bind to function `fn` of a catalog device, null when none
 * (a function number the model does not have).
 *
 * @example
 * catalogDriverName('gpu', 1); // 'snd_hda_intel'
 */
export function catalogDriverName(model: CatalogModel, fn: number): string | null {
  const drivers: readonly string[] = CATALOG_LINUX_DRIVERS[model];
  return drivers[fn] ?? null;
}

/** One function of the simulated machine. */
export interface SimPciHostEntry {
  readonly address: PciAddress;
  readonly host: SimHostPciDevice;
  /** The dom0 driver that would normally hold it (its ID table matches), or null. */
  readonly originalDriver: string | null;
  readonly iommuGroup?: number;
}

/** A driver registered with {@link SimPciHost.registerDriver} (`struct pci_driver`). */
export interface SimPciDriver {
  /** Offered an unbound function: true takes it. A throw counts as false (logged). */
  probe(address: PciAddress): boolean;
  /** The function is being unbound from this driver. A throw is logged; it is unbound. */
  remove(address: PciAddress): void;
}

/** Called before a function is unbound from `driver` (`BUS_NOTIFY_UNBIND_DRIVER`). */
export type SimDriverUnbindingListener = (address: PciAddress, driver: string) => void;

/** Options of {@link SimPciHost}. */
export interface SimPciHostOptions {
  readonly logger?: Logger;
  /** Named dom0 drivers present besides the entries' original drivers (`vfio-pci`). */
  readonly dom0Drivers?: readonly string[];
}

/**
 * What the stub's device factory needs of a simulated function: the function, its MSI
 * layer, its PF (VFs only) and the PCI core's config save/restore.
 */
export interface SimStubDevice {
  readonly host: SimHostPciDevice;
  readonly msi: SimMsiControl;
  readonly physfn?: HostPciDevice;
  saveState(): SavedConfigState;
  /** @throws TypeError when `state` is not a state `saveState` returned. */
  restoreState(state: unknown): void;
}

interface FunctionRecord {
  readonly entry: SimPciHostEntry;
  driver: string | null;
  override: string | null;
}

const DRIVER_NAME = /^[\w.-]{1,64}$/;
/** Offsets inside the Bridge Subsystem Vendor ID capability. */
const SSVID_VENDOR_OFFSET = 4;
const SSVID_DEVICE_OFFSET = 6;

function checkDriverName(name: string): void {
  if (!DRIVER_NAME.test(name)) {
    throw new RangeError(
      `Invalid driver name "${name}": use 1-64 letters, digits, "_", "." or "-"`,
    );
  }
}

/**
 * The simulated host's PCI bus.
 *
 * @example
 * const host = new SimPciHost([
 *   { address: nvme.address, host: nvme, originalDriver: 'nvme' },
 * ]);
 * host.registerDriver('pciback', stub); // probes the unbound functions
 * host.bindDom0Drivers(); // the rest go to their usual drivers
 * host.info(nvme.address)?.driver; // 'pciback' when hidden, else 'nvme'
 * host.reset(nvme.address); // { ok: true, method: 'flr' }
 */
export class SimPciHost implements PciHostPlatform {
  readonly kind = 'sim';
  readonly #functions = new Map<number, FunctionRecord>();
  readonly #namedDrivers = new Set<string>();
  readonly #registered = new Map<string, SimPciDriver>();
  readonly #unbindingListeners = new Set<SimDriverUnbindingListener>();
  readonly #logger: Logger;

  constructor(entries: readonly SimPciHostEntry[], options: SimPciHostOptions = {}) {
    this.#logger = options.logger ?? SILENT_LOGGER;
    for (const name of options.dom0Drivers ?? []) {
      checkDriverName(name);
      this.#namedDrivers.add(name);
    }
    for (const entry of entries) this.#add(entry);
  }

  // --- The machine ---------------------------------------------------------------------

  /**
   * Hot add (also how VFs appear once a PF enables SR-IOV): the function is added and
   * offered to the drivers, as `pci_bus_add_device` does.
   *
   * @throws RangeError when a function already sits at the address.
   */
  addFunction(entry: SimPciHostEntry): void {
    this.#add(entry);
    this.probe(entry.address);
  }

  /** Hot remove: unbind (listeners, driver `remove`), then forget the function. */
  removeFunction(address: PciAddress): void {
    this.unbind(address);
    this.#functions.delete(address.key);
  }

  /** The simulated function at `address`. */
  hostDevice(address: PciAddress): SimHostPciDevice | undefined {
    return this.#functions.get(address.key)?.entry.host;
  }

  /**
   * What the stub's device factory needs to seize `address`: its MSI layer comes from
   * `interrupts` (attached now if it was not).
   */
  stubDevice(address: PciAddress, interrupts: SimInterrupts): SimStubDevice | undefined {
    const host = this.hostDevice(address);
    if (host === undefined) return undefined;
    return {
      host,
      msi: interrupts.attach(host),
      ...(host.physfn === undefined ? {} : { physfn: host.physfn }),
      saveState: () => host.saveState(),
      restoreState: (state) => {
        assertSavedConfigState(state, address);
        host.restoreState(state);
      },
    };
  }

  // --- The driver core -----------------------------------------------------------------

  /**
   * `pci_register_driver`: `driver` joins the bus and is offered every unbound function
   * (in bus order) whose `driver_override` is unset or names it.
   *
   * @throws RangeError for a bad name or a name already in use.
   */
  registerDriver(name: string, driver: SimPciDriver): void {
    checkDriverName(name);
    if (this.#registered.has(name) || this.#namedDrivers.has(name)) {
      throw new RangeError(`Cannot register driver "${name}": a driver with that name exists`);
    }
    this.#registered.set(name, driver);
    for (const record of this.#sorted()) {
      if (record.driver !== null) continue;
      if (record.override !== null && record.override !== name) continue;
      this.#tryDriver(record, name);
    }
  }

  /** `pci_unregister_driver`: every function it holds is unbound first. */
  unregisterDriver(name: string): void {
    if (!this.#registered.has(name)) return;
    for (const record of this.#sorted()) {
      if (record.driver === name) this.unbind(record.entry.address);
    }
    this.#registered.delete(name);
  }

  /** Hear of every unbind before it happens; returns a function that stops listening. */
  onDriverUnbinding(listener: SimDriverUnbindingListener): () => void {
    this.#unbindingListeners.add(listener);
    return () => {
      this.#unbindingListeners.delete(listener);
    };
  }

  /**
   * dom0's driver modules load: every unbound function goes to its original driver (or
   * to its override's driver, when that is a named driver).
   */
  bindDom0Drivers(): void {
    for (const record of this.#sorted()) {
      if (record.driver !== null) continue;
      const name = record.override ?? record.entry.originalDriver;
      if (name !== null && this.#namedDrivers.has(name)) this.#tryDriver(record, name);
    }
  }

  // --- PciHostPlatform -----------------------------------------------------------------

  list(): readonly HostPciFunctionInfo[] {
    return this.#sorted().map((record) => this.#info(record));
  }

  /** The catalog's dom0 driver of the function (null for a dump: none is known to match). */
  nativeDriver(address: PciAddress): string | null | undefined {
    const record = this.#functions.get(address.key);
    return record === undefined ? undefined : record.entry.originalDriver;
  }

  info(address: PciAddress): HostPciFunctionInfo | undefined {
    const record = this.#functions.get(address.key);
    return record === undefined ? undefined : this.#info(record);
  }

  open(address: PciAddress): HostPciDevice {
    return this.#require(address, `Cannot open "${address.toString()}"`).entry.host;
  }

  resources(address: PciAddress): readonly PciResource[] {
    return this.#require(
      address,
      `Cannot read the resources of "${address.toString()}"`,
    ).entry.host.resources();
  }

  drivers(): readonly string[] {
    return [...new Set([...this.#namedDrivers, ...this.#registered.keys()])].sort();
  }

  unbind(address: PciAddress): void {
    const record = this.#require(address, `Cannot unbind "${address.toString()}"`);
    const driver = record.driver;
    if (driver === null) return;
    for (const listener of [...this.#unbindingListeners]) {
      try {
        listener(address, driver);
      } catch (err) {
        this.#logger.error(
          { device: address.toString(), driver, err },
          `A driver-unbinding listener failed for "${address.toString()}"`,
        );
      }
    }
    // A listener may have unbound it already (or removed it).
    if (record.driver !== driver) return;
    const registered = this.#registered.get(driver);
    if (registered !== undefined) {
      try {
        registered.remove(address);
      } catch (err) {
        this.#logger.error(
          { device: address.toString(), driver, err },
          `Driver "${driver}" failed to remove "${address.toString()}"; it is unbound anyway`,
        );
      }
    }
    record.driver = null;
  }

  setDriverOverride(address: PciAddress, driver: string | null): void {
    const action =
      driver === null
        ? `Cannot clear the driver override of "${address.toString()}"`
        : `Cannot set the driver override of "${address.toString()}" to "${driver}"`;
    const record = this.#require(address, action);
    if (driver !== null) checkDriverName(driver);
    record.override = driver;
  }

  bind(address: PciAddress, driver: string): void {
    const action = `Cannot bind "${address.toString()}" to driver "${driver}"`;
    const record = this.#require(address, action);
    if (!this.#registered.has(driver) && !this.#namedDrivers.has(driver)) {
      throw new PcibackError('NO_SUCH_DRIVER', `${action}: no such driver`);
    }
    if (record.driver !== null) {
      throw new PcibackError(
        'DEVICE_BUSY',
        `${action}: it is bound to driver "${record.driver}" (EBUSY): unbind it first`,
      );
    }
    if (record.override !== null && record.override !== driver) {
      throw new PcibackError(
        'HOST_IO',
        `${action}: the driver does not accept it (ENODEV): its driver_override is "${record.override}"`,
      );
    }
    if (!this.#tryDriver(record, driver)) {
      throw new PcibackError(
        'HOST_IO',
        `${action}: the driver does not accept it (ENODEV)` +
          (this.#registered.has(driver)
            ? ''
            : `: it is not its usual driver and its driver_override is not "${driver}"`),
      );
    }
  }

  probe(address: PciAddress): void {
    const record = this.#require(address, `Cannot probe drivers for "${address.toString()}"`);
    if (record.driver !== null) return;
    if (record.override !== null) {
      // Only that driver; when it is absent the function stays unbound (no error).
      if (this.#registered.has(record.override) || this.#namedDrivers.has(record.override)) {
        this.#tryDriver(record, record.override);
      }
      return;
    }
    for (const name of [...this.#registered.keys()]) {
      if (this.#tryDriver(record, name)) return;
    }
    const original = record.entry.originalDriver;
    if (original !== null && this.#namedDrivers.has(original)) this.#tryDriver(record, original);
  }

  reset(address: PciAddress, method?: PciResetMethod): PciResetOutcome {
    const record = this.#require(address, `Cannot reset "${address.toString()}"`);
    const name = address.toString();
    const methods = this.#resetMethods(record);
    if (methods.length === 0) {
      return {
        ok: false,
        reason:
          `"${name}" is not resettable: it has no FLR, no Advanced Features FLR, ` +
          'no PM reset (No_Soft_Reset set or no PM capability) and no upstream bridge for a bus reset',
      };
    }
    if (method !== undefined && !methods.includes(method)) {
      return {
        ok: false,
        reason: `Cannot reset "${name}" with method "${method}": the device does not support it (its methods: ${methods.join(', ')})`,
      };
    }
    // Without a method, the first one that does not answer ENOTTY decides
    // (`__pci_reset_function_locked`); every listed method applies here.
    const chosen = method ?? methods[0];
    if (chosen === undefined) return { ok: false, reason: `"${name}" is not resettable` };
    const failure = this.#doReset(record, chosen);
    if (failure !== undefined) {
      return { ok: false, reason: `Cannot reset "${name}" with method "${chosen}": ${failure}` };
    }
    this.#logger.debug({ device: name, method: chosen }, `Reset "${name}" (${chosen})`);
    return { ok: true, method: chosen };
  }

  // --- Internals -------------------------------------------------------------------------

  #add(entry: SimPciHostEntry): void {
    if (!entry.address.equals(entry.host.address)) {
      throw new RangeError(
        `Cannot add "${entry.address.toString()}": its device sits at "${entry.host.address.toString()}"`,
      );
    }
    if (this.#functions.has(entry.address.key)) {
      throw new RangeError(
        `Cannot add "${entry.address.toString()}": a function already sits at that address`,
      );
    }
    if (entry.originalDriver !== null) {
      checkDriverName(entry.originalDriver);
      this.#namedDrivers.add(entry.originalDriver);
    }
    this.#functions.set(entry.address.key, { entry, driver: null, override: null });
  }

  #require(address: PciAddress, action: string): FunctionRecord {
    const record = this.#functions.get(address.key);
    if (record === undefined) {
      throw new PcibackError('NO_SUCH_DEVICE', `${action}: no such device`);
    }
    return record;
  }

  #sorted(): FunctionRecord[] {
    return [...this.#functions.values()].sort((a, b) => a.entry.address.compare(b.entry.address));
  }

  /** Offer `record` to driver `name`; true when it is now bound to it. */
  #tryDriver(record: FunctionRecord, name: string): boolean {
    const address = record.entry.address;
    if (record.override !== null && record.override !== name) return false;
    const registered = this.#registered.get(name);
    if (registered === undefined) {
      if (!this.#namedDrivers.has(name)) return false;
      if (record.entry.originalDriver !== name && record.override !== name) return false;
      record.driver = name;
      return true;
    }
    let taken: boolean;
    try {
      taken = registered.probe(address);
    } catch (err) {
      this.#logger.error(
        { device: address.toString(), driver: name, err },
        `Driver "${name}" failed to probe "${address.toString()}"`,
      );
      taken = false;
    }
    // The probe may have unbound or rebound things; only an unbound function is taken.
    if (taken && record.driver === null && this.#functions.get(address.key) === record) {
      record.driver = name;
      return true;
    }
    return false;
  }

  #info(record: FunctionRecord): HostPciFunctionInfo {
    const { entry } = record;
    const host = entry.host;
    const physfn = host.physfn?.address ?? null;
    const virtfns = this.#sorted()
      .filter((r) => r.entry.host.physfn === host)
      .map((r) => r.entry.address);
    return Object.freeze({
      address: entry.address,
      vendorId: host.vendorId,
      deviceId: host.deviceId,
      ...this.#subsystem(host),
      classCode: host.hardware.configRead(PCI_REVISION_ID_OFFSET, 4) >>> 8,
      headerType: host.headerType,
      driver: record.driver,
      driverOverride: record.override,
      iommuGroup: entry.iommuGroup ?? null,
      upstreamBridge: this.#upstreamBridge(entry.address)?.entry.address ?? null,
      physfn,
      virtfns: Object.freeze(virtfns),
      resetMethods: Object.freeze(this.#resetMethods(record)),
      irq: host.irq(),
    });
  }

  /** `subsystem_vendor`/`subsystem_device`: a bridge's come from its SSVID capability. */
  #subsystem(host: SimHostPciDevice): { subsystemVendorId: number; subsystemDeviceId: number } {
    const hw = host.hardware;
    if (host.headerType === PCI_HEADER_TYPE_NORMAL) {
      return {
        subsystemVendorId: hw.configRead(PCI_SUBSYSTEM_VENDOR_ID_OFFSET, 2),
        subsystemDeviceId: hw.configRead(PCI_SUBSYSTEM_ID_OFFSET, 2),
      };
    }
    const ssvid =
      host.headerType === PCI_HEADER_TYPE_BRIDGE ? findCapability(hw, PCI_CAP_ID.SSVID) : undefined;
    if (ssvid === undefined) return { subsystemVendorId: 0, subsystemDeviceId: 0 };
    return {
      subsystemVendorId: hw.configRead(ssvid + SSVID_VENDOR_OFFSET, 2),
      subsystemDeviceId: hw.configRead(ssvid + SSVID_DEVICE_OFFSET, 2),
    };
  }

  /** The type-1 function whose secondary bus is `address`'s bus (none on bus 0). */
  #upstreamBridge(address: PciAddress): FunctionRecord | undefined {
    if (address.bus === 0) return undefined;
    for (const record of this.#functions.values()) {
      const { entry } = record;
      if (entry.host.headerType !== PCI_HEADER_TYPE_BRIDGE) continue;
      if (entry.address.domain !== address.domain || entry.address.equals(address)) continue;
      if (entry.host.hardware.configRead(PCI_SECONDARY_BUS_OFFSET, 1) === address.bus) {
        return record;
      }
    }
    return undefined;
  }

  /** True when `bridge` is above `address` (its bridge, or its bridge's, ...). */
  #isBehind(address: PciAddress, bridge: PciAddress): boolean {
    const seen = new Set<number>();
    let current = this.#upstreamBridge(address);
    while (current !== undefined && !seen.has(current.entry.address.key)) {
      if (current.entry.address.equals(bridge)) return true;
      seen.add(current.entry.address.key);
      current = this.#upstreamBridge(current.entry.address);
    }
    return false;
  }

  #resetMethods(record: FunctionRecord): PciResetMethod[] {
    const hw = record.entry.host.hardware;
    const caps = hw.resetCapabilities();
    const methods: PciResetMethod[] = [];
    if (caps.flr && findCapability(hw, PCI_CAP_ID.EXP) !== undefined) methods.push('flr');
    if (
      caps.afFlr &&
      hw.afTransactionsPendingCapable() &&
      findCapability(hw, PCI_CAP_ID.AF) !== undefined
    ) {
      methods.push('af_flr');
    }
    if (caps.pmSoftReset && findCapability(hw, PCI_CAP_ID.PM) !== undefined) methods.push('pm');
    if (this.#upstreamBridge(record.entry.address) !== undefined) methods.push('bus');
    return methods;
  }

  /** Performs one reset, state saved and restored around it; a reason when it cannot. */
  #doReset(record: FunctionRecord, method: PciResetMethod): string | undefined {
    const host = record.entry.host;
    const hw = host.hardware;
    switch (method) {
      case 'flr': {
        const exp = findCapability(hw, PCI_CAP_ID.EXP);
        if (exp === undefined) return 'it has no PCI Express capability';
        transparent(host, () => {
          const devctl = hw.configRead(exp + PCI_EXP_DEVCTL_OFFSET, 2);
          hw.configWrite(exp + PCI_EXP_DEVCTL_OFFSET, 2, devctl | PCI_EXP_DEVCTL_BCR_FLR);
        });
        return undefined;
      }
      case 'af_flr': {
        const af = findCapability(hw, PCI_CAP_ID.AF);
        if (af === undefined) return 'it has no Advanced Features capability';
        transparent(host, () => {
          hw.configWrite(af + PCI_AF_CTRL_OFFSET, 1, PCI_AF_CTRL_FLR);
        });
        return undefined;
      }
      case 'pm': {
        const pm = findCapability(hw, PCI_CAP_ID.PM);
        if (pm === undefined) return 'it has no PM capability';
        const state = host.currentPowerState();
        // pci_pm_reset: -EINVAL unless the function is in D0.
        if (state !== PCI_D0) return `it is in D${state}, not D0 (EINVAL)`;
        transparent(host, () => {
          const at = pm + PCI_PM_CTRL_OFFSET;
          const pmcsr = hw.configRead(at, 2) & ~(PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_STATUS);
          hw.configWrite(at, 2, pmcsr | PCI_D3HOT);
          hw.configWrite(at, 2, pmcsr | PCI_D0);
        });
        return undefined;
      }
      case 'bus': {
        const bridge = this.#upstreamBridge(record.entry.address);
        if (bridge === undefined) return 'no bridge is upstream';
        this.#secondaryBusReset(bridge);
        return undefined;
      }
      case 'device_specific':
      case 'acpi':
      case 'cxl_bus':
        return 'the simulator does not implement it';
      default:
        return assertNever(method);
    }
  }

  #secondaryBusReset(bridge: FunctionRecord): void {
    const bridgeHw = bridge.entry.host.hardware;
    const below = this.#sorted().filter((r) =>
      this.#isBehind(r.entry.address, bridge.entry.address),
    );
    const saved = below.map((r) => r.entry.host.saveState());
    const control = bridgeHw.configRead(PCI_BRIDGE_CONTROL_OFFSET, 2);
    bridgeHw.configWrite(PCI_BRIDGE_CONTROL_OFFSET, 2, control | PCI_BRIDGE_CTL_BUS_RESET);
    for (const r of below) r.entry.host.hardware.reset('bus');
    bridgeHw.configWrite(PCI_BRIDGE_CONTROL_OFFSET, 2, control & ~PCI_BRIDGE_CTL_BUS_RESET);
    below.forEach((r, i) => {
      const state = saved[i];
      if (state !== undefined) r.entry.host.restoreState(state);
    });
  }
}

/** `pci_reset_function`'s save, reset, restore. */
function transparent(host: SimHostPciDevice, reset: () => void): void {
  const saved = host.saveState();
  reset();
  host.restoreState(saved);
}

function assertNever(value: never): never {
  throw new TypeError(`Unexpected value "${String(value)}"`);
}
