// SPDX-License-Identifier: MIT
/**
 * The xenbus core for the "pci" backend type (spec §7, pciback-fixes.md P7;
 * `xenbus_probe_backend.c`, `xenbus_probe.c`): one watch on
 * `/local/domain/<be>/backend/pci`, a {@link PcibackXenbusDevice} per
 * `<feDomid>/<devid>` directory whose `state` reads exactly "1", and its removal when
 * the directory goes.
 *
 * Bus events run one at a time on a {@link SerialQueue} (the kernel's xenwatch thread);
 * each device runs its own handlers on its own queue.
 */
import {
  DOM0,
  DOMID_FIRST_RESERVED,
  domId,
  SILENT_LOGGER,
  type DeviceOwnerRegistry,
  type DomId,
  type Logger,
} from '../../platform/types.js';
import type { PciAddress } from '../../pci/index.js';
import { isXsError, type XsClient } from '../../xenstore/client/index.js';
import type { PciDeviceSource } from '../stub/device-pool.js';
import {
  DEFAULT_TOPOLOGY_KIND,
  type CreateTopologyOptions,
  type TopologyKind,
} from '../topology/index.js';
import { quoteForMessage } from './keys.js';
import { SerialQueue } from './serial-queue.js';
import type { FrontendConnector, XenbusBackendStats } from './types.js';
import { PcibackXenbusDevice } from './xenbus-device.js';

/** Options of {@link XenbusBackend}. */
export interface XenbusBackendOptions {
  /** A privileged xenstore connection of the backend domain. */
  readonly xs: XsClient;
  /** Where devices to export come from and go back to (`pci_stub.c`). */
  readonly pool: PciDeviceSource;
  /** Xen's device-owner registry (`xen_register_device_domain_owner`). */
  readonly owners: DeviceOwnerRegistry;
  /** Maps the frontend's page and binds its event channel (§7.3). */
  readonly connector: FrontendConnector;
  /** The backend domain (default 0; libxl hard-codes it). */
  readonly backendDomid?: DomId;
  /** Topology of every connection (default vpci, the module's `passthrough=0`). */
  readonly topology?: TopologyKind;
  readonly topologyOptions?: Omit<CreateTopologyOptions, 'logger'>;
  readonly logger?: Logger;
}

/** Longest xenstore path (`XENSTORE_ABS_PATH_MAX`). */
const XENSTORE_ABS_PATH_MAX = 3072;
const PATH_CHARS = /^[A-Za-z0-9_@/-]+$/;

let instances = 0;

/**
 * The "pci" backend driver on the xenbus of one backend domain.
 *
 * @example
 * const backend = new XenbusBackend({ xs, pool, owners, connector });
 * await backend.start(); // existing directories are probed, new ones as they appear
 * // ... later
 * await backend.close(); // every device removed, its PCI devices back in the pool
 */
export class XenbusBackend {
  /** The watched directory, `/local/domain/<be>/backend/pci`. */
  readonly basePath: string;
  readonly backendDomid: DomId;

  readonly #xs: XsClient;
  readonly #pool: PciDeviceSource;
  readonly #owners: DeviceOwnerRegistry;
  readonly #connector: FrontendConnector;
  readonly #topology: TopologyKind;
  readonly #topologyOptions: Omit<CreateTopologyOptions, 'logger'>;
  readonly #logger: Logger;
  readonly #queue: SerialQueue;
  readonly #token: string;
  /** Live devices by backend directory. */
  readonly #devices = new Map<string, PcibackXenbusDevice>();
  /** Every device object until its queue drained after removal (for {@link whenIdle}). */
  readonly #tracked = new Set<PcibackXenbusDevice>();
  #nextDevice = 0;
  #started = false;
  #closed = false;

