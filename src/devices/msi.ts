// SPDX-License-Identifier: MIT
/**
 * MSI capability (PCI 3.0 §6.8.1, PCIe 6.0 §7.7.1).
 *
 * Message Control: Enable and Multiple Message Enable RW (a value above Multiple
 * Message Capable is lowered to it: the spec leaves it undefined), the rest RO.
 * Address (bits 1:0 RO 0), upper address (64-bit capable) and the 16-bit data RW;
 * extended message data is not implemented. Mask bits RW for the vectors the function
 * can request, Pending RO. A vector that cannot be delivered (disabled, masked, not
 * enabled by Multiple Message Enable, bus mastering off, not in D0) is held pending
 * and sent as soon as it can be.
 */
import {
  PCI_MSI_ADDRESS_HI_OFFSET,
  PCI_MSI_ADDRESS_LO_OFFSET,
  PCI_MSI_DATA_32_OFFSET,
  PCI_MSI_DATA_64_OFFSET,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_OFFSET,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32_OFFSET,
  PCI_MSI_MASK_64_OFFSET,
  PCI_MSI_PENDING_32_OFFSET,
  PCI_MSI_PENDING_64_OFFSET,
} from '../abi/pci-regs.js';
import { touches, type ConfigWriteAccess } from './access.js';
import type { DeviceFeature, FunctionContext } from './feature.js';

/** Multiple Message Capable / Enable are log2 fields, at most 32 vectors. */
const QMASK_SHIFT = 1;
const QSIZE_SHIFT = 4;
const MAX_LOG2_VECTORS = 5;

/** Bytes of an MSI capability of this shape. */
export function msiCapabilitySize(flags: number): number {
  const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
  const maskable = (flags & PCI_MSI_FLAGS_MASKBIT) !== 0;
  if (maskable) return is64 ? 24 : 20;
  return is64 ? 14 : 10;
}

