// SPDX-License-Identifier: MIT
/**
 * Counters of guest config writes the virtualizer refused or ignored. The original
 * only logs the first dropped write per device; this audit records every one, bounded
 * in memory: one counter per (reason, register offset, size), never one per event.
 */
import type { ConfigAccessSize } from '../../platform/types.js';

/** Why a guest write did not reach hardware as written. */
export const DENIED_WRITE_REASON = {
  /** No field covers the register and permissive mode is off: dropped (§5.3 step 3). */
  uncovered: 'uncovered-register',
  /**
   * A field without a write handler (IDs, interrupt line/pin, latency timer, capability
   * headers, PMC, VPD data, ...) got a value that differs from what the guest reads.
   */
  readOnlyField: 'read-only-field',
  /** A BAR/ROM write that is neither a sizing probe nor the assigned address (§5.7). */
  barWrite: 'bar-relocation',
  /** A BIST write that is neither "start" nor the current value (§5.5). */
  bist: 'bist-filtered',
  /** A VPD address write with the F flag set: VPD writes are forbidden (§5.8). */
  vpdWrite: 'vpd-write',
  /** A PMCSR write trying to change PME_Enable, which the guest may never set (§5.8). */
  pmeEnable: 'pme-enable',
  /** The PCI core refused the requested power state; the guest got -3 (§5.8). */
  powerState: 'power-state-refused',
  /** An MSI/MSI-X Message Control write refused with -3 (§5.8). */
  interruptControl: 'interrupt-control',
} as const;

/** One of {@link DENIED_WRITE_REASON}. */
export type DeniedWriteReason = (typeof DENIED_WRITE_REASON)[keyof typeof DENIED_WRITE_REASON];

const REASONS: readonly DeniedWriteReason[] = Object.values(DENIED_WRITE_REASON);

/** Offsets outside the 4 KiB config space are counted together under this offset. */
export const OUT_OF_RANGE_OFFSET = -1;

/** Bytes of config space whose offsets are recorded individually. */
const TRACKED_BYTES = 4096;

/** One counter of the audit. */
export interface DeniedWrite {
  /**
   * Register offset: the request's offset for uncovered writes, the field's absolute
   * offset otherwise; {@link OUT_OF_RANGE_OFFSET} for requests outside 0..0xfff.
   */
  readonly byteOffset: number;
  /** Request size for uncovered writes, field size otherwise. */
  readonly sizeBytes: ConfigAccessSize;
  readonly reason: DeniedWriteReason;
  /** How many writes were denied for this (reason, offset, size). */
  readonly count: number;
}

interface Counter {
  readonly byteOffset: number;
  readonly sizeBytes: ConfigAccessSize;
  readonly reason: DeniedWriteReason;
  count: number;
}

/**
 * Denied-write counters of one device.
 *
 * @example
 * const audit = new DeniedWriteAudit();
 * audit.record(0x06, 2, DENIED_WRITE_REASON.uncovered);
 * audit.list(); // [{ byteOffset: 6, sizeBytes: 2, reason: 'uncovered-register', count: 1 }]
 */
export class DeniedWriteAudit {
  readonly #counters = new Map<number, Counter>();

  /** Count one denied write. */
  record(byteOffset: number, sizeBytes: ConfigAccessSize, reason: DeniedWriteReason): void {
    const offset =
      Number.isInteger(byteOffset) && byteOffset >= 0 && byteOffset < TRACKED_BYTES
        ? byteOffset
        : OUT_OF_RANGE_OFFSET;
    // Numeric key: reason index, offset + 1 (13 bits), size (3 bits).
    const key = REASONS.indexOf(reason) * 0x10000 + (offset + 1) * 8 + sizeBytes;
    const counter = this.#counters.get(key);
    if (counter === undefined) {
      this.#counters.set(key, { byteOffset: offset, sizeBytes, reason, count: 1 });
    } else {
      counter.count++;
    }
  }

  /** Snapshot of all counters, by offset, then size, then reason. */
  list(): readonly DeniedWrite[] {
    return [...this.#counters.values()]
      .map((c) => Object.freeze({ ...c }))
      .sort(
        (a, b) =>
          a.byteOffset - b.byteOffset ||
          a.sizeBytes - b.sizeBytes ||
          REASONS.indexOf(a.reason) - REASONS.indexOf(b.reason),
      );
  }

  /** Sum of all counters. */
  total(): number {
    let sum = 0;
    for (const c of this.#counters.values()) sum += c.count;
    return sum;
  }

  /** Forget every counter. */
  clear(): void {
    this.#counters.clear();
  }
}
