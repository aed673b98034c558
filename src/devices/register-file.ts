// SPDX-License-Identifier: MIT
/**
 * A function's configuration registers as values plus per-bit masks, cloud-hypervisor
 * style (`configuration.rs`: registers beside `writable_bits`): the one place where the
 * masked-write rule lives.
 *
 * Masks are kept per byte, so a register of any width and any access width go through
 * the same rule.
 */

import type { ByteRange } from './access.js';

/** What a mask says about a bit. */
export type MaskKind = 'writable' | 'rw1c' | 'sticky';

/** The two masks the write rule needs. */
export interface WriteMasks {
  /** Bits software may change (RW). */
  readonly writable: number;
  /** Bits a written 1 clears (RW1C). */
  readonly rw1c: number;
}

/**
 * The masked-write rule for one value: RW bits take the written value, RO bits keep
 * the old one, and RW1C bits are cleared where the written value has a 1.
 *
 * @example
 * applyMaskedWrite(0x8001, 0x8000, { writable: 0x0001, rw1c: 0x8000 }); // 0: bit 15 cleared
 */
export function applyMaskedWrite(oldValue: number, value: number, masks: WriteMasks): number {
  const merged = (oldValue & ~masks.writable) | (value & masks.writable);
  return (merged & ~(value & masks.rw1c)) >>> 0;
}

/** Serializable contents of a {@link RegisterFile}: the current and power-on bytes. */
export interface RegisterFileImage {
  readonly current: Uint8Array;
  readonly defaults: Uint8Array;
}

/**
 * Config registers of one function. Offsets are trusted here: the device validates
 * guest accesses before they reach this class.
 */
export class RegisterFile {
  /** Bytes of config space: 64, 256 or 4096. */
  readonly sizeBytes: number;
  readonly #bytes: Uint8Array;
  readonly #writable: Uint8Array;
  readonly #rw1c: Uint8Array;
  readonly #sticky: Uint8Array;
  readonly #defaults: Uint8Array;

  /** Copies `image`; every bit starts read-only, not sticky, with `image` as default. */
  constructor(image: Uint8Array) {
    this.sizeBytes = image.length;
    this.#bytes = image.slice();
    this.#writable = new Uint8Array(image.length);
    this.#rw1c = new Uint8Array(image.length);
    this.#sticky = new Uint8Array(image.length);
    this.#defaults = image.slice();
  }

  /** Little-endian value of `sizeBytes` (1..4) bytes at `byteOffset`. */
  read(byteOffset: number, sizeBytes: number): number {
    return readLe(this.#bytes, { byteOffset, sizeBytes });
  }

  /** A guest or driver write: the masked-write rule applied byte by byte. */
  write(byteOffset: number, sizeBytes: number, value: number): void {
    for (let i = 0; i < sizeBytes; i++) {
      const at = byteOffset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      this.#bytes[at] = applyMaskedWrite(this.#bytes[at] ?? 0, byte, {
        writable: this.#writable[at] ?? 0,
        rw1c: this.#rw1c[at] ?? 0,
      });
    }
  }

  /** A hardware-internal update that ignores the masks (status bits, completion flags). */
  set(byteOffset: number, sizeBytes: number, value: number): void {
    writeLe(this.#bytes, { byteOffset, sizeBytes, value });
  }

  /** Sets (`on`) or clears bits of a register from inside the device. */
  setBits(byteOffset: number, sizeBytes: number, bits: number, on: boolean): void {
    const old = this.read(byteOffset, sizeBytes);
    this.set(byteOffset, sizeBytes, on ? old | bits : old & ~bits);
  }

  /** The mask of `kind` over a register. */
  mask(kind: MaskKind, byteOffset: number, sizeBytes: number): number {
    return readLe(this.#maskBytes(kind), { byteOffset, sizeBytes });
  }

  /** Replaces the mask of `kind` over a register. */
  setMask(kind: MaskKind, byteOffset: number, sizeBytes: number, mask: number): void {
    writeLe(this.#maskBytes(kind), { byteOffset, sizeBytes, value: mask });
  }

  /** Power-on value of a register. */
  defaultValue(byteOffset: number, sizeBytes: number): number {
    return readLe(this.#defaults, { byteOffset, sizeBytes });
  }

  /** Replaces the power-on value of a register. */
  setDefault(byteOffset: number, sizeBytes: number, value: number): void {
    writeLe(this.#defaults, { byteOffset, sizeBytes, value });
  }

  /** Replaces every power-on byte (restoring saved state). */
  loadDefaults(defaults: Uint8Array): void {
    if (defaults.length !== this.sizeBytes) {
      throw new RangeError(
        `Cannot load ${defaults.length} default bytes into a ${this.sizeBytes}-byte config space`,
      );
    }
    this.#defaults.set(defaults);
  }

  /**
   * Derives power-on values from the current image: bits software programs (RW) or
   * hardware records (RW1C) start at 0 unless they are sticky; read-only bits are
   * what the image shows.
   */
  deriveDefaults(): void {
    for (let i = 0; i < this.sizeBytes; i++) {
      const programmable = (this.#writable[i] ?? 0) | (this.#rw1c[i] ?? 0);
      const keep = ~programmable | (this.#sticky[i] ?? 0);
      this.#defaults[i] = (this.#bytes[i] ?? 0) & keep;
    }
  }

  /** A function reset: every bit returns to its default except sticky bits. */
  reset(): void {
    for (let i = 0; i < this.sizeBytes; i++) {
      const sticky = this.#sticky[i] ?? 0;
      this.#bytes[i] = ((this.#defaults[i] ?? 0) & ~sticky) | ((this.#bytes[i] ?? 0) & sticky);
    }
  }

  /** Copies of the current and power-on bytes. */
  image(): RegisterFileImage {
    return { current: this.#bytes.slice(), defaults: this.#defaults.slice() };
  }

  #maskBytes(kind: MaskKind): Uint8Array {
    switch (kind) {
      case 'writable':
        return this.#writable;
      case 'rw1c':
        return this.#rw1c;
      case 'sticky':
        return this.#sticky;
    }
  }
}

/** Little-endian read of 1..4 bytes (missing bytes read 0). */
export function readLe(bytes: Uint8Array, range: ByteRange): number {
  const { byteOffset, sizeBytes } = range;
  let value = 0;
  for (let i = sizeBytes - 1; i >= 0; i--) value = (value << 8) | (bytes[byteOffset + i] ?? 0);
  return value >>> 0;
}

/** Little-endian write of 1..4 bytes (bytes past the end are dropped). */
export function writeLe(bytes: Uint8Array, write: ByteRange & { readonly value: number }): void {
  const { byteOffset, sizeBytes, value } = write;
  for (let i = 0; i < sizeBytes; i++) {
    const at = byteOffset + i;
    if (at < bytes.length) bytes[at] = (value >>> (8 * i)) & 0xff;
  }
}
