// SPDX-License-Identifier: MIT
/** The xenstore daemon core: connection dispatcher over the store, transport-free. */
export {
  XsConnection,
  XsServer,
  type XsConnectOptions,
  type XsConnectionSink,
  type XsServerOptions,
} from './server.js';
