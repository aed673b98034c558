// SPDX-License-Identifier: MIT
/**
 * Plain memory behind a BAR (the bytes that are not MSI-X table or PBA). Pages are
 * allocated on first write, so a 4 GiB BAR costs nothing until it is used.
 */
import { fromHex, toHex } from './hex.js';
import { readLe, writeLe } from './register-file.js';

const PAGE_SIZE = 4096;

/** One page of BAR memory in a serializable state. */
export interface BarMemoryPage {
  readonly bar: number;
  readonly pageIndex: number;
  /** Lowercase hex of the 4096 bytes. */
  readonly hex: string;
}

/** Sparse memory of every BAR of one function. */
export class BarMemory {
  readonly #pages = new Map<string, Uint8Array>();

  /** Little-endian read; never-written bytes read 0. */
  read(bar: number, byteOffset: number, sizeBytes: number): number {
    const page = this.#pages.get(pageKey(bar, Math.floor(byteOffset / PAGE_SIZE)));
    if (page === undefined) return 0;
    return readLe(page, { byteOffset: byteOffset % PAGE_SIZE, sizeBytes });
  }

  /** Little-endian write (aligned accesses never cross a page). */
  write(bar: number, byteOffset: number, sizeBytes: number, value: number): void {
    const key = pageKey(bar, Math.floor(byteOffset / PAGE_SIZE));
    let page = this.#pages.get(key);
    if (page === undefined) {
      if (value === 0) return; // zero pages need no storage
      page = new Uint8Array(PAGE_SIZE);
      this.#pages.set(key, page);
    }
    writeLe(page, { byteOffset: byteOffset % PAGE_SIZE, sizeBytes, value });
  }

  /** Forgets every byte (a reset puts device registers back to 0). */
  clear(): void {
    this.#pages.clear();
  }

  /** Non-zero pages, for `state()`. */
  pages(): BarMemoryPage[] {
    const out: BarMemoryPage[] = [];
    for (const [key, page] of this.#pages) {
      if (page.every((b) => b === 0)) continue;
      const [bar, pageIndex] = key.split(':').map(Number);
      out.push({ bar: bar ?? 0, pageIndex: pageIndex ?? 0, hex: toHex(page) });
    }
    return out;
  }

  /** Loads pages saved by {@link pages}. */
  load(pages: readonly BarMemoryPage[]): void {
    for (const page of pages) {
      const bytes = fromHex(page.hex);
      if (bytes.length !== PAGE_SIZE) {
        throw new RangeError(
          `Cannot load BAR ${page.bar} page ${page.pageIndex}: it holds ${bytes.length} bytes, not ${PAGE_SIZE}`,
        );
      }
      this.#pages.set(pageKey(page.bar, page.pageIndex), bytes);
    }
  }
}

function pageKey(bar: number, pageIndex: number): string {
  return `${bar}:${pageIndex}`;
}
