// SPDX-License-Identifier: MIT
/**
 * `pciback daemon --platform linux --guests MACHINE.json`: the simulated hypervisor,
 * xenstore (served on a Unix socket), toolstack and guests of MACHINE.json, on the
 * Linux platform's PCI bus (`/sys`, or `--fake-sysfs FILE`). The kernel's stub driver
 * holds assignable devices; pciback's userspace stub seizes them through sysfs and
 * serves them to the guests; the assignable-device operations, `stub-attr` and
 * `aer-inject` act on the same bus through the control socket.
 *
 * MACHINE.json is a machine file whose `devices` is empty: its `pciback.hide` and its
 * domains' `pci` name sysfs addresses.
 */
import { resolve } from 'node:path';
import type { PciAddress } from '../pci/address.js';
import { chooseStubDriver } from '../platform/linux/index.js';
import { SILENT_LOGGER } from '../platform/types.js';
import { linuxPciSide } from './linux-pci-side.js';
import type { Machine } from './machine-file.js';
import {
  forgetPcibackSlot,
  openLinuxPciHost,
  registerPlatform,
  type PlatformSession,
  type PlatformSessionOptions,
} from './platform-session.js';
import { injectAerForControl } from './sim-session.js';
import { ownStubAttribute } from './stub-attributes.js';
import { startLiveSim } from './sim-live.js';

/** What the session needs beyond the common options. */
export interface LinuxGuestsConfig {
  /** The guests and `pciback` settings (`devices` empty). */
  readonly machine: Machine;
  /** Where to serve the simulated xenstore. */
  readonly xenstoreSocket: string;
  readonly opTimeoutMs?: number;
  /** The guests' console lines and the host's events. */
  readonly onLine?: (line: string) => void;
}

/**
 * Open the Linux bus (real or fake) and boot the simulated Xen host with the machine's
 * guests on it.
 *
 * @throws {PcibackError} `PLATFORM_OPTIONS` for conflicting options, `PERMISSION_DENIED`
 *   for the real `/sys` without root, `FAKE_HOST_INVALID`, and what booting throws.
 */
export async function openLinuxGuestsSession(
  options: PlatformSessionOptions,
  config: LinuxGuestsConfig,
): Promise<PlatformSession> {
  const logger = options.logger ?? SILENT_LOGGER;
  const { host, fake } = openLinuxPciHost(options);
  try {
    const stubDriver = chooseStubDriver(host, options.stubDriver);
    const sysfs = fake?.sysfs;
    const live = await startLiveSim(config.machine, {
      socketPath: config.xenstoreSocket,
      logger,
      ...(config.opTimeoutMs === undefined ? {} : { opTimeoutMs: config.opTimeoutMs }),
      onLine: config.onLine ?? (() => undefined),
      side: linuxPciSide(host, {
        stubDriver,
        ...(sysfs === undefined
          ? {}
          : {
              injectBits: (address: PciAddress, at: number, size: 1 | 2 | 4, bits: number) => {
                sysfs.setHardwareBits(address, at, size, bits);
              },
            }),
      }),
    });
    const sim = live.host;
    const closeFake = fake;
    return {
      host: sim.pci,
      stubDriver,
      sysfsRoot: host.io.root,
      ...(options.fakeSysfs === undefined ? {} : { fakeSysfs: resolve(options.fakeSysfs) }),
      liveDomains: () => [0, ...sim.guests().map((g) => g.domid)],
      attachedTo: (address) => sim.stub.userOf(address) ?? undefined,
      forgetStubSlot: (address) => {
        if (stubDriver === 'pciback') forgetPcibackSlot(host.io, address);
        try {
          sim.stub.removeSlot(address.toString());
        } catch {
          /* not on the userspace stub's list */
        }
      },
      stubAttribute: (name, value) => ownStubAttribute(sim.pci, sim.stub, name, value),
      injectAerError: (address, { fatal }) => injectAerForControl(sim, address, fatal),
      close: async () => {
        try {
          await live.close();
        } finally {
          closeFake?.dispose();
        }
      },
    };
  } catch (err) {
    fake?.dispose();
    throw err;
  }
}

/**
 * Make `--platform linux` boot the simulated Xen host with guests on the Linux bus.
 * Returns the function that puts the plain linux platform back.
 */
export function registerLinuxGuestsPlatform(config: LinuxGuestsConfig): () => void {
  return registerPlatform('linux', (options) => openLinuxGuestsSession(options, config));
}
