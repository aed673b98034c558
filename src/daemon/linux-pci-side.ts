// SPDX-License-Identifier: MIT
/**
 * The Linux platform's PCI bus as a {@link HostPciSide}: `LinuxPciHost` over sysfs (a
 * `FakeSysfs` tree in tests, `/sys` for root) under the simulated hypervisor. This is the
 * composition of a real dom0 deployment: the kernel's stub driver (pciback, vfio-pci or
 * pci-stub) holds a device, our userspace {@link PciStub} does everything else through
 * sysfs (config virtualisation, reset ladder through `reset_method`/`reset`, seize-time
 * state restore through `config` and `resource<N>`), and the simulated hypervisor maps
 * the device's MSI/MSI-X vectors to pirqs of the owning guest.
 *
 * The stub follows the kernel's driver core through {@link StubSyncedPciHost}: every
 * driver move made through the bus (the assignable service, `stub-attr bind|unbind`, the
 * stub's own VF unbinding) is followed by `PciStub.probe` when the function ends up on
 * the stub driver, and preceded by `PciStub.remove` (reset, restore, release) when it
 * leaves it, as the kernel calls a `pci_driver`'s probe and remove. A move made behind
 * the daemon's back (a shell writing sysfs) is seen by polling the stub driver's sysfs
 * directory (sysfs offers no change notification): a function that left is forgotten
 * without a reset (another driver may own it by then) and its guest told, one that
 * arrived is seized.
 */
import { PciAddress } from '../pci/address.js';
import type { PciResource } from '../pci/resource.js';
import { assertSavedConfigState } from '../pci/config-state.js';
import type { PciStub, PciStubPlatformDevice } from '../pciback/stub/index.js';
import type {
  HostPciConsumers,
  HostPciFunctionInfo,
  PciHostPlatform,
  PciResetMethod,
  PciResetOutcome,
} from '../platform/pci-host.js';
import {
  isPciSlotName,
  LinuxStubDevice,
  type ConfigBitsInjector,
  type LinuxPciHost,
} from '../platform/linux/index.js';
import { SimMsiControl } from '../platform/sim/interrupts/index.js';
import type { HostPciDevice, Logger } from '../platform/types.js';
import type { HostPciSide, HostPciSideFactory } from './host-pci-side.js';

/** Options of {@link linuxPciSide}. */
export interface LinuxPciSideOptions {
  /** The stub driver that holds assignable functions (`chooseStubDriver`). */
  readonly stubDriver: string;
  /**
   * How a function's recorded error bits are set (AER injection): a fake tree's
   * `setHardwareBits`. Absent on a real host (injection then fails with NOT_SUPPORTED).
   */
  readonly injectBits?: (address: PciAddress, ...args: Parameters<ConfigBitsInjector>) => void;
  /**
   * How often to look for driver moves made outside the daemon (the stub driver's
   * directory in sysfs; sysfs has no change notification to wait on). Default 1000 ms;
   * 0 turns it off.
   */
  readonly followIntervalMs?: number;
}

/** The functions bound to `driver` now: the links in its sysfs directory. */
function boundTo(host: LinuxPciHost, driver: string): PciAddress[] {
  const dir = `bus/pci/drivers/${driver}`;
  if (!host.io.exists(dir)) return [];
  return host.io
    .readdir(dir)
    .filter((name) => isPciSlotName(name))
    .map((name) => PciAddress.parse(name));
}

/**
 * A {@link PciHostPlatform} that keeps a {@link PciStub} in step with the kernel's
 * driver core: what it binds to the stub driver is probed by the stub, what it unbinds
 * from it is removed from the stub first.
 */
export class StubSyncedPciHost implements PciHostPlatform {
  readonly kind: string;
  readonly #inner: PciHostPlatform;
  readonly #stubDriver: string;
  #stub: PciStub | undefined;
  /** Functions on the stub driver that the stub would not take (see {@link resync}). */
  readonly #refused = new Set<number>();

