// SPDX-License-Identifier: MIT
/** The error every {@link XsClient} request rejects with. */
import type { XsErrorName } from '../../abi/index.js';
import { PcibackError } from '../../errors.js';

/**
 * Codes of {@link XsError}: an `xsd_errors` name the daemon answered (spec/xenstore.md
 * §9.1; unknown names such as oxenstored's `EQUOTA` read as `EINVAL` like libxenstore),
 * or a local condition: `ETIMEDOUT` (no reply in time), `ECONNRESET` (the transport closed
 * with the request pending, or was closed before), `EPROTO` (the reply was malformed or
 * of the wrong type).
 */
export type XsErrorCode = XsErrorName | 'ETIMEDOUT' | 'ECONNRESET' | 'EPROTO';

/** Construction details of an {@link XsError}. */
export interface XsErrorOptions {
  /** The error name exactly as the daemon sent it, when it differs from `code`. */
  readonly wireName?: string;
  readonly cause?: unknown;
}

/**
 * A failed xenstore request. `code` is the xenstore error name (`ENOENT`, `EAGAIN`, …) or
 * one of the local codes of {@link XsErrorCode}.
 *
 * @example
 * try { await xs.read('/missing'); } catch (e) { if (isXsError(e, 'ENOENT')) { … } }
 */
export class XsError extends PcibackError {
  declare readonly code: XsErrorCode;
  /** The name the daemon sent (`EQUOTA`), or `code` for local errors. */
  readonly wireName: string;

  constructor(code: XsErrorCode, message: string, options: XsErrorOptions = {}) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'XsError';
    this.wireName = options.wireName ?? code;
  }
}

/** True when `err` is an {@link XsError} (optionally with the given code). */
export function isXsError(err: unknown, code?: XsErrorCode): err is XsError {
  return err instanceof XsError && (code === undefined || err.code === code);
}
