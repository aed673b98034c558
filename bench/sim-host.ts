// SPDX-License-Identifier: MIT
/**
 * The benchmark's simulated host: the same wiring as `daemon/sim-machine.ts` (devices
 * seized by pciback, a vpci topology per guest, the guest's page mapped, its port bound
 * with late EOI to a `PcibackChannel` scheduled with `setImmediate`, the backend on the
 * main event loop), but with guests that run `pcifront-guest.ts` and take commands, so a
 * suite can time things while the guests stay connected. Also the measuring helpers the
 * suites share (percentiles, main-thread CPU).
 */
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { PciAddress } from '../src/pci/address.js';
import { buildCatalogDevice, type CatalogModel } from '../src/devices/catalog/index.js';
import type { SimulatedFunction } from '../src/devices/simulated-function.js';
import { SimHostPciDevice, firmwareIrq } from '../src/platform/sim/pci-core.js';
import { SimHypervisor, type SimHypervisorOptions } from '../src/platform/sim/xen/hypervisor.js';
import { SimInterrupts } from '../src/platform/sim/interrupts/sim-interrupts.js';
import {
  DOM0,
  createXenbusEventCounters,
  type DomId,
  type XenbusEventCounters,
} from '../src/platform/types.js';
import { PcibackDevice } from '../src/pciback/device/index.js';
import type { PcibackChannel } from '../src/pciback/channel/index.js';
import { connectFrontend } from '../src/daemon/connect-frontend.js';
import { createTopology, type Topology } from '../src/pciback/topology/index.js';
import type {
  BenchGuestAddress,
  BenchGuestData,
  BenchGuestMessage,
  BenchHostMessage,
} from './guest-protocol.js';

const GUEST_ENTRY = new URL('./pcifront-guest.js', import.meta.url);

/** Latency figures of one sample set, in microseconds. */
export interface LatencyStats {
  readonly samples: number;
  readonly medianUs: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

/** Median, p99 and max (nearest rank, as `round-trip.ts` computes them). */
export function latencyStats(latenciesUs: ArrayLike<number>): LatencyStats {
  const sorted = Float64Array.from(latenciesUs).sort();
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    samples: sorted.length,
    medianUs: at(0.5),
    p99Us: at(0.99),
    maxUs: sorted[sorted.length - 1] ?? 0,
  };
}

/**
 * CPU time of the main thread (the backend's thread) in ns. Node 20 has no
 * `process.threadCpuUsage`, and `process.cpuUsage()` counts every thread, guests
 * included, so this reads the main thread's `schedstat` (ns on CPU) from /proc; where
 * that is missing it falls back to the whole process's user + system time.
 */
export function mainThreadCpuNs(): { ns: number; source: 'schedstat' | 'process' } {
  try {
    const text = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8');
    const ns = Number(text.split(' ')[0]);
    if (Number.isFinite(ns)) return { ns, source: 'schedstat' };
  } catch {
    // Not Linux, or schedstats unavailable: use the process-wide figure.
  }
  const u = process.cpuUsage();
  return { ns: (u.user + u.system) * 1000, source: 'process' };
}

/** Main-thread CPU while `work` runs, as % of one core of the wall time. */
export async function measureMainCpu<T>(
  work: () => Promise<T>,
): Promise<{ result: T; cpuPercent: number; wallMs: number; source: string }> {
  const c0 = mainThreadCpuNs();
  const t0 = performance.now();
  const result = await work();
  const wallMs = performance.now() - t0;
  const c1 = mainThreadCpuNs();
  return {
    result,
    cpuPercent: ((c1.ns - c0.ns) / (wallMs * 1e6)) * 100,
    wallMs,
    source: c1.source,
  };
}

/** Resolves after `ms` on the event loop (the backend keeps serving meanwhile). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * How long to let the backend settle before a measured phase: every `Atomics.waitAsync`
 * the backend's event loop resolves early leaves its timeout task (1000 ms by default)
 * behind, and those tasks fire, and cost main-thread CPU, up to that long after a burst.
 * Waiting them out keeps one phase's leftovers out of the next phase's figures.
 */
export const SETTLE_MS = 1200;

