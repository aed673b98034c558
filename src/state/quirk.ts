// SPDX-License-Identifier: MIT
/**
 * The text form of a quirk, as pciback's sysfs `quirks` takes it (spec/pciback.md §6.5):
 * `DDDD:BB:SS.F-REG:SIZE:MASK` or `BB:SS.F-REG:SIZE:MASK`, all hex.
 */
import { PcibackError } from '../errors.js';
import { PciAddress } from '../pci/address.js';
import { STATE_ERROR, type Quirk } from './types.js';
import { parseOrThrow, quirkSchema } from './validate.js';

/** A parsed quirk line: the device and the quirk. */
export interface QuirkSpec {
  readonly address: PciAddress;
  readonly quirk: Quirk;
}

const QUIRK_PATTERN = /^([^-\s]+)-([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,8})$/;

/**
 * Parse `DDDD:BB:SS.F-REG:SIZE:MASK` (hex; surrounding whitespace allowed, as sysfs).
 * Throws a `STATE_INVALID` `PcibackError` naming the part that is wrong.
 *
 * @example
 * parseQuirkSpec('0000:03:00.0-e0:2:ffff');
 * // { address: PciAddress 0000:03:00.0, quirk: { reg: 0xe0, size: 2, mask: 0xffff } }
 */
export function parseQuirkSpec(text: string): QuirkSpec {
  const match = QUIRK_PATTERN.exec(text.trim());
  const action = `Cannot parse quirk "${text}"`;
  if (match === null) {
    throw new PcibackError(
      STATE_ERROR.invalid,
      `${action}: expected DDDD:BB:SS.F-REG:SIZE:MASK in hex`,
    );
  }
  const [, bdf = '', reg = '', size = '', mask = ''] = match;
  let address: PciAddress;
  try {
    address = PciAddress.parse(bdf);
  } catch (err) {
    throw new PcibackError(STATE_ERROR.invalid, `${action}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const quirk = parseOrThrow(
    quirkSchema,
    {
      reg: Number.parseInt(reg, 16),
      size: Number.parseInt(size, 16),
      mask: Number.parseInt(mask, 16),
    },
    action,
  );
  return { address, quirk };
}

/**
 * The sysfs line for a quirk: `0000:03:00.0-e0:2:ffff`.
 *
 * @example
 * formatQuirkSpec(PciAddress.parse('03:00.0'), { reg: 0xe0, size: 2, mask: 0xffff });
 * // '0000:03:00.0-e0:2:ffff'
 */
export function formatQuirkSpec(address: PciAddress, quirk: Quirk): string {
  return `${address.toString()}-${quirk.reg.toString(16)}:${quirk.size}:${quirk.mask.toString(16)}`;
}
