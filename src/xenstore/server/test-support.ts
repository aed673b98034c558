// SPDX-License-Identifier: MIT
/**
 * Test helpers for the dispatcher: a host of plain guest ring pages with synchronous
 * event channels. Not exported from the folder's index.
 */
import { XsRingClientTransport, type XsRingChannel, type XsRingWakeSource } from '../ring/index.js';
import type { XsDomainRingProvider, XsDomainRingResult } from './server.js';

/** Kept here for tests that import it from this file; the public one is in the index. */
export { connectInProcess } from './in-process.js';

/** One simulated guest of {@link TestRingHost}: its page and its side of the channel. */
export class TestGuest implements XsRingWakeSource {
  readonly domid: number;
  /** The store port the host accepts in INTRODUCE. */
  readonly port: number;
  readonly page = new Uint8Array(new SharedArrayBuffer(4096));
  /** When false, the server's kicks are counted but do not wake the guest transport. */
  autoWake = true;
  /** When false, the guest transport's kicks are counted but do not reach the server. */
  autoKick = true;
  kicksFromServer = 0;
  kicksToServer = 0;
  #wake: (() => void) | undefined;
  #serverEvent: (() => void) | undefined;
  #stopped = 0;

  constructor(domid: number, port: number) {
    this.domid = domid;
    this.port = port;
  }

  /** Times the transport stopped its wake source. */
  get stopped(): number {
    return this.#stopped;
  }

  onWake(cb: () => void): void {
    this.#wake = cb;
  }

  stop(): void {
    this.#stopped += 1;
    this.#wake = undefined;
  }

  /** Wake the guest transport by hand (a periodic sweep). */
  wake(): void {
    this.#wake?.();
  }

  /** Kick the server, as the guest's notify does. */
  kickServer(): void {
    this.#serverEvent?.();
  }

  /** A transport for `XsClient` over this guest's page, kicking the server synchronously. */
  transport(): XsRingClientTransport {
    return new XsRingClientTransport(this.page, {
      notify: () => {
        this.kicksToServer += 1;
        if (this.autoKick) this.kickServer();
      },
      wake: this,
    });
  }

  /** @internal The host's channel. */
  channel(onClose: () => void): XsRingChannel {
    return {
      page: this.page,
      notify: () => {
        this.kicksFromServer += 1;
        if (this.autoWake) this.wake();
      },
      onEvent: (cb) => {
        this.#serverEvent = cb;
      },
      close: () => {
        this.#serverEvent = undefined;
        onClose();
      },
    };
  }
}

/**
 * A ring provider over {@link TestGuest}s: INTRODUCE of an unknown domid gives ENOENT, a
 * wrong port EINVAL, as a mapping or bind failure would.
 */
export class TestRingHost implements XsDomainRingProvider {
  readonly guests = new Map<number, TestGuest>();
  connects = 0;
  closes = 0;

  addGuest(domid: number, port = 1): TestGuest {
    const g = new TestGuest(domid, port);
    this.guests.set(domid, g);
    return g;
  }

  connect(domid: number, _gfn: number, port: number): XsDomainRingResult {
    const g = this.guests.get(domid);
    if (g === undefined) return { ok: false, error: 'ENOENT' };
    if (port !== g.port) return { ok: false, error: 'EINVAL' };
    this.connects += 1;
    let closed = false;
    return {
      ok: true,
      ring: g.channel(() => {
        if (closed) return;
        closed = true;
        this.closes += 1;
      }),
    };
  }
}
