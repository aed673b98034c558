// SPDX-License-Identifier: MIT
/**
 * Micro-benchmark helpers for the simulated data path: a real guest worker and dom0's
 * event loop exchanging notifications over a granted page, the way pcifront and pciback
 * do. `bench/` suites and tests build on these.
 */
import { Worker } from 'node:worker_threads';
import { PcibackError } from '../../../errors.js';
import type { BoundEventChannel, DomId, EvtchnPort, GrantHandle, GrantRef } from '../../types.js';
import {
  XEN_EOI_FLAG,
  createXenbusEventCounters,
  evtchnPort,
  grantRef,
  type XenbusEventCounters,
} from '../../types.js';
import { DEFAULT_SPIN_ITERATIONS } from './guest-hypercalls.js';
import { SimHypervisor } from './hypervisor.js';
import {
  ROUND_TRIP_WORD,
  type RoundTripGuestData,
  type RoundTripGuestMessage,
} from './round-trip-protocol.js';

/** Options of {@link startRoundTripGuest}. */
export interface RoundTripGuestOptions {
  /** What the guest does (see `round-trip-guest.ts`). */
  mode: RoundTripGuestData['mode'];
  /** Requests a `client` guest issues. Default 1000. */
  iterations?: number;
  /** The guest's spin before blocking. Default {@link DEFAULT_SPIN_ITERATIONS}. */
  spinIterations?: number;
  /** Every wait's timeout, in ms. Default 5000. */
  timeoutMs?: number;
}

type MessageOf<T extends RoundTripGuestMessage['type']> = Extract<
  RoundTripGuestMessage,
  { type: T }
>;

/** A running guest worker from {@link startRoundTripGuest}. */
export interface RoundTripGuest {
  readonly domid: DomId;
  readonly worker: Worker;
  /** The guest's port, unbound for dom0. */
  readonly guestPort: EvtchnPort;
  /** The ref of the page the guest granted to dom0. */
  readonly ref: GrantRef;
  /** Resolves with the next message of `type` (rejects after `timeoutMs`). */
  next<T extends RoundTripGuestMessage['type']>(type: T, timeoutMs?: number): Promise<MessageOf<T>>;
  /**
   * Destroys the domain and waits for the worker to leave, terminating it if it lingers
   * past the timeout; resolves true when it had to be terminated.
   */
  stop(): Promise<boolean>;
}

/**
 * Creates a guest domain and starts its worker; resolves once the guest has granted its
 * page and allocated its port.
 */
