// SPDX-License-Identifier: MIT
/**
 * Worker entry of a simulated guest that uses xenstore over its ring (not a test file:
 * Node 20 workers load it from dist/). It exercises what a guest kernel does: write its
 * own nodes, watch one, and meanwhile block its thread in a pcifront-style
 * `waitForEvent` on another port while a xenstore reply is in flight. When done it
 * closes its client and lets the worker end on its own: a leftover timer or wait would
 * keep it alive.
 *
 * Protocol: the main thread sends nothing; it reacts to the posted steps.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { XsClient } from '../../../xenstore/client/index.js';
import { DOM0 } from '../../types.js';
import { SimGuestHypercalls } from './guest-hypercalls.js';
import { isSimGuestInit, type SimGuestInit } from './guest-init.js';
import { createGuestXenstoreTransport } from './guest-xenstore.js';

/** `workerData` of the worker. */
export interface XenstoreGuestData {
  readonly xen: SimGuestInit;
}

/** Messages the worker posts, in order. */
export type XenstoreGuestMessage =
  | { readonly type: 'ready'; readonly opPort: number }
  | { readonly type: 'written' }
  | { readonly type: 'blocking' }
  | {
      readonly type: 'unblocked';
      /** The op port's event reached the blocking wait (not swallowed by xenstore). */
      readonly opEvent: boolean;
      /** Milliseconds the thread was blocked. */
      readonly blockedMs: number;
    }
  | { readonly type: 'read'; readonly value: string }
  | { readonly type: 'event'; readonly path: string }
  | { readonly type: 'done' }
  | { readonly type: 'failed'; readonly message: string };

async function run(): Promise<void> {
  const out = parentPort;
  const data = workerData as XenstoreGuestData;
  if (out === null || !isSimGuestInit(data.xen)) return;
  const post = (m: XenstoreGuestMessage): void => {
    out.postMessage(m);
  };
  const hv = new SimGuestHypercalls(data.xen, { spinIterations: 0 });
  const xs = new XsClient(createGuestXenstoreTransport(hv, data.xen), { timeoutMs: 10_000 });
  try {
    // pcifront's op port: dom0 binds it and kicks it while we block on it.
    const opPort = hv.allocUnbound(DOM0);
    post({ type: 'ready', opPort });
    await xs.write('data/worker', 'up');
    post({ type: 'written' });

    // A reply in flight while the thread blocks like pcifront's op loop.
    const pending = xs.readString('data/from-dom0');
    post({ type: 'blocking' });
    const t0 = performance.now();
    const opEvent = hv.waitForEvent(opPort, 5000);
    post({ type: 'unblocked', opEvent, blockedMs: performance.now() - t0 });
    post({ type: 'read', value: await pending });

    // A watch event from dom0.
    await new Promise<void>((resolve, reject) => {
      xs.watch('data/cmd', 'cmd', (ev) => {
        post({ type: 'event', path: ev.path });
        if (ev.path === 'data/cmd/go') resolve();
      }).catch(reject);
    });
    post({ type: 'done' });
  } catch (e) {
    post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
  } finally {
    xs.close();
  }
}

void run();
