// SPDX-License-Identifier: MIT
/**
 * The guest's end of its xenstore ring page (Linux `xenbus_comms.c`, spec/xenstore.md
 * §7.6, §11.1): an {@link XsTransport} for `XsClient` that writes requests into `req` and
 * reads replies and watch events from `rsp`.
 *
 * Wake-ups come from an injected {@link XsRingWakeSource}. A kick can be missed, merged
 * or spurious, so every wake and every `send` re-checks both rings until a pass makes no
 * progress; a wake source should also fire periodically so that progress the peer did
 * not kick for is still found.
 */
import { XENSTORE_ERROR } from '../../abi/index.js';
import { PcibackError } from '../../errors.js';
import type { XsTransport } from '../client/transport.js';
import {
  XsRingConsumer,
  XsRingProducer,
  xsRingError,
  xsRingErrorName,
  xsRingPage,
  type XsRingPage,
} from './ring-buffer.js';

/**
 * Tells the ring client when to look at the rings: on the store event channel's kicks
 * and periodically. Spurious calls are fine; missing calls only add latency if the
 * source also fires periodically.
 */
export interface XsRingWakeSource {
  /**
   * Start calling `cb` on every possible wake-up (one callback; the source may call it
   * synchronously from here).
   */
  onWake(cb: () => void): void;
  /** Stop calling back and release every timer and wait. Idempotent. */
  stop(): void;
}

/** Options of {@link XsRingClientTransport}. */
export interface XsRingClientOptions {
  /** Kick xenstored (the store event channel). Must not throw. */
  readonly notify: () => void;
  /** Wake-ups; stopped when the transport closes. */
  readonly wake: XsRingWakeSource;
  /** Passes of one check before the rest is deferred with `scheduleTask` (default 64). */
  readonly maxRoundsPerCheck?: number;
  /** Runs a deferred check (default `setTimeout(cb, 0)`). */
  readonly scheduleTask?: (cb: () => void) => void;
}

/** Counters of the guest side. */
export interface XsRingClientStats {
  /** Bytes written into `req`. */
  readonly sentBytes: number;
  /** Bytes read from `rsp`. */
  readonly receivedBytes: number;
  /** Bytes accepted by `send` and not yet in the ring. */
  readonly pendingBytes: number;
  /** Kicks sent. */
  readonly notifications: number;
  /** Wake-ups received (kicks, sweeps and spurious ones). */
  readonly wakes: number;
}

function defaultTask(cb: () => void): void {
  setTimeout(cb, 0);
}

/**
 * A guest's xenstore connection over its ring page.
 *
 * @example
 * const transport = new XsRingClientTransport(page, {
 *   notify: () => hv.notify(storePort),
 *   wake: storePortWakeSource,
 * });
 * const xs = new XsClient(transport);
 * await xs.write('data/ready', '1'); // relative to /local/domain/<domid>
 */
export class XsRingClientTransport implements XsTransport {
  readonly #page: XsRingPage;
  readonly #req: XsRingProducer;
  readonly #rsp: XsRingConsumer;
  readonly #notifyPeer: () => void;
  readonly #wake: XsRingWakeSource;
  readonly #maxRounds: number;
  readonly #scheduleTask: (cb: () => void) => void;
  #pending: Uint8Array[] = [];
  #pendingOffset = 0;
  #pendingBytes = 0;
  #data: ((chunk: Uint8Array) => void) | undefined;
  #closeCb: ((error?: Error) => void) | undefined;
  #closed = false;
  #closeError: Error | undefined;
  #closeReported = false;
  #checking = false;
  #again = false;
  #scheduled = false;
  #notifications = 0;
  #wakes = 0;

