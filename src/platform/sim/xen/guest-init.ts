// SPDX-License-Identifier: MIT
/**
 * What a guest's worker receives at start: plain structured-clonable data (shared
 * buffers and numbers), so it can go through `workerData` unchanged.
 */

/**
 * The guest's xenstore connection as the domain builder sets it up (`start_info`'s
 * `store_mfn` and `store_evtchn`): its ring page, granted to dom0 through the reserved
 * grant ref 1, and an unbound port for dom0.
 */
export interface SimGuestXenstore {
  /** Guest frame of the ring page (0, a reserved page). */
  readonly gfn: number;
  /** The guest's store event-channel port, unbound for dom0 until INTRODUCE. */
  readonly port: number;
}

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
  /** The xenstore ring and port; absent for dom0 and domains created without one. */
  readonly xenstore?: SimGuestXenstore;
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
    typeof v['reservedPages'] === 'number' &&
    (v['xenstore'] === undefined || isSimGuestXenstore(v['xenstore']))
  );
}

function isSimGuestXenstore(value: unknown): value is SimGuestXenstore {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    Number.isInteger(v['gfn']) &&
    (v['gfn'] as number) >= 0 &&
    Number.isInteger(v['port']) &&
    (v['port'] as number) > 0
  );
}