/** The MSI capability of one function. */
export class MsiFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;
  readonly #flagsOffset: number;
  readonly #is64: boolean;
  readonly #maskable: boolean;
  readonly #capableLog2: number;
  readonly #dataOffset: number;
  readonly #maskOffset: number;
  readonly #pendingOffset: number;
  /** Pending vectors; mirrored into the Pending register when per-vector masking exists. */
  #pending = 0;

  constructor(ctx: FunctionContext, capOffset: number) {
    this.#ctx = ctx;
    const { regs } = ctx;
    this.#flagsOffset = capOffset + PCI_MSI_FLAGS_OFFSET;
    const flags = regs.read(this.#flagsOffset, 2);
    this.#is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    this.#maskable = (flags & PCI_MSI_FLAGS_MASKBIT) !== 0;
    this.#capableLog2 = Math.min((flags & PCI_MSI_FLAGS_QMASK) >> QMASK_SHIFT, MAX_LOG2_VECTORS);
    this.#dataOffset = capOffset + (this.#is64 ? PCI_MSI_DATA_64_OFFSET : PCI_MSI_DATA_32_OFFSET);
    this.#maskOffset = capOffset + (this.#is64 ? PCI_MSI_MASK_64_OFFSET : PCI_MSI_MASK_32_OFFSET);
    this.#pendingOffset =
      capOffset + (this.#is64 ? PCI_MSI_PENDING_64_OFFSET : PCI_MSI_PENDING_32_OFFSET);

    regs.setMask('writable', this.#flagsOffset, 2, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    regs.setMask('writable', capOffset + PCI_MSI_ADDRESS_LO_OFFSET, 4, 0xfffffffc);
    regs.set(
      capOffset + PCI_MSI_ADDRESS_LO_OFFSET,
      4,
      regs.read(capOffset + PCI_MSI_ADDRESS_LO_OFFSET, 4) & 0xfffffffc,
    );
    if (this.#is64) regs.setMask('writable', capOffset + PCI_MSI_ADDRESS_HI_OFFSET, 4, 0xffffffff);
    regs.setMask('writable', this.#dataOffset, 2, 0xffff);
    if (this.#maskable) {
      regs.setMask('writable', this.#maskOffset, 4, this.#capableMask());
      this.#pending = regs.read(this.#pendingOffset, 4) & this.#capableMask();
    }
    this.#clampEnableCount();
  }

  /** MSI Enable. */
  enabled(): boolean {
    return (this.#ctx.regs.read(this.#flagsOffset, 2) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  /** Vectors enabled by Multiple Message Enable. */
  enabledVectors(): number {
    const flags = this.#ctx.regs.read(this.#flagsOffset, 2);
    return 1 << ((flags & PCI_MSI_FLAGS_QSIZE) >> QSIZE_SHIFT);
  }

  /** Pending vectors as a bit mask. */
  pending(): number {
    return this.#pending >>> 0;
  }

  /** Restores pending bits saved by `state()`. */
  loadPending(pending: number): void {
    this.#pending = pending & this.#capableMask();
    this.#mirrorPending();
  }

  /**
   * The function raises `vector`: sent now when deliverable, else held pending.
   * Returns true when a message was sent. Vectors beyond Multiple Message Capable
   * do not exist and are ignored.
   */
  signal(vector: number): boolean {
    if (!Number.isInteger(vector) || vector < 0 || vector >= 1 << this.#capableLog2) return false;
    if (this.#deliverable(vector)) {
      this.#send(vector);
      return true;
    }
    this.#pending |= 1 << vector;
    this.#mirrorPending();
    return false;
  }

  /** Sends every pending vector that has become deliverable. */
  flush(): void {
    if (this.#pending === 0) return;
    for (let vector = 0; vector < 1 << this.#capableLog2; vector++) {
      const bit = 1 << vector;
      if ((this.#pending & bit) === 0 || !this.#deliverable(vector)) continue;
      this.#pending &= ~bit;
      this.#mirrorPending();
      this.#send(vector);
    }
  }

  afterConfigWrite(access: ConfigWriteAccess): void {
    if (touches(access, { byteOffset: this.#flagsOffset, sizeBytes: 2 })) this.#clampEnableCount();
  }

  afterReset(): void {
    this.#pending = 0;
    this.#mirrorPending();
  }

  adjustDefaults(): void {
    if (this.#maskable) this.#ctx.regs.setDefault(this.#pendingOffset, 4, 0);
  }

  #deliverable(vector: number): boolean {
    if (!this.enabled() || vector >= this.enabledVectors()) return false;
    if (this.#maskable && (this.#ctx.regs.read(this.#maskOffset, 4) & (1 << vector)) !== 0) {
      return false;
    }
    return this.#ctx.busMasterEnabled() && this.#ctx.powerState() === 0;
  }

  #send(vector: number): void {
    const { regs } = this.#ctx;
    const base = this.#flagsOffset - PCI_MSI_FLAGS_OFFSET;
    let address = BigInt(regs.read(base + PCI_MSI_ADDRESS_LO_OFFSET, 4));
    if (this.#is64) address |= BigInt(regs.read(base + PCI_MSI_ADDRESS_HI_OFFSET, 4)) << 32n;
    // PCI 3.0 §6.8.3.4: the function replaces the low log2(enabled) data bits.
    const count = this.enabledVectors();
    const data = (regs.read(this.#dataOffset, 2) & ~(count - 1)) | vector;
    this.#ctx.hooks.onMessage?.({ address, data, source: 'msi', vector });
  }

  #capableMask(): number {
    return this.#capableLog2 >= MAX_LOG2_VECTORS ? 0xffffffff : (1 << (1 << this.#capableLog2)) - 1;
  }

  #mirrorPending(): void {
    if (this.#maskable) this.#ctx.regs.set(this.#pendingOffset, 4, this.#pending >>> 0);
  }

  #clampEnableCount(): void {
    const { regs } = this.#ctx;
    const flags = regs.read(this.#flagsOffset, 2);
    const enabledLog2 = (flags & PCI_MSI_FLAGS_QSIZE) >> QSIZE_SHIFT;
    if (enabledLog2 <= this.#capableLog2) return;
    regs.set(
      this.#flagsOffset,
      2,
      (flags & ~PCI_MSI_FLAGS_QSIZE) | (this.#capableLog2 << QSIZE_SHIFT),
    );
  }
}
