// SPDX-License-Identifier: MIT
/**
 * What the benchmark guest (`pcifront-guest.ts`, a worker entry) and the benchmark host
 * (`sim-host.ts`) say to each other. Kept apart from the entry so importing it never
 * starts a guest.
 */
import type { SimGuestInit } from '../src/platform/sim/xen/guest-init.js';

/** `workerData` of the benchmark guest. */
export interface BenchGuestData {
  readonly xen: SimGuestInit;
  readonly name: string;
  readonly backendDomid: number;
  /** pcifront's op timeout (ms). */
  readonly opTimeoutMs: number;
  /** Loads of the awaited word before the guest blocks in `Atomics.wait`. */
  readonly spinIterations: number;
  /**
   * One int32 word: the host stores non-zero to end a `flood` or `burn` loop (those loops
   * never return to the worker's event loop, so a message would not be seen).
   */
  readonly control: SharedArrayBuffer;
}

/** A guest function address as pcifront addresses it. */
export interface BenchGuestAddress {
  readonly domain: number;
  readonly bus: number;
  readonly devfn: number;
}

/** Host -> guest. */
export type BenchHostMessage =
  | {
      readonly type: 'connected';
      /** `root-N` values as `[domain, bus]`. */
      readonly roots: readonly (readonly [number, number])[];
    }
  | { readonly type: 'connect-failed'; readonly error: string }
  /** `count` dword config reads of the 16 header dwords in turn, each one timed. */
  | { readonly type: 'reads'; readonly address: BenchGuestAddress; readonly count: number }
  /** `runs` enumerations of the published roots, each one timed. */
  | { readonly type: 'enumerate'; readonly runs: number }
  /** Notify the backend's port as fast as possible, `XEN_PCIF_active` clear, until stopped. */
  | { readonly type: 'flood' }
  /** Spin on the control word without notifying (a guest that only burns its CPU). */
  | { readonly type: 'burn' }
  | { readonly type: 'exit' };

/** Guest -> host. */
export type BenchGuestMessage =
  | { readonly type: 'frontend-ready'; readonly grantRef: number; readonly eventPort: number }
  | {
      readonly type: 'reads-done';
      /** One latency per read, in microseconds, as the guest measured it. */
      readonly latenciesUs: Float64Array;
      /** Reads that did not come back SUCCESSFUL (timeouts included). */
      readonly failures: number;
      readonly timeouts: number;
    }
  | {
      readonly type: 'enumerate-done';
      /** Wall time of each enumeration as the guest saw it, in ms. */
      readonly timesMs: readonly number[];
      /** Functions found by the last run. */
      readonly functions: number;
      /** pcifront ops issued by the last run. */
      readonly opsPerRun: number;
      readonly error: string | null;
    }
  | { readonly type: 'loop-done'; readonly notifies: number; readonly elapsedMs: number }
  | { readonly type: 'failed'; readonly error: string };
