// SPDX-License-Identifier: MIT
/**
 * The `hide=` parameter (`xen-pciback.hide=` on the kernel command line): the devices
 * pciback seizes when it starts (spec/pciback.md §6.1, `pcistub_init` and
 * `pcistub_device_id_add` in `pci_stub.c`).
 *
 * The value is a sequence of groups, each one of
 * `(DDDD:BB:SS.F)`, `(DDDD:BB:SS.*)`, `(DDDD:BB:*.*)`, `(BB:SS.F)`, `(BB:SS.*)`,
 * `(BB:*.*)`, with hex numbers and optional whitespace around groups. The parser accepts
 * exactly what the kernel's `sscanf(" (%x:%x:%x.%x) %n")` cascade accepts, with these
 * deliberate differences (all stricter, each one a likely typo):
 *
 * - a number that does not fit its component is an error naming the component; the
 *   kernel truncates `%x` to 32 bits, so `(0:0:ffffffff.0)` becomes slot -1 there, which
 *   `pcistub_device_id_add` reads as "all slots";
 * - `0x` must be followed by a hex digit (the kernel reads a bare `0x` as 0).
 *
 * Whitespace is allowed where `sscanf` allows it: before and after a group and before a
 * number inside one (`( 03: 00.0)`), but not before `:`, `.`, `*` or `)`. A value made
 * only of whitespace is rejected, as the kernel does; the empty value is valid. Domains
 * other than 0 are accepted, as on a kernel with `CONFIG_PCI_DOMAINS` (x86-64, arm64).
 *
 * Errors are {@link HideSyntaxError}s with the position of the first error, the kernel's
 * view (`Error parsing pci_devs_to_hide at "<rest>"`), a reason and, when the intent is
 * clear enough, a suggestion.
 */
import { PciAddress } from '../../pci/index.js';

/** The wildcard of the slot and function components. */
export const HIDE_WILDCARD = '*';

/**
 * One group of a `hide=` value. `slot === '*'` implies `func === '*'` (there is no form
 * for "function F of every slot").
 */
export interface HideSelector {
  /** PCI segment, 0–0xffff (0 in the domain-less forms). */
  readonly domain: number;
  /** 0–0xff. */
  readonly bus: number;
  /** 0–0x1f, or every slot of the bus. */
  readonly slot: number | typeof HIDE_WILDCARD;
  /** 0–7, or every function of the slot. */
  readonly func: number | typeof HIDE_WILDCARD;
}

/** A component of a selector, as named in errors and in `hide-check --json`. */
export type HideComponent = 'domain' | 'bus' | 'slot' | 'func';

/**
 * What kind of mistake a {@link HideSyntaxError} reports: `syntax` is the kernel's
 * "Error parsing" case, `range` a well-formed group with a component out of range (the
 * kernel's `-EINVAL` from `pcistub_device_id_add`).
 */
export type HideErrorKind = 'syntax' | 'range';

/** Details of a {@link HideSyntaxError}. */
export interface HideSyntaxErrorDetails {
  readonly kind: HideErrorKind;
  /** 0-based index in the value of the first character that is wrong. */
  readonly position: number;
  /** 0-based index where the failing group starts, as the kernel counts it. */
  readonly groupPosition: number;
  /** Why, without the position: `expected ":" after the bus but found "."`. */
  readonly reason: string;
  /** A sentence that helps, e.g. `Did you mean "(0000:82:00.0)"?`; may be absent. */
  readonly suggestion?: string | undefined;
  /** The component that is wrong, when one is. */
  readonly component?: HideComponent | undefined;
}

/**
 * A `hide=` value that pciback would refuse.
 *
 * @example
 * try { parseHide('(0000:82.0.0)'); } catch (e) {
 *   if (e instanceof HideSyntaxError) console.log(e.position, e.reason, e.suggestion);
 *   // 8 'expected ":" after the bus but found "."' 'Did you mean "(0000:82:00.0)"?'
 * }
 */
export class HideSyntaxError extends SyntaxError {
  /** The whole value that was parsed. */
  readonly input: string;
  readonly kind: HideErrorKind;
  readonly position: number;
  readonly groupPosition: number;
  readonly reason: string;
  readonly suggestion: string | undefined;
  readonly component: HideComponent | undefined;

