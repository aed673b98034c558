// SPDX-License-Identifier: MIT
/**
 * The xenstore client used by the backend, the frontend and the toolstack, over any
 * {@link XsTransport}. It follows the client rules of spec/xenstore.md §11.1: a unique
 * req_id per request with replies matched by req_id (falling back to arrival order when a
 * daemon echoes 0), WATCH_EVENTs routed apart by token, never a zero-length payload,
 * whole-transaction retry on EAGAIN, and a DIRECTORY_PART fallback when DIRECTORY is E2BIG.
 */
import { XENSTORE_PAYLOAD_MAX, XS_TYPE, type XsErrorName } from '../../abi/index.js';
import {
  XsFramer,
  encodeDirectoryPartRequest,
  encodeDomidRequest,
  encodeIntroduceRequest,
  encodePathRequest,
  encodeResetWatchesRequest,
  encodeSetPermsRequest,
  encodeSetTargetRequest,
  encodeTransactionEndRequest,
  encodeTransactionStartRequest,
  encodeWatch,
  encodeWriteRequest,
  encodeXsMessage,
  isOkReply,
  parseBoolReply,
  parseDirectoryPartReply,
  parseDirectoryReply,
  parseErrorPayload,
  parseGetPermsReply,
  parseStringReply,
  parseTransactionStartReply,
  parseWatch,
  utf8Decode,
  type XsMessage,
  type XsParseResult,
  type XsPermission,
} from '../protocol/index.js';
import { XsError } from './errors.js';
import type { XsTransport } from './transport.js';

/** A timer service, injected so the core stays free of host globals in tests. */
export interface XsTimers {
  /** Call `cb` once after `ms` milliseconds; returns a handle for {@link XsTimers.clear}. */
  set(cb: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const DEFAULT_TIMERS: XsTimers = {
  set: (cb, ms) => setTimeout(cb, ms),
  clear: (handle) => {
    clearTimeout(handle as Parameters<typeof clearTimeout>[0]);
  },
};

/** Options of {@link XsClient}. */
export interface XsClientOptions {
  /** Per-request reply timeout (default 30000 ms). */
  readonly timeoutMs?: number;
  /**
   * Largest reply payload accepted (default 1 MiB). Above XENSTORE_PAYLOAD_MAX because
   * oxenstored sends oversized DIRECTORY replies on a socket (§1.4, §11.1); a larger
   * header closes the connection.
   */
  readonly maxReplyPayload?: number;
  /** Timer service (default: the host's setTimeout/clearTimeout). */
  readonly timers?: XsTimers;
  /** Diagnostics: dropped replies, malformed events, throwing watch callbacks. */
  readonly log?: (line: string) => void;
}

/** Per-request options. */
export interface XsRequestOptions {
  /** Transaction id from {@link XsClient.transactionStart} (default: none). */
  readonly tx?: number;
  /** Overrides the client's timeout for this request. */
  readonly timeoutMs?: number;
}

/** A WATCH_EVENT as delivered to a watch callback. */
export interface XsWatchEventInfo {
  /** The path that changed, relative when the watch path was relative (§5.8). */
  readonly path: string;
  readonly token: string;
}

/** A watch callback. Exceptions are caught and logged. */
export type XsWatchCallback = (event: XsWatchEventInfo) => void;

/** Options of {@link XsClient.transaction}. */
export interface XsTransactionOptions {
  /** Further attempts after the first when TRANSACTION_END answers EAGAIN (default 16). */
  readonly maxRetries?: number;
  /** Per-request timeout inside the transaction. */
  readonly timeoutMs?: number;
}

/** Arguments of INTRODUCE besides the domid (§7.1). */
export interface XsIntroduceOptions {
  /** Guest frame of the ring page. */
  readonly gfn: number;
  /** The guest's unbound event-channel port, > 0. */
  readonly port: number;
  readonly timeoutMs?: number;
}

interface Pending {
  readonly reqId: number;
  readonly type: number;
  readonly path: string;
  readonly resolve: (reply: XsMessage) => void;
  readonly reject: (err: XsError) => void;
  timer: unknown;
}

const TYPE_NAMES = new Map<number, string>(
  Object.entries(XS_TYPE).map(([name, value]) => [value, name]),
);
TYPE_NAMES.set(XS_TYPE.CONTROL, 'CONTROL');

function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `type ${type}`;
}

function watchMatches(watchPath: string, eventPath: string): boolean {
  if (watchPath === eventPath) return true;
  if (watchPath.startsWith('@')) return false;
  if (watchPath === '/') return eventPath.startsWith('/');
  return eventPath.startsWith(`${watchPath}/`);
}

function unwrap<T>(r: XsParseResult<T>, what: string): T {
  if (!r.ok) throw new XsError('EPROTO', `Cannot parse the ${what} reply: ${r.detail}`);
  return r.value;
}

/**
 * A transaction handle: the node operations of {@link XsClient} bound to one tx id.
 * Obtained from {@link XsClient.transaction}.
 */
export class XsTransaction {
  readonly #client: XsClient;
  /** The transaction id, to pass as `{ tx }` to {@link XsClient} calls. */
  readonly id: number;

