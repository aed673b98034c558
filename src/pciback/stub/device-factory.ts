// SPDX-License-Identifier: MIT
/**
 * How the stub gets the per-device backend state of a function it seizes, without
 * knowing the platform: a factory the composition root builds from what its platform
 * offers for one function (the PCI core's view, the MSI layer, config save/restore).
 */
import type { PciAddress } from '../../pci/index.js';
import type { PciHostPlatform } from '../../platform/pci-host.js';
import type { HostIrqLines, HostMsiControl, HostPciDevice, Logger } from '../../platform/types.js';
import type { GlobalConfigPolicy } from '../confspace/index.js';
import { PcibackDevice, type RateLimiter } from '../device/index.js';

/** What the stub holds for one seized function. */
export interface PciStubDeviceHandle {
  /** `xen_pcibk_dev_data` with its virtual config space (built at seize, §6.2 step 3). */
  readonly device: PcibackDevice;
  /** `pci_save_state` + `pci_store_saved_state`: an opaque snapshot. */
  saveState(): unknown;
  /** `pci_load_saved_state` + `pci_restore_state` of a snapshot `saveState` gave. */
  restoreState(state: unknown): void;
}

/**
 * Builds the handle of the function at `address` (`init_device` steps 1–3), or gives
 * undefined when the platform cannot open it. May throw (a virtualizer that cannot be
 * built): the seize then fails.
 */
export type PciStubDeviceFactory = (address: PciAddress) => PciStubDeviceHandle | undefined;

/** What a platform offers for one function (the simulator's `SimPciHost.stubDevice`). */
export interface PciStubPlatformDevice {
  readonly host: HostPciDevice;
  readonly msi: HostMsiControl;
  /** The PF of an SR-IOV VF; absent for any other function. */
  readonly physfn?: HostPciDevice;
  saveState(): unknown;
  restoreState(state: unknown): void;
}

/** Options of {@link pcibackDeviceFactory}. */
export interface PcibackDeviceFactoryOptions {
  /** Module-wide policy (`xen_pciback.permissive`). */
  readonly global: GlobalConfigPolicy;
  /** dom0's IRQ layer (the fake INTx handler's shared lines). */
  readonly irqLines: HostIrqLines;
  /** The host bus, to give each device its upstream bridges (passthrough topology). */
  readonly host?: PciHostPlatform;
  readonly logger?: Logger;
  /** One limiter shared by every device (CVE-2013-0231). */
  readonly warnLimiter?: RateLimiter;
}

/** Bridges above `address`, nearest first. */
export function upstreamBridgesOf(host: PciHostPlatform, address: PciAddress): PciAddress[] {
  const out: PciAddress[] = [];
  const seen = new Set<number>([address.key]);
  let up = host.info(address)?.upstreamBridge ?? null;
  while (up !== null && !seen.has(up.key)) {
    out.push(up);
    seen.add(up.key);
    up = host.info(up)?.upstreamBridge ?? null;
  }
  return out;
}

/**
 * A {@link PciStubDeviceFactory} that builds a {@link PcibackDevice} over what `open`
 * returns for a function.
 *
 * @example
 * const factory = pcibackDeviceFactory((a) => simPci.stubDevice(a, interrupts), {
 *   global, irqLines: interrupts.irqs, host: simPci, logger,
 * });
 */
export function pcibackDeviceFactory(
  open: (address: PciAddress) => PciStubPlatformDevice | undefined,
  options: PcibackDeviceFactoryOptions,
): PciStubDeviceFactory {
  return (address) => {
    const platform = open(address);
    if (platform === undefined) return undefined;
    const device = PcibackDevice.create(
      {
        host: platform.host,
        msi: platform.msi,
        irqLines: options.irqLines,
        ...(platform.physfn === undefined ? {} : { physfn: platform.physfn }),
      },
      {
        global: options.global,
        ...(options.logger === undefined ? {} : { logger: options.logger }),
        ...(options.warnLimiter === undefined ? {} : { warnLimiter: options.warnLimiter }),
        ...(options.host === undefined
          ? {}
          : { upstreamBridges: upstreamBridgesOf(options.host, address) }),
      },
    );
    return {
      device,
      saveState: () => platform.saveState(),
      restoreState: (state) => {
        platform.restoreState(state);
      },
    };
  };
}
