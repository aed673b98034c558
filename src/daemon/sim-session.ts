// SPDX-License-Identifier: MIT
/**
 * `pciback daemon --platform sim`: the simulated host as a platform session. The machine
 * boots as with `pciback sim --keep-running` (its guests stay up, its store is served on
 * a Unix socket for `attach`/`detach`/`list`), and the assignable-device operations act
 * on its PCI bus: the stub driver is pciback itself, and a device is attached when a
 * guest holds it.
 */
import { DEFAULT_MACHINE, type Machine } from './machine-file.js';
import {
  registerPlatform,
  type PlatformSession,
  type PlatformSessionOptions,
} from './platform-session.js';
import { startLiveSim } from './sim-live.js';
import { SILENT_LOGGER } from '../platform/types.js';
import { ersResultName } from '../platform/sim/aer-core.js';
import { injectAerError } from './sim-aer.js';
import { ownStubAttribute } from './stub-attributes.js';
import type { AerInjectResult } from './control/protocol.js';
import type { SimHost } from './sim-host.js';
import { PciAddress } from '../pci/index.js';

/** What the simulator's session needs beyond the common options. */
export interface SimSessionConfig {
  /** The machine to boot (default: the built-in one). */
  readonly machine?: Machine;
  /** Where to serve the simulator's xenstore. */
  readonly xenstoreSocket: string;
  /** pcifront's op timeout. */
  readonly opTimeoutMs?: number;
  /** The guests' console lines and the host's events. */
  readonly onLine?: (line: string) => void;
}

/** `aer-inject` on a running host, answered in the control protocol's shape. */
export async function injectAerForControl(
  host: SimHost,
  address: PciAddress,
  fatal: boolean,
): Promise<AerInjectResult> {
  const report = await injectAerError(host, address, { fatal });
  return {
    address: report.address,
    fatal,
    detected: report.detected,
    status: report.statusName,
    recovered: report.recovered,
    calls: report.calls.map(
      (c) =>
        `${c.address} ${c.callback}${c.result === null ? '' : ` -> ${ersResultName(c.result)}`}`,
    ),
    killedDomains: [...new Set(report.kills.map((k) => k.frontendDomid))],
  };
}

/** Boot the simulated host and expose it as a {@link PlatformSession}. */
export async function openSimSession(
  options: PlatformSessionOptions,
  config: SimSessionConfig,
): Promise<PlatformSession> {
  if (options.sysfsRoot !== undefined || options.fakeSysfs !== undefined) {
    throw new RangeError('Cannot use --sysfs-root or --fake-sysfs with --platform sim');
  }
  const live = await startLiveSim(config.machine ?? DEFAULT_MACHINE, {
    socketPath: config.xenstoreSocket,
    logger: options.logger ?? SILENT_LOGGER,
    ...(config.opTimeoutMs === undefined ? {} : { opTimeoutMs: config.opTimeoutMs }),
    onLine: config.onLine ?? (() => undefined),
  });
  const { host } = live;
  return {
    host: host.pci,
    stubDriver: host.stub.driverName,
    liveDomains: () => [0, ...host.guests().map((g) => g.domid)],
    attachedTo: (address) => host.stub.userOf(address) ?? undefined,
    forgetStubSlot: (address) => {
      // Not every seized device has its own id entry (a bridge's may cover it).
      try {
        host.stub.removeSlot(address.toString());
      } catch {
        /* nothing to forget */
      }
    },
    stubAttribute: (name, value) => ownStubAttribute(host.pci, host.stub, name, value),
    injectAerError: (address, { fatal }) => injectAerForControl(host, address, fatal),
    close: () => live.close(),
  };
}

/** Make `--platform sim` available with this configuration. Returns the unregister function. */
export function registerSimPlatform(config: SimSessionConfig): () => void {
  return registerPlatform('sim', (options) => openSimSession(options, config));
}
