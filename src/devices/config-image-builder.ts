// SPDX-License-Identifier: MIT
/**
 * Lays out a config image: header fields, then capabilities chained in the standard
 * list (from 0x40, each dword-aligned) and the extended list (from 0x100). Used by the
 * catalog and for generic VF images; nothing here knows what a capability means.
 */
import {
  PCI_CAPABILITY_LIST_OFFSET,
  PCI_CAP_LIST_NEXT_OFFSET,
  PCI_CFG_SPACE_SIZE,
  PCI_CLASS_PROG_OFFSET,
  PCI_DEVICE_ID_OFFSET,
  PCI_EXT_CAP_NEXT_SHIFT,
  PCI_EXT_CAP_START_OFFSET,
  PCI_EXT_CAP_VER_SHIFT,
  PCI_HEADER_TYPE_MULTIFUNCTION_BIT,
  PCI_HEADER_TYPE_OFFSET,
  PCI_REVISION_ID_OFFSET,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_OFFSET,
  PCI_STD_HEADER_SIZEOF,
  PCI_SUBSYSTEM_ID_OFFSET,
  PCI_SUBSYSTEM_VENDOR_ID_OFFSET,
  PCI_VENDOR_ID_OFFSET,
} from '../abi/pci-regs.js';
import { readLe, writeLe } from './register-file.js';

/** Identity fields of a header. */
export interface HeaderIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  /** Base class, sub-class, programming interface as one 24-bit number (0x010802). */
  readonly classCode: number;
  /** 0 (normal) or 1 (bridge). */
  readonly headerType: number;
  readonly multiFunction?: boolean;
  /** Type 0 only (bridges carry them in an SSVID capability). */
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
}

/**
 * Builds one config image.
 *
 * @example
 * const image = new ConfigImageBuilder(4096)
 *   .identity({ vendorId: 0x8086, deviceId: 0x1234, revision: 1, classCode: 0x020000, headerType: 0 })
 *   .set32(0x10, 0xfeb00000);
 * image.addCapability(0x01, [0x03, 0x00, 0x00, 0x00, 0x00, 0x00]);
 * image.build();
 */
export class ConfigImageBuilder {
  readonly #bytes: Uint8Array;
  #lastCap: number | undefined;
  #nextCapOffset = PCI_STD_HEADER_SIZEOF;
  #lastExtCap: number | undefined;
  #nextExtOffset = PCI_EXT_CAP_START_OFFSET;

  /** A zeroed image of 64, 256 or 4096 bytes. */
  constructor(sizeBytes: 64 | 256 | 4096) {
    this.#bytes = new Uint8Array(sizeBytes);
  }

  /** Writes the identity registers. */
  identity(id: HeaderIdentity): this {
    this.set16(PCI_VENDOR_ID_OFFSET, id.vendorId);
    this.set16(PCI_DEVICE_ID_OFFSET, id.deviceId);
    this.set8(PCI_REVISION_ID_OFFSET, id.revision);
    this.set8(PCI_CLASS_PROG_OFFSET, id.classCode & 0xff);
    this.set16(PCI_CLASS_PROG_OFFSET + 1, (id.classCode >> 8) & 0xffff);
    this.set8(
      PCI_HEADER_TYPE_OFFSET,
      id.headerType | (id.multiFunction === true ? PCI_HEADER_TYPE_MULTIFUNCTION_BIT : 0),
    );
    if (id.subsystemVendorId !== undefined)
      this.set16(PCI_SUBSYSTEM_VENDOR_ID_OFFSET, id.subsystemVendorId);
    if (id.subsystemId !== undefined) this.set16(PCI_SUBSYSTEM_ID_OFFSET, id.subsystemId);
    return this;
  }

  /** Writes a byte. */
  set8(byteOffset: number, value: number): this {
    return this.#set(byteOffset, 1, value);
  }

  /** Writes a little-endian word. */
  set16(byteOffset: number, value: number): this {
    return this.#set(byteOffset, 2, value);
  }

  /** Writes a little-endian dword. */
  set32(byteOffset: number, value: number): this {
    return this.#set(byteOffset, 4, value);
  }

  /** Reads back a little-endian value. */
  get(byteOffset: number, sizeBytes: 1 | 2 | 4): number {
    return readLe(this.#bytes, { byteOffset, sizeBytes });
  }

  /**
   * Appends a standard capability: ID, next pointer, then `body` (the bytes from
   * offset 2). Returns its offset.
   *
   * @throws {RangeError} when it does not fit below 0x100.
   */
  addCapability(id: number, body: readonly number[]): number {
    const offset = this.#nextCapOffset;
    const end = offset + 2 + body.length;
    if (end > Math.min(this.#bytes.length, PCI_CFG_SPACE_SIZE)) {
      throw new RangeError(
        `Cannot add capability 0x${id.toString(16)} at 0x${offset.toString(16)}: it does not fit`,
      );
    }
    this.set8(offset, id);
    this.set8(offset + PCI_CAP_LIST_NEXT_OFFSET, 0);
    this.#bytes.set(body, offset + 2);
    if (this.#lastCap === undefined) {
      this.set8(PCI_CAPABILITY_LIST_OFFSET, offset);
      this.set16(PCI_STATUS_OFFSET, this.get(PCI_STATUS_OFFSET, 2) | PCI_STATUS_CAP_LIST);
    } else {
      this.set8(this.#lastCap + PCI_CAP_LIST_NEXT_OFFSET, offset);
    }
    this.#lastCap = offset;
    this.#nextCapOffset = (end + 3) & ~3;
    return offset;
  }

  /**
   * Appends an extended capability: the header dword (ID, version, next), then `body`
   * (the bytes from offset 4). Returns its offset. The version defaults to 1.
   *
   * @throws {RangeError} for a 64- or 256-byte image or when it does not fit.
   */
  addExtendedCapability(
    id: number,
    body: readonly number[],
    options: { readonly version?: number } = {},
  ): number {
    const version = options.version ?? 1;
    const offset = this.#nextExtOffset;
    const end = offset + 4 + body.length;
    if (end > this.#bytes.length) {
      throw new RangeError(
        `Cannot add extended capability 0x${id.toString(16)} at 0x${offset.toString(16)}: it does not fit`,
      );
    }
    this.set32(offset, (id | (version << PCI_EXT_CAP_VER_SHIFT)) >>> 0);
    this.#bytes.set(body, offset + 4);
    if (this.#lastExtCap !== undefined) {
      const header = this.get(this.#lastExtCap, 4);
      this.set32(this.#lastExtCap, (header | (offset << PCI_EXT_CAP_NEXT_SHIFT)) >>> 0);
    }
    this.#lastExtCap = offset;
    this.#nextExtOffset = (end + 3) & ~3;
    return offset;
  }

  /** A copy of the image. */
  build(): Uint8Array {
    return this.#bytes.slice();
  }

  #set(byteOffset: number, sizeBytes: number, value: number): this {
    if (byteOffset < 0 || byteOffset + sizeBytes > this.#bytes.length) {
      throw new RangeError(
        `Cannot write ${sizeBytes} bytes at 0x${byteOffset.toString(16)}: outside the image`,
      );
    }
    writeLe(this.#bytes, { byteOffset, sizeBytes, value });
    return this;
  }
}

/** Little-endian bytes of a value (a helper for capability bodies). */
export function le(value: number, sizeBytes: 1 | 2 | 4): number[] {
  const out: number[] = [];
  for (let i = 0; i < sizeBytes; i++) out.push((value >>> (8 * i)) & 0xff);
  return out;
}
