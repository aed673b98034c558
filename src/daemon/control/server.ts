// SPDX-License-Identifier: MIT
/**
 * The control socket of `pciback daemon`: {@link serveControlSocket} accepts clients on
 * a Unix socket (mode 0600, the directory 0700 when created), frames their lines,
 * validates each request with the method's schema and runs the handlers one at a time
 * across all clients (they move devices between drivers: never two at once).
 *
 * Nothing a client sends can stop the daemon: bad JSON or an overlong line gets one
 * error and the connection is closed; a bad request, an unknown method or a handler's
 * error gets an error response; a client that does not read its responses is closed
 * once too much is queued for it.
 */
import { chmod, mkdir, stat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { PcibackError, isPcibackError } from '../../errors.js';
import { SILENT_LOGGER, type Logger } from '../../platform/types.js';
import { LineFramer } from './framing.js';
import { removeStaleSocket } from '../../unix-socket-path.js';
import {
  CONTROL_ERROR,
  CONTROL_MAX_REQUEST_BYTES,
  CONTROL_PARAMS,
  controlRequestSchema,
  describeIssues,
  isControlMethod,
  type ControlMethod,
  type ControlResponse,
  type ControlResults,
} from './protocol.js';
import type { z } from 'zod';

/** The handler of each method: validated parameters in, a JSON-able result out. */
export type ControlHandlers = {
  readonly [M in ControlMethod]: (
    params: z.output<(typeof CONTROL_PARAMS)[M]>,
  ) => ControlResults[M] | Promise<ControlResults[M]>;
};

/** Options of {@link serveControlSocket}. */
export interface ControlServerOptions {
  readonly handlers: ControlHandlers;
  readonly logger?: Logger;
  /** Longest request line (default {@link CONTROL_MAX_REQUEST_BYTES}). */
  readonly maxLineBytes?: number;
  /** Clients served at once (default 32); more are answered with an error and closed. */
  readonly maxClients?: number;
  /** Close a client with more unread response bytes than this (default 16 MiB). */
  readonly maxPendingOutputBytes?: number;
}

/** A serving control socket. */
export interface ControlServer {
  readonly path: string;
  /** Clients connected now. */
  readonly clientCount: number;
  /** Stop accepting, let the running request finish, close every client, remove the socket. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_MAX_CLIENTS = 32;
/** Requests of one client waiting in the queue before its socket stops being read. */
const MAX_IN_FLIGHT_PER_CLIENT = 64;

interface Connection {
  readonly id: number;
  readonly socket: Socket;
  /** Requests queued or running. */
  inFlight: number;
  /** A fatal error is being answered: nothing more is read. */
  failing: boolean;
}
const DEFAULT_MAX_PENDING_OUTPUT_BYTES = 16 * 1024 * 1024;

/**
 * Refuse a directory another user controls: it could replace our socket with theirs
 * and have the CLI talk to them. It must belong to us or to root, and be writable by
 * others only with the sticky bit (like /tmp).
 */
async function checkSocketDirectory(path: string): Promise<void> {
  const dir = dirname(path);
  const info = await stat(dir);
  const uid = process.getuid?.();
  const problem = !info.isDirectory()
    ? 'it is not a directory'
    : uid !== undefined && info.uid !== uid && info.uid !== 0
      ? `it belongs to user ${info.uid}`
      : (info.mode & 0o022) !== 0 && (info.mode & 0o1000) === 0
        ? 'others can write to it (and it is not sticky)'
        : undefined;
  if (problem !== undefined) {
    throw new PcibackError(
      'CONTROL_SOCKET_PATH',
      `Cannot serve the control socket on "${path}": the directory "${dir}" is not safe: ${problem}`,
    );
  }
}

function errorBody(err: unknown): { code: string; message: string } {
  if (isPcibackError(err)) return { code: err.code, message: err.message };
  // Argument errors of the layers below (a bad driver name, a bad address) are the
  // caller's mistakes, not the daemon's.
  if (err instanceof RangeError || err instanceof SyntaxError || err instanceof TypeError) {
    return { code: CONTROL_ERROR.invalidParams, message: err.message };
  }
  return {
    code: CONTROL_ERROR.internal,
    message: `Internal error: ${err instanceof Error ? err.message : String(err)}`,
  };
}

/**
 * Serve `handlers` on a Unix socket at `path`. A stale socket file is replaced.
 *
 * @throws {PcibackError} `CONTROL_SOCKET_IN_USE` when a daemon listens there already,
 *   `CONTROL_SOCKET_PATH` when the path is another kind of file.
 * @example
 * const server = await serveControlSocket('/run/pciback/control.sock', {
 *   handlers: { status: () => status(), 'assignable.list': (p) => service.list(p), ... },
 * });
 * await server.close();
 */
export async function serveControlSocket(
  path: string,
  options: ControlServerOptions,
): Promise<ControlServer> {
  const logger = options.logger ?? SILENT_LOGGER;
  const maxLineBytes = options.maxLineBytes ?? CONTROL_MAX_REQUEST_BYTES;
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  const maxPending = options.maxPendingOutputBytes ?? DEFAULT_MAX_PENDING_OUTPUT_BYTES;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await checkSocketDirectory(path);
  await removeStaleSocket(path, 'the control socket', 'CONTROL_SOCKET');

  const sockets = new Set<Socket>();
  /** Requests run one after another, whichever client sent them. */
  let queue: Promise<void> = Promise.resolve();
  let nextClient = 1;

  const send = (socket: Socket, client: number, response: ControlResponse): void => {
    if (socket.destroyed || !socket.writable) return;
    let line: string;
    try {
      line = JSON.stringify(response);
    } catch (err) {
      // A result that does not serialise is a bug of its handler; the client still gets an answer.
      line = JSON.stringify({
        id: response.id,
        error: {
          code: CONTROL_ERROR.internal,
          message: `Internal error: cannot encode the response: ${err instanceof Error ? err.message : String(err)}`,
        },
      });
    }
    socket.write(`${line}\n`);
    if (socket.writableLength > maxPending) {
      logger.warn(
        { client, pendingBytes: socket.writableLength },
        `Closing control client ${client}: it does not read its responses`,
      );
      socket.destroy();
    }
  };

  const fail = (socket: Socket, client: number, code: string, message: string): void => {
    logger.warn({ client, code }, `Closing control client ${client}: ${message}`);
    send(socket, client, { id: null, error: { code, message } });
    socket.end();
    // A peer that does not read must not keep the socket open.
    socket.setTimeout(1000, () => socket.destroy());
  };

  const run = async (
    method: ControlMethod,
    params: unknown,
  ): Promise<{ result: unknown } | { error: { code: string; message: string } }> => {
    const parsed = CONTROL_PARAMS[method].safeParse(params ?? {});
    if (!parsed.success) {
      return {
        error: {
          code: CONTROL_ERROR.invalidParams,
          message: `Invalid parameters of "${method}": ${describeIssues(parsed.error)}`,
        },
      };
    }
    try {
      // The schemas and handlers are keyed alike; TypeScript cannot follow the pairing.
      const handler = options.handlers[method] as (p: unknown) => unknown;
      return { result: await handler(parsed.data) };
    } catch (err) {
      const body = errorBody(err);
      if (body.code === CONTROL_ERROR.internal) {
        logger.error({ method, err }, `Control method "${method}" failed: ${body.message}`);
      }
      return { error: body };
    }
  };

  /** Everything a client is answered goes through the queue, so responses keep request order. */
  const enqueue = (connection: Connection, work: () => Promise<void> | void): void => {
    connection.inFlight++;
    // Backpressure: a client that pipelines without bound stops being read.
    if (connection.inFlight >= MAX_IN_FLIGHT_PER_CLIENT) connection.socket.pause();
    queue = queue
      .then(work)
      .catch((err: unknown) => {
        // Never reached in practice (run and send catch), but a broken link must not
        // stop every later request.
        logger.error({ client: connection.id, err }, 'Control request failed unexpectedly');
      })
      .finally(() => {
        connection.inFlight--;
        if (connection.inFlight < MAX_IN_FLIGHT_PER_CLIENT && !connection.failing) {
          connection.socket.resume();
        }
      });
  };

  const failLater = (connection: Connection, code: string, message: string): void => {
    connection.failing = true;
    enqueue(connection, () => {
      fail(connection.socket, connection.id, code, message);
    });
  };

  const handleLine = (connection: Connection, line: string): void => {
    const { socket, id: client } = connection;
    let document: unknown;
    try {
      document = JSON.parse(line);
    } catch (err) {
      failLater(
        connection,
        CONTROL_ERROR.parse,
        `Cannot parse a request: ${err instanceof Error ? err.message : String(err)}`,
      );
      return;
    }
    const request = controlRequestSchema.safeParse(document);
    if (!request.success) {
      const id = (document as { id?: unknown } | null)?.id;
      const message = `Invalid request: ${describeIssues(request.error)} (expected {"id", "method", "params"})`;
      enqueue(connection, () => {
        send(socket, client, {
          id: typeof id === 'string' || typeof id === 'number' ? id : null,
          error: { code: CONTROL_ERROR.invalidRequest, message },
        });
      });
      return;
    }
    const { id, method, params } = request.data;
    if (!isControlMethod(method)) {
      const message = `Unknown method "${method}": expected one of ${Object.keys(CONTROL_PARAMS)
        .map((m) => `"${m}"`)
        .join(', ')}`;
      enqueue(connection, () => {
        send(socket, client, { id, error: { code: CONTROL_ERROR.unknownMethod, message } });
      });
      return;
    }
    enqueue(connection, async () => {
      if (socket.destroyed) return;
      const outcome = await run(method, params);
      send(socket, client, { id, ...outcome });
    });
  };

  const net: Server = createServer((socket) => {
    const connection: Connection = { id: nextClient++, socket, inFlight: 0, failing: false };
    const client = connection.id;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', (err) => {
      logger.debug({ client, err: err.message }, `Control client ${client} failed`);
    });
    if (sockets.size > maxClients) {
      fail(
        socket,
        client,
        CONTROL_ERROR.tooManyClients,
        `Too many control clients (at most ${maxClients} at once)`,
      );
      return;
    }
    const framer = new LineFramer({ maxLineBytes });
    // A function, not the field: handleLine may set it between two checks.
    const failing = (): boolean => connection.failing;
    socket.on('data', (chunk: Buffer) => {
      if (failing()) return;
      const { lines, overflow } = framer.push(
        new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
      );
      for (const line of lines) {
        if (failing()) return;
        if (line.trim() === '') continue;
        handleLine(connection, line);
      }
      if (overflow && !failing()) {
        failLater(
          connection,
          CONTROL_ERROR.lineTooLong,
          `Request line too long: more than ${maxLineBytes} bytes without a newline`,
        );
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen(path, () => {
      net.off('error', reject);
      resolve();
    });
  });
  net.on('error', (err) => {
    logger.error({ err: err.message }, `Control socket "${path}" failed`);
  });
  // The directory is ours (0700) when we made it; the socket itself is 0600 either way.
  await chmod(path, 0o600);

  let closing: Promise<void> | undefined;
  return {
    path,
    get clientCount() {
      return sockets.size;
    },
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => {
          net.close(() => {
            resolve();
          });
        });
        // The request running now finishes (and is answered) before the clients go.
        await queue;
        for (const socket of sockets) socket.destroy();
        await stopped;
        await unlink(path).catch(() => undefined);
      })();
      return closing;
    },
  };
}
