// SPDX-License-Identifier: MIT
/**
 * Xen's device-owner registry of the Linux side (`xen_register_device_domain_owner`,
 * `xen_find_device_domain_owner`, `xen_unregister_device_domain_owner` in
 * arch/x86/pci/xen.c): which domain a PCI device's MSI interrupts are mapped into.
 */
import type { PciAddress } from '../../../pci/address.js';
import type { DeviceOwnerRegistry, DomId } from '../../types.js';

/** `-EEXIST`: the device already has an owner. */
const EEXIST = -17;
/** `-ENOENT`: the device has no owner. */
const ENOENT = -2;

/**
 * The device-owner registry, keyed by the device's address (`pci_name`).
 *
 * @example
 * const owners = new SimDeviceOwners();
 * owners.register(PciAddress.parse('0000:03:00.0'), domId(5)); // 0
 * owners.register(PciAddress.parse('0000:03:00.0'), domId(6)); // -17 (EEXIST)
 * owners.find(PciAddress.parse('0000:03:00.0')); // 5
 */
export class SimDeviceOwners implements DeviceOwnerRegistry {
  readonly #owners = new Map<string, DomId>();

  /** {@inheritDoc DeviceOwnerRegistry.register} */
  register(address: PciAddress, domid: DomId): number {
    const key = address.toString();
    if (this.#owners.has(key)) return EEXIST;
    this.#owners.set(key, domid);
    return 0;
  }

  /** {@inheritDoc DeviceOwnerRegistry.find} */
  find(address: PciAddress): DomId | undefined {
    return this.#owners.get(address.toString());
  }

  /** {@inheritDoc DeviceOwnerRegistry.unregister} */
  unregister(address: PciAddress): number {
    return this.#owners.delete(address.toString()) ? 0 : ENOENT;
  }

  /** Every registered device with its owner, for listings (`pci_name` -> domid). */
  entries(): ReadonlyMap<string, DomId> {
    return new Map(this.#owners);
  }
}