  constructor(inner: PciHostPlatform, stubDriver: string) {
    this.#inner = inner;
    this.kind = inner.kind;
    this.#stubDriver = stubDriver;
  }

  /** Start following: from now on driver moves reach `stub`. */
  follow(stub: PciStub): void {
    this.#stub = stub;
  }

  list(): readonly HostPciFunctionInfo[] {
    return this.#inner.list();
  }

  info(address: PciAddress): HostPciFunctionInfo | undefined {
    return this.#inner.info(address);
  }

  open(address: PciAddress): HostPciDevice {
    return this.#inner.open(address);
  }

  resources(address: PciAddress): readonly PciResource[] {
    return this.#inner.resources(address);
  }

  nativeDriver(address: PciAddress): string | null | undefined {
    return this.#inner.nativeDriver?.(address);
  }

  consumers(address: PciAddress): HostPciConsumers | undefined {
    return this.#inner.consumers?.(address);
  }

  drivers(): readonly string[] {
    return this.#inner.drivers();
  }

  unbind(address: PciAddress): void {
    const stub = this.#stub;
    if (stub !== undefined && this.#inner.info(address)?.driver === this.#stubDriver) {
      // BUS_NOTIFY_UNBIND_DRIVER, then the driver's remove, then the unbind itself.
      stub.driverUnbinding(address);
      stub.remove(address);
    }
    this.#inner.unbind(address);
  }

  setDriverOverride(address: PciAddress, driver: string | null): void {
    this.#inner.setDriverOverride(address, driver);
  }

  bind(address: PciAddress, driver: string): void {
    this.#inner.bind(address, driver);
    this.#probeStub(address);
  }

  probe(address: PciAddress): void {
    this.#inner.probe(address);
    this.#probeStub(address);
  }

  reset(address: PciAddress, method?: PciResetMethod): PciResetOutcome {
    return this.#inner.reset(address, method);
  }

