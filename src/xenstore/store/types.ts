// SPDX-License-Identifier: MIT
/**
 * Public types of the xenstore store: caller contexts, results, watch events, permission
 * entries and quotas (spec/xenstore.md §3–§8).
 */
import type { XsErrorName } from '../../abi/xs-wire.js';
import { XENSTORE_REL_PATH_MAX } from '../../abi/xs-wire.js';

/** Access letters of a permission entry (§4.1): none, read, write, both. */
export type XsStorePermLetter = 'n' | 'r' | 'w' | 'b';

/**
 * One permission entry. Structurally the same as the protocol layer's `XsPermission`, so
 * parsed SET_PERMS payloads can be passed straight in.
 */
export interface XsStorePerm {
  readonly letter: XsStorePermLetter;
  /** The domain the entry names (entry 0: the owner). */
  readonly domid: number;
}

/** Who is asking, on which connection, and in which transaction. */
export interface XsCaller {
  /** The connection (socket or ring) the request came from; scopes watches and tx ids. */
  readonly connectionId: number;
  /** The connection's domain (0 for the unix socket). Relative paths are resolved with it. */
  readonly domid: number;
  /** Bypasses every permission check and quota (socket, dom0, `--priv-domid`; §1.2). */
  readonly privileged: boolean;
  /**
   * SET_TARGET target of this domain. When absent, the store's own SET_TARGET table
   * ({@link XenStore.setTarget}) is used.
   */
  readonly target?: number;
  /** Header `tx_id`; 0 or absent = no transaction. Ignored by WATCH/UNWATCH. */
  readonly txId?: number;
}

/** One WATCH_EVENT to send: `path\0token\0` to `connectionId` (req_id = tx_id = 0). */
export interface XsWatchEvent {
  readonly connectionId: number;
  /** Absolute, or relative to `/local/domain/<id>/` when the watch was set relative (§5.8). */
  readonly path: string;
  readonly token: string;
}

/**
 * Outcome of a store operation. Errors carry the `xsd_errors` name to answer with. `events`
 * are the watch events the operation caused, already filtered by permission, to be queued
 * before the reply (C order, §1.3) — except for WATCH whose initial event follows the reply.
 */
export type XsStoreResult<T> =
  | { readonly ok: true; readonly value: T; readonly events: readonly XsWatchEvent[] }
  | { readonly ok: false; readonly error: XsErrorName; readonly events: readonly XsWatchEvent[] };

/** Limits for unprivileged callers (§8, C 4.17 defaults in {@link XS_DEFAULT_QUOTAS}). */
export interface XsQuotas {
  /** Nodes owned per domain (`-E`, "nodes"); beyond → ENOSPC. */
  readonly nodes: number;
  /** Node record size must stay below this (`-S`, "node-size"); → ENOSPC. */
  readonly nodeSize: number;
  /** Watches per domain; a new one is refused when more than this exist (→ E2BIG). */
  readonly watches: number;
  /** Open transactions per connection; refused when more than this are open (→ ENOSPC). */
  readonly transactions: number;
  /** Permission entries per node, owner included (`-A`); → ENOSPC. */
  readonly permissions: number;
  /** Nodes a transaction may touch (`-Q transaction-nodes`); → ENOSPC and the tx fails. */
  readonly transactionNodes: number;
  /** Counted path length (§2); applies to everyone (→ EINVAL). */
  readonly pathMax: number;
}

/** C xenstored 4.17 defaults (§8). */
export const XS_DEFAULT_QUOTAS: Readonly<XsQuotas> = Object.freeze({
  nodes: 1000,
  nodeSize: 2048,
  watches: 128,
  transactions: 10,
  permissions: 5,
  transactionNodes: 1024,
  pathMax: XENSTORE_REL_PATH_MAX,
});

/** Construction options of {@link XenStore}. */
export interface XsStoreOptions {
  /** Overrides of {@link XS_DEFAULT_QUOTAS}. */
  readonly quotas?: Partial<XsQuotas>;
  /**
   * Whether the hypervisor knows a domain (C asks Xen). Used for the owner check of
   * SET_PERMS (ENOENT) and to honour ACL entries of domains that exist but are not yet
   * introduced. Default: only dom0 and introduced domains exist.
   */
  readonly domainExists?: (domid: number) => boolean;
}

/** One node as seen by {@link XenStore.dump} (tests, CONTROL `check`). */
export interface XsNodeSnapshot {
  readonly path: string;
  readonly value: Uint8Array;
  readonly perms: readonly XsStorePerm[];
  readonly children: readonly string[];
  readonly generation: number;
}
