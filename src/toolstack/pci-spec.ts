// SPDX-License-Identifier: MIT
/**
 * The PCI_SPEC_STRING of `xl pci-attach` and of `pci = [ ... ]` in xl.cfg
 * (docs/man/xl-pci-configuration.5.pod; spec/peers.md §1.6, and §1.3 for what libxl
 * does with each field). libxl's parser is `xlu_pci_parse_spec_string` (libxlu_pci.c).
 *
 * Grammar (verbatim from the man page):
 * ```
 *     [<bdf>[@<vslot>,][<key>=<value>,]*
 *     [<key>=<value>,]*
 * ```
 * with the keys `bdf`, `vslot`, `permissive`, `msitranslate`, `seize`, `power_mgmt`,
 * `rdm_policy` and `name`, and exactly one of `bdf` and `name`.
 *
 * Every string this parser accepts means the same thing to xl, except where xl rejects
 * it (whitespace after a comma). Where xl would silently misread a value, this parser
 * refuses it and says why. The choices, each one deliberate:
 *
 * - **BDF** `[DDDD:]BB:SS.F` in hex, through {@link PciAddress.parse} (same limits as
 *   xl: domain <= 0xffff, bus <= 0xff, device <= 0x1f, function <= 7); the function may
 *   be `*` (every function of the slot). A `0x` prefix inside a BDF is refused (xl's
 *   `%x` takes it; nobody writes it). Upper-case hex is accepted.
 * - **vslot** is hexadecimal as in xl (`strtoul(.., 16)`), optionally `0x`-prefixed,
 *   and at most 0x1f: `vdevfn = vslot << 3` must fit the 8-bit devfn. So the man page's
 *   own examples, which use `20`, are refused as xl refuses them (peers.md §1.8); the
 *   message suggests `14` when the writer may have meant decimal 20.
 * - **Booleans** are exactly `0` or `1`. xl reads them with `atoi`, so `permissive=yes`
 *   or `=true` would silently be 0 there; here `yes`/`no`/`true`/`false`/`on`/`off` and
 *   anything else are errors that name the key and say what to write.
 * - **rdm_policy** is exactly `strict` or `relaxed` (case-sensitive, as xl's `strcmp`).
 * - **name** follows libxl's rule for `pci-assignable-add -n` (peers.md §1.1): 1 to 64
 *   printable non-space ASCII characters (`isgraph`); a comma ends the value.
 * - **Whitespace**: spaces and tabs right after a comma are skipped (xl.cfg's own example
 *   `'sbdf_A, rdm_policy=xxxxx'` has one, and libxl's `opts-N` reader skips them too;
 *   xl itself rejects it, §1.8). Whitespace anywhere else (at the start, before a comma,
 *   around `=` or `@`, inside a value) is an error giving its position.
 * - One trailing comma is allowed, as in xl; an empty item (`,,` or a leading comma) is
 *   an error.
 * - Keys are case-sensitive; an unknown key is an error naming it (with a suggestion
 *   for `Seize` or `power-mgmt`); a key given twice is an error, including the positional
 *   BDF together with `bdf=`, and `@vslot` together with `vslot=` (xl keeps the last).
 *
 * Not checked here, because libxl checks them when attaching (§1.3): that a `*` function
 * comes with a vslot, and that a name resolves to a device.
 */
import {
  PCI_BUS_MAX,
  PCI_DEVICE_MAX,
  PCI_DOMAIN_MAX,
  PCI_FUNCTION_MAX,
  PciAddress,
  PciAddressError,
} from '../pci/index.js';
import type { PciAddressComponent } from '../pci/index.js';

/** The function wildcard of a BDF: every function of the slot. */
export const PCI_FUNC_WILDCARD = '*';

/** Largest virtual slot (`vslot`): a slot number, 0–0x1f. */
export const PCI_VSLOT_MAX = PCI_DEVICE_MAX;

/** Longest device alias libxl accepts (`pci-assignable-add -n NAME`, peers.md §1.1). */
export const PCI_NAME_MAX_LENGTH = 64;

/** The keys of a PCI_SPEC_STRING, in the man page's order. */
export const PCI_SPEC_KEYS = [
  'bdf',
  'vslot',
  'permissive',
  'msitranslate',
  'seize',
  'power_mgmt',
  'rdm_policy',
  'name',
] as const;

/** One key of a PCI_SPEC_STRING. */
export type PciSpecKey = (typeof PCI_SPEC_KEYS)[number];

