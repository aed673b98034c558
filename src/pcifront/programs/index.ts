// SPDX-License-Identifier: MIT
/** The built-in guest programs, by the name a machine file uses. */
import { enumerateProgram } from './enumerate.js';
import { msiProgram } from './msi.js';
import { msixProgram } from './msix.js';
import type { GuestProgram } from './types.js';
import { xsa155Program } from './xsa155.js';
import { xsa157Program } from './xsa157.js';
import { xsa332Program } from './xsa332.js';

export type { GuestProgram, GuestProgramEnv, ProgramReport } from './types.js';
export { createXsa332Program, type Xsa332Options } from './xsa332.js';

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
} satisfies Record<string, GuestProgram>);

/** A built-in program name. */
export type GuestProgramName = keyof typeof GUEST_PROGRAMS;

/** True when `name` is a built-in program. */
export function isGuestProgramName(name: string): name is GuestProgramName {
  return Object.hasOwn(GUEST_PROGRAMS, name);
}
