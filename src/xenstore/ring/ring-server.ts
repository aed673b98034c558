// SPDX-License-Identifier: MIT
/**
 * xenstored's end of one domain's ring page (spec/xenstore.md §7.1, §7.6, §7.7, §8): it
 * feeds the bytes of the `req` ring to a dispatcher session (an unprivileged
 * `XsConnection` in practice), queues what the session sends back, and writes the queue
 * to the `rsp` ring as space permits. The guest is an attacker: indexes are checked on
 * every pass, a bad index or an oversized header makes the server give up on the ring for
 * good (`error` = RINGIDX / PROTO, as C 4.17 does), and a guest that stops reading its
 * replies stops being read itself after 20 queued messages (C's "outstanding" quota).
 *
 * This module knows nothing about the store: the session factory is passed in, so the
 * folder stays a transport below `xenstore/server`.
 */
import {
  XENSTORE_CONNECTION,
  XENSTORE_ERROR,
  XENSTORE_PAYLOAD_MAX,
  XSD_SOCKMSG_OFFSET,
  XSD_SOCKMSG_SIZE,
  XS_TYPE,
  type XenstoreError,
} from '../../abi/index.js';
import {
  XsRingConsumer,
  XsRingProducer,
  setXsRingConnection,
  setXsRingError,
  setXsRingIndexes,
  xsRingConnection,
  xsRingErrorName,
  xsRingPage,
  type XsRingPage,
} from './ring-buffer.js';

/**
 * A mapped ring page plus its event channel, as the platform provides it (grant map +
 * interdomain bind on a real or simulated host; a plain page and functions in tests).
 */
export interface XsRingChannel {
  /** The ring page (a 4 KiB page; at least the 2076 bytes of the 4.17 struct), 4-byte aligned. */
  readonly page: Uint8Array;
  /** Kick the peer. Must not throw (a closed peer makes it a no-op). */
  notify(): void;
  /** Register the handler of the peer's kicks (one; a later call replaces it). */
  onEvent(cb: () => void): void;
  /** Unbind the event channel and unmap the page. Idempotent. */
  close(): void;
}

/** What the ring server hands its bytes to: one dispatcher connection. */
export interface XsRingSession {
  /** Request bytes, split anywhere. Must not throw for any content. */
  receive(chunk: Uint8Array): void;
  /** The ring is going away (or was given up on): drop watches and transactions. */
  close(): void;
}

/** Where a session sends its replies and events: one encoded message per `send`. */
export interface XsRingSessionSink {
  send(bytes: Uint8Array): void;
  /** The session gave up on the stream (a framing error). */
  close(reason: string): void;
}

/** Options of {@link XsRingServer}. */
export interface XsRingServerOptions {
  /** The guest, for log lines. */
  readonly domid: number;
  /**
   * Queued replies and events at which the server stops reading requests (C's quota
   * "outstanding", default 20, §8). Reading resumes as the guest drains its replies.
   */
  readonly maxOutstanding?: number;
  /**
   * Bytes of watch events queued for a guest that does not read them, above which
   * further events are dropped (default 1 MiB). Replies are never dropped: the
   * outstanding quota bounds them. (C bounds this with its memory quota and a 20 s event
   * lifetime; a byte bound is simpler and as safe.)
   */
  readonly maxQueuedEventBytes?: number;
  /**
   * Zero the four indexes first, C's `domain_conn_reset` on every INTRODUCE (§7.1), and
   * answer a pending `connection = RECONNECT` with CONNECTED. Default true.
   */
  readonly resetIndexes?: boolean;
  /**
   * Start ignoring the ring with this error already recorded: a re-INTRODUCE of a ring
   * the server gave up on stays ignored until RELEASE (C 4.17, §7.7). The indexes are
   * still reset when asked; the `error` word is left as the page has it.
   */
  readonly ignore?: XenstoreError;
  /** Passes of one pump before the rest is deferred with `scheduleTask` (default 64). */
  readonly maxRoundsPerPump?: number;
  /** Runs a pump soon, after the current job (default `queueMicrotask`). */
  readonly scheduleMicrotask?: (cb: () => void) => void;
  /** Runs a pump after other event-loop work (default `setTimeout(cb, 0)`). */
  readonly scheduleTask?: (cb: () => void) => void;
  /** Diagnostics. Default: discard. */
  readonly log?: (line: string) => void;
}