/** True when `key` is a PCI_SPEC_STRING key (case-sensitive, as xl). */
export function isPciSpecKey(key: string): key is PciSpecKey {
  return (PCI_SPEC_KEYS as readonly string[]).includes(key);
}

/** The values of `rdm_policy` (`LIBXL_RDM_RESERVE_POLICY_STRICT`/`_RELAXED`). */
export const RDM_POLICIES = ['strict', 'relaxed'] as const;

/** How Xen treats reserved device memory regions of the device (HVM, x86). */
export type RdmPolicy = (typeof RDM_POLICIES)[number];

/** True when `value` is an {@link RdmPolicy}. */
export function isRdmPolicy(value: unknown): value is RdmPolicy {
  return value === 'strict' || value === 'relaxed';
}

/**
 * A host device address as a PCI_SPEC_STRING writes it: like {@link PciAddress}, but the
 * function may be `*` (every function of the slot).
 */
export interface PciSpecBdf {
  /** PCI segment, 0–0xffff (0 when the spec leaves it out). */
  readonly domain: number;
  /** 0–0xff. */
  readonly bus: number;
  /** Device (slot), 0–0x1f. */
  readonly dev: number;
  /** 0–7, or `*` for every function of the slot. */
  readonly func: number | typeof PCI_FUNC_WILDCARD;
}

/**
 * The settings that xl.cfg can set for every device at once: `pci_permissive`,
 * `pci_seize`, `pci_msitranslate`, `pci_power_mgmt` and the `policy=` of `rdm=`. A key
 * in the spec overrides them.
 */
export interface PciSpecDefaults {
  /** Let the guest write config registers pciback does not virtualize. */
  readonly permissive: boolean;
  /** Take the device from its dom0 driver if it is not assignable yet (§1.2). */
  readonly seize: boolean;
  /** Kept only in `opts-N` since qemu-traditional is gone. */
  readonly msitranslate: boolean;
  /** HVM only; kept only in `opts-N` since qemu-traditional is gone. */
  readonly power_mgmt: boolean;
  /** Reserved-device-memory policy (HVM, x86). */
  readonly rdm_policy: RdmPolicy;
}

/** The built-in defaults of xl-pci-configuration(5): every flag 0, `rdm_policy=strict`. */
export const PCI_SPEC_DEFAULTS: PciSpecDefaults = Object.freeze({
  permissive: false,
  seize: false,
  msitranslate: false,
  power_mgmt: false,
  rdm_policy: 'strict',
});

/** What every parsed spec has besides the device it names. */
export interface PciSpecCommon extends PciSpecDefaults {
  /** `vslot << 3` when a virtual slot is asked for, else `null` (libxl chooses). */
  readonly vdevfn: number | null;
}

/** A spec that names its device by address. */
export interface PciSpecByBdf extends PciSpecCommon {
  readonly bdf: PciSpecBdf;
  readonly name: null;
}

/** A spec that names its device by the alias given to `pci-assignable-add -n`. */
export interface PciSpecByName extends PciSpecCommon {
  readonly bdf: null;
  readonly name: string;
}

/** A parsed PCI_SPEC_STRING: exactly one of `bdf` and `name` is set. */
export type PciSpec = PciSpecByBdf | PciSpecByName;

/**
 * The flat JSON shape of a spec (`pciback pci-spec --json`): the address fields are
 * `null` when the spec names its device by `name`.
 */
export interface PciSpecJson {
  readonly domain: number | null;
  readonly bus: number | null;
  readonly dev: number | null;
  readonly func: number | typeof PCI_FUNC_WILDCARD | null;
  readonly vdevfn: number | null;
  readonly permissive: boolean;
  readonly seize: boolean;
  readonly msitranslate: boolean;
  readonly power_mgmt: boolean;
  readonly rdm_policy: RdmPolicy;
  readonly name: string | null;
}

/** What kind of mistake a {@link PciSpecError} reports. */
export type PciSpecErrorKind =
  /** Not shaped like the grammar: empty item, stray whitespace, an item without `=`. */
  | 'syntax'
  /** A key that is not one of {@link PCI_SPEC_KEYS}. */
  | 'unknown-key'
  /** A key given twice (counting the positional BDF and `@vslot`). */
  | 'duplicate-key'
  /** A known key with a value it cannot take. */
  | 'invalid-value'
  /** Neither a BDF nor a name, or both. */
  | 'device';

