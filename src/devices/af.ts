// SPDX-License-Identifier: MIT
/**
 * Advanced Features capability (PCI Advanced Capabilities ECN): Initiate FLR reads 0;
 * a written 1 resets the function when the capability says FLR. Transactions Pending
 * reads what the image holds (the simulated function never has any outstanding after
 * a reset, so a reset clears it).
 */
import {
  PCI_AF_CAP_FLR,
  PCI_AF_CAP_OFFSET,
  PCI_AF_CAP_TP,
  PCI_AF_CTRL_FLR,
  PCI_AF_CTRL_OFFSET,
  PCI_AF_STATUS_OFFSET,
  PCI_AF_STATUS_TP,
} from '../abi/pci-regs.js';
import { sliceWrite, type ConfigWriteAccess } from './access.js';
import type { DeviceFeature, FunctionContext } from './feature.js';

/** The Advanced Features capability of one function. */
export class AdvancedFeaturesFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;
  readonly #capOffset: number;

  constructor(ctx: FunctionContext, capOffset: number) {
    this.#ctx = ctx;
    this.#capOffset = capOffset;
    ctx.regs.set(capOffset + PCI_AF_CTRL_OFFSET, 1, 0);
  }

  /** The capability advertises FLR. */
  flrCapable(): boolean {
    return (this.#ctx.regs.read(this.#capOffset + PCI_AF_CAP_OFFSET, 1) & PCI_AF_CAP_FLR) !== 0;
  }

  /** The capability advertises Transactions Pending (Linux requires it for AF FLR). */
  transactionsPendingCapable(): boolean {
    return (this.#ctx.regs.read(this.#capOffset + PCI_AF_CAP_OFFSET, 1) & PCI_AF_CAP_TP) !== 0;
  }

  afterConfigWrite(access: ConfigWriteAccess): void {
    const written = sliceWrite(access, {
      byteOffset: this.#capOffset + PCI_AF_CTRL_OFFSET,
      sizeBytes: 1,
    });
    if (written === undefined || (written.value & PCI_AF_CTRL_FLR) === 0) return;
    if (this.flrCapable()) this.#ctx.requestReset('af-flr');
  }

  adjustDefaults(): void {
    const offset = this.#capOffset + PCI_AF_STATUS_OFFSET;
    this.#ctx.regs.setDefault(
      offset,
      1,
      this.#ctx.regs.defaultValue(offset, 1) & ~PCI_AF_STATUS_TP,
    );
  }
}
