// SPDX-License-Identifier: MIT
/**
 * Worker entry of a simulated guest (not a test file: Node 20 workers load it from
 * dist/). It plays a PV guest kernel with pcifront: it reaches xenstore through its ring
 * page (start_info's store page and port), lets pcifront's XenBus driver publish the
 * shared page and event channel, scans the roots once the backend is Connected, runs its
 * program, and with `stayAlive` keeps following hot attach and detach (each rescan is
 * reported to the host) and answering AER requests with its program's driver (each
 * callback is a console line) until told to stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { domId, evtchnPort, type EvtchnPort, type Logger } from '../../types.js';
import { SimGuestHypercalls } from '../xen/guest-hypercalls.js';
import { isSimGuestInit } from '../xen/guest-init.js';
import { createGuestXenstoreTransport } from '../xen/guest-xenstore.js';
import { XsClient } from '../../../xenstore/client/index.js';
import {
  Pcifront,
  PcifrontXenbus,
  diffEnumerations,
  enumerate,
  formatGuestAddress,
  type EnumerationResult,
  type GuestPciRoot,
} from '../../../pcifront/index.js';
import {
  GUEST_PROGRAMS,
  guestAerDriver,
  isGuestProgramName,
} from '../../../pcifront/programs/index.js';
import type { GuestDeviceLine, GuestToHost, GuestWorkerData, HostToGuest } from './messages.js';

/** How often an idle guest looks for an AER request (ms). */
const AER_SERVICE_INTERVAL_MS = 2;

function waitInterruptsWith(hv: SimGuestHypercalls) {
  return (ports: readonly EvtchnPort[], count: number, timeoutMs: number): number[] => {
    const wanted = new Set<number>(ports);
    const fired: number[] = [];
    const deadline = performance.now() + timeoutMs;
    while (fired.length < count) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      for (const port of hv.wait(Math.min(left, 50))) if (wanted.has(port)) fired.push(port);
    }
    return fired;
  };
}

function deviceLines(scan: EnumerationResult): GuestDeviceLine[] {
  return scan.devices.map((d) => ({
    address: formatGuestAddress(d),
    ids: `${d.vendorId.toString(16).padStart(4, '0')}:${d.deviceId.toString(16).padStart(4, '0')}`,
    classCode: d.classCode,
  }));
}

function rootText(r: GuestPciRoot): string {
  return `${r.domain.toString(16).padStart(4, '0')}:${r.bus.toString(16).padStart(2, '0')}`;
}

/** The guest kernel's console: warnings and errors go to the host as lines. */
function consoleLogger(lines: string[]): Logger {
  const line =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push(`[${level}] ${msg ?? ''} ${JSON.stringify(obj)}`.trim());
    };
  return { debug: () => undefined, info: line('info'), warn: line('warn'), error: line('error') };
}

/** Resolve once `path` reads `value` (checked on every change, starting now). */
async function waitForValue(xs: XsClient, path: string, value: string): Promise<void> {
  const token = 'pcifront-device-appears';
  await new Promise<void>((resolve) => {
    void xs.watch(path, token, () => {
      xs.readString(path).then(
        (text) => {
          if (text !== value) return;
          void xs.unwatch(path, token).catch(() => undefined);
          resolve();
        },
        () => undefined,
      );
    });
  });
}

