// SPDX-License-Identifier: MIT
/**
 * Checks shared by config and MMIO accesses: what the bus accepts, and how one access
 * lands on one register.
 */

/** An access or register: where it starts and how many bytes it has. */
export interface ByteRange {
  readonly byteOffset: number;
  readonly sizeBytes: number;
}

/** True when `sizeBytes` is 1, 2 or 4 and the access is naturally aligned and below `limitBytes`. */
export function isValidAccess(access: ByteRange, limitBytes: number): boolean {
  const { byteOffset, sizeBytes } = access;
  return (
    (sizeBytes === 1 || sizeBytes === 2 || sizeBytes === 4) &&
    Number.isInteger(byteOffset) &&
    byteOffset >= 0 &&
    byteOffset % sizeBytes === 0 &&
    byteOffset + sizeBytes <= limitBytes
  );
}

/** What a failed read returns: all-ones of the access size (0xffffffff for bad sizes). */
export function allOnes(sizeBytes: number): number {
  if (sizeBytes === 1) return 0xff;
  if (sizeBytes === 2) return 0xffff;
  return 0xffffffff;
}

/** Keeps the low `sizeBytes` bytes of a written value (non-numbers become 0). */
export function truncateValue(value: number, sizeBytes: number): number {
  const unsigned = Number.isFinite(value) ? value >>> 0 : 0;
  return sizeBytes >= 4 ? unsigned : unsigned & ((1 << (8 * sizeBytes)) - 1);
}

/** One config write as the device received it (already validated and truncated). */
export interface ConfigWriteAccess {
  readonly byteOffset: number;
  readonly sizeBytes: number;
  readonly value: number;
}

/** The part of an access that falls on one register, in the register's bit positions. */
export interface RegisterSlice {
  /** Written bits, shifted to the register's own positions. */
  readonly value: number;
  /** Which bits of the register the access covered. */
  readonly mask: number;
}

/**
 * The bits an access wrote into `register`, or
 * undefined when they do not overlap. Side effects that a written 1 triggers (FLR,
 * VPD requests) read the write through this, because such bits read back as 0.
 */
export function sliceWrite(
  access: ConfigWriteAccess,
  register: ByteRange,
): RegisterSlice | undefined {
  const { byteOffset: regOffset, sizeBytes: regSize } = register;
  const start = Math.max(access.byteOffset, regOffset);
  const end = Math.min(access.byteOffset + access.sizeBytes, regOffset + regSize);
  if (start >= end) return undefined;
  let value = 0;
  let mask = 0;
  for (let at = start; at < end; at++) {
    const byte = (access.value >>> (8 * (at - access.byteOffset))) & 0xff;
    const shift = 8 * (at - regOffset);
    value |= byte << shift;
    mask |= 0xff << shift;
  }
  return { value: value >>> 0, mask: mask >>> 0 };
}

/** True when the access touches any byte of the register. */
export function touches(access: ConfigWriteAccess, register: ByteRange): boolean {
  const { byteOffset: regOffset, sizeBytes: regSize } = register;
  return (
    access.byteOffset < regOffset + regSize && regOffset < access.byteOffset + access.sizeBytes
  );
}
