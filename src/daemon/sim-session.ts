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
import type { AerInjectResult, StubAttribute } from './control/protocol.js';
import type { SimHost } from './sim-host.js';
import type { PciStub } from '../pciback/stub/index.js';
import type { PciHostPlatform } from '../platform/pci-host.js';
import { PciAddress } from '../pci/index.js';
import { PcibackError } from '../errors.js';

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

/**
 * Read or write one attribute of pciback's driver directory (spec §6.5, and the driver
 * core's `bind`/`unbind`, which take a BDF). Shared with the Linux-bus host session.
 */
export function stubAttribute(
  pci: PciHostPlatform,
  stub: PciStub,
  name: StubAttribute,
  value: string | undefined,
): string {
  const write = (set: (text: string) => void): string => {
    if (value === undefined) {
      throw new PcibackError('STUB_WRITE_ONLY', `Cannot read "${name}": it is write-only`);
    }
    set(value);
    return '';
  };
  const readWrite = (read: () => string, set: (text: string) => void): string =>
    value === undefined ? read() : write(set);
  const readOnly = (read: () => string): string => {
    if (value !== undefined) {
      throw new PcibackError('STUB_READ_ONLY', `Cannot write "${name}": it is read-only`);
    }
    return read();
  };
  switch (name) {
    case 'slots':
      return readOnly(() => stub.slots());
    case 'new_slot':
      return write((t) => {
        stub.newSlot(t);
      });
    case 'remove_slot':
      return write((t) => {
        stub.removeSlot(t);
      });
    case 'permissive':
      return readWrite(
        () => stub.permissive(),
        (t) => {
          stub.setPermissive(t);
        },
      );
    case 'allow_interrupt_control':
      return readWrite(
        () => stub.allowInterruptControl(),
        (t) => {
          stub.setAllowInterruptControl(t);
        },
      );
    case 'quirks':
      return readWrite(
        () => stub.quirks(),
        (t) => {
          stub.addQuirk(t);
        },
      );
    case 'irq_handlers':
      return readOnly(() => stub.irqHandlers());
    case 'irq_handler_state':
      return write((t) => {
        stub.irqHandlerState(t);
      });
    case 'bind':
      return write((t) => {
        pci.bind(parseBdfAttribute(name, t), stub.driverName);
      });
    case 'unbind':
      return write((t) => {
        const address = parseBdfAttribute(name, t);
        if (stub.get(address) === undefined) {
          throw new PcibackError(
            'NO_SUCH_DEVICE',
            `Cannot unbind "${address.toString()}" from ${stub.driverName}: it is not bound to it`,
          );
        }
        pci.unbind(address);
      });
  }
}

/** A `bind`/`unbind` value: one full BDF (`DDDD:BB:DD.F`), as the kernel wants it. */
function parseBdfAttribute(name: string, text: string): PciAddress {
  const trimmed = text.trim();
  try {
    if (/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(trimmed)) {
      return PciAddress.parse(trimmed);
    }
  } catch {
    /* reported below */
  }
  throw new PcibackError(
    'STUB_INVALID_ARGUMENT',
    `Cannot write "${text}" to "${name}": give a full address such as 0000:03:00.0`,
  );
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
    stubAttribute: (name, value) => stubAttribute(host.pci, host.stub, name, value),
    injectAerError: (address, { fatal }) => injectAerForControl(host, address, fatal),
    close: () => live.close(),
  };
}

/** Make `--platform sim` available with this configuration. Returns the unregister function. */
export function registerSimPlatform(config: SimSessionConfig): () => void {
  return registerPlatform('sim', (options) => openSimSession(options, config));
}
