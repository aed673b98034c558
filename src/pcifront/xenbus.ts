// SPDX-License-Identifier: MIT
/**
 * pcifront's XenBus driver for one device `device/pci/<devid>` (Linux
 * `drivers/pci/xen-pcifront.c` with the xenbus core's frontend helpers; spec/pciback.md
 * §9, §7.1, §7.4–§7.5b; spec/pciback-fixes.md P7).
 *
 * Probe publishes the shared page and the event channel, switches to Initialised and
 * watches the backend's `state`. Every watch event then runs one handler, one at a time
 * (the kernel's xenwatch thread), that reads the backend state afresh and acts:
 *
 * | Backend state | Action |
 * |---|---|
 * | Connected (4) | own state Initialised: read the roots, `connect`, → Connected |
 * | Reconfiguring (7) | own Initialised: → 7; own Connected: remove every `vdev-i` whose `state-i` is 5, → 7 |
 * | Reconfigured (8) | own Reconfiguring: read the roots, `rescan`, → Connected |
 * | Closing (5), Closed (6) | "backend going away!"; own < 5: if Connected `closed`, → Closed (P7) |
 * | others | nothing |
 *
 * Like the kernel, decisions use the frontend's own `state` as read from xenstore, and a
 * switch to the cached state is a no-op (P7). Nothing returns to Initialising: a new
 * connection needs a new device whose `state` reads 1.
 *
 * Deviations from Linux, on purpose:
 * - Values are parsed strictly and bounded (see `xenbus-values.ts`): `root_num` at most
 *   {@link PCIFRONT_MAX_ROOTS}, `num_devs` at most {@link PCIFRONT_MAX_DEVICES}; a
 *   negative or larger count is a fatal error instead of a loop over it.
 * - `backend` must lie under `/local/domain/<backend-id>/`, and `backend-id` must be the
 *   domain the page was granted to when the endpoints say which.
 * - A root listed twice is handed to the guest once.
 * - The publish transaction is retried on EAGAIN a bounded number of times, not forever.
 * - A watch event that arrives while another is still queued is merged with it: each
 *   handler reads the current state anyway, so the queue never grows past one.
 *
 * Fatal errors are reported as the xenbus core does (`xenbus_dev_fatal`): the text
 * `"<errno> <message>"` goes to `/local/domain/<domid>/error/device/pci/<devid>/error`
 * (the frontend's `error/<nodename>`, inside the guest's own home; libxl creates
 * `/local/domain/<domid>/error` writable by the guest), then the state switches to
 * Closing. When the guest may not write there the failure is logged and the switch still
 * happens.
 */
import {
  XENBUS_STATE,
  XENSTORE_ABS_PATH_MAX,
  XEN_PCI_MAGIC,
  type XenbusState,
} from '../abi/index.js';
import { PcibackError } from '../errors.js';
import type { PciAddress } from '../pci/index.js';
import { SILENT_LOGGER, type Logger } from '../platform/types.js';
import { isXsError, type XsClient } from '../xenstore/client/index.js';
import { DEFAULT_ROOTS, parseRoot, type GuestPciRoot } from './enumerate.js';
import {
  XENBUS_EINVAL,
  errnoOf,
  messageOf,
  parseBackendId,
  parseBoundedCount,
  parseVdev,
  parseXenbusState,
  quoteValue,
} from './xenbus-values.js';

/** Most roots pcifront accepts in `root_num` (one per exported PCI bus, at most 256 buses). */
export const PCIFRONT_MAX_ROOTS = 256;
/** Most devices pcifront accepts in `num_devs` (the detach pass reads each index). */
export const PCIFRONT_MAX_DEVICES = 1024;

/** Longest `"<errno> <message>"` written to the error node (the kernel's buffer is 4096). */
const ERROR_TEXT_MAX = 1024;
/** Default EAGAIN retries of the publish transaction and of each state switch. */
const DEFAULT_MAX_RETRIES = 16;
/** Longest `backend` path accepted: keys such as `/state-1023` must still fit. */
const BACKEND_PATH_MAX = XENSTORE_ABS_PATH_MAX - 64;
/** xenstore path characters (spec/xenstore.md §2), one path component. */
const PATH_COMPONENT = /^[A-Za-z0-9_@-]+$/;

