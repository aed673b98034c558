// SPDX-License-Identifier: MIT
/**
 * MSI-X capability (PCI 3.0 §6.8.2, PCIe 6.0 §7.7.2) with its table and Pending Bit
 * Array, which live in BAR memory.
 *
 * Message Control: Enable and Function Mask RW, Table Size RO; the Table and PBA
 * offset/BIR registers are RO. Table entries: address (bits 1:0 RO 0), upper
 * address and data RW; in Vector Control only the Mask bit is RW. Entries are masked
 * after a reset. The PBA is RO. A message raised while its vector or the function is
 * masked (or bus mastering is off, or the function is not in D0) sets its pending bit
 * and is sent when that clears; while MSI-X is disabled the function does not use it
 * and the event is dropped.
 */
import {
  PCI_MSIX_BIR_MASK,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA_OFFSET,
  PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET,
  PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_OFFSET_MASK,
  PCI_MSIX_PBA_OFFSET,
  PCI_MSIX_TABLE_OFFSET,
} from '../abi/pci-regs.js';
import type { DeviceFeature, FunctionContext } from './feature.js';
import { applyMaskedWrite, readLe, writeLe } from './register-file.js';

/** Where a table or PBA lives: a BAR and a byte range in it. */
export interface MsixRegion {
  readonly bar: number;
  readonly byteOffset: number;
  readonly sizeBytes: number;
}

/** Writable bits of each dword of a table entry. */
const ENTRY_WRITABLE = [0xfffffffc, 0xffffffff, 0xffffffff, PCI_MSIX_ENTRY_CTRL_MASKBIT] as const;

