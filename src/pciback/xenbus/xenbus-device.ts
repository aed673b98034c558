// SPDX-License-Identifier: MIT
/**
 * One pciback XenBus device, `backend/pci/<fe>/<devid>` (spec §7.2–§7.6 as corrected by
 * pciback-fixes.md P7): the `xen_pcibk_device` of `xenbus.c` plus the parts of the xenbus
 * core it relies on (`xenbus_switch_state`, `xenbus_dev_fatal`, the otherend watch,
 * `xenbus_dev_remove`).
 *
 * Every handler (probe, backend watch, frontend state change, removal) runs on one
 * {@link SerialQueue}: the kernel's `dev_lock` plus its single xenwatch thread. Events
 * are coalesced per source (at most one queued run each): a queued handler reads the
 * current value when it runs, so nothing is lost, and a guest writing its `state` in a
 * loop cannot grow the queue.
 *
 * Deviations from the original, all deliberate:
 * - `vdevfn-N` is honoured (the original ignores it), see {@link TopologyAddOptions}.
 * - A device whose topology `add` fails is given back to the stub (the original keeps the
 *   claim, so the device stays unusable until the stub itself releases it).
 * - `num_devs` above {@link MAX_NUM_DEVS} is a fatal error (the original loops on it).
 * - A failed `vdev-N` write is a fatal error (the original returns silently).
 * - A second attach while a channel exists is refused (the original would map again).
 * - Values read from xenstore must match their format exactly (see `keys.ts`).
 */
import { XENBUS_STATE, xenbusStateName } from '../../abi/index.js';
import { PciAddress } from '../../pci/index.js';
import {
  createXenbusEventCounters,
  SILENT_LOGGER,
  type DeviceOwnerRegistry,
  type DomId,
  type Logger,
  type XenbusEventCounters,
} from '../../platform/types.js';
import { isXsError, type XsClient } from '../../xenstore/client/index.js';
import type { PcibackDevice } from '../device/index.js';
import type { PciDeviceSource } from '../stub/device-pool.js';
import {
  createTopology,
  TopologyError,
  type CreateTopologyOptions,
  type Topology,
  type TopologyKind,
} from '../topology/index.js';
import {
  ERRNO,
  errnoOf,
  formatPciKeyFields,
  formatRoot,
  formatVdev,
  parseInt32,
  parsePciKey,
  parseRootKey,
  parseUint32,
  parseVdevfn,
  quoteForMessage,
  XenbusStepError,
  type PciKeyFields,
} from './keys.js';
import { SerialQueue } from './serial-queue.js';
import type {
  FrontendConnectResult,
  FrontendConnector,
  PcibackXenbusDeviceStats,
  XenbusChannel,
} from './types.js';

/**
 * Largest `num_devs` accepted: vpci holds at most 32 slots of 8 functions. The original
 * has no bound and `reconfigure` reads `state-i` for every i below it.
 */
export const MAX_NUM_DEVS = 256;

/** Largest `root_num` accepted by `publish_pci_root` (ours; the original has no bound). */
export const MAX_ROOT_NUM = 4096;

/** `XEN_PCI_MAGIC`, what pcifront writes to `magic`. */
export const XEN_PCI_MAGIC = '7';

/** Options of {@link PcibackXenbusDevice}. */
export interface PcibackXenbusDeviceOptions {
  /** A privileged connection of the backend domain. */
  readonly xs: XsClient;
  readonly backendDomid: DomId;
  /** The backend directory, `/local/domain/<be>/backend/pci/<fe>/<devid>`. */
  readonly nodename: string;
  /** `frontend`, validated by the bus. */
  readonly frontend: string;
  /** `frontend-id`, validated by the bus. */
  readonly frontendDomid: DomId;
  readonly pool: PciDeviceSource;
  readonly owners: DeviceOwnerRegistry;
  readonly connector: FrontendConnector;
  readonly topology: TopologyKind;
  readonly topologyOptions?: Omit<CreateTopologyOptions, 'logger'>;
  /** Unique among the watches of `xs` (the bus passes one per device object). */
  readonly watchToken: string;
  readonly logger?: Logger;
  /** Called once when the device has been removed (after `free_pdev`). */
  readonly onRemoved?: (device: PcibackXenbusDevice) => void;
}

