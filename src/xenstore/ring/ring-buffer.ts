// SPDX-License-Identifier: MIT
/**
 * The two byte rings of `struct xenstore_domain_interface` (xs_wire.h, spec/xenstore.md
 * §7.6): `req` carries requests from the guest to xenstored, `rsp` carries replies and
 * watch events back. Each ring is 1024 bytes with free-running u32 indexes; byte number
 * `x` of a stream sits at `x & 1023`.
 *
 * The page is shared with the peer, which may be hostile, so every operation reads both
 * indexes once with `Atomics.load`, checks `prod - cons` (u32) ≤ 1024 before touching
 * data, copies with wrap-around, and only then publishes its own index with
 * `Atomics.store`. Seq-cst atomics give the barriers §7.6 asks for: data written before
 * the store of `prod` is visible to a reader that loaded `prod`, and bytes are copied
 * out before `cons` frees them. Nothing here assumes the indexes start at 0.
 */
import {
  XENSTORE_DOMAIN_INTERFACE_OFFSET,
  XENSTORE_DOMAIN_INTERFACE_SIZE,
  XENSTORE_DOMAIN_INTERFACE_WORD,
  XENSTORE_ERROR,
  XENSTORE_RING_SIZE,
  type XenstoreError,
} from '../../abi/index.js';

/** Mask of a ring position (`MASK_XENSTORE_IDX`). */
const RING_MASK = XENSTORE_RING_SIZE - 1;

/** The ring page as bytes and as int32 words over the same memory. */
export interface XsRingPage {
  /** The page (at least `XENSTORE_DOMAIN_INTERFACE_SIZE` bytes; normally 4096). */
  readonly bytes: Uint8Array;
  /** The same memory as int32 words, for `Atomics` on the index fields. */
  readonly words: Int32Array;
}

/**
 * Lay the two views over a ring page.
 *
 * @throws RangeError when the page is shorter than the 4.17 struct or not 4-byte aligned.
 * @example
 * const page = xsRingPage(new Uint8Array(new SharedArrayBuffer(4096)));
 */
export function xsRingPage(bytes: Uint8Array): XsRingPage {
  if (bytes.byteLength < XENSTORE_DOMAIN_INTERFACE_SIZE) {
    throw new RangeError(
      `Cannot use a ${bytes.byteLength}-byte buffer as a xenstore ring page: it needs ${XENSTORE_DOMAIN_INTERFACE_SIZE} bytes`,
    );
  }
  if (bytes.byteOffset % 4 !== 0) {
    throw new RangeError(
      `Cannot use a xenstore ring page at byte offset ${bytes.byteOffset}: it must be 4-byte aligned`,
    );
  }
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4));
  return { bytes, words };
}

/** Which of the two rings. */
export type XsRingName = 'req' | 'rsp';

interface RingLayout {
  readonly dataOffset: number;
  readonly consWord: number;
  readonly prodWord: number;
}

const LAYOUT: Readonly<Record<XsRingName, RingLayout>> = {
  req: {
    dataOffset: XENSTORE_DOMAIN_INTERFACE_OFFSET.req,
    consWord: XENSTORE_DOMAIN_INTERFACE_WORD.req_cons,
    prodWord: XENSTORE_DOMAIN_INTERFACE_WORD.req_prod,
  },
  rsp: {
    dataOffset: XENSTORE_DOMAIN_INTERFACE_OFFSET.rsp,
    consWord: XENSTORE_DOMAIN_INTERFACE_WORD.rsp_cons,
    prodWord: XENSTORE_DOMAIN_INTERFACE_WORD.rsp_prod,
  },
};

/** A ring whose indexes cannot be right: `prod - cons` (u32) is above the ring size. */
export interface XsRingCorruption {
  readonly ring: XsRingName;
  /** The consumer index as read (u32). */
  readonly cons: number;
  /** The producer index as read (u32). */
  readonly prod: number;
  /** A sentence for logs. */
  readonly message: string;
}

/** Result of {@link XsRingConsumer.read}: the bytes taken (possibly none), or corruption. */
export type XsRingReadResult =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly corruption: XsRingCorruption };

/** Result of {@link XsRingProducer.write}: how many bytes went in (possibly 0), or corruption. */
export type XsRingWriteResult =
  | { readonly ok: true; readonly written: number }
  | { readonly ok: false; readonly corruption: XsRingCorruption };

