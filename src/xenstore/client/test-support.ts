// SPDX-License-Identifier: MIT
/**
 * An in-process fake xenstored for the client's tests: the real store and protocol codec
 * behind a byte-level connection, with knobs for daemon behaviours the client must
 * survive (req_id echoed as 0, reply/event order, reordered or missing replies).
 * Not exported from the folder's index.
 */
import { XS_TYPE, type XsErrorName } from '../../abi/index.js';
import {
  XsFramer,
  encodeBoolReply,
  encodeDirectoryReply,
  encodeGetDomainPathReply,
  encodeGetPermsReply,
  encodeTransactionStartReply,
  encodeWatch,
  encodeXsMessage,
  makeErrorReply,
  makeReply,
  okPayload,
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
} from '../protocol/index.js';
import { XenStore, type XsCaller, type XsWatchEvent } from '../store/index.js';
import { createMemoryTransportPair, type XsTransport } from './transport.js';

/** Behaviour of one fake connection. */
export interface FakeConnectionOptions {
  readonly domid?: number;
  readonly privileged?: boolean;
  /** Reply with req_id 0 like a daemon serving libxenstore-only clients. */
  readonly echoZeroReqId?: boolean;
  /** oxenstored order: the reply first, then the events the request caused (§1.3). */
  readonly eventsAfterReply?: boolean;
  /** Hold replies and send each batch (requests of one tick) in reverse order. */
  readonly reverseReplies?: boolean;
  /** Message types never answered (for timeouts). */
  readonly mute?: readonly number[];
  /** Answer DIRECTORY_PART with ENOSYS (oxenstored). */
  readonly noDirectoryPart?: boolean;
  /** Split bytes in the memory transport to this size. */
  readonly chunkBytes?: number;
}

type Reply = { payload: Uint8Array } | { error: XsErrorName };

const PRIVILEGED_ONLY = new Set<number>([
  XS_TYPE.INTRODUCE,
  XS_TYPE.RELEASE,
  XS_TYPE.RESUME,
  XS_TYPE.IS_DOMAIN_INTRODUCED,
  XS_TYPE.SET_TARGET,
]);

interface Conn {
  readonly id: number;
  readonly options: FakeConnectionOptions;
  readonly send: (bytes: Uint8Array) => void;
  readonly held: Uint8Array[];
}

/** The fake daemon. Every message it received is kept in `received` for assertions. */
export class FakeXenstored {
  readonly store: XenStore;
  readonly received: XsMessage[] = [];
  readonly #conns = new Map<number, Conn>();
  #nextConn = 1;

  constructor(store: XenStore = new XenStore()) {
    this.store = store;
  }

