// SPDX-License-Identifier: MIT
/**
 * The simulated Xen host, long-lived: the hypervisor, the machine's PCI devices,
 * pciback seizing the `hide=` ones, our xenstored serving dom0 in-process and every guest
 * through its ring page, pciback's XenBus backend, and the toolstack (domain create and
 * destroy, PCI attach/detach, the `aerState` watch). Guests are worker threads that reach
 * the backend only through XenBus, as a PV guest does.
 *
 * `pciback sim` runs a machine to completion on it; `--keep-running` serves its store on a
 * Unix socket so `pciback attach|detach|list` (or Debian's xenstore tools) act on it.
 */
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PciAddress } from '../pci/address.js';
import { parseDumpFile } from '../pci/dump.js';
import { buildCatalogDevice, isCatalogModel } from '../devices/catalog/index.js';
import { functionFromDump } from '../devices/from-dump.js';
import type { SimulatedFunction } from '../devices/simulated-function.js';
import { SimHostPciDevice, firmwareIrq } from '../platform/sim/pci-core.js';
import { SimHypervisor } from '../platform/sim/xen/hypervisor.js';
import { SimXenstoreRings } from '../platform/sim/xen/xenstore-rings.js';
import { SimInterrupts } from '../platform/sim/interrupts/sim-interrupts.js';
import { fireInterrupts } from '../platform/sim/interrupts/activity.js';
import { DOM0, SILENT_LOGGER, type DomId, type Logger } from '../platform/types.js';
import { PcibackDevice, type PcibackDeviceStats } from '../pciback/device/index.js';
import { PciStub, pcibackDeviceFactory } from '../pciback/stub/index.js';
import {
  SimPciHost,
  catalogDriverName,
  type SimPciHostEntry,
} from '../platform/sim/sim-pci-host.js';
import { XenbusBackend, type PcibackXenbusDeviceStats } from '../pciback/xenbus/index.js';
import {
  attachPci,
  createDomainNodes,
  destroyDomainNodes,
  detachPci,
  formatBdf,
  watchAerFailures,
  watchBackendErrors,
  type AerFailureWatch,
  type BackendErrorReport,
  type BackendErrorWatch,
  type PciSpec,
} from '../toolstack/index.js';
import { XsClient } from '../xenstore/client/index.js';
import { XsServer, connectInProcess } from '../xenstore/server/index.js';
import { XenStore } from '../xenstore/store/index.js';
import {
  serveXenstoreUnixSocket,
  type XsUnixSocketServer,
} from '../xenstore/transport/unix-socket.js';
import { PcibackError } from '../errors.js';
import { connectFrontend } from './connect-frontend.js';
import type { HostPciSide, HostPciSideDevice, HostPciSideFactory } from './host-pci-side.js';
import type { PciHostPlatform } from '../platform/pci-host.js';
import type { Machine, MachineDevice } from './machine-file.js';
import type {
  GuestDeviceLine,
  GuestToHost,
  GuestWorkerData,
  HostToGuest,
} from '../platform/sim/guest/messages.js';

const GUEST_ENTRY = fileURLToPath(
  new URL('../platform/sim/guest/guest-worker.js', import.meta.url),
);

/** Options of {@link SimHost.start}. */
export interface SimHostOptions {
  readonly logger?: Logger;
  /** pcifront's op timeout (the original's 2 s). */
  readonly opTimeoutMs?: number;
  /** How long a guest waits for its backend to be Connected. */
  readonly connectTimeoutMs?: number;
  /** Interval of the device activity that raises enabled MSI/MSI-X vectors. */
  readonly activityIntervalMs?: number;
}

/** What to boot. */
export interface SimGuestSpec {
  readonly name: string;
  /** A name from `GUEST_PROGRAMS`. */
  readonly program: string;
  readonly memoryPages: number;
  /** Devices attached at creation (cold plug). */
  readonly pci: readonly PciSpec[];
  /** Keep the guest running after its program reported (for hot plug). */
  readonly stayAlive?: boolean;
}

/** The end of a guest. */
export interface GuestOutcome {
  readonly status: 'ok' | 'failed' | 'killed';
  readonly error?: string;
  readonly report?: unknown;
}

/** What the guest's console showed so far. */
export interface GuestConsole {
  readonly roots: readonly string[];
  /** The devices of the last scan. */
  readonly devices: readonly GuestDeviceLine[];
  readonly rescans: number;
  /** Each rescan's changes, in order. */
  readonly changes: readonly {
    readonly added: readonly string[];
    readonly removed: readonly string[];
  }[];
}

