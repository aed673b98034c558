// SPDX-License-Identifier: MIT
/**
 * Payload encodings per message type and their NUL rules (spec/xenstore.md §1.5, §3.6,
 * §7, §9, §10, §11.1). `encode*` build what our side sends and follow the client rules of
 * §11.1 (every string NUL-terminated, never an empty payload). `parse*` read what a peer
 * sent and never throw: a malformed payload gives `{ ok: false, error: 'EINVAL' }`, the
 * recommended answer where the daemons disagree (§11 #1).
 */
import { isXsErrorName, type XsErrorName } from '../../abi/index.js';
import {
  encodePermissions,
  parsePermissionFields,
  parsePermissionList,
  type XsPermission,
} from './permissions.js';
import { parseError, parseOk, type XsParseResult } from './result.js';
import {
  atoi,
  concatBytes,
  decodeExactStrings,
  decodeNulStrings,
  decodeOneArg,
  encodeNulStrings,
  parseStrictDecimal,
  splitNulFields,
  utf8Decode,
  utf8Encode,
} from './strings.js';

// ---------------------------------------------------------------------------------------
// One path: READ, MKDIR, RM, DIRECTORY, GET_PERMS (and RELEASE/RESUME/GET_DOMAIN_PATH)
// ---------------------------------------------------------------------------------------

/** `path\0`: the request of READ, MKDIR, RM, DIRECTORY and GET_PERMS. */
export function encodePathRequest(path: string): Uint8Array {
  return encodeNulStrings([path]);
}

/**
 * Parse `path\0` ("onearg"): EINVAL when empty, without NUL or with bytes after the NUL
 * (§12 case 8). The path itself is validated by the store (§2).
 */
export function parsePathRequest(payload: Uint8Array): XsParseResult<string> {
  return decodeOneArg(payload);
}

// ---------------------------------------------------------------------------------------
// READ / WRITE
// ---------------------------------------------------------------------------------------

/** A WRITE request: the value is raw bytes and may contain NULs. */
export interface XsWriteRequest {
  readonly path: string;
  readonly value: Uint8Array;
}

/** `path\0value`: the value is not terminated (§1.5). A string value is UTF-8 encoded. */
export function encodeWriteRequest(path: string, value: Uint8Array | string): Uint8Array {
  const bytes = typeof value === 'string' ? utf8Encode(value) : value;
  return concatBytes([encodeNulStrings([path]), bytes]);
}

/**
 * Parse `path\0value`: the value is every byte after the first NUL (`path\0` = empty
 * value). No NUL at all is EINVAL. The value is copied.
 */
export function parseWriteRequest(payload: Uint8Array): XsParseResult<XsWriteRequest> {
  const nul = payload.indexOf(0);
  if (nul < 0) return parseError('WRITE payload has no NUL after the path');
  return parseOk({ path: utf8Decode(payload.subarray(0, nul)), value: payload.slice(nul + 1) });
}

/**
 * The READ reply payload is the raw value, no NUL added (§1.5), so this is the identity;
 * it exists to make the rule explicit at call sites.
 */
export function encodeReadReply(value: Uint8Array): Uint8Array {
  return value;
}

// ---------------------------------------------------------------------------------------
// DIRECTORY / DIRECTORY_PART
// ---------------------------------------------------------------------------------------

/** `child\0child\0…`, empty for no children. */
export function encodeDirectoryReply(names: readonly string[]): Uint8Array {
  return encodeNulStrings(names);
}

/** Parse a DIRECTORY reply; an unterminated last name is EINVAL. */
export function parseDirectoryReply(payload: Uint8Array): XsParseResult<string[]> {
  return decodeNulStrings(payload);
}

/** A DIRECTORY_PART request. */
export interface XsDirectoryPartRequest {
  readonly path: string;
  /** Byte offset into the concatenated `name\0name\0…` list. */
  readonly offset: number;
}