  /**
   * @throws RangeError for a page that is too small or misaligned.
   */
  constructor(page: Uint8Array, options: XsRingClientOptions) {
    this.#page = xsRingPage(page);
    this.#req = new XsRingProducer(this.#page, 'req');
    this.#rsp = new XsRingConsumer(this.#page, 'rsp');
    this.#notifyPeer = options.notify;
    this.#wake = options.wake;
    const rounds = options.maxRoundsPerCheck ?? 64;
    if (!Number.isInteger(rounds) || rounds < 1) {
      throw new RangeError(`Cannot use maxRoundsPerCheck ${rounds}: it must be a positive integer`);
    }
    this.#maxRounds = rounds;
    this.#scheduleTask = options.scheduleTask ?? defaultTask;
    // Last: the source may call back at once.
    this.#wake.onWake(() => {
      this.#wakes += 1;
      this.check();
    });
  }

  /** True once closed (by the caller, a ring error or the peer giving up). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Counters so far. */
  get stats(): XsRingClientStats {
    return {
      sentBytes: this.#req.totalBytes,
      receivedBytes: this.#rsp.totalBytes,
      pendingBytes: this.#pendingBytes,
      notifications: this.#notifications,
      wakes: this.#wakes,
    };
  }

  /**
   * Queue bytes for xenstored and push as much as fits.
   *
   * @throws Error when the transport is closed (XsClient turns it into ECONNRESET).
   */
  send(bytes: Uint8Array): void {
    if (this.#closed) {
      throw new PcibackError(
        'XS_RING_CLOSED',
        'Cannot send on the xenstore ring: the transport is closed',
        { cause: this.#closeError },
      );
    }
    if (bytes.length === 0) return;
    this.#pending.push(bytes.slice());
    this.#pendingBytes += bytes.length;
    this.check();
  }

  /** {@inheritDoc XsTransport.onData} */
  onData(cb: (chunk: Uint8Array) => void): void {
    this.#data = cb;
    // Replies may already be waiting for a receiver.
    this.check();
  }

  /** {@inheritDoc XsTransport.onClose} */
  onClose(cb: (error?: Error) => void): void {
    this.#closeCb = cb;
    // A receiver registered after the end still hears of it (once).
    if (this.#closed) {
      this.#closeReported = true;
      cb(this.#closeError);
    }
  }

  /**
   * Close the connection (idempotent): the wake source stops, queued output is dropped
   * and the close callback runs once, with `error` when the ring failed. Errors raised
   * here are `PcibackError`s: `XS_RING_ABANDONED` (xenstored set the `error` word),
   * `XS_RING_CORRUPT` (bad indexes).
   */
  close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    this.#pending = [];
    this.#pendingOffset = 0;
    this.#pendingBytes = 0;
    this.#wake.stop();
    this.#reportClose();
  }

  /**
   * Look at both rings now: push pending requests, deliver replies, kick xenstored after
   * each pass that moved bytes, and go round until nothing moves. Re-entrant calls (a
   * data callback that sends) make the running check go round once more.
   */
  check(): void {
    if (this.#closed) return;
    if (this.#checking) {
      this.#again = true;
      return;
    }
    this.#checking = true;
    try {
      for (let round = 0; ; round++) {
        this.#again = false;
        const error = xsRingError(this.#page);
        if (error !== XENSTORE_ERROR.NONE) {
          this.close(
            new PcibackError(
              'XS_RING_ABANDONED',
              `Cannot use the xenstore ring: xenstored gave up on it (error ${xsRingErrorName(error)})`,
            ),
          );
          return;
        }
        const wrote = this.#push();
        const read = this.#isOpen() && this.#pull();
        if (!this.#isOpen()) return;
        if (wrote || read) this.#notify();
        else if (!this.#calledAgain()) return;
        if (round + 1 >= this.#maxRounds) {
          this.#deferCheck();
          return;
        }
      }
    } finally {
      this.#checking = false;
    }
  }

  /** Not narrowed by the compiler: a ring error closes the transport under calls. */
  #isOpen(): boolean {
    return !this.#closed;
  }

  /** True when a nested call asked for another pass (set under calls, not narrowed). */
  #calledAgain(): boolean {
    return this.#again;
  }

  #deferCheck(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#scheduleTask(() => {
      this.#scheduled = false;
      this.check();
    });
  }

  #notify(): void {
    this.#notifications += 1;
    this.#notifyPeer();
  }

  #reportClose(): void {
    if (this.#closeReported) return;
    const cb = this.#closeCb;
    if (cb === undefined) return;
    this.#closeReported = true;
    cb(this.#closeError);
  }

  /** Write pending output into `req`; true when any byte went in. */
  #push(): boolean {
    let progress = false;
    while (this.#pending.length > 0) {
      const head = this.#pending[0];
      if (head === undefined) break;
      const r = this.#req.write(head.subarray(this.#pendingOffset));
      if (!r.ok) {
        this.close(new PcibackError('XS_RING_CORRUPT', r.corruption.message));
        return progress;
      }
      if (r.written === 0) break;
      progress = true;
      this.#pendingOffset += r.written;
      this.#pendingBytes -= r.written;
      if (this.#pendingOffset < head.length) break;
      this.#pending.shift();
      this.#pendingOffset = 0;
    }
    return progress;
  }

  /** Hand everything in `rsp` to the data callback; true when any byte was read. */
  #pull(): boolean {
    const cb = this.#data;
    if (cb === undefined) return false;
    const r = this.#rsp.read(Number.MAX_SAFE_INTEGER);
    if (!r.ok) {
      this.close(new PcibackError('XS_RING_CORRUPT', r.corruption.message));
      return false;
    }
    if (r.bytes.length === 0) return false;
    cb(r.bytes);
    return true;
  }
}
