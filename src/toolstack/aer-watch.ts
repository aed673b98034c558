// SPDX-License-Identifier: MIT
/**
 * The toolstack's answer to `aerState = aerfail` (spec/pciback.md §6.6, §7.1): when dom0's
 * AER core cannot recover a passed-through device, Linux pciback's
 * `kill_domain_by_device` writes `aerState` = `aerfail` under
 * `/local/domain/0/backend/pci/<guest>/0` and expects the toolstack to destroy the guest.
 *
 * Beyond the original: libxl and xl never read `aerState` (peers.md §1.4, §1.8), so on a
 * stock host the guest keeps running with a device in an unknown state. Here a watch on
 * the backend's `backend/pci` directory calls the caller's `destroyDomain` once per
 * failure.
 */
import { SILENT_LOGGER, type Logger } from '../platform/types.js';
import { isXsError, type XsClient } from '../xenstore/client/index.js';
import { pciBackendPath } from './attach.js';
import { backendDomidOption, unwatchQuietly } from './watch-support.js';

/** The key pciback writes on an unrecoverable AER error. */
export const AER_STATE_KEY = 'aerState';

/** Its value (`xenbus_printf(…, "aerState", "aerfail")`). */
export const AER_STATE_FAILED = 'aerfail';

/** Options of {@link watchAerFailures}. */
export interface WatchAerFailuresOptions {
  /**
   * The backend domain whose `backend/pci` to watch (default 0, where Linux pciback
   * hard-codes its write). A driver domain writes its own tree, so it can ask for the
   * destruction of any domain it serves: only watch backends you trust that far.
   */
  readonly backendDomid?: number;
  /**
   * Destroy the guest (`xl destroy`). Called at most once per failure; when it throws or
   * rejects, the failure is logged and the next change under that guest's backend
   * directory tries again.
   */
  destroyDomain(domid: number, reason: string): void | Promise<void>;
  /** Diagnostics (default: silent). */
  readonly logger?: Logger;
}

/** A running watch from {@link watchAerFailures}. */
export interface AerFailureWatch {
  /**
   * Remove the watch and wait for the checks (and `destroyDomain` calls) already under
   * way. Idempotent.
   */
  close(): Promise<void>;
}

/** A domid as pciback writes it in a path (`%d`), below DOMID_FIRST_RESERVED (0x7ff0). */
function parseDomidSegment(text: string): number | undefined {
  if (!/^(?:0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const domid = Number(text);
  return domid < 0x7ff0 ? domid : undefined;
}

async function readOptional(client: XsClient, path: string): Promise<string | undefined> {
  try {
    return await client.readString(path);
  } catch (e) {
    if (isXsError(e, 'ENOENT')) return undefined;
    throw e;
  }
}

let tokenCounter = 0;

/**
 * Watch `/local/domain/<backendDomid>/backend/pci` and call `destroyDomain(domid, reason)`
 * when `<domid>/0/aerState` reads `aerfail`, including a failure recorded before the watch
 * started. The domid comes from the path and is checked: a canonical decimal domain id,
 * not the backend domain itself, and the directory's `frontend-id` must name the same
 * domain. One failure triggers one call; the key must stop reading `aerfail` (rewritten,
 * removed, or the backend directory removed) before a new `aerfail` counts again.
 *
 * @throws {RangeError} for a bad `backendDomid`.
 * @throws {XsError} when the watch cannot be set.
 * @example
 * const aer = await watchAerFailures(xs, {
 *   destroyDomain: (domid, reason) => destroyGuest(domid, reason),
 * });
 * // ...
 * await aer.close();
 */
export async function watchAerFailures(
  client: XsClient,
  options: WatchAerFailuresOptions,
): Promise<AerFailureWatch> {
  const backendDomid = backendDomidOption(options.backendDomid, 'watch for AER failures');
  const logger = options.logger ?? SILENT_LOGGER;
  const root = `/local/domain/${backendDomid}/backend/pci`;
  const token = `pciback-ts-aer-${++tokenCounter}`;
  /** Guests whose current failure was acted on. */
  const handled = new Set<number>();
  let closed = false;
  // One check at a time: a check reads, then decides; overlapping ones could act twice.
  let queue: Promise<void> = Promise.resolve();

  const enqueue = (job: () => Promise<void>): void => {
    queue = queue.then(job).catch((e: unknown) => {
      logger.error({ err: e, root }, `Cannot check "${root}" for AER failures`);
    });
  };

  const check = async (domid: number): Promise<void> => {
    if (closed) return;
    const dir = pciBackendPath(domid, backendDomid);
    const key = `${dir}/${AER_STATE_KEY}`;
    const value = await readOptional(client, key);
    if (value !== AER_STATE_FAILED) {
      handled.delete(domid);
      return;
    }
    if (handled.has(domid)) return;
    if (domid === backendDomid) {
      logger.warn({ key }, `Ignoring "${key}": domain ${domid} is the backend domain itself`);
      return;
    }
    const frontendId = await readOptional(client, `${dir}/frontend-id`);
    if (frontendId !== String(domid)) {
      logger.warn(
        { key, frontendId },
        `Ignoring "${key}": the directory's frontend-id is ${frontendId === undefined ? 'missing' : `"${frontendId}"`}, not "${domid}"`,
      );
      return;
    }
    handled.add(domid);
    const reason = `Destroying domain ${domid}: its PCI backend wrote "${key}" = "${AER_STATE_FAILED}" (a passed-through device failed PCIe AER recovery)`;
    logger.warn({ domid, key }, reason);
    try {
      await options.destroyDomain(domid, reason);
    } catch (e) {
      handled.delete(domid);
      logger.error({ err: e, domid }, `Cannot destroy domain ${domid} after an AER failure`);
    }
  };

  const scan = async (): Promise<void> => {
    if (closed) return;
    let entries: string[];
    try {
      entries = await client.directory(root);
    } catch (e) {
      if (!isXsError(e, 'ENOENT')) throw e;
      entries = [];
    }
    const present = new Set<number>();
    for (const entry of entries) {
      const domid = parseDomidSegment(entry);
      if (domid === undefined) {
        logger.debug({ entry }, `Ignoring "${root}/${entry}": not a domain id`);
        continue;
      }
      present.add(domid);
      await check(domid);
    }
    for (const domid of handled) if (!present.has(domid)) handled.delete(domid);
  };

  const route = (path: string): void => {
    if (closed) return;
    if (!path.startsWith(`${root}/`)) {
      // The root itself (initial event, creation, removal) or an ancestor's removal.
      enqueue(scan);
      return;
    }
    const parts = path.slice(root.length + 1).split('/');
    const first = parts[0] ?? '';
    const relevant =
      parts.length === 1 ||
      (parts[1] === '0' &&
        (parts.length === 2 || (parts.length === 3 && parts[2] === AER_STATE_KEY)));
    if (!relevant) return;
    const domid = parseDomidSegment(first);
    if (domid === undefined) {
      logger.debug({ path }, `Ignoring a change at "${path}": "${first}" is not a domain id`);
      return;
    }
    enqueue(() => check(domid));
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
