// SPDX-License-Identifier: MIT
/**
 * The xenstore side of `xl pci-attach` / `pci-detach` / `pci-list` (spec/peers.md §1.3,
 * spec/pciback.md §7.1, §7.5): libxl's `libxl__device_pci_add_xenstore`,
 * `libxl__device_pci_remove_xenstore` and `libxl_device_pci_list`, key for key.
 *
 * Deviations from libxl, each deliberate:
 * - `/libxl/pci/<bdf>/domid` is written in the same transaction as the device keys
 *   (libxl writes it just before), so a failed attach leaves nothing behind.
 * - The last detach removes both trees in the second remove transaction instead of a
 *   separate `libxl__device_destroy` transaction right after it; the end state is the same.
 * - Not written: libxl's own `/libxl/<D>/device/pci/0` copy and the domain userdata
 *   config, which §1.3 does not lay out. Wildcard functions (`BB:DD.*`) are refused:
 *   they need the host's sysfs (§1.3 step 8).
 */
import { XENBUS_STATE } from '../abi/index.js';
import { PcibackError } from '../errors.js';
import { PciAddress } from '../pci/index.js';
import { isXsError, type XsClient, type XsTransaction } from '../xenstore/client/index.js';
import type { XsPermission } from '../xenstore/protocol/index.js';
import {
  PCI_FUNC_WILDCARD,
  formatBdf,
  isRdmPolicy,
  type PciSpec,
  type RdmPolicy,
} from './pci-spec.js';

/** How long libxl waits for the backend to be Connected (`LIBXL_INIT_TIMEOUT`, 10 s). */
export const PCI_BACKEND_WAIT_MS = 10_000;

/** Keys libxl keeps per device index in the backend directory (renumbered on detach). */
export const PCI_BACKEND_INDEXED_KEYS = [
  'state',
  'key',
  'dev',
  'vdev',
  'opts',
  'vdevfn',
  'name',
] as const;

/** `/local/domain/<backendDomid>/backend/pci/<domid>/0` (libxl's devid is always 0). */
export function pciBackendPath(domid: number, backendDomid = 0): string {
  return `/local/domain/${backendDomid}/backend/pci/${domid}/0`;
}

/** `/local/domain/<domid>/device/pci/0`. */
export function pciFrontendPath(domid: number): string {
  return `/local/domain/${domid}/device/pci/0`;
}

/** `/libxl/pci/<DDDD-BB-DD-F>`: note the dashes (`%04x-%02x-%02x-%01x`, peers.md §1.1). */
export function libxlPciPath(address: PciAddress): string {
  return `/libxl/pci/${address.toString().replace(/[:.]/g, '-')}`;
}

/** Options of {@link attachPci}. */
export interface AttachPciOptions {
  /** The guest. */
  readonly domid: number;
  /** The guest's name, written to the backend's `domain`. */
  readonly domainName: string;
  readonly spec: PciSpec;
  /** Domain of the backend (libxl: always 0). */
  readonly backendDomid?: number;
  /** Domain creation (`starting`): append without switching the backend to Reconfiguring. */
  readonly starting?: boolean;
  /**
   * Wait for the backend to be Connected before a hot add (libxl does for PV guests;
   * default true). Ignored for the first device and when `starting`.
   */
  readonly waitForConnected?: boolean;
  /** Bound of that wait (default {@link PCI_BACKEND_WAIT_MS}). */
  readonly timeoutMs?: number;
  /** EAGAIN retries of the transaction (default: the client's). */
  readonly maxRetries?: number;
  /**
   * On a running domain (not `starting`), wait until pciback has exported the device
   * (`state-N` = 3; backend Connected again after a hot add, Initialised for the first
   * device) and fail with pciback's own error text when it refused it (backend Closing,
   * `error/.../error`). Beyond libxl, which returns without knowing; default false.
   */
  readonly confirm?: boolean;
}

/** What {@link attachPci} did. */
export interface AttachPciResult {
  /** The device's index `N` in the backend directory. */
  readonly index: number;
  /** The host address attached. */
  readonly address: PciAddress;
  /** True when the backend already existed (hot add). */
  readonly hotplug: boolean;
}

/** Options of {@link detachPci}. */
export interface DetachPciOptions {
  readonly domid: number;
  /** The host device, as `[DDDD:]BB:DD.F` or a {@link PciAddress}. */
  readonly bdf: string | PciAddress;
  readonly backendDomid?: number;
  /** Wait for Connected before and after the Closing step (libxl does for PV; default true). */
  readonly waitForConnected?: boolean;
  readonly timeoutMs?: number;
  readonly maxRetries?: number;
}