/** Indexes of one ring read once, or the corruption they show. */
type Snapshot =
  | { readonly ok: true; readonly cons: number; readonly prod: number; readonly used: number }
  | { readonly ok: false; readonly corruption: XsRingCorruption };

function snapshot(page: XsRingPage, ring: XsRingName): Snapshot {
  const layout = LAYOUT[ring];
  const cons = Atomics.load(page.words, layout.consWord) >>> 0;
  const prod = Atomics.load(page.words, layout.prodWord) >>> 0;
  const used = (prod - cons) >>> 0;
  if (used > XENSTORE_RING_SIZE) {
    return {
      ok: false,
      corruption: {
        ring,
        cons,
        prod,
        message: `Cannot use the xenstore ${ring} ring: ${ring}_prod ${prod} - ${ring}_cons ${cons} = ${used} is above ${XENSTORE_RING_SIZE}`,
      },
    };
  }
  return { ok: true, cons, prod, used };
}

function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Cannot ${what} ${n} bytes: it must be a non-negative integer`);
  }
}

/**
 * The consuming end of one ring: the server on `req`, the guest on `rsp`.
 *
 * @example
 * const requests = new XsRingConsumer(xsRingPage(page), 'req');
 * const r = requests.read(4096);
 * if (r.ok && r.bytes.length > 0) { framer.push(r.bytes); notifyPeer(); }
 */
export class XsRingConsumer {
  readonly #page: XsRingPage;
  readonly #ring: XsRingName;
  readonly #layout: RingLayout;
  #total = 0;

  constructor(page: XsRingPage, ring: XsRingName) {
    this.#page = page;
    this.#ring = ring;
    this.#layout = LAYOUT[ring];
  }

  /** Which ring this reads. */
  get ring(): XsRingName {
    return this.#ring;
  }

  /** Bytes consumed so far by this object. */
  get totalBytes(): number {
    return this.#total;
  }

  /** Bytes waiting to be read, or the corruption of the indexes. */
  available(): number | XsRingCorruption {
    const s = snapshot(this.#page, this.#ring);
    return s.ok ? s.used : s.corruption;
  }

  /**
   * Take up to `maxBytes` bytes: a private copy (the peer may rewrite the ring at any
   * time), then `cons` advances past them. An empty result means nothing was waiting.
   *
   * @throws RangeError for a negative or fractional `maxBytes` (a caller bug).
   */
  read(maxBytes: number): XsRingReadResult {
    checkCount(maxBytes, 'read');
    const s = snapshot(this.#page, this.#ring);
    if (!s.ok) return s;
    const n = Math.min(s.used, maxBytes);
    const out = new Uint8Array(n);
    if (n === 0) return { ok: true, bytes: out };
    const bytes = this.#page.bytes;
    const base = this.#layout.dataOffset;
    const at = s.cons & RING_MASK;
    const first = Math.min(n, XENSTORE_RING_SIZE - at);
    out.set(bytes.subarray(base + at, base + at + first));
    if (n > first) out.set(bytes.subarray(base, base + n - first), first);
    // Copied out before the space is handed back.
    Atomics.store(this.#page.words, this.#layout.consWord, (s.cons + n) | 0);
    this.#total += n;
    return { ok: true, bytes: out };
  }
}

/**
 * The producing end of one ring: the guest on `req`, the server on `rsp`.
 *
 * @example
 * const replies = new XsRingProducer(xsRingPage(page), 'rsp');
 * const r = replies.write(message);
 * if (r.ok && r.written > 0) notifyPeer();
 */
export class XsRingProducer {
  readonly #page: XsRingPage;
  readonly #ring: XsRingName;
  readonly #layout: RingLayout;
  #total = 0;

  constructor(page: XsRingPage, ring: XsRingName) {
    this.#page = page;
    this.#ring = ring;
    this.#layout = LAYOUT[ring];
  }

  /** Which ring this writes. */
  get ring(): XsRingName {
    return this.#ring;
  }

  /** Bytes produced so far by this object. */
  get totalBytes(): number {
    return this.#total;
  }

  /** Free space in bytes, or the corruption of the indexes. */
  free(): number | XsRingCorruption {
    const s = snapshot(this.#page, this.#ring);
    return s.ok ? XENSTORE_RING_SIZE - s.used : s.corruption;
  }

  /**
   * Put as much of `src` as fits (possibly nothing): data first, then `prod` advances.
   * Returns the count written; the caller keeps the rest for later.
   */
  write(src: Uint8Array): XsRingWriteResult {
    const s = snapshot(this.#page, this.#ring);
    if (!s.ok) return s;
    const n = Math.min(XENSTORE_RING_SIZE - s.used, src.length);
    if (n === 0) return { ok: true, written: 0 };
    const bytes = this.#page.bytes;
    const base = this.#layout.dataOffset;
    const at = s.prod & RING_MASK;
    const first = Math.min(n, XENSTORE_RING_SIZE - at);
    bytes.set(src.subarray(0, first), base + at);
    if (n > first) bytes.set(src.subarray(first, n), base);
    // Published only after the data is in place.
    Atomics.store(this.#page.words, this.#layout.prodWord, (s.prod + n) | 0);
    this.#total += n;
    return { ok: true, written: n };
  }
}

/** The four indexes of a page, as u32 (diagnostics and tests). */
export interface XsRingIndexes {
  readonly reqCons: number;
  readonly reqProd: number;
  readonly rspCons: number;
  readonly rspProd: number;
}

/** Read the four indexes (each once, as u32). */
export function xsRingIndexes(page: XsRingPage): XsRingIndexes {
  const w = page.words;
  return {
    reqCons: Atomics.load(w, XENSTORE_DOMAIN_INTERFACE_WORD.req_cons) >>> 0,
    reqProd: Atomics.load(w, XENSTORE_DOMAIN_INTERFACE_WORD.req_prod) >>> 0,
    rspCons: Atomics.load(w, XENSTORE_DOMAIN_INTERFACE_WORD.rsp_cons) >>> 0,
    rspProd: Atomics.load(w, XENSTORE_DOMAIN_INTERFACE_WORD.rsp_prod) >>> 0,
  };
}

/** Set the four indexes (server reset; tests that start near 2^32). */
export function setXsRingIndexes(page: XsRingPage, indexes: XsRingIndexes): void {
  const w = page.words;
  Atomics.store(w, XENSTORE_DOMAIN_INTERFACE_WORD.req_cons, indexes.reqCons | 0);
  Atomics.store(w, XENSTORE_DOMAIN_INTERFACE_WORD.req_prod, indexes.reqProd | 0);
  Atomics.store(w, XENSTORE_DOMAIN_INTERFACE_WORD.rsp_cons, indexes.rspCons | 0);
  Atomics.store(w, XENSTORE_DOMAIN_INTERFACE_WORD.rsp_prod, indexes.rspProd | 0);
}

/**
 * The page's `error` word (§7.7). Any value the peer left there is returned as read;
 * values outside `XENSTORE_ERROR` come back as they are (u32).
 */
export function xsRingError(page: XsRingPage): number {
  return Atomics.load(page.words, XENSTORE_DOMAIN_INTERFACE_WORD.error) >>> 0;
}

/** Write the `error` word: the server gives up on the ring (§7.7). */
export function setXsRingError(page: XsRingPage, error: XenstoreError): void {
  Atomics.store(page.words, XENSTORE_DOMAIN_INTERFACE_WORD.error, error);
}

/** The `connection` word (0 CONNECTED, 1 RECONNECT), as read (u32). */
export function xsRingConnection(page: XsRingPage): number {
  return Atomics.load(page.words, XENSTORE_DOMAIN_INTERFACE_WORD.connection) >>> 0;
}

/** Write the `connection` word. */
export function setXsRingConnection(page: XsRingPage, value: number): void {
  Atomics.store(page.words, XENSTORE_DOMAIN_INTERFACE_WORD.connection, value | 0);
}

/** The `server_features` word (u32). */
export function xsRingServerFeatures(page: XsRingPage): number {
  return Atomics.load(page.words, XENSTORE_DOMAIN_INTERFACE_WORD.server_features) >>> 0;
}

/** The name of an `error` value for messages (`'RINGIDX'`), or its number. */
export function xsRingErrorName(error: number): string {
  for (const [name, value] of Object.entries(XENSTORE_ERROR)) if (value === error) return name;
  return String(error);
}
