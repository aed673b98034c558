// SPDX-License-Identifier: MIT
/**
 * NUL-separated strings and the C number parsers (`atoi`, `strtol(…, 0)`) that the
 * xenstore daemons apply to payload fields (spec/xenstore.md §1.5, §4.1).
 *
 * Strings are UTF-8. Paths are ASCII by the path rules (§2); a token or value that is not
 * valid UTF-8 is decoded with U+FFFD replacements, so keep the raw `Uint8Array` fields of
 * {@link splitNulFields} where bytes must survive unchanged.
 */
import { parseError, parseOk, type XsParseResult } from './result.js';

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** The NUL byte that terminates every string argument. */
export const NUL = 0;

/** UTF-8 bytes of `text`. */
export function utf8Encode(text: string): Uint8Array {
  return ENCODER.encode(text);
}

/** `bytes` decoded as UTF-8 (invalid sequences become U+FFFD; never throws). */
export function utf8Decode(bytes: Uint8Array): string {
  return DECODER.decode(bytes);
}

/** Concatenate byte arrays into one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A payload cut at its NULs. */
export interface NulFields {
  /** Every NUL-terminated field, without its NUL (views into the payload, not copies). */
  readonly fields: readonly Uint8Array[];
  /** Bytes after the last NUL (empty when the payload ends with a NUL). */
  readonly tail: Uint8Array;
}

/**
 * Cut `payload` into NUL-terminated fields plus the unterminated tail, as C's
 * `get_strings()` counts them.
 *
 * @example
 * splitNulFields(utf8Encode('a\0b\0c')) // fields: 'a', 'b'; tail: 'c'
 */
export function splitNulFields(payload: Uint8Array): NulFields {
  const fields: Uint8Array[] = [];
  let start = 0;
  for (;;) {
    const nul = payload.indexOf(NUL, start);
    if (nul < 0) break;
    fields.push(payload.subarray(start, nul));
    start = nul + 1;
  }
  return { fields, tail: payload.subarray(start) };
}

/**
 * Encode strings as `s\0s\0…`, each NUL-terminated.
 *
 * @throws RangeError when a string contains a NUL (it could not be parsed back).
 */
export function encodeNulStrings(strings: readonly string[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const s of strings) {
    if (s.includes('\0')) {
      throw new RangeError(`Cannot encode string ${JSON.stringify(s)}: it contains a NUL`);
    }
    parts.push(utf8Encode(s), new Uint8Array(1));
  }
  return concatBytes(parts);
}

/**
 * Decode `s\0s\0…` where every string is NUL-terminated and nothing follows the last NUL.
 * An empty payload gives no strings.
 */
export function decodeNulStrings(payload: Uint8Array): XsParseResult<string[]> {
  const { fields, tail } = splitNulFields(payload);
  if (tail.length > 0) return parseError(`payload ends with ${tail.length} unterminated bytes`);
  return parseOk(fields.map(utf8Decode));
}

/**
 * Decode an "onearg" payload: non-empty, and its first NUL is its last byte (exactly one
 * NUL-terminated string). Anything else is EINVAL (spec/xenstore.md §1.5, §11 #1).
 */
export function decodeOneArg(payload: Uint8Array): XsParseResult<string> {
  if (payload.length === 0)
    return parseError('payload is empty: one NUL-terminated string expected');
  const nul = payload.indexOf(NUL);
  if (nul < 0) return parseError('payload has no NUL: one NUL-terminated string expected');
  if (nul !== payload.length - 1) {
    return parseError(`payload has ${payload.length - nul - 1} bytes after the first NUL`);
  }
  return parseOk(utf8Decode(payload.subarray(0, nul)));
}

/**
 * Decode exactly `count` NUL-terminated strings with nothing after the last NUL.
 */
export function decodeExactStrings(payload: Uint8Array, count: number): XsParseResult<string[]> {
  const { fields, tail } = splitNulFields(payload);
  if (tail.length > 0 || fields.length !== count) {
    return parseError(
      `payload has ${fields.length} NUL-terminated strings and ${tail.length} trailing bytes: exactly ${count} strings expected`,
    );
  }
  return parseOk(fields.map(utf8Decode));
}

const LONG_MAX = (1n << 63n) - 1n;
const LONG_MIN = -(1n << 63n);

function isCSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

function digitValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x7a) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x5a) return b - 0x41 + 10;
  return 99;
}

/** What `strtol` parsed: the value (saturated to a 64-bit long) and where it stopped. */
export interface StrtolResult {
  /** The value, saturated at LONG_MIN/LONG_MAX like glibc on overflow. */
  readonly value: bigint;
  /** Index of the first byte not consumed (`*endptr`); 0 when nothing was parsed. */
  readonly end: number;
}

/**
 * glibc `strtol(str, &end, base)` over bytes, for base 10 or 0 (0 = C prefixes: `0x` hex,
 * leading `0` octal). Leading C whitespace and one sign are accepted.
 */
export function strtol(bytes: Uint8Array, base: 0 | 10): StrtolResult {
  let i = 0;
  while (i < bytes.length && isCSpace(bytes[i] ?? 0)) i++;
  let negative = false;
  if (bytes[i] === 0x2b || bytes[i] === 0x2d) {
    negative = bytes[i] === 0x2d;
    i++;
  }
  let radix = 10;
  if (base === 0) {
    if (
      bytes[i] === 0x30 &&
      (bytes[i + 1] === 0x78 || bytes[i + 1] === 0x58) &&
      digitValue(bytes[i + 2] ?? 0) < 16
    ) {
      radix = 16;
      i += 2;
    } else if (bytes[i] === 0x30) {
      radix = 8;
    }
  }
  const first = i;
  let value = 0n;
  let saturated = false;
  for (; i < bytes.length; i++) {
    const d = digitValue(bytes[i] ?? 0);
    if (d >= radix) break;
    if (!saturated) {
      value = value * BigInt(radix) + BigInt(d);
      if (value > LONG_MAX + 1n) saturated = true;
    }
  }
  if (i === first) return { value: 0n, end: 0 };
  let signed = negative ? -value : value;
  if (saturated || signed > LONG_MAX) signed = negative ? LONG_MIN : LONG_MAX;
  if (signed < LONG_MIN) signed = LONG_MIN;
  return { value: signed, end: i };
}

/**
 * glibc `atoi()`: `(int)strtol(s, NULL, 10)`; junk gives 0, never fails. Used where the
 * C daemon uses it (domids of RELEASE, RESUME, GET_DOMAIN_PATH, SET_TARGET, INTRODUCE).
 *
 * @example
 * atoi(utf8Encode('-1')) // -1 (GET_DOMAIN_PATH prints it with %u: 4294967295)
 */
export function atoi(bytes: Uint8Array): number {
  return Number(BigInt.asIntN(32, strtol(bytes, 10).value));
}

/**
 * A strict unsigned decimal: one or more ASCII digits, nothing else, at most `max`.
 */
export function parseStrictDecimal(bytes: Uint8Array, max: number): XsParseResult<number> {
  if (bytes.length === 0) return parseError('number is empty');
  if (bytes.length > 16) return parseError(`number "${utf8Decode(bytes)}" is too long`);
  let value = 0;
  for (const b of bytes) {
    if (b < 0x30 || b > 0x39) return parseError(`number "${utf8Decode(bytes)}" is not decimal`);
    value = value * 10 + (b - 0x30);
  }
  if (value > max) return parseError(`number ${value} is above ${max}`);
  return parseOk(value);
}
