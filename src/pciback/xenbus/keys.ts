// SPDX-License-Identifier: MIT
/**
 * Parsers and formatters of the xenstore keys of spec §7.1 and §7.6. The parsers take a
 * value read once from xenstore and never throw: they return `undefined` when the value
 * does not have the expected shape.
 *
 * They are stricter than the original's `sscanf`: the whole value must match (no leading
 * blanks, no trailing text), hex numbers take no `0x` and at most 8 digits, decimals at most
 * 10. Every writer (libxl, xl, pcifront, pciback) writes exactly these shapes.
 */
import { XS_ERRNO } from '../../abi/index.js';
import { PcibackError } from '../../errors.js';
import type { PciAddress } from '../../pci/index.js';
import { isXsError } from '../../xenstore/client/index.js';

/** Positive Linux errno values the backend writes in `error` nodes. */
export const ERRNO = {
  ENOENT: 2,
  EIO: 5,
  ENODEV: 19,
  ENOMEM: 12,
  EFAULT: 14,
  EINVAL: 22,
  ERANGE: 34,
  EPROTO: 71,
  ECONNRESET: 104,
  ETIMEDOUT: 110,
} as const;

/** Four numbers of a `%x:%x:%x.%x` key (`dev-N`, `vdev-N`), not range-checked yet. */
export interface PciKeyFields {
  readonly domain: number;
  readonly bus: number;
  readonly slot: number;
  readonly func: number;
}

const DECIMAL = /^-?[0-9]{1,10}$/;
const UNSIGNED = /^[0-9]{1,10}$/;
const HEX = '([0-9a-fA-F]{1,8})';
const PCI_FIELDS = new RegExp(`^${HEX}:${HEX}:${HEX}\\.${HEX}$`);
const ROOT_FIELDS = new RegExp(`^${HEX}:${HEX}$`);
const VDEVFN = /^[0-9a-fA-F]{1,2}$/;

/** `%d` into a C int: a decimal in -2^31..2^31-1, else `undefined`. */
export function parseInt32(text: string): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const n = Number(text);
  return n >= -0x80000000 && n <= 0x7fffffff ? n : undefined;
}

/** `%u` into a C unsigned int: a decimal in 0..2^32-1, else `undefined`. */
export function parseUint32(text: string): number | undefined {
  if (!UNSIGNED.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffffffff ? n : undefined;
}

/**
 * `sscanf(value, "%x:%x:%x.%x")` with all four fields matched (§7.2), as `dev-N` and
 * `vdev-N` are read.
 */
export function parsePciKey(text: string): PciKeyFields | undefined {
  const m = PCI_FIELDS.exec(text);
  if (m === null) return undefined;
  const [domain, bus, slot, func] = m.slice(1).map((h) => Number.parseInt(h, 16));
  if (domain === undefined || bus === undefined || slot === undefined || func === undefined) {
    return undefined;
  }
  return { domain, bus, slot, func };
}

/** `sscanf(value, "%x:%x")` with both fields matched: a `root-K` value (§7.6). */
export function parseRootKey(text: string): { domain: number; bus: number } | undefined {
  const m = ROOT_FIELDS.exec(text);
  if (m === null) return undefined;
  const [domain, bus] = m.slice(1).map((h) => Number.parseInt(h, 16));
  if (domain === undefined || bus === undefined) return undefined;
  return { domain, bus };
}

/**
 * A `vdevfn-N` value as libxl writes it: the devfn in hex without prefix, only when
 * non-zero (peers.md §1.3). Returns the devfn 1..0xff, `null` for "0" (libxl's "no
 * request"), `undefined` when the value is not such a number. xapi writes decimal; a
 * decimal value reads as hex here, so a toolstack writing decimal must not be used.
 */
export function parseVdevfn(text: string): number | null | undefined {
  if (!VDEVFN.test(text)) return undefined;
  const devfn = Number.parseInt(text, 16);
  return devfn === 0 ? null : devfn;
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

/** `vdev-N` = `%04x:%02x:%02x.%02x` (function with 2 digits, §7.6). */
export function formatVdev(address: PciAddress): string {
  return `${hex(address.domain, 4)}:${hex(address.bus, 2)}:${hex(address.device, 2)}.${hex(address.fn, 2)}`;
}

/** `root-K` = `%04x:%02x` (§7.6). */
export function formatRoot(domain: number, bus: number): string {
  return `${hex(domain, 4)}:${hex(bus, 2)}`;
}

/** `(%04x:%02x:%02x.%d)` as in the original's "Couldn't locate PCI device" message. */
export function formatPciKeyFields(f: PciKeyFields): string {
  return `${hex(f.domain, 4)}:${hex(f.bus, 2)}:${hex(f.slot, 2)}.${f.func}`;
}

/** A failed step with the positive errno the original would pass to `xenbus_dev_fatal`. */
export class XenbusStepError extends PcibackError {
  /** Positive Linux errno. */
  readonly errno: number;

  constructor(errno: number, message: string, options?: { cause?: unknown }) {
    super('XENBUS_STEP_FAILED', message, options);
    this.name = 'XenbusStepError';
    this.errno = errno;
  }
}

/**
 * The positive errno of a failure: an {@link XenbusStepError}'s, a xenstore error's
 * (`ENOENT` → 2, local `ETIMEDOUT` → 110, ...), else EIO.
 */
export function errnoOf(err: unknown): number {
  if (err instanceof XenbusStepError) return err.errno;
  if (isXsError(err)) {
    const code = err.code;
    if (Object.hasOwn(XS_ERRNO, code)) return XS_ERRNO[code as keyof typeof XS_ERRNO];
    if (code === 'ETIMEDOUT' || code === 'ECONNRESET' || code === 'EPROTO') return ERRNO[code];
  }
  return ERRNO.EIO;
}

/** A short single-line rendering of a value a peer wrote, for messages and logs. */
export function quoteForMessage(text: string, maxChars = 64): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean.length > maxChars ? `${clean.slice(0, maxChars)}...` : clean;
}
