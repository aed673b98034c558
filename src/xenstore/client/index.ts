// SPDX-License-Identifier: MIT
/**
 * The xenstore client, transport-free (spec/xenstore.md §11.1): {@link XsClient} over an
 * {@link XsTransport}, with an in-memory transport pair for tests and the simulator.
 */
export {
  XsClient,
  XsTransaction,
  type XsClientOptions,
  type XsIntroduceOptions,
  type XsRequestOptions,
  type XsTimers,
  type XsTransactionOptions,
  type XsWatchCallback,
  type XsWatchEventInfo,
} from './client.js';
export { XsError, isXsError, type XsErrorCode, type XsErrorOptions } from './errors.js';
export {
  createMemoryTransportPair,
  type XsMemoryTransportOptions,
  type XsTransport,
} from './transport.js';
