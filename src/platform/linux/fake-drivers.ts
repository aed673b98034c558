// SPDX-License-Identifier: MIT
/**
 * Drivers of the fake sysfs: ID tables and matching as `pci_match_device` does them
 * (`drivers/pci/pci-driver.c`), the `new_id`/`remove_id` grammar, and the three stub
 * drivers with the probe rules of the real ones.
 */
import { PCI_HEADER_TYPE_BRIDGE, PCI_HEADER_TYPE_NORMAL } from '../../abi/pci-regs.js';
import type { PciAddress } from '../../pci/address.js';

/**
 * One entry of a driver's ID table (`struct pci_device_id`); an absent field matches
 * anything (`PCI_ANY_ID`), a class matches under `classMask`.
 */
export interface FakePciId {
  readonly vendor?: number;
  readonly device?: number;
  readonly subvendor?: number;
  readonly subdevice?: number;
  readonly classCode?: number;
  readonly classMask?: number;
  /** Matches only a device whose `driver_override` names the driver (`override_only`). */
  readonly overrideOnly?: boolean;
}

/** What a driver's probe sees of a device. */
export interface FakeProbeView {
  readonly address: PciAddress;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemDeviceId: number;
  readonly classCode: number;
  readonly headerType: number;
  readonly iommuGroup: number | null;
  readonly driverOverride: string | null;
  /** The function and every bridge above it, nearest first. */
  readonly path: readonly PciAddress[];
}

/** A driver of the fake tree. */
export interface FakeDriverSpec {
  readonly name: string;
  /** The static ID table; empty (the default) matches only through `driver_override` or `new_id`. */
  readonly ids?: readonly FakePciId[];
  /** The driver's probe: an errno name refuses the device, undefined takes it. */
  readonly probe?: (device: FakeProbeView) => string | undefined;
  /** Whether a bound device counts an enable (a real driver calls `pci_enable_device`). */
  readonly enablesDevice?: boolean;
  /** pciback's slot list (`new_slot`, `remove_slot`, `slots`), which its probe consults. */
  readonly slots?: boolean;
}

/** `PCI_ANY_ID` as `new_id` writes it. */
const PCI_ANY_ID = 0xffffffff;

/** The stub drivers and how their probes behave in the kernel. */
export const FAKE_STUB_DRIVERS: Readonly<
  Record<'pciback' | 'vfio-pci' | 'pci-stub', FakeDriverSpec>
> = {
  // xen-pciback: an ID table that matches everything (`pcistub_ids`), and a probe that
  // takes only functions on the slot list (itself or a bridge above it) or with
  // driver_override "pciback", and only normal and bridge headers (pcistub_probe).
  pciback: {
    name: 'pciback',
    ids: [{}],
    slots: true,
    enablesDevice: false,
    probe: (device) => (device.headerType > PCI_HEADER_TYPE_BRIDGE ? 'ENODEV' : undefined),
  },
  // vfio-pci: override-only table; refuses non-normal headers and functions without an
  // IOMMU group (vfio_pci_core_register_device).
  'vfio-pci': {
    name: 'vfio-pci',
    ids: [{ overrideOnly: true }],
    enablesDevice: false,
    probe: (device) =>
      device.headerType !== PCI_HEADER_TYPE_NORMAL || device.iommuGroup === null
        ? 'EINVAL'
        : undefined,
  },
  // pci-stub: an empty table (its ids= parameter), takes anything it is given.
  'pci-stub': { name: 'pci-stub', ids: [], enablesDevice: false },
};

/** True when `id` matches the device (`pci_match_one_device`). */
export function idMatches(id: FakePciId, device: FakeProbeView): boolean {
  const field = (want: number | undefined, have: number): boolean =>
    want === undefined || want === PCI_ANY_ID || want === have;
  return (
    field(id.vendor, device.vendorId) &&
    field(id.device, device.deviceId) &&
    field(id.subvendor, device.subsystemVendorId) &&
    field(id.subdevice, device.subsystemDeviceId) &&
    ((device.classCode ^ (id.classCode ?? 0)) & (id.classMask ?? 0)) === 0
  );
}

/**
 * `pci_match_device`: with `driver_override` set only the named driver matches (with
 * any ID); otherwise dynamic IDs, then the static table without override-only entries.
 */
export function driverMatches(
  driver: {
    readonly name: string;
    readonly ids: readonly FakePciId[];
    readonly dynamicIds: readonly FakePciId[];
  },
  device: FakeProbeView,
): boolean {
  if (device.driverOverride !== null) return device.driverOverride === driver.name;
  if (driver.dynamicIds.some((id) => idMatches(id, device))) return true;
  return driver.ids.some((id) => id.overrideOnly !== true && idMatches(id, device));
}

/** A parsed `new_id` / `remove_id` line and how many fields it had. */
export interface ParsedDynamicId {
  readonly id: FakePciId;
  readonly fields: number;
}

/**
 * `new_id` / `remove_id` text: `vendor device [subvendor subdevice [class class_mask
 * [driver_data]]]` in hex, as `sscanf("%x %x %x %x %x %x %lx")` reads it. Undefined when
 * fewer than two fields parse (the kernel's EINVAL).
 */
export function parseDynamicId(text: string): ParsedDynamicId | undefined {
  const tokens = text
    .trim()
    .split(/\s+/)
    .filter((t) => t !== '');
  const values: number[] = [];
  for (const token of tokens.slice(0, 7)) {
    const match = /^(?:0x)?([0-9a-fA-F]+)$/.exec(token);
    if (match === null) break;
    values.push(Number.parseInt(match[1] ?? '', 16));
  }
  if (values.length < 2) return undefined;
  const id: { -readonly [K in keyof FakePciId]: FakePciId[K] } = {
    vendor: values[0] ?? 0,
    device: values[1] ?? 0,
  };
  // PCI_ANY_ID in a subsystem field means "any", which is an absent field here.
  if (values[2] !== undefined && values[2] !== PCI_ANY_ID) id.subvendor = values[2];
  if (values[3] !== undefined && values[3] !== PCI_ANY_ID) id.subdevice = values[3];
  if (values[4] !== undefined) id.classCode = values[4];
  if (values[5] !== undefined) id.classMask = values[5];
  return { fields: values.length, id };
}

/**
 * True when the dynamic ID `entry` is one `remove_id` with `pattern` deletes: vendor
 * and device equal, subsystem IDs equal unless the pattern leaves them out, the class
 * equal under the pattern's mask (`remove_id_store`).
 */
export function removeIdMatches(entry: FakePciId, pattern: FakePciId): boolean {
  return (
    entry.vendor === pattern.vendor &&
    entry.device === pattern.device &&
    (pattern.subvendor === undefined || entry.subvendor === pattern.subvendor) &&
    (pattern.subdevice === undefined || entry.subdevice === pattern.subdevice) &&
    (((entry.classCode ?? 0) ^ (pattern.classCode ?? 0)) & (pattern.classMask ?? 0)) === 0
  );
}