/** The grant and port pcifront publishes (`Pcifront` satisfies it). */
export interface PcifrontEndpoints {
  /** Grant reference of the shared page, written as `pci-op-ref` (`%u`). */
  readonly grantRef: number;
  /** Unbound port allocated for the backend, written as `event-channel` (`%u`). */
  readonly eventPort: number;
  /**
   * The domain the page was granted to. When given, `backend-id` must name it (the
   * kernel grants after reading `backend-id`; here the page exists already).
   */
  readonly backendDomid?: number;
}

/**
 * What the guest kernel does for the driver. Each call is awaited before the driver
 * goes on; a throw (or rejection) is logged and never escapes the driver.
 */
export interface PcifrontGuestKernel {
  /**
   * Create and scan these root buses (spec §9 steps 2–3); resolve when done. A throw is
   * a fatal "Error scanning PCI root" and the frontend does not connect.
   */
  connect(roots: readonly GuestPciRoot[]): void | Promise<void>;
  /**
   * Stop and remove the guest device at `vdev` if present (spec §9 step 5). A throw is
   * logged and the detach pass goes on.
   */
  removeDevice(vdev: PciAddress): void | Promise<void>;
  /**
   * Rescan these root buses, creating the ones not scanned yet (`pcifront_rescan_root`
   * falls back to a first scan; spec §9 step 6). A throw is a fatal error.
   */
  rescan(roots: readonly GuestPciRoot[]): void | Promise<void>;
  /** Remove every root bus: the backend is going away (spec §9 step 4). Throws are logged. */
  closed(): void | Promise<void>;
}

/** Options of {@link PcifrontXenbus}. */
export interface PcifrontXenbusOptions {
  /** The guest's own domain id (its home is `/local/domain/<domid>`). */
  readonly domid: number;
  /** The device index under `device/pci` (libxl: always 0). */
  readonly devid?: number;
  readonly endpoints: PcifrontEndpoints;
  readonly kernel: PcifrontGuestKernel;
  readonly logger?: Logger;
  /** EAGAIN retries of each transaction (default 16). */
  readonly maxRetries?: number;
  /** Told after every switch of the cached state (throws are logged). */
  readonly onStateChange?: (state: XenbusState) => void;
}

/** The last fatal error the driver reported (`xenbus_dev_fatal`). */
export interface PcifrontFatalError {
  /** Positive errno, as written to the error node. */
  readonly errno: number;
  readonly message: string;
}

/** Moves of the cached state pcifront makes (`transition` refuses any other). */
const ALLOWED: Readonly<Record<XenbusState, readonly XenbusState[]>> = {
  [XENBUS_STATE.Unknown]: [],
  [XENBUS_STATE.Initialising]: [XENBUS_STATE.Initialised, XENBUS_STATE.Closing],
  [XENBUS_STATE.InitWait]: [],
  [XENBUS_STATE.Initialised]: [
    XENBUS_STATE.Connected,
    XENBUS_STATE.Reconfiguring,
    XENBUS_STATE.Closing,
    XENBUS_STATE.Closed,
  ],
  [XENBUS_STATE.Connected]: [XENBUS_STATE.Reconfiguring, XENBUS_STATE.Closing, XENBUS_STATE.Closed],
  // Closing is final except when its node vanished: then "going away" reads Unknown (< 5).
  [XENBUS_STATE.Closing]: [XENBUS_STATE.Closed],
  [XENBUS_STATE.Closed]: [],
  [XENBUS_STATE.Reconfiguring]: [XENBUS_STATE.Connected, XENBUS_STATE.Closing, XENBUS_STATE.Closed],
  [XENBUS_STATE.Reconfigured]: [],
};

let instances = 0;

function assertNever(value: never): never {
  throw new TypeError(`Unexpected value ${String(value)}`);
}

