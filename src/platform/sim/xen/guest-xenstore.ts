// SPDX-License-Identifier: MIT
/**
 * A simulated guest's xenstore connection: `XsClient` over the ring page and store port
 * the domain builder gave it (`SimGuestInit.xenstore`), for use inside the guest's worker
 * (or on the same thread in tests).
 *
 * Wake-ups are asynchronous, so the worker's event loop keeps running: the transport
 * waits with `Atomics.waitAsync` on the domain's poll sequence word, registered as a
 * poller (the simulator's SCHEDOP_poll: every newly pending port of the domain bumps the
 * sequence while someone polls, masked or not). It clears and looks at its own port
 * only, so it never consumes another port's pending bit, and its port is masked, so
 * `wait()` callers (interrupt loops) never see, and never swallow, xenstore kicks.
 *
 * The other way round, pcifront blocks its thread in `poll`/`waitForEvent` on its op
 * port; nothing there clears the store port, and while the thread is blocked the
 * transport simply runs later: on resume the pending `waitAsync` resolves (the sequence
 * moved) or the periodic sweep finds the ring changed. The sweep (default every 50 ms)
 * re-checks both rings regardless of events, so no lost wake-up can strand a reply.
 * While registered as a poller, every event of the domain also wakes pcifront's
 * blocking poll once more; its loop re-checks its own port and waits again.
 */
import { XsRingClientTransport, type XsRingWakeSource } from '../../../xenstore/ring/index.js';
import { PcibackError } from '../../../errors.js';
import type { EvtchnPort } from '../../types.js';
import { EventArea } from './event-area.js';
import type { SimGuestInit } from './guest-init.js';
import type { SimGuestHypercalls } from './guest-hypercalls.js';

/** Options of {@link createGuestXenstoreTransport}. */
export interface GuestXenstoreTransportOptions {
  /** Period of the ring re-check that runs whatever the events (default 50 ms). */
  readonly sweepIntervalMs?: number;
}

/**
 * Wakes the ring client on the store port's events and on a periodic sweep, without
 * consuming any other port's state (see the module comment).
 */
class SimStorePortWakeSource implements XsRingWakeSource {
  readonly #hv: SimGuestHypercalls;
  readonly #port: EvtchnPort;
  readonly #words: Int32Array;
  readonly #seqIndex: number;
  readonly #pollersIndex: number;
  readonly #sweepMs: number;
  #cb: (() => void) | undefined;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #running = false;
  #stopped = false;

  constructor(hv: SimGuestHypercalls, area: EventArea, port: EvtchnPort, sweepMs: number) {
    this.#hv = hv;
    this.#port = port;
    this.#words = area.words;
    this.#seqIndex = area.pollSeqIndex(hv.domid);
    this.#pollersIndex = area.pollersIndex(hv.domid);
    this.#sweepMs = sweepMs;
  }

  onWake(cb: () => void): void {
    this.#cb = cb;
    if (this.#running || this.#stopped) return;
    this.#running = true;
    this.#hv.mask(this.#port);
    // A poller from now on: every newly pending port of the domain bumps the sequence.
    Atomics.add(this.#words, this.#pollersIndex, 1);
    this.#sweep = setInterval(() => {
      this.#fire();
    }, this.#sweepMs);
    this.#arm();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cb = undefined;
    if (!this.#running) return;
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    // Never below 0: a destroyed domain's slot was zeroed, and a new one may use it.
    if (!this.#hv.dying) {
      for (let i = 0; i < 16; i++) {
        const v = Atomics.load(this.#words, this.#pollersIndex);
        if (v <= 0) break;
        if (Atomics.compareExchange(this.#words, this.#pollersIndex, v, v - 1) === v) break;
      }
    }
    // Ends our pending waitAsync now; any other waiter on the word just re-checks.
    Atomics.notify(this.#words, this.#seqIndex);
  }

  /**
   * Read the sequence, clear our pending bit (so the next kick is a 0 → 1 transition that
   * bumps the sequence), look at the rings, then wait for the sequence to move.
   */
  #arm(): void {
    if (this.#stopped) return;
    const seq = Atomics.load(this.#words, this.#seqIndex);
    this.#hv.clearPending(this.#port);
    this.#fire();
    if (this.#isStopped()) return;
    const r = Atomics.waitAsync(this.#words, this.#seqIndex, seq);
    if (r.async) {
      void r.value.then(() => {
        this.#arm();
      });
    } else {
      // The sequence moved meanwhile: go round through the event loop.
      setImmediate(() => {
        this.#arm();
      });
    }
  }

  /** Not narrowed by the compiler: the callback may stop the source. */
  #isStopped(): boolean {
    return this.#stopped;
  }

  #fire(): void {
    if (this.#stopped) return;
    this.#cb?.();
  }
}

/**
 * A guest's transport to xenstored over its ring page: give it to `XsClient`. The
 * transport stops its waits and timers when closed (by the client, by xenstored giving up
 * on the ring, or because the domain is being destroyed), so the worker can exit.
 *
 * @throws PcibackError `XS_NO_RING` when the domain was created without xenstore.
 * @example
 * // in the guest's worker:
 * const hv = new SimGuestHypercalls(workerData.xen);
 * const xs = new XsClient(createGuestXenstoreTransport(hv, workerData.xen));
 * await xs.write('data/booted', '1');
 * xs.close();
 */
export function createGuestXenstoreTransport(
  hv: SimGuestHypercalls,
  init: SimGuestInit,
  options: GuestXenstoreTransportOptions = {},
): XsRingClientTransport {
  const xs = init.xenstore;
  if (xs === undefined) {
    throw new PcibackError(
      'XS_NO_RING',
      `Cannot connect domain ${init.domid} to xenstore: it was created without a ring`,
    );
  }
  const sweepMs = options.sweepIntervalMs ?? 50;
  if (!(sweepMs > 0)) {
    throw new RangeError(`Cannot use a xenstore sweep interval of ${sweepMs} ms`);
  }
  const port = xs.port as EvtchnPort;
  const area = EventArea.attach(init.events);
  const wake = new SimStorePortWakeSource(hv, area, port, sweepMs);
  // The wake source may call back while the transport is being built.
  const self: { transport?: XsRingClientTransport } = {};
  const transport = new XsRingClientTransport(hv.pageBytes(xs.gfn), {
    notify: () => {
      hv.notify(port);
    },
    wake: {
      onWake: (cb) => {
        wake.onWake(() => {
          if (hv.dying) {
            self.transport?.close(
              new PcibackError(
                'XS_DOMAIN_DYING',
                `Cannot use xenstore from domain ${init.domid}: it is being destroyed`,
              ),
            );
            return;
          }
          cb();
        });
      },
      stop: () => {
        wake.stop();
      },
    },
  });
  self.transport = transport;
  return transport;
}
