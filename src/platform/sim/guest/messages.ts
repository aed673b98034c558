// SPDX-License-Identifier: MIT
/**
 * What a simulated guest's worker and the simulated host say to each other. The
 * control plane itself goes through xenstore (the guest's ring); these messages only
 * carry what a console would show, so the host can report and tests can wait on it.
 */
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
  /** How long to wait for the backend to be Connected before giving up. */
  readonly connectTimeoutMs: number;
  /**
   * Keep running after the program has reported, following hot attach and detach, until
   * the host says `stop` (or destroys the domain).
   */
  readonly stayAlive: boolean;
}

/** One function as the guest lists it after a scan. */
export interface GuestDeviceLine {
  /** Guest address, `DDDD:BB:SS.F`. */
  readonly address: string;
  /** `vvvv:dddd`. */
  readonly ids: string;
  readonly classCode: number;
}

/** Guest -> host. */
export type GuestToHost =
  | {
      readonly type: 'connected';
      /** `root-N` values as `DDDD:BB`. */
      readonly roots: readonly string[];
      readonly devices: readonly GuestDeviceLine[];
    }
  | {
      readonly type: 'rescanned';
      readonly added: readonly string[];
      readonly removed: readonly string[];
      readonly devices: readonly GuestDeviceLine[];
    }
  | { readonly type: 'device-removed'; readonly address: string }
  | { readonly type: 'closed' }
  /** A line of the guest kernel's console outside its program's report (an AER callback). */
  | { readonly type: 'console'; readonly line: string }
  | { readonly type: 'report'; readonly report: unknown }
  | { readonly type: 'failed'; readonly error: string };

/** Host -> guest. */
export type HostToGuest = { readonly type: 'stop' };
