// SPDX-License-Identifier: MIT
/**
 * Vital Product Data capability (PCI 3.0 §6.4, Appendix I) and the small VPD ROM
 * behind it.
 *
 * The address register's 15 address bits and the data register are RW; the F flag is
 * driven by the device. A write of the address register with F = 0 is a read
 * request: the four bytes at the address are loaded into the data register and F is
 * set (the simulated ROM answers at once). With F = 1 it is a write request: the data
 * register is stored at the address and F is cleared. A request starts when a write
 * covers the register's high byte (where F is); ROM bytes past its end read 0 and are
 * not written. The ROM is non-volatile: resets do not touch it.
 */
import {
  PCI_VPD_ADDR_F,
  PCI_VPD_ADDR_MASK,
  PCI_VPD_ADDR_OFFSET,
  PCI_VPD_DATA_OFFSET,
} from '../abi/pci-regs.js';
import { sliceWrite, type ConfigWriteAccess } from './access.js';
import type { DeviceFeature, FunctionContext } from './feature.js';
import { readLe, writeLe } from './register-file.js';

/** The VPD capability of one function. */
export class VpdFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;
  readonly #addrOffset: number;
  readonly #dataOffset: number;
  readonly #rom: Uint8Array;

  constructor(ctx: FunctionContext, capOffset: number, options: { readonly rom: Uint8Array }) {
    const { rom } = options;
    this.#ctx = ctx;
    this.#addrOffset = capOffset + PCI_VPD_ADDR_OFFSET;
    this.#dataOffset = capOffset + PCI_VPD_DATA_OFFSET;
    this.#rom = rom.slice();
    ctx.regs.setMask('writable', this.#addrOffset, 2, PCI_VPD_ADDR_MASK);
    ctx.regs.setMask('writable', this.#dataOffset, 4, 0xffffffff);
  }

  /** A copy of the VPD ROM. */
  rom(): Uint8Array {
    return this.#rom.slice();
  }

  afterConfigWrite(access: ConfigWriteAccess): void {
    const written = sliceWrite(access, { byteOffset: this.#addrOffset, sizeBytes: 2 });
    if (written === undefined || (written.mask & PCI_VPD_ADDR_F) === 0) return;
    const { regs } = this.#ctx;
    const address = regs.read(this.#addrOffset, 2) & PCI_VPD_ADDR_MASK;
    if ((written.value & PCI_VPD_ADDR_F) === 0) {
      regs.set(this.#dataOffset, 4, readLe(this.#rom, { byteOffset: address, sizeBytes: 4 }));
      regs.set(this.#addrOffset, 2, address | PCI_VPD_ADDR_F);
    } else {
      writeLe(this.#rom, {
        byteOffset: address,
        sizeBytes: 4,
        value: regs.read(this.#dataOffset, 4),
      });
      regs.set(this.#addrOffset, 2, address);
    }
  }

  adjustDefaults(): void {
    this.#ctx.regs.setDefault(this.#addrOffset, 2, 0);
    this.#ctx.regs.setDefault(this.#dataOffset, 4, 0);
  }
}
