// SPDX-License-Identifier: MIT
/**
 * The xenstore daemon's request dispatcher, transport-free (spec/xenstore.md §1–§10): one
 * {@link XsConnection} per client (socket or ring), each with its own framer, executing
 * requests against a shared {@link XenStore} and routing watch events to the connection
 * that owns the watch. Transports (`../transport/unix-socket.ts`) only move bytes.
 */
import { XENSTORE_PAYLOAD_MAX, XS_TYPE, type XsErrorName } from '../../abi/index.js';
import {
  XsFramer,
  encodeBoolReply,
  encodeDirectoryReply,
  encodeGetDomainPathReply,
  encodeGetPermsReply,
  encodeReadReply,
  encodeTransactionStartReply,
  encodeWatch,
  encodeXsMessage,
  makeErrorReply,
  makeReply,
  okPayload,
  parseControlRequest,
  parseDirectoryPartRequest,
  parseDomidRequest,
  parseIntroduceRequest,
  parsePathRequest,
  parseSetPermsRequest,
  parseSetTargetRequest,
  parseStrictDomidRequest,
  parseTransactionEndRequest,
  parseWatch,
  parseWriteRequest,
  utf8Encode,
  type XsMessage,
  type XsParseResult,
} from '../protocol/index.js';
import { XsRingServer, type XsRingChannel, type XsRingServerOptions } from '../ring/index.js';
import { XenStore, type XsCaller, type XsStoreResult, type XsWatchEvent } from '../store/index.js';

/** Where a connection's outgoing bytes go; supplied by the transport. */
export interface XsConnectionSink {
  /** Queue one encoded message for the peer. Must not throw for a closed peer. */
  send(bytes: Uint8Array): void;
  /**
   * The server gave up on the connection (framing error): the transport must close the
   * underlying channel. Called at most once, never after {@link XsConnection.close}.
   */
  close(reason: string): void;
}

/** Options of {@link XsServer.connect}. */
export interface XsConnectOptions {
  /** The peer's domain (0 for the Unix socket). */
  readonly domid?: number;
  /** Bypasses permissions and quotas; a Unix socket peer is privileged (§1.2). */
  readonly privileged?: boolean;
}

/**
 * A guest's mapped ring page and bound store event channel (§7.1), as a
 * {@link XsDomainRingProvider} hands it to the server.
 */
export type XsDomainRing = XsRingChannel;

/** Result of {@link XsDomainRingProvider.connect}. */
export type XsDomainRingResult =
  | { readonly ok: true; readonly ring: XsDomainRing }
  | {
      readonly ok: false;
      /** The error INTRODUCE answers (C: the mapping's errno, ENOENT for a missing domain). */
      readonly error: XsErrorName;
    };

/**
 * What INTRODUCE needs from the platform: map the guest's ring page and bind its store
 * event channel (C maps grant ref 1, GNTTAB_RESERVED_XENSTORE, and ignores `gfn`).
 */
export interface XsDomainRingProvider {
  /**
   * Map the ring of `domid` and bind to its unbound port `port`. Must not throw for bad
   * input: a missing domain, an unmappable page or an unbindable port give an error.
   */
  connect(domid: number, gfn: number, port: number): XsDomainRingResult;
}

/** Ring tuning passed to every {@link XsRingServer} the server creates. */
export type XsServerRingOptions = Pick<
  XsRingServerOptions,
  | 'maxOutstanding'
  | 'maxQueuedEventBytes'
  | 'maxRoundsPerPump'
  | 'scheduleMicrotask'
  | 'scheduleTask'
>;

/** Options of {@link XsServer}. */
export interface XsServerOptions {
  /** The store to serve (default: a fresh `XenStore`). Several servers may share one. */
  readonly store?: XenStore;
  /** Diagnostics (framing errors, internal faults, CONTROL `print`). Default: discard. */
  readonly log?: (line: string) => void;
  /**
   * Guest rings: with a provider, a privileged INTRODUCE maps the guest's ring and serves
   * it as an unprivileged connection of that domain, and RELEASE closes it (§7.1, §7.2).
   * Without one, INTRODUCE and RELEASE only update the store (a socket-only daemon).
   */
  readonly domainRings?: XsDomainRingProvider;
  /** Limits and scheduling of the rings (defaults: C's outstanding quota of 20, §8). */
  readonly ringOptions?: XsServerRingOptions;
}

