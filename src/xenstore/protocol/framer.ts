// SPDX-License-Identifier: MIT
/**
 * Reassembles xenstore messages from a byte stream split anywhere (spec/xenstore.md §1.1):
 * socket reads and ring copies alike. The header's `len` is checked against the limit as
 * soon as the 16 header bytes are in, before any payload is buffered or waited for
 * (§1.4: C closes the socket / sets the ring's error to PROTO; STYLE.md framing rule).
 */
import {
  XENSTORE_PAYLOAD_MAX,
  XSD_SOCKMSG_SIZE,
  decodeXsdSockmsg,
  type XsdSockmsg,
} from '../../abi/index.js';
import type { XsMessage } from './message.js';

/** A stream that cannot be resynchronised: the connection must be closed. */
export interface XsFramingError {
  /** The only framing error: a header whose `len` is above the limit. */
  readonly reason: 'oversized';
  /** The offending header, as received. */
  readonly header: XsdSockmsg;
  /** The limit that was applied. */
  readonly maxPayload: number;
  /** A sentence for logs. */
  readonly message: string;
}

/** Options of {@link XsFramer}. */
export interface XsFramerOptions {
  /**
   * Largest accepted `len` (default XENSTORE_PAYLOAD_MAX). A client talking to oxenstored
   * may raise it: O can send DIRECTORY replies above 4096 bytes on a socket (§11.1).
   */
  readonly maxPayload?: number;
}

/**
 * Incremental framer. `push()` bytes as they arrive, then iterate (or `drain()`) the
 * complete messages in arrival order. After a framing error, messages completed before
 * the bad header are still delivered, `error` is set and further input is ignored.
 *
 * Memory: at most 16 header bytes plus one payload of at most `maxPayload` bytes are
 * held for an incomplete message; complete messages wait in a queue until drained.
 *
 * @example
 * const framer = new XsFramer();
 * framer.push(chunk);
 * for (const msg of framer) handle(msg);
 * if (framer.error) closeConnection(framer.error.message);
 */
export class XsFramer implements Iterable<XsMessage> {
  readonly #maxPayload: number;
  readonly #header = new Uint8Array(XSD_SOCKMSG_SIZE);
  #headerFill = 0;
  /** Set once a valid header is complete; its payload is being filled. */
  #pending: XsdSockmsg | undefined;
  #payload: Uint8Array | undefined;
  #payloadFill = 0;
  #queue: XsMessage[] = [];
  #error: XsFramingError | undefined;

  constructor(options: XsFramerOptions = {}) {
    const max = options.maxPayload ?? XENSTORE_PAYLOAD_MAX;
    if (!Number.isInteger(max) || max < 0 || max > 0xffffffff) {
      throw new RangeError(`Cannot create an XsFramer with maxPayload ${max}: it must be a u32`);
    }
    this.#maxPayload = max;
  }

  /** The framing error, once the stream has been given up on. */
  get error(): XsFramingError | undefined {
    return this.#error;
  }

  /** Bytes of an incomplete message currently held (header plus payload so far). */
  get bufferedBytes(): number {
    return this.#pending === undefined ? this.#headerFill : XSD_SOCKMSG_SIZE + this.#payloadFill;
  }

  /** Complete messages not yet drained. */
  get queuedMessages(): number {
    return this.#queue.length;
  }

  /**
   * Feed bytes. The chunk is not kept: payload bytes are copied out of it. Never throws on
   * any content; input after a framing error is discarded.
   */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length && this.#error === undefined) {
      if (this.#pending === undefined) {
        const take = Math.min(XSD_SOCKMSG_SIZE - this.#headerFill, chunk.length - at);
        this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
        this.#headerFill += take;
        at += take;
        if (this.#headerFill === XSD_SOCKMSG_SIZE) this.#startPayload();
      } else {
        const payload = this.#payload ?? new Uint8Array(0);
        const take = Math.min(payload.length - this.#payloadFill, chunk.length - at);
        payload.set(chunk.subarray(at, at + take), this.#payloadFill);
        this.#payloadFill += take;
        at += take;
        if (this.#payloadFill === payload.length) this.#finish();
      }
    }
  }

  /** The next complete message, or `undefined` when none is queued. */
  next(): XsMessage | undefined {
    return this.#queue.shift();
  }

  /** Remove and return every queued message. */
  drain(): XsMessage[] {
    const out = this.#queue;
    this.#queue = [];
    return out;
  }

  /** Iterate the queued messages, removing each as it is yielded. */
  *[Symbol.iterator](): Iterator<XsMessage> {
    for (let m = this.next(); m !== undefined; m = this.next()) yield m;
  }

  /** Forget all state (a ring reconnection, §7.7): partial input, queue and error. */
  reset(): void {
    this.#headerFill = 0;
    this.#pending = undefined;
    this.#payload = undefined;
    this.#payloadFill = 0;
    this.#queue = [];
    this.#error = undefined;
  }

  #startPayload(): void {
    const header = decodeXsdSockmsg(new DataView(this.#header.buffer), 0);
    this.#headerFill = 0;
    // The bound is checked on the header alone: nothing is allocated for a bad length.
    if (header.len > this.#maxPayload) {
      this.#error = {
        reason: 'oversized',
        header,
        maxPayload: this.#maxPayload,
        message: `Cannot frame xenstore message type ${header.type} req_id ${header.reqId}: header len ${header.len} is above the limit ${this.#maxPayload}`,
      };
      return;
    }
    this.#pending = header;
    this.#payload = new Uint8Array(header.len);
    this.#payloadFill = 0;
    if (header.len === 0) this.#finish();
  }

  #finish(): void {
    const header = this.#pending;
    const payload = this.#payload;
    if (header === undefined || payload === undefined) return;
    this.#queue.push({ type: header.type, reqId: header.reqId, txId: header.txId, payload });
    this.#pending = undefined;
    this.#payload = undefined;
    this.#payloadFill = 0;
  }
}
