// SPDX-License-Identifier: MIT
/**
 * Which driver dom0 would give a PCI function natively: the kernel's module alias tables
 * (`/lib/modules/<release>/modules.alias` and `modules.builtin.alias`, written by depmod
 * from every driver's `MODULE_DEVICE_TABLE`) matched against the function's `modalias`
 * (`pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X`), as udev's `modprobe $MODALIAS` does.
 *
 * pciback-ts uses it for a device found on the stub without a record (seized at boot by
 * `xen-pciback.hide=`): knowing the native driver lets `assignable-remove -r` give the
 * device back, where users otherwise resort to modalias/modprobe by hand (peers.md §7.6).
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

/** One `alias pci:... module` line. */
export interface ModuleAlias {
  readonly pattern: string;
  readonly module: string;
}

/** Where depmod writes the tables for the running kernel. */
export function defaultModulesDir(): string {
  return join('/lib/modules', release());
}

/** The alias files read, in order: loadable modules, then built-in drivers (Linux 5.1+). */
export const MODULE_ALIAS_FILES = ['modules.alias', 'modules.builtin.alias'] as const;

/** Longest alias pattern kept (a PCI one is about 60 characters). */
const MAX_PATTERN_LENGTH = 256;

/**
 * The `pci:` aliases of a `modules.alias` text; other buses, comments and malformed lines
 * are skipped.
 */
export function parseModuleAliases(text: string): ModuleAlias[] {
  const out: ModuleAlias[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 3 || fields[0] !== 'alias') continue;
    const [, pattern, module] = fields as [string, string, string];
    if (!pattern.startsWith('pci:') || pattern.length > MAX_PATTERN_LENGTH) continue;
    if (!/^[A-Za-z0-9_-]+$/.test(module)) continue;
    out.push({ pattern, module: module.replaceAll('-', '_') });
  }
  return out;
}

/** `fnmatch(pattern, text, 0)` for the `*`, `?` and `[...]` depmod writes. */
function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charAt(i);
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        source += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      source += `[${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The PCI part of the kernel's alias tables. */
export class ModuleAliases {
  readonly #entries: readonly { readonly regex: RegExp; readonly module: string }[];

  constructor(aliases: readonly ModuleAlias[]) {
    this.#entries = aliases.map((a) => ({ regex: globToRegExp(a.pattern), module: a.module }));
  }

  /** Number of PCI aliases. */
  get size(): number {
    return this.#entries.length;
  }

  /** The modules whose aliases match `modalias`, each once, in table order. */
  modulesFor(modalias: string): string[] {
    const found: string[] = [];
    for (const { regex, module } of this.#entries) {
      if (!found.includes(module) && regex.test(modalias)) found.push(module);
    }
    return found;
  }

  /**
   * The tables of `dir` (default: the running kernel's), or undefined when it has none
   * (a container, a kernel without modules): the native driver is then unknown.
   */
  static load(dir: string = defaultModulesDir()): ModuleAliases | undefined {
    const texts = MODULE_ALIAS_FILES.map((f) => join(dir, f))
      .filter((path) => existsSync(path))
      .map((path) => readFileSync(path, 'utf8'));
    return texts.length === 0 ? undefined : new ModuleAliases(texts.flatMap(parseModuleAliases));
  }
}

/** The `modalias` Linux builds for a PCI function (`pci_uevent`). */
export function pciModalias(fn: {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemDeviceId: number;
  readonly classCode: number;
}): string {
  const hex = (value: number, digits: number): string =>
    value.toString(16).toUpperCase().padStart(digits, '0');
  return (
    `pci:v${hex(fn.vendorId, 8)}d${hex(fn.deviceId, 8)}` +
    `sv${hex(fn.subsystemVendorId, 8)}sd${hex(fn.subsystemDeviceId, 8)}` +
    `bc${hex((fn.classCode >>> 16) & 0xff, 2)}sc${hex((fn.classCode >>> 8) & 0xff, 2)}i${hex(fn.classCode & 0xff, 2)}`
  );
}