  constructor(options: XenbusBackendOptions) {
    this.#xs = options.xs;
    this.#pool = options.pool;
    this.#owners = options.owners;
    this.#connector = options.connector;
    this.backendDomid = options.backendDomid ?? DOM0;
    this.#topology = options.topology ?? DEFAULT_TOPOLOGY_KIND;
    this.#topologyOptions = options.topologyOptions ?? {};
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.basePath = `/local/domain/${this.backendDomid}/backend/pci`;
    this.#token = `pciback-xenbus:${++instances}`;
    this.#queue = new SerialQueue((err, label) => {
      this.#logger.error(
        { err },
        `Cannot handle "${label}" of the pci backend bus: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
  }

  /**
   * Watch the backend directory. The watch's first event makes the bus probe every
   * directory that exists already.
   *
   * @throws {PcibackError} (an `XsError`) when the watch cannot be registered.
   * @throws {Error} when called twice or after {@link close}.
   */
  async start(): Promise<void> {
    if (this.#started || this.#closed) {
      throw new Error(`Cannot start the pci backend of domain ${this.backendDomid} twice`);
    }
    this.#started = true;
    await this.#xs.watch(this.basePath, `${this.#token}:bus`, (event) => {
      if (this.#closed) return;
      void this.#queue.run('bus event', () => this.#busChanged(event.path));
    });
  }