/** The MSI-X capability of one function. */
export class MsixFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;
  readonly #flagsOffset: number;
  /** Number of table entries. */
  readonly tableSize: number;
  /** The table's place in BAR memory. */
  readonly table: MsixRegion;
  /** The PBA's place in BAR memory (whole qwords). */
  readonly pba: MsixRegion;
  readonly #entries: Uint8Array;
  readonly #pending: Uint8Array;

  constructor(ctx: FunctionContext, capOffset: number) {
    this.#ctx = ctx;
    const { regs } = ctx;
    this.#flagsOffset = capOffset + PCI_MSIX_FLAGS_OFFSET;
    this.tableSize = (regs.read(this.#flagsOffset, 2) & PCI_MSIX_FLAGS_QSIZE) + 1;
    const tableReg = regs.read(capOffset + PCI_MSIX_TABLE_OFFSET, 4);
    const pbaReg = regs.read(capOffset + PCI_MSIX_PBA_OFFSET, 4);
    this.table = {
      bar: tableReg & PCI_MSIX_BIR_MASK,
      byteOffset: (tableReg & PCI_MSIX_OFFSET_MASK) >>> 0,
      sizeBytes: this.tableSize * PCI_MSIX_ENTRY_SIZE,
    };
    this.pba = {
      bar: pbaReg & PCI_MSIX_BIR_MASK,
      byteOffset: (pbaReg & PCI_MSIX_OFFSET_MASK) >>> 0,
      sizeBytes: Math.ceil(this.tableSize / 64) * 8,
    };
    regs.setMask('writable', this.#flagsOffset, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    this.#entries = new Uint8Array(this.table.sizeBytes);
    this.#pending = new Uint8Array(this.pba.sizeBytes);
    this.#maskAllEntries();
  }

  /** MSI-X Enable. */
  enabled(): boolean {
    return (this.#ctx.regs.read(this.#flagsOffset, 2) & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }

  /** Function Mask. */
  functionMasked(): boolean {
    return (this.#ctx.regs.read(this.#flagsOffset, 2) & PCI_MSIX_FLAGS_MASKALL) !== 0;
  }

  /** True when the table entry's Mask bit is set. */
  entryMasked(entry: number): boolean {
    const control = readLe(this.#entries, {
      byteOffset: entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET,
      sizeBytes: 4,
    });
    return (control & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
  }

  /** True when the entry's pending bit is set. */
  entryPending(entry: number): boolean {
    return ((this.#pending[entry >> 3] ?? 0) & (1 << (entry & 7))) !== 0;
  }

  /** Which region an MMIO access of `sizeBytes` at `byteOffset` of `bar` hits. */
  regionAt(bar: number, byteOffset: number, sizeBytes: number): 'table' | 'pba' | undefined {
    if (inRegion(this.table, bar, byteOffset, sizeBytes)) return 'table';
    if (inRegion(this.pba, bar, byteOffset, sizeBytes)) return 'pba';
    return undefined;
  }

  /** MMIO read of the table (`region` 'table') or the PBA. */
  read(region: 'table' | 'pba', byteOffset: number, sizeBytes: number): number {
    if (region === 'table')
      return readLe(this.#entries, { byteOffset: byteOffset - this.table.byteOffset, sizeBytes });
    return readLe(this.#pending, { byteOffset: byteOffset - this.pba.byteOffset, sizeBytes });
  }

  /** MMIO write: table entries through their masks; the PBA is read-only. */
  write(region: 'table' | 'pba', byteOffset: number, sizeBytes: number, value: number): void {
    if (region === 'pba') return;
    const relative = byteOffset - this.table.byteOffset;
    for (let i = 0; i < sizeBytes; i++) {
      const at = relative + i;
      const dword = (at % PCI_MSIX_ENTRY_SIZE) >> 2;
      const writable = ((ENTRY_WRITABLE[dword] ?? 0) >>> (8 * (at & 3))) & 0xff;
      const byte = (value >>> (8 * i)) & 0xff;
      this.#entries[at] = applyMaskedWrite(this.#entries[at] ?? 0, byte, { writable, rw1c: 0 });
    }
  }

  /**
   * The function raises table entry `entry`; returns true when the message was sent.
   * Entries outside the table and events while MSI-X is disabled are ignored.
   */
  signal(entry: number): boolean {
    if (!Number.isInteger(entry) || entry < 0 || entry >= this.tableSize || !this.enabled()) {
      return false;
    }
    if (this.#deliverable(entry)) {
      this.#send(entry);
      return true;
    }
    this.#setPending(entry, true);
    return false;
  }

  /** Sends pending entries that have become deliverable (unmasked). */
  flush(): void {
    if (!this.enabled()) return;
    for (let entry = 0; entry < this.tableSize; entry++) {
      if (!this.entryPending(entry) || !this.#deliverable(entry)) continue;
      this.#setPending(entry, false);
      this.#send(entry);
    }
  }

  afterReset(): void {
    this.#maskAllEntries();
  }

  /** Table and PBA bytes, for `state()`. */
  snapshot(): { entries: Uint8Array; pending: Uint8Array } {
    return { entries: this.#entries.slice(), pending: this.#pending.slice() };
  }

  /** Restores bytes saved by {@link snapshot}. */
  load(entries: Uint8Array, pending: Uint8Array): void {
    if (entries.length !== this.#entries.length || pending.length !== this.#pending.length) {
      throw new RangeError(
        `Cannot load an MSI-X table of ${entries.length} bytes and PBA of ${pending.length} bytes: expected ${this.#entries.length} and ${this.#pending.length}`,
      );
    }
    this.#entries.set(entries);
    this.#pending.set(pending);
  }

  #deliverable(entry: number): boolean {
    return (
      !this.functionMasked() &&
      !this.entryMasked(entry) &&
      this.#ctx.busMasterEnabled() &&
      this.#ctx.powerState() === 0
    );
  }

  #send(entry: number): void {
    const base = entry * PCI_MSIX_ENTRY_SIZE;
    const low = readLe(this.#entries, {
      byteOffset: base + PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET,
      sizeBytes: 4,
    });
    const high = readLe(this.#entries, {
      byteOffset: base + PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET,
      sizeBytes: 4,
    });
    const data = readLe(this.#entries, {
      byteOffset: base + PCI_MSIX_ENTRY_DATA_OFFSET,
      sizeBytes: 4,
    });
    this.#ctx.hooks.onMessage?.({
      address: (BigInt(high) << 32n) | BigInt(low),
      data,
      source: 'msix',
      vector: entry,
    });
  }

  #setPending(entry: number, on: boolean): void {
    const index = entry >> 3;
    const bit = 1 << (entry & 7);
    const old = this.#pending[index] ?? 0;
    this.#pending[index] = on ? old | bit : old & ~bit;
  }

  #maskAllEntries(): void {
    this.#entries.fill(0);
    this.#pending.fill(0);
    for (let entry = 0; entry < this.tableSize; entry++) {
      writeLe(this.#entries, {
        byteOffset: entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET,
        sizeBytes: 4,
        value: PCI_MSIX_ENTRY_CTRL_MASKBIT,
      });
    }
  }
}

function inRegion(region: MsixRegion, bar: number, byteOffset: number, sizeBytes: number): boolean {
  return (
    region.bar === bar &&
    byteOffset >= region.byteOffset &&
    byteOffset + sizeBytes <= region.byteOffset + region.sizeBytes
  );
}
