// SPDX-License-Identifier: MIT
/** Helpers shared by the store's tests (not exported from the folder's index; no node:*). */
import { XenStore } from './store.js';
import type { XsCaller, XsStorePerm, XsStoreResult, XsWatchEvent } from './types.js';

/** The privileged socket connection. */
export const DOM0: XsCaller = { connectionId: 0, domid: 0, privileged: true };

/** An unprivileged guest connection (one ring per domain: connection id 100 + domid). */
export function guest(domid: number, txId = 0): XsCaller {
  return { connectionId: 100 + domid, domid, privileged: false, txId };
}

/** `perms('n0', 'r5')` → parsed entries. */
export function perms(...entries: string[]): XsStorePerm[] {
  return entries.map((e) => {
    const letter = e[0];
    if (letter !== 'n' && letter !== 'r' && letter !== 'w' && letter !== 'b') {
      throw new TypeError(`Cannot parse perm "${e}"`);
    }
    return { letter, domid: Number(e.slice(1)) };
  });
}

/** Format entries back (`['n0', 'r5']`). */
export function fmt(list: readonly XsStorePerm[]): string[] {
  return list.map((q) => `${q.letter}${q.domid}`);
}

/** UTF-8 bytes of a string. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** The value of a successful result (fails the test otherwise). */
export function ok<T>(r: XsStoreResult<T>): T {
  if (!r.ok) throw new Error(`Expected OK: got "${r.error}"`);
  return r.value;
}

/** The error name of a failed result (fails the test on success). */
export function errorOf(r: XsStoreResult<unknown>): string {
  if (r.ok) throw new Error('Expected an error: got OK');
  return r.error;
}

/** Events as `connectionId path token` strings, sorted (delivery order across watches is free). */
export function evs(events: readonly XsWatchEvent[]): string[] {
  return events.map((e) => `${e.connectionId} ${e.path} ${e.token}`).sort();
}

/** A store with guests 5 and 6 introduced and `/local/domain/N` = `nN r0` (spec §12). */
export function fixture(): XenStore {
  const xs = new XenStore();
  for (const d of [5, 6]) {
    ok(xs.introduceDomain(d));
    ok(xs.mkdir(DOM0, `/local/domain/${d}`));
    ok(xs.setPerms(DOM0, `/local/domain/${d}`, perms(`n${d}`, 'r0')));
  }
  return xs;
}
