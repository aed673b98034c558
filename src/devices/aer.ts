// SPDX-License-Identifier: MIT
/**
 * Advanced Error Reporting extended capability (PCIe 6.0 §7.8.4).
 *
 * Uncorrectable and correctable status RW1CS; their masks and the severity register
 * RWS; in Capabilities and Control the First Error Pointer is ROS and the ECRC and
 * multiple-header enables are RWS when their capable bits are set; the header log
 * (and TLP prefix log) ROS. Root ports and event collectors add Root Error Command RW,
 * Root Error Status RW1CS (message counters RO) and the Error Source ID ROS. Only the
 * error bits PCIe 6.0 defines are implemented.
 */
import {
  PCI_ERR_CAP_ECRC_CHKC,
  PCI_ERR_CAP_ECRC_CHKE,
  PCI_ERR_CAP_ECRC_GENC,
  PCI_ERR_CAP_ECRC_GENE,
  PCI_ERR_CAP_FEP_MASK,
  PCI_ERR_CAP_MHRC,
  PCI_ERR_CAP_MHRE,
  PCI_ERR_CAP_OFFSET,
  PCI_ERR_COR_MASK,
  PCI_ERR_COR_MASK_OFFSET,
  PCI_ERR_COR_STATUS_OFFSET,
  PCI_ERR_HEADER_LOG_OFFSET,
  PCI_ERR_ROOT_CMD_MASK,
  PCI_ERR_ROOT_COMMAND_OFFSET,
  PCI_ERR_ROOT_ERR_SRC_OFFSET,
  PCI_ERR_ROOT_SIZE,
  PCI_ERR_ROOT_STATUS_OFFSET,
  PCI_ERR_ROOT_STATUS_RW1C_MASK,
  PCI_ERR_UNC_MASK,
  PCI_ERR_UNCOR_MASK_OFFSET,
  PCI_ERR_UNCOR_SEVER_OFFSET,
  PCI_ERR_UNCOR_STATUS_OFFSET,
} from '../abi/pci-regs.js';
import type { FunctionContext } from './feature.js';

/** Bytes of the header log. */
const HEADER_LOG_SIZE = 16;
/** The TLP prefix log follows the root registers (0x38..0x47). */
const TLP_PREFIX_LOG_OFFSET = 0x38;
const TLP_PREFIX_LOG_SIZE = 16;

/** What the AER registers recorded for one injected error set. */
export interface AerRecord {
  /** Uncorrectable bits that are not masked, split by severity. */
  readonly nonFatal: number;
  readonly fatal: number;
  /** Correctable bits that are not masked. */
  readonly correctable: number;
}

/** The AER capability of one function. */
export class AerFeature {
  readonly #ctx: FunctionContext;
  readonly #capOffset: number;

