// SPDX-License-Identifier: MIT
/**
 * The xenstore database: nodes, permissions, watches, transactions, domains and quotas
 * (spec/xenstore.md §2–§8, §9.2), following C xenstored 4.17 unless §11 recommends
 * otherwise. Pure logic: the daemon parses payloads, checks privileged-only message types
 * and delivers the returned events.
 */
import type { XsErrorName } from '../../abi/xs-wire.js';
import { XENSTORE_PAYLOAD_MAX } from '../../abi/xs-wire.js';
import {
  baseName,
  canonicalizePath,
  childPath,
  domainPath,
  isPathAtOrBelow,
  isValidCanonicalPath,
  isXsSpecialPath,
  parentPath,
  type XsSpecialPath,
} from './path.js';
import {
  XS_DEFAULT_QUOTAS,
  type XsCaller,
  type XsNodeSnapshot,
  type XsQuotas,
  type XsStoreOptions,
  type XsStorePerm,
  type XsStoreResult,
  type XsWatchEvent,
} from './types.js';

const PERM_READ = 1;
const PERM_WRITE = 2;
const PERM_OWNER = 4;
const PERM_ALL = PERM_READ | PERM_WRITE | PERM_OWNER;

/** DOMID_SELF: IS_DOMAIN_INTRODUCED answers T for it (§7.5). */
const DOMID_SELF = 32752;

/** Nodes are immutable: every change builds a new object (so tx copies can share them). */
interface Node {
  readonly value: Uint8Array;
  readonly perms: readonly XsStorePerm[];
  readonly children: readonly string[];
  readonly generation: number;
}

/** Perms plus the generation they were written at (for XS_PERM_IGNORE, §4.1). */
interface PermView {
  readonly perms: readonly XsStorePerm[];
  readonly generation: number;
}

interface Who {
  readonly domid: number;
  readonly privileged: boolean;
  readonly target: number | undefined;
}

/** A change to report to watchers (§5.3). */
interface FireSpec {
  readonly path: string;
  /** The connection must be able to read through one of these (§5.5). */
  readonly views: PermView[];
  /** RM only: the removed subtree's perms before deletion, by path. */
  readonly removed?: Map<string, PermView>;
}

interface Watch {
  readonly connectionId: number;
  readonly domid: number;
  readonly privileged: boolean;
  readonly target: number | undefined;
  /** Canonical path or `@name`. */
  readonly path: string;
  /** As the client sent it (initial event). */
  readonly original: string;
  readonly relative: boolean;
  readonly token: string;
}

interface Tx {
  readonly id: number;
  readonly connectionId: number;
  readonly who: Who;
  /** Live generation at first touch; -1 = absent (§6.2). */
  readonly touched: Map<string, number>;
  /** Private view of every touched node; null = absent or deleted. */
  readonly nodes: Map<string, Node | null>;
  readonly modified: Set<string>;
  readonly fires: Map<string, FireSpec>;
  /** Nodes this tx created (for the node quota while it is open). */
  created: number;
  /** A quota failure inside: the commit answers ENOMEM (§6.2). */
  failed: boolean;
}

interface Connection {
  readonly watches: Watch[];
  readonly txs: Map<number, Tx>;
  nextTxId: number;
}

/** Internal control flow: thrown by checks, caught at the public boundary. */
class Fail {
  readonly error: XsErrorName;
  constructor(error: XsErrorName) {
    this.error = error;
  }
}

function fail(error: XsErrorName): never {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- caught by #run, never escapes
  throw new Fail(error);
}

function letterRights(letter: string): number {
  switch (letter) {
    case 'r':
      return PERM_READ;
    case 'w':
      return PERM_WRITE;
    case 'b':
      return PERM_READ | PERM_WRITE;
    default:
      return 0;
  }
}

/** C's node record size (§8): 24 + 8 per perm + value + each child name and its NUL. */
function nodeRecordSize(node: Node): number {
  let size = 24 + 8 * node.perms.length + node.value.length;
  for (const c of node.children) size += c.length + 1;
  return size;
}

const EMPTY = new Uint8Array(0);

/**
 * The xenstore store. Every operation takes the caller's context and returns a result with
 * the error name or the value, plus the watch events it caused. Nothing thrown for client
 * input.
 *
 * @example
 * const xs = new XenStore();
 * const dom0 = { connectionId: 1, domid: 0, privileged: true };
 * xs.write(dom0, '/vm/name', new TextEncoder().encode('guest'));
 * xs.read(dom0, '/vm/name'); // { ok: true, value: Uint8Array "guest", events: [] }
 */
export class XenStore {
  readonly #quotas: XsQuotas;
  readonly #domainExists: (domid: number) => boolean;
  readonly #nodes = new Map<string, Node>();
  readonly #special = new Map<XsSpecialPath, PermView>();
  readonly #ownerCount = new Map<number, number>();
  readonly #connections = new Map<number, Connection>();
  /** Domains the store knows, with the generation they became known at (§4.1 ignore rule). */
  readonly #known = new Map<number, number>();
  readonly #introduced = new Set<number>();
  readonly #shutdownReported = new Set<number>();
  readonly #targets = new Map<number, number>();
  #gen = 0;