/** Details of a {@link PciSpecError}. */
export interface PciSpecErrorDetails {
  readonly kind: PciSpecErrorKind;
  /** 0-based index in the spec of the first character that is wrong. */
  readonly position: number;
  /** Why, without the position: `the value "yes" of "permissive" is not 0 or 1 ...`. */
  readonly reason: string;
  /** The key the error is about, as written (`bdf` for a positional BDF). */
  readonly key?: string | undefined;
  /** The value the error is about, as written. */
  readonly value?: string | undefined;
  /** For a BDF out of range: the component that is. */
  readonly component?: PciAddressComponent | undefined;
}

/**
 * A PCI_SPEC_STRING that cannot be parsed. The message gives the spec, the position and
 * the reason; the fields give the same for programs.
 *
 * @example
 * try { parsePciSpec('03:00.0,permissive=yes'); } catch (e) {
 *   if (e instanceof PciSpecError) console.log(e.position, e.key, e.value);
 *   // 19 'permissive' 'yes'
 * }
 */
export class PciSpecError extends SyntaxError {
  /** The whole spec that was parsed. */
  readonly input: string;
  readonly kind: PciSpecErrorKind;
  readonly position: number;
  readonly reason: string;
  readonly key: string | undefined;
  readonly value: string | undefined;
  readonly component: PciAddressComponent | undefined;

  constructor(input: string, details: PciSpecErrorDetails, options?: { cause?: unknown }) {
    // JSON quoting keeps the message on one line whatever the spec contains.
    super(
      `Cannot parse PCI spec ${quote(input)} at position ${details.position}: ${details.reason}`,
      options,
    );
    this.name = 'PciSpecError';
    this.input = input;
    this.kind = details.kind;
    this.position = details.position;
    this.reason = details.reason;
    this.key = details.key;
    this.value = details.value;
    this.component = details.component;
  }
}

/** Options of {@link parsePciSpec}. */
export interface ParsePciSpecOptions {
  /** The xl.cfg globals (`pci_permissive`, ...); built-in defaults for the rest. */
  readonly defaults?: Partial<PciSpecDefaults>;
}

/**
 * Parse a PCI_SPEC_STRING (see the module comment for what is accepted).
 *
 * @throws {PciSpecError} naming the position, key and value that are wrong.
 * @throws {TypeError} when `options.defaults` holds a value of the wrong type.
 *
 * @example
 * parsePciSpec('36:00.0@14,seize=1');
 * // { bdf: { domain: 0, bus: 0x36, dev: 0, func: 0 }, vdevfn: 0xa0, seize: true,
 * //   permissive: false, msitranslate: false, power_mgmt: false, rdm_policy: 'strict',
 * //   name: null }
 * parsePciSpec('name=gpu', { defaults: { permissive: true } }).permissive; // true
 */
export function parsePciSpec(text: string, options: ParsePciSpecOptions = {}): PciSpec {
  const defaults = checkDefaults(options.defaults ?? {});
  const parser = new SpecParser(text);
  const seen = parser.parse();

  const bdf = seen.bdf;
  const name = seen.name;
  if (bdf !== undefined && name !== undefined) {
    const later = bdf.position > name.position ? bdf : name;
    const earlier = later === bdf ? name : bdf;
    throw parser.error({
      kind: 'device',
      position: later.position,
      key: later.key,
      value: later.written,
      reason:
        `give either a BDF or a name, not both: ${describeOccurrence(later)} ` +
        `comes after ${describeOccurrence(earlier)} at position ${earlier.position}`,
    });
  }
  const common: PciSpecCommon = {
    vdevfn: seen.vslot === undefined ? null : seen.vslot.value << 3,
    permissive: seen.permissive?.value ?? defaults.permissive,
    seize: seen.seize?.value ?? defaults.seize,
    msitranslate: seen.msitranslate?.value ?? defaults.msitranslate,
    power_mgmt: seen.power_mgmt?.value ?? defaults.power_mgmt,
    rdm_policy: seen.rdm_policy?.value ?? defaults.rdm_policy,
  };
  if (bdf !== undefined) return { bdf: bdf.value, ...common, name: null };
  if (name !== undefined) return { bdf: null, ...common, name: name.value };
  throw parser.error({
    kind: 'device',
    position: text.length,
    reason: 'no device: give a BDF such as "03:00.0" (or bdf=03:00.0) or name=<alias>',
  });
}

/** Options of {@link formatPciSpec}. */
export interface FormatPciSpecOptions {
  /**
   * Write every key, so the result means the same whatever global defaults it is later
   * parsed with. Without it only keys that differ from {@link PCI_SPEC_DEFAULTS} are
   * written.
   */
  readonly explicit?: boolean;
}

