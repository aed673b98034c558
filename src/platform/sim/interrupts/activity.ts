// SPDX-License-Identifier: MIT
/**
 * Device activity for the simulator: makes a simulated function raise interrupts the
 * way its driver's work would (a NIC receiving packets, a disk completing commands), so
 * a machine can generate traffic once a guest has enabled MSI/MSI-X.
 */
import type { SimulatedFunction } from '../../../devices/index.js';
import type { SimHostPciDevice } from '../pci-core.js';

/** What to fire and how often. */
export interface FireInterruptsOptions {
  /** MSI vectors to raise each round. */
  readonly msi?: readonly number[];
  /** MSI-X table entries to raise each round. */
  readonly msix?: readonly number[];
  /** Pulse INTx (assert then deassert) once each round. */
  readonly intx?: boolean;
  /** Rounds (default 1). */
  readonly count?: number;
}

/** What the function did. */
export interface FireInterruptsResult {
  /** Messages that left the function at once (reported through `onMessage`). */
  readonly sent: number;
  /**
   * Signals the function held instead (MSI/MSI-X disabled or masked, bus mastering off,
   * not in D0): held ones go out when that changes, MSI-X ones while disabled are lost.
   */
  readonly held: number;
  /** INTx pulses driven. */
  readonly intxPulses: number;
}

/**
 * Makes `device` signal: per round, each listed MSI vector, each listed MSI-X entry,
 * then an INTx pulse. Bad vector or entry numbers are held/ignored by the hardware as
 * it would; the function never throws for them.
 *
 * @throws {RangeError} for a count that is not a non-negative integer.
 * @example
 * fireInterrupts(host, { msix: [0, 1], count: 100 }); // { sent: 200, held: 0, intxPulses: 0 }
 */
export function fireInterrupts(
  device: SimHostPciDevice | SimulatedFunction,
  options: FireInterruptsOptions,
): FireInterruptsResult {
  const count = options.count ?? 1;
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`Cannot fire interrupts "${count}" times: use a non-negative integer`);
  }
  const hw = 'hardware' in device ? device.hardware : device;
  let sent = 0;
  let held = 0;
  let intxPulses = 0;
  for (let round = 0; round < count; round++) {
    for (const vector of options.msi ?? []) {
      if (hw.signalMsi(vector)) sent++;
      else held++;
    }
    for (const entry of options.msix ?? []) {
      if (hw.signalMsix(entry)) sent++;
      else held++;
    }
    if (options.intx === true) {
      hw.setIntx(true);
      hw.setIntx(false);
      intxPulses++;
    }
  }
  return { sent, held, intxPulses };
}
