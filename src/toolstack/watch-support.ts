// SPDX-License-Identifier: MIT
/** What the toolstack's xenstore watches (AER failures, backend errors) share. */
import type { Logger } from '../platform/types.js';
import type { XsClient } from '../xenstore/client/index.js';

/**
 * The backend domain a watch names (default 0), checked.
 *
 * @throws {RangeError} for anything but a domain id (0 to 0x7fef), naming `purpose`.
 */
export function backendDomidOption(value: number | undefined, purpose: string): number {
  const domid = value ?? 0;
  if (!Number.isInteger(domid) || domid < 0 || domid >= 0x7ff0) {
    throw new RangeError(
      `Cannot ${purpose} of backend domain ${domid}: it is not a domain id (0 to 0x7fef)`,
    );
  }
  return domid;
}

/** Remove a watch at close; a connection already gone or a failure is only logged. */
export async function unwatchQuietly(
  client: XsClient,
  path: string,
  token: string,
  logger: Logger,
): Promise<void> {
  if (client.closed) return;
  await client.unwatch(path, token).catch((err: unknown) => {
    logger.debug({ err, path }, `Cannot remove the watch on "${path}"`);
  });
}