/** What {@link detachPci} did. */
export interface DetachPciResult {
  /** The index the device had. */
  readonly index: number;
  /** True when it was the last device and both trees were removed. */
  readonly removedBackend: boolean;
}

/** One device of {@link listPci}, rebuilt from the backend directory as libxl does. */
export interface PciListRow {
  readonly index: number;
  readonly address: PciAddress;
  /** `vdevfn-N` (hex), 0 when absent. */
  readonly vdevfn: number;
  readonly name: string | null;
  readonly permissive: boolean;
  readonly msitranslate: boolean;
  readonly power_mgmt: boolean;
  readonly rdm_policy: RdmPolicy;
}

function pciError(code: string, message: string, cause?: unknown): PcibackError {
  return cause === undefined
    ? new PcibackError(code, message)
    : new PcibackError(code, message, { cause });
}

function checkDomid(domid: number, what: string): void {
  // DOMID_FIRST_RESERVED is 0x7ff0.
  if (!Number.isInteger(domid) || domid < 0 || domid >= 0x7ff0) {
    throw new RangeError(`Cannot use ${what} ${domid}: it is not a domain id (0 to 0x7fef)`);
  }
}

type Reader = Pick<XsTransaction, 'readString'> | Pick<XsClient, 'readString'>;

async function readOptional(xs: Reader, path: string): Promise<string | undefined> {
  try {
    return await xs.readString(path);
  } catch (e) {
    if (isXsError(e, 'ENOENT')) return undefined;
    throw e;
  }
}

async function rmOptional(tx: XsTransaction, path: string): Promise<void> {
  try {
    await tx.rm(path);
  } catch (e) {
    if (!isXsError(e, 'ENOENT')) throw e;
  }
}

