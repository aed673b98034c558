// SPDX-License-Identifier: MIT
/**
 * What a rescan changed (spec §9 steps 5–6): after a hot attach or detach the guest
 * enumerates its root buses again and reports the functions that appeared, went away,
 * or now answer at the same address with another identity (a detach followed by an
 * attach that reused the virtual slot).
 */
import type { GuestPciDevice } from './enumerate.js';

/** The part of an enumeration {@link diffEnumerations} looks at (`EnumerationResult` fits). */
export interface EnumerationDevices {
  readonly devices: readonly GuestPciDevice[];
}

/** Guest addresses (`DDDD:BB:SS.F`), each list sorted by domain, bus and devfn. */
export interface EnumerationDiff {
  /** Present after, absent before. */
  readonly added: readonly string[];
  /** Present before, absent after. */
  readonly removed: readonly string[];
  /** Present in both, with another vendor, device, revision, class, subsystem or header. */
  readonly replaced: readonly string[];
}

function sortKey(d: GuestPciDevice): number {
  return d.domain * 0x10000 + d.bus * 0x100 + d.devfn;
}

function sameFunction(a: GuestPciDevice, b: GuestPciDevice): boolean {
  return (
    a.vendorId === b.vendorId &&
    a.deviceId === b.deviceId &&
    a.revision === b.revision &&
    a.classCode === b.classCode &&
    a.headerType === b.headerType &&
    a.subsystemVendorId === b.subsystemVendorId &&
    a.subsystemId === b.subsystemId
  );
}

function byAddress(devices: readonly GuestPciDevice[]): Map<number, GuestPciDevice> {
  const map = new Map<number, GuestPciDevice>();
  for (const d of devices) map.set(sortKey(d), d);
  return map;
}

function addresses(devices: GuestPciDevice[]): string[] {
  return devices.sort((a, b) => sortKey(a) - sortKey(b)).map((d) => d.address);
}

/**
 * Compares two enumerations by guest address. A pure function: neither input is changed.
 *
 * @example
 * const before = enumerate(front, { roots });
 * // ... backend Reconfigured, rescan ...
 * const { added, removed } = diffEnumerations(before, enumerate(front, { roots }));
 * // added: ['0000:00:02.0'], removed: []
 */
export function diffEnumerations(
  before: EnumerationDevices,
  after: EnumerationDevices,
): EnumerationDiff {
  const old = byAddress(before.devices);
  const now = byAddress(after.devices);
  const added: GuestPciDevice[] = [];
  const removed: GuestPciDevice[] = [];
  const replaced: GuestPciDevice[] = [];
  for (const [key, device] of now) {
    const previous = old.get(key);
    if (previous === undefined) added.push(device);
    else if (!sameFunction(previous, device)) replaced.push(device);
  }
  for (const [key, device] of old) if (!now.has(key)) removed.push(device);
  return { added: addresses(added), removed: addresses(removed), replaced: addresses(replaced) };
}
