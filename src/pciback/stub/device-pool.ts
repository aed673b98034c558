// SPDX-License-Identifier: MIT
/**
 * The seized devices and who uses them: the minimal part of `pci_stub.c` (spec §6.3) the
 * XenBus backend needs. `claim` is `pcistub_get_pci_dev_by_slot`, `release` is
 * `pcistub_put_pci_dev`. The full stub (probe, `hide=`, sysfs, AER) will implement the
 * same {@link PciDeviceSource} interface.
 *
 * Deviation from `put_pci_dev`: the platform interface has no function reset and no saved
 * config state yet, so steps 3–4 (FLR, restore of the seize-time state) are not done;
 * `resetDevice` (§4.7) and the field reset handlers are.
 */
import type { PciAddress } from '../../pci/index.js';
import {
  SILENT_LOGGER,
  type DeviceOwnerRegistry,
  type DomId,
  type Logger,
} from '../../platform/types.js';
import { PcibackError } from '../../errors.js';
import type { PcibackDevice } from '../device/index.js';

/**
 * Where the XenBus backend gets devices to export and gives them back. Implemented by
 * {@link PciDevicePool} now and by the full PCI stub later.
 */
export interface PciDeviceSource {
  /**
   * `pcistub_get_pci_dev_by_slot`: the seized device at `address` if no connection uses
   * it, now marked as used by `domid`; `undefined` when it is not seized or in use.
   */
  claim(
    address: PciAddress,
    domid: DomId,
    options?: { readonly permissive?: boolean },
  ): PcibackDevice | undefined;
  /**
   * `pcistub_put_pci_dev`: make the device safe for its next user (reset, field reset
   * handlers, `allow_interrupt_control` cleared, domain owner unregistered) and free it.
   * A device that is not claimed is logged and left alone, as the original warns.
   */
  release(dev: PcibackDevice): void;
}

/** One seized device in {@link PciDevicePool.list}. */
export interface PciDevicePoolEntry {
  readonly address: PciAddress;
  readonly device: PcibackDevice;
  /** The domain whose connection claimed it (`psdev->pdev`), or null when free. */
  readonly user: DomId | null;
}

/** Options of {@link PciDevicePool}. */
export interface PciDevicePoolOptions {
  /** Xen's device-owner registry, unregistered on release (`put_pci_dev` step 8). */
  readonly owners: DeviceOwnerRegistry;
  readonly logger?: Logger;
}

interface Slot {
  readonly device: PcibackDevice;
  user: DomId | null;
}

/**
 * The stub's list of seized devices (`pcistub_devices`), keyed by address.
 *
 * @example
 * const pool = new PciDevicePool({ owners });
 * pool.add(dev); // seized
 * const claimed = pool.claim(PciAddress.parse('0000:03:00.0'), domId(5)); // dev
 * pool.claim(PciAddress.parse('0000:03:00.0'), domId(6)); // undefined: in use
 * pool.release(dev); // reset, free again
 */
export class PciDevicePool implements PciDeviceSource {
  readonly #slots = new Map<number, Slot>();
  readonly #owners: DeviceOwnerRegistry;
  readonly #logger: Logger;

  constructor(options: PciDevicePoolOptions) {
    this.#owners = options.owners;
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  /** Number of seized devices. */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * Add a seized, initialised device (free).
   *
   * @throws {PcibackError} `DEVICE_ALREADY_SEIZED` when a device with that address is held.
   */
  add(device: PcibackDevice): void {
    const key = device.address.key;
    if (this.#slots.has(key)) {
      throw new PcibackError(
        'DEVICE_ALREADY_SEIZED',
        `Cannot add "${device.address.toString()}" to the PCI stub: a device with that address is already seized`,
      );
    }
    this.#slots.set(key, { device, user: null });
  }

  /** The seized device at `address`, used or not. */
  get(address: PciAddress): PcibackDevice | undefined {
    return this.#slots.get(address.key)?.device;
  }

  /** The domain using the device at `address`, null when free or not seized. */
  userOf(address: PciAddress): DomId | null {
    return this.#slots.get(address.key)?.user ?? null;
  }

  claim(address: PciAddress, domid: DomId): PcibackDevice | undefined {
    const slot = this.#slots.get(address.key);
    if (slot === undefined || slot.user !== null) return undefined;
    slot.user = domid;
    return slot.device;
  }

  release(dev: PcibackDevice): void {
    const slot = this.#slots.get(dev.address.key);
    const name = dev.address.toString();
    if (slot?.device !== dev) {
      this.#logger.warn({ device: name }, `Cannot release "${name}": it is not seized by the stub`);
      return;
    }
    if (slot.user === null) {
      this.#logger.warn({ device: name }, `Cannot release "${name}": no connection uses it`);
      return;
    }
    dev.resetDevice();
    dev.config.resetForNextGuest();
    dev.config.policy.allowInterruptControl = false; // `permissive` stays (§3.2)
    this.#owners.unregister(dev.address);
    slot.user = null;
  }

  /** Every seized device in address order, with its user. */
  list(): PciDevicePoolEntry[] {
    return [...this.#slots.values()]
      .map((s) => ({ address: s.device.address, device: s.device, user: s.user }))
      .sort((a, b) => a.address.compare(b.address));
  }
}