  /**
   * Stop: unwatch, then remove every device as driver unregistration does (each is
   * disconnected, its PCI devices go back to the pool, its state goes to Closed).
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#started) {
      try {
        await this.#xs.unwatch(this.basePath, `${this.#token}:bus`);
      } catch (err) {
        this.#logger.debug({ err }, `Cannot unwatch "${this.basePath}"`);
      }
    }
    await this.#queue.whenIdle();
    await Promise.all([...this.#devices.values()].map((d) => d.unregister()));
    await this.whenIdle();
  }

  /** Settles when neither the bus nor any device has work queued or running. */
  async whenIdle(): Promise<void> {
    for (;;) {
      await this.#queue.whenIdle();
      const devices = [...this.#tracked];
      await Promise.all(devices.map((d) => d.whenIdle()));
      for (const d of devices) if (d.removed && d.pendingJobs === 0) this.#tracked.delete(d);
      if (this.#queue.pending === 0 && [...this.#tracked].every((d) => d.pendingJobs === 0)) {
        return;
      }
    }
  }

  /** The live devices, in creation order. */
  devices(): PcibackXenbusDevice[] {
    return [...this.#devices.values()];
  }

  /** The device of `<frontendDomid>/<devid>`, if live. */
  device(frontendDomid: number, devid = 0): PcibackXenbusDevice | undefined {
    return this.#devices.get(`${this.basePath}/${frontendDomid}/${devid}`);
  }

  /**
   * The stub took `address` back from `frontendDomid` (an unbind in use): every live
   * connection of that domain drops it and reports it on its error node (see
   * {@link PcibackXenbusDevice.withdraw}). Returns true when a connection held it.
   */
  async withdraw(address: PciAddress, frontendDomid: number): Promise<boolean> {
    let held = false;
    for (const device of this.devices()) {
      if (device.frontendDomid !== frontendDomid) continue;
      if (await device.withdraw(address)) held = true;
    }
    return held;
  }

  /** A plain snapshot of every live device. */
  stats(): XenbusBackendStats {
    return {
      backendDomid: this.backendDomid,
      devices: this.devices().map((d) => d.stats()),
    };
  }

  /** `xenbus_dev_changed` for one event path. */
  async #busChanged(path: string): Promise<void> {
    if (this.#closed) return;
    const base = this.basePath;
    if (path !== base && !path.startsWith(`${base}/`)) return;
    const parts = path === base ? [] : path.slice(base.length + 1).split('/');
    const [fe, devid] = parts;
    if (fe !== undefined && devid !== undefined) {
      const root = `${base}/${fe}/${devid}`;
      const existing = this.#devices.get(root);
      if (existing !== undefined) {
        // Below a live device: that device's own watch handles it. The directory itself:
        // gone means remove.
        if (parts.length === 2 && !(await this.#exists(root))) await existing.unregister();
        return;
      }
      await this.#probeNode(root, fe, devid);
      return;
    }
    // The bus directory or a frontend's directory: enumerate when it exists (this also
    // probes what existed at start), else remove every device below it.
    if (await this.#exists(path)) {
      for (const root of await this.#listRoots(path, parts.length)) {
        if (this.#isClosed()) return;
        if (this.#devices.has(root)) continue;
        const [f, d] = root.slice(base.length + 1).split('/');
        if (f !== undefined && d !== undefined) await this.#probeNode(root, f, d);
      }
      return;
    }
    for (const [root, device] of [...this.#devices]) {
      if (root === path || root.startsWith(`${path}/`)) await device.unregister();
    }
  }

  /** The device directories below `path` (the bus dir: depth 0; a frontend's: depth 1). */
  async #listRoots(path: string, depth: number): Promise<string[]> {
    const children = await this.#directory(path);
    if (depth === 1) return children.map((c) => `${path}/${c}`);
    const roots: string[] = [];
    for (const fe of children) {
      for (const devid of await this.#directory(`${path}/${fe}`)) {
        roots.push(`${path}/${fe}/${devid}`);
      }
    }
    return roots;
  }

  /**
   * `xenbus_probe_node` + `backend_bus_id` + `talk_to_otherend`: only a directory whose
   * `state` reads exactly "1" (P7) with a valid `frontend-id` and an existing `frontend`
   * gets a device. Bad details are logged and the directory is left alone (the original
   * does not create the device either); a later change under it tries again.
   */
  async #probeNode(root: string, fe: string, devid: string): Promise<void> {
    let state: string;
    try {
      state = await this.#xs.readString(`${root}/state`);
    } catch {
      return;
    }
    if (state !== '1') return;
    let frontendIdText: string;
    let frontend: string;
    try {
      frontendIdText = await this.#xs.readString(`${root}/frontend-id`);
      frontend = await this.#xs.readString(`${root}/frontend`);
    } catch (err) {
      this.#warnProbe(root, `its frontend details cannot be read (${describe(err)})`);
      return;
    }
    const frontendDomid = parseDomid(frontendIdText);
    if (frontendDomid === undefined) {
      this.#warnProbe(
        root,
        `frontend-id "${quoteForMessage(frontendIdText)}" is not a domain id (decimal, 0..${DOMID_FIRST_RESERVED - 1})`,
      );
      return;
    }
    if (!isXenstorePath(frontend)) {
      this.#warnProbe(root, `frontend "${quoteForMessage(frontend)}" is not a xenstore path`);
      return;
    }
    if (!(await this.#exists(frontend))) {
      this.#warnProbe(root, `frontend "${frontend}" does not exist`);
      return;
    }
    const device = new PcibackXenbusDevice({
      xs: this.#xs,
      backendDomid: this.backendDomid,
      nodename: root,
      frontend,
      frontendDomid,
      pool: this.#pool,
      owners: this.#owners,
      connector: this.#connector,
      topology: this.#topology,
      topologyOptions: this.#topologyOptions,
      watchToken: `${this.#token}:${fe}/${devid}:${++this.#nextDevice}`,
      logger: this.#logger,
      onRemoved: (d) => {
        if (this.#devices.get(d.nodename) === d) this.#devices.delete(d.nodename);
      },
    });
    this.#devices.set(root, device);
    this.#tracked.add(device);
    this.#logger.info(
      { device: root, frontend, frontendDomid },
      `Probing pci backend "${root}" for domain ${frontendDomid}`,
    );
    await device.probe();
  }

  /** Re-read after each await: {@link close} may run meanwhile. */
  #isClosed(): boolean {
    return this.#closed;
  }

  #warnProbe(root: string, why: string): void {
    this.#logger.warn({ device: root }, `Cannot probe pci backend "${root}": ${why}`);
  }

  /** `xenbus_exists`; a read error other than ENOENT counts as existing (keep devices). */
  async #exists(path: string): Promise<boolean> {
    try {
      await this.#xs.read(path);
      return true;
    } catch (err) {
      if (isXsError(err, 'ENOENT')) return false;
      this.#logger.warn({ path, err }, `Cannot read "${path}": ${describe(err)}`);
      return true;
    }
  }

  async #directory(path: string): Promise<string[]> {
    try {
      return await this.#xs.directory(path);
    } catch {
      return [];
    }
  }
}

/** `frontend-id`: a decimal domain id below DOMID_FIRST_RESERVED. */
function parseDomid(text: string): DomId | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n < DOMID_FIRST_RESERVED ? domId(n) : undefined;
}

/** An absolute xenstore path: `/`, the valid characters, no empty component. */
function isXenstorePath(text: string): boolean {
  return (
    text.length >= 2 &&
    text.length <= XENSTORE_ABS_PATH_MAX &&
    text.startsWith('/') &&
    !text.endsWith('/') &&
    !text.includes('//') &&
    PATH_CHARS.test(text)
  );
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
