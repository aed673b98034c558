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
    return found.length > 1 ? found.sort((a, b) => a.order - b.order) : found;
  }
}