  /**
   * Catch up with moves made outside this process (a shell writing sysfs): a device the
   * stub holds that is no longer on the stub driver is forgotten (not reset: another
   * driver may own it), one newly on the stub driver is probed. `boundToStub` lists the
   * functions on the stub driver now.
   */
  resync(boundToStub: readonly PciAddress[]): void {
    const stub = this.#stub;
    if (stub === undefined) return;
    const bound = new Set(boundToStub.map((a) => a.key));
    for (const { address } of stub.list()) {
      if (!bound.has(address.key)) stub.forget(address);
    }
    for (const key of this.#refused) if (!bound.has(key)) this.#refused.delete(key);
    for (const address of boundToStub) {
      // One try per binding: a function the stub cannot take is not retried every tick.
      if (this.#refused.has(address.key)) continue;
      this.#probeStub(address);
      if (stub.get(address) === undefined) this.#refused.add(address.key);
    }
  }

  /** The kernel bound `address` to the stub driver: the userspace stub seizes it. */
  probeStub(address: PciAddress): void {
    this.#probeStub(address);
  }

  #probeStub(address: PciAddress): void {
    const stub = this.#stub;
    if (stub === undefined || stub.get(address) !== undefined) return;
    if (this.#inner.info(address)?.driver !== this.#stubDriver) return;
    // The kernel took it (slot list or driver_override): our id list follows.
    if (!stub.slotList().some((a) => a.equals(address))) stub.newSlot(address.toString());
    stub.probe(address);
  }
}

/**
 * The Linux bus as a host side: boot seizes what is bound to the stub driver, after
 * binding what `hide=` names exactly (`xl pci-assignable-add`: driver_override, unbind,
 * drivers_probe). Wildcard selectors of `hide=` only match functions the kernel already
 * gave the stub driver.
 *
 * @example
 * const host = await SimHost.startOn(machine, linuxPciSide(new LinuxPciHost({ io: fake }), {
 *   stubDriver: 'pciback',
 *   injectBits: (a, at, size, bits) => { fake.setHardwareBits(a, at, size, bits); },
 * }));
 */
export function linuxPciSide(host: LinuxPciHost, options: LinuxPciSideOptions): HostPciSideFactory {
  return ({ interrupts, logger }) => {
    const pci = new StubSyncedPciHost(host, options.stubDriver);
    let follow: ReturnType<typeof setInterval> | undefined;
    const devices = new Map<number, LinuxStubDevice>();
    const msis = new Map<number, SimMsiControl>();
    const device = (address: PciAddress): LinuxStubDevice | undefined => {
      const cached = devices.get(address.key);
      if (cached !== undefined && host.info(address) !== undefined) return cached;
      if (host.info(address) === undefined) return undefined;
      const inject = options.injectBits;
      const created = new LinuxStubDevice(host.open(address), host.io, {
        logger,
        ...(inject === undefined
          ? {}
          : {
              injectBits: (at: number, size: 1 | 2 | 4, bits: number) => {
                inject(address, at, size, bits);
              },
            }),
        linkReset: () => {
          linkReset(host, address, logger);
        },
      });
      devices.set(address.key, created);
      return created;
    };
    const side: HostPciSide = {
      pci,
      stubDriverName: options.stubDriver,
      functions: () => host.list().map((info) => info.address),
      device,
      stubDevice: (address): PciStubPlatformDevice | undefined => {
        const dev = device(address);
        if (dev === undefined) return undefined;
        let msi = msis.get(address.key);
        if (msi === undefined) {
          msi = new SimMsiControl(dev, {
            irqs: interrupts.irqs,
            pirqs: interrupts.pirqs,
            owners: interrupts.owners,
            logger,
          });
          msis.set(address.key, msi);
        }
        const physfnAddress = host.info(address)?.physfn ?? null;
        const physfn = physfnAddress === null ? undefined : device(physfnAddress);
        return {
          host: dev,
          msi,
          ...(physfn === undefined ? {} : { physfn }),
          saveState: () => dev.saveState(),
          restoreState: (state) => {
            assertSavedConfigState(state, address);
            dev.restoreState(state);
          },
        };
      },
      connectStub: (stub) => {
        pci.follow(stub);
        const every = options.followIntervalMs ?? 1000;
        if (every > 0) {
          follow = setInterval(() => {
            try {
              pci.resync(boundTo(host, options.stubDriver));
            } catch (err) {
              logger.warn(
                { err },
                `Cannot read the bindings of ${options.stubDriver}: ${err instanceof Error ? err.message : String(err)}`,
              );
            }
          }, every);
          follow.unref();
        }
        const hidden = stub.slotList();
        for (const info of host.list()) {
          const { address } = info;
          if (info.driver !== options.stubDriver && hidden.some((a) => a.equals(address))) {
            try {
              // xl pci-assignable-add: driver_override, unbind, drivers_probe.
              host.setDriverOverride(address, options.stubDriver);
              host.unbind(address);
              host.probe(address);
            } catch (err) {
              logger.error(
                { device: address.toString(), err },
                `Cannot hand "${address.toString()}" to ${options.stubDriver}: ${err instanceof Error ? err.message : String(err)}`,
              );
              continue;
            }
          }
          pci.probeStub(address);
        }
      },
      deviceStats: (address) => {
        const msi = msis.get(address.key);
        return msi === undefined
          ? undefined
          : { msi: msi.msiEnabled(), msix: msi.msixEnabled(), irqs: [...msi.msiIrqs()] };
      },
      close: () => {
        clearInterval(follow);
        for (const msi of msis.values()) msi.dispose();
      },
    };
    return side;
  };
}

/** `aer_root_reset` as sysfs offers it: a bus reset of the function, else its first method. */
function linkReset(host: LinuxPciHost, address: PciAddress, logger: Logger): void {
  const name = address.toString();
  try {
    const bus = host.reset(address, 'bus');
    const outcome = bus.ok ? bus : host.reset(address);
    if (!outcome.ok)
      logger.warn({ device: name }, `Cannot reset the link of "${name}": ${outcome.reason}`);
  } catch (err) {
    logger.warn(
      { device: name, err },
      `Cannot reset the link of "${name}": ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
