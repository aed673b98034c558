// SPDX-License-Identifier: MIT
/**
 * `xen_pcibk_get_interrupt_type` (`conf_space.c`): which interrupt types are on, read
 * from hardware rather than from the kernel's bookkeeping because a device model may
 * have enabled MSI/MSI-X directly (spec §5.8 step 4).
 */
import {
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_OFFSET,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_OFFSET,
} from '../../abi/pci-regs.js';
import { rawRead } from './access.js';
import type { FieldContext } from './field.js';

/** `INTERRUPT_TYPE_*` bits (a set: MSI and MSI-X can both be on in broken hardware). */
export const INTERRUPT_TYPE = {
  NONE: 0,
  INTX: 1,
  MSI: 2,
  MSIX: 4,
} as const;

/** Result: a set of `INTERRUPT_TYPE` bits, or the failing read's error code. */
export type InterruptTypeResult =
  { readonly ok: true; readonly types: number } | { readonly ok: false; readonly err: number };

/**
 * The interrupt types currently enabled in hardware. INTx counts only while neither
 * MSI nor MSI-X is on (PCIe forbids INTx use then).
 */
export function interruptType(ctx: FieldContext): InterruptTypeResult {
  let types: number = INTERRUPT_TYPE.NONE;
  const cmd = rawRead(ctx.dev, PCI_COMMAND_OFFSET, 2);
  if (cmd.err !== 0) return { ok: false, err: cmd.err };
  if ((cmd.value & PCI_COMMAND_INTX_DISABLE) === 0) types |= INTERRUPT_TYPE.INTX;
  if (ctx.msiCapOffset !== undefined) {
    const flags = rawRead(ctx.dev, ctx.msiCapOffset + PCI_MSI_FLAGS_OFFSET, 2);
    if (flags.err !== 0) return { ok: false, err: flags.err };
    if ((flags.value & PCI_MSI_FLAGS_ENABLE) !== 0) types |= INTERRUPT_TYPE.MSI;
  }
  if (ctx.msixCapOffset !== undefined) {
    const flags = rawRead(ctx.dev, ctx.msixCapOffset + PCI_MSIX_FLAGS_OFFSET, 2);
    if (flags.err !== 0) return { ok: false, err: flags.err };
    if ((flags.value & PCI_MSIX_FLAGS_ENABLE) !== 0) types |= INTERRUPT_TYPE.MSIX;
  }
  if ((types & (INTERRUPT_TYPE.MSI | INTERRUPT_TYPE.MSIX)) !== 0) types &= ~INTERRUPT_TYPE.INTX;
  return { ok: true, types };
}