/** Counters of one ring (diagnostics, `xenstore-control`-style reports, tests). */
export interface XsRingStats {
  /** Bytes taken from the `req` ring. */
  readonly requestBytes: number;
  /** Complete requests taken. */
  readonly requests: number;
  /** Bytes written to the `rsp` ring. */
  readonly responseBytes: number;
  /** Complete replies and events written. */
  readonly responses: number;
  /** Watch events dropped because the guest did not read them. */
  readonly eventsDropped: number;
  /** Kicks sent to the guest. */
  readonly notifications: number;
  /** Kicks received from the guest. */
  readonly events: number;
  /** Replies and events queued, not yet completely written. */
  readonly outstanding: number;
}

/** Lifecycle of a ring server. */
export type XsRingServerState = 'active' | 'ignored' | 'closed';

const TRANSITIONS: Readonly<Record<XsRingServerState, readonly XsRingServerState[]>> = {
  active: ['ignored', 'closed'],
  ignored: ['closed'],
  closed: [],
};

/** One queued message and how much of it is already in the ring. */
interface Outgoing {
  readonly bytes: Uint8Array;
  readonly event: boolean;
  offset: number;
}

const DEFAULT_MAX_OUTSTANDING = 20;
const DEFAULT_MAX_QUEUED_EVENT_BYTES = 1024 * 1024;
const DEFAULT_MAX_ROUNDS = 64;

function defaultTask(cb: () => void): void {
  setTimeout(cb, 0);
}