async function run(): Promise<void> {
  const port = parentPort;
  const data = workerData as GuestWorkerData;
  if (port === null) return;
  const post = (message: GuestToHost): void => {
    port.postMessage(message);
  };
  if (!isSimGuestInit(data.xen) || !isGuestProgramName(data.program)) {
    post({ type: 'failed', error: `Cannot start guest "${data.name}": bad worker data` });
    return;
  }
  const hv = new SimGuestHypercalls(data.xen);
  const xs = new XsClient(createGuestXenstoreTransport(hv, data.xen), { timeoutMs: 10_000 });
  const backendDomid = domId(data.backendDomid);
  // A program's driver with error handlers: pcifront takes the handler at creation.
  const aerDriver = guestAerDriver(data.program);
  const front: Pcifront = Pcifront.create(hv, {
    backendDomid,
    opTimeoutMs: data.opTimeoutMs,
    ...(aerDriver === undefined
      ? {}
      : {
          aerHandler: aerDriver({
            log: (line) => {
              post({ type: 'console', line });
            },
            front: () => front,
          }),
        }),
  });
  const kernelLines: string[] = [];
  let scan: EnumerationResult | undefined;
  let connectedRoots: ((roots: readonly GuestPciRoot[]) => void) | undefined;
  const connected = new Promise<readonly GuestPciRoot[]>((resolve) => {
    connectedRoots = resolve;
  });
  const makeBus = (): PcifrontXenbus =>
    new PcifrontXenbus(xs, {
      domid: hv.domid,
      endpoints: { grantRef: front.grantRef, eventPort: front.eventPort, backendDomid },
      logger: consoleLogger(kernelLines),
      kernel: {
        connect: (roots) => {
          scan = enumerate(front, { roots });
          post({ type: 'connected', roots: roots.map(rootText), devices: deviceLines(scan) });
          connectedRoots?.(roots);
        },
        removeDevice: (vdev) => {
          post({ type: 'device-removed', address: vdev.toString() });
        },
        rescan: (roots) => {
          const next = enumerate(front, { roots });
          const diff = diffEnumerations(scan ?? { devices: [] }, next);
          scan = next;
          post({
            type: 'rescanned',
            added: diff.added,
            removed: diff.removed,
            devices: deviceLines(next),
          });
        },
        closed: () => {
          post({ type: 'closed' });
        },
      },
    });
  let bus = makeBus();

  const stop = new Promise<void>((resolve) => {
    // `stop` is the only message the host sends.
    port.on('message', (_message: HostToGuest) => {
      resolve();
    });
  });
  // pcifront's AER worker: the backend's request arrives on the op port, which nothing
  // waits on between ops, and the event loop must stay free for xenstore (hot plug), so
  // the kernel polls XEN_PCIB_active on a short timer (ops also serve it as they finish).
  const aerService = setInterval(() => {
    front.serviceAer();
  }, AER_SERVICE_INTERVAL_MS);
  const shutdown = async (): Promise<void> => {
    clearInterval(aerService);
    await bus.close();
    xs.close();
  };

  // A guest booted without PCI devices probes pcifront when the toolstack later creates
  // `device/pci/0` (the xenbus core's watch on `device`).
  if (!(await bus.probe())) {
    if (!data.stayAlive) {
      post({ type: 'failed', error: 'no PCI device is attached to this guest' });
      await shutdown();
      return;
    }
    // Booted without PCI devices: the xenbus core creates (and probes) a new device once
    // the toolstack's `device/pci/0` appears with state 1.
    await waitForValue(xs, `${bus.nodename}/state`, '1');
    await bus.close();
    bus = makeBus();
    if (!(await bus.probe())) {
      post({ type: 'failed', error: 'pcifront did not probe the device the toolstack added' });
      await shutdown();
      return;
    }
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const roots = await Promise.race([
    connected,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        resolve(undefined);
      }, data.connectTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (roots === undefined) {
    const why =
      bus.fatalError?.message ?? `backend not Connected within ${data.connectTimeoutMs} ms`;
    post({
      type: 'failed',
      error: `${why}${kernelLines.length > 0 ? `; ${kernelLines.join('; ')}` : ''}`,
    });
    await shutdown();
    return;
  }

  const lines: string[] = [];
  const report = await GUEST_PROGRAMS[data.program]({
    front,
    hv,
    roots,
    log: (line) => lines.push(line),
    bindPirq: (pirq) => {
      const bound = hv.bindPirq(pirq);
      return bound < 0 ? undefined : evtchnPort(bound);
    },
    waitInterrupts: waitInterruptsWith(hv),
  });
  post({ type: 'report', report });
  if (data.stayAlive) await stop;
  await shutdown();
}

run().catch((err: unknown) => {
  parentPort?.postMessage({
    type: 'failed',
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  } satisfies GuestToHost);
});
