// SPDX-License-Identifier: MIT
/**
 * The hypervisor side of grant mapping (Xen `grant_table.c`: `map_grant_ref`,
 * `_set_status_v1`, `unmap_common`), for one mapping domain. Pins are counted per
 * granted entry as Xen's active entries do: the first pin validates the guest's entry and
 * sets GTF_reading (and GTF_writing for a writable map); the last unpin clears them.
 * Mapping the same ref again succeeds with a second handle, as in Xen.
 */
import type {
  DomId,
  GntStatus,
  GrantHandle,
  GrantMapResult,
  GrantMapper,
  GrantRef,
} from '../../types.js';
import { GNTST } from '../../types.js';
import { GRANT_ENTRY_WORDS } from './guest-grant-table.js';
import { GTF, XEN_PAGE_SIZE } from './xen-abi.js';

/** Xen's `_set_status_v1` gives up after this many lost races with the guest. */
const SET_STATUS_RETRIES = 4;

/** Xen's active grant entry: pins of one granted ref. */
interface ActiveEntry {
  readonly mapper: number;
  readonly frame: number;
  pins: number;
  writePins: number;
}

/**
 * A granting domain as the hypervisor keeps it: its table, its memory and the active
 * (pinned) entries. `dead` once destroyed: no new maps, existing ones stay valid.
 */
export class GrantingDomain {
  readonly domid: number;
  readonly words: Int32Array;
  readonly memory: SharedArrayBuffer;
  readonly pageCount: number;
  readonly entries: number;
  readonly active = new Map<number, ActiveEntry>();
  dead = false;

  constructor(domid: number, grantTable: SharedArrayBuffer, memory: SharedArrayBuffer) {
    this.domid = domid;
    this.words = new Int32Array(grantTable);
    this.memory = memory;
    this.pageCount = Math.floor(memory.byteLength / XEN_PAGE_SIZE);
    this.entries = Math.floor(this.words.length / GRANT_ENTRY_WORDS);
  }
}

interface HandleRecord {
  readonly granter: GrantingDomain;
  readonly ref: number;
  readonly active: ActiveEntry;
  readonly readonly: boolean;
}

/**
 * Maps grants into one domain (the backend's `gnttab_map_refs`). Main-thread only, like
 * the rest of the hypervisor's bookkeeping.
 */
export class SimGrantMapper implements GrantMapper {
  /** The mapping domain. */
  readonly domid: DomId;
  readonly #lookup: (domid: number) => GrantingDomain | undefined;
  readonly #handles = new Map<number, HandleRecord>();
  #nextHandle = 0;

  constructor(domid: DomId, lookup: (domid: number) => GrantingDomain | undefined) {
    this.domid = domid;
    this.#lookup = lookup;
  }

  /** Mappings currently held. */
  get mappedCount(): number {
    return this.#handles.size;
  }

  /**
   * Unmaps everything this domain still has mapped (its destruction: Xen releases the
   * maptrack of a dying domain, clearing the granters' flags).
   */
  releaseAll(): void {
    for (const handle of [...this.#handles.keys()]) this.unmapGrantRef(handle as GrantHandle);
  }

  /** {@inheritDoc GrantMapper.mapGrantRef} */
  mapGrantRef(domid: DomId, ref: GrantRef, options: { readonly?: boolean } = {}): GrantMapResult {
    const granter = Number.isInteger(domid) ? this.#lookup(domid) : undefined;
    if (granter === undefined || granter.dead) return { ok: false, status: GNTST.bad_domain };
    if (!Number.isInteger(ref) || ref < 0 || ref >= granter.entries) {
      return { ok: false, status: GNTST.bad_gntref };
    }
    const readonly = options.readonly ?? false;
    let active = granter.active.get(ref);
    if (active !== undefined && active.mapper !== this.domid) {
      return { ok: false, status: GNTST.general_error };
    }
    // The shared entry is (re)checked when not pinned yet, or for a first writable pin.
    if (active === undefined || (!readonly && active.writePins === 0)) {
      const status = setStatus(granter.words, ref, this.domid, readonly, active !== undefined);
      if (status !== GNTST.okay) return { ok: false, status };
    }
    if (active === undefined) {
      // Read after the pin: the guest may not change a pinned entry, and Xen caches it.
      const frame = Atomics.load(granter.words, ref * GRANT_ENTRY_WORDS + 1) >>> 0;
      if (frame >= granter.pageCount) {
        clearFlags(granter.words, ref, GTF.reading | GTF.writing);
        return { ok: false, status: GNTST.bad_page };
      }
      active = { mapper: this.domid, frame, pins: 0, writePins: 0 };
      granter.active.set(ref, active);
    }
    active.pins += 1;
    if (!readonly) active.writePins += 1;
    const handle = this.#nextHandle++ as GrantHandle;
    this.#handles.set(handle, { granter, ref, active, readonly });
    const byteOffset = active.frame * XEN_PAGE_SIZE;
    return {
      ok: true,
      mapping: {
        handle,
        domid: granter.domid as DomId,
        ref,
        readonly,
        bytes: new Uint8Array(granter.memory, byteOffset, XEN_PAGE_SIZE),
        words: new Int32Array(granter.memory, byteOffset, XEN_PAGE_SIZE / 4),
      },
    };
  }

  /** {@inheritDoc GrantMapper.unmapGrantRef} */
  unmapGrantRef(handle: GrantHandle): GntStatus {
    const record = this.#handles.get(handle);
    if (record === undefined) return GNTST.bad_handle;
    this.#handles.delete(handle);
    const { granter, ref, active } = record;
    active.pins -= 1;
    if (!record.readonly) active.writePins -= 1;
    // A destroyed granter's table is gone: nothing to clear, the page just stays ours
    // until this last unmap (Xen keeps the page referenced by the mapping).
    if (!granter.dead) {
      if (!record.readonly && active.writePins === 0) clearFlags(granter.words, ref, GTF.writing);
      if (active.pins === 0) clearFlags(granter.words, ref, GTF.reading);
    }
    if (active.pins === 0) granter.active.delete(ref);
    return GNTST.okay;
  }
}

/**
 * `_set_status_v1`: checks type and domid (unless already pinned), refuses a writable
 * pin of a read-only grant, and sets GTF_reading (+ GTF_writing) by compare-and-exchange,
 * giving up after a few lost races so a guest rewriting its entry cannot livelock us.
 */
function setStatus(
  words: Int32Array,
  ref: number,
  mapper: number,
  readonly: boolean,
  pinned: boolean,
): GntStatus {
  const i = ref * GRANT_ENTRY_WORDS;
  let current = Atomics.load(words, i);
  for (let retries = 0; ; retries++) {
    const flags = current & 0xffff;
    const domid = (current >>> 16) & 0xffff;
    const mask = GTF.type_mask | GTF.sub_page;
    if (!pinned && ((flags & mask) !== GTF.permit_access || domid !== mapper)) {
      return GNTST.general_error;
    }
    let next = current | GTF.reading;
    if (!readonly) {
      if ((flags & GTF.readonly) !== 0) return GNTST.general_error;
      next |= GTF.writing;
    }
    const previous = Atomics.compareExchange(words, i, current, next);
    if (previous === current) return GNTST.okay;
    if (retries === SET_STATUS_RETRIES) return GNTST.general_error;
    current = previous;
  }
}

/** `gnttab_clear_flags`: atomic clear of Xen-owned bits in the shared entry. */
function clearFlags(words: Int32Array, ref: number, bits: number): void {
  Atomics.and(words, ref * GRANT_ENTRY_WORDS, ~bits);
}