/** `atoi` of `num_devs`, as libxl reads it. */
function parseCount(text: string): number {
  const n = Number.parseInt(text.trim(), 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** `sscanf(dev-i, "%x:%x:%x.%x")`; null when it does not parse. */
function parseDev(text: string | undefined): PciAddress | null {
  if (text === undefined) return null;
  try {
    return PciAddress.parse(text);
  } catch {
    return null;
  }
}

async function findDevice(
  xs: Reader,
  be: string,
  num: number,
  address: PciAddress,
): Promise<number> {
  for (let i = 0; i < num; i++) {
    if (parseDev(await readOptional(xs, `${be}/dev-${i}`))?.equals(address) === true) return i;
  }
  return -1;
}

/** The `opts-N` value libxl writes. */
function formatOpts(spec: PciSpec): string {
  const b = (v: boolean): number => (v ? 1 : 0);
  return (
    `msitranslate=${b(spec.msitranslate)},power_mgmt=${b(spec.power_mgmt)},` +
    `permissive=${b(spec.permissive)},rdm_policy=${spec.rdm_policy}`
  );
}

async function writeDeviceKeys(
  tx: XsTransaction,
  be: string,
  n: number,
  address: PciAddress,
  spec: PciSpec,
): Promise<void> {
  const bdf = address.toString();
  await tx.write(`${be}/key-${n}`, bdf);
  await tx.write(`${be}/dev-${n}`, bdf);
  if (spec.vdevfn !== null && spec.vdevfn !== 0) {
    await tx.write(`${be}/vdevfn-${n}`, spec.vdevfn.toString(16));
  }
  if (spec.name !== null) await tx.write(`${be}/name-${n}`, spec.name);
  await tx.write(`${be}/opts-${n}`, formatOpts(spec));
  await tx.write(`${be}/state-${n}`, String(XENBUS_STATE.Initialising));
}

/** libxl's `name2bdf`: scan every `/libxl/pci/<bdf>/name`. */
async function resolveName(client: XsClient, name: string): Promise<PciAddress> {
  let entries: string[];
  try {
    entries = await client.directory('/libxl/pci');
  } catch (e) {
    if (!isXsError(e, 'ENOENT')) throw e;
    entries = [];
  }
  for (const entry of entries) {
    if ((await readOptional(client, `/libxl/pci/${entry}/name`)) !== name) continue;
    const address = parseDev(entry.replace(/^(\w+)-(\w+)-(\w+)-(\w+)$/, '$1:$2:$3.$4'));
    if (address !== null) return address;
  }
  throw pciError(
    'PCI_NAME_NOT_FOUND',
    `Cannot attach PCI device named "${name}": no assignable device has that name`,
  );
}

/**
 * Wait until `<backendPath>/state` reads `want` (libxl's `libxl__wait_for_backend`).
 *
 * @throws {PcibackError} `PCI_BACKEND_MISSING` when the backend has no `state`,
 *   `PCI_BACKEND_TIMEOUT` after `timeoutMs`.
 */
export async function waitForBackendState(
  client: XsClient,
  backendPath: string,
  want: number,
  timeoutMs: number = PCI_BACKEND_WAIT_MS,
): Promise<void> {
  const path = `${backendPath}/state`;
  let last = '';
  await waitUntil(
    client,
    path,
    async () => {
      let value: string | undefined;
      try {
        value = await readOptional(client, path);
      } catch (e) {
        throw pciError('PCI_BACKEND_READ', `Cannot read "${path}"`, e);
      }
      if (value === undefined) {
        throw pciError(
          'PCI_BACKEND_MISSING',
          `Cannot use PCI backend "${backendPath}": it does not exist`,
        );
      }
      last = value;
      return parseCount(value) === want;
    },
    timeoutMs,
    () =>
      pciError(
        'PCI_BACKEND_TIMEOUT',
        `Cannot use PCI backend "${backendPath}": its state stayed "${last}", not ${want}, for ${timeoutMs} ms`,
      ),
  );
}
let waitCounter = 0;

/**
 * Attach one PCI device to domain `domid` in xenstore, as libxl does (peers.md §1.3).
 *
 * The first device creates the frontend directory (perms: guest owner, backend read)
 * and the backend directory (perms: backend owner, guest read), each removed first, with
 * `key-0`, `dev-0`, `vdevfn-0` (hex, only when != 0), `name-0` (only when named),
 * `opts-0`, `state-0=1`, `num_devs=1`. A later device (hot add) waits for the backend to be
 * Connected, then appends `*-N`, bumps `num_devs` and sets the backend `state=7`. Every
 * write of one attach, with `/libxl/pci/<bdf>/domid`, is in one transaction retried on
 * EAGAIN.
 *
 * @throws {PcibackError} `PCI_ALREADY_ATTACHED` when the device is listed for the domain,
 *   `PCI_ASSIGNED_ELSEWHERE` when `/libxl/pci/<bdf>/domid` names another domain,
 *   `PCI_NAME_NOT_FOUND`, `PCI_BACKEND_TIMEOUT`.
 * @throws {RangeError} for a wildcard function or a bad domid.
 *
 * @example
 * await attachPci(xs, { domid: 5, domainName: 'guest', spec: parsePciSpec('03:00.0@08') });
 */
export async function attachPci(
  client: XsClient,
  options: AttachPciOptions,
): Promise<AttachPciResult> {
  const { domid, domainName, spec } = options;
  const backendDomid = options.backendDomid ?? 0;
  checkDomid(domid, 'guest domain');
  checkDomid(backendDomid, 'backend domain');
  if (domid === backendDomid) {
    throw new RangeError(`Cannot attach a PCI device to domain ${domid}: it is the backend domain`);
  }
  if (domainName.length === 0)
    throw new RangeError('Cannot attach a PCI device: the domain name is empty');
  if (!isRdmPolicy(spec.rdm_policy))
    throw new RangeError(`Cannot attach a PCI device: bad rdm_policy`);
  let address: PciAddress;
  if (spec.bdf === null) {
    address = await resolveName(client, spec.name);
  } else {
    const bdf = spec.bdf;
    if (bdf.func === PCI_FUNC_WILDCARD) {
      throw new RangeError(
        `Cannot attach PCI device "${formatBdf(bdf)}" to domain ${domid}: every-function attach needs the host's sysfs, attach each function`,
      );
    }
    address = new PciAddress(bdf.domain, bdf.bus, bdf.dev, bdf.func);
  }
  const bdfText = address.toString();
  const be = pciBackendPath(domid, backendDomid);
  const fe = pciFrontendPath(domid);
  const starting = options.starting === true;

  const existing = await readOptional(client, `${be}/num_devs`);
  if (existing !== undefined && !starting && options.waitForConnected !== false) {
    await waitForBackendState(client, be, XENBUS_STATE.Connected, options.timeoutMs);
  }

  const txOptions = options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries };
  const result = await client.transaction(async (tx) => {
    const owner = await readOptional(tx, `${libxlPciPath(address)}/domid`);
    if (owner !== undefined && owner !== String(domid)) {
      throw pciError(
        'PCI_ASSIGNED_ELSEWHERE',
        `Cannot attach PCI device "${bdfText}" to domain ${domid}: it is attached to domain ${owner}`,
      );
    }
    const numText = await readOptional(tx, `${be}/num_devs`);
    let index: number;
    if (numText !== undefined) {
      const num = parseCount(numText);
      if ((await findDevice(tx, be, num, address)) >= 0) {
        throw pciError(
          'PCI_ALREADY_ATTACHED',
          `Cannot attach PCI device "${bdfText}" to domain ${domid}: it is already attached to it`,
        );
      }
      index = num;
      await writeDeviceKeys(tx, be, index, address, spec);
      await tx.write(`${be}/num_devs`, String(num + 1));
      if (!starting) await tx.write(`${be}/state`, String(XENBUS_STATE.Reconfiguring));
    } else {
      index = 0;
      const fePerms: XsPermission[] = [
        { letter: 'n', domid },
        { letter: 'r', domid: backendDomid },
      ];
      const bePerms: XsPermission[] = [
        { letter: 'n', domid: backendDomid },
        { letter: 'r', domid },
      ];
      await rmOptional(tx, fe);
      await tx.mkdir(fe);
      await tx.setPerms(fe, fePerms);
      await tx.write(`${fe}/backend`, be);
      await tx.write(`${fe}/backend-id`, String(backendDomid));
      await tx.write(`${fe}/state`, String(XENBUS_STATE.Initialising));
      await rmOptional(tx, be);
      await tx.mkdir(be);
      await tx.setPerms(be, bePerms);
      await tx.write(`${be}/frontend`, fe);
      await tx.write(`${be}/frontend-id`, String(domid));
      await tx.write(`${be}/online`, '1');
      await tx.write(`${be}/state`, String(XENBUS_STATE.Initialising));
      await tx.write(`${be}/domain`, domainName);
      await writeDeviceKeys(tx, be, 0, address, spec);
      await tx.write(`${be}/num_devs`, '1');
    }
    await tx.write(`${libxlPciPath(address)}/domid`, String(domid));
    return { index, address, hotplug: numText !== undefined };
  }, txOptions);
  if (options.confirm === true && !starting) {
    await waitForExport(
      client,
      { domid, backendDomid, index: result.index, bdfText },
      options.timeoutMs,
    );
  }
  return result;
}

/**
 * Wait for pciback to settle after an add to a running domain: `state-<index>` = 3 with
 * the device Connected (a hot add) or Initialised (the domain's first device: exported,
 * whether or not a pcifront ever connects) is success; Closing or Closed is its refusal,
 * reported with the text it wrote to `/local/domain/<be>/error/backend/pci/<domid>/0/error`.
 */
async function waitForExport(
  client: XsClient,
  target: { domid: number; backendDomid: number; index: number; bdfText: string },
  timeoutMs: number = PCI_BACKEND_WAIT_MS,
): Promise<void> {
  const be = pciBackendPath(target.domid, target.backendDomid);
  const errorNode = `/local/domain/${target.backendDomid}/error/backend/pci/${target.domid}/0/error`;
  let lastState: number | undefined;
  const settled = async (): Promise<boolean> => {
    const state = parseCount((await readOptional(client, `${be}/state`)) ?? '');
    lastState = state;
    if (state === XENBUS_STATE.Connected || state === XENBUS_STATE.Initialised) {
      return (await readOptional(client, `${be}/state-${target.index}`)) === '3';
    }
    if (state === XENBUS_STATE.Closing || state === XENBUS_STATE.Closed) {
      const why = (await readOptional(client, errorNode)) ?? `its state is ${state}`;
      throw pciError(
        'PCI_BACKEND_REFUSED',
        `Cannot attach PCI device "${target.bdfText}" to domain ${target.domid}: pciback refused it: ${why}`,
      );
    }
    return false;
  };
  await waitUntil(client, be, settled, timeoutMs, () =>
    pciError(
      'PCI_BACKEND_TIMEOUT',
      `Cannot confirm PCI device "${target.bdfText}" on domain ${target.domid}: ` +
        (lastState === XENBUS_STATE.Initialising
          ? `no PCI backend took "${be}" within ${timeoutMs} ms (its state is still 1): is pciback running for this xenstore? The device stays written there`
          : `pciback did not export it within ${timeoutMs} ms`),
    ),
  );
}

/** Re-check `settled` on every change under `path` until it says true, throws, or time runs out. */
async function waitUntil(
  client: XsClient,
  path: string,
  settled: () => Promise<boolean>,
  timeoutMs: number,
  timeoutError: () => PcibackError,
): Promise<void> {
  const token = `pciback-ts-wait-${++waitCounter}`;
  await new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.unwatch(path, token).catch(() => undefined);
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error('Cannot wait for the backend'));
    };
    const timer = setTimeout(() => {
      finish(timeoutError());
    }, timeoutMs);
    client
      .watch(path, token, () => {
        settled().then(
          (ok) => {
            if (ok) finish();
          },
          (e: unknown) => {
            finish(e);
          },
        );
      })
      .catch((e: unknown) => {
        finish(pciError('PCI_BACKEND_READ', `Cannot watch "${path}"`, e));
      });
  });
}