  constructor(ctx: FunctionContext, capOffset: number, options: { rootRegisters: boolean }) {
    this.#ctx = ctx;
    this.#capOffset = capOffset;
    const { regs } = ctx;
    const at = (relative: number): number => capOffset + relative;
    const sticky = (relative: number, sizeBytes: number, mask: number): void => {
      if (at(relative) + sizeBytes <= regs.sizeBytes)
        regs.setMask('sticky', at(relative), sizeBytes, mask);
    };
    regs.setMask('rw1c', at(PCI_ERR_UNCOR_STATUS_OFFSET), 4, PCI_ERR_UNC_MASK);
    sticky(PCI_ERR_UNCOR_STATUS_OFFSET, 4, PCI_ERR_UNC_MASK);
    regs.setMask('writable', at(PCI_ERR_UNCOR_MASK_OFFSET), 4, PCI_ERR_UNC_MASK);
    sticky(PCI_ERR_UNCOR_MASK_OFFSET, 4, PCI_ERR_UNC_MASK);
    regs.setMask('writable', at(PCI_ERR_UNCOR_SEVER_OFFSET), 4, PCI_ERR_UNC_MASK);
    sticky(PCI_ERR_UNCOR_SEVER_OFFSET, 4, PCI_ERR_UNC_MASK);
    regs.setMask('rw1c', at(PCI_ERR_COR_STATUS_OFFSET), 4, PCI_ERR_COR_MASK);
    sticky(PCI_ERR_COR_STATUS_OFFSET, 4, PCI_ERR_COR_MASK);
    regs.setMask('writable', at(PCI_ERR_COR_MASK_OFFSET), 4, PCI_ERR_COR_MASK);
    sticky(PCI_ERR_COR_MASK_OFFSET, 4, PCI_ERR_COR_MASK);

    const cap = regs.read(at(PCI_ERR_CAP_OFFSET), 4);
    let enables = 0;
    if ((cap & PCI_ERR_CAP_ECRC_GENC) !== 0) enables |= PCI_ERR_CAP_ECRC_GENE;
    if ((cap & PCI_ERR_CAP_ECRC_CHKC) !== 0) enables |= PCI_ERR_CAP_ECRC_CHKE;
    if ((cap & PCI_ERR_CAP_MHRC) !== 0) enables |= PCI_ERR_CAP_MHRE;
    regs.setMask('writable', at(PCI_ERR_CAP_OFFSET), 4, enables);
    sticky(PCI_ERR_CAP_OFFSET, 4, enables | PCI_ERR_CAP_FEP_MASK);
    for (let i = 0; i < HEADER_LOG_SIZE; i += 4)
      sticky(PCI_ERR_HEADER_LOG_OFFSET + i, 4, 0xffffffff);

    if (options.rootRegisters && at(PCI_ERR_ROOT_SIZE) <= regs.sizeBytes) {
      regs.setMask('writable', at(PCI_ERR_ROOT_COMMAND_OFFSET), 4, PCI_ERR_ROOT_CMD_MASK);
      regs.setMask('rw1c', at(PCI_ERR_ROOT_STATUS_OFFSET), 4, PCI_ERR_ROOT_STATUS_RW1C_MASK);
      sticky(PCI_ERR_ROOT_STATUS_OFFSET, 4, PCI_ERR_ROOT_STATUS_RW1C_MASK);
      sticky(PCI_ERR_ROOT_ERR_SRC_OFFSET, 4, 0xffffffff);
      for (let i = 0; i < TLP_PREFIX_LOG_SIZE; i += 4)
        sticky(TLP_PREFIX_LOG_OFFSET + i, 4, 0xffffffff);
    }
  }

  /** The Uncorrectable Error Severity register (1 = fatal). */
  severity(): number {
    return this.#ctx.regs.read(this.#capOffset + PCI_ERR_UNCOR_SEVER_OFFSET, 4);
  }

  /**
   * Records errors: every given bit sets its status bit (masked ones too, §6.2.3.2.2);
   * the first unmasked uncorrectable error, when none is outstanding, sets the First
   * Error Pointer and the header log.
   */
  record(errors: {
    readonly uncorrectable: number;
    readonly correctable: number;
    readonly headerLog: readonly number[];
  }): AerRecord {
    const { uncorrectable, correctable, headerLog } = errors;
    const { regs } = this.#ctx;
    const at = (relative: number): number => this.#capOffset + relative;
    const unc = uncorrectable & PCI_ERR_UNC_MASK;
    const cor = correctable & PCI_ERR_COR_MASK;
    const uncMask = regs.read(at(PCI_ERR_UNCOR_MASK_OFFSET), 4);
    const severity = regs.read(at(PCI_ERR_UNCOR_SEVER_OFFSET), 4);
    const before = regs.read(at(PCI_ERR_UNCOR_STATUS_OFFSET), 4);
    regs.set(at(PCI_ERR_UNCOR_STATUS_OFFSET), 4, (before | unc) >>> 0);
    regs.setBits(at(PCI_ERR_COR_STATUS_OFFSET), 4, cor, true);
    const unmaskedUnc = (unc & ~uncMask) >>> 0;
    if (unmaskedUnc !== 0 && (before & ~uncMask) === 0) {
      const first = 31 - Math.clz32(unmaskedUnc & -unmaskedUnc);
      const cap = regs.read(at(PCI_ERR_CAP_OFFSET), 4);
      regs.set(at(PCI_ERR_CAP_OFFSET), 4, ((cap & ~PCI_ERR_CAP_FEP_MASK) | first) >>> 0);
      for (let i = 0; i < 4; i++) {
        regs.set(at(PCI_ERR_HEADER_LOG_OFFSET + 4 * i), 4, (headerLog[i] ?? 0) >>> 0);
      }
    }
    const corMask = regs.read(at(PCI_ERR_COR_MASK_OFFSET), 4);
    return {
      nonFatal: (unmaskedUnc & ~severity) >>> 0,
      fatal: (unmaskedUnc & severity) >>> 0,
      correctable: (cor & ~corMask) >>> 0,
    };
  }
}
