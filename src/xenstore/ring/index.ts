// SPDX-License-Identifier: MIT
/**
 * xenstore over the domain ring page (spec/xenstore.md §7.6–§7.7): the two byte rings,
 * xenstored's end of a domain's ring and the guest's client transport. Pure: the page,
 * the event channel and the wake-ups come from the platform.
 */
export {
  XsRingConsumer,
  XsRingProducer,
  setXsRingConnection,
  setXsRingError,
  setXsRingIndexes,
  xsRingConnection,
  xsRingError,
  xsRingErrorName,
  xsRingIndexes,
  xsRingPage,
  xsRingServerFeatures,
  type XsRingCorruption,
  type XsRingIndexes,
  type XsRingName,
  type XsRingPage,
  type XsRingReadResult,
  type XsRingWriteResult,
} from './ring-buffer.js';
export {
  XsRingServer,
  type XsRingChannel,
  type XsRingServerOptions,
  type XsRingServerState,
  type XsRingSession,
  type XsRingSessionSink,
  type XsRingStats,
} from './ring-server.js';
export {
  XsRingClientTransport,
  type XsRingClientOptions,
  type XsRingClientStats,
  type XsRingWakeSource,
} from './ring-client.js';