/** `path\0offset\0` (offset in decimal). */
export function encodeDirectoryPartRequest(path: string, offset: number): Uint8Array {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(
      `Cannot encode DIRECTORY_PART offset ${offset}: it must be a non-negative integer`,
    );
  }
  return encodeNulStrings([path, String(offset)]);
}

/**
 * Parse `path\0offset\0`: exactly two NUL-terminated strings, else EINVAL (C). The offset
 * goes through `atoi` like C (junk gives 0); a negative offset is EINVAL (deviation: C
 * would use it as given).
 */
export function parseDirectoryPartRequest(
  payload: Uint8Array,
): XsParseResult<XsDirectoryPartRequest> {
  const { fields, tail } = splitNulFields(payload);
  const [path, offset] = fields;
  if (fields.length !== 2 || tail.length > 0 || path === undefined || offset === undefined) {
    return parseError('DIRECTORY_PART payload must be exactly "path\\0offset\\0"');
  }
  const value = atoi(offset);
  if (value < 0) return parseError(`DIRECTORY_PART offset ${value} is negative`);
  return parseOk({ path: utf8Decode(path), offset: value });
}

/** A DIRECTORY_PART reply chunk. */
export interface XsDirectoryPartReply {
  /** The node's generation, in decimal as sent; compare between chunks (§3.6). */
  readonly generation: string;
  /** The list bytes of this chunk (`name\0…`), without the final end marker NUL. */
  readonly list: Uint8Array;
  /** The names in `list` (the first may be a tail when the offset was mid-name). */
  readonly names: readonly string[];
  /** True when this chunk reaches the end of the list (it ended `\0\0`, or was empty). */
  readonly end: boolean;
}

/**
 * Encode `gen\0` + list bytes + an extra `\0` when the chunk reaches the end (§3.6).
 * Choosing the chunk (names while they fit) is the store's job.
 */
export function encodeDirectoryPartReply(
  generation: string | number | bigint,
  chunk: { readonly list: Uint8Array; readonly end: boolean },
): Uint8Array {
  const parts = [encodeNulStrings([String(generation)]), chunk.list];
  if (chunk.end) parts.push(new Uint8Array(1));
  return concatBytes(parts);
}

/** Parse a DIRECTORY_PART reply the way libxenstore reads it (§3.6). */
export function parseDirectoryPartReply(payload: Uint8Array): XsParseResult<XsDirectoryPartReply> {
  const nul = payload.indexOf(0);
  if (nul < 0) return parseError('DIRECTORY_PART reply has no generation');
  const generation = utf8Decode(payload.subarray(0, nul));
  const rest = payload.subarray(nul + 1);
  let list = rest;
  let end = false;
  if (rest.length === 0) {
    end = true;
  } else if (rest.length === 1 && rest[0] === 0) {
    list = rest.subarray(0, 0);
    end = true;
  } else if (rest.length >= 2 && rest[rest.length - 1] === 0 && rest[rest.length - 2] === 0) {
    list = rest.subarray(0, rest.length - 1);
    end = true;
  }
  const names = decodeNulStrings(list);
  if (!names.ok) return names;
  return parseOk({ generation, list: list.slice(), names: names.value, end });
}

// ---------------------------------------------------------------------------------------
// GET_PERMS / SET_PERMS
// ---------------------------------------------------------------------------------------

/** The GET_PERMS reply: `perm\0perm\0…`, owner first. */
export function encodeGetPermsReply(perms: readonly XsPermission[]): Uint8Array {
  return encodePermissions(perms);
}

/** Parse a GET_PERMS reply: at least one entry, all terminated and well formed. */
export function parseGetPermsReply(payload: Uint8Array): XsParseResult<XsPermission[]> {
  return parsePermissionList(payload);
}

/** A SET_PERMS request. */
export interface XsSetPermsRequest {
  readonly path: string;
  /** Owner first; at least one. */
  readonly perms: readonly XsPermission[];
}