  /** A new connection; returns the client's end of an in-memory transport pair. */
  connect(options: FakeConnectionOptions = {}): XsTransport {
    const pairOptions = options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes };
    const [client, daemon] = createMemoryTransportPair(pairOptions);
    const port = this.attach((bytes) => {
      daemon.send(bytes);
    }, options);
    daemon.onData((chunk) => {
      port.receive(chunk);
    });
    daemon.onClose(() => {
      port.close();
    });
    return client;
  }

  /** Attach any byte stream (a socket in the transport tests). */
  attach(
    send: (bytes: Uint8Array) => void,
    options: FakeConnectionOptions = {},
  ): { receive(chunk: Uint8Array): void; close(): void } {
    const conn: Conn = { id: this.#nextConn++, options, send, held: [] };
    this.#conns.set(conn.id, conn);
    const framer = new XsFramer();
    return {
      receive: (chunk) => {
        framer.push(chunk);
        for (const m of framer) this.#handle(conn, m);
      },
      close: () => {
        this.store.closeConnection(conn.id);
        this.#conns.delete(conn.id);
      },
    };
  }

  #emit(conn: Conn, message: XsMessage, isReply: boolean): void {
    const bytes = encodeXsMessage(message, { maxPayload: 1 << 20 });
    if (isReply && conn.options.reverseReplies === true) {
      if (conn.held.length === 0) {
        setTimeout(() => {
          const batch = conn.held.splice(0).reverse();
          for (const b of batch) conn.send(b);
        }, 0);
      }
      conn.held.push(bytes);
      return;
    }
    conn.send(bytes);
  }

  #events(events: readonly XsWatchEvent[]): void {
    for (const ev of events) {
      const target = this.#conns.get(ev.connectionId);
      if (target === undefined) continue;
      this.#emit(
        target,
        { type: XS_TYPE.WATCH_EVENT, reqId: 0, txId: 0, payload: encodeWatch(ev.path, ev.token) },
        false,
      );
    }
  }

  #handle(conn: Conn, message: XsMessage): void {
    this.received.push(message);
    if (conn.options.mute?.includes(message.type) === true) return;
    const caller: XsCaller = {
      connectionId: conn.id,
      domid: conn.options.domid ?? 0,
      privileged: conn.options.privileged ?? true,
      txId: message.txId,
    };
    const { reply, events, after } = this.#run(conn, caller, message);
    const wire =
      'error' in reply ? makeErrorReply(message, reply.error) : makeReply(message, reply.payload);
    const out: XsMessage = conn.options.echoZeroReqId === true ? { ...wire, reqId: 0 } : wire;
    if (conn.options.eventsAfterReply === true || after) {
      this.#emit(conn, out, true);
      this.#events(events);
    } else {
      this.#events(events);
      this.#emit(conn, out, true);
    }
  }

  #run(
    conn: Conn,
    caller: XsCaller,
    m: XsMessage,
  ): { reply: Reply; events: readonly XsWatchEvent[]; after: boolean } {
    const s = this.store;
    const done = (
      r:
        | { ok: true; events: readonly XsWatchEvent[] }
        | { ok: false; error: XsErrorName; events: readonly XsWatchEvent[] },
      payload: () => Uint8Array = okPayload,
      after = false,
    ): { reply: Reply; events: readonly XsWatchEvent[]; after: boolean } => ({
      reply: r.ok ? { payload: payload() } : { error: r.error },
      events: r.events,
      after,
    });
    const bad = (error: XsErrorName): { reply: Reply; events: []; after: false } => ({
      reply: { error },
      events: [],
      after: false,
    });
    if (PRIVILEGED_ONLY.has(m.type) && !caller.privileged) return bad('EACCES');
    switch (m.type) {
      case XS_TYPE.READ: {
        const p = parsePathRequest(m.payload);
        if (!p.ok) return bad(p.error);
        const r = s.read(caller, p.value);
        return done(r, () => (r.ok ? r.value : new Uint8Array(0)));
      }
      case XS_TYPE.WRITE: {
        const p = parseWriteRequest(m.payload);
        if (!p.ok) return bad(p.error);
        return done(s.write(caller, p.value.path, p.value.value));
      }
      case XS_TYPE.MKDIR:
      case XS_TYPE.RM:
      case XS_TYPE.DIRECTORY:
      case XS_TYPE.GET_PERMS: {
        const p = parsePathRequest(m.payload);
        if (!p.ok) return bad(p.error);
        if (m.type === XS_TYPE.MKDIR) return done(s.mkdir(caller, p.value));
        if (m.type === XS_TYPE.RM) return done(s.rm(caller, p.value));
        if (m.type === XS_TYPE.DIRECTORY) {
          const r = s.directory(caller, p.value);
          return done(r, () => encodeDirectoryReply(r.ok ? r.value : []));
        }
        const r = s.getPerms(caller, p.value);
        return done(r, () => encodeGetPermsReply(r.ok ? r.value : []));
      }
      case XS_TYPE.DIRECTORY_PART: {
        if (conn.options.noDirectoryPart === true) return bad('ENOSYS');
        const p = parseDirectoryPartRequest(m.payload);
        if (!p.ok) return bad(p.error);
        const r = s.directoryPart(caller, p.value.path, p.value.offset);
        return done(r, () => utf8Encode(r.ok ? r.value : ''));
      }
      case XS_TYPE.SET_PERMS: {
        const p = parseSetPermsRequest(m.payload);
        if (!p.ok) return bad(p.error);
        return done(s.setPerms(caller, p.value.path, p.value.perms));
      }
      case XS_TYPE.WATCH:
      case XS_TYPE.UNWATCH: {
        const p = parseWatch(m.payload);
        if (!p.ok) return bad(p.error);
        if (m.type === XS_TYPE.UNWATCH) return done(s.unwatch(caller, p.value.path, p.value.token));
        // The initial event always follows the WATCH reply (§5.1).
        return done(s.watch(caller, p.value.path, p.value.token), okPayload, true);
      }
      case XS_TYPE.RESET_WATCHES:
        return done(s.resetWatches(caller));
      case XS_TYPE.TRANSACTION_START: {
        const r = s.transactionStart(caller);
        return done(r, () => encodeTransactionStartReply(r.ok ? r.value : 1));
      }
      case XS_TYPE.TRANSACTION_END: {
        const p = parseTransactionEndRequest(m.payload);
        if (!p.ok) return bad(p.error);
        return done(s.transactionEnd(caller, p.value));
      }
      case XS_TYPE.INTRODUCE: {
        const p = parseIntroduceRequest(m.payload);
        if (!p.ok) return bad(p.error);
        return done(s.introduceDomain(p.value.domid));
      }
      case XS_TYPE.RELEASE:
      case XS_TYPE.RESUME:
      case XS_TYPE.GET_DOMAIN_PATH: {
        const p = parseDomidRequest(m.payload);
        if (!p.ok) return bad(p.error);
        if (m.type === XS_TYPE.RELEASE) return done(s.releaseDomain(p.value));
        if (m.type === XS_TYPE.RESUME) return done(s.resumeDomain(p.value));
        return { reply: { payload: encodeGetDomainPathReply(p.value) }, events: [], after: false };
      }
      case XS_TYPE.IS_DOMAIN_INTRODUCED: {
        const p = parseStrictDomidRequest(m.payload);
        if (!p.ok) return bad(p.error);
        const v = s.isDomainIntroduced(p.value);
        return { reply: { payload: encodeBoolReply(v) }, events: [], after: false };
      }
      case XS_TYPE.SET_TARGET: {
        const p = parseSetTargetRequest(m.payload);
        if (!p.ok) return bad(p.error);
        return done(s.setTarget(p.value.domid, p.value.target));
      }
      default:
        return bad('ENOSYS');
    }
  }
}
