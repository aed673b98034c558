// SPDX-License-Identifier: MIT
/**
 * The serializable state of a simulated function (vm-superio's `SerialState`): plain
 * JSON-safe data, apart from behaviour. Byte arrays are lowercase hex; sizes are hex
 * strings (`'0x4000'`) because JSON has no bigint.
 */
import type { BarMemoryPage } from './bar-memory.js';
import type { ResetKind } from './feature.js';

/** How many resets of each kind a function went through. */
export interface ResetCounts {
  readonly flr: number;
  readonly afFlr: number;
  readonly pm: number;
  readonly bus: number;
}

/** Counter field of each reset kind. */
export const RESET_COUNT_FIELD = {
  flr: 'flr',
  'af-flr': 'afFlr',
  pm: 'pm',
  bus: 'bus',
} as const satisfies Record<ResetKind, keyof ResetCounts>;

/** Everything needed to rebuild a `SimulatedFunction` with `fromState()`. */
export interface SimulatedFunctionState {
  /** Format version of this object. */
  readonly version: 1;
  /** Current config bytes (hex). */
  readonly config: string;
  /** Power-on config bytes (hex). */
  readonly defaults: string;
  /** Size of every BAR slot (`'0'`..`'5'`, `'6'` = ROM); `'0x0'` for absent ones. */
  readonly barSizes: Readonly<Record<string, string>>;
  /** Per-VF sizes of the SR-IOV VF BARs (physical functions only). */
  readonly vfBarSizes: Readonly<Record<string, string>>;
  /** Config image of this PF's VFs (hex), when the hardware defines one. */
  readonly vfTemplate?: string;
  /** VPD ROM bytes (hex), when the function has a VPD capability. */
  readonly vpdRom?: string;
  /** Set for an SR-IOV virtual function: its index under its PF. */
  readonly virtualFunction?: { readonly vfIndex: number };
  /** MSI-X table and PBA bytes (hex). */
  readonly msix?: { readonly table: string; readonly pba: string };
  /** Pending MSI vectors. */
  readonly msiPending: number;
  /** Level of the function's internal interrupt (before INTX_DISABLE). */
  readonly intxAsserted: boolean;
  readonly resetCounts: ResetCounts;
  /** Non-zero pages of plain BAR memory. */
  readonly barMemory: readonly BarMemoryPage[];
}

/** Encodes a size map for the state object. */
export function sizesToRecord(sizes: ReadonlyMap<number, bigint>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [index, size] of [...sizes].sort((a, b) => a[0] - b[0])) {
    out[String(index)] = `0x${size.toString(16)}`;
  }
  return out;
}

/**
 * Decodes a size map from a state object.
 *
 * @throws {SyntaxError} for keys that are not slot numbers or values that are not sizes.
 */
export function sizesFromRecord(record: Readonly<Record<string, string>>): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const [key, value] of Object.entries(record)) {
    if (!/^[0-6]$/.test(key) || !/^0x[0-9a-f]+$/i.test(value)) {
      throw new SyntaxError(
        `Cannot read BAR size "${key}": "${value}" is not a hex size of slot 0-6`,
      );
    }
    out.set(Number(key), BigInt(value));
  }
  return out;
}
