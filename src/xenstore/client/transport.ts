// SPDX-License-Identifier: MIT
/**
 * The byte transport under {@link XsClient}: a Unix socket, a ring page or an in-memory
 * pipe. The client core never knows which (STYLE.md: a protocol is a pure core plus
 * transports).
 */

/**
 * A bidirectional byte stream carrying xenstore messages. Chunks may split or join
 * messages arbitrarily (spec/xenstore.md §1.1); the client reassembles them.
 */
export interface XsTransport {
  /** Queue bytes for the peer. May throw when the transport is already closed. */
  send(bytes: Uint8Array): void;
  /** Register the receiver of incoming bytes (one receiver; a later call replaces it). */
  onData(cb: (chunk: Uint8Array) => void): void;
  /**
   * Register the receiver of the close notification, called once when the stream ends
   * for any reason (peer closed, error, or {@link XsTransport.close}).
   */
  onClose(cb: (error?: Error) => void): void;
  /** Close the stream. Idempotent. */
  close(): void;
}

/** Options of {@link createMemoryTransportPair}. */
export interface XsMemoryTransportOptions {
  /**
   * Split every sent buffer into chunks of at most this many bytes before delivery, to
   * exercise reassembly (default: deliver whole).
   */
  readonly chunkBytes?: number;
}

class MemoryEnd implements XsTransport {
  #peer: MemoryEnd | undefined;
  #data: ((chunk: Uint8Array) => void) | undefined;
  #closeCb: ((error?: Error) => void) | undefined;
  #closed = false;
  readonly #chunkBytes: number;

  constructor(chunkBytes: number) {
    this.#chunkBytes = chunkBytes;
  }

  link(peer: MemoryEnd): void {
    this.#peer = peer;
  }

  send(bytes: Uint8Array): void {
    if (this.#closed) throw new Error('Cannot send on a memory transport: it is closed');
    const peer = this.#peer;
    const copy = bytes.slice();
    // Delivered asynchronously like a socket, so no handler runs inside send().
    for (let at = 0; at < copy.length; at += this.#chunkBytes) {
      const chunk = copy.subarray(at, at + this.#chunkBytes);
      queueMicrotask(() => {
        peer?.deliver(chunk);
      });
    }
  }

  deliver(chunk: Uint8Array): void {
    if (!this.#closed) this.#data?.(chunk);
  }

  onData(cb: (chunk: Uint8Array) => void): void {
    this.#data = cb;
  }

  onClose(cb: (error?: Error) => void): void {
    this.#closeCb = cb;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const peer = this.#peer;
    queueMicrotask(() => {
      this.#closeCb?.();
      peer?.close();
    });
  }
}

/**
 * Two connected in-memory transports: bytes sent on one arrive (asynchronously, in
 * order) on the other; closing either closes both.
 *
 * @example
 * const [clientSide, daemonSide] = createMemoryTransportPair();
 * const client = new XsClient(clientSide);
 */
export function createMemoryTransportPair(
  options: XsMemoryTransportOptions = {},
): [XsTransport, XsTransport] {
  const chunkBytes = options.chunkBytes ?? Number.POSITIVE_INFINITY;
  if (!(chunkBytes >= 1)) {
    throw new RangeError(`Cannot create a memory transport with chunkBytes ${chunkBytes}`);
  }
  const a = new MemoryEnd(chunkBytes);
  const b = new MemoryEnd(chunkBytes);
  a.link(b);
  b.link(a);
  return [a, b];
}
