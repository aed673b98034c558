// SPDX-License-Identifier: MIT
/**
 * Permission strings on the wire (spec/xenstore.md §4.1): a letter plus a domid, e.g.
 * `r5`. The first entry of a list names the owner and gives the default access.
 */
import { parseError, parseOk, type XsParseResult } from './result.js';
import { splitNulFields, strtol, utf8Decode, utf8Encode, concatBytes } from './strings.js';

/** Access letters of a permission entry (§4.1; `xs_perm_to_string` in libxenstore). */
export const XS_PERM_LETTER = {
  /** No access. */
  NONE: 'n',
  /** Read. */
  READ: 'r',
  /** Write. */
  WRITE: 'w',
  /** Read and write. */
  BOTH: 'b',
} as const;

/** One access letter. */
export type XsPermLetter = (typeof XS_PERM_LETTER)[keyof typeof XS_PERM_LETTER];

/** True when `value` is one of `n r w b`. */
export function isXsPermLetter(value: unknown): value is XsPermLetter {
  return value === 'n' || value === 'r' || value === 'w' || value === 'b';
}

/** One permission entry. */
export interface XsPermission {
  readonly letter: XsPermLetter;
  /**
   * The domain, as C prints it back (`%d` of the stored unsigned id): `0x5` is read as 5,
   * and `-1` stays -1. Whether the domain exists is the store's business (ENOENT there).
   */
  readonly domid: number;
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/**
 * Parse one entry as C `xs_strings_to_perms` does: a letter of `n r w b`, then a domid
 * through `strtol(…, 0)` (so `0x5` and octal `010` are accepted), nothing after it.
 * Anything else (`x0`, `b`, `r5x`, empty) is EINVAL.
 */
export function parsePermission(entry: Uint8Array): XsParseResult<XsPermission> {
  const letter = String.fromCharCode(entry[0] ?? 0);
  if (entry.length === 0 || !isXsPermLetter(letter)) {
    return parseError(`permission "${utf8Decode(entry)}" does not start with one of n r w b`);
  }
  const digits = entry.subarray(1);
  const { value, end } = strtol(digits, 0);
  if (end === 0 || end !== digits.length) {
    return parseError(`permission "${utf8Decode(entry)}" does not end with a domid`);
  }
  // C stores the long into an unsigned int and prints it with %d.
  return parseOk({ letter, domid: Number(BigInt.asIntN(32, value)) });
}

/**
 * Format one entry without its NUL (`r5`).
 *
 * @throws RangeError on a bad letter or a domid that is not a 32-bit integer.
 */
export function formatPermission(perm: XsPermission): string {
  if (!isXsPermLetter(perm.letter)) {
    throw new RangeError(
      `Cannot format permission letter ${JSON.stringify(perm.letter)}: it must be one of n r w b`,
    );
  }
  if (!Number.isInteger(perm.domid) || perm.domid < INT32_MIN || perm.domid > INT32_MAX) {
    throw new RangeError(
      `Cannot format permission domid ${perm.domid}: it must be a 32-bit integer`,
    );
  }
  return `${perm.letter}${perm.domid}`;
}

/**
 * Encode a permission list as `perm\0perm\0…` (the GET_PERMS reply, and the tail of a
 * SET_PERMS request).
 *
 * @example
 * encodePermissions([{ letter: 'n', domid: 0 }, { letter: 'r', domid: 5 }]) // "n0\0r5\0"
 */
export function encodePermissions(perms: readonly XsPermission[]): Uint8Array {
  return concatBytes(perms.map((p) => utf8Encode(`${formatPermission(p)}\0`)));
}

/**
 * Parse a list of NUL-terminated entries. At least one entry is required; every entry
 * must parse. Used for GET_PERMS replies (a trailing unterminated entry is EINVAL).
 */
export function parsePermissionList(payload: Uint8Array): XsParseResult<XsPermission[]> {
  const { fields, tail } = splitNulFields(payload);
  if (tail.length > 0) return parseError('permission list ends with an unterminated entry');
  return parsePermissionFields(fields);
}

/** Parse already-split entries (at least one). */
export function parsePermissionFields(
  fields: readonly Uint8Array[],
): XsParseResult<XsPermission[]> {
  if (fields.length === 0)
    return parseError('permission list is empty: an owner entry is required');
  const perms: XsPermission[] = [];
  for (const f of fields) {
    const r = parsePermission(f);
    if (!r.ok) return r;
    perms.push(r.value);
  }
  return parseOk(perms);
}