/** A function of the machine. */
interface HostFunction {
  readonly address: PciAddress;
  readonly host: SimHostPciDevice;
}

/** A device of the machine and what the backend counted for it. */
export interface DeviceResult {
  readonly address: string;
  readonly seized: boolean;
  readonly owner: number | null;
  /** The driver bound to it (`pciback` when seized). */
  readonly driver: string | null;
  readonly backend?: PcibackDeviceStats;
  readonly interrupts?: unknown;
}

type Listener = (message: GuestToHost) => void;

/** A running guest. */
export class SimGuest {
  readonly name: string;
  readonly domid: DomId;
  readonly program: string;
  /** Settles once, when the guest reported, failed, was killed or was destroyed. */
  readonly outcome: Promise<GuestOutcome>;
  readonly #worker: Worker;
  readonly #listeners = new Set<Listener>();
  #settle: (outcome: GuestOutcome) => void = () => undefined;
  #console: {
    roots: string[];
    devices: GuestDeviceLine[];
    rescans: number;
    changes: { added: readonly string[]; removed: readonly string[] }[];
  } = { roots: [], devices: [], rescans: 0, changes: [] };
  #finished = false;
  #reported = false;
  /** The backend's last view of the connection, taken just before the domain went. */
  finalConnection: PcibackXenbusDeviceStats | undefined;
  /** Why the domain was destroyed (set when it was). */
  destroyedBecause: string | undefined;

  constructor(name: string, domid: DomId, program: string, worker: Worker) {
    this.name = name;
    this.domid = domid;
    this.program = program;
    this.#worker = worker;
    this.outcome = new Promise((resolve) => {
      this.#settle = resolve;
    });
    worker.on('message', (message: GuestToHost) => {
      this.#receive(message);
    });
    worker.on('error', (err) => {
      this.finish({ status: 'failed', error: err.message });
    });
    worker.on('exit', (code) => {
      if (!this.#reported) {
        this.finish({ status: 'failed', error: `guest exited with code ${code} before reporting` });
      }
    });
  }

  /** What the guest saw so far. */
  get console(): GuestConsole {
    return this.#console;
  }

  /** True once the outcome is settled. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Wait for the first message satisfying `match` (tests, hot plug). */
  waitFor<T extends GuestToHost>(
    match: (message: GuestToHost) => message is T,
    timeoutMs: number,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(
          new PcibackError(
            'GUEST_TIMEOUT',
            `Guest "${this.name}" said nothing expected within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const listener: Listener = (message) => {
        if (!match(message)) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(message);
      };
      this.#listeners.add(listener);
    });
  }

  /** Call `listener` for every message of the guest's console from now on. */
  onMessage(listener: (message: GuestToHost) => void): void {
    this.#listeners.add(listener);
  }

  /** Ask a `stayAlive` guest to finish cleanly. */
  stop(): void {
    this.#worker.postMessage({ type: 'stop' } satisfies HostToGuest);
  }

  /** @internal Settle the outcome (first call wins). */
  finish(outcome: GuestOutcome): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#settle(outcome);
  }

  /** @internal Stop the worker thread. */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }

  #receive(message: GuestToHost): void {
    switch (message.type) {
      case 'connected':
        this.#console = {
          ...this.#console,
          roots: [...message.roots],
          devices: [...message.devices],
        };
        break;
      case 'rescanned':
        this.#console = {
          ...this.#console,
          devices: [...message.devices],
          rescans: this.#console.rescans + 1,
          changes: [...this.#console.changes, { added: message.added, removed: message.removed }],
        };
        break;
      case 'report':
        this.#reported = true;
        this.finish({ status: 'ok', report: message.report });
        break;
      case 'failed':
        this.finish({ status: 'failed', error: message.error });
        break;
      case 'device-removed':
      case 'closed':
      case 'console':
        break;
    }
    for (const listener of [...this.#listeners]) listener(message);
  }
}

/**
 * Firmware windows of the `index`-th machine device, so catalog devices do not overlap:
 * 64 MiB of 32-bit MMIO from 0xc0000000, 1 GiB of 64-bit MMIO from 0x38_0000_0000 and
 * 1 KiB of I/O from 0x2000, per device.
 */
function firmwareWindows(index: number): { mmioBase: bigint; mmio64Base: bigint; ioBase: bigint } {
  return {
    mmioBase: 0xc0000000n + BigInt(index) * 0x04000000n,
    mmio64Base: 0x3800000000n + BigInt(index) * 0x40000000n,
    ioBase: 0x2000n + BigInt(index) * 0x400n,
  };
}

function machineFunctions(
  device: MachineDevice,
  index: number,
  interrupts: SimInterrupts,
): { address: PciAddress; hardware: SimulatedFunction; driver: string | null }[] {
  const slot = PciAddress.parse(device.bdf);
  if ('model' in device) {
    const model = device.model;
    if (!isCatalogModel(model)) throw new RangeError(`Unknown model "${model}"`);
    return buildCatalogDevice(model, {
      ...firmwareWindows(index),
      ...(device.irq === undefined ? {} : { irq: device.irq }),
      hooks: interrupts.catalogHooks(slot),
    }).map(({ fn, device: hardware }) => ({
      address: slot.withFunction(fn),
      hardware,
      driver: catalogDriverName(model, fn),
    }));
  }
  const dumps = parseDumpFile(readFileSync(device.dump), device.dump);
  const wanted = device.dumpBdf === undefined ? undefined : PciAddress.parse(device.dumpBdf);
  const dump = wanted === undefined ? dumps[0] : dumps.find((d) => d.address.equals(wanted));
  if (dump === undefined) {
    throw new PcibackError(
      'MACHINE_INVALID',
      `Cannot find the device of "${device.bdf}" in "${device.dump}"`,
    );
  }
  const barSizes = new Map(
    Object.entries(device.barSizes ?? {}).map(([k, v]) => [Number(k), BigInt(v)] as const),
  );
  return [
    {
      address: slot,
      hardware: functionFromDump(dump, { barSizes, hooks: interrupts.deviceHooks(slot) }),
      // A dump does not say which dom0 driver would take it.
      driver: null,
    },
  ];
}

/** The simulated host. Create with {@link SimHost.start}; always {@link SimHost.close}. */
export class SimHost {
  readonly xen: SimHypervisor;
  readonly interrupts: SimInterrupts;
  readonly server: XsServer;
  /** The host's PCI bus with its kernel-like driver core (the side's). */
  readonly pci: PciHostPlatform;
  /** Where the PCI bus comes from: the simulated machine, or Linux sysfs. */
  readonly side: HostPciSide;
  /** pciback's stub: the seized devices and their policy. */
  readonly stub: PciStub;
  readonly backend: XenbusBackend;
  readonly topology: 'vpci' | 'passthrough';
  readonly #toolstack: XsClient;
  readonly #guests = new Map<number, SimGuest>();
  readonly #logger: Logger;
  readonly #options: SimHostOptions;
  readonly #activity: ReturnType<typeof setInterval>;
  #aerWatch: AerFailureWatch | undefined;
  #errorWatch: BackendErrorWatch | undefined;
  readonly #errorListeners: ((report: BackendErrorReport) => void)[] = [];
  #socket: XsUnixSocketServer | undefined;
  #closed = false;
  #onDestroyed: ((guest: SimGuest) => void) | undefined;
  readonly #destroying = new Map<number, Promise<void>>();

  private constructor(machine: Machine, options: SimHostOptions, side: HostPciSideFactory) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    const logger = this.#logger;
    this.xen = new SimHypervisor({ logger });
    this.interrupts = new SimInterrupts(this.xen.eventArea, { logger });
    this.topology = machine.pciback.passthrough ? 'passthrough' : 'vpci';
    // The daemon asks the hypervisor whether a domain exists, as C xenstored does.
    const store = new XenStore({
      domainExists: (d) => this.xen.guestInit(d as DomId) !== undefined,
    });
    this.server = new XsServer({
      store,
      domainRings: new SimXenstoreRings(this.xen),
      log: (line) => {
        logger.debug({ line }, 'xenstored');
      },
    });
    this.#toolstack = new XsClient(connectInProcess(this.server));
    this.side = side({ xen: this.xen, interrupts: this.interrupts, logger });
    this.pci = this.side.pci;
    const { side: pciSide } = this;
    this.stub = new PciStub(this.pci, {
      factory: pcibackDeviceFactory((a) => pciSide.stubDevice(a), {
        global: { permissive: machine.pciback.permissive },
        irqLines: this.interrupts.irqs,
        host: this.pci,
        logger,
      }),
      owners: this.interrupts.owners,
      hide: machine.pciback.hide,
      ...(this.side.stubDriverName === undefined ? {} : { driverName: this.side.stubDriverName }),
      logger,
      // The connection drops the device and reports it on its error node (§6.4+).
      onForcedRelease: (address, domid) => {
        void this.backend.withdraw(address, domid);
      },
    });
    // Boot: pciback registers and seizes what hide= names, then dom0's drivers take the rest.
    this.side.connectStub(this.stub);
    this.backend = new XenbusBackend({
      xs: new XsClient(connectInProcess(this.server)),
      pool: this.stub,
      owners: this.interrupts.owners,
      connector: (domid, endpoints, opts) => connectFrontend(this.xen, domid, endpoints, opts),
      topology: this.topology,
      logger,
    });
    this.#activity = setInterval(() => {
      this.#raiseDeviceInterrupts();
    }, options.activityIntervalMs ?? 5);
  }

  /** Boot the machine's host side (no guest yet) on the machine's simulated PCI bus. */
  static start(machine: Machine, options: SimHostOptions = {}): Promise<SimHost> {
    return SimHost.startOn(machine, simPciSide(machine), options);
  }

  /**
   * Boot the host side on another PCI bus (`side`): the machine's `devices` are not used,
   * its `pciback` settings and `domains` are.
   *
   * @example
   * const host = await SimHost.startOn(machine, linuxPciSide(new LinuxPciHost({ io })));
   */
  static async startOn(
    machine: Machine,
    side: HostPciSideFactory,
    options: SimHostOptions = {},
  ): Promise<SimHost> {
    const host = new SimHost(machine, options, side);
    try {
      await host.backend.start();
      host.#aerWatch = await watchAerFailures(host.#toolstack, {
        logger: host.#logger,
        destroyDomain: (domid, reason) => host.destroyGuest(domid, reason),
      });
      host.#errorWatch = await watchBackendErrors(host.#toolstack, {
        logger: host.#logger,
        onError: (report) => {
          host.#logger.warn(
            { domid: report.domid, devid: report.devid },
            `PCI backend of domain ${report.domid} reports: ${report.text}`,
          );
          for (const listener of host.#errorListeners) listener(report);
        },
      });
      return host;
    } catch (err) {
      await host.close();
      throw err;
    }
  }

  /** Call `listener` whenever a guest is destroyed (by the toolstack, a test or `close`). */
  onGuestDestroyed(listener: (guest: SimGuest) => void): void {
    this.#onDestroyed = listener;
  }

  /** Call `listener` for every report on a PCI backend's error node (the toolstack's view). */
  onBackendError(listener: (report: BackendErrorReport) => void): void {
    this.#errorListeners.push(listener);
  }

  /** Every running guest. */
  guests(): SimGuest[] {
    return [...this.#guests.values()];
  }

  /** A guest by name or domid. */
  guest(nameOrDomid: string | number): SimGuest | undefined {
    for (const g of this.#guests.values()) {
      if (g.domid === nameOrDomid || g.name === nameOrDomid) return g;
    }
    return undefined;
  }

  /** The backend's view of a guest's connection. */
  connectionStats(domid: number): PcibackXenbusDeviceStats | undefined {
    return this.backend.device(domid)?.stats();
  }

  /**
   * Create a domain as xl does: the hypervisor domain, its xenstore home, INTRODUCE, the
   * PCI devices in xenstore, then the guest's kernel (a worker).
   */
  async createGuest(spec: SimGuestSpec): Promise<SimGuest> {
    if (this.guest(spec.name) !== undefined) {
      throw new PcibackError(
        'DOMAIN_EXISTS',
        `Cannot create domain "${spec.name}": the name is taken`,
      );
    }
    const specs = spec.pci.flatMap((s) => this.#expandFunctions(s, spec.name));
    const { domid, init } = this.xen.createDomain({
      memoryPages: spec.memoryPages,
      name: spec.name,
    });
    try {
      const store = this.xen.xenstoreOf(domid);
      if (store === undefined) throw new Error(`Domain ${domid} has no xenstore ring`);
      await createDomainNodes(this.#toolstack, { domid, name: spec.name, store });
      for (const pci of specs) {
        await attachPci(this.#toolstack, {
          domid,
          domainName: spec.name,
          spec: pci,
          starting: true,
        });
      }
    } catch (err) {
      await destroyDomainNodes(this.#toolstack, domid).catch(() => undefined);
      this.xen.destroyDomain(domid);
      throw err;
    }
    const data: GuestWorkerData = {
      xen: init,
      name: spec.name,
      program: spec.program,
      backendDomid: DOM0,
      opTimeoutMs: this.#options.opTimeoutMs ?? 2000,
      connectTimeoutMs: this.#options.connectTimeoutMs ?? 10_000,
      stayAlive: spec.stayAlive === true,
    };
    const guest = new SimGuest(
      spec.name,
      domid,
      spec.program,
      new Worker(GUEST_ENTRY, { workerData: data }),
    );
    this.#guests.set(domid, guest);
    this.#logger.info(
      {
        domid,
        name: spec.name,
        devices: specs.map((s) => formatBdf(s.bdf ?? { domain: 0, bus: 0, dev: 0, func: 0 })),
      },
      'Guest created',
    );
    return guest;
  }

  /** `xl pci-attach`: hot add to a running guest (waits for the backend, as libxl). */
  async attach(domid: number, spec: PciSpec): Promise<void> {
    const guest = this.#requireGuest(domid);
    for (const one of this.#expandFunctions(spec, guest.name)) {
      await attachPci(this.#toolstack, { domid, domainName: guest.name, spec: one });
    }
  }

  /** `xl pci-detach`. */
  async detach(domid: number, bdf: string): Promise<void> {
    this.#requireGuest(domid);
    await detachPci(this.#toolstack, { domid, bdf });
  }

  /**
   * `xl destroy`: stop the guest's kernel whatever it is doing, remove its device trees
   * (pciback resets and releases the devices), RELEASE it and free the domain.
   */
  async destroyGuest(domid: number, reason?: string): Promise<void> {
    const guest = this.#guests.get(domid);
    if (guest === undefined) return;
    let pending = this.#destroying.get(domid);
    if (pending === undefined) {
      pending = this.#destroy(guest, reason ?? 'destroyed by the host').finally(() => {
        this.#destroying.delete(domid);
        this.#guests.delete(domid);
      });
      this.#destroying.set(domid, pending);
    }
    await pending;
  }

  /** The guest stays listed until its domain is gone and its devices are back in the pool. */
  async #destroy(guest: SimGuest, reason: string): Promise<void> {
    const { domid } = guest;
    guest.finalConnection = this.connectionStats(domid);
    guest.destroyedBecause = reason;
    guest.finish({ status: 'killed', error: reason });
    this.#logger.info({ domid, name: guest.name, reason }, 'Guest destroyed');
    await guest.terminate();
    await destroyDomainNodes(this.#toolstack, domid);
    await this.backend.whenIdle();
    this.xen.destroyDomain(domid);
    this.#onDestroyed?.(guest);
  }

  /**
   * A guest that finished on its own (its program reported): it shuts down cleanly, as
   * `xl shutdown` then the domain's death would.
   */
  async retireGuest(domid: number): Promise<void> {
    const guest = this.#guests.get(domid);
    if (guest === undefined) return;
    guest.stop();
    await this.destroyGuest(domid);
  }

  /** Serve the store on a Unix socket for dom0 tools. */
  async serveSocket(path: string): Promise<XsUnixSocketServer> {
    this.#socket ??= await serveXenstoreUnixSocket(path, { server: this.server });
    return this.#socket;
  }

  /** A function of the machine: its PCI core view, and pciback's device when seized. */
  hostFunction(
    address: PciAddress,
  ): { readonly host: HostPciSideDevice; readonly backend?: PcibackDevice } | undefined {
    const host = this.side.device(address);
    if (host === undefined) return undefined;
    const backend = this.stub.get(address);
    return backend === undefined ? { host } : { host, backend };
  }

  /** The machine's functions and what the backend counted. */
  deviceResults(): DeviceResult[] {
    return this.side.functions().map((address) => {
      const backend = this.stub.get(address);
      return {
        address: address.toString(),
        seized: backend !== undefined,
        owner: this.stub.userOf(address),
        driver: this.pci.info(address)?.driver ?? null,
        ...(backend === undefined ? {} : { backend: backend.stats() }),
        interrupts: this.side.deviceStats?.(address),
      };
    });
  }

  /** Destroy every guest and stop everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#activity);
    for (const domid of [...this.#guests.keys()])
      await this.destroyGuest(domid).catch(() => undefined);
    await this.#aerWatch?.close().catch(() => undefined);
    await this.#errorWatch?.close().catch(() => undefined);
    await this.backend.close().catch(() => undefined);
    await this.#socket?.close();
    this.#toolstack.close();
    this.server.closeAll();
    this.xen.dispose();
    this.side.close?.();
  }

  #requireGuest(domid: number): SimGuest {
    const guest = this.#guests.get(domid);
    if (guest === undefined)
      throw new PcibackError('NO_SUCH_DOMAIN', `Cannot find domain ${domid}`);
    return guest;
  }

  /**
   * xl's checks before it writes anything (DESIGN.md §3): every function must be
   * assignable (seized by pciback) and free. The simulator knows its bus, so `BB:DD.*`
   * becomes one spec per present function (libxl reads sysfs for the same).
   */
  #expandFunctions(spec: PciSpec, domainName: string): PciSpec[] {
    if (spec.bdf === null) {
      throw new PcibackError(
        'NOT_SUPPORTED',
        `Cannot attach a device by name to "${domainName}": name the device by its address`,
      );
    }
    const { domain, bus, dev, func } = spec.bdf;
    const fns = this.side
      .functions()
      .filter(
        (a) =>
          a.domain === domain &&
          a.bus === bus &&
          a.device === dev &&
          (func === '*' || a.fn === func),
      )
      .sort((a, b) => a.fn - b.fn);
    if (fns.length === 0) {
      throw new PcibackError(
        'NO_SUCH_DEVICE',
        `Cannot attach "${formatBdf(spec.bdf)}" to "${domainName}": no such device`,
      );
    }
    for (const address of fns) {
      const cannot = `Cannot attach "${address.toString()}" to "${domainName}"`;
      if (this.stub.get(address) === undefined) {
        throw new PcibackError('NOT_ASSIGNABLE', `${cannot}: it is not assignable (not in hide=)`);
      }
      const user = this.stub.userOf(address);
      if (user !== null) {
        throw new PcibackError(
          'DEVICE_BUSY',
          `${cannot}: it is already assigned to domain ${user}`,
        );
      }
    }
    return fns.map((a) => ({ ...spec, bdf: { domain, bus, dev, func: a.fn } }));
  }

  #raiseDeviceInterrupts(): void {
    this.side.raiseInterrupts?.((address) => this.stub.userOf(address) !== null);
  }
}

/**
 * The simulated machine's PCI bus as a {@link HostPciSide}: its devices (catalog models
 * and dumps) on a `SimPciHost`, pciback registered as a driver of its driver core, dom0's
 * drivers bound to the rest, and device activity raising enabled vectors.
 */
export function simPciSide(machine: Machine): HostPciSideFactory {
  return ({ interrupts, logger }) => {
    const functions = new Map<number, HostFunction>();
    const entries: SimPciHostEntry[] = [];
    for (const [index, device] of machine.devices.entries()) {
      for (const { address, hardware, driver } of machineFunctions(device, index, interrupts)) {
        const host = new SimHostPciDevice(hardware, { address, irq: firmwareIrq(hardware) });
        interrupts.attach(host);
        entries.push({ address, host, originalDriver: driver });
        functions.set(address.key, { address, host });
      }
    }
    const dom0Drivers = [...new Set(entries.flatMap((e) => e.originalDriver ?? []))];
    const pci = new SimPciHost(entries, { logger, dom0Drivers });
    return {
      pci,
      functions: () => [...functions.values()].map((f) => f.address),
      device: (address) => functions.get(address.key)?.host,
      stubDevice: (address) => pci.stubDevice(address, interrupts),
      connectStub: (stub) => {
        pci.registerDriver(stub.driverName, stub);
        pci.onDriverUnbinding((address) => {
          stub.driverUnbinding(address);
        });
        pci.bindDom0Drivers();
      },
      deviceStats: (address) => interrupts.deviceStats(address),
      raiseInterrupts: (inUse) => {
        for (const fn of functions.values()) {
          if (!inUse(fn.address)) continue;
          const msi = interrupts.msiControl(fn.address);
          if (msi === undefined) continue;
          if (msi.msiEnabled()) fireInterrupts(fn.host, { msi: msi.msiIrqs().map((_, i) => i) });
          else if (msi.msixEnabled()) fireInterrupts(fn.host, { msix: [0, 1, 2, 3] });
        }
      },
    };
  };
}
