// SPDX-License-Identifier: MIT
/**
 * The client side of the xenstored Unix socket (dom0 tools, spec/xenstore.md §1.2): a
 * `node:net` socket adapted to the transport-free {@link XsTransport} of the client core.
 */
import { connect, type Socket } from 'node:net';
import { PcibackError } from '../../errors.js';
import type { XsTransport } from '../client/index.js';

/** libxenstore's default socket path (`xs_daemon_socket()` with no environment). */
export const XENSTORED_DEFAULT_SOCKET_PATH = '/var/run/xenstored/socket';

/**
 * The socket path the way libxenstore chooses it: `XENSTORED_PATH` if set, else
 * `$XENSTORED_RUN_DIR/socket`, else {@link XENSTORED_DEFAULT_SOCKET_PATH}.
 */
export function xenstoredSocketPath(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const explicit = env['XENSTORED_PATH'];
  if (explicit !== undefined && explicit !== '') return explicit;
  const runDir = env['XENSTORED_RUN_DIR'];
  if (runDir !== undefined && runDir !== '') return `${runDir}/socket`;
  return XENSTORED_DEFAULT_SOCKET_PATH;
}

/** Options of {@link connectXenstoreUnixSocket}. */
export interface XsUnixSocketClientOptions {
  /** Give up connecting after this long (default 5000 ms). */
  readonly connectTimeoutMs?: number;
}

class SocketTransport implements XsTransport {
  readonly #socket: Socket;
  #data: ((chunk: Uint8Array) => void) | undefined;
  #closeCb: ((error?: Error) => void) | undefined;
  #closed = false;
  #error: Error | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      // Plain Uint8Array view for the core (no Buffer API leaks in).
      this.#data?.(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    socket.on('error', (e) => {
      this.#error = e;
    });
    socket.on('close', () => {
      this.#finish();
    });
  }

  send(bytes: Uint8Array): void {
    if (this.#closed || this.#socket.destroyed) {
      throw new PcibackError('ECONNRESET', 'Cannot send to xenstored: the socket is closed');
    }
    this.#socket.write(bytes);
  }

  onData(cb: (chunk: Uint8Array) => void): void {
    this.#data = cb;
  }

  onClose(cb: (error?: Error) => void): void {
    this.#closeCb = cb;
    if (this.#closed)
      queueMicrotask(() => {
        cb(this.#error);
      });
  }

  close(): void {
    this.#socket.destroy();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeCb?.(this.#error);
  }
}

/**
 * Connect to xenstored's Unix socket (default: {@link xenstoredSocketPath}).
 *
 * @throws PcibackError `XS_CONNECT_FAILED` when the socket cannot be reached in time.
 * @example
 * const xs = new XsClient(await connectXenstoreUnixSocket());
 */
export async function connectXenstoreUnixSocket(
  path: string = xenstoredSocketPath(),
  options: XsUnixSocketClientOptions = {},
): Promise<XsTransport> {
  const timeoutMs = options.connectTimeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  // C xenstored listens with a backlog of 1: a full queue answers EAGAIN at once where
  // libxenstore's blocking connect() would wait. Retry until the deadline.
  for (let delayMs = 1; ; delayMs = Math.min(delayMs * 2, 50)) {
    try {
      return await connectOnce(path, Math.max(1, deadline - Date.now()), timeoutMs);
    } catch (err) {
      const code = ((err as { cause?: NodeJS.ErrnoException }).cause ?? {}).code;
      if (code !== 'EAGAIN' || Date.now() + delayMs >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

function connectOnce(path: string, waitMs: number, timeoutMs: number): Promise<XsTransport> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new PcibackError(
          'XS_CONNECT_FAILED',
          `Cannot connect to xenstored at "${path}": no answer within ${timeoutMs} ms`,
        ),
      );
    }, waitMs);
    const onError = (e: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        new PcibackError(
          'XS_CONNECT_FAILED',
          `Cannot connect to xenstored at "${path}": ${e.message}`,
          {
            cause: e,
          },
        ),
      );
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(new SocketTransport(socket));
    });
  });
}