/** libxl's `libxl__xs_path_cleanup`: remove `path`, then its parents while empty. */
async function pathCleanup(tx: XsTransaction, path: string, stopAt: string): Promise<void> {
  await rmOptional(tx, path);
  let parent = path.slice(0, path.lastIndexOf('/'));
  while (parent.length > stopAt.length && parent.startsWith(`${stopAt}/`)) {
    let children: string[];
    try {
      children = await tx.directory(parent);
    } catch (e) {
      if (!isXsError(e, 'ENOENT')) throw e;
      children = [];
    }
    if (children.length > 0) break;
    await rmOptional(tx, parent);
    parent = parent.slice(0, parent.lastIndexOf('/'));
  }
}

/**
 * Detach one PCI device from domain `domid` in xenstore, as libxl does (peers.md §1.3):
 * one transaction sets `state-i=5` and the backend `state=7`; after the backend is
 * Connected again a second one deletes the `*-i` keys, renames every `*-j` (j > i) to
 * `*-(j-1)` so indexes stay dense, writes `num_devs`, and deletes
 * `/libxl/pci/<bdf>/domid`. The last device removes both trees instead.
 *
 * @throws {PcibackError} `PCI_NOT_ATTACHED`, `PCI_BACKEND_TIMEOUT`.
 */
