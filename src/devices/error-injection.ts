// SPDX-License-Identifier: MIT
/**
 * What a PCIe function does when it detects errors (PCIe 6.0 §6.2): AER status,
 * Device Status, and the PCI status bits, then whether an error message goes out.
 *
 * Without AER every error is unmasked and classified by the default severity
 * (§7.8.4.4). Device Status records every detected error whatever the AER masks say
 * (§7.5.3.5). Signaled System Error is set when an uncorrectable error is reported
 * with SERR# enabled; Detected Parity Error when a poisoned TLP was received.
 */
import {
  PCI_COMMAND_OFFSET,
  PCI_COMMAND_SERR,
  PCI_ERR_COR_MASK,
  PCI_ERR_UNC_MASK,
  PCI_ERR_UNC_POISON_TLP,
  PCI_ERR_UNC_SEVER_DEFAULT,
  PCI_ERR_UNC_UNSUP,
  PCI_EXP_DEVCTL_CERE,
  PCI_EXP_DEVCTL_FERE,
  PCI_EXP_DEVCTL_NFERE,
  PCI_STATUS_DETECTED_PARITY,
  PCI_STATUS_OFFSET,
  PCI_STATUS_SIG_SYSTEM_ERROR,
} from '../abi/pci-regs.js';
import type { AerFeature } from './aer.js';
import type { FunctionContext } from './feature.js';
import type { AerErrorEvent } from './hooks.js';
import type { PcieFeature } from './pcie.js';

/** Errors to inject: AER bit masks (`PCI_ERR_UNC_*`, `PCI_ERR_COR_*`). */
export interface InjectedErrors {
  readonly uncorrectable?: number;
  readonly correctable?: number;
  /** The TLP header to log for the first unmasked uncorrectable error (4 dwords). */
  readonly headerLog?: readonly number[];
}

/** The parts of a function error injection touches. */
export interface ErrorTargets {
  readonly ctx: FunctionContext;
  readonly pcie: PcieFeature | undefined;
  readonly aer: AerFeature | undefined;
}

/** Records `errors` in the function's registers and reports them through `onError`. */
export function injectErrors(targets: ErrorTargets, errors: InjectedErrors): AerErrorEvent {
  const { ctx, pcie, aer } = targets;
  const unc = ((errors.uncorrectable ?? 0) & PCI_ERR_UNC_MASK) >>> 0;
  const cor = ((errors.correctable ?? 0) & PCI_ERR_COR_MASK) >>> 0;
  const severity = aer?.severity() ?? PCI_ERR_UNC_SEVER_DEFAULT;
  const recorded = aer?.record({
    uncorrectable: unc,
    correctable: cor,
    headerLog: errors.headerLog ?? [],
  }) ?? {
    nonFatal: (unc & ~severity) >>> 0,
    fatal: (unc & severity) >>> 0,
    correctable: cor,
  };
  pcie?.recordErrors({
    correctable: cor !== 0,
    nonFatal: (unc & ~severity) !== 0,
    fatal: (unc & severity) !== 0,
    unsupportedRequest: (unc & PCI_ERR_UNC_UNSUP) !== 0,
  });

  const serr = (ctx.regs.read(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_SERR) !== 0;
  const devctl = pcie?.deviceControl() ?? 0;
  const corReported = recorded.correctable !== 0 && (devctl & PCI_EXP_DEVCTL_CERE) !== 0;
  const nonFatalReported =
    recorded.nonFatal !== 0 && ((devctl & PCI_EXP_DEVCTL_NFERE) !== 0 || serr);
  const fatalReported = recorded.fatal !== 0 && ((devctl & PCI_EXP_DEVCTL_FERE) !== 0 || serr);
  let statusBits = 0;
  if (serr && (nonFatalReported || fatalReported)) statusBits |= PCI_STATUS_SIG_SYSTEM_ERROR;
  if ((unc & PCI_ERR_UNC_POISON_TLP) !== 0) statusBits |= PCI_STATUS_DETECTED_PARITY;
  ctx.regs.setBits(PCI_STATUS_OFFSET, 2, statusBits, true);

  const event: AerErrorEvent = {
    correctable: recorded.correctable,
    nonFatal: recorded.nonFatal,
    fatal: recorded.fatal,
    isFatal: recorded.fatal !== 0,
    reported: corReported || nonFatalReported || fatalReported,
  };
  if (event.correctable !== 0 || event.nonFatal !== 0 || event.fatal !== 0) {
    ctx.hooks.onError?.(event);
  }
  return event;
}
