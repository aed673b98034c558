// SPDX-License-Identifier: MIT
/**
 * `pciback sim`: boots the simulated host of a machine description, creates every guest
 * as xl would (its devices written to xenstore at creation), lets each connect through
 * XenBus and run its program, and collects what every guest saw and what the backend
 * counted. Each guest is shut down once it has reported.
 */
import { SILENT_LOGGER, type Logger, type XenbusEventCounters } from '../platform/types.js';
import type { PcibackChannelStats } from '../pciback/channel/index.js';
import { createOpCounts } from '../pciback/device/index.js';
import { domainSpecs, type Machine } from './machine-file.js';
import { SimHost, type DeviceResult, type SimGuest } from './sim-host.js';

export type { DeviceResult } from './sim-host.js';

/** Options of {@link runSimMachine}. */
export interface SimRunOptions {
  readonly logger?: Logger;
  /** pcifront's op timeout (the original's 2 s). */
  readonly opTimeoutMs?: number;
  /** A guest that has not reported by then is destroyed. */
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

/** The whole run, the `--json` document of `pciback sim`. */
export interface SimRunResult {
  readonly topology: 'vpci' | 'passthrough';
  readonly guests: readonly GuestResult[];
  readonly devices: readonly DeviceResult[];
}

/** A channel that has not connected yet (or no longer is) has counted nothing. */
const EMPTY_CHANNEL_STATS: PcibackChannelStats = Object.freeze({
  ops: 0,
  opsByCmd: createOpCounts(),
  spuriousKicks: 0,
  irqWhileEoiPending: 0,
  workerRuns: 0,
  budgetYields: 0,
  aerRequests: 0,
  aerTimeouts: 0,
});

/** Boot the machine, run every guest to completion and report. */
export async function runSimMachine(
  machine: Machine,
  options: SimRunOptions = {},
): Promise<SimRunResult> {
  const logger = options.logger ?? SILENT_LOGGER;
  const host = await SimHost.start(machine, {
    logger,
    ...(options.opTimeoutMs === undefined ? {} : { opTimeoutMs: options.opTimeoutMs }),
    ...(options.activityIntervalMs === undefined
      ? {}
      : { activityIntervalMs: options.activityIntervalMs }),
  });
  try {
    const guests: SimGuest[] = [];
    for (const domain of machine.domains) {
      guests.push(
        await host.createGuest({
          name: domain.name,
          program: domain.program,
          memoryPages: domain.memoryPages,
          pci: domainSpecs(domain),
        }),
      );
    }
    const guestResults = await Promise.all(guests.map((guest) => runToEnd(host, guest, options)));
    return { topology: host.topology, guests: guestResults, devices: host.deviceResults() };
  } finally {
    await host.close();
  }
}

async function runToEnd(
  host: SimHost,
  guest: SimGuest,
  options: SimRunOptions,
): Promise<GuestResult> {
  const { domid } = guest;
  if (options.onGuestConnected !== undefined) {
    const notify = options.onGuestConnected;
    guest
      .waitFor((m): m is Extract<typeof m, { type: 'connected' }> => m.type === 'connected', 60_000)
      .then(() => {
        notify({
          name: guest.name,
          domid,
          channelStats: () => host.connectionStats(domid)?.channel ?? EMPTY_CHANNEL_STATS,
          kill: (reason) => {
            void host.destroyGuest(
              domid,
              `killed by the host${reason === undefined ? '' : `: ${reason}`}`,
            );
          },
        });
      })
      .catch(() => undefined);
  }
  const limitMs = options.guestTimeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      resolve('timeout');
    }, limitMs);
  });
  const first = await Promise.race([guest.outcome, timedOut]);
  clearTimeout(timer);
  if (first === 'timeout') await host.destroyGuest(domid, `no report within ${limitMs} ms`);
  else await host.retireGuest(domid);
  const outcome = await guest.outcome;
  const connection = guest.finalConnection;
  return {
    name: guest.name,
    domid,
    program: guest.program,
    devices: connection?.exported.map((d) => ({ real: d.real, guest: d.guest })) ?? [],
    ...outcome,
    ...(connection?.channel == null ? {} : { channel: connection.channel }),
    ...(connection === undefined ? {} : { events: { ...connection.events } }),
  };
}