  constructor(input: string, details: HideSyntaxErrorDetails) {
    super(`Cannot parse hide= value at position ${details.position}: ${details.reason}`);
    this.name = 'HideSyntaxError';
    this.input = input;
    this.kind = details.kind;
    this.position = details.position;
    this.groupPosition = details.groupPosition;
    this.reason = details.reason;
    this.suggestion = details.suggestion;
    this.component = details.component;
  }

  /** The rest of the value from the failing group on, as the kernel prints it. */
  get rest(): string {
    return this.input.slice(this.groupPosition);
  }

  /** The line the kernel logs for a syntax error. */
  get kernelMessage(): string {
    return `Error parsing pci_devs_to_hide at "${this.rest}"`;
  }
}

// ---------------------------------------------------------------------------------------
// A small model of the kernel's sscanf over the six group formats
// ---------------------------------------------------------------------------------------

type Token =
  | { readonly kind: 'ws' }
  | { readonly kind: 'lit'; readonly char: string }
  | { readonly kind: 'num'; readonly component: HideComponent };

const COMPONENT_LETTERS: Readonly<Record<string, HideComponent>> = {
  D: 'domain',
  B: 'bus',
  S: 'slot',
  F: 'func',
};

/** ' ' is sscanf whitespace, D/B/S/F a `%x` for that component, anything else a literal. */
function compile(format: string): readonly Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < format.length; i++) {
    const c = format.charAt(i);
    const component = COMPONENT_LETTERS[c];
    if (c === ' ') tokens.push({ kind: 'ws' });
    else if (component !== undefined) tokens.push({ kind: 'num', component });
    else tokens.push({ kind: 'lit', char: c });
  }
  return tokens;
}

/** The kernel's formats, in the order `pcistub_init` tries them. */
const FORMS: readonly (readonly Token[])[] = [
  ' (D:B:S.F) ',
  ' (D:B:S.*) ',
  ' (D:B:*.*) ',
  ' (B:S.F) ',
  ' (B:S.*) ',
  ' (B:*.*) ',
].map(compile);
const DOMAIN_FORMS = 3;

interface ScannedNumber {
  readonly value: number;
  /** Index of the first character of the number (after whitespace). */
  readonly start: number;
  /** The number as written, e.g. `0x1f`. */
  readonly text: string;
}

interface ScanMatch {
  readonly ok: true;
  readonly end: number;
  readonly numbers: ReadonlyMap<HideComponent, ScannedNumber>;
  readonly form: readonly Token[];
}

interface ScanFailure {
  readonly ok: false;
  readonly position: number;
  readonly expected: Token;
  /** What came before the failing token, for messages: `the bus`, `the wildcard slot`. */
  readonly after: string;
}

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