/**
 * Write the canonical PCI_SPEC_STRING of `spec`: the full BDF (`%04x:%02x:%02x.%01x`,
 * or `.*`) with `@vslot` as two hex digits, or `name=...,vslot=..`; then `permissive`,
 * `msitranslate`, `seize`, `power_mgmt`, `rdm_policy`. `parsePciSpec(formatPciSpec(x))`
 * equals `x`.
 *
 * @throws {RangeError} when a field is out of range (vdevfn not `slot << 3`, a bad name).
 * @throws {TypeError} when a field has the wrong type.
 *
 * @example
 * formatPciSpec(parsePciSpec('3:0.0,permissive=1,vslot=4')); // '0000:03:00.0@04,permissive=1'
 * formatPciSpec(parsePciSpec('name=gpu'), { explicit: true });
 * // 'name=gpu,permissive=0,msitranslate=0,seize=0,power_mgmt=0,rdm_policy=strict'
 */
export function formatPciSpec(spec: PciSpec, options: FormatPciSpecOptions = {}): string {
  const explicit = options.explicit === true;
  const parts: string[] = [];
  const vslot = spec.vdevfn === null ? null : formatVslot(spec.vdevfn);
  if (spec.bdf !== null) {
    if ((spec.name as unknown) !== null) {
      throw new TypeError('Cannot format a PCI spec with both a bdf and a name');
    }
    parts.push(formatBdf(spec.bdf) + (vslot === null ? '' : `@${vslot}`));
  } else {
    if (typeof spec.name !== 'string') {
      throw new TypeError('Cannot format a PCI spec without a bdf or a name');
    }
    const problem = checkName(spec.name);
    if (problem !== null) {
      throw new RangeError(`Cannot format PCI spec name ${quote(spec.name)}: ${problem.reason}`);
    }
    parts.push(`name=${spec.name}`);
    if (vslot !== null) parts.push(`vslot=${vslot}`);
  }
  for (const key of BOOLEAN_KEYS_IN_ORDER) {
    const value = spec[key];
    if (typeof value !== 'boolean') {
      throw new TypeError(`Cannot format PCI spec: "${key}" must be a boolean`);
    }
    if (explicit || value !== PCI_SPEC_DEFAULTS[key]) parts.push(`${key}=${value ? 1 : 0}`);
  }
  if (!isRdmPolicy(spec.rdm_policy)) {
    throw new RangeError(
      `Cannot format PCI spec: rdm_policy ${quote(String(spec.rdm_policy))} is not "strict" or "relaxed"`,
    );
  }
  if (explicit || spec.rdm_policy !== PCI_SPEC_DEFAULTS.rdm_policy) {
    parts.push(`rdm_policy=${spec.rdm_policy}`);
  }
  return parts.join(',');
}

/**
 * libxl's way of writing a host BDF, `%04x:%02x:%02x.%01x` (sysfs writes, `key-N`,
 * `dev-N`, `pci-list`); a wildcard function is written `*`. For a {@link PciAddress}
 * this is its `toString()`.
 *
 * @throws {RangeError} when a component is out of range.
 *
 * @example
 * formatBdf({ domain: 0, bus: 3, dev: 0, func: 1 }); // '0000:03:00.1'
 * formatBdf({ domain: 0, bus: 0x36, dev: 0, func: '*' }); // '0000:36:00.*'
 */
export function formatBdf(bdf: PciSpecBdf | PciAddress): string {
  if (bdf instanceof PciAddress) return bdf.toString();
  const wildcard = bdf.func === PCI_FUNC_WILDCARD;
  const text = toAddress(bdf.domain, bdf.bus, bdf.dev, wildcard ? 0 : bdf.func).toString();
  return wildcard ? text.slice(0, -1) + PCI_FUNC_WILDCARD : text;
}

/**
 * pciback's way of writing a guest address in `vdev-N`, `%04x:%02x:%02x.%02x`: note the
 * two-digit function, which the protocol fixes (peers.md §1.3).
 *
 * @example
 * formatVdev(PciAddress.parse('0000:00:01.0')); // '0000:00:01.00'
 */
export function formatVdev(address: PciAddress): string {
  return `${hex(address.domain, 4)}:${hex(address.bus, 2)}:${hex(address.device, 2)}.${hex(address.fn, 2)}`;
}

/**
 * The flat JSON shape of `spec`, keys in the documented order (`pciback pci-spec
 * --json`).
 *
 * @example
 * pciSpecToJson(parsePciSpec('name=gpu')).domain; // null
 */
