// SPDX-License-Identifier: MIT
/**
 * Worker entry of a minimal simulated guest for the interrupt tests (not a test file:
 * Node 20 workers load it from dist/). It binds `workerData.pirq` to a port, reports the
 * port, then waits for `rounds` events on it, reporting each (the host fires the next
 * interrupt only after the report, since event channels coalesce), and closes the port.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EvtchnPort } from '../../types.js';
// Not '../xen/index.js': it re-exports round-trip-guest.js, whose module body runs that
// worker's program whenever it is loaded inside a worker.
import { SimGuestHypercalls } from '../xen/guest-hypercalls.js';
import { isSimGuestInit, type SimGuestInit } from '../xen/guest-init.js';

/** `workerData` of this entry. */
export interface PirqGuestData {
  readonly xen: SimGuestInit;
  readonly pirq: number;
  readonly rounds: number;
  readonly timeoutMs: number;
}

/** Messages this worker posts. */
export type PirqGuestMessage =
  | { readonly type: 'bound'; readonly port: number }
  | { readonly type: 'event'; readonly round: number }
  | { readonly type: 'timeout'; readonly round: number }
  | { readonly type: 'done' };

function run(): void {
  const out = parentPort;
  const data = workerData as PirqGuestData;
  if (out === null || !isSimGuestInit(data.xen)) return;
  const post = (m: PirqGuestMessage): void => {
    out.postMessage(m);
  };
  const hv = new SimGuestHypercalls(data.xen);
  const port = hv.bindPirq(data.pirq);
  post({ type: 'bound', port });
  if (port <= 0) return;
  for (let round = 0; round < data.rounds; round++) {
    if (!hv.waitForEvent(port as EvtchnPort, data.timeoutMs)) {
      post({ type: 'timeout', round });
      break;
    }
    post({ type: 'event', round });
  }
  hv.closePort(port as EvtchnPort);
  post({ type: 'done' });
}

run();
