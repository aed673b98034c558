// SPDX-License-Identifier: MIT
/**
 * A configuration-space image: the 64, 256 or 4096 bytes a function exposes, with
 * little-endian byte/word/dword access and typed getters for the header fields.
 *
 * This is a plain data structure (a dump, a device model's backing store), not a guest
 * path: a bad offset or size is a programming error and throws `RangeError`. The guest
 * path (pciback's virtualizer) validates accesses itself and never reaches these throws.
 */
import type { ConfigReader } from './capabilities.js';
import {
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_CAP_ID,
  PCI_CAPABILITY_LIST_OFFSET,
  PCI_CB_CAPABILITY_LIST_OFFSET,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_CLASS_PROG_OFFSET,
  PCI_COMMAND_OFFSET,
  PCI_DEVICE_ID_OFFSET,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_CARDBUS,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_MULTIFUNCTION_BIT,
  PCI_HEADER_TYPE_NORMAL,
  PCI_HEADER_TYPE_OFFSET,
  PCI_INTERRUPT_LINE_OFFSET,
  PCI_INTERRUPT_PIN_OFFSET,
  PCI_REVISION_ID_OFFSET,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_OFFSET,
  PCI_STATUS_OFFSET,
  PCI_STD_HEADER_SIZEOF,
  PCI_SUBSYSTEM_ID_OFFSET,
  PCI_SUBSYSTEM_VENDOR_ID_OFFSET,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
  PCI_VENDOR_ID_OFFSET,
} from '../abi/pci-regs.js';
import { findCapability } from './capabilities.js';

/** The sizes a config image can have: header only, conventional, PCIe extended. */
export const CONFIG_SPACE_SIZES = [
  PCI_STD_HEADER_SIZEOF,
  PCI_CFG_SPACE_SIZE,
  PCI_CFG_SPACE_EXP_SIZE,
] as const;

/** 64 (header only, e.g. `lspci -x`), 256 (conventional PCI) or 4096 (PCIe). */
export type ConfigSpaceSize = (typeof CONFIG_SPACE_SIZES)[number];

/** Access widths of a config read or write, in bytes. */
export type ConfigAccessSize = 1 | 2 | 4;

/** True when `sizeBytes` is a valid config image size. */
export function isConfigSpaceSize(sizeBytes: number): sizeBytes is ConfigSpaceSize {
  return (CONFIG_SPACE_SIZES as readonly number[]).includes(sizeBytes);
}

// Subsystem IDs of bridges live in the SSVID capability, of CardBus bridges at 0x40
// (PCI-to-PCI Bridge 1.2 §3.2.5.13; PC Card 16-bit interface, as lspci reads them).
const SSVID_VENDOR_OFFSET = 4;
const SSVID_DEVICE_OFFSET = 6;
const CB_SUBSYSTEM_VENDOR_ID_OFFSET = 0x40;
const CB_SUBSYSTEM_ID_OFFSET = 0x42;
/** A CardBus bridge has one BAR: the socket/ExCA base at 0x10. */
const PCI_TYPE2_BAR_COUNT = 1;

/**
 * A config-space image of 64, 256 or 4096 bytes.
 *
 * Reads and writes are little-endian and must be naturally aligned (a word at an even
 * offset, a dword at a multiple of 4), as on the bus; anything else throws `RangeError`.
 *
 * @example
 * const cs = ConfigSpace.empty(256);
 * cs.write16(0x00, 0x8086);
 * cs.write16(0x02, 0x10c9);
 * cs.read32(0x00).toString(16); // '10c98086'
 * cs.vendorId; // 0x8086
 */