export function pciSpecToJson(spec: PciSpec): PciSpecJson {
  return {
    domain: spec.bdf?.domain ?? null,
    bus: spec.bdf?.bus ?? null,
    dev: spec.bdf?.dev ?? null,
    func: spec.bdf?.func ?? null,
    vdevfn: spec.vdevfn,
    permissive: spec.permissive,
    seize: spec.seize,
    msitranslate: spec.msitranslate,
    power_mgmt: spec.power_mgmt,
    rdm_policy: spec.rdm_policy,
    name: spec.name,
  };
}

// ---------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------

type BooleanKey = 'permissive' | 'msitranslate' | 'seize' | 'power_mgmt';

/** The boolean keys in the order {@link formatPciSpec} writes them (the man page's). */
const BOOLEAN_KEYS_IN_ORDER: readonly BooleanKey[] = [
  'permissive',
  'msitranslate',
  'seize',
  'power_mgmt',
];

/** A key that was given, where, and how it was written. */
interface Occurrence<T> {
  readonly value: T;
  /** Position of the key (or of the positional BDF, or of the `@`). */
  readonly position: number;
  /** The key as the error should name it. */
  readonly key: PciSpecKey;
  /** The item as written (`@20`, `vslot=20`, `36:00.0`). */
  readonly text: string;
  /** Its value as written (`20`, `36:00.0`). */
  readonly written: string;
}

interface Seen {
  bdf?: Occurrence<PciSpecBdf>;
  vslot?: Occurrence<number>;
  permissive?: Occurrence<boolean>;
  msitranslate?: Occurrence<boolean>;
  seize?: Occurrence<boolean>;
  power_mgmt?: Occurrence<boolean>;
  rdm_policy?: Occurrence<RdmPolicy>;
  name?: Occurrence<string>;
}

/** Words people write for booleans, and what they mean (for the error's advice). */
const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = {
  yes: true,
  no: false,
  true: true,
  false: false,
  on: true,
  off: false,
  y: true,
  n: false,
};

const WHITESPACE = /\s/;
const HEX_NUMBER = /^(?:0[xX])?([0-9a-fA-F]+)$/;

/** Skipped after a comma; other whitespace is an error. */
function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

class SpecParser {
  readonly #text: string;
  readonly #seen: Seen = {};

  constructor(text: string) {
    this.#text = text;
  }

  error(details: PciSpecErrorDetails, cause?: unknown): PciSpecError {
    return new PciSpecError(this.#text, details, cause === undefined ? undefined : { cause });
  }

  parse(): Seen {
    const text = this.#text;
    if (text.length === 0) {
      throw this.error({
        kind: 'device',
        position: 0,
        reason: 'the spec is empty: give a BDF such as "03:00.0" or name=<alias>',
      });
    }
    let start = 0;
    let index = 0;
    for (;;) {
      const comma = text.indexOf(',', start);
      const end = comma === -1 ? text.length : comma;
      let itemStart = start;
      // Blanks after a comma are skipped (see the module comment).
      if (index > 0) while (itemStart < end && isBlank(text[itemStart])) itemStart++;
      const item = text.slice(itemStart, end);
      if (item.length === 0) {
        // One trailing comma (possibly followed by blanks) is fine, as in xl.
        if (comma === -1 && index > 0) break;
        throw this.error({
          kind: 'syntax',
          position: itemStart,
          reason:
            index === 0
              ? 'the spec starts with a comma: give the BDF or the first key=value first'
              : 'empty item between two commas',
        });
      }
      this.#checkWhitespace(item, itemStart, index);
      this.#item(item, itemStart, index);
      if (comma === -1) break;
      start = comma + 1;
      index++;
    }
    return this.#seen;
  }

  #checkWhitespace(item: string, itemStart: number, index: number): void {
    const at = item.search(WHITESPACE);
    if (at === -1) return;
    const where =
      index === 0 && at === 0
        ? 'at the start of the spec'
        : item.slice(at).trim() === ''
          ? `after ${quote(item.trimEnd())}`
          : `in ${quote(item)}`;
    throw this.error({
      kind: 'syntax',
      position: itemStart + at,
      reason: `unexpected whitespace ${where}: spaces are allowed only right after a comma`,
    });
  }

