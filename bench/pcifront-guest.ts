// SPDX-License-Identifier: MIT
/**
 * Worker entry of the benchmark guest (bench-only; Node 20 workers load it from dist/).
 * Like the simulator's guest worker it builds its hypercalls from shared memory, creates
 * pcifront, hands the grant and port to the host and waits to be connected; then it runs
 * the host's commands one at a time (timed config reads, timed enumerations, a notify
 * flood, a CPU burn) and posts the figures it measured itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { domId } from '../src/platform/types.js';
import { SimGuestHypercalls } from '../src/platform/sim/xen/guest-hypercalls.js';
import { isSimGuestInit } from '../src/platform/sim/xen/guest-init.js';
import { PCIBIOS } from '../src/abi/pcibios.js';
import { Pcifront } from '../src/pcifront/pcifront.js';
import { enumerate, type GuestPciRoot } from '../src/pcifront/enumerate.js';
import type { BenchGuestData, BenchGuestMessage, BenchHostMessage } from './guest-protocol.js';

const HEADER_DWORDS = 16;
/** Notifies (or control-word loads) between two looks at the stop word. */
const LOOP_BATCH = 1024;

function run(): void {
  const port = parentPort;
  const data = workerData as BenchGuestData;
  if (port === null) return;
  const post = (message: BenchGuestMessage, transfer?: ArrayBuffer[]): void => {
    port.postMessage(message, transfer);
  };
  if (!isSimGuestInit(data.xen)) {
    post({ type: 'failed', error: `Cannot start bench guest "${data.name}": bad worker data` });
    return;
  }
  const hv = new SimGuestHypercalls(data.xen, { spinIterations: data.spinIterations });
  const control = new Int32Array(data.control);
  const front = Pcifront.create(hv, {
    backendDomid: domId(data.backendDomid),
    opTimeoutMs: data.opTimeoutMs,
    // The blocking rows measure a guest that sleeps at once: no spinning in pcifront either.
    ...(data.spinIterations === 0 ? { opSpinIterations: 0 } : {}),
  });
  let roots: GuestPciRoot[] = [];

  const stopped = (): boolean => Atomics.load(control, 0) !== 0 || hv.dying;

  const handle = (message: BenchHostMessage): void => {
    switch (message.type) {
      case 'connected':
        roots = message.roots.map(([domain, bus]) => ({ domain, bus }));
        return;
      case 'connect-failed':
        post({ type: 'failed', error: message.error });
        return;
      case 'reads': {
        const latenciesUs = new Float64Array(message.count);
        let failures = 0;
        let timeouts = 0;
        for (let i = 0; i < message.count; i++) {
          const t0 = performance.now();
          const r = front.readConfig(message.address, (i % HEADER_DWORDS) * 4, 4);
          latenciesUs[i] = (performance.now() - t0) * 1000;
          if (r.pcibios !== PCIBIOS.SUCCESSFUL) failures += 1;
          if (r.timedOut) timeouts += 1;
        }
        post({ type: 'reads-done', latenciesUs, failures, timeouts }, [latenciesUs.buffer]);
        return;
      }
      case 'enumerate': {
        const timesMs: number[] = [];
        let functions = 0;
        let opsPerRun = 0;
        let error: string | null = null;
        for (let i = 0; i < message.runs; i++) {
          const ops0 = front.stats().ops;
          const t0 = performance.now();
          const result = enumerate(front, { roots });
          timesMs.push(performance.now() - t0);
          opsPerRun = front.stats().ops - ops0;
          functions = result.devices.length;
          error = result.error ?? null;
        }
        post({ type: 'enumerate-done', timesMs, functions, opsPerRun, error });
        return;
      }
      case 'flood': {
        // A hostile frontend: kicks without ever setting XEN_PCIF_active.
        const t0 = performance.now();
        let notifies = 0;
        while (!stopped()) {
          for (let i = 0; i < LOOP_BATCH; i++) hv.notify(front.eventPort);
          notifies += LOOP_BATCH;
        }
        post({ type: 'loop-done', notifies, elapsedMs: performance.now() - t0 });
        return;
      }
      case 'burn': {
        const t0 = performance.now();
        while (!stopped()) {
          for (let i = 0; i < LOOP_BATCH; i++) Atomics.load(control, 0);
        }
        post({ type: 'loop-done', notifies: 0, elapsedMs: performance.now() - t0 });
        return;
      }
      case 'exit':
        front.close();
        port.close();
        return;
    }
  };

  port.on('message', (message: BenchHostMessage) => {
    try {
      handle(message);
    } catch (err) {
      post({
        type: 'failed',
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
    }
  });
  post({ type: 'frontend-ready', grantRef: front.grantRef, eventPort: front.eventPort });
}

run();
