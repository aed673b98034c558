// SPDX-License-Identifier: MIT
/**
 * The xenstore daemon on a Unix socket, the way dom0 tools reach xenstored
 * (`XENSTORED_PATH`, spec/xenstore.md §1.2): every socket peer is a privileged dom0
 * connection. Only bytes move here; requests are handled by {@link XsServer}.
 */
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { XsServer, type XsConnection } from '../server/index.js';
import { removeStaleSocket } from '../../unix-socket-path.js';

/** Options of {@link serveXenstoreUnixSocket}. */
export interface XsUnixSocketOptions {
  /** The dispatcher to serve (default: a new `XsServer` over a fresh store). */
  readonly server?: XsServer;
  /**
   * Close a peer whose unread output exceeds this many bytes (default 16 MiB): a client
   * that never reads must not make the daemon buffer without bound (C drops such events).
   */
  readonly maxPendingOutputBytes?: number;
  /** Diagnostics. Default: discard. */
  readonly log?: (line: string) => void;
}

/** A running socket daemon. */
export interface XsUnixSocketServer {
  /** The socket path. */
  readonly path: string;
  /** The dispatcher (and through it, the store). */
  readonly server: XsServer;
  /** Stop accepting, close every peer, remove the socket file. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_MAX_PENDING_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Wire one accepted socket to a new dispatcher connection. */
function attach(socket: Socket, server: XsServer, maxPending: number, log: (l: string) => void) {
  let conn: XsConnection | undefined;
  conn = server.connect({
    send(bytes) {
      if (socket.destroyed) return;
      // Backpressure: stop reading requests until the peer drains its replies.
      if (!socket.write(bytes)) socket.pause();
      if (socket.writableLength > maxPending) {
        log(
          `Closing xenstore connection ${conn?.id ?? '?'}: ${socket.writableLength} bytes unread`,
        );
        conn?.close();
        socket.destroy();
      }
    },
    close() {
      // Framing error: C closes the socket at once, queued replies are not flushed.
      socket.destroy();
    },
  });
  socket.on('drain', () => {
    if (!socket.destroyed) socket.resume();
  });
  socket.on('data', (chunk: Buffer) => {
    conn?.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  });
  socket.on('error', (e) => {
    log(`Xenstore connection ${conn?.id ?? '?'} failed: ${e.message}`);
  });
  socket.on('close', () => {
    conn?.close();
    conn = undefined;
  });
}

/**
 * Serve xenstore on a Unix socket at `path` (mode 0600; the parent directory is created
 * 0700 when missing). A stale socket file is removed first.
 *
 * @throws PcibackError `XS_SOCKET_IN_USE` when a daemon already listens there,
 *   `XS_SOCKET_PATH` when the path is another kind of file.
 * @example
 * const xsd = await serveXenstoreUnixSocket('/run/pciback/xenstored.sock');
 * // XENSTORED_PATH=/run/pciback/xenstored.sock xenstore-ls /
 * await xsd.close();
 */
export async function serveXenstoreUnixSocket(
  path: string,
  options: XsUnixSocketOptions = {},
): Promise<XsUnixSocketServer> {
  const log =
    options.log ??
    (() => {
      /* discard */
    });
  const server = options.server ?? new XsServer({ log });
  const maxPending = options.maxPendingOutputBytes ?? DEFAULT_MAX_PENDING_OUTPUT_BYTES;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await removeStaleSocket(path, 'xenstore', 'XS_SOCKET');
  const sockets = new Set<Socket>();
  const net: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    attach(socket, server, maxPending, log);
  });
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen(path, () => {
      net.off('error', reject);
      resolve();
    });
  });
  net.on('error', (e) => {
    log(`Xenstore socket "${path}" failed: ${e.message}`);
  });
  await chmod(path, 0o600);
  let closing: Promise<void> | undefined;
  return {
    path,
    server,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => {
          net.close(() => {
            resolve();
          });
        });
        for (const s of sockets) s.destroy();
        server.closeAll();
        await stopped;
        await unlink(path).catch(() => undefined);
      })();
      return closing;
    },
  };
}
