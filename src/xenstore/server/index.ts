// SPDX-License-Identifier: MIT
/** The xenstore daemon core: connection dispatcher over the store, transport-free. */
export {
  XsConnection,
  XsServer,
  type XsConnectOptions,
  type XsConnectionSink,
  type XsDomainRing,
  type XsDomainRingProvider,
  type XsDomainRingResult,
  type XsServerOptions,
  type XsServerRingOptions,
} from './server.js';
export { connectInProcess } from './in-process.js';
