// SPDX-License-Identifier: MIT
/**
 * A client connection to an {@link XsServer} in the same process, with no socket: the
 * way a daemon that hosts xenstored also runs its own dom0 clients (toolstack, backend).
 */
import { createMemoryTransportPair, type XsTransport } from '../client/index.js';
import type { XsConnectOptions, XsServer } from './server.js';

/**
 * A transport for `XsClient` connected to `server` in this process. By default the peer
 * is a privileged dom0 connection, like a Unix socket peer (§1.2). Bytes are delivered
 * asynchronously (microtasks), so no request runs inside the caller's `send`. Closing
 * either side closes the dispatcher connection (its watches and transactions go).
 *
 * @example
 * const server = new XsServer();
 * const xs = new XsClient(connectInProcess(server));
 * await xs.write('/local/domain/0/name', 'Domain-0');
 */
export function connectInProcess(server: XsServer, options: XsConnectOptions = {}): XsTransport {
  const [clientEnd, daemonEnd] = createMemoryTransportPair();
  const conn = server.connect(
    {
      send: (bytes) => {
        try {
          daemonEnd.send(bytes);
        } catch {
          // The client went away: nothing to deliver to.
        }
      },
      close: () => {
        daemonEnd.close();
      },
    },
    options,
  );
  daemonEnd.onData((chunk) => {
    conn.receive(chunk);
  });
  daemonEnd.onClose(() => {
    conn.close();
  });
  return clientEnd;
}