function checkPositive(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Cannot use ${what} ${value}: it must be a positive integer`);
  }
  return value;
}

/**
 * The server end of one domain ring. The platform calls nothing but the constructor and
 * {@link close}: kicks arrive through the channel's `onEvent`, and the server re-checks
 * both rings until a pass makes no progress (a guest may skip kicks, §7.6).
 *
 * `server_features` is left at 0, as C 4.17 leaves it: guest-initiated reconnection is
 * not implemented, and a ring given up on stays ignored until RELEASE. The `error` word
 * is still written (C 4.17 does so without advertising the feature).
 *
 * @example
 * const ring = new XsRingServer(channel, (sink) => server.connect(sink, { domid: 5, privileged: false }), {
 *   domid: 5,
 * });
 * // ... RELEASE:
 * ring.close();
 */
export class XsRingServer {
  readonly #channel: XsRingChannel;
  readonly #page: XsRingPage;
  readonly #req: XsRingConsumer;
  readonly #rsp: XsRingProducer;
  readonly #domid: number;
  readonly #maxOutstanding: number;
  readonly #maxEventBytes: number;
  readonly #maxRounds: number;
  readonly #scheduleMicrotask: (cb: () => void) => void;
  readonly #scheduleTask: (cb: () => void) => void;
  readonly #log: (line: string) => void;
  #session: XsRingSession | undefined;
  #state: XsRingServerState = 'active';
  #error: XenstoreError = XENSTORE_ERROR.NONE;
  /** Queue of outgoing messages; `#head` is the first one not completely written. */
  #queue: Outgoing[] = [];
  #head = 0;
  #queuedEventBytes = 0;
  /** Framing of the request stream, only to find message boundaries and bad lengths. */
  readonly #header = new Uint8Array(XSD_SOCKMSG_SIZE);
  #headerFill = 0;
  #payloadLeft = 0;
  #pumping = false;
  #again = false;
  #scheduled = false;
  #requestBytes = 0;
  #requests = 0;
  #responseBytes = 0;
  #responses = 0;
  #eventsDropped = 0;
  #notifications = 0;
  #events = 0;

  /**
   * Attach to a ring. `openSession` is called once (unless `ignore` is given) with the
   * sink the session must send through.
   *
   * @throws RangeError for a page that is too small or misaligned, or bad limits.
   */
  constructor(
    channel: XsRingChannel,
    openSession: (sink: XsRingSessionSink) => XsRingSession,
    options: XsRingServerOptions,
  ) {
    this.#page = xsRingPage(channel.page);
    this.#channel = channel;
    this.#domid = options.domid;
    this.#maxOutstanding = checkPositive(
      options.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING,
      'maxOutstanding',
    );
    this.#maxEventBytes = checkPositive(
      options.maxQueuedEventBytes ?? DEFAULT_MAX_QUEUED_EVENT_BYTES,
      'maxQueuedEventBytes',
    );
    this.#maxRounds = checkPositive(
      options.maxRoundsPerPump ?? DEFAULT_MAX_ROUNDS,
      'maxRoundsPerPump',
    );
    this.#scheduleMicrotask = options.scheduleMicrotask ?? queueMicrotask;
    this.#scheduleTask = options.scheduleTask ?? defaultTask;
    this.#log =
      options.log ??
      (() => {
        /* discard */
      });
    this.#req = new XsRingConsumer(this.#page, 'req');
    this.#rsp = new XsRingProducer(this.#page, 'rsp');
    let kick = false;
    if (options.resetIndexes ?? true) {
      setXsRingIndexes(this.#page, { reqCons: 0, reqProd: 0, rspCons: 0, rspProd: 0 });
      // A guest (or Xen, for dom0less) asking for a reconnection gets CONNECTED (C).
      if (xsRingConnection(this.#page) === XENSTORE_CONNECTION.RECONNECT) {
        setXsRingConnection(this.#page, XENSTORE_CONNECTION.CONNECTED);
        kick = true;
      }
    }
    if (options.ignore !== undefined) {
      this.#state = 'ignored';
      this.#error = options.ignore;
    } else {
      this.#session = openSession({
        send: (bytes) => {
          this.#enqueue(bytes);
        },
        close: (reason) => {
          this.#fail(XENSTORE_ERROR.PROTO, reason);
        },
      });
    }
    channel.onEvent(() => {
      this.#events += 1;
      this.pump();
    });
    if (kick) this.#notify();
    // Requests the guest queued before the attach (indexes not reset) are served soon,
    // not inside the caller's INTRODUCE handling.
    if (this.#state === 'active') this.#schedule(this.#scheduleMicrotask);
  }

  /** `active`, `ignored` (given up on, see {@link error}) or `closed`. */
  get state(): XsRingServerState {
    return this.#state;
  }

  /** Why the ring is ignored (`XENSTORE_ERROR`), NONE while active. */
  get error(): XenstoreError {
    return this.#error;
  }

  /** The guest. */
  get domid(): number {
    return this.#domid;
  }

  /** Counters so far. */
  get stats(): XsRingStats {
    return {
      requestBytes: this.#requestBytes,
      requests: this.#requests,
      responseBytes: this.#responseBytes,
      responses: this.#responses,
      eventsDropped: this.#eventsDropped,
      notifications: this.#notifications,
      events: this.#events,
      outstanding: this.#outstanding(),
    };
  }

  /**
   * Move bytes both ways until a pass makes no progress, kicking the guest after each
   * pass that moved something. Safe to call at any time and re-entrantly (a nested call
   * makes the running pump go round once more).
   */
  pump(): void {
    if (this.#state !== 'active') return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      for (let round = 0; ; round++) {
        this.#again = false;
        const wrote = this.#flush();
        const read = this.#isActive() && this.#consume();
        if (!this.#isActive()) return;
        if (wrote || read) this.#notify();
        else if (!this.#calledAgain()) return;
        if (round + 1 >= this.#maxRounds) {
          // A guest that keeps both rings busy from another thread must not hold the
          // event loop: finish on a later task.
          this.#schedule(this.#scheduleTask);
          return;
        }
      }
    } catch (e) {
      // A dispatcher fault is not the guest's doing: log it, keep the ring.
      this.#log(
        `Cannot serve the xenstore ring of domain ${this.#domid}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
      );
    } finally {
      this.#pumping = false;
    }
  }

  /** RELEASE (or shutdown): drop the session, unbind and unmap. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#transition('closed');
    this.#dropQueue();
    const session = this.#session;
    this.#session = undefined;
    session?.close();
    this.#channel.onEvent(() => {
      /* closed */
    });
    this.#channel.close();
  }

  #transition(to: XsRingServerState): void {
    if (!TRANSITIONS[this.#state].includes(to)) {
      throw new Error(
        `Cannot move the xenstore ring of domain ${this.#domid} from "${this.#state}" to "${to}"`,
      );
    }
    this.#state = to;
  }

  /** Not narrowed by the compiler: the state changes under calls (a ring error). */
  #isActive(): boolean {
    return this.#state === 'active';
  }

  /** True when a nested call asked for another pass (set under calls, not narrowed). */
  #calledAgain(): boolean {
    return this.#again;
  }

  #outstanding(): number {
    return this.#queue.length - this.#head;
  }

  #schedule(scheduler: (cb: () => void) => void): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    scheduler(() => {
      this.#scheduled = false;
      this.pump();
    });
  }

  #notify(): void {
    this.#notifications += 1;
    try {
      this.#channel.notify();
    } catch (e) {
      this.#log(`Cannot notify domain ${this.#domid} of xenstore progress: ${String(e)}`);
    }
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#state !== 'active' || bytes.length === 0) return;
    const event =
      bytes.length >= XSD_SOCKMSG_SIZE &&
      new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(
        XSD_SOCKMSG_OFFSET.type,
        true,
      ) === XS_TYPE.WATCH_EVENT;
    if (event) {
      if (this.#queuedEventBytes + bytes.length > this.#maxEventBytes) {
        this.#eventsDropped += 1;
        if (this.#eventsDropped === 1 || this.#eventsDropped % 1000 === 0) {
          this.#log(
            `Dropped ${this.#eventsDropped} watch event(s) for domain ${this.#domid}: ${this.#queuedEventBytes} bytes of events are unread`,
          );
        }
        return;
      }
      this.#queuedEventBytes += bytes.length;
    }
    this.#queue.push({ bytes, event, offset: 0 });
    if (this.#pumping) this.#again = true;
    else this.#schedule(this.#scheduleMicrotask);
  }

  /** Write queued messages into `rsp`; true when any byte went in. */
  #flush(): boolean {
    let progress = false;
    while (this.#head < this.#queue.length) {
      const out = this.#queue[this.#head];
      if (out === undefined) break;
      const r = this.#rsp.write(out.bytes.subarray(out.offset));
      if (!r.ok) {
        this.#fail(XENSTORE_ERROR.RINGIDX, r.corruption.message);
        return progress;
      }
      if (r.written === 0) break;
      progress = true;
      out.offset += r.written;
      this.#responseBytes += r.written;
      if (out.offset < out.bytes.length) break;
      this.#responses += 1;
      if (out.event) this.#queuedEventBytes -= out.bytes.length;
      this.#head += 1;
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return progress;
  }

  /**
   * Read requests from `req` while fewer than `maxOutstanding` messages are queued, one
   * header or payload at a time so the quota applies between messages; true when any
   * byte was taken.
   */
  #consume(): boolean {
    let progress = false;
    while (this.#isActive() && this.#outstanding() < this.#maxOutstanding) {
      const session = this.#session;
      if (session === undefined) break;
      const inPayload = this.#payloadLeft > 0;
      const want = inPayload ? this.#payloadLeft : XSD_SOCKMSG_SIZE - this.#headerFill;
      const r = this.#req.read(want);
      if (!r.ok) {
        this.#fail(XENSTORE_ERROR.RINGIDX, r.corruption.message);
        return progress;
      }
      const chunk = r.bytes;
      if (chunk.length === 0) break;
      progress = true;
      this.#requestBytes += chunk.length;
      if (inPayload) {
        this.#payloadLeft -= chunk.length;
        if (this.#payloadLeft === 0) this.#requests += 1;
        session.receive(chunk);
        continue;
      }
      this.#header.set(chunk, this.#headerFill);
      this.#headerFill += chunk.length;
      if (this.#headerFill === XSD_SOCKMSG_SIZE) {
        this.#headerFill = 0;
        const len = new DataView(this.#header.buffer).getUint32(XSD_SOCKMSG_OFFSET.len, true);
        // Checked on the header alone, before any payload is waited for (§1.4).
        if (len > XENSTORE_PAYLOAD_MAX) {
          this.#fail(
            XENSTORE_ERROR.PROTO,
            `a request header has len ${len}, above ${XENSTORE_PAYLOAD_MAX}`,
          );
          return progress;
        }
        this.#payloadLeft = len;
        if (len === 0) this.#requests += 1;
      }
      session.receive(chunk);
    }
    return progress;
  }

  /**
   * Give up on the ring (C `ignore_connection`): record the error in the page, drop the
   * session's watches and transactions and the queued output, and stop reading. The
   * guest is kicked once so it sees the error without waiting (C 4.17 does not kick).
   */
  #fail(error: XenstoreError, detail: string): void {
    if (this.#state !== 'active') return;
    this.#transition('ignored');
    this.#error = error;
    setXsRingError(this.#page, error);
    this.#log(
      `Ignoring the xenstore ring of domain ${this.#domid} (error ${xsRingErrorName(error)}): ${detail}`,
    );
    this.#dropQueue();
    const session = this.#session;
    this.#session = undefined;
    session?.close();
    this.#notify();
  }

  #dropQueue(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queuedEventBytes = 0;
  }
}