/**
 * The pciback side of one frontend connection. Created and probed by
 * {@link XenbusBackend}; exposed for its snapshot and for tests.
 *
 * @example
 * const dev = new PcibackXenbusDevice({ xs, backendDomid: DOM0, nodename, frontend,
 *   frontendDomid, pool, owners, connector, topology: 'vpci', watchToken: 'pci-5-0' });
 * await dev.probe(); // InitWait, then setup_backend when the toolstack is done
 */
export class PcibackXenbusDevice {
  readonly nodename: string;
  readonly frontend: string;
  readonly frontendDomid: DomId;
  readonly backendDomid: DomId;
  /** The connection's topology (`pdev->pci_dev_data`). */
  readonly topology: Topology<PcibackDevice>;
  /** The xenbus device's event counters, given to the connector. */
  readonly counters: XenbusEventCounters = createXenbusEventCounters();

  readonly #xs: XsClient;
  readonly #pool: PciDeviceSource;
  readonly #owners: DeviceOwnerRegistry;
  readonly #connector: FrontendConnector;
  readonly #logger: Logger;
  readonly #onRemoved: ((device: PcibackXenbusDevice) => void) | undefined;
  readonly #queue: SerialQueue;
  readonly #beToken: string;
  readonly #feToken: string;
  readonly #errorPath: string;

  /** `dev->state`: what `switch_state` last set (xenbus starts it at Initialising). */
  #state: number = XENBUS_STATE.Initialising;
  #frontendState: number | null = null;
  #channel: XenbusChannel | undefined;
  #lastError: string | null = null;
  #removed = false;
  /** Guest addresses of devices withdrawn by the stub whose detach has not come yet. */
  readonly #withdrawn = new Set<string>();
  #beWatching = false;
  #feWatching = false;
  #beQueued = false;
  #feQueued = false;