function isHexDigit(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

function skipSpaces(text: string, pos: number): number {
  while (isSpace(text[pos])) pos++;
  return pos;
}

function scan(text: string, start: number, form: readonly Token[]): ScanMatch | ScanFailure {
  let pos = start;
  const numbers = new Map<HideComponent, ScannedNumber>();
  for (let i = 0; i < form.length; i++) {
    const token = form[i] as Token;
    const fail = (position: number): ScanFailure => ({
      ok: false,
      position,
      expected: token,
      after: describeAfter(form, i),
    });
    switch (token.kind) {
      case 'ws':
        pos = skipSpaces(text, pos);
        break;
      case 'lit':
        if (text[pos] !== token.char) return fail(pos);
        pos++;
        break;
      case 'num': {
        // %x skips leading whitespace, then needs a hex digit; an optional 0x prefix.
        pos = skipSpaces(text, pos);
        const numStart = pos;
        if (!isHexDigit(text[pos])) return fail(pos);
        if (text[pos] === '0' && (text[pos + 1] === 'x' || text[pos + 1] === 'X')) {
          if (isHexDigit(text[pos + 2])) pos += 2;
        }
        const digitsStart = pos;
        while (isHexDigit(text[pos])) pos++;
        numbers.set(token.component, {
          value: Number.parseInt(text.slice(digitsStart, pos), 16),
          start: numStart,
          text: text.slice(numStart, pos),
        });
        break;
      }
      default:
        return assertNever(token);
    }
  }
  return { ok: true, end: pos, numbers, form };
}

function assertNever(value: never): never {
  throw new TypeError(`Unexpected value ${JSON.stringify(value)}`);
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

const LIMITS: Readonly<Record<HideComponent, number>> = {
  domain: 0xffff,
  bus: 0xff,
  slot: 0x1f,
  func: 7,
};

const COMPONENT_WORDS: Readonly<Record<HideComponent, string>> = {
  domain: 'domain',
  bus: 'bus',
  slot: 'slot',
  func: 'function',
};

type GroupResult =
  | { readonly ok: true; readonly selector: HideSelector; readonly end: number }
  | { readonly ok: false; readonly details: Omit<HideSyntaxErrorDetails, 'suggestion'> };

/** Parse the group starting at `start` (whitespace before it included), like the kernel. */
function parseGroup(text: string, start: number): GroupResult {
  const failures: ScanFailure[] = [];
  for (const form of FORMS) {
    const result = scan(text, start, form);
    if (result.ok) return checkRanges(start, result);
    failures.push(result);
  }
  return { ok: false, details: diagnose(text, start, failures) };
}

function checkRanges(start: number, match: ScanMatch): GroupResult {
  const components: HideComponent[] = ['domain', 'bus', 'slot', 'func'];
  for (const component of components) {
    const n = match.numbers.get(component);
    if (n !== undefined && n.value > LIMITS[component]) {
      return {
        ok: false,
        details: {
          kind: 'range',
          position: n.start,
          groupPosition: start,
          component,
          reason: `the ${COMPONENT_WORDS[component]} "${n.text}" is out of range: it must be 0-${LIMITS[component].toString(16)} (hex)`,
        },
      };
    }
  }
  const value = (c: HideComponent): number => match.numbers.get(c)?.value ?? 0;
  return {
    ok: true,
    end: match.end,
    selector: Object.freeze({
      domain: value('domain'),
      bus: value('bus'),
      slot: match.numbers.has('slot') ? value('slot') : HIDE_WILDCARD,
      func: match.numbers.has('func') ? value('func') : HIDE_WILDCARD,
    }),
  };
}

function selectorKey(s: HideSelector): string {
  return `${s.domain}:${s.bus}:${s.slot}.${s.func}`;
}

/** Like {@link parseHide}, without building a suggestion on failure. */
function parseStrict(
  text: string,
): { ok: true; selectors: HideSelector[] } | { ok: false; details: HideSyntaxErrorDetails } {
  const selectors: HideSelector[] = [];
  if (text.length === 0) return { ok: true, selectors };
  const seen = new Set<string>();
  let pos = 0;
  // A do-while like the kernel's: a value made only of whitespace is one failing group.
  do {
    const group = parseGroup(text, pos);
    if (!group.ok) return { ok: false, details: group.details };
    const key = selectorKey(group.selector);
    // pcistub_device_id_add drops duplicates silently; keep the first occurrence.
    if (!seen.has(key)) {
      seen.add(key);
      selectors.push(group.selector);
    }
    pos = group.end;
  } while (pos < text.length);
  return { ok: true, selectors };
}

/**
 * Parse a `hide=` value into its groups, in order, each group once.
 *
 * @throws HideSyntaxError when pciback would refuse the value (the kernel's module init
 *   fails with -EINVAL in that case).
 *
 * @example
 * parseHide('(0000:03:00.0) (04:00.*)');
 * // [{ domain: 0, bus: 3, slot: 0, func: 0 }, { domain: 0, bus: 4, slot: 0, func: '*' }]
 */
export function parseHide(text: string): readonly HideSelector[] {
  const result = parseStrict(text);
  if (!result.ok) {
    throw new HideSyntaxError(text, {
      ...result.details,
      suggestion: suggest(text, result.details),
    });
  }
  return Object.freeze(result.selectors);
}

// ---------------------------------------------------------------------------------------
// Diagnosis
// ---------------------------------------------------------------------------------------

function describeFound(c: string | undefined): string {
  if (c === undefined) return 'the end of the value';
  if (c === ' ') return 'a space';
  if (isSpace(c)) return 'whitespace';
  return JSON.stringify(c);
}

function describeAfter(form: readonly Token[], index: number): string {
  const token = form[index - 1];
  if (token === undefined) return 'the start';
  switch (token.kind) {
    case 'num':
      return `the ${COMPONENT_WORDS[token.component]}`;
    case 'lit': {
      if (token.char !== '*') return `"${token.char}"`;
      const before = form[index - 2];
      return before?.kind === 'lit' && before.char === '.'
        ? 'the wildcard function'
        : 'the wildcard slot';
    }
    case 'ws':
      return 'whitespace';
    default:
      return assertNever(token);
  }
}

/**
 * The kernel only says "Error parsing"; we explain. Both the domain forms and the
 * domain-less forms failed: report the failure of the family the user most likely meant
 * (two colons or four hex numbers: the domain forms), at the furthest position any of
 * its forms reached.
 */
function diagnose(
  text: string,
  groupStart: number,
  failures: readonly ScanFailure[],
): Omit<HideSyntaxErrorDetails, 'suggestion'> {
  const close = text.indexOf(')', groupStart);
  const segment = text.slice(groupStart, close < 0 ? undefined : close);
  const colons = segment.split(':').length - 1;
  const numbers = segment.replace(/0[xX](?=[0-9a-fA-F])/g, '').match(/[0-9a-fA-F]+/g)?.length ?? 0;
  const wantsDomain = colons >= 2 || numbers >= 4;
  const family = wantsDomain ? failures.slice(0, DOMAIN_FORMS) : failures.slice(DOMAIN_FORMS);
  const furthest = Math.max(...family.map((f) => f.position));
  const atFurthest = family.filter((f) => f.position === furthest);
  const expected = atFurthest.map((f) => f.expected);
  const found = text[furthest];
  const base = { kind: 'syntax' as const, position: furthest, groupPosition: groupStart };
  const describe = describeFound(found);

  const num = expected.find((t) => t.kind === 'num');
  const lits = new Set(expected.flatMap((t) => (t.kind === 'lit' ? [t.char] : [])));
  const after = atFurthest[0]?.after ?? 'the start';

  if (lits.has('(')) {
    return { ...base, reason: reasonForOpen(text, furthest) };
  }
  if (num !== undefined) {
    const word = COMPONENT_WORDS[num.component];
    if (found === '*' && (num.component === 'domain' || num.component === 'bus')) {
      return {
        ...base,
        component: num.component,
        reason: `the ${word} cannot be "*": only the slot and the function can be wildcards`,
      };
    }
    if (found === ')' && text[skipSpaces(text, groupStart)] === '(' && numbers === 0) {
      return { ...base, reason: 'the group is empty' };
    }
    if (found === ')' || found === undefined) {
      return { ...base, component: num.component, reason: `the ${word} number is missing` };
    }
    const orWildcard = lits.has('*') ? ' or "*"' : '';
    return {
      ...base,
      component: num.component,
      reason: `expected the ${word} as a hex number${orWildcard} but found ${describe}`,
    };
  }
  if (lits.has('*')) {
    if (isHexDigit(found)) {
      return {
        ...base,
        component: 'func',
        reason: `a wildcard slot needs a wildcard function: found ${describe} where "*" must be`,
      };
    }
    return { ...base, component: 'func', reason: `expected "*" but found ${describe}` };
  }
  if (lits.has(':')) {
    if (found === ')' || found === undefined) {
      return { ...base, reason: `the address is incomplete: expected ":" after ${after}` };
    }
    if (isSpace(found)) {
      return {
        ...base,
        reason: `expected ":" after ${after} but found ${describe}: spaces may only come before a number`,
      };
    }
    return { ...base, reason: `expected ":" after ${after} but found ${describe}` };
  }
  if (lits.has('.')) {
    if (found === ')' || found === undefined) {
      return {
        ...base,
        component: 'func',
        reason: `the function is missing: add ".F" for one function or ".*" for all of them`,
      };
    }
    if (isSpace(found)) {
      return {
        ...base,
        reason: `expected "." after ${after} but found ${describe}: spaces may only come before a number`,
      };
    }
    return { ...base, reason: `expected "." after ${after} but found ${describe}` };
  }
  // Only ")" is left.
  if (found === undefined) return { ...base, reason: `the group has no closing ")"` };
  if (found === '(') return { ...base, reason: `expected ")" before the next "("` };
  if (isSpace(found)) {
    const next = text[skipSpaces(text, furthest)];
    return {
      ...base,
      reason:
        next === ')'
          ? `expected ")" but found ${describe}: no space is allowed before ")"`
          : `expected ")" after ${after} but found ${describe}`,
    };
  }
  if (found === ':' || found === '.') {
    return {
      ...base,
      reason: `expected ")" after ${after} but found ${describe}: the address has too many parts`,
    };
  }
  if (found === ']' || found === '}' || found === '>') {
    return {
      ...base,
      reason: `expected ")" but found ${describe}: groups are written in parentheses`,
    };
  }
  return { ...base, reason: `expected ")" after ${after} but found ${describe}` };
}

const PARAMETER_PREFIX = /^[\w.-]*hide\s*=/i;

function reasonForOpen(text: string, pos: number): string {
  const found = text[pos];
  const describe = describeFound(found);
  if (found === undefined) {
    return pos === 0
      ? `expected "(" but found the end of the value`
      : `expected "(" but the value has only whitespace`;
  }
  const prefix = PARAMETER_PREFIX.exec(text.slice(pos));
  if (prefix !== null) {
    return `expected "(" but found "${prefix[0]}": give only the value, without the parameter name`;
  }
  if (found === ',' || found === ';' || found === '|') {
    return `expected "(" but found ${describe}: groups follow each other without separators`;
  }
  if (found === '[' || found === '{' || found === '<') {
    return `expected "(" but found ${describe}: groups are written in parentheses`;
  }
  if (found === '"' || found === "'") {
    return `expected "(" but found a quote: quotes are not part of the value`;
  }
  if (found === ')') return `expected "(" but found ")": the group has no opening "("`;
  if (isHexDigit(found)) {
    return `expected "(" but found ${describe}: every address must be in parentheses`;
  }
  return `expected "(" to start a group but found ${describe}`;
}

// ---------------------------------------------------------------------------------------
// Suggestions
// ---------------------------------------------------------------------------------------

function suggest(text: string, details: HideSyntaxErrorDetails): string | undefined {
  if (details.kind === 'syntax' && text.trim().length === 0) {
    return 'Leave the value empty to hide nothing.';
  }
  if (
    details.kind === 'syntax' &&
    (details.component === 'domain' || details.component === 'bus') &&
    text[details.position] === '*'
  ) {
    return 'Hide a whole bus with "(DDDD:BB:*.*)"; list each bus to hide several.';
  }
  const repaired = repair(text);
  if (repaired === undefined) return undefined;
  return repaired.usedDecimal
    ? `Numbers are hex: did you mean "${repaired.value}"?`
    : `Did you mean "${repaired.value}"?`;
}

interface Repaired {
  readonly value: string;
  /** A number was out of range in hex but in range read as decimal. */
  readonly usedDecimal: boolean;
}

/**
 * Guess the value the user meant: drop a pasted parameter name and quotes, accept any
 * bracket, any separator between groups and any mix of ":" and "." inside an address,
 * then rewrite each address canonically. Returns nothing unless the guess parses.
 */
function repair(text: string): Repaired | undefined {
  let s = text.trim().replace(PARAMETER_PREFIX, '');
  s = s
    .replace(/["']/g, '')
    .replace(/[[{<]/g, '(')
    .replace(/[\]}>]/g, ')');
  s = s.replace(/\s*([:.])\s*/g, '$1');
  const pieces = s.split(/[\s,;|()]+/).filter((p) => p.length > 0);
  if (pieces.length === 0) return undefined;
  let usedDecimal = false;
  const groups: string[] = [];
  for (const piece of pieces) {
    const group = repairAddress(piece);
    if (group === undefined) return undefined;
    usedDecimal ||= group.usedDecimal;
    groups.push(group.value);
  }
  const value = groups.join('');
  if (value === text || !parseStrict(value).ok) return undefined;
  return { value, usedDecimal };
}

function repairAddress(piece: string): Repaired | undefined {
  const fields = piece.split(/[:.]/);
  if (fields.some((f) => !/^(?:0[xX])?[0-9a-fA-F]+$|^\*$/.test(f))) return undefined;
  const colons = piece.split(':').length - 1;
  let parts: [string, string, string, string];
  const [a, b, c, d] = fields as [string, string, string?, string?];
  if (fields.length === 4 && c !== undefined && d !== undefined) {
    parts = [a, b, c, d];
  } else if (fields.length === 3 && c !== undefined) {
    // "0000:03:00" is a domain form without its function; "82.0.0" a short form.
    parts = colons === 2 || a.length > 2 ? [a, b, c, '0'] : ['0', a, b, c];
  } else if (fields.length === 2) {
    parts = ['0', a, b, '0'];
  } else {
    return undefined;
  }
  const [domainText, busText, slotText, funcText] = parts;
  if (domainText === '*' || busText === '*') return undefined;
  let usedDecimal = false;
  const number = (t: string, component: HideComponent): number | undefined => {
    const hex = Number.parseInt(t.replace(/^0[xX]/, ''), 16);
    if (hex <= LIMITS[component]) return hex;
    // lspci prints hex, but a slot or bus copied from a decimal listing is a common slip.
    const decimalOk = component === 'bus' || component === 'slot';
    const dec = decimalOk && /^\d+$/.test(t) ? Number.parseInt(t, 10) : Number.NaN;
    if (dec <= LIMITS[component]) {
      usedDecimal = true;
      return dec;
    }
    return undefined;
  };
  const domain = number(domainText, 'domain');
  const bus = number(busText, 'bus');
  const slot = slotText === '*' ? HIDE_WILDCARD : number(slotText, 'slot');
  // No form has a fixed function under a wildcard slot: widen the function.
  const func =
    slot === HIDE_WILDCARD || funcText === '*' ? HIDE_WILDCARD : number(funcText, 'func');
  if (domain === undefined || bus === undefined || slot === undefined || func === undefined) {
    return undefined;
  }
  return { value: `(${formatHideSelector({ domain, bus, slot, func })})`, usedDecimal };
}

// ---------------------------------------------------------------------------------------
// Using selectors
// ---------------------------------------------------------------------------------------

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

/**
 * `DDDD:BB:SS.F` with `*` for wildcards: `0000:03:00.0`, `0000:04:00.*`, `0000:05:*.*`.
 */
export function formatHideSelector(selector: HideSelector): string {
  const slot = selector.slot === HIDE_WILDCARD ? HIDE_WILDCARD : hex(selector.slot, 2);
  const func = selector.func === HIDE_WILDCARD ? HIDE_WILDCARD : selector.func.toString(16);
  return `${hex(selector.domain, 4)}:${hex(selector.bus, 2)}:${slot}.${func}`;
}

/** A canonical `hide=` value for `selectors` (parses back to the same list). */
export function formatHide(selectors: readonly HideSelector[]): string {
  return selectors.map((s) => `(${formatHideSelector(s)})`).join('');
}

/**
 * Every function a selector names, in the kernel's order (slots, then functions).
 *
 * @throws RangeError when the selector is out of range (it did not come from {@link parseHide}).
 */
export function expandHideSelector(selector: HideSelector): PciAddress[] {
  const problem = selectorProblem(selector);
  if (problem !== undefined) {
    throw new RangeError(
      `Cannot expand hide selector "${formatHideSelector(selector)}": ${problem}`,
    );
  }
  const slots = selector.slot === HIDE_WILDCARD ? range(LIMITS.slot + 1) : [selector.slot];
  const funcs = selector.func === HIDE_WILDCARD ? range(LIMITS.func + 1) : [selector.func];
  const out: PciAddress[] = [];
  for (const slot of slots) {
    for (const fn of funcs) out.push(new PciAddress(selector.domain, selector.bus, slot, fn));
  }
  return out;
}

function selectorProblem(selector: HideSelector): string | undefined {
  if (selector.slot === HIDE_WILDCARD && selector.func !== HIDE_WILDCARD) {
    return 'a wildcard slot needs a wildcard function';
  }
  const values: [HideComponent, number | typeof HIDE_WILDCARD][] = [
    ['domain', selector.domain],
    ['bus', selector.bus],
    ['slot', selector.slot],
    ['func', selector.func],
  ];
  for (const [component, value] of values) {
    if (value === HIDE_WILDCARD) continue;
    if (!Number.isInteger(value) || value < 0 || value > LIMITS[component]) {
      return `the ${COMPONENT_WORDS[component]} must be 0-0x${LIMITS[component].toString(16)}`;
    }
  }
  return undefined;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * The kernel's id list for `selectors`: every function named, in order, each once
 * (`pcistub_device_id_add` skips duplicates).
 */
export function expandHideSelectors(selectors: readonly HideSelector[]): PciAddress[] {
  const seen = new Set<number>();
  const out: PciAddress[] = [];
  for (const selector of selectors) {
    for (const address of expandHideSelector(selector)) {
      if (!seen.has(address.key)) {
        seen.add(address.key);
        out.push(address);
      }
    }
  }
  return out;
}

/** True when `address` is one of the functions `selector` names. */
export function hideSelectorMatches(selector: HideSelector, address: PciAddress): boolean {
  return (
    selector.domain === address.domain &&
    selector.bus === address.bus &&
    (selector.slot === HIDE_WILDCARD || selector.slot === address.device) &&
    (selector.func === HIDE_WILDCARD || selector.func === address.fn)
  );
}

/**
 * True when any selector names `address`. (Probe also matches a device whose upstream
 * bridge is hidden: that walk belongs to the caller, which knows the topology.)
 */
export function hideMatches(selectors: readonly HideSelector[], address: PciAddress): boolean {
  return selectors.some((s) => hideSelectorMatches(s, address));
}
