// SPDX-License-Identifier: MIT
/**
 * The stub's id list (`pcistub_device_ids`, spec §6.1 and §6.5): the functions pciback
 * seizes when they are probed. Filled from `hide=` at start and by `new_slot`, emptied
 * by `remove_slot`, listed by `slots`.
 */
import { PciAddress } from '../../pci/index.js';
import { PCI_STUB_ERROR, PciStubError } from './errors.js';
import {
  HideSyntaxError,
  expandHideSelector,
  formatHideSelector,
  hideSelectorMatches,
  parseHide,
  type HideSelector,
} from './hide.js';

/** What a sysfs listing can hold: one page, of which `scnprintf` fills all but the NUL. */
export const SYSFS_PAGE_SIZE_BYTES = 4096;

/** A listing cut where the kernel's `scnprintf` loop stops: 4095 characters. */
export function pageLimited(text: string): string {
  return text.length < SYSFS_PAGE_SIZE_BYTES ? text : text.slice(0, SYSFS_PAGE_SIZE_BYTES - 1);
}

/**
 * `str_to_slot`: `DDDD:BB:SS.F`, `DDDD:BB:SS.*`, `DDDD:BB:*.*`, `BB:SS.F`, `BB:SS.*` or
 * `BB:*.*` in hex, with whitespace around it (a sysfs write ends in a newline) and
 * nothing else. The grammar is that of one `hide=` group.
 *
 * @throws {PciStubError} `STUB_INVALID_ARGUMENT` (-EINVAL) naming what is wrong.
 * @example
 * parseSlotSelector('0000:03:00.*\n'); // { domain: 0, bus: 3, slot: 0, func: '*' }
 */
export function parseSlotSelector(text: string): HideSelector {
  const trimmed = text.trim();
  let selectors: readonly HideSelector[];
  try {
    selectors = parseHide(`(${trimmed})`);
  } catch (err) {
    if (!(err instanceof HideSyntaxError)) throw err;
    throw new PciStubError(
      PCI_STUB_ERROR.invalidArgument,
      `Cannot parse slot "${trimmed}": ${err.reason}`,
      { cause: err },
    );
  }
  const [only] = selectors;
  if (only === undefined || selectors.length !== 1) {
    throw new PciStubError(
      PCI_STUB_ERROR.invalidArgument,
      `Cannot parse slot "${trimmed}": expected one DDDD:BB:SS.F address`,
    );
  }
  return only;
}

/**
 * The single function a selector names, or undefined for a wildcard (attributes that
 * look one device up never match a wildcard, spec §6.5).
 */
export function selectorAddress(selector: HideSelector): PciAddress | undefined {
  if (selector.slot === '*' || selector.func === '*') return undefined;
  return new PciAddress(selector.domain, selector.bus, selector.slot, selector.func);
}

/**
 * The id list, in insertion order, without duplicates.
 *
 * @example
 * const ids = new PciStubSlots();
 * ids.add(parseSlotSelector('03:00.*')); // 8 entries
 * ids.matches(PciAddress.parse('0000:03:00.2')); // true
 * ids.format(); // '0000:03:00.0\n0000:03:00.1\n...'
 */
export class PciStubSlots {
  readonly #entries: PciAddress[] = [];
  readonly #keys = new Set<number>();

  /**
   * `pcistub_device_id_add`: every function the selector names, in order; entries
   * already listed are skipped.
   */
  add(selector: HideSelector): void {
    for (const address of expandHideSelector(selector)) this.addAddress(address);
  }

  /** Add one function unless it is listed. */
  addAddress(address: PciAddress): void {
    if (this.#keys.has(address.key)) return;
    this.#keys.add(address.key);
    this.#entries.push(address);
  }

  /**
   * `pcistub_device_id_remove`: drop every entry of the selector's domain and bus whose
   * slot and function match (or are wildcards).
   *
   * @returns how many entries went.
   */
  remove(selector: HideSelector): number {
    let removed = 0;
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const entry = this.#entries[i];
      if (entry === undefined || !hideSelectorMatches(selector, entry)) continue;
      this.#entries.splice(i, 1);
      this.#keys.delete(entry.key);
      removed++;
    }
    return removed;
  }

  /** True when `address` is listed. */
  matches(address: PciAddress): boolean {
    return this.#keys.has(address.key);
  }

  /** The entries in order. */
  list(): readonly PciAddress[] {
    return [...this.#entries];
  }

  /** The `slots` attribute: `%04x:%02x:%02x.%d` per line, cut at one page. */
  format(): string {
    return pageLimited(this.#entries.map((a) => `${a.toString()}\n`).join(''));
  }
}

/** For messages: the selector as written back (`0000:03:00.*`). */
export function describeSelector(selector: HideSelector): string {
  return formatHideSelector(selector);
}
