// SPDX-License-Identifier: MIT
/**
 * What the kernel prints in the PCI sysfs attributes (`drivers/pci/pci-sysfs.c`) and how
 * to read it back. The fake sysfs formats with the same functions, so a change in one
 * shows up in the tests of the other.
 */
import { PciAddress } from '../../pci/address.js';
import { EMPTY_RESOURCE, PCI_NUM_RESOURCES, type PciResource } from '../../pci/resource.js';
import { isPciResetMethod, type PciResetMethod } from '../pci-host.js';

/**
 * A full device name as sysfs spells it: `DDDD:BB:DD.F`, lowercase. Domains above
 * 0xffff (VMD's 10000:...) have five digits and are not PCI addresses this program
 * can name (`PciAddress` stops at 0xffff), so they do not match.
 */
const SLOT_NAME_PATTERN = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
/** A root bus directory: `pciDDDD:BB`. */
const ROOT_BUS_PATTERN = /^pci[0-9a-f]{4,}:[0-9a-f]{2}$/;
/** One line of `resource`: `0x%016llx 0x%016llx 0x%016llx`. */
const RESOURCE_LINE_PATTERN = /^0x([0-9a-fA-F]+) 0x([0-9a-fA-F]+) 0x([0-9a-fA-F]+)$/;

/** `driver_override` reads `(null)` when unset (`%s` of a NULL pointer). */
export const DRIVER_OVERRIDE_UNSET = '(null)';

/** True when `name` is a PCI device directory name this program can address (`0000:03:00.0`). */
export function isPciSlotName(name: string): boolean {
  return SLOT_NAME_PATTERN.test(name);
}

/** `vendor`, `device`, `class`, `subsystem_*`: `0x%04x` / `0x%06x`. */
export function parseHexAttribute(text: string, name: string): number {
  const trimmed = text.trim();
  if (!/^0x[0-9a-fA-F]{1,8}$/.test(trimmed)) {
    throw new SyntaxError(
      `Cannot parse sysfs attribute "${name}": expected 0x and hex digits, got "${trimmed}"`,
    );
  }
  return Number.parseInt(trimmed.slice(2), 16);
}

/** `irq`, `enable`: a decimal number. */
export function parseDecimalAttribute(text: string, name: string): number {
  const trimmed = text.trim();
  if (!/^\d{1,10}$/.test(trimmed)) {
    throw new SyntaxError(
      `Cannot parse sysfs attribute "${name}": expected a decimal number, got "${trimmed}"`,
    );
  }
  return Number.parseInt(trimmed, 10);
}

/** The hex attribute as the kernel prints it, with a newline. */
export function formatHexAttribute(value: number, digits: number): string {
  return `0x${value.toString(16).padStart(digits, '0')}\n`;
}

/** `driver_override` text to a driver name, or null when unset. */
export function parseDriverOverride(text: string): string | null {
  const trimmed = text.trim();
  return trimmed === '' || trimmed === DRIVER_OVERRIDE_UNSET ? null : trimmed;
}

/**
 * `reset_method`: space-separated names in the order the kernel tries them. Names
 * this program does not know (a newer kernel's) are returned apart.
 */
export function parseResetMethods(text: string): {
  methods: PciResetMethod[];
  unknown: string[];
} {
  const methods: PciResetMethod[] = [];
  const unknown: string[] = [];
  for (const name of text.trim().split(/\s+/)) {
    if (name === '') continue;
    if (isPciResetMethod(name)) methods.push(name);
    else unknown.push(name);
  }
  return { methods, unknown };
}

/**
 * `resource`: one `start end flags` line per resource (BARs 0..5, the ROM at 6, then
 * SR-IOV and bridge windows, which are dropped). A resource with flags 0 is absent; an
 * unassigned BAR keeps its size (the kernel moves it to start 0, end size - 1).
 *
 * @throws {SyntaxError} for a line that is not three hex numbers.
 */
export function parseResourceFile(text: string): PciResource[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const resources: PciResource[] = [];
  for (let index = 0; index < PCI_NUM_RESOURCES; index++) {
    const line = lines[index];
    if (line === undefined) {
      resources.push(EMPTY_RESOURCE);
      continue;
    }
    const match = RESOURCE_LINE_PATTERN.exec(line.trim());
    if (match === null) {
      throw new SyntaxError(
        `Cannot parse line ${index + 1} of sysfs "resource": expected "0xSTART 0xEND 0xFLAGS", got "${line}"`,
      );
    }
    const start = BigInt(`0x${match[1] ?? '0'}`);
    const end = BigInt(`0x${match[2] ?? '0'}`);
    // Flags are an unsigned long; every IORESOURCE bit is in the low 32.
    const flags = Number(BigInt(`0x${match[3] ?? '0'}`) & 0xffffffffn) >>> 0;
    if (flags === 0 || end < start) {
      resources.push(EMPTY_RESOURCE);
      continue;
    }
    resources.push(Object.freeze({ start, sizeBytes: end - start + 1n, flags }));
  }
  return resources;
}

/** One `resource` line for `resource` (`start end flags`, zeros for an absent one). */
export function formatResourceLine(resource: PciResource): string {
  const hex = (value: bigint): string => `0x${value.toString(16).padStart(16, '0')}`;
  if (resource.flags === 0 || resource.sizeBytes === 0n)
    return `${hex(0n)} ${hex(0n)} ${hex(0n)}\n`;
  const end = resource.start + resource.sizeBytes - 1n;
  return `${hex(resource.start)} ${hex(end)} ${hex(BigInt(resource.flags >>> 0))}\n`;
}

/**
 * The bridge a device sits behind, from its real sysfs path
 * (`devices/pci0000:00/0000:00:1c.0/0000:03:00.0`): the nearest ancestor directory
 * named like a PCI device, or null when the nearest is a root bus (`pci0000:00`).
 * Directories of other kinds in between (platform glue, a VMD domain's functions) are
 * skipped.
 */
export function upstreamBridgeFromPath(realPath: string): PciAddress | null {
  const segments = realPath.split('/').filter((s) => s !== '' && s !== '.');
  for (let i = segments.length - 2; i >= 0; i--) {
    const segment = segments[i] ?? '';
    if (ROOT_BUS_PATTERN.test(segment)) return null;
    if (isPciSlotName(segment)) return PciAddress.parse(segment);
  }
  return null;
}

/** The last path component (the name a link points at). */
export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