export async function detachPci(
  client: XsClient,
  options: DetachPciOptions,
): Promise<DetachPciResult> {
  const { domid } = options;
  const backendDomid = options.backendDomid ?? 0;
  checkDomid(domid, 'guest domain');
  checkDomid(backendDomid, 'backend domain');
  const address = typeof options.bdf === 'string' ? PciAddress.parse(options.bdf) : options.bdf;
  const bdfText = address.toString();
  const be = pciBackendPath(domid, backendDomid);
  const fe = pciFrontendPath(domid);
  const wait = options.waitForConnected !== false;
  const txOptions = options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries };
  const notAttached = (): PcibackError =>
    pciError(
      'PCI_NOT_ATTACHED',
      `Cannot detach PCI device "${bdfText}" from domain ${domid}: it is not attached to it`,
    );

  if ((await readOptional(client, `${be}/num_devs`)) === undefined) throw notAttached();
  if (wait) await waitForBackendState(client, be, XENBUS_STATE.Connected, options.timeoutMs);

  await client.transaction(async (tx) => {
    const i = await findDevice(
      tx,
      be,
      parseCount((await readOptional(tx, `${be}/num_devs`)) ?? ''),
      address,
    );
    if (i < 0) throw notAttached();
    await tx.write(`${be}/state-${i}`, String(XENBUS_STATE.Closing));
    await tx.write(`${be}/state`, String(XENBUS_STATE.Reconfiguring));
  }, txOptions);

  if (wait) await waitForBackendState(client, be, XENBUS_STATE.Connected, options.timeoutMs);

  return client.transaction(async (tx) => {
    const num = parseCount((await readOptional(tx, `${be}/num_devs`)) ?? '');
    // Re-find: another detach may have renumbered the devices meanwhile.
    const i = await findDevice(tx, be, num, address);
    if (i < 0) throw notAttached();
    await rmOptional(tx, `${libxlPciPath(address)}/domid`);
    if (num <= 1) {
      await pathCleanup(tx, fe, `/local/domain/${domid}`);
      await pathCleanup(tx, be, `/local/domain/${backendDomid}`);
      return { index: i, removedBackend: true };
    }
    for (const key of PCI_BACKEND_INDEXED_KEYS) await rmOptional(tx, `${be}/${key}-${i}`);
    for (let j = i + 1; j < num; j++) {
      for (const key of PCI_BACKEND_INDEXED_KEYS) {
        const value = await readOptional(tx, `${be}/${key}-${j}`);
        if (value === undefined) continue;
        await tx.write(`${be}/${key}-${j - 1}`, value);
        await tx.rm(`${be}/${key}-${j}`);
      }
    }
    await tx.write(`${be}/num_devs`, String(num - 1));
    return { index: i, removedBackend: false };
  }, txOptions);
}

