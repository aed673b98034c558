// SPDX-License-Identifier: MIT
/** The built-in guest programs, by the name a machine file uses. */
import { aerProgram, aerSilentProgram, recoveringAerDriver, silentAerDriver } from './aer.js';
import type { GuestAerDriver } from './aer.js';
import { enumerateProgram } from './enumerate.js';
import { msiProgram } from './msi.js';
import { msixProgram } from './msix.js';
import type { GuestProgram } from './types.js';
import { xsa155Program } from './xsa155.js';
import { xsa157Program } from './xsa157.js';
import { xsa332Program } from './xsa332.js';

export type { GuestProgram, GuestProgramEnv, ProgramReport } from './types.js';
export { createXsa332Program, type Xsa332Options } from './xsa332.js';
export {
  SILENT_ANSWER_AFTER_MS,
  createSilentAerDriver,
  recoveringAerDriver,
  silentAerDriver,
  type GuestAerDriver,
  type GuestAerEnv,
  type SilentAerDriverOptions,
} from './aer.js';

/**
 * Program name -> program.
 *
 * @example
 * const report = await GUEST_PROGRAMS['attack:xsa157'](env);
 */
export const GUEST_PROGRAMS = Object.freeze({
  enumerate: enumerateProgram,
  msi: msiProgram,
  msix: msixProgram,
  'attack:xsa155': xsa155Program,
  'attack:xsa157': xsa157Program,
  'attack:xsa332': xsa332Program,
  aer: aerProgram,
  'aer-silent': aerSilentProgram,
} satisfies Record<string, GuestProgram>);

/** A built-in program name. */
export type GuestProgramName = keyof typeof GUEST_PROGRAMS;

/** True when `name` is a built-in program. */
export function isGuestProgramName(name: string): name is GuestProgramName {
  return Object.hasOwn(GUEST_PROGRAMS, name);
}

/**
 * The error handlers of the programs that bind a driver with them: the guest kernel gives
 * the handler to `Pcifront.create` (pcifront takes it at creation). Programs not listed
 * have none: pcifront then answers NONE to every AER request (spec §9).
 *
 * @example
 * const driver = guestAerDriver('aer');
 * const front = Pcifront.create(hv, { backendDomid, aerHandler: driver?.({ log, front: () => front }) });
 */
export const GUEST_AER_DRIVERS: Readonly<Partial<Record<GuestProgramName, GuestAerDriver>>> =
  Object.freeze({ aer: recoveringAerDriver, 'aer-silent': silentAerDriver });

/** The AER driver of program `name`, or undefined when it has none. */
export function guestAerDriver(name: GuestProgramName): GuestAerDriver | undefined {
  return GUEST_AER_DRIVERS[name];
}
