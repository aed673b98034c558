// SPDX-License-Identifier: MIT
/**
 * Newline-delimited framing of the control protocol: bytes in, whole lines out. The
 * length bound is checked before a chunk is kept, so a peer that never sends a newline
 * costs at most `maxLineBytes` of memory (STYLE.md "Stream framing"; pg-protocol's
 * `Parser.parse`).
 */

/** What {@link LineFramer.push} found in a chunk. */
export interface FramedLines {
  /** The complete lines, without their `\n` (a trailing `\r` is kept: JSON ignores it). */
  readonly lines: readonly string[];
  /**
   * True when the bytes since the last newline exceed the bound: the stream cannot be
   * resynchronised, so the caller answers once and closes. Lines before the overlong one
   * are still returned.
   */
  readonly overflow: boolean;
}

/** Options of {@link LineFramer}. */
export interface LineFramerOptions {
  /** The longest line accepted, in bytes, without its newline. */
  readonly maxLineBytes: number;
}

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into UTF-8 lines. After an overflow the framer stays failed and
 * returns nothing more.
 *
 * @example
 * const framer = new LineFramer({ maxLineBytes: 1024 });
 * framer.push(new TextEncoder().encode('{"id":1,')); // { lines: [], overflow: false }
 * framer.push(new TextEncoder().encode('"method":"status"}\n')).lines; // ['{"id":1,"method":"status"}']
 */
export class LineFramer {
  readonly #maxLineBytes: number;
  readonly #decoder = new TextDecoder('utf-8', { fatal: false });
  /** Bytes of the line being received (before its newline). */
  #parts: Uint8Array[] = [];
  #pendingBytes = 0;
  #failed = false;

  constructor(options: LineFramerOptions) {
    if (!Number.isSafeInteger(options.maxLineBytes) || options.maxLineBytes < 1) {
      throw new RangeError(
        `Invalid maxLineBytes ${String(options.maxLineBytes)}: it must be a positive integer`,
      );
    }
    this.#maxLineBytes = options.maxLineBytes;
  }

  /** Bytes held for the line not yet complete. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** True once a line went over the bound. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Feed a chunk; returns the lines it completed. */
  push(chunk: Uint8Array): FramedLines {
    if (this.#failed) return { lines: [], overflow: true };
    const lines: string[] = [];
    let start = 0;
    while (start <= chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline < 0 ? chunk.length : newline;
      // The bound first: nothing beyond it is ever copied.
      if (this.#pendingBytes + (end - start) > this.#maxLineBytes) {
        this.#failed = true;
        this.#parts = [];
        this.#pendingBytes = 0;
        return { lines, overflow: true };
      }
      if (newline < 0) {
        if (end > start) {
          this.#parts.push(chunk.slice(start, end));
          this.#pendingBytes += end - start;
        }
        break;
      }
      lines.push(this.#takeLine(chunk.subarray(start, end)));
      start = newline + 1;
    }
    return { lines, overflow: false };
  }

  #takeLine(tail: Uint8Array): string {
    if (this.#parts.length === 0) return this.#decoder.decode(tail);
    const whole = new Uint8Array(this.#pendingBytes + tail.length);
    let at = 0;
    for (const part of this.#parts) {
      whole.set(part, at);
      at += part.length;
    }
    whole.set(tail, at);
    this.#parts = [];
    this.#pendingBytes = 0;
    return this.#decoder.decode(whole);
  }
}
