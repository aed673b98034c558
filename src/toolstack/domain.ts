// SPDX-License-Identifier: MIT
/**
 * A domain's life in xenstore as libxl leaves it (`libxl__domain_make`,
 * `libxl__destroy_domid`): the home `/local/domain/<domid>` with the directories a PV
 * guest expects, INTRODUCE so the daemon serves the guest's ring, and on destroy the
 * device trees, RELEASE and the home removed.
 *
 * Permissions follow libxl: the home, `device`, `control` and `name` are dom0's and
 * readable by the guest (`roperm`); `data`, `drivers`, `feature`, `attr` and `error` are the
 * guest's (`rwperm`), so a frontend can report `error/<nodename>/error` itself.
 */
import { isXsError, type XsClient } from '../xenstore/client/index.js';
import type { XsPermission } from '../xenstore/protocol/index.js';
import { libxlPciPath, listPci, pciBackendPath, pciFrontendPath } from './attach.js';

/** Directories of the home that the guest owns (libxl `rwperm`). */
export const GUEST_WRITABLE_DIRS = ['data', 'drivers', 'feature', 'attr', 'error'] as const;
/** Directories of the home that dom0 owns and the guest reads (libxl `roperm`). */
export const GUEST_READONLY_DIRS = ['device', 'control'] as const;

/** What {@link createDomainNodes} needs. */
export interface DomainNodes {
  readonly domid: number;
  readonly name: string;
  /** The xenstore ring's guest frame and the guest's unbound port for it (start_info). */
  readonly store: { readonly gfn: number; readonly port: number };
}

function roPerm(domid: number): XsPermission[] {
  return [
    { letter: 'n', domid: 0 },
    { letter: 'r', domid },
  ];
}

function rwPerm(domid: number): XsPermission[] {
  return [
    { letter: 'n', domid },
    { letter: 'r', domid: 0 },
  ];
}

/**
 * Create the guest's home in one transaction, then introduce the domain, in libxl's order.
 * The daemon must know that the domain exists before it is introduced (C asks the
 * hypervisor; `XenStore`'s `domainExists` option does the same), or the guest-owned
 * directories are refused with ENOENT.
 *
 * @example
 * await createDomainNodes(xs, { domid: 3, name: 'web', store: { gfn: 0, port: 1 } });
 */
export async function createDomainNodes(client: XsClient, nodes: DomainNodes): Promise<void> {
  const { domid, name } = nodes;
  const home = `/local/domain/${domid}`;
  await client.transaction(async (tx) => {
    await tx.mkdir(home);
    await tx.setPerms(home, roPerm(domid));
    for (const dir of GUEST_READONLY_DIRS) {
      await tx.mkdir(`${home}/${dir}`);
      await tx.setPerms(`${home}/${dir}`, roPerm(domid));
    }
    for (const dir of GUEST_WRITABLE_DIRS) {
      await tx.mkdir(`${home}/${dir}`);
      await tx.setPerms(`${home}/${dir}`, rwPerm(domid));
    }
    await tx.write(`${home}/name`, name);
    await tx.write(`${home}/domid`, String(domid));
    await tx.write(`/vm/${domid}/name`, name);
  });
  await client.introduce(domid, { gfn: nodes.store.gfn, port: nodes.store.port });
}

async function readOptional(client: XsClient, path: string): Promise<string | undefined> {
  try {
    return await client.readString(path);
  } catch (err) {
    if (isXsError(err, 'ENOENT')) return undefined;
    throw err;
  }
}

async function rmOptional(client: XsClient, path: string): Promise<void> {
  try {
    await client.rm(path);
  } catch (err) {
    if (!isXsError(err, 'ENOENT')) throw err;
  }
}

/**
 * Forget the domain: remove its PCI backend and frontend trees first (pciback then
 * releases and resets the devices), RELEASE it, then remove its home and `/vm` entry.
 * Tolerates a domain that was never introduced or is half gone.
 */
export async function destroyDomainNodes(
  client: XsClient,
  domid: number,
  options: { readonly backendDomid?: number } = {},
): Promise<void> {
  const be = pciBackendPath(domid, options.backendDomid ?? 0);
  // libxl's per-device record of the owner goes with the domain (as pci_remove does).
  for (const row of await listPci(client, domid, options)) {
    const record = `${libxlPciPath(row.address)}/domid`;
    if ((await readOptional(client, record)) === String(domid)) await rmOptional(client, record);
  }
  await rmOptional(client, be.slice(0, be.lastIndexOf('/')));
  await rmOptional(client, pciFrontendPath(domid));
  try {
    await client.release(domid);
  } catch (err) {
    if (!isXsError(err, 'ENOENT') && !isXsError(err, 'EINVAL')) throw err;
  }
  await rmOptional(client, `/local/domain/${domid}`);
  await rmOptional(client, `/vm/${domid}`);
  await rmOptional(client, `/local/domain/${options.backendDomid ?? 0}/error/backend/pci/${domid}`);
}
