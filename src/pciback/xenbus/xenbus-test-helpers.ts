// SPDX-License-Identifier: MIT
/**
 * A test bed for the XenBus backend: a real xenstore daemon in memory, the toolstack's
 * client, the backend's client, a scripted pcifront, a fake connector and the real
 * device pool of real `PcibackDevice`s. For this folder's tests only (not exported from
 * `index.ts`).
 */
import { XENBUS_STATE } from '../../abi/index.js';
import { PciAddress } from '../../pci/index.js';
import { domId, type DeviceOwnerRegistry, type DomId } from '../../platform/types.js';
import { recordingLogger, type RecordingLogger } from '../../../test/support/memory-host-device.js';
import { pciBackendPath, pciFrontendPath } from '../../toolstack/attach.js';
import { createMemoryTransportPair, isXsError, XsClient } from '../../xenstore/client/index.js';
import { XsServer } from '../../xenstore/server/index.js';
import { createOpCounts } from '../device/op-counts.js';
import { deviceFixture, type DeviceFixture } from '../device/test-fakes.js';
import { PciDevicePool } from '../stub/device-pool.js';
import type { TopologyKind } from '../topology/index.js';
import { SerialQueue } from './serial-queue.js';
import type {
  FrontendConnectResult,
  FrontendConnectorOptions,
  FrontendEndpoints,
  XenbusChannel,
} from './types.js';
import { XenbusBackend } from './xenbus-backend.js';

/** A client of `server` for `domid` (dom0: privileged), over an in-memory transport. */
export function connectClient(server: XsServer, domid = 0): XsClient {
  const [clientSide, daemonSide] = createMemoryTransportPair();
  const conn = server.connect(
    {
      send: (bytes) => {
        daemonSide.send(bytes);
      },
      close: () => {
        daemonSide.close();
      },
    },
    { domid, privileged: domid === 0 },
  );
  daemonSide.onData((chunk) => {
    conn.receive(chunk);
  });
  daemonSide.onClose(() => {
    conn.close();
  });
  return new XsClient(clientSide, { timeoutMs: 5000 });
}

