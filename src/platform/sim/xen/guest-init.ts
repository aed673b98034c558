// SPDX-License-Identifier: MIT
/**
 * What a guest's worker receives at start: plain structured-clonable data (shared
 * buffers and numbers), so it can go through `workerData` unchanged.
 */

/**
 * A simulated guest's view of the host, made by `SimHypervisor.createDomain` and handed
 * to the guest's worker.
 */
export interface SimGuestInit {
  /** The guest's domid. */
  readonly domid: number;
  /** Guest memory: `pageCount` frames of 4 KiB. */
  readonly memory: SharedArrayBuffer;
  /** The guest's v1 grant table. */
  readonly grantTable: SharedArrayBuffer;
  /** The host-wide event-channel area. */
  readonly events: SharedArrayBuffer;
  /** Frames 0..reservedPages-1 are not handed out by the guest's page allocator. */
  readonly reservedPages: number;
}

/** True when `value` has the shape of a {@link SimGuestInit} (checks a worker's input). */
export function isSimGuestInit(value: unknown): value is SimGuestInit {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['domid'] === 'number' &&
    v['memory'] instanceof SharedArrayBuffer &&
    v['grantTable'] instanceof SharedArrayBuffer &&
    v['events'] instanceof SharedArrayBuffer &&
    typeof v['reservedPages'] === 'number'
  );
}
