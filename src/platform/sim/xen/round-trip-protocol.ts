// SPDX-License-Identifier: MIT
/**
 * What the round-trip guest (`round-trip-guest.ts`, a worker entry) and its host agree
 * on. Kept apart from the entry so importing it never starts a guest.
 */
import type { SimGuestInit } from './guest-init.js';

/** `workerData` of the round-trip guest. */
export interface RoundTripGuestData {
  readonly xen: SimGuestInit;
  readonly mode: 'client' | 'echo' | 'flood';
  readonly iterations: number;
  readonly spinIterations: number;
  readonly timeoutMs: number;
}

/** Messages this worker posts. */
export type RoundTripGuestMessage =
  | { readonly type: 'ready'; readonly port: number; readonly ref: number }
  | {
      readonly type: 'done';
      readonly latenciesUs: number[];
      readonly timeouts: number;
      readonly wrongAnswers: number;
    }
  | { readonly type: 'stopped'; readonly sent: number };

/** Word indices in the shared page. */
export const ROUND_TRIP_WORD = { REQUEST: 0, ANSWER: 1, CONNECTED: 2, ACTIVE: 3 } as const;