/** `path\0perm\0[perm\0]…`, every entry NUL-terminated (§11.1). */
export function encodeSetPermsRequest(path: string, perms: readonly XsPermission[]): Uint8Array {
  if (perms.length === 0)
    throw new RangeError(`Cannot encode SET_PERMS of "${path}": no permission given`);
  return concatBytes([encodeNulStrings([path]), encodePermissions(perms)]);
}

/**
 * Parse `path\0perm\0…` as C counts NULs: a final entry without its NUL is silently
 * dropped; at least one entry is required and each must parse, else EINVAL (§12 case 27).
 */
export function parseSetPermsRequest(payload: Uint8Array): XsParseResult<XsSetPermsRequest> {
  const { fields } = splitNulFields(payload);
  const [path, ...entries] = fields;
  if (path === undefined) return parseError('SET_PERMS payload has no NUL after the path');
  const perms = parsePermissionFields(entries);
  if (!perms.ok) return perms;
  return parseOk({ path: utf8Decode(path), perms: perms.value });
}

// ---------------------------------------------------------------------------------------
// WATCH / UNWATCH / WATCH_EVENT
// ---------------------------------------------------------------------------------------

/** A watch registration or event: a path (as the client wrote it) and a token. */
export interface XsWatch {
  readonly path: string;
  /** May be empty. */
  readonly token: string;
}

/** `wpath\0token\0`: the WATCH and UNWATCH request, and the WATCH_EVENT payload. */
export function encodeWatch(path: string, token: string): Uint8Array {
  return encodeNulStrings([path, token]);
}

/**
 * Parse `wpath\0token\0`: exactly two NUL-terminated strings and nothing after them
 * (O's rule, recommended in §11 #40: a third string or trailing bytes are EINVAL; C
 * ignores unterminated trailing bytes). Used for WATCH, UNWATCH and WATCH_EVENT.
 */
export function parseWatch(payload: Uint8Array): XsParseResult<XsWatch> {
  const r = decodeExactStrings(payload, 2);
  if (!r.ok) return r;
  const [path = '', token = ''] = r.value;
  return parseOk({ path, token });
}

// ---------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------

/** TRANSACTION_START request: `\0` (never an empty payload: O stalls on len 0, §11.1). */
export function encodeTransactionStartRequest(): Uint8Array {
  return new Uint8Array(1);
}

/** TRANSACTION_START reply: `<id>\0`, unsigned decimal, never 0. */
export function encodeTransactionStartReply(txId: number): Uint8Array {
  if (!Number.isInteger(txId) || txId <= 0 || txId > 0xffffffff) {
    throw new RangeError(`Cannot encode transaction id ${txId}: it must be a non-zero u32`);
  }
  return encodeNulStrings([String(txId)]);
}

/** Parse `<id>\0`: onearg, strict decimal, non-zero u32. */
export function parseTransactionStartReply(payload: Uint8Array): XsParseResult<number> {
  const nul = payload.indexOf(0);
  if (payload.length === 0 || nul !== payload.length - 1) {
    return parseError('TRANSACTION_START reply must be one NUL-terminated decimal');
  }
  const id = parseStrictDecimal(payload.subarray(0, nul), 0xffffffff);
  if (!id.ok) return id;
  if (id.value === 0) return parseError('TRANSACTION_START reply names transaction 0');
  return id;
}

/** TRANSACTION_END request: `T\0` to commit, `F\0` to abort. */
export function encodeTransactionEndRequest(commit: boolean): Uint8Array {
  return utf8Encode(commit ? 'T\0' : 'F\0');
}

/**
 * Parse the TRANSACTION_END argument: `T\0`/`F\0`, and `T`/`F` without the NUL (O;
 * recommended as lenient in §11 #24). Anything else (`Tx\0`, `X\0`, `T\0junk`) is EINVAL.
 * Returns true for commit.
 */
export function parseTransactionEndRequest(payload: Uint8Array): XsParseResult<boolean> {
  const letter = payload[0];
  const okLength = payload.length === 1 || (payload.length === 2 && payload[1] === 0);
  if (okLength && letter === 0x54) return parseOk(true);
  if (okLength && letter === 0x46) return parseOk(false);
  return parseError('TRANSACTION_END payload must be "T\\0" or "F\\0"');
}

