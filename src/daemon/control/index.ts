// SPDX-License-Identifier: MIT
/**
 * The daemon's control socket: newline-delimited JSON requests over a Unix socket
 * (protocol.ts), the server the daemon runs and the client the CLI uses.
 *
 * @example
 * import { ControlClient, defaultControlSocketPath } from './daemon/control/index.js';
 * const client = await ControlClient.connect(defaultControlSocketPath(), { timeoutMs: 5000 });
 * await client.request('assignable.add', { bdf: '03:00.0', name: 'nic' });
 * client.close();
 */
export {
  CONTROL_DEFAULT_TIMEOUT_MS,
  ControlClient,
  ControlError,
  type ControlClientOptions,
} from './client.js';
export { LineFramer, type FramedLines, type LineFramerOptions } from './framing.js';
export { defaultControlSocketPath, type ControlPathEnv } from './paths.js';
export {
  CONTROL_ERROR,
  CONTROL_MAX_REQUEST_BYTES,
  CONTROL_MAX_RESPONSE_BYTES,
  CONTROL_METHODS,
  CONTROL_PARAMS,
  controlRequestSchema,
  controlResponseSchema,
  isControlMethod,
  type ControlErrorBody,
  type ControlMethod,
  type ControlParams,
  type ControlRepair,
  type ControlRequest,
  type ControlRequestId,
  type ControlResponse,
  type ControlResults,
  type DaemonStatus,
} from './protocol.js';
export {
  serveControlSocket,
  type ControlHandlers,
  type ControlServer,
  type ControlServerOptions,
} from './server.js';