  constructor(options: XsStoreOptions = {}) {
    this.#quotas = { ...XS_DEFAULT_QUOTAS, ...options.quotas };
    this.#domainExists = options.domainExists ?? (() => false);
    this.#known.set(0, 0);
    // C's initial tree (§3.2, §11 #9): /, /tool, /tool/xenstored, all n0, empty values.
    const n0: readonly XsStorePerm[] = [{ letter: 'n', domid: 0 }];
    this.#liveSet('/', { value: EMPTY, perms: n0, children: ['tool'], generation: 0 });
    this.#liveSet('/tool', { value: EMPTY, perms: n0, children: ['xenstored'], generation: 0 });
    this.#liveSet('/tool/xenstored', { value: EMPTY, perms: n0, children: [], generation: 0 });
    // M's hidden special nodes (§2 Rec): only GET_PERMS/SET_PERMS reach them.
    this.#special.set('@introduceDomain', { perms: n0, generation: 0 });
    this.#special.set('@releaseDomain', { perms: n0, generation: 0 });
  }

  /** The quotas in force. */
  get quotas(): Readonly<XsQuotas> {
    return this.#quotas;
  }

  // -------------------------------------------------------------------------------------
  // Node operations (§3)
  // -------------------------------------------------------------------------------------

  /** READ: the value (§3.3). Needs r. */
  read(caller: XsCaller, path: string): XsStoreResult<Uint8Array> {
    return this.#run(caller, true, (tx, who) => {
      const p = this.#resolve(caller, path);
      return this.#getNode(tx, who, p, PERM_READ).value.slice();
    });
  }

  /**
   * WRITE: set the value, creating the node and missing ancestors (§3.3). Fires P even for
   * an unchanged value.
   */
  write(caller: XsCaller, path: string, value: Uint8Array): XsStoreResult<void> {
    return this.#run(caller, true, (tx, who, out) => {
      const p = this.#resolve(caller, path);
      const existing = this.#get(tx, p);
      if (existing === undefined) {
        this.#create(tx, who, p, value.slice());
      } else {
        if ((this.#rights(who, existing) & PERM_WRITE) === 0) fail('EACCES');
        const next: Node = { ...existing, value: value.slice() };
        this.#checkSize(tx, who, next);
        this.#put(tx, p, next);
      }
      this.#fireChange(tx, p, [], out);
    });
  }

  /** MKDIR: create the node (empty value) and ancestors; an existing node is left alone. */
  mkdir(caller: XsCaller, path: string): XsStoreResult<void> {
    return this.#run(caller, true, (tx, who, out) => {
      const p = this.#resolve(caller, path);
      const existing = this.#get(tx, p);
      if (existing !== undefined) {
        // Both daemons check write access on an existing node (§3.3), and fire nothing.
        if ((this.#rights(who, existing) & PERM_WRITE) === 0) fail('EACCES');
        return;
      }
      this.#create(tx, who, p, EMPTY);
      this.#fireChange(tx, p, [], out);
    });
  }

  /**
   * RM: remove the node and its subtree (§3.4). A missing node under an existing parent is
   * OK, under a missing parent ENOENT. `/` → EINVAL (§11 #15: O wipes the store).
   */
  rm(caller: XsCaller, path: string): XsStoreResult<void> {
    return this.#run(caller, true, (tx, who, out) => {
      const p = this.#resolve(caller, path);
      const node = this.#get(tx, p);
      if (node === undefined) {
        const [ancPath, anc] = this.#closestAncestor(tx, p);
        // §4.4 / §11 #14: C answers EACCES when the caller cannot write the ancestor.
        if ((this.#rights(who, anc) & PERM_WRITE) === 0) fail('EACCES');
        if (ancPath === parentPath(p)) return;
        fail('ENOENT');
      }
      if ((this.#rights(who, node) & PERM_WRITE) === 0) fail('EACCES');
      if (p === '/') fail('EINVAL');
      this.#remove(tx, p, node, out);
    });
  }

  /** DIRECTORY: child names in insertion order (§3.5, §11 #8). Listing > 4096 → E2BIG. */
  directory(caller: XsCaller, path: string): XsStoreResult<readonly string[]> {
    return this.#run(caller, true, (tx, who) => {
      const p = this.#resolve(caller, path);
      const node = this.#getNode(tx, who, p, PERM_READ);
      let bytes = 0;
      for (const c of node.children) bytes += c.length + 1;
      if (bytes > XENSTORE_PAYLOAD_MAX) fail('E2BIG');
      return [...node.children];
    });
  }

  /**
   * DIRECTORY_PART (§3.6): the reply payload `gen\0` + list bytes from the byte `offset`,
   * ending on a name boundary, with an extra `\0` when the list end was reached. A negative
   * offset acts like C's unsigned overflow (past the end).
   */
  directoryPart(caller: XsCaller, path: string, offset: number): XsStoreResult<string> {
    return this.#run(caller, true, (tx, who) => {
      const p = this.#resolve(caller, path);
      const node = this.#getNode(tx, who, p, PERM_READ);
      const list = node.children.map((c) => `${c}\0`).join('');
      const gen = `${node.generation}\0`;
      if (!Number.isInteger(offset) || offset < 0 || offset >= list.length) return `${gen}\0`;
      const maxLen = XENSTORE_PAYLOAD_MAX - gen.length - 1;
      let len = 0;
      while (len + offset < list.length) {
        const end = list.indexOf('\0', offset + len);
        const size = end - (offset + len) + 1;
        if (len + size > maxLen) break;
        len += size;
      }
      const chunk = list.slice(offset, offset + len);
      return len + offset === list.length ? `${gen}${chunk}\0` : `${gen}${chunk}`;
    });
  }

  /**
   * GET_PERMS (§4): owner entry first. Works on the two special names (M behaviour, §11
   * #11); any other `@` name → EINVAL.
   */
  getPerms(caller: XsCaller, path: string): XsStoreResult<readonly XsStorePerm[]> {
    if (isXsSpecialPath(path)) {
      return this.#run(caller, false, (_tx, who) => {
        const sp = this.#specialView(path);
        if ((this.#rightsView(who, sp) & PERM_READ) === 0) fail('EACCES');
        return sp.perms.map((q) => ({ ...q }));
      });
    }
    return this.#run(caller, true, (tx, who) => {
      const p = this.#resolve(caller, path);
      return this.#getNode(tx, who, p, PERM_READ).perms.map((q) => ({ ...q }));
    });
  }

  /**
   * SET_PERMS (§4.3): needs w + owner. Guests may not change the owner (EPERM, §11 #16),
   * nor set more than `quotas.permissions` entries (ENOSPC); the owner must exist (ENOENT).
   * On the special names the change is immediate (not transactional) and fires nothing.
   */
  setPerms(caller: XsCaller, path: string, perms: readonly XsStorePerm[]): XsStoreResult<void> {
    const special = isXsSpecialPath(path);
    return this.#run(caller, !special, (tx, who, out) => {
      const owner = this.#checkPermList(who, perms);
      const copy = perms.map((q) => ({ letter: q.letter, domid: q.domid }));
      if (isXsSpecialPath(path)) {
        const sp = this.#specialView(path);
        const r = this.#rightsView(who, sp);
        if ((r & (PERM_WRITE | PERM_OWNER)) !== (PERM_WRITE | PERM_OWNER)) fail('EACCES');
        this.#checkOwner(who, sp.perms, owner, copy);
        this.#special.set(path, { perms: copy, generation: ++this.#gen });
        return;
      }
      const p = this.#resolve(caller, path);
      const node = this.#getNode(tx, who, p, PERM_WRITE | PERM_OWNER);
      this.#checkOwner(who, node.perms, owner, copy);
      const next: Node = { ...node, perms: copy };
      this.#checkSize(tx, who, next);
      this.#put(tx, p, next);
      // §5.5: watchers who could read under the old perms still hear about it.
      this.#fireChange(tx, p, [{ perms: node.perms, generation: node.generation }], out);
    });
  }

  // -------------------------------------------------------------------------------------
  // Watches (§5)
  // -------------------------------------------------------------------------------------

  /**
   * WATCH: register `(path, token)` on the caller's connection. The value is the initial
   * event, to be sent **after** the OK reply (§5.1); it is also the only entry of `events`.
   * The tx id is ignored.
   */
  watch(caller: XsCaller, path: string, token: string): XsStoreResult<XsWatchEvent> {
    return this.#run(caller, false, (_tx, who, out) => {
      let canonical: string;
      if (path.startsWith('@')) {
        // C 4.17 accepts any @name up to path-max (only the two specials ever fire).
        if (path.length > this.#quotas.pathMax) fail('EINVAL');
        canonical = path;
      } else {
        canonical = canonicalizePath(path, caller.domid);
        if (!isValidCanonicalPath(canonical, this.#quotas.pathMax)) fail('EINVAL');
      }
      const conn = this.#connection(caller.connectionId);
      if (conn.watches.some((w) => w.path === canonical && w.token === token)) fail('EEXIST');
      if (!who.privileged && this.#watchCount(who.domid) > this.#quotas.watches) fail('E2BIG');
      conn.watches.push({
        connectionId: caller.connectionId,
        domid: who.domid,
        privileged: who.privileged,
        target: who.target,
        path: canonical,
        original: path,
        relative: !path.startsWith('/') && !path.startsWith('@'),
        token,
      });
      const ev: XsWatchEvent = { connectionId: caller.connectionId, path, token };
      out.push(ev);
      return ev;
    });
  }

  /** UNWATCH: remove the exact `(canonical path, token)` watch; none → ENOENT (§5.1). */
  unwatch(caller: XsCaller, path: string, token: string): XsStoreResult<void> {
    return this.#run(caller, false, () => {
      const canonical = canonicalizePath(path, caller.domid);
      const conn = this.#connections.get(caller.connectionId);
      const i = conn?.watches.findIndex((w) => w.path === canonical && w.token === token) ?? -1;
      if (conn === undefined || i < 0) fail('ENOENT');
      conn.watches.splice(i, 1);
    });
  }

  /** RESET_WATCHES: drop every watch and open transaction of the connection. Never fails. */
  resetWatches(caller: XsCaller): XsStoreResult<void> {
    this.closeConnection(caller.connectionId);
    return { ok: true, value: undefined, events: [] };
  }

  /** Forget a connection that closed: its watches and transactions go. */
  closeConnection(connectionId: number): void {
    const conn = this.#connections.get(connectionId);
    if (conn === undefined) return;
    conn.watches.length = 0;
    conn.txs.clear();
    // Keep the entry: tx ids keep counting up on this connection (§6.1).
  }

  // -------------------------------------------------------------------------------------
  // Transactions (§6, C 4.17 generation based)
  // -------------------------------------------------------------------------------------

  /** TRANSACTION_START: a new per-connection id (1, 2, …). Inside a tx → EBUSY. */
  transactionStart(caller: XsCaller): XsStoreResult<number> {
    return this.#run(caller, false, (_tx, who) => {
      const conn = this.#connection(caller.connectionId);
      const txId = caller.txId ?? 0;
      if (txId !== 0) fail(conn.txs.has(txId) ? 'EBUSY' : 'ENOENT');
      if (!who.privileged && conn.txs.size > this.#quotas.transactions) fail('ENOSPC');
      let id = conn.nextTxId;
      while (id === 0 || conn.txs.has(id)) id = (id + 1) >>> 0;
      conn.nextTxId = (id + 1) >>> 0;
      this.#gen++;
      conn.txs.set(id, {
        id,
        connectionId: caller.connectionId,
        who,
        touched: new Map(),
        nodes: new Map(),
        modified: new Set(),
        fires: new Map(),
        created: 0,
        failed: false,
      });
      return id;
    });
  }

  /**
   * TRANSACTION_END for `caller.txId`: commit (`T`) or abort. The tx is gone afterwards
   * even on error. Commit errors: ENOMEM (quota failure inside), EAGAIN (a touched node
   * changed), ENOSPC (node quota); nothing is applied then.
   */
  transactionEnd(caller: XsCaller, commit: boolean): XsStoreResult<void> {
    return this.#run(caller, false, (_none, _who, out) => {
      const conn = this.#connections.get(caller.connectionId);
      const tx = conn?.txs.get(caller.txId ?? 0);
      if (conn === undefined || tx === undefined) fail('ENOENT');
      conn.txs.delete(tx.id);
      if (!commit) return;
      if (tx.failed) fail('ENOMEM');
      for (const [path, gen] of tx.touched) {
        if ((this.#nodes.get(path)?.generation ?? -1) !== gen) fail('EAGAIN');
      }
      if (!tx.who.privileged) {
        let delta = 0;
        for (const path of tx.modified) {
          const before = this.#nodes.get(path)?.perms[0]?.domid === tx.who.domid ? 1 : 0;
          const after = tx.nodes.get(path)?.perms[0]?.domid === tx.who.domid ? 1 : 0;
          delta += after - before;
        }
        if (delta > 0 && this.#owned(tx.who.domid) + delta > this.#quotas.nodes) fail('ENOSPC');
      }
      for (const path of tx.modified) {
        const node = tx.nodes.get(path);
        if (node === null || node === undefined) this.#liveDelete(path);
        else this.#liveSet(path, { ...node, generation: ++this.#gen });
      }
      for (const spec of tx.fires.values()) {
        const views = [...spec.views];
        const now = this.#nodes.get(spec.path);
        if (now !== undefined) views.push(now);
        const parent = this.#nodes.get(parentPath(spec.path));
        if (parent !== undefined) views.push(parent);
        this.#collectEvents({ ...spec, views }, out);
      }
    });
  }

  // -------------------------------------------------------------------------------------
  // Domains (§7)
  // -------------------------------------------------------------------------------------

  /**
   * INTRODUCE hook (after the daemon checked privilege and mapped the ring). A new domain
   * fires `@introduceDomain`; dom0 and re-introductions fire nothing. Resetting the
   * domain's connection on re-introduce is the daemon's job (call {@link closeConnection}).
   */
  introduceDomain(domid: number): XsStoreResult<{ readonly isNew: boolean }> {
    if (!isDomid(domid)) return err('EINVAL');
    if (domid === 0 || this.#introduced.has(domid)) {
      return { ok: true, value: { isNew: false }, events: [] };
    }
    this.#introduced.add(domid);
    this.#shutdownReported.delete(domid);
    // C keeps an existing domain struct (and its generation) when perms already named it.
    if (!this.#known.has(domid)) this.#known.set(domid, this.#gen);
    const out: XsWatchEvent[] = [];
    this.#collectEvents({ path: '@introduceDomain', views: [] }, out);
    return { ok: true, value: { isNew: true }, events: out };
  }

  /**
   * RELEASE hook (§7.2): 0 → EINVAL (§11 #32), not introduced → ENOENT. Drops the
   * domain's watches and transactions, forgets its SET_TARGET links, deletes every node it
   * owns with RM events (§11 #34), then fires `@releaseDomain`. ACL entries naming it are
   * kept but ignored from now on (§11 #33).
   */
  releaseDomain(domid: number): XsStoreResult<void> {
    if (!isDomid(domid) || domid === 0) return err('EINVAL');
    if (!this.#introduced.has(domid)) return err('ENOENT');
    return { ok: true, value: undefined, events: this.#destroyDomain(domid) };
  }

  /**
   * Domain death seen by the host (§7.8): the same clean-up as RELEASE, without errors.
   */
  domainDestroyed(domid: number): readonly XsWatchEvent[] {
    if (!isDomid(domid) || domid === 0 || !this.#introduced.has(domid)) return [];
    return this.#destroyDomain(domid);
  }

  /** A domain was first seen shut down or crashed: one `@releaseDomain` until RESUME. */
  domainShutdown(domid: number): readonly XsWatchEvent[] {
    if (!this.#introduced.has(domid) || this.#shutdownReported.has(domid)) return [];
    this.#shutdownReported.add(domid);
    const out: XsWatchEvent[] = [];
    this.#collectEvents({ path: '@releaseDomain', views: [] }, out);
    return out;
  }

  /** RESUME (§7.3): re-arm the shutdown event. 0 → EINVAL, not introduced → ENOENT. */
  resumeDomain(domid: number): XsStoreResult<void> {
    if (!isDomid(domid) || domid === 0) return err('EINVAL');
    if (!this.#introduced.has(domid)) return err('ENOENT');
    this.#shutdownReported.delete(domid);
    return { ok: true, value: undefined, events: [] };
  }

  /** SET_TARGET (§4.3): both domains must be introduced (ENOENT, §11 #31). */
  setTarget(domid: number, target: number): XsStoreResult<void> {
    if (!isDomid(domid) || !isDomid(target)) return err('EINVAL');
    if (!this.isDomainIntroduced(domid) || !this.isDomainIntroduced(target)) return err('ENOENT');
    this.#targets.set(domid, target);
    return { ok: true, value: undefined, events: [] };
  }

  /** IS_DOMAIN_INTRODUCED (§7.5): dom0 and DOMID_SELF are always introduced. */
  isDomainIntroduced(domid: number): boolean {
    return domid === 0 || domid === DOMID_SELF || this.#introduced.has(domid);
  }

  /** GET_DOMAIN_PATH (§7.4): no existence check. */
  getDomainPath(domid: number): string {
    return domainPath(domid);
  }

  // -------------------------------------------------------------------------------------
  // Inspection
  // -------------------------------------------------------------------------------------

  /** Every live node in path order (tests, debugging). */
  dump(): XsNodeSnapshot[] {
    return [...this.#nodes.keys()].sort().map((path) => {
      const n = this.#nodes.get(path);
      if (n === undefined) throw new Error(`Cannot dump "${path}": it vanished`);
      return {
        path,
        value: n.value.slice(),
        perms: n.perms.map((q) => ({ ...q })),
        children: [...n.children],
        generation: n.generation,
      };
    });
  }

  /**
   * Consistency check (CONTROL `check`): returns the problems found, none when sound.
   * Every node's parent exists and lists it, every listed child exists, perms non-empty
   * and well-formed, and the owner counts match.
   */
  check(): string[] {
    const problems: string[] = [];
    const counts = new Map<number, number>();
    for (const [path, n] of this.#nodes) {
      if (n.perms.length === 0) problems.push(`${path}: no perms`);
      for (const q of n.perms) {
        if (letterRights(q.letter) === 0 && q.letter !== 'n') problems.push(`${path}: bad letter`);
        if (!Number.isInteger(q.domid)) problems.push(`${path}: bad domid`);
      }
      const owner = n.perms[0]?.domid ?? -1;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
      if (new Set(n.children).size !== n.children.length) problems.push(`${path}: dup child`);
      for (const c of n.children) {
        if (!this.#nodes.has(childPath(path, c))) problems.push(`${path}: missing child ${c}`);
      }
      if (path === '/') continue;
      const parent = this.#nodes.get(parentPath(path));
      if (parent === undefined) problems.push(`${path}: no parent`);
      else if (!parent.children.includes(baseName(path))) problems.push(`${path}: not listed`);
    }
    for (const [d, c] of counts) {
      if ((this.#ownerCount.get(d) ?? 0) !== c) problems.push(`owner count of ${d}`);
    }
    return problems;
  }

  // -------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------

  #run<T>(
    caller: XsCaller,
    transactional: boolean,
    fn: (tx: Tx | undefined, who: Who, out: XsWatchEvent[]) => T,
  ): XsStoreResult<T> {
    const out: XsWatchEvent[] = [];
    try {
      const who = this.#who(caller);
      let tx: Tx | undefined;
      const txId = caller.txId ?? 0;
      if (transactional && txId !== 0) {
        tx = this.#connections.get(caller.connectionId)?.txs.get(txId);
        if (tx === undefined) fail('ENOENT');
      }
      const value = fn(tx, who, out);
      return { ok: true, value, events: out };
    } catch (e) {
      if (e instanceof Fail) return { ok: false, error: e.error, events: [] };
      throw e;
    }
  }

  #who(caller: XsCaller): Who {
    return {
      domid: caller.domid,
      privileged: caller.privileged,
      target: caller.target ?? this.#targets.get(caller.domid),
    };
  }

  #connection(id: number): Connection {
    let conn = this.#connections.get(id);
    if (conn === undefined) {
      conn = { watches: [], txs: new Map(), nextTxId: 1 };
      this.#connections.set(id, conn);
    }
    return conn;
  }

  /** Canonicalise and validate a node path (§2). `@` names are EINVAL for node ops. */
  #resolve(caller: XsCaller, path: string): string {
    if (path.startsWith('@')) fail('EINVAL');
    const p = canonicalizePath(path, caller.domid);
    if (!isValidCanonicalPath(p, this.#quotas.pathMax)) fail('EINVAL');
    return p;
  }

  #specialView(path: XsSpecialPath): PermView {
    const sp = this.#special.get(path);
    if (sp === undefined) throw new Error(`Cannot find special node "${path}"`);
    return sp;
  }

  /** C `perm_for_conn` (§4.2). */
  #rightsView(who: Who, view: PermView): number {
    if (who.privileged) return PERM_ALL;
    const owner = view.perms[0];
    if (owner === undefined) return 0;
    if (owner.domid === who.domid || (who.target !== undefined && owner.domid === who.target)) {
      return PERM_ALL;
    }
    for (let i = 1; i < view.perms.length; i++) {
      const q = view.perms[i];
      if (q === undefined) continue;
      // XS_PERM_IGNORE: unknown domains, or domains newer than the node (§4.1).
      const since = this.#known.get(q.domid);
      if (since === undefined || since > view.generation) continue;
      if (q.domid === who.domid || (who.target !== undefined && q.domid === who.target)) {
        return letterRights(q.letter);
      }
    }
    return letterRights(owner.letter);
  }

  #rights(who: Who, node: Node): number {
    return this.#rightsView(who, node);
  }

  /** Read a node through the transaction (recording the touch) or from the live tree. */
  #get(tx: Tx | undefined, path: string): Node | undefined {
    if (tx === undefined) return this.#nodes.get(path);
    const mine = tx.nodes.get(path);
    if (mine !== undefined) return mine ?? undefined;
    if (!tx.who.privileged && tx.touched.size >= this.#quotas.transactionNodes) {
      tx.failed = true;
      fail('ENOSPC');
    }
    const live = this.#nodes.get(path);
    tx.touched.set(path, live?.generation ?? -1);
    tx.nodes.set(path, live ?? null);
    return live;
  }

  #put(tx: Tx | undefined, path: string, node: Node): void {
    const next = { ...node, generation: ++this.#gen };
    if (tx === undefined) {
      this.#liveSet(path, next);
      return;
    }
    if (!tx.touched.has(path)) tx.touched.set(path, this.#nodes.get(path)?.generation ?? -1);
    tx.nodes.set(path, next);
    tx.modified.add(path);
  }

  #del(tx: Tx | undefined, path: string): void {
    if (tx === undefined) {
      this.#liveDelete(path);
      return;
    }
    if (!tx.touched.has(path)) tx.touched.set(path, this.#nodes.get(path)?.generation ?? -1);
    tx.nodes.set(path, null);
    tx.modified.add(path);
  }

  #liveSet(path: string, node: Node): void {
    const old = this.#nodes.get(path);
    if (old !== undefined) this.#count(old, -1);
    this.#nodes.set(path, node);
    this.#count(node, 1);
  }

  #liveDelete(path: string): void {
    const old = this.#nodes.get(path);
    if (old === undefined) return;
    this.#count(old, -1);
    this.#nodes.delete(path);
  }

  #count(node: Node, delta: number): void {
    const owner = node.perms[0]?.domid;
    if (owner === undefined) return;
    const n = (this.#ownerCount.get(owner) ?? 0) + delta;
    if (n === 0) this.#ownerCount.delete(owner);
    else this.#ownerCount.set(owner, n);
  }

  #owned(domid: number): number {
    return this.#ownerCount.get(domid) ?? 0;
  }

  /** Walk up from the parent to the closest existing ancestor (`/` always exists). */
  #closestAncestor(tx: Tx | undefined, path: string): [string, Node] {
    let p = path;
    while (p !== '/') {
      p = parentPath(p);
      const n = this.#get(tx, p);
      if (n !== undefined) return [p, n];
    }
    throw new Error('Cannot find the root node: the store is corrupt');
  }

  /**
   * C `get_node` with the §4.4 rule: a missing node answers ENOENT only when the caller's
   * rights on the closest existing ancestor intersect `need`, else EACCES.
   */
  #getNode(tx: Tx | undefined, who: Who, path: string, need: number): Node {
    const node = this.#get(tx, path);
    if (node === undefined) {
      if (path === '/') fail('ENOENT');
      const [, anc] = this.#closestAncestor(tx, path);
      fail((this.#rights(who, anc) & need) !== 0 ? 'ENOENT' : 'EACCES');
    }
    if ((this.#rights(who, node) & need) !== need) fail('EACCES');
    return node;
  }

  /** Node-size quota (§8, unprivileged only). A failure inside a tx marks it failed. */
  #checkSize(tx: Tx | undefined, who: Who, node: Node): void {
    if (who.privileged || nodeRecordSize(node) < this.#quotas.nodeSize) return;
    if (tx !== undefined) tx.failed = true;
    fail('ENOSPC');
  }

  /**
   * Create `path` and its missing ancestors (§3.3). Needs w on the closest existing
   * ancestor (§4.4). New nodes copy their parent's perms; an unprivileged creator becomes
   * the owner (C, §11 #12). Every check runs before anything changes.
   */
  #create(tx: Tx | undefined, who: Who, path: string, value: Uint8Array): void {
    const missing = [path];
    const [ancPath, anc] = this.#closestAncestor(tx, path);
    for (let p = parentPath(path); p !== ancPath; p = parentPath(p)) missing.push(p);
    // get_node's ENOENT (w intersects) leads to creation; otherwise EACCES (§4.4).
    if ((this.#rights(who, anc) & PERM_WRITE) === 0) fail('EACCES');
    if (!who.privileged) {
      const pending = tx?.created ?? 0;
      if (this.#owned(who.domid) + pending + missing.length > this.#quotas.nodes) fail('ENOSPC');
    }
    const built: [string, Node][] = [];
    let parentPerms = anc.perms;
    for (let i = missing.length - 1; i >= 0; i--) {
      const p = missing[i] ?? path;
      const below = missing[i - 1];
      const [first, ...rest] = parentPerms;
      const perms: readonly XsStorePerm[] =
        who.privileged || first === undefined
          ? parentPerms
          : [{ letter: first.letter, domid: who.domid }, ...rest];
      const node: Node = {
        value: i === 0 ? value : EMPTY,
        perms,
        children: below === undefined ? [] : [baseName(below)],
        generation: 0,
      };
      built.push([p, node]);
      parentPerms = perms;
    }
    const firstNew = missing[missing.length - 1] ?? path;
    const ancNext: Node = { ...anc, children: [...anc.children, baseName(firstNew)] };
    this.#checkSize(tx, who, ancNext);
    for (const [, n] of built) this.#checkSize(tx, who, n);
    this.#put(tx, ancPath, ancNext);
    for (const [p, n] of built) this.#put(tx, p, n);
    if (tx !== undefined && !who.privileged) tx.created += built.length;
  }

  /** Remove `path` (existing, checked) and its subtree, with RM events (§5.4). */
  #remove(tx: Tx | undefined, path: string, node: Node, out: XsWatchEvent[]): void {
    const removed = new Map<string, PermView>();
    const order: string[] = [];
    const stack: [string, Node][] = [[path, node]];
    while (stack.length > 0) {
      const top = stack.pop();
      if (top === undefined) break;
      const [p, n] = top;
      removed.set(p, { perms: n.perms, generation: n.generation });
      order.push(p);
      for (const c of n.children) {
        const cp = childPath(p, c);
        const cn = this.#get(tx, cp);
        if (cn !== undefined) stack.push([cp, cn]);
      }
    }
    const pp = parentPath(path);
    const parent = this.#get(tx, pp);
    if (parent === undefined) throw new Error(`Cannot remove "${path}": its parent is missing`);
    const name = baseName(path);
    this.#put(tx, pp, { ...parent, children: parent.children.filter((c) => c !== name) });
    for (let i = order.length - 1; i >= 0; i--) this.#del(tx, order[i] ?? path);
    const spec: FireSpec = { path, views: [node, parent], removed };
    if (tx === undefined) {
      this.#collectEvents(spec, out);
    } else {
      const prev = tx.fires.get(path);
      const merged = new Map([...(prev?.removed ?? []), ...removed]);
      tx.fires.delete(path);
      tx.fires.set(path, { path, views: spec.views, removed: merged });
    }
  }

  /** Fire (live) or record (tx, coalesced per node, §5.7) a change of `path`. */
  #fireChange(tx: Tx | undefined, path: string, extra: PermView[], out: XsWatchEvent[]): void {
    if (tx === undefined) {
      const views: PermView[] = [...extra];
      const n = this.#nodes.get(path);
      if (n !== undefined) views.push(n);
      const parent = this.#nodes.get(parentPath(path));
      if (parent !== undefined) views.push(parent);
      this.#collectEvents({ path, views }, out);
      return;
    }
    const prev = tx.fires.get(path);
    const views = [...(prev?.views ?? []), ...extra];
    const spec: FireSpec =
      prev?.removed === undefined ? { path, views } : { path, views, removed: prev.removed };
    tx.fires.set(path, spec);
  }

  /** Match every watch against a change and filter by read permission (§5.2–§5.6, §5.8). */
  #collectEvents(spec: FireSpec, out: XsWatchEvent[]): void {
    const special = spec.path.startsWith('@');
    for (const conn of this.#connections.values()) {
      for (const w of conn.watches) {
        let evPath: string;
        let views: readonly PermView[];
        if (special) {
          // Exact match only (C 4.17); gated by the special node's perms.
          if (w.path !== spec.path || !isXsSpecialPath(spec.path)) continue;
          evPath = spec.path;
          views = [this.#specialView(spec.path)];
        } else if (w.path.startsWith('@')) {
          continue;
        } else if (isPathAtOrBelow(spec.path, w.path)) {
          evPath = spec.path;
          views = spec.views;
        } else if (spec.removed !== undefined && isPathAtOrBelow(w.path, spec.path)) {
          // §5.4 Rec (O-style, §11 #28): every watch below a removed node fires with its
          // own path, whether or not that node existed.
          evPath = w.path;
          views = removedViews(spec.removed, w.path);
        } else {
          continue;
        }
        if (!w.privileged) {
          const who: Who = {
            domid: w.domid,
            privileged: false,
            target: w.target ?? this.#targets.get(w.domid),
          };
          if (!views.some((v) => (this.#rightsView(who, v) & PERM_READ) !== 0)) continue;
        }
        out.push({
          connectionId: w.connectionId,
          path: w.relative ? relativize(evPath, w.domid) : evPath,
          token: w.token,
        });
      }
    }
  }

  #watchCount(domid: number): number {
    let n = 0;
    for (const conn of this.#connections.values()) {
      for (const w of conn.watches) if (!w.privileged && w.domid === domid) n++;
    }
    return n;
  }

  /** Validate a SET_PERMS list; returns the new owner entry. */
  #checkPermList(who: Who, perms: readonly XsStorePerm[]): XsStorePerm {
    const owner = perms[0];
    if (owner === undefined) fail('EINVAL');
    for (const q of perms) {
      if (!['n', 'r', 'w', 'b'].includes(q.letter)) fail('EINVAL');
      if (!Number.isInteger(q.domid) || q.domid < -0x80000000 || q.domid > 0x7fffffff) {
        fail('EINVAL');
      }
    }
    if (!who.privileged && perms.length > this.#quotas.permissions) fail('ENOSPC');
    return owner;
  }

  /**
   * Owner rules of SET_PERMS: guests keep the owner (EPERM), the owner domain must exist
   * (ENOENT). Domains named in the list that exist become known (C `domain_alloc_permrefs`).
   */
  #checkOwner(
    who: Who,
    old: readonly XsStorePerm[],
    owner: XsStorePerm,
    perms: readonly XsStorePerm[],
  ): void {
    if (!who.privileged && owner.domid !== old[0]?.domid) fail('EPERM');
    if (!this.#isKnownOrExists(owner.domid)) fail('ENOENT');
    for (const q of perms) this.#isKnownOrExists(q.domid);
  }

  #isKnownOrExists(domid: number): boolean {
    if (this.#known.has(domid)) return true;
    if (!this.#domainExists(domid)) return false;
    this.#known.set(domid, this.#gen);
    return true;
  }

  #destroyDomain(domid: number): XsWatchEvent[] {
    this.#introduced.delete(domid);
    this.#shutdownReported.delete(domid);
    this.#known.delete(domid);
    for (const [d, t] of [...this.#targets]) {
      if (d === domid || t === domid) this.#targets.delete(d);
    }
    for (const conn of this.#connections.values()) {
      for (let i = conn.watches.length - 1; i >= 0; i--) {
        const w = conn.watches[i];
        if (w !== undefined && !w.privileged && w.domid === domid) conn.watches.splice(i, 1);
      }
      for (const [id, tx] of [...conn.txs]) {
        if (!tx.who.privileged && tx.who.domid === domid) conn.txs.delete(id);
      }
    }
    const out: XsWatchEvent[] = [];
    const owned = [...this.#nodes]
      .filter(([p, n]) => p !== '/' && n.perms[0]?.domid === domid)
      .map(([p]) => p)
      .sort();
    let last: string | undefined;
    for (const p of owned) {
      if (last !== undefined && isPathAtOrBelow(p, last)) continue;
      const n = this.#nodes.get(p);
      if (n !== undefined) this.#remove(undefined, p, n, out);
      last = p;
    }
    this.#collectEvents({ path: '@releaseDomain', views: [] }, out);
    return out;
  }
}

/** Perms deciding whether a watch below a removed node hears of it (§5.4, §5.5). */
function removedViews(removed: Map<string, PermView>, watchPath: string): PermView[] {
  const own = removed.get(watchPath);
  const parent = removed.get(parentPath(watchPath));
  const views = [own, parent].filter((v): v is PermView => v !== undefined);
  if (views.length > 0) return views;
  // The watched node never existed: judge by its closest removed ancestor.
  for (let p = parentPath(watchPath); ; p = parentPath(p)) {
    const v = removed.get(p);
    if (v !== undefined) return [v];
    if (p === '/') return [];
  }
}

function relativize(path: string, domid: number): string {
  const prefix = `${domainPath(domid)}/`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : path;
}

function isDomid(domid: number): boolean {
  return Number.isInteger(domid) && domid >= 0 && domid <= 0xffff;
}

function err(error: XsErrorName): { ok: false; error: XsErrorName; events: [] } {
  return { ok: false, error, events: [] };
}
