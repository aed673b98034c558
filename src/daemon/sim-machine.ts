// SPDX-License-Identifier: MIT
/**
 * `pciback sim`: boots a simulated Xen host from a machine description — the PCI devices,
 * pciback seizing the `hide=` ones, one worker thread per guest running pcifront and a
 * program — wires each guest's frontend to a backend channel (direct API for now; the
 * XenBus control plane replaces it later), runs the programs and collects what every
 * guest saw and what the backend counted.
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
import { SimInterrupts } from '../platform/sim/interrupts/sim-interrupts.js';
import { fireInterrupts } from '../platform/sim/interrupts/activity.js';
import {
  createXenbusEventCounters,
  DOM0,
  SILENT_LOGGER,
  type DomId,
  type Logger,
  type XenbusEventCounters,
} from '../platform/types.js';
import { PcibackDevice, type PcibackDeviceStats } from '../pciback/device/index.js';
import type { PcibackChannel, PcibackChannelStats } from '../pciback/channel/index.js';
import { connectFrontend } from './connect-frontend.js';
import { createTopology, type Topology } from '../pciback/topology/index.js';
import { hideMatches, parseHide } from '../pciback/stub/hide.js';
import { formatBdf, formatVdev } from '../toolstack/pci-spec.js';
import { PcibackError } from '../errors.js';
import { domainSpecs, type Machine, type MachineDevice } from './machine-file.js';
import type { GuestToHost, GuestWorkerData, HostToGuest } from '../platform/sim/guest/messages.js';

const GUEST_ENTRY = fileURLToPath(
  new URL('../platform/sim/guest/guest-worker.js', import.meta.url),
);

/** Options of {@link runSimMachine}. */
export interface SimRunOptions {
  readonly logger?: Logger;
  /** pcifront's op timeout (the original's 2 s). */
  readonly opTimeoutMs?: number;
  /** A guest that has not reported by then is killed. */
  readonly guestTimeoutMs?: number;
  /** Interval of the device activity that raises enabled MSI/MSI-X vectors. */
  readonly activityIntervalMs?: number;
  /**
   * Called once per guest when its backend channel is connected, before its program
   * runs; the control lets a caller destroy the guest at any point (tests use it to kill
   * a guest in the middle of an op).
   */
  readonly onGuestConnected?: (guest: SimGuestControl) => void;
}

/** A running guest, as {@link SimRunOptions.onGuestConnected} sees it. */
export interface SimGuestControl {
  readonly name: string;
  readonly domid: number;
  /** What the guest's backend channel has counted so far. */
  channelStats(): PcibackChannelStats;
  /**
   * Destroys the guest now, as `xl destroy` would, whatever it is doing (an op may be in
   * flight): its worker is terminated, the backend disconnects and resets its devices,
   * and its result has status `killed`. Does nothing once the guest has finished.
   */
  kill(reason?: string): void;
}

/** What one guest reported. */
export interface GuestResult {
  readonly name: string;
  readonly domid: number;
  readonly program: string;
  /** The devices attached, as `real -> virtual`. */
  readonly devices: readonly { readonly real: string; readonly guest: string }[];
  readonly status: 'ok' | 'failed' | 'killed';
  readonly error?: string;
  readonly report?: unknown;
  readonly channel?: PcibackChannelStats;
  readonly events?: XenbusEventCounters;
}

/** A host device and what the backend counted for it. */
export interface DeviceResult {
  readonly address: string;
  readonly seized: boolean;
  readonly owner: number | null;
  readonly backend?: PcibackDeviceStats;
  readonly interrupts?: unknown;
}

/** The whole run, the `--json` document of `pciback sim`. */
export interface SimRunResult {
  readonly topology: 'vpci' | 'passthrough';
  readonly guests: readonly GuestResult[];
  readonly devices: readonly DeviceResult[];
}