export class ConfigSpace implements ConfigReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  /**
   * Copy `bytes` (64, 256 or 4096 of them) into a new image; later changes to either
   * side do not affect the other.
   */
  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError('Cannot create a config space: expected a Uint8Array');
    }
    if (!isConfigSpaceSize(bytes.length)) {
      throw new RangeError(
        `Cannot create a config space of ${bytes.length} bytes: it must be 64, 256 or 4096 bytes`,
      );
    }
    this.#bytes = bytes.slice();
    this.#view = new DataView(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.byteLength);
  }

  /** An all-zero image of `sizeBytes` (4096 unless given). */
  static empty(sizeBytes: number = PCI_CFG_SPACE_EXP_SIZE): ConfigSpace {
    if (!isConfigSpaceSize(sizeBytes)) {
      throw new RangeError(
        `Cannot create a config space of ${sizeBytes} bytes: it must be 64, 256 or 4096 bytes`,
      );
    }
    return new ConfigSpace(new Uint8Array(sizeBytes));
  }

  /** Bytes in the image: 64, 256 or 4096. */
  get sizeBytes(): ConfigSpaceSize {
    return this.#bytes.length as ConfigSpaceSize;
  }

  /** The byte at `byteOffset`. */
  read8(byteOffset: number): number {
    this.#check(byteOffset, 1);
    return this.#view.getUint8(byteOffset);
  }

  /** The little-endian word at `byteOffset` (even). */
  read16(byteOffset: number): number {
    this.#check(byteOffset, 2);
    return this.#view.getUint16(byteOffset, true);
  }

  /** The little-endian dword at `byteOffset` (a multiple of 4), as an unsigned number. */
  read32(byteOffset: number): number {
    this.#check(byteOffset, 4);
    return this.#view.getUint32(byteOffset, true);
  }

  /** Read `sizeBytes` (1, 2 or 4) at `byteOffset`, zero-extended. */
  read(byteOffset: number, sizeBytes: ConfigAccessSize): number {
    switch (sizeBytes) {
      case 1:
        return this.read8(byteOffset);
      case 2:
        return this.read16(byteOffset);
      case 4:
        return this.read32(byteOffset);
      default:
        throw badAccessSize(sizeBytes);
    }
  }

  /**
   * Store a byte. `value` is an integer that fits in 8 bits, signed or unsigned
   * (-128..255); only its low 8 bits are kept.
   */
  write8(byteOffset: number, value: number): void {
    this.#check(byteOffset, 1);
    this.#view.setUint8(byteOffset, checkValue(value, 1));
  }

  /** Store a little-endian word; `value` fits in 16 bits, signed or unsigned. */
  write16(byteOffset: number, value: number): void {
    this.#check(byteOffset, 2);
    this.#view.setUint16(byteOffset, checkValue(value, 2), true);
  }

  /**
   * Store a little-endian dword; `value` fits in 32 bits, signed or unsigned (so both
   * `0xffffffff` and `~0` work).
   */
  write32(byteOffset: number, value: number): void {
    this.#check(byteOffset, 4);
    this.#view.setUint32(byteOffset, checkValue(value, 4), true);
  }

  /** Write the low `sizeBytes` (1, 2 or 4) of `value` at `byteOffset`. */
  write(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): void {
    switch (sizeBytes) {
      case 1:
        this.write8(byteOffset, value);
        return;
      case 2:
        this.write16(byteOffset, value);
        return;
      case 4:
        this.write32(byteOffset, value);
        return;
      default:
        throw badAccessSize(sizeBytes);
    }
  }

  /** A copy of the whole image. */
  bytes(): Uint8Array {
    return this.#bytes.slice();
  }

  /** Vendor ID (0x00); 0xffff means "no function here". */
  get vendorId(): number {
    return this.read16(PCI_VENDOR_ID_OFFSET);
  }

  /** Device ID (0x02). */
  get deviceId(): number {
    return this.read16(PCI_DEVICE_ID_OFFSET);
  }

  /** Command register (0x04). */
  get command(): number {
    return this.read16(PCI_COMMAND_OFFSET);
  }

  /** Status register (0x06). */
  get status(): number {
    return this.read16(PCI_STATUS_OFFSET);
  }

  /** Revision ID (0x08). */
  get revision(): number {
    return this.read8(PCI_REVISION_ID_OFFSET);
  }

  /** Class code, 24 bits: base class << 16 | sub-class << 8 | programming interface. */
  get classCode(): number {
    return this.read32(PCI_REVISION_ID_OFFSET) >>> 8;
  }

  /** Programming interface (0x09), the low byte of `classCode`. */
  get progIf(): number {
    return this.read8(PCI_CLASS_PROG_OFFSET);
  }

  /** Header layout (0x0e without the multi-function bit): 0 normal, 1 bridge, 2 CardBus. */
  get headerType(): number {
    return this.read8(PCI_HEADER_TYPE_OFFSET) & PCI_HEADER_TYPE_MASK;
  }

  /** Bit 7 of the header type: the device has functions other than 0. */
  get isMultiFunction(): boolean {
    return (this.read8(PCI_HEADER_TYPE_OFFSET) & PCI_HEADER_TYPE_MULTIFUNCTION_BIT) !== 0;
  }

  /**
   * Subsystem vendor ID: 0x2c for a normal header, the SSVID capability for a bridge,
   * 0x40 for a CardBus bridge (where lspci finds it); undefined when the layout has
   * none or the image is too short to hold it.
   */
  get subsystemVendorId(): number | undefined {
    return this.#subsystem(
      PCI_SUBSYSTEM_VENDOR_ID_OFFSET,
      SSVID_VENDOR_OFFSET,
      CB_SUBSYSTEM_VENDOR_ID_OFFSET,
    );
  }

  /** Subsystem ID, found like `subsystemVendorId`. */
  get subsystemId(): number | undefined {
    return this.#subsystem(PCI_SUBSYSTEM_ID_OFFSET, SSVID_DEVICE_OFFSET, CB_SUBSYSTEM_ID_OFFSET);
  }

  /** BARs this header layout has: 6 (normal), 2 (bridge), 1 (CardBus), else 0. */
  get barCount(): number {
    switch (this.headerType) {
      case PCI_HEADER_TYPE_NORMAL:
        return PCI_TYPE0_BAR_COUNT;
      case PCI_HEADER_TYPE_BRIDGE:
        return PCI_TYPE1_BAR_COUNT;
      case PCI_HEADER_TYPE_CARDBUS:
        return PCI_TYPE2_BAR_COUNT;
      default:
        return 0;
    }
  }

  /**
   * The raw BAR register `index` (at 0x10 + 4 * index). `index` must be below
   * `barCount`: on a bridge, 0x18..0x27 are bus numbers and windows, not BARs.
   */
  bar(index: number): number {
    const count = this.barCount;
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new RangeError(
        `Cannot read BAR ${String(index)}: header type ${this.headerType} has BARs 0-${count - 1}`,
      );
    }
    return this.read32(PCI_BASE_ADDRESS_0_OFFSET + 4 * index);
  }

  /** The raw expansion ROM BAR (0x30, or 0x38 on a bridge); undefined for other layouts. */
  get expansionRom(): number | undefined {
    switch (this.headerType) {
      case PCI_HEADER_TYPE_NORMAL:
        return this.read32(PCI_ROM_ADDRESS_OFFSET);
      case PCI_HEADER_TYPE_BRIDGE:
        return this.read32(PCI_ROM_ADDRESS1_OFFSET);
      default:
        return undefined;
    }
  }

  /** Interrupt line (0x3c): the IRQ routing value firmware wrote. */
  get interruptLine(): number {
    return this.read8(PCI_INTERRUPT_LINE_OFFSET);
  }

  /** Interrupt pin (0x3d): 0 none, 1..4 INTA#..INTD#. */
  get interruptPin(): number {
    return this.read8(PCI_INTERRUPT_PIN_OFFSET);
  }

  /**
   * The raw capability pointer: 0x34, or 0x14 on a CardBus bridge. Walkers ignore its
   * low two bits, and only follow it when the status register has `CAP_LIST`.
   */
  get capabilityPointer(): number {
    return this.read8(
      this.headerType === PCI_HEADER_TYPE_CARDBUS
        ? PCI_CB_CAPABILITY_LIST_OFFSET
        : PCI_CAPABILITY_LIST_OFFSET,
    );
  }

  #subsystem(type0Offset: number, ssvidOffset: number, cardbusOffset: number): number | undefined {
    switch (this.headerType) {
      case PCI_HEADER_TYPE_NORMAL:
        return this.read16(type0Offset);
      case PCI_HEADER_TYPE_BRIDGE: {
        const cap = findCapability(this, PCI_CAP_ID.SSVID);
        return cap === undefined ? undefined : this.read16(cap + ssvidOffset);
      }
      case PCI_HEADER_TYPE_CARDBUS:
        // A 64-byte image stops just before the CardBus subsystem registers.
        return this.sizeBytes > cardbusOffset ? this.read16(cardbusOffset) : undefined;
      default:
        return undefined;
    }
  }

  #check(byteOffset: number, sizeBytes: ConfigAccessSize): void {
    if (
      !Number.isInteger(byteOffset) ||
      byteOffset < 0 ||
      byteOffset + sizeBytes > this.#bytes.length
    ) {
      throw new RangeError(
        `Cannot access ${sizeBytes} bytes at offset ${formatOffset(byteOffset)}: the config space has ${this.#bytes.length} bytes`,
      );
    }
    if (byteOffset % sizeBytes !== 0) {
      throw new RangeError(
        `Cannot access ${sizeBytes} bytes at offset ${formatOffset(byteOffset)}: it is not ${sizeBytes}-byte aligned`,
      );
    }
  }
}

function checkValue(value: number, sizeBytes: ConfigAccessSize): number {
  const bits = sizeBytes * 8;
  const max = 2 ** bits;
  if (!Number.isInteger(value) || value < -(max / 2) || value >= max) {
    throw new RangeError(
      `Cannot write ${String(value)} as ${sizeBytes} bytes: it must be an integer from ${-(max / 2)} to 0x${(max - 1).toString(16)}`,
    );
  }
  // Both the signed and unsigned forms map onto the same bit pattern.
  return value < 0 ? value + max : value;
}

function badAccessSize(sizeBytes: never): RangeError {
  return new RangeError(`Cannot access ${String(sizeBytes)} bytes: the size must be 1, 2 or 4`);
}

function formatOffset(byteOffset: number): string {
  return Number.isInteger(byteOffset) && byteOffset >= 0
    ? `0x${byteOffset.toString(16)}`
    : `"${String(byteOffset)}"`;
}