  constructor(client: XsClient, id: number) {
    this.#client = client;
    this.id = id;
  }

  /** READ inside the transaction. */
  read(path: string): Promise<Uint8Array> {
    return this.#client.read(path, { tx: this.id });
  }
  /** READ as UTF-8 inside the transaction. */
  readString(path: string): Promise<string> {
    return this.#client.readString(path, { tx: this.id });
  }
  /** WRITE inside the transaction. */
  write(path: string, value: Uint8Array | string): Promise<void> {
    return this.#client.write(path, value, { tx: this.id });
  }
  /** MKDIR inside the transaction. */
  mkdir(path: string): Promise<void> {
    return this.#client.mkdir(path, { tx: this.id });
  }
  /** RM inside the transaction. */
  rm(path: string): Promise<void> {
    return this.#client.rm(path, { tx: this.id });
  }
  /** DIRECTORY inside the transaction. */
  directory(path: string): Promise<string[]> {
    return this.#client.directory(path, { tx: this.id });
  }
  /** GET_PERMS inside the transaction. */
  getPerms(path: string): Promise<XsPermission[]> {
    return this.#client.getPerms(path, { tx: this.id });
  }
  /** SET_PERMS inside the transaction. */
  setPerms(path: string, perms: readonly XsPermission[]): Promise<void> {
    return this.#client.setPerms(path, perms, { tx: this.id });
  }
}

/**
 * A xenstore client over one transport connection. Requests may be issued concurrently;
 * each rejects with an {@link XsError} whose `code` is the xenstore error name.
 *
 * @example
 * const xs = new XsClient(await connectXenstoreUnixSocket());
 * await xs.write('/local/domain/0/backend/pci/5/0/state', '1');
 * await xs.watch('/local/domain/5/device/pci/0/state', 'fe', (ev) => { … });
 * await xs.transaction(async (tx) => {
 *   const n = Number(await tx.readString('/counter'));
 *   await tx.write('/counter', String(n + 1));
 * });
 */
export class XsClient {
  readonly #transport: XsTransport;
  readonly #framer: XsFramer;
  readonly #timers: XsTimers;
  readonly #timeoutMs: number;
  readonly #log: (line: string) => void;
  /** Pending requests by req_id; Map order is send order, the FIFO fallback (§1.3). */
  readonly #pending = new Map<number, Pending>();
  /** Watch callbacks: token → watch path → callback. */
  readonly #watches = new Map<string, Map<string, XsWatchCallback>>();
  #nextReqId = 1;
  #closed: XsError | undefined;