interface HostFunction {
  readonly address: PciAddress;
  readonly host: SimHostPciDevice;
  backend?: PcibackDevice;
  owner: DomId | undefined;
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
): {
  address: PciAddress;
  hardware: SimulatedFunction;
}[] {
  const slot = PciAddress.parse(device.bdf);
  if ('model' in device) {
    if (!isCatalogModel(device.model)) throw new RangeError(`Unknown model "${device.model}"`);
    return buildCatalogDevice(device.model, {
      ...firmwareWindows(index),
      ...(device.irq === undefined ? {} : { irq: device.irq }),
      hooks: interrupts.catalogHooks(slot),
    }).map(({ fn, device: hardware }) => ({ address: slot.withFunction(fn), hardware }));
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
    },
  ];
}

/** Boot the machine, run every guest to completion and report. */
export async function runSimMachine(
  machine: Machine,
  options: SimRunOptions = {},
): Promise<SimRunResult> {
  const logger = options.logger ?? SILENT_LOGGER;
  const xen = new SimHypervisor({ logger });
  const interrupts = new SimInterrupts(xen.eventArea, { logger });
  const kind = machine.pciback.passthrough ? 'passthrough' : 'vpci';
  const global = { permissive: machine.pciback.permissive };
  const hide = parseHide(machine.pciback.hide);
  const functions = new Map<number, HostFunction>();
  const activity = setInterval(() => {
    for (const fn of functions.values()) {
      if (fn.owner === undefined) continue;
      const msi = interrupts.msiControl(fn.address);
      if (msi === undefined) continue;
      if (msi.msiEnabled()) fireInterrupts(fn.host, { msi: msi.msiIrqs().map((_, i) => i) });
      else if (msi.msixEnabled()) fireInterrupts(fn.host, { msix: [0, 1, 2, 3] });
    }
  }, options.activityIntervalMs ?? 5);

  try {
    // The host's devices; pciback seizes those `hide=` selects (spec §6.1-6.2).
    for (const [index, device] of machine.devices.entries()) {
      for (const { address, hardware } of machineFunctions(device, index, interrupts)) {
        const host = new SimHostPciDevice(hardware, { address, irq: firmwareIrq(hardware) });
        const msi = interrupts.attach(host);
        const fn: HostFunction = { address, host, owner: undefined };
        if (hideMatches(hide, address)) {
          fn.backend = PcibackDevice.create(
            { host, msi, irqLines: interrupts.irqs },
            { global, logger },
          );
        }
        functions.set(address.key, fn);
      }
    }

    const runs = machine.domains.map((domain) => {
      // Resolve the specs to seized functions, as xl checks the assignable list.
      const topology = createTopology<PcibackDevice>(kind, { logger });
      const attached: HostFunction[] = [];
      for (const spec of domainSpecs(domain)) {
        if (spec.bdf === null) {
          throw new PcibackError(
            'MACHINE_INVALID',
            `Cannot attach to "${domain.name}": names are not supported by the simulator yet`,
          );
        }
        const { domain: seg, bus, dev, func } = spec.bdf;
        const matches = [...functions.values()].filter(
          (f) =>
            f.address.domain === seg &&
            f.address.bus === bus &&
            f.address.device === dev &&
            (func === '*' || f.address.fn === func),
        );
        if (matches.length === 0) {
          throw new PcibackError(
            'NO_SUCH_DEVICE',
            `Cannot attach "${formatBdf(spec.bdf)}" to "${domain.name}": no such device`,
          );
        }
        for (const fn of matches) {
          if (fn.backend === undefined) {
            throw new PcibackError(
              'NOT_ASSIGNABLE',
              `Cannot attach "${fn.address.toString()}" to "${domain.name}": it is not assignable (not in hide=)`,
            );
          }
          if (fn.owner !== undefined || attached.includes(fn)) {
            throw new PcibackError(
              'DEVICE_BUSY',
              `Cannot attach "${fn.address.toString()}" to "${domain.name}": it is already assigned`,
            );
          }
          attached.push(fn);
        }
      }
      return { domain, topology, attached };
    });

    const results = await Promise.all(
      runs.map(({ domain, topology, attached }) =>
        runGuest({
          xen,
          interrupts,
          domainName: domain.name,
          program: domain.program,
          memoryPages: domain.memoryPages,
          topology,
          attached,
          logger,
          options,
        }),
      ),
    );

    return {
      topology: kind,
      guests: results,
      devices: [...functions.values()].map((fn) => ({
        address: fn.address.toString(),
        seized: fn.backend !== undefined,
        owner: fn.owner ?? null,
        ...(fn.backend === undefined ? {} : { backend: fn.backend.stats() }),
        interrupts: interrupts.deviceStats(fn.address),
      })),
    };
  } finally {
    clearInterval(activity);
    xen.dispose();
  }
}