/** libxl's `opts-N` reader: split on `,` and `=`, leading spaces skipped. */
function parseOpts(
  text: string | undefined,
): Omit<PciListRow, 'index' | 'address' | 'vdevfn' | 'name'> {
  let permissive = false;
  let msitranslate = false;
  let power_mgmt = false;
  let rdm_policy: RdmPolicy = 'strict';
  for (const item of (text ?? '').split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const key = item.slice(0, eq).replace(/^ +/, '');
    const value = item.slice(eq + 1);
    const flag = Number.parseInt(value, 10) > 0;
    if (key === 'permissive') permissive = flag;
    else if (key === 'msitranslate') msitranslate = flag;
    else if (key === 'power_mgmt') power_mgmt = flag;
    else if (key === 'rdm_policy' && isRdmPolicy(value)) rdm_policy = value;
  }
  return { permissive, msitranslate, power_mgmt, rdm_policy };
}

/**
 * The slot pciback chose (`vdev-N` = `DDDD:BB:SS.FF`) as a devfn, 0 when absent or not in
 * that form. libxl shows 0 without `vdevfn-N`; showing where the guest really sees the
 * device is more useful and reads the same for devices that did ask for a slot.
 */
function vdevfnOfVdev(text: string | undefined): number {
  const m = /^[0-9a-f]{4}:[0-9a-f]{2}:([0-9a-f]{2})\.([0-9a-f]{1,2})$/i.exec(text ?? '');
  if (m === null) return 0;
  const slot = Number.parseInt(m[1] ?? '', 16);
  const fn = Number.parseInt(m[2] ?? '', 16);
  return slot < 32 && fn < 8 ? (slot << 3) | fn : 0;
}

/**
 * The devices of domain `domid`, rebuilt from its backend directory as libxl's
 * `libxl_device_pci_list` does (`num_devs`, `dev-i`, `vdevfn-i`, `name-i`, `opts-i`).
 * An index whose `dev-i` does not parse is skipped. No backend: `[]`.
 */
export async function listPci(
  client: XsClient,
  domid: number,
  options: { readonly backendDomid?: number } = {},
): Promise<PciListRow[]> {
  checkDomid(domid, 'guest domain');
  const be = pciBackendPath(domid, options.backendDomid ?? 0);
  const num = parseCount((await readOptional(client, `${be}/num_devs`)) ?? '');
  const rows: PciListRow[] = [];
  for (let i = 0; i < num; i++) {
    const address = parseDev(await readOptional(client, `${be}/dev-${i}`));
    if (address === null) continue;
    const vdevfnText = await readOptional(client, `${be}/vdevfn-${i}`);
    const vdevfn =
      vdevfnText === undefined
        ? vdevfnOfVdev(await readOptional(client, `${be}/vdev-${i}`))
        : Number.parseInt(vdevfnText, 16) & 0xff;
    const name = (await readOptional(client, `${be}/name-${i}`)) ?? null;
    const opts = parseOpts(await readOptional(client, `${be}/opts-${i}`));
    rows.push({ index: i, address, vdevfn: Number.isNaN(vdevfn) ? 0 : vdevfn, name, ...opts });
  }
  return rows;
}

/**
 * `xl pci-list` output: the header `Vdev Device`, then `%02x.%01x %04x:%02x:%02x.%01x`
 * per device (virtual slot.function, host BDF), each line ending in `\n`. With no device
 * xl prints nothing at all (libxl returns no list), so this returns `''`.
 *
 * @example
 * formatPciList(rows); // 'Vdev Device\n08.0 0000:03:00.0\n'
 */
export function formatPciList(rows: readonly PciListRow[]): string {
  if (rows.length === 0) return '';
  const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
  const lines = rows.map(
    (r) => `${hex((r.vdevfn >> 3) & 0x1f, 2)}.${hex(r.vdevfn & 7, 1)} ${r.address.toString()}`,
  );
  return `Vdev Device\n${lines.join('\n')}\n`;
}
