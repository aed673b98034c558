// SPDX-License-Identifier: MIT
/**
 * The CLI's side of the control socket: connect, send requests, match responses by id,
 * give up after a timeout. A response with an error becomes a {@link ControlError}
 * carrying the daemon's code and message.
 */
import { connect, type Socket } from 'node:net';
import { PcibackError } from '../../errors.js';
import { LineFramer } from './framing.js';
import {
  CONTROL_ERROR,
  CONTROL_MAX_RESPONSE_BYTES,
  controlResponseSchema,
  type ControlMethod,
  type ControlParams,
  type ControlResults,
} from './protocol.js';

/** Default time to wait for a connection or a response. */
export const CONTROL_DEFAULT_TIMEOUT_MS = 30_000;

/** An error the daemon answered with (its `code` and `message`), or a client-side failure. */
export class ControlError extends PcibackError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ControlError';
  }
}

/** Options of {@link ControlClient.connect}. */
export interface ControlClientOptions {
  /** How long to wait for the connection and then for each response (ms). */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * A connection to a daemon's control socket.
 *
 * @example
 * const client = await ControlClient.connect(defaultControlSocketPath());
 * try {
 *   const rows = await client.request('assignable.list', { verbose: true });
 * } finally {
 *   client.close();
 * }
 */
export class ControlClient {
  readonly path: string;
  readonly #socket: Socket;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  readonly #framer = new LineFramer({ maxLineBytes: CONTROL_MAX_RESPONSE_BYTES });
  #nextId = 1;
  #closedBecause: ControlError | undefined;

  private constructor(path: string, socket: Socket, timeoutMs: number) {
    this.path = path;
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => {
      this.#receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    socket.on('error', (err) => {
      this.#shutdown(
        new ControlError(
          CONTROL_ERROR.closed,
          `Lost the connection to the pciback daemon at "${path}": ${err.message}`,
          { cause: err },
        ),
      );
    });
    socket.on('close', () => {
      this.#shutdown(
        new ControlError(
          CONTROL_ERROR.closed,
          `The pciback daemon at "${path}" closed the connection before answering`,
        ),
      );
    });
  }

  /**
   * Connect to the socket at `path`.
   *
   * @throws {ControlError} `CONTROL_CLOSED` when nothing listens there (the message
   *   says why: no such file, connection refused), `CONTROL_TIMEOUT`.
   */
  static connect(path: string, options: ControlClientOptions = {}): Promise<ControlClient> {
    const timeoutMs = options.timeoutMs ?? CONTROL_DEFAULT_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(
        `Invalid timeout ${String(timeoutMs)} ms: it must be a positive integer`,
      );
    }
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new ControlError(
            CONTROL_ERROR.timeout,
            `Cannot connect to the pciback daemon at "${path}": no answer within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlClient(path, socket, timeoutMs));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        const why =
          err.code === 'ENOENT'
            ? 'no such socket'
            : err.code === 'ECONNREFUSED'
              ? 'nothing listens there'
              : err.message;
        reject(
          new ControlError(
            CONTROL_ERROR.closed,
            `Cannot connect to the pciback daemon at "${path}": ${why}`,
            { cause: err },
          ),
        );
      });
    });
  }

  /**
   * Send one request and wait for its response.
   *
   * @throws {ControlError} with the daemon's code, or `CONTROL_TIMEOUT`,
   *   `CONTROL_CLOSED`, `CONTROL_BAD_RESPONSE`.
   */
  request<M extends ControlMethod>(
    method: M,
    params: ControlParams<M>,
    options: { readonly timeoutMs?: number } = {},
  ): Promise<ControlResults[M]> {
    if (this.#closedBecause !== undefined) return Promise.reject(this.#closedBecause);
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise<ControlResults[M]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new ControlError(
            CONTROL_ERROR.timeout,
            `The pciback daemon at "${this.path}" did not answer "${method}" within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#pending.set(id, {
        method,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
      });
      this.#socket.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  /** Close the connection; pending requests fail with `CONTROL_CLOSED`. */
  close(): void {
    this.#shutdown(new ControlError(CONTROL_ERROR.closed, 'The control connection was closed'));
    this.#socket.destroy();
  }

  #receive(chunk: Uint8Array): void {
    const { lines, overflow } = this.#framer.push(chunk);
    for (const line of lines) this.#answer(line);
    if (overflow) {
      this.#fail(`a response is longer than ${CONTROL_MAX_RESPONSE_BYTES} bytes`);
    }
  }

  #answer(line: string): void {
    let document: unknown;
    try {
      document = JSON.parse(line);
    } catch {
      this.#fail('a response is not JSON');
      return;
    }
    const parsed = controlResponseSchema.safeParse(document);
    if (!parsed.success) {
      this.#fail('a response is not {"id", "result"} or {"id", "error"}');
      return;
    }
    const response = parsed.data;
    if (response.id === null) {
      // The daemon rejects the connection as a whole (a framing error, too many clients).
      if ('error' in response) {
        this.#shutdown(new ControlError(response.error.code, response.error.message));
        this.#socket.destroy();
      }
      return;
    }
    const pending = typeof response.id === 'number' ? this.#pending.get(response.id) : undefined;
    if (pending === undefined) return;
    this.#pending.delete(response.id as number);
    clearTimeout(pending.timer);
    if ('error' in response) {
      pending.reject(new ControlError(response.error.code, response.error.message));
    } else {
      pending.resolve(response.result);
    }
  }

  #fail(why: string): void {
    this.#shutdown(
      new ControlError(
        CONTROL_ERROR.badResponse,
        `Cannot use the pciback daemon at "${this.path}": ${why}`,
      ),
    );
    this.#socket.destroy();
  }

  #shutdown(reason: ControlError): void {
    this.#closedBecause ??= reason;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(reason);
    }
  }
}