interface GuestRun {
  readonly xen: SimHypervisor;
  readonly interrupts: SimInterrupts;
  readonly domainName: string;
  readonly program: string;
  readonly memoryPages: number;
  readonly topology: Topology<PcibackDevice>;
  readonly attached: HostFunction[];
  readonly logger: Logger;
  readonly options: SimRunOptions;
}

async function runGuest(run: GuestRun): Promise<GuestResult> {
  const { xen, interrupts, topology, attached, logger } = run;
  const { domid, init } = xen.createDomain({ memoryPages: run.memoryPages, name: run.domainName });
  const devices: { real: string; guest: string }[] = [];
  for (const [devid, fn] of attached.entries()) {
    const backend = fn.backend;
    if (backend === undefined) continue;
    topology.add(backend, devid, (_id, guestAddress) => {
      devices.push({ real: fn.address.toString(), guest: formatVdev(guestAddress) });
    });
    interrupts.owners.register(fn.address, domid);
    fn.owner = domid;
  }
  const roots: [number, number][] = [];
  topology.publishRoots((domain, bus) => roots.push([domain, bus]));

  const data: GuestWorkerData = {
    xen: init,
    name: run.domainName,
    program: run.program,
    backendDomid: DOM0,
    opTimeoutMs: run.options.opTimeoutMs ?? 2000,
  };
  const worker = new Worker(GUEST_ENTRY, { workerData: data });
  const counters = createXenbusEventCounters();
  let channel: PcibackChannel | undefined;
  const base = { name: run.domainName, domid, program: run.program, devices };

  let killGuest: (reason: string) => void = () => undefined;
  const outcome = await new Promise<Omit<GuestResult, keyof typeof base>>((resolve) => {
    const timer = setTimeout(() => {
      resolve({
        status: 'killed',
        error: `no report within ${run.options.guestTimeoutMs ?? 60000} ms`,
      });
    }, run.options.guestTimeoutMs ?? 60000);
    const finish = (result: Omit<GuestResult, keyof typeof base>): void => {
      clearTimeout(timer);
      resolve(result);
    };
    killGuest = (reason) => {
      finish({ status: 'killed', error: reason });
    };
    worker.on('error', (err) => {
      finish({ status: 'failed', error: err.message });
    });
    worker.on('exit', (code) => {
      finish({ status: 'failed', error: `guest exited with code ${code} before reporting` });
    });
    worker.on('message', (message: GuestToHost) => {
      switch (message.type) {
        case 'frontend-ready': {
          const reply = connectBackend(message.grantRef, message.eventPort);
          worker.postMessage(reply);
          break;
        }
        case 'report':
          finish({ status: 'ok', report: message.report });
          break;
        case 'failed':
          finish({ status: 'failed', error: message.error });
          break;
      }
    });
  });

  function connectBackend(ref: number, port: number): HostToGuest {
    const connected = connectFrontend(
      xen,
      domid,
      { grantRef: ref, eventPort: port },
      { topology, counters, logger },
    );
    if (!connected.ok) return { type: 'backend-failed', error: connected.error };
    const chan = connected.channel;
    channel = chan;
    run.options.onGuestConnected?.({
      name: run.domainName,
      domid,
      channelStats: () => chan.stats(),
      kill: (reason) => {
        killGuest(`killed by the host${reason === undefined ? '' : `: ${reason}`}`);
      },
    });
    return { type: 'backend-connected', roots };
  }

  await worker.terminate();
  channel?.disconnect();
  for (const fn of attached) {
    topology.release(fn.backend as PcibackDevice);
    fn.backend?.resetDevice();
    fn.backend?.config.resetForNextGuest();
    interrupts.owners.unregister(fn.address);
    fn.owner = undefined;
  }
  xen.destroyDomain(domid);
  return {
    ...base,
    ...outcome,
    ...(channel === undefined ? {} : { channel: channel.stats() }),
    events: { ...counters },
  };
}
