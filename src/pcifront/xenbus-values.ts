// SPDX-License-Identifier: MIT
/**
 * Parsers for the values pcifront reads from xenstore (spec/pciback.md §7.1, §9), and the
 * errno it reports for a failure. Every value comes from another domain's tree (or the
 * toolstack's) and is checked here once, with bounds, before the state machine in
 * `xenbus.ts` acts on it.
 *
 * Deviation from Linux, on purpose: the kernel parses with `sscanf`, which ignores
 * trailing text, accepts a sign on `%d`/`%u` and lets `%x` overflow. These parsers
 * accept only what pciback and libxl write (surrounding whitespace aside) and check every
 * number against its range, so a hostile or corrupt value is refused with a message
 * naming it instead of being half-read.
 */
import { XENBUS_STATE, XS_ERRNO, isXenbusState, type XenbusState } from '../abi/index.js';
import { PciAddress } from '../pci/index.js';
import { isXsError } from '../xenstore/client/index.js';

/** `EINVAL`, the errno of every value that does not parse or is out of range. */
export const XENBUS_EINVAL = 22;
/** `EIO`, the errno reported for a failure that carries none. */
export const XENBUS_EIO = 5;

/** Errnos of the client's local error codes (Linux values). */
const LOCAL_ERRNO: Readonly<Record<string, number>> = {
  ETIMEDOUT: 110,
  ECONNRESET: 104,
  EPROTO: 71,
};

/** Longest excerpt of a foreign value quoted in a message. */
const QUOTE_MAX = 40;

/** `"value"` for a message, cut to {@link QUOTE_MAX} characters. */
export function quoteValue(text: string): string {
  const cut = text.length > QUOTE_MAX ? `${text.slice(0, QUOTE_MAX)}...` : text;
  return JSON.stringify(cut);
}

/**
 * A XenBus `state` value as the xenbus core reads it (`xenbus_read_driver_state`): a
 * decimal number 0–8, anything else (missing, not a number, out of range) reads as
 * Unknown (0).
 *
 * @example
 * parseXenbusState('4'); // 4
 * parseXenbusState('banana'); // 0
 */
export function parseXenbusState(text: string | undefined): XenbusState {
  if (text === undefined) return XENBUS_STATE.Unknown;
  const match = /^\s*([0-9]{1,2})\s*$/.exec(text);
  const value = match === null ? Number.NaN : Number(match[1]);
  return isXenbusState(value) ? value : XENBUS_STATE.Unknown;
}

/**
 * A non-negative decimal count (`root_num`, `num_devs`) no larger than `limit`.
 *
 * @throws {SyntaxError} when `text` is not a decimal number.
 * @throws {RangeError} when it is above `limit`.
 * @example
 * parseBoundedCount('2', { what: 'num_devs', limit: 1024 }); // 2
 */
export function parseBoundedCount(
  text: string,
  options: { readonly what: string; readonly limit: number },
): number {
  const match = /^\s*([0-9]{1,10})\s*$/.exec(text);
  if (match === null) {
    throw new SyntaxError(
      `Invalid ${options.what} ${quoteValue(text)}: expected a non-negative decimal number`,
    );
  }
  const value = Number(match[1]);
  if (value > options.limit) {
    throw new RangeError(
      `Invalid ${options.what} ${value}: it is above the limit of ${options.limit}`,
    );
  }
  return value;
}

/**
 * A decimal domain id (`backend-id`): 0 up to `DOMID_FIRST_RESERVED - 1` (0x7fef).
 *
 * @throws {SyntaxError} when `text` is not such a number.
 */
export function parseBackendId(text: string): number {
  const match = /^\s*([0-9]{1,5})\s*$/.exec(text);
  const value = match === null ? Number.NaN : Number(match[1]);
  if (!(value >= 0 && value < 0x7ff0)) {
    throw new SyntaxError(
      `Invalid backend-id ${quoteValue(text)}: expected a decimal domain id (0 to 32751)`,
    );
  }
  return value;
}

/**
 * A guest-visible device address as pciback publishes it in `vdev-N`
 * (`%04x:%02x:%02x.%02x`, the function printed with two digits) and pcifront reads it
 * (`%x:%x:%x.%x`, exactly four fields).
 *
 * @throws {SyntaxError} naming the field that is wrong (a `PciAddressError` for a field
 *   out of range).
 * @example
 * parseVdev('0000:00:01.00').toString(); // '0000:00:01.0'
 */
export function parseVdev(text: string): PciAddress {
  const match =
    /^\s*([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,8})\.([0-9a-fA-F]{1,8})\s*$/.exec(
      text,
    );
  if (match === null) {
    throw new SyntaxError(
      `Invalid vdev ${quoteValue(text)}: expected four hex numbers "DDDD:BB:SS.F"`,
    );
  }
  const [domain, bus, slot, fn] = match.slice(1, 5).map((part) => Number.parseInt(part, 16));
  // PciAddress checks each field against its range and names the one that is wrong.
  return new PciAddress(domain ?? -1, bus ?? -1, slot ?? -1, fn ?? -1);
}

/**
 * The positive errno to report for `err` (the `"<errno> <message>"` of the error node):
 * the errno of a xenstore error name, of the client's local codes, a numeric `errno`
 * property (either sign), {@link XENBUS_EINVAL} for parse and range errors, else
 * {@link XENBUS_EIO}.
 */
export function errnoOf(err: unknown): number {
  if (isXsError(err)) {
    const code: string = err.code;
    if (Object.hasOwn(XS_ERRNO, code)) return XS_ERRNO[code as keyof typeof XS_ERRNO];
    return LOCAL_ERRNO[code] ?? XENBUS_EIO;
  }
  if (typeof err === 'object' && err !== null && 'errno' in err) {
    const errno = err.errno;
    if (typeof errno === 'number' && Number.isInteger(errno) && errno !== 0) {
      return Math.abs(errno);
    }
  }
  if (err instanceof SyntaxError || err instanceof RangeError) return XENBUS_EINVAL;
  return XENBUS_EIO;
}

/** The message of `err` for a log line or an error node. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