  constructor(transport: XsTransport, options: XsClientOptions = {}) {
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (!(timeoutMs > 0)) {
      throw new RangeError(`Cannot create an XsClient with timeoutMs ${timeoutMs}`);
    }
    this.#transport = transport;
    this.#timeoutMs = timeoutMs;
    this.#timers = options.timers ?? DEFAULT_TIMERS;
    this.#log = options.log ?? (() => undefined);
    this.#framer = new XsFramer({ maxPayload: options.maxReplyPayload ?? 1024 * 1024 });
    transport.onData((chunk) => {
      this.#receive(chunk);
    });
    transport.onClose((error) => {
      this.#shutdown(
        new XsError('ECONNRESET', 'Cannot complete the xenstore request: the connection closed', {
          cause: error,
        }),
      );
    });
  }

  /** True once the transport closed or {@link XsClient.close} was called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Requests sent and not yet answered. */
  get pendingRequests(): number {
    return this.#pending.size;
  }

  /** Close the connection; pending requests reject with `ECONNRESET`. Idempotent. */
  close(): void {
    this.#shutdown(
      new XsError('ECONNRESET', 'Cannot complete the xenstore request: the client was closed'),
    );
  }

  // -------------------------------------------------------------------------------------
  // Node operations (§3, §4)
  // -------------------------------------------------------------------------------------

  /** READ: the raw value bytes (may be empty, may contain NULs). */
  async read(path: string, options: XsRequestOptions = {}): Promise<Uint8Array> {
    const reply = await this.#request(XS_TYPE.READ, encodePathRequest(path), path, options);
    return reply.payload;
  }

  /** READ decoded as UTF-8. */
  async readString(path: string, options: XsRequestOptions = {}): Promise<string> {
    return utf8Decode(await this.read(path, options));
  }

  /** WRITE `value` (a string is UTF-8 encoded), creating missing ancestors. */
  async write(
    path: string,
    value: Uint8Array | string,
    options: XsRequestOptions = {},
  ): Promise<void> {
    await this.#okRequest(XS_TYPE.WRITE, encodeWriteRequest(path, value), path, options);
  }

  /** MKDIR: create an empty node (no error when it exists). */
  async mkdir(path: string, options: XsRequestOptions = {}): Promise<void> {
    await this.#okRequest(XS_TYPE.MKDIR, encodePathRequest(path), path, options);
  }

  /** RM: remove a node and its subtree. */
  async rm(path: string, options: XsRequestOptions = {}): Promise<void> {
    await this.#okRequest(XS_TYPE.RM, encodePathRequest(path), path, options);
  }

  /**
   * DIRECTORY: the child names. When the daemon answers E2BIG (a listing above 4096
   * bytes) this falls back to DIRECTORY_PART like libxenstore (§3.6); ENOSYS from
   * DIRECTORY_PART (oxenstored) is reported as the original E2BIG.
   */
  async directory(path: string, options: XsRequestOptions = {}): Promise<string[]> {
    try {
      const reply = await this.#request(XS_TYPE.DIRECTORY, encodePathRequest(path), path, options);
      return unwrap(parseDirectoryReply(reply.payload), 'DIRECTORY');
    } catch (e) {
      if (!(e instanceof XsError) || e.code !== 'E2BIG') throw e;
      try {
        return await this.#directoryByParts(path, options);
      } catch (inner) {
        if (inner instanceof XsError && inner.code === 'ENOSYS') throw e;
        throw inner;
      }
    }
  }

  async #directoryByParts(path: string, options: XsRequestOptions): Promise<string[]> {
    // libxenstore's loop: restart from 0 when the generation changes between chunks.
    for (let attempt = 0; attempt < 16; attempt++) {
      const chunks: Uint8Array[] = [];
      let offset = 0;
      let generation: string | undefined;
      let restart = false;
      for (;;) {
        const reply = await this.#request(
          XS_TYPE.DIRECTORY_PART,
          encodeDirectoryPartRequest(path, offset),
          path,
          options,
        );
        const part = unwrap(parseDirectoryPartReply(reply.payload), 'DIRECTORY_PART');
        if (generation !== undefined && part.generation !== generation) {
          restart = true;
          break;
        }
        generation = part.generation;
        chunks.push(part.list);
        offset += part.list.length;
        if (part.end) break;
        if (part.list.length === 0) {
          throw new XsError('EPROTO', `Cannot list "${path}": DIRECTORY_PART made no progress`);
        }
      }
      if (restart) continue;
      return chunks.flatMap((c) => unwrap(parseDirectoryReply(c), 'DIRECTORY_PART'));
    }
    throw new XsError('EAGAIN', `Cannot list "${path}": the node kept changing between chunks`);
  }

  /** GET_PERMS: the permission list, owner first. */
  async getPerms(path: string, options: XsRequestOptions = {}): Promise<XsPermission[]> {
    const reply = await this.#request(XS_TYPE.GET_PERMS, encodePathRequest(path), path, options);
    return unwrap(parseGetPermsReply(reply.payload), 'GET_PERMS');
  }

  /** SET_PERMS: replace the permission list (owner first, at least one entry). */
  async setPerms(
    path: string,
    perms: readonly XsPermission[],
    options: XsRequestOptions = {},
  ): Promise<void> {
    const payload = this.#encode(() => encodeSetPermsRequest(path, perms), 'SET_PERMS', path);
    await this.#okRequest(XS_TYPE.SET_PERMS, payload, path, options);
  }

  // -------------------------------------------------------------------------------------
  // Watches (§5)
  // -------------------------------------------------------------------------------------

  /**
   * WATCH `path` with `token`; `cb` receives every WATCH_EVENT whose token is `token` and
   * whose path is `path` or below it, starting with the initial event the daemon sends
   * right after registering (§5.1). Clients must tolerate spurious events (§5.9). A
   * second watch on the same path and token of this client rejects with EEXIST.
   */
  async watch(
    path: string,
    token: string,
    cb: XsWatchCallback,
    options: Omit<XsRequestOptions, 'tx'> = {},
  ): Promise<void> {
    let byPath = this.#watches.get(token);
    if (byPath?.has(path) === true) {
      throw new XsError('EEXIST', `Cannot watch "${path}" with token "${token}": already watched`);
    }
    if (byPath === undefined) {
      byPath = new Map();
      this.#watches.set(token, byPath);
    }
    // Registered before sending: events may arrive before the reply (§1.3, §11.1).
    byPath.set(path, cb);
    try {
      await this.#okRequest(XS_TYPE.WATCH, encodeWatch(path, token), path, options);
    } catch (e) {
      this.#dropWatch(path, token);
      throw e;
    }
  }

  /**
   * UNWATCH. The callback is removed at once, so events still in flight are not
   * delivered; the daemon's ENOENT (no such watch) is still reported.
   */
  async unwatch(
    path: string,
    token: string,
    options: Omit<XsRequestOptions, 'tx'> = {},
  ): Promise<void> {
    this.#dropWatch(path, token);
    await this.#okRequest(XS_TYPE.UNWATCH, encodeWatch(path, token), path, options);
  }

  /**
   * RESET_WATCHES: the daemon drops every watch and open transaction of this connection;
   * the local callbacks go too.
   */
  async resetWatches(options: Omit<XsRequestOptions, 'tx'> = {}): Promise<void> {
    this.#watches.clear();
    await this.#okRequest(XS_TYPE.RESET_WATCHES, encodeResetWatchesRequest(), '', options);
  }

  #dropWatch(path: string, token: string): void {
    const byPath = this.#watches.get(token);
    byPath?.delete(path);
    if (byPath?.size === 0) this.#watches.delete(token);
  }

  // -------------------------------------------------------------------------------------
  // Transactions (§6)
  // -------------------------------------------------------------------------------------

  /** TRANSACTION_START: a new transaction id (sends `\0`, never an empty payload). */
  async transactionStart(options: Omit<XsRequestOptions, 'tx'> = {}): Promise<number> {
    const reply = await this.#request(
      XS_TYPE.TRANSACTION_START,
      encodeTransactionStartRequest(),
      '',
      options,
    );
    return unwrap(parseTransactionStartReply(reply.payload), 'TRANSACTION_START');
  }

  /**
   * TRANSACTION_END: commit (`true`) or abort. The id is dead afterwards whatever the
   * outcome; a commit conflict rejects with EAGAIN.
   */
  async transactionEnd(
    tx: number,
    commit: boolean,
    options: Omit<XsRequestOptions, 'tx'> = {},
  ): Promise<void> {
    await this.#okRequest(XS_TYPE.TRANSACTION_END, encodeTransactionEndRequest(commit), '', {
      ...options,
      tx,
    });
  }

  /**
   * Run `body` in a transaction and commit it. When the commit answers EAGAIN the whole
   * body runs again in a new transaction, up to `maxRetries` more times (§6.2, §11.1), so
   * `body` must not have side effects outside xenstore that cannot be repeated. When
   * `body` throws, the transaction is aborted and the error rethrown.
   */
  async transaction<T>(
    body: (tx: XsTransaction) => Promise<T>,
    options: XsTransactionOptions = {},
  ): Promise<T> {
    const maxRetries = options.maxRetries ?? 16;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new RangeError(`Cannot run a transaction with maxRetries ${maxRetries}`);
    }
    const reqOptions = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    let lastConflict: XsError | undefined;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const id = await this.transactionStart(reqOptions);
      let result: T;
      try {
        result = await body(new XsTransaction(this, id));
      } catch (e) {
        await this.transactionEnd(id, false, reqOptions).catch((abortError: unknown) => {
          this.#log(`Cannot abort transaction ${id}: ${String(abortError)}`);
        });
        throw e;
      }
      try {
        await this.transactionEnd(id, true, reqOptions);
        return result;
      } catch (e) {
        if (!(e instanceof XsError) || e.code !== 'EAGAIN') throw e;
        lastConflict = e;
      }
    }
    throw new XsError(
      'EAGAIN',
      `Cannot commit the transaction: it conflicted ${maxRetries + 1} times`,
      { cause: lastConflict },
    );
  }

  // -------------------------------------------------------------------------------------
  // Domains (§7)
  // -------------------------------------------------------------------------------------

  /** GET_DOMAIN_PATH: `/local/domain/<domid>`. */
  async getDomainPath(domid: number, options: Omit<XsRequestOptions, 'tx'> = {}): Promise<string> {
    const payload = this.#encode(() => encodeDomidRequest(domid), 'GET_DOMAIN_PATH', '');
    const reply = await this.#request(XS_TYPE.GET_DOMAIN_PATH, payload, '', options);
    return unwrap(parseStringReply(reply.payload), 'GET_DOMAIN_PATH');
  }

  /** INTRODUCE a domain's ring to the daemon (privileged). */
  async introduce(domid: number, options: XsIntroduceOptions): Promise<void> {
    const payload = this.#encode(
      () => encodeIntroduceRequest({ domid, gfn: options.gfn, port: options.port }),
      'INTRODUCE',
      '',
    );
    await this.#okRequest(XS_TYPE.INTRODUCE, payload, '', timeoutOnly(options));
  }

  /** RELEASE a domain (privileged): its watches, transactions and nodes go (§7.2). */
  async release(domid: number, options: Omit<XsRequestOptions, 'tx'> = {}): Promise<void> {
    const payload = this.#encode(() => encodeDomidRequest(domid), 'RELEASE', '');
    await this.#okRequest(XS_TYPE.RELEASE, payload, '', options);
  }

  /** RESUME a domain (privileged): re-arms its shutdown event (§7.3). */
  async resume(domid: number, options: Omit<XsRequestOptions, 'tx'> = {}): Promise<void> {
    const payload = this.#encode(() => encodeDomidRequest(domid), 'RESUME', '');
    await this.#okRequest(XS_TYPE.RESUME, payload, '', options);
  }

  /** IS_DOMAIN_INTRODUCED (privileged). */
  async isDomainIntroduced(
    domid: number,
    options: Omit<XsRequestOptions, 'tx'> = {},
  ): Promise<boolean> {
    const payload = this.#encode(() => encodeDomidRequest(domid), 'IS_DOMAIN_INTRODUCED', '');
    const reply = await this.#request(XS_TYPE.IS_DOMAIN_INTRODUCED, payload, '', options);
    return unwrap(parseBoolReply(reply.payload), 'IS_DOMAIN_INTRODUCED');
  }

  /** SET_TARGET (privileged): `domid` may then act for `target` (§4.3). */
  async setTarget(
    domid: number,
    target: number,
    options: Omit<XsRequestOptions, 'tx'> = {},
  ): Promise<void> {
    const payload = this.#encode(() => encodeSetTargetRequest(domid, target), 'SET_TARGET', '');
    await this.#okRequest(XS_TYPE.SET_TARGET, payload, '', options);
  }

  // -------------------------------------------------------------------------------------
  // Request machinery
  // -------------------------------------------------------------------------------------

  /** Run a payload encoder; its RangeError becomes a rejected EINVAL request. */
  #encode(fn: () => Uint8Array, what: string, path: string): Uint8Array {
    try {
      return fn();
    } catch (e) {
      throw new XsError('EINVAL', `Cannot encode ${what}${path ? ` of "${path}"` : ''}`, {
        cause: e,
      });
    }
  }

  async #okRequest(
    type: number,
    payload: Uint8Array,
    path: string,
    options: XsRequestOptions,
  ): Promise<void> {
    const reply = await this.#request(type, payload, path, options);
    // Lenient like libxenstore, which ignores the body of OK replies; only log oddities.
    if (!isOkReply(reply.payload)) {
      this.#log(`${typeName(type)} reply req_id ${reply.reqId} is not "OK\\0"`);
    }
  }

  #request(
    type: number,
    payload: Uint8Array,
    path: string,
    options: XsRequestOptions,
  ): Promise<XsMessage> {
    const what = `${typeName(type)}${path ? ` "${path}"` : ''}`;
    if (this.#closed !== undefined) {
      return Promise.reject(
        new XsError('ECONNRESET', `Cannot send ${what}: the connection is closed`, {
          cause: this.#closed,
        }),
      );
    }
    if (payload.length === 0 || payload.length > XENSTORE_PAYLOAD_MAX) {
      // libxenstore fails locally with E2BIG; an empty payload would stall oxenstored.
      const code: XsErrorName = payload.length === 0 ? 'EINVAL' : 'E2BIG';
      return Promise.reject(
        new XsError(code, `Cannot send ${what}: the payload is ${payload.length} bytes`),
      );
    }
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const txId = options.tx ?? 0;
    const reqId = this.#allocateReqId();
    let bytes: Uint8Array;
    try {
      bytes = encodeXsMessage({ type, reqId, txId, payload });
    } catch (e) {
      return Promise.reject(new XsError('EINVAL', `Cannot encode ${what}`, { cause: e }));
    }
    return new Promise<XsMessage>((resolve, reject) => {
      const pending: Pending = {
        reqId,
        type,
        path,
        resolve,
        reject,
        timer: undefined,
      };
      this.#pending.set(reqId, pending);
      pending.timer = this.#timers.set(() => {
        if (this.#pending.get(reqId) !== pending) return;
        this.#pending.delete(reqId);
        reject(
          new XsError('ETIMEDOUT', `Cannot complete ${what}: no reply within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      try {
        this.#transport.send(bytes);
      } catch (e) {
        this.#settle(pending);
        reject(
          new XsError('ECONNRESET', `Cannot send ${what}: the transport failed`, { cause: e }),
        );
      }
    });
  }

  #allocateReqId(): number {
    // Never 0 (that is what a libxenstore-style daemon echo looks like) and never in use.
    let id = this.#nextReqId;
    while (id === 0 || this.#pending.has(id)) id = (id + 1) >>> 0;
    this.#nextReqId = (id + 1) >>> 0;
    return id;
  }

  #settle(pending: Pending): void {
    this.#pending.delete(pending.reqId);
    this.#timers.clear(pending.timer);
  }

  #receive(chunk: Uint8Array): void {
    if (this.#closed !== undefined) return;
    this.#framer.push(chunk);
    for (const message of this.#framer) this.#dispatch(message);
    const error = this.#framer.error;
    if (error !== undefined) {
      this.#shutdown(new XsError('EPROTO', `Cannot read from xenstored: ${error.message}`));
    }
  }

  #dispatch(message: XsMessage): void {
    if (message.type === XS_TYPE.WATCH_EVENT) {
      this.#deliverEvent(message);
      return;
    }
    let pending = message.reqId === 0 ? undefined : this.#pending.get(message.reqId);
    if (pending === undefined && message.reqId === 0) {
      // A daemon that echoes 0 answers in request order (§1.3): take the oldest.
      pending = this.#pending.values().next().value;
    }
    if (pending === undefined) {
      this.#log(
        `Dropped a ${typeName(message.type)} reply with req_id ${message.reqId}: no request is waiting for it (timed out?)`,
      );
      return;
    }
    this.#settle(pending);
    const what = `${typeName(pending.type)}${pending.path ? ` "${pending.path}"` : ''}`;
    if (message.type === XS_TYPE.ERROR) {
      const { name, error } = parseErrorPayload(message.payload);
      pending.reject(
        new XsError(error, `Cannot complete ${what}: xenstored answered "${name}"`, {
          wireName: name,
        }),
      );
      return;
    }
    if (message.type !== pending.type) {
      pending.reject(
        new XsError(
          'EPROTO',
          `Cannot complete ${what}: the reply with req_id ${message.reqId} has type ${typeName(message.type)}`,
        ),
      );
      return;
    }
    pending.resolve(message);
  }

  #deliverEvent(message: XsMessage): void {
    const parsed = parseWatch(message.payload);
    if (!parsed.ok) {
      this.#log(`Dropped a malformed WATCH_EVENT: ${parsed.detail}`);
      return;
    }
    const { path, token } = parsed.value;
    const byPath = this.#watches.get(token);
    if (byPath === undefined) return; // Late or foreign event: tolerated (§5.9).
    for (const [watchPath, cb] of [...byPath]) {
      if (!watchMatches(watchPath, path)) continue;
      try {
        cb({ path, token });
      } catch (e) {
        this.#log(`Watch callback for "${watchPath}" token "${token}" threw: ${String(e)}`);
      }
    }
  }

  #shutdown(reason: XsError): void {
    if (this.#closed !== undefined) return;
    this.#closed = reason;
    const pending = [...this.#pending.values()];
    for (const p of pending) this.#settle(p);
    for (const p of pending) {
      const what = `${typeName(p.type)}${p.path ? ` "${p.path}"` : ''}`;
      p.reject(
        new XsError(reason.code, `Cannot complete ${what}: ${reason.message}`, { cause: reason }),
      );
    }
    try {
      this.#transport.close();
    } catch (e) {
      this.#log(`Cannot close the xenstore transport: ${String(e)}`);
    }
  }
}

function timeoutOnly(options: { readonly timeoutMs?: number }): Omit<XsRequestOptions, 'tx'> {
  return options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
}
