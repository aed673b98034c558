// SPDX-License-Identifier: MIT
/**
 * Taking over a Unix socket path at start: a stale socket left by a killed daemon is
 * removed, a live one or a file that is not a socket is refused. Shared by the xenstore
 * daemon and pciback's control socket.
 */
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { PcibackError } from './errors.js';

/** True when something accepts connections on `path` (a live daemon). */
function isSocketLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => {
      probe.destroy();
      resolve(false);
    });
  });
}

/**
 * Remove a stale socket at `path`; refuse a live one or a file that is not a socket.
 *
 * @param what what the caller serves there, for messages: `xenstore`, `the control socket`.
 * @param codePrefix error codes are `<prefix>_PATH` and `<prefix>_IN_USE`.
 * @throws {PcibackError} `<prefix>_PATH`, `<prefix>_IN_USE`.
 */
export async function removeStaleSocket(
  path: string,
  what: string,
  codePrefix: string,
): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!isSocket) {
    throw new PcibackError(
      `${codePrefix}_PATH`,
      `Cannot serve ${what} on "${path}": the path exists and is not a socket`,
    );
  }
  if (await isSocketLive(path)) {
    throw new PcibackError(
      `${codePrefix}_IN_USE`,
      `Cannot serve ${what} on "${path}": another daemon is listening there`,
    );
  }
  await unlink(path);
}