/** Message types only privileged connections may send (§1.2). */
const PRIVILEGED_TYPES: ReadonlySet<number> = new Set([
  XS_TYPE.CONTROL,
  XS_TYPE.INTRODUCE,
  XS_TYPE.RELEASE,
  XS_TYPE.IS_DOMAIN_INTRODUCED,
  XS_TYPE.RESUME,
  XS_TYPE.SET_TARGET,
]);

/** CONTROL `help` text (§10), for the commands this daemon implements. */
const CONTROL_HELP = 'check\t\nhelp\t\nprint\t<string>\n';

/** What one request produced: the reply, and the watch events it caused. */
interface Outcome {
  readonly reply: XsMessage;
  readonly events: readonly XsWatchEvent[];
  /** WATCH's initial event goes after the reply; every other event before it (C, §1.3). */
  readonly eventsAfterReply: boolean;
}

/**
 * The daemon: a store plus the live connections. A transport calls {@link connect} for
 * each accepted client and feeds its bytes to the returned connection.
 *
 * @example
 * const server = new XsServer();
 * const conn = server.connect({ send: (b) => socket.write(b), close: () => socket.destroy() });
 * socket.on('data', (chunk) => conn.receive(chunk));
 * socket.on('close', () => conn.close());
 */
export class XsServer {
  readonly #store: XenStore;
  readonly #log: (line: string) => void;
  readonly #connections = new Map<number, XsConnection>();
  readonly #domainRings: XsDomainRingProvider | undefined;
  readonly #ringOptions: XsServerRingOptions;
  /** Ring connections by domid (only with a provider). */
  readonly #rings = new Map<number, XsRingServer>();
  #nextId = 1;

  constructor(options: XsServerOptions = {}) {
    this.#store = options.store ?? new XenStore();
    this.#log =
      options.log ??
      (() => {
        /* discard */
      });
    this.#domainRings = options.domainRings;
    this.#ringOptions = options.ringOptions ?? {};
  }

  /** The store being served. */
  get store(): XenStore {
    return this.#store;
  }

  /** Number of open connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Register a new client. Socket clients: `{ domid: 0, privileged: true }` (default). */
  connect(sink: XsConnectionSink, options: XsConnectOptions = {}): XsConnection {
    const id = this.#nextId++;
    const conn = new XsConnection(this, id, sink, {
      domid: options.domid ?? 0,
      privileged: options.privileged ?? true,
    });
    this.#connections.set(id, conn);
    return conn;
  }

  /** The ring connection of an introduced guest (diagnostics, tests), if any. */
  domainRing(domid: number): XsRingServer | undefined {
    return this.#rings.get(domid);
  }

