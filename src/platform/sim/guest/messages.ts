// SPDX-License-Identifier: MIT
/** What a simulated guest's worker and the simulated host say to each other. */
import type { SimGuestInit } from '../xen/guest-init.js';

/** `workerData` of a guest worker. */
export interface GuestWorkerData {
  readonly xen: SimGuestInit;
  readonly name: string;
  /** A name from `GUEST_PROGRAMS`. */
  readonly program: string;
  readonly backendDomid: number;
  /** pcifront's op timeout (the original's 2 s). */
  readonly opTimeoutMs: number;
}

/** Guest -> host. */
export type GuestToHost =
  | { readonly type: 'frontend-ready'; readonly grantRef: number; readonly eventPort: number }
  | { readonly type: 'report'; readonly report: unknown }
  | { readonly type: 'failed'; readonly error: string };

/** Host -> guest. */
export type HostToGuest =
  | {
      readonly type: 'backend-connected';
      /** `root-N` values: `[domain, bus]` pairs. */
      readonly roots: readonly (readonly [number, number])[];
    }
  | { readonly type: 'backend-failed'; readonly error: string };
