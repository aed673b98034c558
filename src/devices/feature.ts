// SPDX-License-Identifier: MIT
/**
 * The contract between a simulated function and the register behaviours it is made of
 * (header, BARs, one per capability). Masks express most of the PCI rules; a feature
 * only adds what masks cannot: side effects of writes and state outside config space.
 */
import type { ConfigWriteAccess } from './access.js';
import type { DeviceHooks } from './hooks.js';
import type { RegisterFile } from './register-file.js';

/** Why a function reset: PCIe FLR, Advanced Features FLR, PM D3hot->D0, bus reset. */
export type ResetKind = 'flr' | 'af-flr' | 'pm' | 'bus';

/** What a feature may use of the function it belongs to. */
export interface FunctionContext {
  readonly regs: RegisterFile;
  readonly hooks: DeviceHooks;
  /** Asks for a reset once the current config write has been processed. */
  requestReset(kind: ResetKind): void;
  /** True when the function may master the bus (MASTER in its command register). */
  busMasterEnabled(): boolean;
  /** Current PM power state (0 = D0 .. 3 = D3hot); D0 without a PM capability. */
  powerState(): number;
}

/** A behaviour attached to some registers of a function. */
export interface DeviceFeature {
  /** Runs after the masked write of every config access (the feature filters). */
  afterConfigWrite?(access: ConfigWriteAccess): void;
  /** Runs after the register file was reset; re-syncs state kept outside it. */
  afterReset?(): void;
  /** Adjusts derived power-on values of registers whose reset value is not 0. */
  adjustDefaults?(): void;
}
