// SPDX-License-Identifier: MIT
/** Counters of guest ops by command, for the simulator's output and statistics. */
import { xenPciOpName, type XenPciOpName } from '../../abi/pciif.js';

/** Ops seen per command name; `unknown` counts every `cmd` outside 0..10. */
export type OpCounts = Record<XenPciOpName | 'unknown', number>;

/** All-zero counters. */
export function createOpCounts(): OpCounts {
  return {
    conf_read: 0,
    conf_write: 0,
    enable_msi: 0,
    disable_msi: 0,
    enable_msix: 0,
    disable_msix: 0,
    aer_detected: 0,
    aer_resume: 0,
    aer_mmio: 0,
    aer_slotreset: 0,
    enable_multi_msi: 0,
    unknown: 0,
  };
}

/** Count one op with the guest's `cmd` (any u32). */
export function countOp(counts: OpCounts, cmd: number): void {
  counts[xenPciOpName(cmd) ?? 'unknown']++;
}
