// SPDX-License-Identifier: MIT
/**
 * Worker entry of a minimal simulated guest (not a test file: Node 20 workers load it
 * from dist/). It grants one page to dom0, allocates a port for dom0, reports both, then
 * plays one role chosen in `workerData.mode`:
 * - `client`: issues requests like pcifront's `do_pci_op` (write the request, set the
 *   active bit, notify, poll until the backend clears the bit) and reports latencies;
 * - `echo`: answers each event from dom0 by writing `word0 + 1` to word 1 and notifying;
 * - `flood`: notifies as fast as it can until destroyed (a hostile frontend).
 *
 * Page words: 0 request, 1 answer, 2 "backend connected" flag, 3 active flag (bit 0).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DOM0 } from '../../types.js';
import { SimGuestHypercalls } from './guest-hypercalls.js';
import { isSimGuestInit } from './guest-init.js';
import {
  ROUND_TRIP_WORD,
  type RoundTripGuestData,
  type RoundTripGuestMessage,
} from './round-trip-protocol.js';

function run(): void {
  const port0 = parentPort;
  const data = workerData as RoundTripGuestData;
  if (port0 === null || !isSimGuestInit(data.xen)) return;
  const post = (m: RoundTripGuestMessage): void => {
    port0.postMessage(m);
  };
  const hv = new SimGuestHypercalls(data.xen, { spinIterations: data.spinIterations });
  const page = hv.allocPage();
  const words = hv.pageWords(page);
  const ref = hv.grantAccess(DOM0, page);
  const port = hv.allocUnbound(DOM0);
  post({ type: 'ready', port, ref });

  if (data.mode === 'flood') {
    let sent = 0;
    while (!hv.dying) {
      for (let i = 0; i < 1024; i++) hv.notify(port);
      sent += 1024;
    }
    post({ type: 'stopped', sent });
    return;
  }

  if (data.mode === 'echo') {
    while (!hv.dying) {
      if (!hv.waitForEvent(port, data.timeoutMs)) continue;
      Atomics.store(
        words,
        ROUND_TRIP_WORD.ANSWER,
        Atomics.load(words, ROUND_TRIP_WORD.REQUEST) + 1,
      );
      hv.notify(port);
    }
    post({ type: 'stopped', sent: 0 });
    return;
  }

  // client: wait for the backend to say it is connected (it writes the flag, then notifies).
  while (Atomics.load(words, ROUND_TRIP_WORD.CONNECTED) === 0) {
    if (hv.dying) return;
    hv.waitForEvent(port, data.timeoutMs);
  }
  const latenciesUs: number[] = [];
  let timeouts = 0;
  let wrongAnswers = 0;
  for (let i = 0; i < data.iterations && !hv.dying; i++) {
    const t0 = performance.now();
    Atomics.store(words, ROUND_TRIP_WORD.REQUEST, i);
    Atomics.or(words, ROUND_TRIP_WORD.ACTIVE, 1);
    hv.notify(port);
    const deadline = t0 + data.timeoutMs;
    while ((Atomics.load(words, ROUND_TRIP_WORD.ACTIVE) & 1) !== 0) {
      const left = deadline - performance.now();
      if (left <= 0) {
        // pcifront: "pciback not responding": take the bit back, count the failure.
        Atomics.and(words, ROUND_TRIP_WORD.ACTIVE, ~1);
        timeouts += 1;
        break;
      }
      hv.waitForEvent(port, left);
    }
    latenciesUs.push((performance.now() - t0) * 1000);
    if (Atomics.load(words, ROUND_TRIP_WORD.ANSWER) !== i + 1) wrongAnswers += 1;
  }
  post({ type: 'done', latenciesUs, timeouts, wrongAnswers });
}

run();
