// SPDX-License-Identifier: MIT
/**
 * A device's ordered field list plus a per-byte index of it. The original walks the
 * whole list on every access (`list_for_each_entry` in `xen_pcibk_config_read/write`);
 * here each byte of the config space knows the entries covering it, in list order, so
 * an access finds its intersecting entries by looking at its own 1, 2 or 4 bytes. The
 * result is the same set in the same order as the list walk, which matters when quirk
 * fields overlap built-in ones (later merges win).
 */
import type { ConfigField, FieldEntry } from './field.js';

/**
 * Bytes the index covers: the 4 KiB config space plus the 3 bytes a 4-byte quirk field
 * at 0xfff reaches (quirk registers are only checked for `<= 0xfff`, spec §5.9).
 */
export const INDEXED_BYTES = 4096 + 3;

const EMPTY: readonly FieldEntry[] = Object.freeze([]);

/**
 * What a guest read at one (offset, size) must do: the fields whose values change the
 * result, in list order, and whether the hardware must be read at all. Aligned raw
 * fields are left out (merging the hardware bytes over themselves changes nothing), and
 * a request the remaining fields cover completely needs no hardware read (every byte
 * of it is replaced, and so is `err`, exactly as in the original's merge loop).
 */
export interface ReadPlan {
  readonly entries: readonly FieldEntry[];
  readonly readHardware: boolean;
}

/** Memo slots for every (offset, size): a dense array, not a sparse (dictionary) one. */
function emptyMemo<T>(): (T | undefined)[] {
  return new Array<T | undefined>(INDEXED_BYTES * 4).fill(undefined);
}

function overlap(a: FieldEntry, b: FieldEntry): boolean {
  return (
    a.byteOffset < b.byteOffset + b.field.sizeBytes &&
    b.byteOffset < a.byteOffset + a.field.sizeBytes
  );
}

/**
 * An aligned raw field that shares no byte with another field of the access: its merge
 * is a no-op. (A raw quirk over a built-in field is not: it puts the hardware bytes back
 * over the field's value, and list order says it wins.)
 */
function isSkippableRaw(entry: FieldEntry, all: readonly FieldEntry[]): boolean {
  return (
    entry.field.readsRaw === true &&
    entry.byteOffset % entry.field.sizeBytes === 0 &&
    all.every((other) => other === entry || !overlap(entry, other))
  );
}

function covers(entries: readonly FieldEntry[], byteOffset: number, sizeBytes: number): boolean {
  for (let b = byteOffset; b < byteOffset + sizeBytes; b++) {
    if (!entries.some((e) => e.byteOffset <= b && b < e.byteOffset + e.field.sizeBytes)) {
      return false;
    }
  }
  return true;
}

/**
 * The ordered entry list of one device with its per-byte index.
 *
 * @example
 * const index = new FieldIndex();
 * index.append(field, 0x40, undefined);
 * index.intersecting(0x40, 4); // entries covering any of 0x40..0x43, in list order
 */