/** Options of {@link BenchHost.startGuest}. */
export interface BenchGuestOptions {
  readonly name: string;
  /** Seized devices exported to the guest (vpci); may be empty. */
  readonly devices: readonly PcibackDevice[];
  /** The guest's spin before blocking (the simulator's guests use 2000). */
  readonly spinIterations: number;
  /** pcifront's op timeout (default 2000 ms). */
  readonly opTimeoutMs?: number;
}

type GuestMessageOf<T extends BenchGuestMessage['type']> = Extract<BenchGuestMessage, { type: T }>;

/** A connected benchmark guest. */
export interface BenchGuest {
  readonly name: string;
  readonly domid: DomId;
  /** The devices as the guest addresses them, in the order given. */
  readonly guestAddresses: readonly BenchGuestAddress[];
  /** Sends a command and resolves with the guest's reply of `replyType`. */
  request<T extends BenchGuestMessage['type']>(
    message: BenchHostMessage,
    replyType: T,
    timeoutMs?: number,
  ): Promise<GuestMessageOf<T>>;
  /** Ends a `flood` or `burn` loop (the reply is the pending request's answer). */
  stopLoop(): void;
  /** The backend channel's counters. */
  channel(): PcibackChannel;
  /** Event counters of the guest's bound channel. */
  readonly events: XenbusEventCounters;
  /** Disconnects, ends the worker and destroys the domain. */
  stop(): Promise<void>;
}

/**
 * Devices, pciback and guests on one simulated host.
 *
 * @example
 * const host = new BenchHost();
 * const [nic] = host.seizeCatalog('nic-sriov', new PciAddress(0, 1, 0, 0));
 * const guest = await host.startGuest({ name: 'g', devices: [nic], spinIterations: 2000 });
 */
export class BenchHost {
  readonly xen: SimHypervisor;
  readonly interrupts: SimInterrupts;
  #windows = 0;
  readonly #guests = new Set<BenchGuest>();

  constructor(options: SimHypervisorOptions = {}) {
    this.xen = new SimHypervisor(options);
    this.interrupts = new SimInterrupts(this.xen.eventArea);
  }

  /** Seizes `hardware` at `address` (pciback's backend state; the platform's device). */
  seize(address: PciAddress, hardware: SimulatedFunction): PcibackDevice {
    const host = new SimHostPciDevice(hardware, { address, irq: firmwareIrq(hardware) });
    const msi = this.interrupts.attach(host);
    return PcibackDevice.create(
      { host, msi, irqLines: this.interrupts.irqs },
      { global: { permissive: false } },
    );
  }

  /**
   * Builds a catalog device's functions (own firmware windows, as the simulator gives each
   * machine device) and returns them as the functions `fns` (default: the model's own
   * numbers) of `slot`.
   */
  buildCatalog(model: CatalogModel, slot: PciAddress): { fn: number; hw: SimulatedFunction }[] {
    const index = this.#windows++;
    return buildCatalogDevice(model, {
      // 16 MiB of 32-bit MMIO, 1 GiB of 64-bit MMIO and 256 bytes of I/O per device.
      mmioBase: 0xc0000000n + BigInt(index) * 0x01000000n,
      mmio64Base: 0x3800000000n + BigInt(index) * 0x40000000n,
      ioBase: 0x2000n + BigInt(index) * 0x100n,
      hooks: this.interrupts.catalogHooks(slot),
    }).map(({ fn, device }) => ({ fn, hw: device }));
  }

  /** Builds and seizes every function of a catalog device in `slot`. */
  seizeCatalog(model: CatalogModel, slot: PciAddress): PcibackDevice[] {
    return this.buildCatalog(model, slot).map(({ fn, hw }) =>
      this.seize(slot.withFunction(fn), hw),
    );
  }