function formatRoots(roots: readonly GuestPciRoot[]): string {
  if (roots.length === 0) return '(none)';
  return roots
    .map((r) => `${r.domain.toString(16).padStart(4, '0')}:${r.bus.toString(16).padStart(2, '0')}`)
    .join(', ');
}

function checkU32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Cannot publish ${what} "${value}": it must be a uint32`);
  }
  return value;
}

/**
 * The frontend's XenBus side for one device.
 *
 * @example
 * const front = Pcifront.create(hv, { backendDomid: DOM0 });
 * const bus = new PcifrontXenbus(xs, {
 *   domid: 5,
 *   endpoints: front,
 *   kernel: {
 *     connect: (roots) => { devices = enumerate(front, { roots }).devices; },
 *     removeDevice: (vdev) => { ... },
 *     rescan: (roots) => { devices = enumerate(front, { roots }).devices; },
 *     closed: () => { devices = []; },
 *   },
 * });
 * if (!(await bus.probe())) console.error(bus.fatalError);
 */
export class PcifrontXenbus {
  /** `/local/domain/<domid>/device/pci/<devid>`. */
  readonly nodename: string;
  readonly domid: number;
  readonly devid: number;

  readonly #client: XsClient;
  readonly #endpoints: PcifrontEndpoints;
  readonly #kernel: PcifrontGuestKernel;
  readonly #log: Logger;
  readonly #maxRetries: number;
  readonly #onStateChange: ((state: XenbusState) => void) | undefined;
  /** `device/pci/<devid>`, the name the kernel's messages use. */
  readonly #name: string;
  /** Our own `state` node. */
  readonly #statePath: string;
  readonly #token: string;
  #state: XenbusState = XENBUS_STATE.Initialising;
  #backend: string | undefined;
  #backendId: number | undefined;
  #probed = false;
  #closed = false;
  #watching = false;
  #queue: Promise<void> = Promise.resolve();
  #eventQueued = false;
  #fatal: PcifrontFatalError | undefined;

  /**
   * @throws {RangeError} for a domid, devid or endpoint out of range, or a bad retry count.
   */
  constructor(client: XsClient, options: PcifrontXenbusOptions) {
    const { domid } = options;
    const devid = options.devid ?? 0;
    if (!Number.isInteger(domid) || domid <= 0 || domid >= 0x7ff0) {
      throw new RangeError(`Cannot create pcifront for domain ${domid}: it must be 1 to 32751`);
    }
    if (!Number.isInteger(devid) || devid < 0 || devid > 0xffff) {
      throw new RangeError(`Cannot create pcifront device ${devid}: it must be 0 to 65535`);
    }
    const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new RangeError(`Cannot use ${maxRetries} transaction retries`);
    }
    checkU32(options.endpoints.grantRef, 'pci-op-ref');
    checkU32(options.endpoints.eventPort, 'event-channel');
    this.#client = client;
    this.domid = domid;
    this.devid = devid;
    this.nodename = `/local/domain/${domid}/device/pci/${devid}`;
    this.#name = `device/pci/${devid}`;
    this.#statePath = `${this.nodename}/state`;
    this.#token = `pcifront-${domid}-${devid}-${++instances}`;
    this.#endpoints = options.endpoints;
    this.#kernel = options.kernel;
    this.#log = options.logger ?? SILENT_LOGGER;
    this.#maxRetries = maxRetries;
    this.#onStateChange = options.onStateChange;
  }

  /** The cached XenBus state (what this driver last switched to). */
  state(): XenbusState {
    return this.#state;
  }

  /** The backend directory read at probe, once the probe got that far. */
  get backendPath(): string | undefined {
    return this.#backend;
  }

  /** `backend-id`, once read at probe. */
  get backendId(): number | undefined {
    return this.#backendId;
  }

  /** The last fatal error reported, if any. */
  get fatalError(): PcifrontFatalError | undefined {
    return this.#fatal;
  }

  /** `/local/domain/<domid>/error/device/pci/<devid>/error`, where fatal errors go. */
  get errorPath(): string {
    return `/local/domain/${this.domid}/error/${this.#name}/error`;
  }

  /**
   * Probe (spec §9 step 1, §7.5b step 3): read `backend-id` and `backend`, write
   * `pci-op-ref`, `event-channel` and `magic` in one transaction (retried on EAGAIN),
   * switch to Initialised and watch the backend's `state`. Only a device whose `state`
   * reads Initialising (1) is probed, as `xenbus_probe_node` does.
   *
   * @returns true when the driver is watching the backend; false when the device was not
   *   in state 1 (nothing written) or a fatal error was reported ({@link fatalError}).
   * @throws {PcibackError} `PCIFRONT_XENBUS_PROBED` on a second call,
   *   `PCIFRONT_XENBUS_CLOSED` after {@link close}.
   */
  async probe(): Promise<boolean> {
    if (this.#closed) {
      throw new PcibackError(
        'PCIFRONT_XENBUS_CLOSED',
        `Cannot probe pcifront "${this.nodename}": it is closed`,
      );
    }
    if (this.#probed) {
      throw new PcibackError(
        'PCIFRONT_XENBUS_PROBED',
        `Cannot probe pcifront "${this.nodename}": it was probed already`,
      );
    }
    this.#probed = true;
    const own = await this.#readState(this.#statePath);
    if (own !== XENBUS_STATE.Initialising) {
      this.#log.warn(
        this.#context({ ownState: own }),
        `Cannot probe pcifront "${this.nodename}": its state is ${own}, not Initialising (1)`,
      );
      return false;
    }
    const backend = await this.#readOtherendDetails();
    if (backend === undefined) return false;
    if (!(await this.#publishInfo())) return false;
    await this.#switchState(XENBUS_STATE.Initialised);
    if (this.#state !== XENBUS_STATE.Initialised) return false;
    const statePath = `${backend}/state`;
    try {
      await this.#client.watch(statePath, this.#token, () => {
        this.#enqueue();
      });
    } catch (e) {
      await this.#fatalError(errnoOf(e), `adding watch on ${statePath}`, e);
      return false;
    }
    this.#watching = true;
    // close() may have run while the watch was being set up.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by close() meanwhile
    if (this.#closed) await this.#unwatch();
    return true;
  }

  /** Resolves when no handler is running or queued. */
  async idle(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.#queue;
      await seen;
    } while (seen !== this.#queue);
  }

  /**
   * Stop watching the backend and wait for a running handler to finish. The `state`
   * node is left as it is. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#unwatch();
    await this.idle();
  }

  // -------------------------------------------------------------------------------------
  // Probe
  // -------------------------------------------------------------------------------------

  /** `xenbus_read_otherend_details`, with the path checked against the id. */
  async #readOtherendDetails(): Promise<string | undefined> {
    const what = `reading other end details from ${this.#name}`;
    let idText: string;
    let backend: string;
    try {
      idText = await this.#client.readString(`${this.nodename}/backend-id`);
      backend = await this.#client.readString(`${this.nodename}/backend`);
    } catch (e) {
      await this.#fatalError(errnoOf(e), what, e);
      return undefined;
    }
    let id: number;
    try {
      id = parseBackendId(idText);
    } catch (e) {
      await this.#fatalError(XENBUS_EINVAL, what, e);
      return undefined;
    }
    const prefix = `/local/domain/${id}/`;
    const components = backend.slice(prefix.length).split('/');
    if (
      !backend.startsWith(prefix) ||
      backend.length > BACKEND_PATH_MAX ||
      !components.every((c) => PATH_COMPONENT.test(c))
    ) {
      await this.#fatalError(
        XENBUS_EINVAL,
        `${what}: backend ${quoteValue(backend)} is not a path under "${prefix}"`,
      );
      return undefined;
    }
    const granted = this.#endpoints.backendDomid;
    if (granted !== undefined && granted !== id) {
      await this.#fatalError(
        XENBUS_EINVAL,
        `${what}: backend-id is ${id} but the page was granted to domain ${granted}`,
      );
      return undefined;
    }
    try {
      await this.#client.read(backend);
    } catch (e) {
      await this.#fatalError(errnoOf(e), `unable to read other end details from ${this.#name}`, e);
      return undefined;
    }
    this.#backend = backend;
    this.#backendId = id;
    return backend;
  }

  /** `pcifront_publish_info`: the three keys in one transaction. */
  async #publishInfo(): Promise<boolean> {
    const { grantRef, eventPort } = this.#endpoints;
    try {
      await this.#client.transaction(
        async (tx) => {
          await tx.write(`${this.nodename}/pci-op-ref`, String(grantRef));
          await tx.write(`${this.nodename}/event-channel`, String(eventPort));
          await tx.write(`${this.nodename}/magic`, XEN_PCI_MAGIC);
        },
        { maxRetries: this.#maxRetries },
      );
      return true;
    } catch (e) {
      const message = isXsError(e, 'EAGAIN')
        ? 'Error completing transaction for backend'
        : 'Error writing configuration for backend';
      await this.#fatalError(errnoOf(e), message, e);
      return false;
    }
  }

  // -------------------------------------------------------------------------------------
  // Backend state changes (pcifront_backend_changed)
  // -------------------------------------------------------------------------------------

  /** One handler per watch event, run in order; an event already queued absorbs the next. */
  #enqueue(): void {
    if (this.#closed || this.#eventQueued) return;
    this.#eventQueued = true;
    this.#queue = this.#queue.then(async () => {
      this.#eventQueued = false;
      if (this.#closed) return;
      try {
        await this.#backendChanged();
      } catch (e) {
        // Every expected failure is handled below; this is a fault of the driver itself.
        this.#log.error(
          this.#context({ err: messageOf(e) }),
          `Cannot handle a backend state change of "${this.nodename}": ${messageOf(e)}`,
        );
      }
    });
  }

  async #backendChanged(): Promise<void> {
    const backend = this.#backend;
    if (backend === undefined) return;
    const state = await this.#readState(`${backend}/state`);
    this.#log.debug(this.#context({ backendState: state }), 'Backend state changed');
    switch (state) {
      case XENBUS_STATE.Unknown:
      case XENBUS_STATE.Initialising:
      case XENBUS_STATE.InitWait:
      case XENBUS_STATE.Initialised:
        return;
      case XENBUS_STATE.Connected:
        await this.#tryConnect(backend);
        return;
      case XENBUS_STATE.Closed:
        // Closed after our own Closed: nothing left to do (P7).
        if (this.#state === XENBUS_STATE.Closed) return;
        await this.#backendGoingAway();
        return;
      case XENBUS_STATE.Closing:
        await this.#backendGoingAway();
        return;
      case XENBUS_STATE.Reconfiguring:
        await this.#detachDevices(backend);
        return;
      case XENBUS_STATE.Reconfigured:
        await this.#attachDevices(backend);
        return;
      default:
        assertNever(state);
    }
  }

  /** `pcifront_try_connect` (spec §9 step 2): only while our own state reads Initialised. */
  async #tryConnect(backend: string): Promise<void> {
    if ((await this.#readState(this.#statePath)) !== XENBUS_STATE.Initialised) return;
    const roots = await this.#readRoots(backend);
    if (roots === undefined) return;
    try {
      await this.#kernel.connect(roots);
    } catch (e) {
      await this.#fatalError(errnoOf(e), `Error scanning PCI root ${formatRoots(roots)}`, e);
      return;
    }
    await this.#switchState(XENBUS_STATE.Connected);
  }

  /** `pcifront_detach_devices` (spec §9 step 5). Indexes are read afresh every time. */
  async #detachDevices(backend: string): Promise<void> {
    const own = await this.#readState(this.#statePath);
    if (own === XENBUS_STATE.Initialised) {
      // We missed Connected: go along with the reconfiguration, connect at Reconfigured.
      await this.#switchState(XENBUS_STATE.Reconfiguring);
      return;
    }
    if (own !== XENBUS_STATE.Connected) return;
    const num = await this.#readCount(backend, 'num_devs', {
      limit: PCIFRONT_MAX_DEVICES,
      message: 'Error reading number of PCI devices',
    });
    if (num === undefined) return;
    for (let i = 0; i < num; i++) {
      // `xenbus_read_unsigned(..., XenbusStateUnknown)`: unreadable reads as Unknown.
      const state = await this.#readState(`${backend}/state-${i}`);
      if (state !== XENBUS_STATE.Closing) continue;
      const message = `Error reading PCI device ${i}`;
      let vdev: PciAddress;
      try {
        vdev = parseVdev(await this.#client.readString(`${backend}/vdev-${i}`));
      } catch (e) {
        await this.#fatalError(errnoOf(e), message, e);
        return;
      }
      try {
        await this.#kernel.removeDevice(vdev);
        this.#log.debug(this.#context({ vdev: vdev.toString() }), 'PCI device removed');
      } catch (e) {
        this.#log.error(
          this.#context({ vdev: vdev.toString(), err: messageOf(e) }),
          `Cannot remove PCI device "${vdev.toString()}": ${messageOf(e)}`,
        );
      }
    }
    await this.#switchState(XENBUS_STATE.Reconfiguring);
  }

  /** `pcifront_attach_devices` (spec §9 step 6): only while our own state reads 7. */
  async #attachDevices(backend: string): Promise<void> {
    if ((await this.#readState(this.#statePath)) !== XENBUS_STATE.Reconfiguring) return;
    const roots = await this.#readRoots(backend);
    if (roots === undefined) return;
    try {
      await this.#kernel.rescan(roots);
    } catch (e) {
      await this.#fatalError(errnoOf(e), `Error scanning PCI root ${formatRoots(roots)}`, e);
      return;
    }
    await this.#switchState(XENBUS_STATE.Connected);
  }

  /** The Closing/Closed case and `pcifront_try_disconnect` (P7). */
  async #backendGoingAway(): Promise<void> {
    this.#log.warn(this.#context({}), 'backend going away!');
    const own = await this.#readState(this.#statePath);
    // Closing, Closed, Reconfiguring, Reconfigured: the kernel does nothing more.
    if (own >= XENBUS_STATE.Closing) return;
    if (own === XENBUS_STATE.Connected) {
      try {
        await this.#kernel.closed();
      } catch (e) {
        this.#log.error(
          this.#context({ err: messageOf(e) }),
          `Cannot remove the PCI root buses of "${this.nodename}": ${messageOf(e)}`,
        );
      }
    }
    // Straight to Closed: pcifront never writes Closing here.
    await this.#switchState(XENBUS_STATE.Closed);
  }

  /** `root_num` and `root-k` (spec §9 step 2); undefined after a fatal error. */
  async #readRoots(backend: string): Promise<GuestPciRoot[] | undefined> {
    const numMessage = 'Error reading number of PCI roots';
    let text: string;
    try {
      text = await this.#client.readString(`${backend}/root_num`);
    } catch (e) {
      if (isXsError(e, 'ENOENT')) {
        this.#log.info(this.#context({}), 'No PCI Roots found, trying 0000:00');
        return [...DEFAULT_ROOTS];
      }
      await this.#fatalError(errnoOf(e), numMessage, e);
      return undefined;
    }
    let num: number;
    try {
      num = parseBoundedCount(text, { what: 'root_num', limit: PCIFRONT_MAX_ROOTS });
    } catch (e) {
      await this.#fatalError(XENBUS_EINVAL, numMessage, e);
      return undefined;
    }
    const roots: GuestPciRoot[] = [];
    const seen = new Set<number>();
    for (let k = 0; k < num; k++) {
      let root: GuestPciRoot;
      try {
        root = parseRoot(await this.#client.readString(`${backend}/root-${k}`));
      } catch (e) {
        await this.#fatalError(errnoOf(e), `Error reading PCI root ${k}`, e);
        return undefined;
      }
      const key = root.domain * 0x100 + root.bus;
      if (seen.has(key)) continue;
      seen.add(key);
      roots.push(root);
    }
    return roots;
  }

  /** A bounded count key; undefined after a fatal error. */
  async #readCount(
    backend: string,
    key: string,
    options: { readonly limit: number; readonly message: string },
  ): Promise<number | undefined> {
    try {
      const text = await this.#client.readString(`${backend}/${key}`);
      return parseBoundedCount(text, { what: key, limit: options.limit });
    } catch (e) {
      await this.#fatalError(errnoOf(e), options.message, e);
      return undefined;
    }
  }

  // -------------------------------------------------------------------------------------
  // xenbus core helpers
  // -------------------------------------------------------------------------------------

  /** `xenbus_read_driver_state`: any failure reads as Unknown. */
  async #readState(path: string): Promise<XenbusState> {
    let text: string;
    try {
      text = await this.#client.readString(path);
    } catch (e) {
      if (!isXsError(e, 'ENOENT')) {
        this.#log.debug(this.#context({ path, err: messageOf(e) }), 'Cannot read a state node');
      }
      return XENBUS_STATE.Unknown;
    }
    return parseXenbusState(text);
  }

  /**
   * `xenbus_switch_state`: a no-op for the cached state; otherwise, in one transaction,
   * write `state` only if the node still holds a number. A vanished node is not
   * recreated but the cache still moves (P7). A failure is reported and, unless this is
   * already the recovery switch, followed by a switch to Closing (`xenbus_switch_fatal`).
   */
  async #switchState(to: XenbusState, depth = 0): Promise<void> {
    const from = this.#state;
    if (to === from) return;
    if (!ALLOWED[from].includes(to)) {
      this.#log.error(
        this.#context({ from, to }),
        `Cannot switch pcifront "${this.nodename}" from state ${from} to ${to}: not a move pcifront makes`,
      );
      return;
    }
    const path = this.#statePath;
    let wrote: boolean;
    try {
      wrote = await this.#client.transaction(
        async (tx) => {
          let current: string;
          try {
            current = await tx.readString(path);
          } catch (e) {
            if (isXsError(e, 'ENOENT')) return false;
            throw e;
          }
          if (!/^\s*[+-]?[0-9]/.test(current)) return false;
          await tx.write(path, String(to));
          return true;
        },
        { maxRetries: this.#maxRetries },
      );
    } catch (e) {
      await this.#reportError(errnoOf(e), `writing new state: ${messageOf(e)}`);
      if (depth === 0) await this.#switchState(XENBUS_STATE.Closing, 1);
      return;
    }
    if (!wrote) {
      this.#log.warn(
        this.#context({ to }),
        `Did not write state ${to} to "${path}": the node is missing or not a number`,
      );
    }
    this.#state = to;
    this.#log.debug(this.#context({ from, to }), 'Switched state');
    try {
      this.#onStateChange?.(to);
    } catch (e) {
      this.#log.error(this.#context({ err: messageOf(e) }), 'State change listener threw');
    }
  }

  /** `xenbus_dev_fatal`: report, then switch to Closing. */
  async #fatalError(errno: number, message: string, cause?: unknown): Promise<void> {
    const text = cause === undefined ? message : `${message}: ${messageOf(cause)}`;
    this.#fatal = { errno, message: text };
    await this.#reportError(errno, text);
    await this.#switchState(XENBUS_STATE.Closing);
  }

  /** `xenbus_dev_error`: log, and write `"<errno> <message>"` to the error node. */
  async #reportError(errno: number, message: string): Promise<void> {
    this.#log.error(this.#context({ errno }), message);
    const text = `${errno} ${message}`.slice(0, ERROR_TEXT_MAX);
    try {
      await this.#client.write(this.errorPath, text);
    } catch (e) {
      this.#log.error(
        this.#context({ err: messageOf(e) }),
        `Cannot write the error node for ${this.#name} ("${this.errorPath}"): ${messageOf(e)}`,
      );
    }
  }

  async #unwatch(): Promise<void> {
    if (!this.#watching || this.#backend === undefined) return;
    this.#watching = false;
    try {
      await this.#client.unwatch(`${this.#backend}/state`, this.#token);
    } catch (e) {
      this.#log.debug(this.#context({ err: messageOf(e) }), 'Cannot remove the backend watch');
    }
  }

  #context(extra: Record<string, unknown>): Record<string, unknown> {
    return { domid: this.domid, devid: this.devid, state: this.#state, ...extra };
  }
}
