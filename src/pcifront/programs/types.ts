// SPDX-License-Identifier: MIT
/** What a built-in guest program receives and returns. */
import type { EvtchnPort, GuestHypercalls } from '../../platform/types.js';
import type { GuestPciRoot } from '../enumerate.js';
import type { Pcifront } from '../pcifront.js';

/** The environment a guest program runs in (built by the guest worker entry). */
export interface GuestProgramEnv {
  readonly front: Pcifront;
  readonly hv: GuestHypercalls;
  /** Roots published by the backend (`root-N`); empty means "try 0000:00". */
  readonly roots: readonly GuestPciRoot[];
  /** One line of the guest's console. */
  log(line: string): void;
  /**
   * Binds a pirq to a new local port (`PHYSDEVOP_map_pirq` + `EVTCHNOP_bind_pirq`), or
   * undefined when it cannot. Absent until interrupt delivery exists.
   */
  readonly bindPirq?: ((pirq: number) => EvtchnPort | undefined) | undefined;
  /**
   * Waits until `count` events arrived on `ports` or `timeoutMs` passed; returns the
   * ports that fired, one element per event. Absent until interrupt delivery exists.
   */
  readonly waitInterrupts?:
    ((ports: readonly EvtchnPort[], count: number, timeoutMs: number) => number[]) | undefined;
}

/** What a program reports. */
export interface ProgramReport {
  /** The program's registry name. */
  readonly program: string;
  /** False when the program could not do its job or a check failed. */
  readonly ok: boolean;
  /** One line for humans. */
  readonly summary: string;
  /** Everything the program logged, in order. */
  readonly lines: readonly string[];
  /**
   * Structured results (program-specific), plain JSON-compatible data only, so a report
   * crosses `postMessage` and `--json` unchanged.
   */
  readonly data: Readonly<Record<string, unknown>>;
}

/** A built-in guest program. */
export type GuestProgram = (env: GuestProgramEnv) => Promise<ProgramReport>;