/** Let every in-flight message and handler run (the memory transport uses microtasks). */
export async function tick(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A device-owner registry with the platform's return codes. */
export class FakeOwners implements DeviceOwnerRegistry {
  readonly map = new Map<string, DomId>();
  register(address: PciAddress, domid: DomId): number {
    if (this.map.has(address.toString())) return -17;
    this.map.set(address.toString(), domid);
    return 0;
  }
  find(address: PciAddress): DomId | undefined {
    return this.map.get(address.toString());
  }
  unregister(address: PciAddress): number {
    return this.map.delete(address.toString()) ? 0 : -2;
  }
}

/** The channel the fake connector hands out. */
export class FakeChannel implements XenbusChannel {
  disconnects = 0;
  readonly endpoints: FrontendEndpoints;
  constructor(endpoints: FrontendEndpoints) {
    this.endpoints = endpoints;
  }
  disconnect(): void {
    this.disconnects++;
  }
  stats(): ReturnType<XenbusChannel['stats']> {
    return {
      ops: 0,
      opsByCmd: createOpCounts(),
      spuriousKicks: 0,
      irqWhileEoiPending: 0,
      workerRuns: 0,
      budgetYields: 0,
      aerRequests: 0,
      aerTimeouts: 0,
    };
  }
}

/** A connector that records its calls and can be told to fail. */
export class FakeConnector {
  readonly calls: {
    domid: number;
    endpoints: FrontendEndpoints;
    options: FrontendConnectorOptions;
    channel?: FakeChannel;
  }[] = [];
  /** When set, the next calls fail with it. */
  failWith: { error: string; errno?: number } | undefined;

  readonly connect = (
    domid: DomId,
    endpoints: FrontendEndpoints,
    options: FrontendConnectorOptions,
  ): FrontendConnectResult => {
    if (this.failWith !== undefined) {
      this.calls.push({ domid, endpoints, options });
      return { ok: false, ...this.failWith };
    }
    const channel = new FakeChannel(endpoints);
    this.calls.push({ domid, endpoints, options, channel });
    return { ok: true, channel };
  };
}

/** Options of {@link ScriptedFrontend}. */
export interface ScriptedFrontendOptions {
  readonly grantRef?: string;
  readonly eventPort?: string;
  readonly magic?: string;
}

/**
 * pcifront's xenbus side (spec §9 with P7): publishes its details on `connect()`, then
 * follows the backend's state: Connected → read the roots and go Connected;
 * Reconfiguring → note every `vdev-i` whose `state-i` is 5 and go Reconfiguring;
 * Reconfigured → rescan and go Connected; Closing/Closed → go Closed. Actions are
 * recorded in `log`.
 */
export class ScriptedFrontend {
  readonly log: string[] = [];
  /** Roots read at the last (re)scan. */
  roots: string[] = [];
  /** `vdev-i` values of the devices the backend asked it to remove. */
  readonly removed: string[] = [];
  readonly be: string;
  readonly fe: string;
  readonly #xs: XsClient;
  readonly #queue = new SerialQueue((err) => {
    this.log.push(`error: ${String(err)}`);
  });
  #cachedState = 1;
  #watching = false;

  readonly domid: number;
  readonly options: ScriptedFrontendOptions;

  constructor(xs: XsClient, domid: number, options: ScriptedFrontendOptions = {}) {
    this.#xs = xs;
    this.domid = domid;
    this.options = options;
    this.be = pciBackendPath(domid);
    this.fe = pciFrontendPath(domid);
  }

  /** Watch the backend's state (no publication yet). */
  async watch(): Promise<void> {
    if (this.#watching) return;
    this.#watching = true;
    await this.#xs.watch(`${this.be}/state`, `fe-${this.domid}`, () => {
      void this.#queue.run('backend changed', () => this.#backendChanged());
    });
  }

  /** pcifront's probe: publish `pci-op-ref`, `event-channel`, `magic`, then state 3. */
  async connect(): Promise<void> {
    await this.watch();
    await this.#xs.transaction(async (tx) => {
      await tx.write(`${this.fe}/pci-op-ref`, this.options.grantRef ?? '8');
      await tx.write(`${this.fe}/event-channel`, this.options.eventPort ?? '11');
      await tx.write(`${this.fe}/magic`, this.options.magic ?? '7');
    });
    await this.setState(XENBUS_STATE.Initialised);
  }

  /** Write the frontend's `state`. */
  async setState(state: number | string): Promise<void> {
    await this.#xs.write(`${this.fe}/state`, String(state));
    if (typeof state === 'number') this.#cachedState = state;
    this.log.push(`state ${state}`);
  }

  whenIdle(): Promise<void> {
    return this.#queue.whenIdle();
  }

  get pendingJobs(): number {
    return this.#queue.pending;
  }

  async #read(path: string): Promise<string | undefined> {
    try {
      return await this.#xs.readString(path);
    } catch (err) {
      if (isXsError(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async #ownState(): Promise<number> {
    return Number((await this.#read(`${this.fe}/state`)) ?? '0');
  }

  async #scan(): Promise<void> {
    const num = Number((await this.#read(`${this.be}/root_num`)) ?? '0');
    const roots: string[] = [];
    for (let k = 0; k < num; k++) roots.push((await this.#read(`${this.be}/root-${k}`)) ?? '?');
    this.roots = roots;
    this.log.push(`scan ${roots.join(',')}`);
  }

  async #backendChanged(): Promise<void> {
    const text = await this.#read(`${this.be}/state`);
    if (text === undefined) return;
    const be = Number(text);
    const own = await this.#ownState();
    switch (be) {
      case XENBUS_STATE.Connected:
        if (own !== XENBUS_STATE.Initialised) return;
        await this.#scan();
        await this.setState(XENBUS_STATE.Connected);
        return;
      case XENBUS_STATE.Reconfiguring:
        if (own === XENBUS_STATE.Initialised) {
          await this.setState(XENBUS_STATE.Reconfiguring);
          return;
        }
        if (own !== XENBUS_STATE.Connected) return;
        for (let i = 0; i < Number((await this.#read(`${this.be}/num_devs`)) ?? '0'); i++) {
          if ((await this.#read(`${this.be}/state-${i}`)) === '5') {
            const vdev = (await this.#read(`${this.be}/vdev-${i}`)) ?? '?';
            this.removed.push(vdev);
            this.log.push(`remove ${vdev}`);
          }
        }
        await this.setState(XENBUS_STATE.Reconfiguring);
        return;
      case XENBUS_STATE.Reconfigured:
        if (own !== XENBUS_STATE.Reconfiguring) return;
        await this.#scan();
        await this.setState(XENBUS_STATE.Connected);
        return;
      case XENBUS_STATE.Closing:
      case XENBUS_STATE.Closed:
        if (be === XENBUS_STATE.Closed && this.#cachedState === XENBUS_STATE.Closed) return;
        this.log.push('backend going away!');
        if (own >= XENBUS_STATE.Closing) return;
        await this.setState(XENBUS_STATE.Closed);
        return;
      default:
        return;
    }
  }
}

/** Every write a client makes, in order, as `path=value` (transaction writes included). */
export function recordWrites(xs: XsClient): string[] {
  const writes: string[] = [];
  const original = xs.write.bind(xs);
  xs.write = (path, value, options) => {
    writes.push(`${path}=${typeof value === 'string' ? value : new TextDecoder().decode(value)}`);
    return original(path, value, options);
  };
  return writes;
}

/** Options of {@link createBed}. */
export interface BedOptions {
  /** Devices seized by the stub (`DDDD:BB:DD.F`). */
  readonly seized?: readonly string[];
  readonly topology?: TopologyKind;
  /** Guests to introduce to xenstore. */
  readonly guests?: readonly number[];
}

/** Everything a xenbus test needs; `close()` tears it down. */
export interface Bed {
  readonly server: XsServer;
  /** The toolstack's client (dom0). */
  readonly toolstack: XsClient;
  /** The backend's client (dom0), with every write recorded in `writes`. */
  readonly backendXs: XsClient;
  readonly writes: string[];
  readonly owners: FakeOwners;
  readonly pool: PciDevicePool;
  /** The seized devices by address. */
  readonly devices: Map<string, DeviceFixture>;
  readonly connector: FakeConnector;
  readonly logger: RecordingLogger;
  readonly backend: XenbusBackend;
  /** A scripted pcifront of `domid` on its own unprivileged connection. */
  frontend(domid: number, options?: ScriptedFrontendOptions): ScriptedFrontend;
  /** Wait until the backend and every frontend are idle. */
  settle(): Promise<void>;
  /** The backend's writes to `<backend dir of domid>/state`, in order. */
  stateWrites(domid: number): string[];
  close(): Promise<void>;
}

/** A backend (not started yet) over a fresh daemon. */
export function createBed(options: BedOptions = {}): Bed {
  const server = new XsServer();
  for (const g of options.guests ?? [5]) server.store.introduceDomain(g);
  const toolstack = connectClient(server);
  const backendXs = connectClient(server);
  const writes = recordWrites(backendXs);
  const owners = new FakeOwners();
  const logger = recordingLogger();
  const pool = new PciDevicePool({ owners, logger });
  const devices = new Map<string, DeviceFixture>();
  for (const text of options.seized ?? ['0000:03:00.0']) {
    const address = PciAddress.parse(text);
    const fx = deviceFixture({ address });
    pool.add(fx.dev);
    devices.set(address.toString(), fx);
  }
  const connector = new FakeConnector();
  const backend = new XenbusBackend({
    xs: backendXs,
    pool,
    owners,
    connector: connector.connect,
    logger,
    ...(options.topology === undefined ? {} : { topology: options.topology }),
  });
  const frontends: ScriptedFrontend[] = [];
  const clients: XsClient[] = [toolstack, backendXs];
  const quiet = (): boolean =>
    clients.every((c) => c.pendingRequests === 0) &&
    backend.devices().every((d) => d.pendingJobs === 0) &&
    frontends.every((f) => f.pendingJobs === 0);
  const settle = async (): Promise<void> => {
    for (let round = 0; round < 1000; round++) {
      await tick();
      await backend.whenIdle();
      await Promise.all(frontends.map((f) => f.whenIdle()));
      if (!quiet()) continue;
      await tick();
      if (quiet()) return;
    }
    throw new Error('The xenbus test bed did not settle');
  };
  return {
    server,
    toolstack,
    backendXs,
    writes,
    owners,
    pool,
    devices,
    connector,
    logger,
    backend,
    frontend(domid, feOptions) {
      const xs = connectClient(server, domid);
      clients.push(xs);
      const fe = new ScriptedFrontend(xs, domid, feOptions);
      frontends.push(fe);
      return fe;
    },
    settle,
    stateWrites(domid) {
      const key = `${pciBackendPath(domid)}/state=`;
      return writes.filter((w) => w.startsWith(key)).map((w) => w.slice(key.length));
    },
    async close() {
      await backend.close();
      for (const c of clients) c.close();
    },
  };
}

/** `domId` for tests. */
export const D = domId(5);