  /** Starts a guest worker, exports `devices` to it and connects its frontend. */
  async startGuest(options: BenchGuestOptions): Promise<BenchGuest> {
    const { xen } = this;
    const topology: Topology<PcibackDevice> = createTopology<PcibackDevice>('vpci');
    const { domid, init } = xen.createDomain({ memoryPages: 16, name: options.name });
    const guestAddresses: BenchGuestAddress[] = [];
    for (const [devid, dev] of options.devices.entries()) {
      const a = topology.add(dev, devid, () => undefined);
      guestAddresses.push({ domain: a.domain, bus: a.bus, devfn: (a.device << 3) | a.fn });
      this.interrupts.owners.register(dev.address, domid);
    }
    const roots: [number, number][] = [];
    topology.publishRoots((domain, bus) => roots.push([domain, bus]));

    const control = new SharedArrayBuffer(4);
    const data: BenchGuestData = {
      xen: init,
      name: options.name,
      backendDomid: DOM0,
      opTimeoutMs: options.opTimeoutMs ?? 2000,
      spinIterations: options.spinIterations,
      control,
    };
    const worker = new Worker(GUEST_ENTRY, { workerData: data });
    const counters = createXenbusEventCounters();
    let chan: PcibackChannel | undefined;

    const inbox: BenchGuestMessage[] = [];
    const waiters: (() => void)[] = [];
    let exited = false;
    const wake = (): void => {
      for (const w of waiters.splice(0)) w();
    };
    worker.on('message', (m: BenchGuestMessage) => {
      if (m.type === 'frontend-ready') {
        worker.postMessage(connect(m.grantRef, m.eventPort));
        return;
      }
      inbox.push(m);
      wake();
    });
    worker.on('error', (err) => {
      inbox.push({ type: 'failed', error: err.message });
      exited = true;
      wake();
    });
    worker.on('exit', () => {
      exited = true;
      wake();
    });

    function connect(ref: number, port: number): BenchHostMessage {
      const connected = connectFrontend(
        xen,
        domid,
        { grantRef: ref, eventPort: port },
        { topology, counters },
      );
      if (!connected.ok) return { type: 'connect-failed', error: connected.error };
      chan = connected.channel;
      return { type: 'connected', roots };
    }

    const next = async <T extends BenchGuestMessage['type']>(
      type: T,
      timeoutMs: number,
    ): Promise<GuestMessageOf<T>> => {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const failed = inbox.find((m) => m.type === 'failed');
        if (failed?.type === 'failed') {
          throw new Error(`Cannot run bench guest "${options.name}": ${failed.error}`);
        }
        const i = inbox.findIndex((m) => m.type === type);
        if (i >= 0) return inbox.splice(i, 1)[0] as GuestMessageOf<T>;
        const left = deadline - performance.now();
        if (exited || left <= 0) {
          throw new Error(
            `Cannot get "${type}" from bench guest "${options.name}": ${exited ? 'the worker exited' : `no answer within ${timeoutMs} ms`}`,
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    };

    const guest: BenchGuest = {
      name: options.name,
      domid,
      guestAddresses,
      events: counters,
      request: (message, replyType, timeoutMs = 60_000) => {
        worker.postMessage(message);
        return next(replyType, timeoutMs);
      },
      stopLoop: () => {
        Atomics.store(new Int32Array(control), 0, 1);
      },
      channel: () => {
        if (chan === undefined) throw new Error(`Bench guest "${options.name}" is not connected`);
        return chan;
      },
      stop: async () => {
        this.#guests.delete(guest);
        Atomics.store(new Int32Array(control), 0, 1);
        worker.postMessage({ type: 'exit' } satisfies BenchHostMessage);
        const timer = setTimeout(() => void worker.terminate(), 2000);
        if (!exited) await new Promise((resolve) => worker.once('exit', resolve));
        clearTimeout(timer);
        chan?.disconnect();
        for (const dev of options.devices) {
          topology.release(dev);
          this.interrupts.owners.unregister(dev.address);
        }
        xen.destroyDomain(domid);
      },
    };
    this.#guests.add(guest);
    // Connected once the guest's `frontend-ready` has been answered (set in `connect`).
    const connected = (): boolean => chan !== undefined;
    const hasExited = (): boolean => exited;
    const t0 = performance.now();
    while (!connected()) {
      if (hasExited() || performance.now() - t0 > 10_000) {
        await guest.stop();
        throw new Error(`Cannot connect bench guest "${options.name}"`);
      }
      await sleep(1);
    }
    return guest;
  }

  /** Stops every guest still running and disposes of the hypervisor. */
  async dispose(): Promise<void> {
    for (const g of [...this.#guests]) await g.stop();
    this.xen.dispose();
  }
}

/** `new PciAddress(0, bus, device, fn)`. */
export function hostAddress(bus: number, device: number, fn = 0): PciAddress {
  return new PciAddress(0, bus, device, fn);
}