// ---------------------------------------------------------------------------------------
// Domains
// ---------------------------------------------------------------------------------------

/** An INTRODUCE request. */
export interface XsIntroduceRequest {
  readonly domid: number;
  /** Guest frame of the ring page (C ignores it and maps grant 1; O maps it). */
  readonly gfn: number;
  /** The guest's unbound event-channel port, > 0. */
  readonly port: number;
}

/** `domid\0gfn\0port\0`. */
export function encodeIntroduceRequest(req: XsIntroduceRequest): Uint8Array {
  for (const [name, v] of Object.entries(req) as [string, number][]) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(
        `Cannot encode INTRODUCE ${name} ${v}: it must be a non-negative integer`,
      );
    }
  }
  return encodeNulStrings([String(req.domid), String(req.gfn), String(req.port)]);
}

/**
 * Parse `domid\0gfn\0port\0`: at least three NUL-terminated strings (C; extra strings
 * are ignored). domid and port go through `atoi` like C, port ≤ 0 is EINVAL; the gfn must
 * be a strict unsigned decimal (deviation: C ignores it, O rejects a bad one).
 */
export function parseIntroduceRequest(payload: Uint8Array): XsParseResult<XsIntroduceRequest> {
  const { fields } = splitNulFields(payload);
  const [domid, gfn, port] = fields;
  if (domid === undefined || gfn === undefined || port === undefined) {
    return parseError(`INTRODUCE needs "domid\\0gfn\\0port\\0", got ${fields.length} strings`);
  }
  const frame = parseStrictDecimal(gfn, Number.MAX_SAFE_INTEGER);
  if (!frame.ok) return parseError(`INTRODUCE gfn: ${frame.detail}`);
  const p = atoi(port);
  if (p <= 0) return parseError(`INTRODUCE port ${p} is not positive`);
  return parseOk({ domid: atoi(domid), gfn: frame.value, port: p });
}

/** `domid\0`: RELEASE, RESUME, GET_DOMAIN_PATH and IS_DOMAIN_INTRODUCED requests. */
export function encodeDomidRequest(domid: number): Uint8Array {
  if (!Number.isInteger(domid) || domid < 0 || domid > 0xffffffff) {
    throw new RangeError(`Cannot encode domid ${domid}: it must be a u32`);
  }
  return encodeNulStrings([String(domid)]);
}

/**
 * Parse `domid\0` as C does for RELEASE, RESUME and GET_DOMAIN_PATH: onearg (else EINVAL),
 * then `atoi` taken as `%u` ("abc" → 0, "-1" → 4294967295, §11 #30). Rejecting domid 0
 * (RELEASE/RESUME) is the caller's job.
 */
export function parseDomidRequest(payload: Uint8Array): XsParseResult<number> {
  const r = decodeOneArg(payload);
  if (!r.ok) return r;
  return parseOk(atoi(payload.subarray(0, payload.length - 1)) >>> 0);
}

/**
 * Parse the IS_DOMAIN_INTRODUCED `domid\0` strictly (recommended in §11 #29: "abc" is
 * EINVAL rather than C's domain 0). Decimal digits only, at most 0xffffffff.
 */
export function parseStrictDomidRequest(payload: Uint8Array): XsParseResult<number> {
  const r = decodeOneArg(payload);
  if (!r.ok) return r;
  return parseStrictDecimal(payload.subarray(0, payload.length - 1), 0xffffffff);
}

/** A SET_TARGET request: `domid` may then act for `target`. */
export interface XsSetTargetRequest {
  readonly domid: number;
  readonly target: number;
}

/** `domid\0tdomid\0`. */
export function encodeSetTargetRequest(domid: number, target: number): Uint8Array {
  return concatBytes([encodeDomidRequest(domid), encodeDomidRequest(target)]);
}