  /**
   * Close every connection (the transport closes the channels itself) and every guest
   * ring (unbound and unmapped; the domains stay introduced in the store).
   */
  closeAll(): void {
    for (const ring of [...this.#rings.values()]) ring.close();
    this.#rings.clear();
    for (const conn of [...this.#connections.values()]) conn.close();
  }

  /**
   * @internal INTRODUCE after the privilege check (§7.1). Without a provider (or for
   * dom0) the store alone is updated, as before. With one, the ring is connected first
   * and the store only changes once that worked, so a failure leaves nothing to undo.
   * C's `domain_conn_reset` runs on every INTRODUCE: the previous ring connection of the
   * domain (watches, transactions, queued output) goes and the indexes are zeroed; a ring
   * given up on stays ignored until RELEASE. The old channel is closed before the new bind
   * (C unbinds first too), so when that bind fails a re-introduced domain is left
   * introduced without a ring until the next INTRODUCE.
   */
  introduceDomain(domid: number, gfn: number, port: number): XsStoreResult<unknown> {
    const provider = this.#domainRings;
    if (provider === undefined || domid === 0) return this.#store.introduceDomain(domid);
    // The store's own domid check, made before anything is mapped.
    if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
      return { ok: false, error: 'EINVAL', events: [] };
    }
    const previous = this.#rings.get(domid);
    const ignore = previous?.state === 'ignored' ? previous.error : undefined;
    if (previous !== undefined) {
      this.#rings.delete(domid);
      previous.close();
    }
    let connected: XsDomainRingResult;
    try {
      connected = provider.connect(domid, gfn, port);
    } catch (e) {
      this.log(`Cannot connect the xenstore ring of domain ${domid}: ${String(e)}`);
      connected = { ok: false, error: 'EIO' };
    }
    if (!connected.ok) return { ok: false, error: connected.error, events: [] };
    const channel = connected.ring;
    let ring: XsRingServer;
    try {
      ring = new XsRingServer(channel, (sink) => this.connect(sink, { domid, privileged: false }), {
        ...this.#ringOptions,
        domid,
        resetIndexes: true,
        ...(ignore === undefined ? {} : { ignore }),
        log: (line) => {
          this.log(line);
        },
      });
    } catch (e) {
      this.log(`Cannot serve the xenstore ring of domain ${domid}: ${String(e)}`);
      channel.close();
      return { ok: false, error: 'EIO', events: [] };
    }
    const result = this.#store.introduceDomain(domid);
    if (!result.ok) {
      ring.close();
      return result;
    }
    this.#rings.set(domid, ring);
    return result;
  }

  /**
   * @internal RELEASE after the privilege check (§7.2): the store forgets the domain,
   * then its ring connection (if any) is closed, unbound and unmapped.
   */
  releaseDomain(domid: number): XsStoreResult<void> {
    const result = this.#store.releaseDomain(domid);
    if (result.ok) {
      const ring = this.#rings.get(domid);
      if (ring !== undefined) {
        this.#rings.delete(domid);
        ring.close();
      }
    }
    return result;
  }

  /** @internal Called by {@link XsConnection.close}. */
  forget(id: number): void {
    if (this.#connections.delete(id)) this.#store.closeConnection(id);
  }

  /** @internal Diagnostics sink. */
  log(line: string): void {
    try {
      this.#log(line);
    } catch {
      // A failing logger must not take the daemon down.
    }
  }

  /** @internal Deliver watch events to their connections (unknown or closed ones: dropped). */
  deliver(events: readonly XsWatchEvent[]): void {
    for (const ev of events) this.#connections.get(ev.connectionId)?.sendWatchEvent(ev);
  }
}

/**
 * One client of the daemon. Feed it bytes with {@link receive}; it answers every complete
 * request through its sink, in order. Never throws on client input.
 */
export class XsConnection {
  readonly #server: XsServer;
  readonly #sink: XsConnectionSink;
  readonly #framer = new XsFramer();
  readonly #domid: number;
  readonly #privileged: boolean;
  #closed = false;

  /** The connection id, also the store's `connectionId`. */
  readonly id: number;

  /** @internal Use {@link XsServer.connect}. */
  constructor(
    server: XsServer,
    id: number,
    sink: XsConnectionSink,
    who: { readonly domid: number; readonly privileged: boolean },
  ) {
    this.#server = server;
    this.id = id;
    this.#sink = sink;
    this.#domid = who.domid;
    this.#privileged = who.privileged;
  }

  /** True once closed (by the peer, the transport or a framing error). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Bytes from the peer, split anywhere. Complete requests are executed at once, in order.
   * An oversized header closes the connection (after answering the requests before it).
   */
  receive(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#framer.push(chunk);
    for (const msg of this.#framer) {
      // A sink may close the connection while a reply is sent (unread-output cap).
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- changed by #handle
      if (this.#closed) return;
      this.#handle(msg);
    }
    const error = this.#framer.error;
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
    if (error !== undefined && !this.#closed) {
      this.#server.log(`Closing xenstore connection ${this.id}: ${error.message}`);
      this.close();
      try {
        this.#sink.close(error.message);
      } catch (e) {
        this.#server.log(`Cannot close xenstore connection ${this.id}: ${String(e)}`);
      }
    }
  }

  /** The peer went away (or the server shut down): its watches and transactions go. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.forget(this.id);
  }

  /** @internal Send one WATCH_EVENT (req_id 0, tx_id 0). Oversized events are dropped (§1.4). */
  sendWatchEvent(ev: XsWatchEvent): void {
    if (this.#closed) return;
    let payload: Uint8Array;
    try {
      payload = encodeWatch(ev.path, ev.token);
    } catch {
      return;
    }
    if (payload.length > XENSTORE_PAYLOAD_MAX) return;
    this.#send({ type: XS_TYPE.WATCH_EVENT, reqId: 0, txId: 0, payload });
  }

  #send(msg: XsMessage): void {
    if (this.#closed) return;
    try {
      this.#sink.send(encodeXsMessage(msg));
    } catch (e) {
      this.#server.log(`Cannot send to xenstore connection ${this.id}: ${String(e)}`);
    }
  }

  #handle(msg: XsMessage): void {
    let outcome: Outcome;
    try {
      outcome = this.#execute(msg);
    } catch (e) {
      // A store or codec fault: answer the request, keep serving (STYLE.md "Errors").
      this.#server.log(
        `Cannot execute xenstore request type ${msg.type} on connection ${this.id}: ${
          e instanceof Error ? (e.stack ?? e.message) : String(e)
        }`,
      );
      outcome = { reply: makeErrorReply(msg, 'EIO'), events: [], eventsAfterReply: false };
    }
    if (!outcome.eventsAfterReply) this.#server.deliver(outcome.events);
    this.#send(outcome.reply);
    if (outcome.eventsAfterReply) this.#server.deliver(outcome.events);
  }

  #caller(txId: number): XsCaller {
    return { connectionId: this.id, domid: this.#domid, privileged: this.#privileged, txId };
  }

  #execute(msg: XsMessage): Outcome {
    if (PRIVILEGED_TYPES.has(msg.type) && !this.#privileged) return errorOutcome(msg, 'EACCES');
    const store = this.#server.store;
    const caller = this.#caller(msg.txId);
    switch (msg.type) {
      case XS_TYPE.READ:
        return withArg(msg, parsePathRequest(msg.payload), (path) =>
          storeOutcome(msg, store.read(caller, path), encodeReadReply),
        );
      case XS_TYPE.WRITE:
        return withArg(msg, parseWriteRequest(msg.payload), (req) =>
          storeOutcome(msg, store.write(caller, req.path, req.value), okPayload),
        );
      case XS_TYPE.MKDIR:
        return withArg(msg, parsePathRequest(msg.payload), (path) =>
          storeOutcome(msg, store.mkdir(caller, path), okPayload),
        );
      case XS_TYPE.RM:
        return withArg(msg, parsePathRequest(msg.payload), (path) =>
          storeOutcome(msg, store.rm(caller, path), okPayload),
        );
      case XS_TYPE.DIRECTORY:
        return withArg(msg, parsePathRequest(msg.payload), (path) =>
          storeOutcome(msg, store.directory(caller, path), encodeDirectoryReply),
        );
      case XS_TYPE.DIRECTORY_PART:
        return withArg(msg, parseDirectoryPartRequest(msg.payload), (req) =>
          storeOutcome(msg, store.directoryPart(caller, req.path, req.offset), utf8Encode),
        );
      case XS_TYPE.GET_PERMS:
        return withArg(msg, parsePathRequest(msg.payload), (path) =>
          storeOutcome(msg, store.getPerms(caller, path), encodeGetPermsReply),
        );
      case XS_TYPE.SET_PERMS:
        return withArg(msg, parseSetPermsRequest(msg.payload), (req) =>
          storeOutcome(msg, store.setPerms(caller, req.path, req.perms), okPayload),
        );
      case XS_TYPE.WATCH:
        return withArg(msg, parseWatch(msg.payload), (w) => {
          const r = store.watch(caller, w.path, w.token);
          return { ...storeOutcome(msg, r, okPayload), eventsAfterReply: true };
        });
      case XS_TYPE.UNWATCH:
        return withArg(msg, parseWatch(msg.payload), (w) =>
          storeOutcome(msg, store.unwatch(caller, w.path, w.token), okPayload),
        );
      case XS_TYPE.RESET_WATCHES:
        return storeOutcome(msg, store.resetWatches(caller), okPayload);
      case XS_TYPE.TRANSACTION_START:
        return storeOutcome(msg, store.transactionStart(caller), encodeTransactionStartReply);
      case XS_TYPE.TRANSACTION_END:
        return withArg(msg, parseTransactionEndRequest(msg.payload), (commit) =>
          storeOutcome(msg, store.transactionEnd(caller, commit), okPayload),
        );
      case XS_TYPE.GET_DOMAIN_PATH:
        return withArg(msg, parseDomidRequest(msg.payload), (domid) =>
          okOutcome(msg, encodeGetDomainPathReply(domid)),
        );
      case XS_TYPE.IS_DOMAIN_INTRODUCED:
        return withArg(msg, parseStrictDomidRequest(msg.payload), (domid) =>
          okOutcome(msg, encodeBoolReply(store.isDomainIntroduced(domid))),
        );
      case XS_TYPE.INTRODUCE:
        // With a ring provider the guest's ring is attached as well (§7.1).
        return withArg(msg, parseIntroduceRequest(msg.payload), (req) =>
          storeOutcome(msg, this.#server.introduceDomain(req.domid, req.gfn, req.port), okPayload),
        );
      case XS_TYPE.RELEASE:
        return withArg(msg, parseDomidRequest(msg.payload), (domid) =>
          storeOutcome(msg, this.#server.releaseDomain(domid), okPayload),
        );
      case XS_TYPE.RESUME:
        return withArg(msg, parseDomidRequest(msg.payload), (domid) =>
          storeOutcome(msg, store.resumeDomain(domid), okPayload),
        );
      case XS_TYPE.SET_TARGET:
        return withArg(msg, parseSetTargetRequest(msg.payload), (req) =>
          storeOutcome(msg, store.setTarget(req.domid, req.target), okPayload),
        );
      case XS_TYPE.CONTROL:
        return withArg(msg, parseControlRequest(msg.payload), (req) => this.#control(msg, req));
      default:
        // WATCH_EVENT and ERROR from a client, the removed RESTRICT, 4.21+ and junk (§1.2).
        return errorOutcome(msg, 'ENOSYS');
    }
  }

  #control(msg: XsMessage, req: { command: string; args: readonly string[] }): Outcome {
    switch (req.command) {
      case 'help':
        return okOutcome(msg, utf8Encode(`${CONTROL_HELP}\0`));
      case 'print':
        this.#server.log(`xenstore: ${req.args.join(' ')}`);
        return okOutcome(msg, okPayload());
      case 'check': {
        if (req.args.length > 0) return errorOutcome(msg, 'EINVAL');
        const problems = this.#server.store.check();
        for (const p of problems) this.#server.log(`xenstore check: ${p}`);
        return okOutcome(msg, okPayload());
      }
      default:
        return errorOutcome(msg, 'EINVAL');
    }
  }
}

function okOutcome(msg: XsMessage, payload: Uint8Array): Outcome {
  return { reply: makeReply(msg, payload), events: [], eventsAfterReply: false };
}

function errorOutcome(msg: XsMessage, error: XsErrorName): Outcome {
  return { reply: makeErrorReply(msg, error), events: [], eventsAfterReply: false };
}

/** Run `fn` on a parsed payload, or answer the parse error (EINVAL). */
function withArg<T>(msg: XsMessage, parsed: XsParseResult<T>, fn: (value: T) => Outcome): Outcome {
  return parsed.ok ? fn(parsed.value) : errorOutcome(msg, parsed.error);
}

/** The reply for a store result: the encoded value, or ERROR with the store's name. */
function storeOutcome<T>(
  msg: XsMessage,
  result: XsStoreResult<T>,
  encode: (value: T) => Uint8Array,
): Outcome {
  const reply = result.ok
    ? makeReply(msg, encode(result.value))
    : makeErrorReply(msg, result.error);
  return { reply, events: result.events, eventsAfterReply: false };
}
