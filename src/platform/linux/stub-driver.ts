// SPDX-License-Identifier: MIT
/**
 * Which kernel driver holds a function while it is passed through (the "stub"), and
 * which other functions share its IOMMU group (peers.md §5.1: libvirt's known stubs and
 * its IOMMU group check; §7 item 3: "pciback driver not loaded").
 */
import { PcibackError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import type { HostPciFunctionInfo, PciHostPlatform } from '../pci-host.js';

/** Stub drivers in order of preference: Xen's pciback on a dom0, then VFIO, then pci-stub. */
export const STUB_DRIVERS = ['pciback', 'vfio-pci', 'pci-stub'] as const;

/** One stub driver, named as in `/sys/bus/pci/drivers`. */
export type StubDriverName = (typeof STUB_DRIVERS)[number];

/** The module that provides each stub (`modprobe` name). */
export const STUB_DRIVER_MODULES: Readonly<Record<StubDriverName, string>> = {
  pciback: 'xen-pciback',
  'vfio-pci': 'vfio-pci',
  'pci-stub': 'pci-stub',
};

/** True when `name` is one of {@link STUB_DRIVERS}. */
export function isStubDriverName(name: string): name is StubDriverName {
  return (STUB_DRIVERS as readonly string[]).includes(name);
}

/**
 * The stub driver to hand functions to: `preferred` when given (it must be loaded),
 * else the first of {@link STUB_DRIVERS} the host has.
 *
 * @throws {RangeError} when `preferred` is not a stub driver name.
 * @throws {PcibackError} `NO_SUCH_DRIVER` naming the modules to load when none is there.
 * @example
 * chooseStubDriver(host); // 'pciback' on a Xen dom0 with xen-pciback loaded
 * chooseStubDriver(host, 'vfio-pci');
 */
export function chooseStubDriver(
  host: Pick<PciHostPlatform, 'drivers'>,
  preferred?: string,
): StubDriverName {
  const loaded = new Set(host.drivers());
  if (preferred !== undefined) {
    if (!isStubDriverName(preferred)) {
      throw new RangeError(
        `Cannot use "${preferred}" as the stub driver: expected one of ${STUB_DRIVERS.map((d) => `"${d}"`).join(', ')}`,
      );
    }
    if (!loaded.has(preferred)) {
      throw new PcibackError(
        'NO_SUCH_DRIVER',
        `Cannot use stub driver "${preferred}": it is not loaded (no bus/pci/drivers/${preferred}): run "modprobe ${STUB_DRIVER_MODULES[preferred]}"`,
      );
    }
    return preferred;
  }
  const found = STUB_DRIVERS.find((name) => loaded.has(name));
  if (found === undefined) {
    throw new PcibackError(
      'NO_SUCH_DRIVER',
      'Cannot choose a stub driver: none of "pciback", "vfio-pci" or "pci-stub" is loaded: ' +
        'on a Xen dom0 run "modprobe xen-pciback", elsewhere "modprobe vfio-pci" or "modprobe pci-stub"',
    );
  }
  return found;
}

/** Another function of the same IOMMU group. */
export interface IommuGroupPeer {
  readonly address: PciAddress;
  /** Its driver, or null. */
  readonly driver: string | null;
}

/**
 * The other members of `address`'s IOMMU group, in bus order: what stays in dom0 when
 * only `address` is passed through (and can still reach the same DMA domain). Empty
 * without an IOMMU group.
 *
 * @throws {PcibackError} `NO_SUCH_DEVICE` when `address` is not on the host.
 */
export function iommuGroupPeers(
  host: Pick<PciHostPlatform, 'info' | 'list'>,
  address: PciAddress,
): IommuGroupPeer[] {
  const info = host.info(address);
  if (info === undefined) {
    throw new PcibackError(
      'NO_SUCH_DEVICE',
      `Cannot list the IOMMU group of "${address.toString()}": no such PCI device`,
    );
  }
  if (info.iommuGroup === null) return [];
  return host
    .list()
    .filter((other) => other.iommuGroup === info.iommuGroup && !other.address.equals(address))
    .sort((a, b) => a.address.compare(b.address))
    .map((other) => ({ address: other.address, driver: other.driver }));
}

/**
 * The warning to show when `fn` leaves dom0 but the other members of its IOMMU group
 * (`peers`, from {@link iommuGroupPeers}) stay, or undefined when there are none.
 *
 * @example
 * iommuGroupWarning(host.info(audio), iommuGroupPeers(host, audio));
 * // 'Other members of IOMMU group 9 stay in dom0 while "0000:00:1f.3" is passed through:
 * //  "0000:00:1f.0" (driver "lpc_ich"), "0000:00:1f.4" (no driver)'
 */
export function iommuGroupWarning(
  fn: Pick<HostPciFunctionInfo, 'address' | 'iommuGroup'>,
  peers: readonly IommuGroupPeer[],
): string | undefined {
  if (peers.length === 0 || fn.iommuGroup === null) return undefined;
  const list = peers
    .map(
      (p) =>
        `"${p.address.toString()}" (${p.driver === null ? 'no driver' : `driver "${p.driver}"`})`,
    )
    .join(', ');
  return `Other members of IOMMU group ${fn.iommuGroup} stay in dom0 while "${fn.address.toString()}" is passed through: ${list}`;
}
