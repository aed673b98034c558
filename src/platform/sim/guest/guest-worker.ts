// SPDX-License-Identifier: MIT
/**
 * Worker entry of a simulated guest (not a test file: Node 20 workers load it from
 * dist/). It plays a PV guest kernel with pcifront: builds its hypercall interface from
 * the shared buffers it was given, creates the frontend (grant + unbound port), hands
 * both to the host's control plane, waits for the backend to connect, then runs its
 * program and posts the report.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { domId, evtchnPort, type EvtchnPort } from '../../types.js';
import { SimGuestHypercalls } from '../xen/guest-hypercalls.js';
import { isSimGuestInit } from '../xen/guest-init.js';
import { Pcifront } from '../../../pcifront/pcifront.js';
import { GUEST_PROGRAMS, isGuestProgramName } from '../../../pcifront/programs/index.js';
import type { GuestPciRoot } from '../../../pcifront/enumerate.js';
import type { GuestToHost, GuestWorkerData, HostToGuest } from './messages.js';

function waitInterruptsWith(hv: SimGuestHypercalls) {
  return (ports: readonly EvtchnPort[], count: number, timeoutMs: number): number[] => {
    const wanted = new Set<number>(ports);
    const fired: number[] = [];
    const deadline = performance.now() + timeoutMs;
    while (fired.length < count) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      for (const port of hv.wait(Math.min(left, 50))) if (wanted.has(port)) fired.push(port);
    }
    return fired;
  };
}

async function run(): Promise<void> {
  const port = parentPort;
  const data = workerData as GuestWorkerData;
  if (port === null) return;
  const post = (message: GuestToHost): void => {
    port.postMessage(message);
  };
  if (!isSimGuestInit(data.xen) || !isGuestProgramName(data.program)) {
    post({ type: 'failed', error: `Cannot start guest "${data.name}": bad worker data` });
    return;
  }
  const hv = new SimGuestHypercalls(data.xen);
  const front = Pcifront.create(hv, {
    backendDomid: domId(data.backendDomid),
    opTimeoutMs: data.opTimeoutMs,
  });
  const connected = new Promise<HostToGuest>((resolve) => {
    port.once('message', (message: HostToGuest) => {
      resolve(message);
    });
  });
  post({ type: 'frontend-ready', grantRef: front.grantRef, eventPort: front.eventPort });
  const answer = await connected;
  if (answer.type === 'backend-failed') {
    post({ type: 'failed', error: answer.error });
    return;
  }
  const roots: GuestPciRoot[] = answer.roots.map(([domain, bus]) => ({ domain, bus }));
  const lines: string[] = [];
  const report = await GUEST_PROGRAMS[data.program]({
    front,
    hv,
    roots,
    log: (line) => lines.push(line),
    bindPirq: (pirq) => {
      const bound = hv.bindPirq(pirq);
      return bound < 0 ? undefined : evtchnPort(bound);
    },
    waitInterrupts: waitInterruptsWith(hv),
  });
  post({ type: 'report', report });
}

run().catch((err: unknown) => {
  parentPort?.postMessage({
    type: 'failed',
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  } satisfies GuestToHost);
});
