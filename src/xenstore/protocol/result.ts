// SPDX-License-Identifier: MIT
/**
 * The typed outcome of parsing bytes a peer sent. Parsers in this folder never throw on
 * hostile input: they return `{ ok: false, error }` with the `xsd_errors` name the daemon
 * answers (spec/xenstore.md §1.5, §9.2), so a server can reply `ERROR "<name>\0"` and a
 * client can report the reply as malformed.
 */
import type { XsErrorName } from '../../abi/index.js';

/** A successfully parsed value. */
export interface XsParseOk<T> {
  readonly ok: true;
  readonly value: T;
}

/** A rejected input: the error name to answer with, plus a human-readable reason. */
export interface XsParseError {
  readonly ok: false;
  /** The `xsd_errors` name a daemon sends for this input (almost always `EINVAL`). */
  readonly error: XsErrorName;
  /** Why the input was rejected, for logs (never sent on the wire). */
  readonly detail: string;
}

/** Result of a payload parser. */
export type XsParseResult<T> = XsParseOk<T> | XsParseError;

/** Build a success result. */
export function parseOk<T>(value: T): XsParseOk<T> {
  return { ok: true, value };
}

/** Build a failure result (`EINVAL` unless another name is given). */
export function parseError(detail: string, error: XsErrorName = 'EINVAL'): XsParseError {
  return { ok: false, error, detail };
}
