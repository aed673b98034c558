// SPDX-License-Identifier: MIT
/**
 * The granting side of a v1 grant table (Linux `grant-table.c`, `gnttab_*_v1`), run by
 * the guest in its own thread on the shared table: no message to the hypervisor, as in
 * Xen where the guest writes its grant entries directly.
 *
 * Each `grant_entry_v1` is two int32 words: word 0 is `flags | domid << 16` (the
 * little-endian layout of `u16 flags; u16 domid`), the word Xen compare-and-exchanges
 * to pin an entry; word 1 is `frame`.
 */
import { PcibackError } from '../../../errors.js';
import type { DomId, GrantRef } from '../../types.js';
import { DOMID_FIRST_RESERVED } from '../../types.js';
import { GNTTAB_NR_RESERVED_ENTRIES, GRANT_ENTRY_V1, GTF } from './xen-abi.js';

/** Int32 words per grant entry. */
export const GRANT_ENTRY_WORDS = GRANT_ENTRY_V1.SIZE / 4;

// Bounded retries against the hypervisor flipping GTF_reading/GTF_writing meanwhile.
const END_ACCESS_RETRIES = 64;

/**
 * A guest's own grant table: allocates refs (never the reserved 0..7), fills entries,
 * ends access.
 *
 * @example
 * const table = new GuestGrantTable(grantTableBuffer);
 * const ref = table.grantAccess(DOM0, pageIndex, false);
 */
export class GuestGrantTable {
  /** Entries in the table. */
  readonly entries: number;
  readonly #words: Int32Array;
  readonly #free: number[] = [];
  readonly #inUse: Uint8Array;
  #next = GNTTAB_NR_RESERVED_ENTRIES;

  constructor(buffer: SharedArrayBuffer) {
    this.#words = new Int32Array(buffer);
    this.entries = Math.floor(buffer.byteLength / GRANT_ENTRY_V1.SIZE);
    this.#inUse = new Uint8Array(this.entries);
  }

  /**
   * `gnttab_grant_foreign_access`: lets `domid` map `frame` (read-only if asked).
   * Frame and domid are written before the flags, so the hypervisor never sees a
   * permitted entry with stale contents.
   *
   * @throws {PcibackError} `GNTTAB_EXHAUSTED` when every ref is in use.
   * @throws {RangeError} for a domid that is not an ordinary domain.
   */
  grantAccess(domid: DomId, frame: number, readonly: boolean): GrantRef {
    if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_FIRST_RESERVED) {
      throw new RangeError(
        `Cannot grant access to domain "${domid}": it is not an ordinary domain id`,
      );
    }
    const ref = this.#alloc();
    const i = ref * GRANT_ENTRY_WORDS;
    Atomics.store(this.#words, i + 1, frame | 0);
    Atomics.store(
      this.#words,
      i,
      GTF.permit_access | (readonly ? GTF.readonly : 0) | (domid << 16),
    );
    return ref as GrantRef;
  }

  /**
   * `gnttab_end_foreign_access_ref` then free: clears the flags unless the grantee has
   * the entry mapped (GTF_reading/GTF_writing), in which case nothing changes and the
   * result is false.
   *
   * @throws {RangeError} for a ref this table did not hand out.
   */
  endForeignAccess(ref: GrantRef): boolean {
    if (!this.inUse(ref)) {
      throw new RangeError(`Cannot end access to grant ref "${ref}": it is not granted`);
    }
    const i = ref * GRANT_ENTRY_WORDS;
    for (let attempt = 0; attempt < END_ACCESS_RETRIES; attempt++) {
      const word = Atomics.load(this.#words, i);
      if ((word & (GTF.reading | GTF.writing)) !== 0) return false;
      // Only the flags half goes to 0 (Linux cmpxchg's the u16 flags).
      if (Atomics.compareExchange(this.#words, i, word, word & ~0xffff) === word) {
        this.#release(ref);
        return true;
      }
    }
    return false;
  }

  /** True when `ref` is allocated by this table. */
  inUse(ref: number): boolean {
    return Number.isInteger(ref) && ref >= 0 && ref < this.entries && this.#inUse[ref] === 1;
  }

  /** The entry's flags (`GTF_*`), e.g. to see whether it is mapped. */
  flags(ref: GrantRef): number {
    return Atomics.load(this.#words, ref * GRANT_ENTRY_WORDS) & 0xffff;
  }

  #alloc(): number {
    let ref = this.#free.pop();
    if (ref === undefined) {
      if (this.#next >= this.entries) {
        throw new PcibackError(
          'GNTTAB_EXHAUSTED',
          `Cannot grant access: all ${this.entries} grant references are in use`,
        );
      }
      ref = this.#next++;
    }
    this.#inUse[ref] = 1;
    return ref;
  }

  #release(ref: number): void {
    this.#inUse[ref] = 0;
    this.#free.push(ref);
  }
}