/** Parse `domid\0tdomid\0`: at least two strings (C), `atoi` (`" 5"` → 5). */
export function parseSetTargetRequest(payload: Uint8Array): XsParseResult<XsSetTargetRequest> {
  const { fields } = splitNulFields(payload);
  const [domid, target] = fields;
  if (domid === undefined || target === undefined) {
    return parseError(`SET_TARGET needs "domid\\0target\\0", got ${fields.length} strings`);
  }
  return parseOk({ domid: atoi(domid) >>> 0, target: atoi(target) >>> 0 });
}

/** GET_DOMAIN_PATH reply: `/local/domain/<domid>\0`, domid printed `%u`. */
export function encodeGetDomainPathReply(domid: number): Uint8Array {
  return encodeNulStrings([`/local/domain/${domid >>> 0}`]);
}

/** Parse a reply that is one NUL-terminated string (GET_DOMAIN_PATH, CONTROL text). */
export function parseStringReply(payload: Uint8Array): XsParseResult<string> {
  return decodeOneArg(payload);
}

/** `T\0` or `F\0` (IS_DOMAIN_INTRODUCED reply). */
export function encodeBoolReply(value: boolean): Uint8Array {
  return utf8Encode(value ? 'T\0' : 'F\0');
}

/** Parse `T\0` / `F\0`; anything else is EINVAL. */
export function parseBoolReply(payload: Uint8Array): XsParseResult<boolean> {
  if (payload.length === 2 && payload[1] === 0) {
    if (payload[0] === 0x54) return parseOk(true);
    if (payload[0] === 0x46) return parseOk(false);
  }
  return parseError('reply must be "T\\0" or "F\\0"');
}

// ---------------------------------------------------------------------------------------
// OK, ERROR, RESET_WATCHES, CONTROL
// ---------------------------------------------------------------------------------------

/** True when `payload` is exactly `OK\0`. */
export function isOkReply(payload: Uint8Array): boolean {
  return payload.length === 3 && payload[0] === 0x4f && payload[1] === 0x4b && payload[2] === 0;
}

/** RESET_WATCHES request: `\0` (never empty, §11.1). */
export function encodeResetWatchesRequest(): Uint8Array {
  return new Uint8Array(1);
}

/** ERROR payload: the name plus a NUL (§9.1). */
export function encodeErrorPayload(name: XsErrorName): Uint8Array {
  return encodeNulStrings([name]);
}

/** A decoded ERROR payload. */
export interface XsErrorReply {
  /** The name as sent (`EQUOTA` from oxenstored, or garbage). */
  readonly name: string;
  /** The `xsd_errors` name; unknown or malformed names map to EINVAL like libxenstore. */
  readonly error: XsErrorName;
}

/** Parse an ERROR payload. Never fails: anything unrecognised reads as EINVAL (§11.1). */
export function parseErrorPayload(payload: Uint8Array): XsErrorReply {
  const nul = payload.indexOf(0);
  const name = utf8Decode(nul < 0 ? payload : payload.subarray(0, nul));
  const wellFormed = nul === payload.length - 1;
  return { name, error: wellFormed && isXsErrorName(name) ? name : 'EINVAL' };
}

/** A CONTROL request: a command and its arguments. */
export interface XsControlRequest {
  readonly command: string;
  readonly args: readonly string[];
}

/** `cmd\0[arg\0]…`. */
export function encodeControlRequest(command: string, args: readonly string[] = []): Uint8Array {
  return encodeNulStrings([command, ...args]);
}

/** Parse `cmd\0[arg\0]…`: an empty or unterminated command, or a trailing unterminated argument, is EINVAL (§10). */
export function parseControlRequest(payload: Uint8Array): XsParseResult<XsControlRequest> {
  const r = decodeNulStrings(payload);
  if (!r.ok) return r;
  const [command, ...args] = r.value;
  if (command === undefined || command === '') return parseError('CONTROL command is empty');
  return parseOk({ command, args });
}
