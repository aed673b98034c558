// SPDX-License-Identifier: MIT
/**
 * The toolstack's view of what PCI backends report on their error nodes
 * (`/local/domain/<be>/error/backend/pci/<fe>/<devid>/error`, written by
 * `xenbus_dev_error` and `xenbus_dev_fatal` as `"<errno> <message>"`).
 *
 * libxl reads that node only while it waits for a backend state; a backend that reports
 * later (pciback-ts's "device unbound from pciback while in use", spec §6.4) would go
 * unseen. This watch calls `onError` once for every new text, so the toolstack can show
 * or act on it.
 */
import { SILENT_LOGGER, type Logger } from '../platform/types.js';
import { isXsError, type XsClient } from '../xenstore/client/index.js';
import { backendDomidOption, unwatchQuietly } from './watch-support.js';

/** One report of a backend. */
export interface BackendErrorReport {
  /** The frontend domain the backend device serves. */
  readonly domid: number;
  readonly devid: number;
  /** The node's text, `"<errno> <message>"`. */
  readonly text: string;
  /** The errno part (positive), or null when the text does not start with one. */
  readonly errno: number | null;
}

/** Options of {@link watchBackendErrors}. */
export interface WatchBackendErrorsOptions {
  /** The backend domain (default 0). */
  readonly backendDomid?: number;
  /** Called once per new text of a node, in the order the watch saw them. */
  onError(report: BackendErrorReport): void;
  readonly logger?: Logger;
}

/** A running watch from {@link watchBackendErrors}. */
export interface BackendErrorWatch {
  /** Remove the watch and wait for reads under way. Idempotent. */
  close(): Promise<void>;
}

/** Longest error text reported; a longer one is cut (a backend cannot flood the toolstack). */
export const BACKEND_ERROR_MAX_LENGTH = 1024;

const ID = /^(?:0|[1-9][0-9]{0,4})$/;

let tokenCounter = 0;

/**
 * Watch `/local/domain/<backendDomid>/error/backend/pci`. A text already there when the
 * watch starts is reported too; a node that is removed and written again with the same
 * text counts again.
 *
 * @example
 * const errors = await watchBackendErrors(xs, {
 *   onError: ({ domid, text }) => console.log(`domain ${domid}: ${text}`),
 * });
 * await errors.close();
 */
export async function watchBackendErrors(
  client: XsClient,
  options: WatchBackendErrorsOptions,
): Promise<BackendErrorWatch> {
  const backendDomid = backendDomidOption(options.backendDomid, 'watch the errors');
  const logger = options.logger ?? SILENT_LOGGER;
  const root = `/local/domain/${backendDomid}/error/backend/pci`;
  const token = `pciback-ts-backend-errors-${++tokenCounter}`;
  /** Last text reported per `<fe>/<devid>`. */
  const seen = new Map<string, string>();
  let closed = false;
  let queue: Promise<void> = Promise.resolve();

  const readNode = async (fe: string, devid: string): Promise<void> => {
    const key = `${fe}/${devid}`;
    let text: string;
    try {
      text = await client.readString(`${root}/${key}/error`);
    } catch (err) {
      if (!isXsError(err, 'ENOENT')) throw err;
      seen.delete(key);
      return;
    }
    if (closed || seen.get(key) === text) return;
    seen.set(key, text);
    const bounded = text.slice(0, BACKEND_ERROR_MAX_LENGTH);
    const errno = /^(\d{1,4}) /.exec(bounded);
    options.onError({
      domid: Number(fe),
      devid: Number(devid),
      text: bounded,
      errno: errno?.[1] === undefined ? null : Number(errno[1]),
    });
  };

  const scan = async (): Promise<void> => {
    const live = new Set<string>();
    for (const fe of await list(root)) {
      if (!ID.test(fe)) continue;
      for (const devid of await list(`${root}/${fe}`)) {
        if (!ID.test(devid)) continue;
        live.add(`${fe}/${devid}`);
        await readNode(fe, devid);
      }
    }
    for (const key of seen.keys()) if (!live.has(key)) seen.delete(key);
  };

  const list = async (path: string): Promise<string[]> => {
    try {
      return await client.directory(path);
    } catch (err) {
      if (isXsError(err, 'ENOENT')) return [];
      throw err;
    }
  };

  const route = (path: string): void => {
    if (closed) return;
    const parts = path.startsWith(`${root}/`) ? path.slice(root.length + 1).split('/') : [];
    const [fe, devid, leaf] = parts;
    const job =
      fe !== undefined &&
      devid !== undefined &&
      ID.test(fe) &&
      ID.test(devid) &&
      (leaf === undefined || (leaf === 'error' && parts.length === 3))
        ? () => readNode(fe, devid)
        : scan;
    queue = queue.then(job).catch((err: unknown) => {
      logger.error({ err, root }, `Cannot read the backend errors under "${root}"`);
    });
  };

  await client.watch(root, token, (event) => {
    route(event.path);
  });

  return {
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await unwatchQuietly(client, root, token, logger);
      await queue;
    },
  };
}
