// SPDX-License-Identifier: MIT
/**
 * Naming a domain as xl does (`libxl_name_to_domid`): a decimal domid, or the name found
 * in `/local/domain/<domid>/name`. The toolstack only has xenstore here, so a domain
 * "exists" when its `/local/domain/<domid>` directory does.
 */
import { PcibackError } from '../errors.js';
import { isXsError, type XsClient } from '../xenstore/client/index.js';

/** A resolved domain. */
export interface DomainRef {
  readonly domid: number;
  /** `/local/domain/<domid>/name`, or `domain-<domid>` when it has none. */
  readonly name: string;
}

const DOMID_TEXT = /^(0|[1-9][0-9]{0,4})$/;
/** DOMID_FIRST_RESERVED (0x7ff0): ids from here are not domains. */
const DOMID_LIMIT = 0x7ff0;

async function readName(client: XsClient, domid: number): Promise<string | undefined> {
  try {
    return await client.readString(`/local/domain/${domid}/name`);
  } catch (err) {
    if (isXsError(err, 'ENOENT')) return undefined;
    throw err;
  }
}

async function exists(client: XsClient, path: string): Promise<boolean> {
  try {
    await client.directory(path);
    return true;
  } catch (err) {
    if (isXsError(err, 'ENOENT')) return false;
    throw err;
  }
}

/**
 * Resolve `text` (a domid or a domain name) against the store.
 *
 * @throws {PcibackError} `NO_SUCH_DOMAIN` naming what was looked for.
 *
 * @example
 * await resolveDomain(xs, 'guest1'); // { domid: 1, name: 'guest1' }
 */
export async function resolveDomain(client: XsClient, text: string): Promise<DomainRef> {
  if (DOMID_TEXT.test(text)) {
    const domid = Number(text);
    if (domid < DOMID_LIMIT && (await exists(client, `/local/domain/${domid}`))) {
      return { domid, name: (await readName(client, domid)) ?? `domain-${domid}` };
    }
    throw new PcibackError('NO_SUCH_DOMAIN', `Cannot find domain ${domid}: it does not exist`);
  }
  let ids: string[] = [];
  try {
    ids = await client.directory('/local/domain');
  } catch (err) {
    if (!isXsError(err, 'ENOENT')) throw err;
  }
  for (const id of ids) {
    if (!DOMID_TEXT.test(id)) continue;
    const domid = Number(id);
    if ((await readName(client, domid)) === text) return { domid, name: text };
  }
  throw new PcibackError(
    'NO_SUCH_DOMAIN',
    `Cannot find domain "${text}": no domain has that name (give a name or a domid)`,
  );
}
