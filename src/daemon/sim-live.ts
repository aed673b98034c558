// SPDX-License-Identifier: MIT
/**
 * `pciback sim --keep-running`: the simulated host stays up with its guests running and
 * its store on a Unix socket, so a toolstack (`pciback attach|detach|list`, Debian's
 * xenstore tools, pyxs) can hot-plug devices while the guests follow through XenBus.
 * What the guests' consoles show is reported line by line as it happens.
 */
import { SILENT_LOGGER, type Logger } from '../platform/types.js';
import { domainSpecs, type Machine } from './machine-file.js';
import { SimHost, type SimGuest } from './sim-host.js';
import type { HostPciSideFactory } from './host-pci-side.js';
import type { GuestToHost } from '../platform/sim/guest/messages.js';

/** Options of {@link startLiveSim}. */
export interface LiveSimOptions {
  /** Where to serve the store. */
  readonly socketPath: string;
  readonly opTimeoutMs?: number;
  readonly logger?: Logger;
  /** One line per event worth showing (guest connected, rescan, report, end). */
  readonly onLine: (line: string) => void;
  /** The PCI bus (default: the machine's simulated devices). */
  readonly side?: HostPciSideFactory;
}

/** A running live simulator. */
export interface LiveSim {
  readonly host: SimHost;
  readonly socketPath: string;
  /** Stop every guest and the host. */
  close(): Promise<void>;
}

function describe(guest: SimGuest, message: GuestToHost): string | undefined {
  const who = `${guest.name} (domid ${guest.domid})`;
  switch (message.type) {
    case 'connected':
      return `${who}: connected, roots ${message.roots.join(' ')}, ${message.devices.length} function(s): ${message.devices.map((d) => `${d.address} [${d.ids}]`).join(', ')}`;
    case 'rescanned': {
      const change = [...message.added.map((a) => `+${a}`), ...message.removed.map((a) => `-${a}`)];
      return `${who}: rescanned, ${change.length === 0 ? 'no change' : change.join(' ')}; now ${message.devices.length} function(s)`;
    }
    case 'device-removed':
      return `${who}: removing ${message.address}`;
    case 'closed':
      return `${who}: backend gone, root buses removed`;
    case 'console':
      return `${who}: ${message.line}`;
    case 'report': {
      const report = message.report as { summary?: string } | undefined;
      return `${who}: ${report?.summary ?? `${guest.program} reported`}`;
    }
    case 'failed':
      return `${who}: failed: ${message.error.split('\n')[0] ?? ''}`;
  }
}

/** Boot the machine with every guest staying alive, and serve the store. */
export async function startLiveSim(machine: Machine, options: LiveSimOptions): Promise<LiveSim> {
  const hostOptions = {
    logger: options.logger ?? SILENT_LOGGER,
    ...(options.opTimeoutMs === undefined ? {} : { opTimeoutMs: options.opTimeoutMs }),
  };
  const host =
    options.side === undefined
      ? await SimHost.start(machine, hostOptions)
      : await SimHost.startOn(machine, options.side, hostOptions);
  try {
    const socket = await host.serveSocket(options.socketPath);
    host.onGuestDestroyed((guest) => {
      options.onLine(
        `${guest.name} (domid ${guest.domid}): destroyed: ${guest.destroyedBecause ?? 'by the host'}`,
      );
    });
    host.onBackendError(({ domid, text }) => {
      const guest = host.guest(domid);
      options.onLine(
        `${guest === undefined ? `domain ${domid}` : `${guest.name} (domid ${domid})`}: pciback reports: ${text}`,
      );
    });
    for (const domain of machine.domains) {
      const guest = await host.createGuest({
        name: domain.name,
        program: domain.program,
        memoryPages: domain.memoryPages,
        pci: domainSpecs(domain),
        stayAlive: true,
      });
      guest.onMessage((message) => {
        const line = describe(guest, message);
        if (line !== undefined) options.onLine(line);
      });
    }
    return {
      host,
      socketPath: socket.path,
      close: () => host.close(),
    };
  } catch (err) {
    await host.close();
    throw err;
  }
}
