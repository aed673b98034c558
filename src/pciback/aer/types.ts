// SPDX-License-Identifier: MIT
/**
 * What pciback's AER handlers (spec §6.6) are given: a way to find the seized device and
 * the frontend connection it is assigned to (`pcistub_device_find`, `psdev->pdev`), and
 * the channel operations of that connection. Interfaces only, so the handlers can be
 * driven by the XenBus backend, a test, or a future full PCI stub.
 */
import type { PciAddress } from '../../pci/index.js';
import type { AerRequest } from '../channel/index.js';
import type { TopologyDevice } from '../topology/index.js';

/**
 * The parts of a connected channel the AER handlers use. `PcibackChannel` satisfies it.
 */
export interface AerChannel {
  /** False once the channel is disconnected (`pdev->sh_info` went away). */
  readonly connected: boolean;
  /** `XEN_PCIB_AERHANDLER` is set in the shared page's flags. */
  frontendHasAerHandler(): boolean;
  /**
   * `common_process` (spec §6.6): post the request, wait for the frontend's answer (or the
   * timeout) and resolve to the `pci_ers_result`. Must never reject.
   */
  aerRequest(dev: Pick<TopologyDevice, 'address'>, request: AerRequest): Promise<number>;
}

/** `psdev->pdev`: the frontend connection a seized device is assigned to. */
export interface AerConnection {
  /** `pdev->xdev->otherend_id`: the guest whose domain `kill_domain_by_device` names. */
  readonly frontendDomid: number;
  /**
   * The connected channel (`pdev->sh_info` non-NULL); `undefined` while the frontend is
   * not connected (or the owner is an HVM guest without a shared page).
   */
  readonly channel: AerChannel | undefined;
}

/** A device pciback has seized (`struct pcistub_device`), as the AER handlers see it. */
export interface AerSeizedDevice {
  /** The device (its real address is what the topology's `find` matches). */
  readonly device: Pick<TopologyDevice, 'address'>;
  /** The connection it is assigned to; `undefined` while it is not assigned. */
  readonly connection: AerConnection | undefined;
}

/** `pcistub_device_find` by real address. */
export interface AerDeviceLookup {
  /** The seized device at `address`, or `undefined` when pciback does not hold it. */
  find(address: PciAddress): AerSeizedDevice | undefined;
}