export async function startRoundTripGuest(
  xen: SimHypervisor,
  options: RoundTripGuestOptions,
): Promise<RoundTripGuest> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const { domid, init } = xen.createDomain({ memoryPages: 4, name: `round-trip-${options.mode}` });
  const data: RoundTripGuestData = {
    xen: init,
    mode: options.mode,
    iterations: options.iterations ?? 1000,
    spinIterations: options.spinIterations ?? DEFAULT_SPIN_ITERATIONS,
    timeoutMs,
  };
  const worker = new Worker(new URL('./round-trip-guest.js', import.meta.url), {
    workerData: data,
  });
  const inbox: RoundTripGuestMessage[] = [];
  const waiters: (() => void)[] = [];
  let exited = false;
  const wakeAll = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  worker.on('message', (m: RoundTripGuestMessage) => {
    inbox.push(m);
    wakeAll();
  });
  worker.on('error', () => {
    exited = true;
    wakeAll();
  });
  worker.on('exit', () => {
    exited = true;
    wakeAll();
  });

  const next = async <T extends RoundTripGuestMessage['type']>(
    type: T,
    waitMs: number = timeoutMs,
  ): Promise<MessageOf<T>> => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0] as MessageOf<T>;
      const left = deadline - Date.now();
      if (exited || left <= 0) {
        throw new PcibackError(
          'GUEST_NO_MESSAGE',
          `Cannot get "${type}" from guest ${domid}: ${exited ? 'the worker exited' : `no message within ${waitMs} ms`}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };

  const stop = async (): Promise<boolean> => {
    xen.destroyDomain(domid);
    if (exited) return false;
    let terminated = false;
    const left = new Promise<void>((resolve) =>
      worker.once('exit', () => {
        resolve();
      }),
    );
    const timer = setTimeout(() => {
      terminated = true;
      void worker.terminate();
    }, timeoutMs);
    await left;
    clearTimeout(timer);
    return terminated;
  };

  try {
    const ready = await next('ready');
    return {
      domid,
      worker,
      guestPort: evtchnPort(ready.port),
      ref: grantRef(ready.ref),
      next,
      stop,
    };
  } catch (err) {
    await worker.terminate();
    xen.destroyDomain(domid);
    throw err;
  }
}

/** Latency statistics of a round-trip run, in microseconds. */
export interface RoundTripResult {
  readonly iterations: number;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** Requests the other side never answered in time. */
  readonly timeouts: number;
  /** Answers that did not match the request. */
  readonly wrongAnswers: number;
}

/** Options of the `measure*RoundTrip` helpers. */
export interface MeasureRoundTripOptions {
  /** Round trips measured. Default 2000. */
  iterations?: number;
  /** The guest's spin before blocking. Default {@link DEFAULT_SPIN_ITERATIONS}. */
  spinIterations?: number;
  /** Per-wait timeout (ms). Default 5000. */
  timeoutMs?: number;
  /** Run on this host (default: a fresh one with a real clock, disposed at the end). */
  hypervisor?: SimHypervisor;
}

function summarize(latenciesUs: number[], timeouts: number, wrongAnswers: number): RoundTripResult {
  const sorted = [...latenciesUs].sort((a, b) => a - b);
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    iterations: sorted.length,
    meanUs: sorted.length === 0 ? 0 : sum / sorted.length,
    p50Us: at(0.5),
    p90Us: at(0.9),
    p99Us: at(0.99),
    maxUs: sorted[sorted.length - 1] ?? 0,
    timeouts,
    wrongAnswers,
  };
}

/** dom0's side of a `client` guest, from {@link serveRoundTripGuest}. */
export interface RoundTripServer {
  readonly channel: BoundEventChannel;
  /** The xenbus-device counters the channel was bound with. */
  readonly counters: XenbusEventCounters;
  /** Unbinds and unmaps. */
  close(): void;
}

/**
 * Serves a `client` guest the way pciback serves pcifront: maps its page, binds its port
 * with late EOI, and answers each request from the handler (answer, clear the active
 * bit, notify, non-spurious EOI); an event without a request gets a spurious EOI. With
 * `answer: false` the handler never answers (a hung backend). Finally tells the guest it
 * is connected.
 */
export function serveRoundTripGuest(
  xen: SimHypervisor,
  guest: RoundTripGuest,
  options: { answer?: boolean } = {},
): RoundTripServer {
  const answer = options.answer ?? true;
  const mapper = xen.grantMapper();
  const map = mapper.mapGrantRef(guest.domid, guest.ref);
  if (!map.ok)
    throw new PcibackError(
      'GRANT_MAP_FAILED',
      `Cannot map the page of guest ${guest.domid}: status ${map.status}`,
    );
  const { words, handle } = map.mapping;
  const counters = createXenbusEventCounters();
  const bind = xen.eventChannels().bindInterdomain(
    guest.domid,
    guest.guestPort,
    (ch) => {
      if (!answer || (Atomics.load(words, ROUND_TRIP_WORD.ACTIVE) & 1) === 0) {
        ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
        return;
      }
      Atomics.store(
        words,
        ROUND_TRIP_WORD.ANSWER,
        Atomics.load(words, ROUND_TRIP_WORD.REQUEST) + 1,
      );
      Atomics.and(words, ROUND_TRIP_WORD.ACTIVE, ~1);
      ch.notify();
      ch.lateEoi(0);
    },
    { lateEoi: true, counters },
  );
  if (!bind.ok) {
    mapper.unmapGrantRef(handle);
    throw new PcibackError(
      'EVTCHN_BIND_FAILED',
      `Cannot bind to the port of guest ${guest.domid}: errno ${bind.errno}`,
    );
  }
  const channel = bind.channel;
  Atomics.store(words, ROUND_TRIP_WORD.CONNECTED, 1);
  channel.notify();
  return {
    channel,
    counters,
    close: () => {
      channel.unbind();
      mapper.unmapGrantRef(handle);
    },
  };
}

/**
 * The pcifront → pciback → pcifront round trip: a guest worker posts a request in its
 * granted page, sets the active bit and notifies; dom0's late-EOI handler answers on the
 * main event loop, clears the bit, notifies and EOIs. Latency is measured in the guest.
 *
 * @example
 * const r = await measureGuestRoundTrip({ iterations: 5000 });
 * console.log(`${r.p50Us.toFixed(1)} us median`);
 */
export async function measureGuestRoundTrip(
  options: MeasureRoundTripOptions = {},
): Promise<RoundTripResult> {
  const own = options.hypervisor === undefined;
  const xen = options.hypervisor ?? new SimHypervisor();
  const timeoutMs = options.timeoutMs ?? 5000;
  const iterations = options.iterations ?? 2000;
  const guest = await startRoundTripGuest(xen, {
    mode: 'client',
    iterations,
    spinIterations: options.spinIterations ?? DEFAULT_SPIN_ITERATIONS,
    timeoutMs,
  });
  let server: RoundTripServer | undefined;
  try {
    server = serveRoundTripGuest(xen, guest);
    const done = await guest.next('done', timeoutMs * (iterations + 1));
    return summarize(done.latenciesUs, done.timeouts, done.wrongAnswers);
  } finally {
    server?.close();
    await guest.stop();
    if (own) xen.dispose();
  }
}

/**
 * The reverse direction: dom0 notifies, an echo guest wakes from `waitForEvent`, answers
 * in the page and notifies back; latency is measured on the main thread.
 */
export async function measureBackendRoundTrip(
  options: MeasureRoundTripOptions = {},
): Promise<RoundTripResult> {
  const own = options.hypervisor === undefined;
  const xen = options.hypervisor ?? new SimHypervisor();
  const timeoutMs = options.timeoutMs ?? 5000;
  const iterations = options.iterations ?? 2000;
  const guest = await startRoundTripGuest(xen, {
    mode: 'echo',
    spinIterations: options.spinIterations ?? DEFAULT_SPIN_ITERATIONS,
    timeoutMs,
  });
  const mapper = xen.grantMapper();
  let channel: BoundEventChannel | undefined;
  let handle: GrantHandle | undefined;
  try {
    const map = mapper.mapGrantRef(guest.domid, guest.ref);
    if (!map.ok)
      throw new PcibackError('GRANT_MAP_FAILED', `Cannot map the guest page: status ${map.status}`);
    handle = map.mapping.handle;
    const words = map.mapping.words;
    // Only the expected answer completes a round trip: the event Xen raises at bind time
    // (or any other spurious one) must not.
    let expected = -1;
    let answered: (() => void) | undefined;
    const bind = xen.eventChannels().bindInterdomain(guest.domid, guest.guestPort, () => {
      if (Atomics.load(words, ROUND_TRIP_WORD.ANSWER) !== expected) return;
      const a = answered;
      answered = undefined;
      a?.();
    });
    if (!bind.ok)
      throw new PcibackError(
        'EVTCHN_BIND_FAILED',
        `Cannot bind to the guest port: errno ${bind.errno}`,
      );
    const bound = bind.channel;
    channel = bound;
    const latenciesUs: number[] = [];
    let timeouts = 0;
    for (let i = 0; i < iterations; i++) {
      const t0 = performance.now();
      expected = i + 1;
      Atomics.store(words, ROUND_TRIP_WORD.REQUEST, i);
      const ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          answered = undefined;
          resolve(false);
        }, timeoutMs);
        answered = () => {
          clearTimeout(timer);
          resolve(true);
        };
        bound.notify();
      });
      latenciesUs.push((performance.now() - t0) * 1000);
      if (!ok) timeouts += 1;
    }
    return summarize(latenciesUs, timeouts, 0);
  } finally {
    channel?.unbind();
    if (handle !== undefined) mapper.unmapGrantRef(handle);
    await guest.stop();
    if (own) xen.dispose();
  }
}