  #item(item: string, itemStart: number, index: number): void {
    const equals = item.indexOf('=');
    if (equals === -1) {
      if (index === 0) {
        this.#positional(item, itemStart);
        return;
      }
      throw this.error({
        kind: 'syntax',
        position: itemStart,
        key: item,
        reason: noEqualsReason(item),
      });
    }
    const key = item.slice(0, equals);
    const value = item.slice(equals + 1);
    const valueStart = itemStart + equals + 1;
    if (key.length === 0) {
      throw this.error({
        kind: 'syntax',
        position: itemStart,
        value,
        reason: `missing key before "=" in ${quote(item)}`,
      });
    }
    if (!isPciSpecKey(key)) {
      throw this.error({
        kind: 'unknown-key',
        position: itemStart,
        key,
        value,
        reason: unknownKeyReason(key),
      });
    }
    if (value.length === 0) {
      throw this.error({
        kind: 'invalid-value',
        position: valueStart,
        key,
        value,
        reason: `key "${key}" has no value${valueHint(key)}`,
      });
    }
    switch (key) {
      case 'bdf': {
        const at = value.indexOf('@');
        if (at !== -1) {
          throw this.error({
            kind: 'invalid-value',
            position: valueStart + at,
            key,
            value,
            reason:
              `"@vslot" may only follow a BDF written first without "bdf=": ` +
              `write bdf=${value.slice(0, at)},vslot=${value.slice(at + 1)}`,
          });
        }
        this.#record('bdf', this.#bdf(value, valueStart, key), itemStart, item, value);
        return;
      }
      case 'vslot':
        this.#record('vslot', this.#vslot(value, valueStart), itemStart, item, value);
        return;
      case 'permissive':
      case 'msitranslate':
      case 'seize':
      case 'power_mgmt':
        this.#record(key, this.#boolean(key, value, valueStart), itemStart, item, value);
        return;
      case 'rdm_policy':
        if (!isRdmPolicy(value)) {
          const lower = value.toLowerCase();
          throw this.error({
            kind: 'invalid-value',
            position: valueStart,
            key,
            value,
            reason:
              `the value ${quote(value)} of "rdm_policy" is not "strict" or "relaxed"` +
              (isRdmPolicy(lower) ? ` (values are lower case: write rdm_policy=${lower})` : ''),
          });
        }
        this.#record('rdm_policy', value, itemStart, item, value);
        return;
      case 'name': {
        const problem = checkName(value);
        if (problem !== null) {
          throw this.error({
            kind: 'invalid-value',
            position: valueStart + problem.offset,
            key,
            value,
            reason: `the value ${quote(value)} of "name" is not a device alias: ${problem.reason}`,
          });
        }
        this.#record('name', value, itemStart, item, value);
        return;
      }
      default:
        assertNever(key);
    }
  }

  /** The first item without `=`: `<bdf>` or `<bdf>@<vslot>`. */
  #positional(item: string, itemStart: number): void {
    const at = item.indexOf('@');
    const bdfText = at === -1 ? item : item.slice(0, at);
    if (bdfText.length === 0) {
      throw this.error({
        kind: 'syntax',
        position: itemStart,
        key: 'vslot',
        value: item.slice(1),
        reason: `"@vslot" must follow a BDF: write <bdf>${item}`,
      });
    }
    if (isPciSpecKey(bdfText)) {
      throw this.error({
        kind: 'syntax',
        position: itemStart,
        key: bdfText,
        reason: noEqualsReason(bdfText),
      });
    }
    const bdf = this.#bdf(bdfText, itemStart, undefined);
    this.#record('bdf', bdf, itemStart, bdfText, bdfText);
    if (at === -1) return;
    const vslotText = item.slice(at + 1);
    const vslotStart = itemStart + at + 1;
    if (vslotText.length === 0) {
      throw this.error({
        kind: 'invalid-value',
        position: vslotStart,
        key: 'vslot',
        value: vslotText,
        reason: `missing virtual slot after "@": write ${bdfText}@<vslot>, vslot in hex 0-0x1f`,
      });
    }
    const vslot = this.#vslot(vslotText, vslotStart);
    this.#record('vslot', vslot, itemStart + at, `@${vslotText}`, vslotText);
  }

  /**
   * Remember `key` (parsed as `value`) given at `position` as `text`, whose value part
   * is `written`; a second occurrence is an error.
   */
  #record<K extends keyof Seen>(
    key: K,
    value: NonNullable<Seen[K]>['value'],
    position: number,
    text: string,
    written: string,
  ): void {
    const earlier = this.#seen[key];
    if (earlier !== undefined) {
      throw this.error({
        kind: 'duplicate-key',
        position,
        key,
        value: written,
        reason:
          `"${key}" is given twice: ${describeOccurrence({ key, text })} repeats ` +
          `${describeOccurrence(earlier)} at position ${earlier.position}`,
      });
    }
    // The cast is safe: `value` has the type of Seen[K]'s value by the signature.
    (this.#seen as Record<K, Occurrence<unknown>>)[key] = { value, position, key, text, written };
  }

  /** `[DDDD:]BB:SS.F` with F a function or `*`; `key` is undefined for the positional one. */
  #bdf(text: string, start: number, key: 'bdf' | undefined): PciSpecBdf {
    const label =
      key === undefined ? `the BDF ${quote(text)}` : `the value ${quote(text)} of "bdf"`;
    const star = text.indexOf(PCI_FUNC_WILDCARD);
    const wildcard = star !== -1 && star === text.length - 1 && text[star - 1] === '.';
    if (star !== -1 && !wildcard) {
      throw this.error({
        kind: 'invalid-value',
        position: start + star,
        key: 'bdf',
        value: text,
        reason: `${label} has a "*" where only the function may be "*" (as in 03:00.*)`,
      });
    }
    try {
      const address = PciAddress.parse(wildcard ? `${text.slice(0, -1)}0` : text);
      return {
        domain: address.domain,
        bus: address.bus,
        dev: address.device,
        func: wildcard ? PCI_FUNC_WILDCARD : address.fn,
      };
    } catch (err) {
      if (!(err instanceof PciAddressError)) throw err;
      if (err.component === 'format') {
        throw this.error(
          {
            kind: 'invalid-value',
            position: start,
            key: 'bdf',
            value: text,
            component: 'format',
            reason:
              `${label} is not a PCI address: expected [DDDD:]BB:SS.F in hex, ` +
              `F being 0-7 or "*"` +
              (key === undefined && !text.includes(':') ? ', or key=value' : ''),
          },
          err,
        );
      }
      // The address matched the pattern, so it splits into its components.
      const parts = text.split(/[:.]/);
      const names: readonly PciAddressComponent[] =
        parts.length === 4
          ? ['domain', 'bus', 'device', 'function']
          : ['bus', 'device', 'function'];
      let offset = 0;
      let part = text;
      for (let i = 0; i < parts.length; i++) {
        if (names[i] === err.component) {
          part = parts[i] ?? text;
          break;
        }
        offset += (parts[i] ?? '').length + 1;
      }
      throw this.error(
        {
          kind: 'invalid-value',
          position: start + offset,
          key: 'bdf',
          value: text,
          component: err.component,
          reason: `${label} has ${err.component} ${quote(part)} out of range 0-0x${COMPONENT_MAX[err.component].toString(16)}`,
        },
        err,
      );
    }
  }

  /** A hex slot 0–0x1f, from `@<vslot>` or `vslot=`: the same errors for both. */
  #vslot(text: string, start: number): number {
    const key = 'vslot';
    const match = HEX_NUMBER.exec(text);
    const digits = match?.[1];
    if (digits === undefined) {
      throw this.error({
        kind: 'invalid-value',
        position: start,
        key,
        value: text,
        reason: `the vslot ${quote(text)} is not a hexadecimal number 0-0x1f`,
      });
    }
    const value = Number.parseInt(digits, 16);
    if (value > PCI_VSLOT_MAX) {
      // The man page's own examples use "20"; tell apart a decimal slot 20 from a typo.
      const decimal = /^\d+$/.test(text) ? Number.parseInt(text, 10) : NaN;
      const hint =
        decimal <= PCI_VSLOT_MAX
          ? `; vslot is hexadecimal, so for slot ${decimal} (decimal) write ${hex(decimal, 2)}`
          : '; vslot is hexadecimal';
      throw this.error({
        kind: 'invalid-value',
        position: start,
        key,
        value: text,
        reason:
          `the vslot ${quote(text)} is out of range: ` +
          `${digits.length > 8 ? quote(text) : `0x${value.toString(16)}`} is above ` +
          `the largest slot 0x${PCI_VSLOT_MAX.toString(16)}${hint}`,
      });
    }
    return value;
  }

  #boolean(key: BooleanKey, value: string, start: number): boolean {
    if (value === '1') return true;
    if (value === '0') return false;
    const word = BOOLEAN_WORDS[value.toLowerCase()];
    const advice =
      word === undefined
        ? `write ${key}=1 or ${key}=0`
        : `write ${key}=${word ? 1 : 0}` + (word ? ' (xl would read it as 0)' : '');
    throw this.error({
      kind: 'invalid-value',
      position: start,
      key,
      value,
      reason: `the value ${quote(value)} of "${key}" is not 0 or 1: ${advice}`,
    });
  }
}

