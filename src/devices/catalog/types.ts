// SPDX-License-Identifier: MIT
/** Shapes shared by the catalog builders. */
import type { DeviceHooks } from '../hooks.js';
import type { SimulatedFunction } from '../simulated-function.js';
import type { FirmwareWindows } from './firmware.js';

/** One function of a catalog device. */
export interface CatalogFunction {
  /** Function number within the device (0..7). */
  readonly fn: number;
  readonly device: SimulatedFunction;
}

/** Options every catalog builder takes. */
export interface CatalogOptions extends FirmwareWindows {
  /** Legacy IRQ firmware routed to the device (interrupt line; default 11). */
  readonly irq?: number;
  /** Side effects, one set for all functions or one per function number. */
  readonly hooks?: DeviceHooks | ((fn: number) => DeviceHooks);
  /** Root port: its primary bus (default 0). */
  readonly primaryBus?: number;
  /** Root port: the bus below it (default primary + 1; subordinate is the same). */
  readonly secondaryBus?: number;
}

/** Default legacy IRQ of catalog devices. */
export const DEFAULT_IRQ = 11;

/** The hooks for function `fn`. */
export function hooksFor(options: CatalogOptions, fn: number): DeviceHooks {
  const hooks = options.hooks;
  if (hooks === undefined) return {};
  return typeof hooks === 'function' ? hooks(fn) : hooks;
}
