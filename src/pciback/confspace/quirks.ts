// SPDX-License-Identifier: MIT
/**
 * User-added pass-through fields (`conf_space_quirks.c` and the sysfs `quirks`
 * attribute of `pci_stub.c`, spec §5.9 and §6.5): a quirk makes one register guest
 * read/write, in any mode, until the device is released from the guest.
 */
import { PciAddress, PciAddressError } from '../../pci/address.js';
import type { ConfigAccessSize } from '../../platform/types.js';
import { rawRead, rawWrite } from './access.js';
import type { ConfigField } from './field.js';

/** Highest register a quirk may name (`reg > 0xfff` is refused). */
export const QUIRK_REG_MAX = 0xfff;

/** A quirk field as listed: absolute offset, size and the (informational) mask. */
export interface QuirkField {
  readonly byteOffset: number;
  readonly sizeBytes: ConfigAccessSize;
  readonly mask: number;
}

/** The register part of a quirk: `REG:SIZE:MASK`. */
export interface QuirkFieldSpec {
  readonly reg: number;
  /** As written; {@link checkQuirkSize} validates it. */
  readonly sizeBytes: number;
  readonly mask: number;
}

/** A whole sysfs `quirks` line: `DDDD:BB:DD.F-REG:SIZE:MASK`. */
export interface QuirkSpec extends QuirkFieldSpec {
  readonly address: PciAddress;
}

/**
 * The first check of `pcistub_reg_add`, made before the device is looked up:
 * `reg <= 0xfff` and, for sizes below 4, a mask that fits in the size.
 *
 * @throws RangeError naming the register or the mask.
 */
export function checkQuirkRegAndMask(spec: QuirkFieldSpec): void {
  const { reg, sizeBytes, mask } = spec;
  if (!Number.isInteger(reg) || reg < 0 || reg > QUIRK_REG_MAX) {
    throw new RangeError(
      `Invalid quirk register "0x${hex(reg)}": must be at most 0x${hex(QUIRK_REG_MAX)}`,
    );
  }
  if (!Number.isInteger(mask) || mask < 0 || mask > 0xffffffff) {
    throw new RangeError(`Invalid quirk mask "${String(mask)}": must be a 32-bit value`);
  }
  // Sizes 0..3 are checked (C `size < 4`), so size 3 and 0 can still fail here.
  if (Number.isInteger(sizeBytes) && sizeBytes >= 0 && sizeBytes < 4) {
    if (Math.floor(mask / 2 ** (sizeBytes * 8)) !== 0) {
      throw new RangeError(
        `Invalid quirk mask "0x${hex(mask)}": it does not fit in ${sizeBytes} byte(s)`,
      );
    }
  }
}

/**
 * The second check, made after the device lookup (`xen_pcibk_config_quirks_add_field`):
 * the size must be 1, 2 or 4.
 *
 * @throws RangeError naming the size.
 */
export function checkQuirkSize(sizeBytes: number): asserts sizeBytes is ConfigAccessSize {
  if (sizeBytes !== 1 && sizeBytes !== 2 && sizeBytes !== 4) {
    throw new RangeError(`Invalid quirk size "${String(sizeBytes)}": must be 1, 2 or 4`);
  }
}

/**
 * A dynamic raw read/write field (no init/reset/release). No alignment check, as in the
 * original: a misaligned quirk answers the PCI core's "bad register number" (-2).
 */
export function quirkField(reg: number, sizeBytes: ConfigAccessSize, mask: number): ConfigField {
  return Object.freeze({
    name: 'quirk',
    byteOffset: reg,
    sizeBytes,
    mask: mask >>> 0,
    dynamic: true,
    readsRaw: true,
    read: (ctx, absOffset) => rawRead(ctx.dev, absOffset, sizeBytes),
    write: (ctx, absOffset, value) => rawWrite(ctx.dev, absOffset, sizeBytes, value),
  } satisfies ConfigField);
}

const HEX = /^(?:0[xX])?([0-9a-fA-F]{1,8})$/;

function hex(value: number): string {
  return Number.isFinite(value) ? value.toString(16) : String(value);
}

function parseHexPart(text: string, part: string, whole: string): number {
  const match = HEX.exec(text);
  if (match?.[1] === undefined) {
    throw new SyntaxError(
      `Invalid quirk "${whole}": ${part} "${text}" is not a hexadecimal number of at most 8 digits`,
    );
  }
  return Number.parseInt(match[1], 16);
}

/**
 * Parse `REG:SIZE:MASK` (hex, optional `0x`), the register part of a quirk (and the
 * CLI's `--quirk` value). Syntax only; see {@link checkQuirkRegAndMask} and
 * {@link checkQuirkSize} for the range rules.
 *
 * @throws SyntaxError naming the part that is wrong.
 * @example
 * parseQuirkFieldSpec('e0:4:ffffffff'); // { reg: 0xe0, sizeBytes: 4, mask: 0xffffffff }
 */
export function parseQuirkFieldSpec(text: string): QuirkFieldSpec {
  const parts = text.trim().split(':');
  if (parts.length !== 3) {
    throw new SyntaxError(
      `Invalid quirk "${text}": expected REG:SIZE:MASK in hex, got ${parts.length} part(s)`,
    );
  }
  const [reg = '', size = '', mask = ''] = parts;
  return {
    reg: parseHexPart(reg, 'register', text),
    sizeBytes: parseHexPart(size, 'size', text),
    mask: parseHexPart(mask, 'mask', text),
  };
}

/**
 * Parse a sysfs `quirks` line, `DDDD:BB:DD.F-REG:SIZE:MASK` or `BB:DD.F-REG:SIZE:MASK`
 * (all hex, surrounding whitespace allowed; domain 0 when omitted), then apply the
 * checks the original makes before looking the device up ({@link checkQuirkRegAndMask}).
 * The size rule ({@link checkQuirkSize}) comes after the lookup in the original, so an
 * unknown device with a bad size answers -ENODEV there; `addQuirkField` applies it.
 *
 * @throws SyntaxError naming the part that is wrong; RangeError for register or mask.
 * @example
 * const q = parseQuirkSpec('0000:03:00.0-e0:4:ffffffff');
 * q.address.toString(); // '0000:03:00.0'
 * q.reg; // 0xe0
 */
export function parseQuirkSpec(text: string): QuirkSpec {
  const trimmed = text.trim();
  const dash = trimmed.indexOf('-');
  if (dash < 0) {
    throw new SyntaxError(
      `Invalid quirk "${text}": expected DDDD:BB:DD.F-REG:SIZE:MASK, the "-" is missing`,
    );
  }
  let address: PciAddress;
  try {
    address = PciAddress.parse(trimmed.slice(0, dash));
  } catch (err) {
    if (err instanceof PciAddressError) {
      throw new SyntaxError(`Invalid quirk "${text}": the address is wrong: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
  const field = parseQuirkFieldSpec(trimmed.slice(dash + 1));
  checkQuirkRegAndMask(field);
  return { address, ...field };
}