const COMPONENT_MAX: Readonly<Record<Exclude<PciAddressComponent, 'format'>, number>> = {
  domain: PCI_DOMAIN_MAX,
  bus: PCI_BUS_MAX,
  device: PCI_DEVICE_MAX,
  function: PCI_FUNCTION_MAX,
};

function noEqualsReason(item: string): string {
  if (isPciSpecKey(item)) return `key "${item}" has no value${valueHint(item)}`;
  if (item.includes(':')) {
    return `expected key=value but found ${quote(item)}: a BDF comes first, or write bdf=${item}`;
  }
  return `expected key=value but found ${quote(item)}`;
}

function valueHint(key: PciSpecKey): string {
  switch (key) {
    case 'bdf':
      return ': write bdf=[DDDD:]BB:SS.F';
    case 'vslot':
      return ': write vslot=<hex slot 0-1f>';
    case 'permissive':
    case 'msitranslate':
    case 'seize':
    case 'power_mgmt':
      return `: write ${key}=1 or ${key}=0`;
    case 'rdm_policy':
      return ': write rdm_policy=strict or rdm_policy=relaxed';
    case 'name':
      return ': write name=<alias>';
    default:
      return assertNever(key);
  }
}

function unknownKeyReason(key: string): string {
  const normal = key.toLowerCase().replaceAll('-', '_');
  const suggestion = isPciSpecKey(normal) ? ` (did you mean "${normal}"?)` : '';
  return (
    `unknown key ${quote(key)}${suggestion}: the keys are ` +
    `${PCI_SPEC_KEYS.slice(0, -1).join(', ')} and ${PCI_SPEC_KEYS.at(-1) ?? ''}`
  );
}