  constructor(options: PcibackXenbusDeviceOptions) {
    this.#xs = options.xs;
    this.nodename = options.nodename;
    this.frontend = options.frontend;
    this.frontendDomid = options.frontendDomid;
    this.backendDomid = options.backendDomid;
    this.#pool = options.pool;
    this.#owners = options.owners;
    this.#connector = options.connector;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#onRemoved = options.onRemoved;
    this.#beToken = `${options.watchToken}:be`;
    this.#feToken = `${options.watchToken}:fe`;
    // `xenbus_dev_fatal` writes `error/<nodename>` under the backend domain's home.
    const home = `/local/domain/${options.backendDomid}/`;
    const relative = this.nodename.startsWith(home)
      ? this.nodename.slice(home.length)
      : this.nodename.replace(/^\/+/, '');
    this.#errorPath = `${home}error/${relative}/error`;
    // alloc_pdev: the topology backend's `init` (cannot fail here).
    this.topology = createTopology<PcibackDevice>(options.topology, {
      ...options.topologyOptions,
      logger: this.#logger,
    });
    this.#queue = new SerialQueue((err, label) => {
      this.#logger.error(
        { device: this.nodename, err },
        `Cannot complete "${label}" of backend "${this.nodename}": ${describe(err)}`,
      );
    });
  }

  /** The state as last switched (`dev->state`). */
  get state(): number {
    return this.#state;
  }

  /** True once removed: handlers do nothing any more. */
  get removed(): boolean {
    return this.#removed;
  }

  /** The connected channel, undefined while not connected. */
  get channel(): XenbusChannel | undefined {
    return this.#channel;
  }

  /** The last fatal error text written, or null. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Jobs queued or running. */
  get pendingJobs(): number {
    return this.#queue.pending;
  }

  /**
   * `xenbus_dev_probe` + `xen_pcibk_xenbus_probe`: switch to InitWait, watch the backend
   * directory, run the watch callback once (the toolstack may be done already), then
   * watch the frontend's `state`. Resolves to false when the device could not be set up;
   * it is then removed (an error is written).
   */
  async probe(): Promise<boolean> {
    const ok = await this.#queue.run('probe', () => this.#probe());
    return ok === true;
  }

  /** `device_unregister`: queue the removal (`free_pdev`, then Closed); idempotent. */
  async unregister(): Promise<void> {
    await this.#queue.run('remove', () => this.#remove());
  }

  /** Settles when no handler is queued or running. */
  whenIdle(): Promise<void> {
    return this.#queue.whenIdle();
  }

  /** A plain snapshot for reports. */
  stats(): PcibackXenbusDeviceStats {
    const exported = this.topology.devices().map((dev) => {
      const guest = this.topology.find(dev);
      return { real: dev.address.toString(), guest: guest === undefined ? '' : formatVdev(guest) };
    });
    const fe = this.#frontendState;
    return {
      nodename: this.nodename,
      frontend: this.frontend,
      frontendDomid: this.frontendDomid,
      state: this.#state,
      stateName: stateName(this.#state),
      frontendState: fe,
      frontendStateName: fe === null ? null : stateName(fe),
      exported,
      channel: this.#channel === undefined ? null : this.#channel.stats(),
      events: { ...this.counters },
      error: this.#lastError,
      removed: this.#removed,
    };
  }

  // --- probe and watches ---------------------------------------------------------------

  async #probe(): Promise<boolean> {
    if (this.#removed) return false;
    if (!(await this.#switchState(XENBUS_STATE.InitWait))) {
      // The failed switch wrote the error and went to Closing.
      await this.#remove({ switchClosed: false });
      return false;
    }
    try {
      await this.#xs.watch(this.nodename, this.#beToken, () => {
        this.#queueBackendChanged();
      });
      this.#beWatching = true;
    } catch (err) {
      await this.#fatal(errnoOf(err), `Error watching ${this.nodename}`);
      await this.#remove({ switchClosed: false });
      return false;
    }
    // "We need to force a call to our callback here in case xend already configured us!"
    await this.#backendChanged();
    try {
      await this.#xs.watch(`${this.frontend}/state`, this.#feToken, () => {
        this.#queueFrontendChanged();
      });
      this.#feWatching = true;
    } catch (err) {
      await this.#fatal(errnoOf(err), `Error watching ${this.frontend}/state`);
      await this.#remove({ switchClosed: false });
      return false;
    }
    return true;
  }

  #queueBackendChanged(): void {
    if (this.#removed || this.#beQueued) return;
    this.#beQueued = true;
    void this.#queue.run('backend changed', async () => {
      this.#beQueued = false;
      await this.#backendChanged();
    });
  }

  #queueFrontendChanged(): void {
    if (this.#removed || this.#feQueued) return;
    this.#feQueued = true;
    void this.#queue.run('frontend changed', async () => {
      this.#feQueued = false;
      await this.#frontendChanged();
    });
  }

  /** `xen_pcibk_be_watch`. */
  async #backendChanged(): Promise<void> {
    if (this.#removed) return;
    switch (await this.#readOwnState()) {
      case XENBUS_STATE.InitWait:
        await this.#setupBackend();
        break;
      case XENBUS_STATE.Initialised:
        // Devices hot-added before the frontend connected (2021 fix, §10).
        await this.#reconfigure(XENBUS_STATE.Initialised);
        break;
      default:
        break;
    }
  }

  /** `xen_pcibk_frontend_changed` with P7's table. */
  async #frontendChanged(): Promise<void> {
    if (this.#removed) return;
    const fe = await this.#readFrontendState();
    switch (fe) {
      case XENBUS_STATE.Initialised:
        await this.#attach();
        break;
      case XENBUS_STATE.Reconfiguring:
        await this.#reconfigure(XENBUS_STATE.Reconfiguring);
        break;
      case XENBUS_STATE.Connected:
        // Unconditional (P7): also the end of a reconfiguration.
        await this.#switchState(XENBUS_STATE.Connected);
        break;
      case XENBUS_STATE.Closing:
        this.#disconnect();
        await this.#switchState(XENBUS_STATE.Closing);
        break;
      case XENBUS_STATE.Closed:
        this.#disconnect();
        await this.#switchState(XENBUS_STATE.Closed);
        // Online: the connection stays (P7 "no reconnection"); else as Unknown.
        if (!(await this.#isOnline())) await this.#remove();
        break;
      case XENBUS_STATE.Unknown:
        await this.#remove();
        break;
      default:
        // Initialising, InitWait, Reconfigured and values outside the enum.
        break;
    }
  }

  // --- setup, export, publication ------------------------------------------------------

  /** `xen_pcibk_setup_backend` (§7.2). */
  async #setupBackend(): Promise<void> {
    if ((await this.#readOwnState()) !== XENBUS_STATE.InitWait) return;
    const num = await this.#readNumDevs();
    if (num === undefined) return;
    for (let i = 0; i < num; i++) {
      if (!(await this.#exportDevice(i))) return;
      if (
        !(await this.#writeOrFatal(
          `state-${i}`,
          String(XENBUS_STATE.Initialised),
          `Error switching substate of dev-${i}`,
        ))
      ) {
        return;
      }
    }
    if (!(await this.#publishRoots())) return;
    if (!(await this.#switchState(XENBUS_STATE.Initialised))) return;
    // See whether pcifront is configured already (if not, its state change calls attach).
    await this.#attach();
  }

  /** `num_devs` (`%d`), fatal when unreadable, unparsable or above {@link MAX_NUM_DEVS}. */
  async #readNumDevs(): Promise<number | undefined> {
    let text: string;
    try {
      text = await this.#xs.readString(`${this.nodename}/num_devs`);
    } catch (err) {
      await this.#fatal(errnoOf(err), 'Error reading number of devices');
      return undefined;
    }
    const num = parseInt32(text);
    if (num === undefined) {
      await this.#fatal(ERRNO.EINVAL, 'Error reading number of devices');
      return undefined;
    }
    if (num > MAX_NUM_DEVS) {
      await this.#fatal(
        ERRNO.EINVAL,
        `Error reading number of devices: ${num} is above the limit of ${MAX_NUM_DEVS}`,
      );
      return undefined;
    }
    // A negative count exports nothing, as the original's loop.
    return Math.max(num, 0);
  }

  /** `dev-N`/`vdev-N` read as `%x:%x:%x.%x` (4 fields), fatal otherwise. */
  async #readPciKey(key: string): Promise<PciKeyFields | undefined> {
    let text: string;
    try {
      text = await this.#xs.readString(`${this.nodename}/${key}`);
    } catch (err) {
      await this.#fatal(errnoOf(err), 'Error reading device configuration');
      return undefined;
    }
    const fields = parsePciKey(text);
    if (fields === undefined) {
      await this.#fatal(ERRNO.EINVAL, 'Error parsing pci device configuration');
    }
    return fields;
  }

  /** `vdevfn-N`: the requested devfn, null when none, undefined after a fatal error. */
  async #readVdevfn(devid: number): Promise<number | null | undefined> {
    let text: string;
    try {
      text = await this.#xs.readString(`${this.nodename}/vdevfn-${devid}`);
    } catch (err) {
      if (isXsError(err, 'ENOENT')) return null;
      await this.#fatal(errnoOf(err), 'Error reading device configuration');
      return undefined;
    }
    const devfn = parseVdevfn(text);
    if (devfn === undefined) {
      await this.#fatal(
        ERRNO.EINVAL,
        `Error parsing vdevfn-${devid} "${quoteForMessage(text)}": expected a hex devfn`,
      );
    }
    return devfn;
  }

  /**
   * `permissive=1` in `opts-N` (libxl's `key=value,...`). The original ignores `opts-N`
   * and libxl writes the BDF to the driver's `permissive` file instead, which lasts
   * beyond the attachment; here it is scoped to this attachment. Unreadable or absent:
   * false.
   */
  async #readPermissiveOpt(devid: number): Promise<boolean> {
    let text: string;
    try {
      text = await this.#xs.readString(`${this.nodename}/opts-${devid}`);
    } catch {
      return false;
    }
    return text
      .slice(0, 256)
      .split(',')
      .some((item) => /^ *permissive=0*[1-9][0-9]*$/.test(item));
  }

  /** Read `dev-N` (and `vdevfn-N`) and export that device (`xen_pcibk_export_device`). */
  async #exportDevice(devid: number): Promise<boolean> {
    const fields = await this.#readPciKey(`dev-${devid}`);
    if (fields === undefined) return false;
    const requested = await this.#readVdevfn(devid);
    if (requested === undefined) return false;

    const permissive = await this.#readPermissiveOpt(devid);
    const address = toAddress(fields);
    const dev =
      address === undefined
        ? undefined
        : this.#pool.claim(address, this.frontendDomid, { permissive });
    if (dev === undefined) {
      await this.#fatal(
        ERRNO.EINVAL,
        `Couldn't locate PCI device (${formatPciKeyFields(fields)})! perhaps already in-use?`,
      );
      return false;
    }

    let guest: PciAddress | undefined;
    try {
      this.topology.add(
        dev,
        devid,
        (_devid, guestAddress) => {
          guest = guestAddress;
        },
        requested === null ? {} : { requestedDevfn: requested },
      );
    } catch (err) {
      // Deviation: the claim is given back (the original keeps it).
      this.#releaseToPool(dev);
      if (err instanceof TopologyError) {
        await this.#fatal(-err.errno, err.fatalMessage);
      } else {
        await this.#fatal(
          ERRNO.EINVAL,
          `Cannot export ${dev.address.toString()}: ${describe(err)}`,
        );
      }
      return false;
    }
    if (guest !== undefined) {
      const published = await this.#writeOrFatal(
        `vdev-${devid}`,
        formatVdev(guest),
        `Error publishing vdev-${devid}`,
      );
      if (!published) return false;
    }

    this.#logger.info(
      { device: dev.address.toString(), domid: this.frontendDomid },
      `Registering "${dev.address.toString()}" for domain ${this.frontendDomid}`,
    );
    if (this.#owners.register(dev.address, this.frontendDomid) !== 0) {
      const previous = this.#owners.find(dev.address);
      this.#logger.error(
        { device: dev.address.toString(), previous },
        `Stealing ownership from dom${previous ?? -1}.`,
      );
      this.#owners.unregister(dev.address);
      this.#owners.register(dev.address, this.frontendDomid);
    }
    return true;
  }

  /** `xen_pcibk_publish_pci_roots`, fatal on error. */
  async #publishRoots(): Promise<boolean> {
    const roots: [number, number][] = [];
    this.topology.publishRoots((domain, bus) => {
      roots.push([domain, bus]);
    });
    try {
      for (const [domain, bus] of roots) await this.#publishRoot(domain, bus);
      return true;
    } catch (err) {
      await this.#fatal(errnoOf(err), 'Error while publish PCI root buses for frontend');
      return false;
    }
  }

  /** `xen_pcibk_publish_pci_root` (§7.6): add `root-K` unless listed; two writes. */
  async #publishRoot(domain: number, bus: number): Promise<void> {
    let rootNum = 0;
    try {
      // Missing or unparsable: 0. A negative count reads as 0 too (the original would
      // write `root--1`).
      rootNum = Math.max(
        parseInt32(await this.#xs.readString(`${this.nodename}/root_num`)) ?? 0,
        0,
      );
    } catch (err) {
      if (!isXsError(err, 'ENOENT')) throw err;
    }
    if (rootNum > MAX_ROOT_NUM) {
      throw new XenbusStepError(ERRNO.ERANGE, `root_num ${rootNum} is above ${MAX_ROOT_NUM}`);
    }
    for (let k = 0; k < rootNum; k++) {
      const root = parseRootKey(await this.#xs.readString(`${this.nodename}/root-${k}`));
      if (root === undefined) {
        throw new XenbusStepError(ERRNO.EINVAL, `root-${k} is not "%x:%x"`);
      }
      if (root.domain === domain && root.bus === bus) return;
    }
    await this.#xs.write(`${this.nodename}/root-${rootNum}`, formatRoot(domain, bus));
    await this.#xs.write(`${this.nodename}/root_num`, String(rootNum + 1));
  }

  // --- attach and disconnect -----------------------------------------------------------

  /** `xen_pcibk_attach` (§7.3). */
  async #attach(): Promise<void> {
    if (this.#removed) return;
    // "Make sure we only do this setup once": the xenstore states, not the cached one.
    if ((await this.#readOwnState()) !== XENBUS_STATE.Initialised) return;
    if ((await this.#readFrontendState()) !== XENBUS_STATE.Initialised) return;
    if (this.#channel !== undefined) {
      this.#logger.warn(
        { device: this.nodename },
        `Not attaching backend "${this.nodename}" again: it has a channel already`,
      );
      return;
    }
    let refText: string;
    let portText: string;
    let magic: string;
    try {
      refText = await this.#xs.readString(`${this.frontend}/pci-op-ref`);
      portText = await this.#xs.readString(`${this.frontend}/event-channel`);
      magic = await this.#xs.readString(`${this.frontend}/magic`);
    } catch (err) {
      await this.#fatal(errnoOf(err), 'Error reading configuration from frontend');
      return;
    }
    const grantRef = parseUint32(refText);
    const eventPort = parseUint32(portText);
    if (grantRef === undefined || eventPort === undefined) {
      await this.#fatal(ERRNO.EINVAL, 'Error reading configuration from frontend');
      return;
    }
    if (magic !== XEN_PCI_MAGIC) {
      await this.#fatal(
        ERRNO.EFAULT,
        `version mismatch (${quoteForMessage(magic)}/${XEN_PCI_MAGIC}) with pcifront - halting xen-pciback`,
      );
      return;
    }
    let result: FrontendConnectResult;
    try {
      result = await this.#connector(
        this.frontendDomid,
        { grantRef, eventPort },
        { topology: this.topology, counters: this.counters, logger: this.#logger },
      );
    } catch (err) {
      result = {
        ok: false,
        error: `Cannot connect to domain ${this.frontendDomid}: ${describe(err)}`,
      };
    }
    if (!result.ok) {
      await this.#fatal(result.errno ?? ERRNO.EINVAL, result.error);
      return;
    }
    this.#channel = result.channel;
    await this.#switchState(XENBUS_STATE.Connected);
  }

  /** `xen_pcibk_disconnect`: the channel goes; the devices stay assigned. */
  #disconnect(): void {
    const channel = this.#channel;
    if (channel === undefined) return;
    this.#channel = undefined;
    try {
      channel.disconnect();
    } catch (err) {
      this.#logger.error(
        { device: this.nodename, err },
        `Cannot disconnect the channel of backend "${this.nodename}": ${describe(err)}`,
      );
    }
  }

  // --- reconfiguration -----------------------------------------------------------------

  /** `xen_pcibk_reconfigure(expected)` (§7.5). */
  async #reconfigure(expected: number): Promise<void> {
    if ((await this.#readOwnState()) !== expected) return;
    const num = await this.#readNumDevs();
    if (num === undefined) return;
    for (let i = 0; i < num; i++) {
      // xenbus_read_unsigned(…, state-i, XenbusStateUnknown): never cached across runs.
      let substate: number;
      try {
        substate = parseUint32(await this.#xs.readString(`${this.nodename}/state-${i}`)) ?? 0;
      } catch {
        substate = XENBUS_STATE.Unknown;
      }
      switch (substate) {
        case XENBUS_STATE.Initialising: {
          if (!(await this.#exportDevice(i))) return;
          if (!(await this.#publishRoots())) return;
          const ok = await this.#writeOrFatal(
            `state-${i}`,
            String(XENBUS_STATE.Initialised),
            `Error switching substate of dev-${i}`,
          );
          if (!ok) return;
          break;
        }
        case XENBUS_STATE.Closing: {
          const fields = await this.#readPciKey(`vdev-${i}`);
          if (fields === undefined) return;
          // Root nodes are never removed; `state-i` is left as the toolstack wrote it.
          if (!this.#removeDevice(fields)) return;
          break;
        }
        default:
          break;
      }
    }
    // Any error above returned early: no Reconfigured, as the original's `goto out`.
    if (expected === XENBUS_STATE.Reconfiguring) {
      await this.#switchState(XENBUS_STATE.Reconfigured);
    }
  }

  /** `xen_pcibk_remove_device`: the device the guest knows as `fields`. */
  #removeDevice(fields: PciKeyFields): boolean {
    const devfn = ((fields.slot & 0x1f) << 3) | (fields.func & 0x07);
    const dev = this.topology.get(fields.domain, fields.bus, devfn);
    if (dev === undefined && this.#withdrawn.delete(guestKeyOf(fields.domain, fields.bus, devfn))) {
      // Withdrawn earlier (unbound from pciback in use): the detach completes it.
      return true;
    }
    if (dev === undefined) {
      this.#logger.debug(
        { device: this.nodename },
        `Couldn't locate PCI device (${formatPciKeyFields(fields)})! not owned by this domain`,
      );
      return false;
    }
    this.#owners.unregister(dev.address);
    if (this.topology.release(dev)) this.#releaseToPool(dev);
    return true;
  }

  /**
   * The stub took `address` back while this connection used it (an unbind in use, §6.4).
   * The device leaves the topology at once (the stub already reset it; it is not put
   * again), so the guest's next op on it gets `XEN_PCI_ERR_dev_not_found`. As in the
   * original the frontend is not notified and `dev-N`/`vdev-N` stay; beyond it, the
   * toolstack is told as `xenbus_dev_error` would (the error node, no state change), and
   * its later detach of the device completes (Reconfigured) instead of going unanswered.
   * Returns false when this connection did not hold the device.
   */
  async withdraw(address: PciAddress): Promise<boolean> {
    const dev = this.topology.devices().find((d) => d.address.equals(address));
    const guestAddress = dev === undefined ? undefined : this.topology.find(dev);
    if (dev === undefined || !this.topology.release(dev)) return false;
    // The toolstack's detach of it (state-N = 5) is then answered as a removal.
    if (guestAddress !== undefined) this.#withdrawn.add(guestKey(guestAddress));
    this.#owners.unregister(address);
    await this.#writeError(
      ERRNO.ENODEV,
      `Device ${address.toString()} was unbound from pciback while in use by domain ${this.frontendDomid}`,
    );
    return true;
  }

  // --- removal ---------------------------------------------------------------------------

  /**
   * `xenbus_dev_remove`: drop the otherend watch, `free_pdev` (backend watch, disconnect,
   * every device back to the stub), then switch to Closed (no write when `state` is gone).
   */
  async #remove(options: { switchClosed?: boolean } = {}): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    if (this.#feWatching) {
      this.#feWatching = false;
      await this.#unwatch(`${this.frontend}/state`, this.#feToken);
    }
    if (this.#beWatching) {
      this.#beWatching = false;
      await this.#unwatch(this.nodename, this.#beToken);
    }
    this.#disconnect();
    for (const dev of this.topology.clear()) this.#releaseToPool(dev);
    if (options.switchClosed !== false) await this.#switchState(XENBUS_STATE.Closed);
    try {
      this.#onRemoved?.(this);
    } catch (err) {
      this.#logger.error({ device: this.nodename, err }, `onRemoved failed: ${describe(err)}`);
    }
  }

  async #unwatch(path: string, token: string): Promise<void> {
    try {
      await this.#xs.unwatch(path, token);
    } catch (err) {
      this.#logger.debug({ device: this.nodename, path, err }, `Cannot unwatch "${path}"`);
    }
  }

  #releaseToPool(dev: PcibackDevice): void {
    try {
      this.#pool.release(dev);
    } catch (err) {
      this.#logger.error(
        { device: dev.address.toString(), err },
        `Cannot release "${dev.address.toString()}" to the stub: ${describe(err)}`,
      );
    }
  }

  // --- xenbus core helpers ---------------------------------------------------------------

  /** `xenbus_read_driver_state(nodename)`: Unknown when missing or not an integer. */
  async #readOwnState(): Promise<number> {
    return readState(this.#xs, `${this.nodename}/state`);
  }

  /** `xenbus_read_driver_state(otherend)`, remembered for the snapshot. */
  async #readFrontendState(): Promise<number> {
    const state = await readState(this.#xs, `${this.frontend}/state`);
    this.#frontendState = state;
    return state;
  }

  /** `xenbus_dev_is_online`: `online` as unsigned, missing or bad = 0. */
  async #isOnline(): Promise<boolean> {
    try {
      return (parseUint32(await this.#xs.readString(`${this.nodename}/online`)) ?? 0) !== 0;
    } catch {
      return false;
    }
  }

  /**
   * `__xenbus_switch_state`: a no-op when `to` is the cached state; otherwise, in a
   * transaction, write `state` only if it exists and reads as an integer. The cache is
   * updated whenever the transaction succeeded, written or not (P7). A failure writes an
   * error and, at depth 0, switches to Closing.
   */
  async #switchState(to: number, depth = 0): Promise<boolean> {
    if (to === this.#state) return true;
    const key = `${this.nodename}/state`;
    try {
      await this.#xs.transaction(async (tx) => {
        let current: string;
        try {
          current = await tx.readString(key);
        } catch (err) {
          if (isXsError(err, 'ENOENT')) return;
          throw err;
        }
        if (parseInt32(current) === undefined) return;
        await tx.write(key, String(to));
      });
    } catch (err) {
      await this.#writeError(errnoOf(err), 'writing new state');
      if (depth === 0) await this.#switchState(XENBUS_STATE.Closing, depth + 1);
      return false;
    }
    this.#state = to;
    return true;
  }

  /** `xenbus_dev_fatal`: write `"<errno> <message>"` to the error node, then Closing. */
  async #fatal(errno: number, message: string): Promise<void> {
    await this.#writeError(errno, message);
    await this.#switchState(XENBUS_STATE.Closing, 1);
  }

  /** `xenbus_va_dev_error`. */
  async #writeError(errno: number, message: string): Promise<void> {
    const text = `${Math.abs(errno)} ${message}`;
    this.#lastError = text;
    this.#logger.error(
      { device: this.nodename, errno: Math.abs(errno) },
      `Backend "${this.nodename}" failed: ${text}`,
    );
    try {
      await this.#xs.write(this.#errorPath, text);
    } catch (err) {
      this.#logger.error(
        { device: this.nodename, err },
        `Cannot write "${this.#errorPath}": ${describe(err)}`,
      );
    }
  }

  async #writeOrFatal(key: string, value: string, message: string): Promise<boolean> {
    try {
      await this.#xs.write(`${this.nodename}/${key}`, value);
      return true;
    } catch (err) {
      await this.#fatal(errnoOf(err), message);
      return false;
    }
  }
}

/** Read a `state` key: the integer, or Unknown (0) when missing, unreadable or not one. */
async function readState(xs: XsClient, path: string): Promise<number> {
  try {
    return parseInt32(await xs.readString(path)) ?? XENBUS_STATE.Unknown;
  } catch {
    return XENBUS_STATE.Unknown;
  }
}

/** A guest address as the topology's `get` takes it: segment, bus, devfn. */
function guestKeyOf(domain: number, bus: number, devfn: number): string {
  return `${domain}:${bus}:${devfn}`;
}

function guestKey(a: PciAddress): string {
  return guestKeyOf(a.domain, a.bus, (a.device << 3) | a.fn);
}

function toAddress(f: PciKeyFields): PciAddress | undefined {
  try {
    return new PciAddress(f.domain, f.bus, f.slot, f.func);
  } catch {
    return undefined;
  }
}

function stateName(state: number): string {
  return xenbusStateName(state) ?? String(state);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