export class FieldIndex {
  readonly #entries: FieldEntry[] = [];
  /** Per byte, the entries covering it in list order (shared EMPTY when none). */
  readonly #byByte: (readonly FieldEntry[])[] = new Array<readonly FieldEntry[]>(
    INDEXED_BYTES,
  ).fill(EMPTY);
  readonly #byOffset = new Map<number, FieldEntry>();
  /**
   * Memo of {@link intersecting} for in-range accesses, slot `byteOffset * 4 + size - 1`:
   * an access that spans several fields then costs one array load, not a merge and a
   * sort. Cleared whenever the list changes (quirks are added or dropped at attach and
   * release, never per access).
   */
  #memo: (readonly FieldEntry[] | undefined)[] | undefined;
  /** Memo of {@link readPlan}, same slots and lifetime as `#memo`. */
  #planMemo: (ReadPlan | undefined)[] | undefined;
  #nextOrder = 0;

  /** All entries in list order. */
  get entries(): readonly FieldEntry[] {
    return this.#entries;
  }

  /** True when an entry already starts at this absolute offset (`xen_pcibk_field_is_dup`). */
  hasEntryAt(byteOffset: number): boolean {
    return this.#byOffset.has(byteOffset);
  }

  /**
   * Append an entry (`list_add_tail`). The caller checks for duplicates first; the
   * index requires the field to lie inside {@link INDEXED_BYTES}.
   */
  append(field: ConfigField, baseOffset: number, data: unknown): FieldEntry {
    const byteOffset = baseOffset + field.byteOffset;
    if (
      !Number.isInteger(byteOffset) ||
      byteOffset < 0 ||
      byteOffset + field.sizeBytes > INDEXED_BYTES
    ) {
      throw new RangeError(
        `Cannot add config field "${field.name}" at offset ${byteOffset}: outside 0-0x${(INDEXED_BYTES - 1).toString(16)}`,
      );
    }
    if (this.#byOffset.has(byteOffset)) {
      throw new RangeError(
        `Cannot add config field "${field.name}" at offset 0x${byteOffset.toString(16)}: an entry starts there`,
      );
    }
    const entry: FieldEntry = Object.freeze({
      field,
      baseOffset,
      byteOffset,
      data,
      order: this.#nextOrder++,
    });
    this.#entries.push(entry);
    this.#byOffset.set(byteOffset, entry);
    // Dropped, not rebuilt: a device gets ~30 fields at seize, and the memos are only
    // allocated again by the first access after the list stops changing.
    this.#memo = undefined;
    this.#planMemo = undefined;
    // The new entry is the last in list order, so appending keeps every byte sorted.
    // Bytes that had the same list share the new one: an access whose bytes all hold
    // the same list is then answered without allocating.
    const replaced = new Map<readonly FieldEntry[], readonly FieldEntry[]>();
    for (let b = byteOffset; b < byteOffset + field.sizeBytes; b++) {
      const before = this.#byByte[b] ?? EMPTY;
      let after = replaced.get(before);
      if (after === undefined) {
        after = Object.freeze([...before, entry]);
        replaced.set(before, after);
      }
      this.#byByte[b] = after;
    }
    return entry;
  }

  /** Remove every entry matching `predicate` (list order of the rest is kept). */
  removeWhere(predicate: (entry: FieldEntry) => boolean): FieldEntry[] {
    const removed = this.#entries.filter(predicate);
    if (removed.length === 0) return removed;
    const gone = new Set(removed);
    const kept = this.#entries.filter((e) => !gone.has(e));
    this.#entries.length = 0;
    this.#entries.push(...kept);
    // Dropped, not rebuilt: a device gets ~30 fields at seize, and the memos are only
    // allocated again by the first access after the list stops changing.
    this.#memo = undefined;
    this.#planMemo = undefined;
    const replaced = new Map<readonly FieldEntry[], readonly FieldEntry[]>();
    for (const entry of removed) {
      this.#byOffset.delete(entry.byteOffset);
      for (let b = entry.byteOffset; b < entry.byteOffset + entry.field.sizeBytes; b++) {
        const before = this.#byByte[b] ?? EMPTY;
        let after = replaced.get(before);
        if (after === undefined) {
          const rest = before.filter((e) => !gone.has(e));
          after = rest.length === 0 ? EMPTY : Object.freeze(rest);
          replaced.set(before, after);
        }
        this.#byByte[b] = after;
      }
    }
    return removed;
  }

  /**
   * Entries whose bytes intersect `[byteOffset, byteOffset + sizeBytes)`, in list
   * order: the same entries, in the same order, as the original's
   * `offset + size > field_start && field_end > offset` test over the whole list.
   */
  intersecting(byteOffset: number, sizeBytes: number): readonly FieldEntry[] {
    if (byteOffset >= 0 && byteOffset < INDEXED_BYTES) {
      const slot = byteOffset * 4 + sizeBytes - 1;
      this.#memo ??= emptyMemo();
      let memo = this.#memo[slot];
      if (memo === undefined) {
        memo = this.#collect(byteOffset, sizeBytes);
        this.#memo[slot] = memo;
      }
      return memo;
    }
    return this.#collect(byteOffset, sizeBytes);
  }

  /** The {@link ReadPlan} of a read (valid offsets and sizes only). */
  readPlan(byteOffset: number, sizeBytes: number): ReadPlan {
    const inRange = byteOffset >= 0 && byteOffset < INDEXED_BYTES;
    const slot = byteOffset * 4 + sizeBytes - 1;
    this.#planMemo ??= emptyMemo();
    let plan = inRange ? this.#planMemo[slot] : undefined;
    if (plan === undefined) {
      const all = this.intersecting(byteOffset, sizeBytes);
      const entries = all.filter((e) => !isSkippableRaw(e, all));
      plan = Object.freeze({
        entries: Object.freeze(entries),
        readHardware:
          byteOffset < 0 ||
          byteOffset + sizeBytes > INDEXED_BYTES ||
          !covers(entries, byteOffset, sizeBytes),
      });
      if (inRange) this.#planMemo[slot] = plan;
    }
    return plan;
  }

  #collect(byteOffset: number, sizeBytes: number): readonly FieldEntry[] {
    const first = Math.max(byteOffset, 0);
    const end = Math.min(byteOffset + sizeBytes, INDEXED_BYTES);
    if (first >= end) return EMPTY;
    if (end - first === 1) return this.#byByte[first] ?? EMPTY;
    let found: FieldEntry[] | undefined;
    let single: readonly FieldEntry[] = EMPTY;
    for (let b = first; b < end; b++) {
      const here = this.#byByte[b] ?? EMPTY;
      if (here.length === 0 || here === single) continue;
      if (found === undefined && single.length === 0) {
        single = here;
        continue;
      }
      found ??= [...single];
      for (const entry of here) if (!found.includes(entry)) found.push(entry);
    }
    if (found === undefined) return single;
    return Object.freeze(found.length > 1 ? found.sort((a, b) => a.order - b.order) : found);
  }
}