/** Why `name` cannot be a device alias (and the offset of the culprit), or null. */
function checkName(name: string): { readonly offset: number; readonly reason: string } | null {
  if (name.length === 0) return { offset: 0, reason: 'it is empty' };
  if (name.length > PCI_NAME_MAX_LENGTH) {
    return {
      offset: PCI_NAME_MAX_LENGTH,
      reason: `it is ${name.length} characters long, more than ${PCI_NAME_MAX_LENGTH}`,
    };
  }
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    // isgraph() in the C locale; a comma would end the value.
    if (code < 0x21 || code > 0x7e || code === 0x2c) {
      return {
        offset: i,
        reason: `the character ${quote(name.charAt(i))} is not printable non-space ASCII`,
      };
    }
  }
  return null;
}

function describeOccurrence(o: { readonly key: string; readonly text: string }): string {
  if (o.key === 'vslot' && o.text.startsWith('@')) return quote(o.text);
  if (o.key === 'bdf' && !o.text.includes('=')) return `the BDF ${quote(o.text)}`;
  return quote(o.text);
}

function formatVslot(vdevfn: number): string {
  if (!Number.isInteger(vdevfn) || vdevfn < 0 || vdevfn > PCI_VSLOT_MAX << 3 || vdevfn & 7) {
    throw new RangeError(
      `Cannot format PCI spec: vdevfn ${String(vdevfn)} is not a slot (0-0x1f) shifted left by 3`,
    );
  }
  return hex(vdevfn >> 3, 2);
}

function toAddress(domain: number, bus: number, dev: number, func: number): PciAddress {
  try {
    return new PciAddress(domain, bus, dev, func);
  } catch (err) {
    if (err instanceof PciAddressError) {
      throw new RangeError(`Cannot format BDF: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

function checkDefaults(defaults: Partial<PciSpecDefaults>): PciSpecDefaults {
  for (const key of BOOLEAN_KEYS_IN_ORDER) {
    const value: unknown = defaults[key];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new TypeError(`Invalid PCI spec default for "${key}": it must be a boolean`);
    }
  }
  const policy: unknown = defaults.rdm_policy;
  if (policy !== undefined && !isRdmPolicy(policy)) {
    throw new TypeError(
      `Invalid PCI spec default for "rdm_policy": ${typeof policy === 'string' ? quote(policy) : typeof policy} is not "strict" or "relaxed"`,
    );
  }
  return {
    permissive: defaults.permissive ?? PCI_SPEC_DEFAULTS.permissive,
    seize: defaults.seize ?? PCI_SPEC_DEFAULTS.seize,
    msitranslate: defaults.msitranslate ?? PCI_SPEC_DEFAULTS.msitranslate,
    power_mgmt: defaults.power_mgmt ?? PCI_SPEC_DEFAULTS.power_mgmt,
    rdm_policy: defaults.rdm_policy ?? PCI_SPEC_DEFAULTS.rdm_policy,
  };
}

function quote(text: string): string {
  return JSON.stringify(text);
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

function assertNever(value: never): never {
  throw new TypeError(`Unexpected value ${String(value)}`);
}
