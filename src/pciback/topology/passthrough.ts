// SPDX-License-Identifier: MIT
/**
 * The passthrough topology backend (`passthrough.c`, spec §8.2): the guest sees each
 * exported device at its real address, and the real root buses above them. Bridges are
 * allowed; a device behind an exported bridge is reached by the guest's scan through
 * that bridge, so it publishes no root of its own.
 */
import type { PciAddress } from '../../pci/index.js';
import { SILENT_LOGGER, type Logger } from '../../platform/types.js';
import {
  alreadyExported,
  checkDevid,
  checkRequestedDevfn,
  type PublishDevice,
  type PublishRoot,
  type Topology,
  type TopologyAddOptions,
  type TopologyDevice,
} from './types.js';

/** Options of {@link PassthroughTopology}. */
export interface PassthroughTopologyOptions {
  /** Where an ignored `vdevfn-N` request is reported. */
  readonly logger?: Logger;
}

/**
 * The passthrough backend. One map keyed by real address serves `get`, `find` and
 * `release` in O(1); its insertion order is the original's list order.
 *
 * @example
 * const topo = new PassthroughTopology<MyDevice>();
 * topo.add(nic, 0, publish); // publishes vdev-0 = 0000:03:00.0, its real address
 * topo.publishRoots((domain, bus) => publishRoot(domain, bus)); // (0, 3)
 */
export class PassthroughTopology<D extends TopologyDevice> implements Topology<D> {
  /** Always `'passthrough'`. */
  readonly kind = 'passthrough' as const;

  /** Real address key -> device, in export order. */
  readonly #byAddress = new Map<number, D>();
  readonly #logger: Logger;

  constructor(options: PassthroughTopologyOptions = {}) {
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  get size(): number {
    return this.#byAddress.size;
  }

  add(dev: D, devid: number, publish: PublishDevice, options: TopologyAddOptions = {}): PciAddress {
    checkDevid(devid);
    checkRequestedDevfn(options.requestedDevfn);
    if (this.#byAddress.has(dev.address.key)) throw alreadyExported(dev, dev.address);
    if (options.requestedDevfn !== undefined) {
      // The guest sees the real topology: there is no virtual slot to choose.
      this.#logger.warn(
        { device: dev.address.toString(), requestedDevfn: options.requestedDevfn },
        `Ignoring the requested devfn 0x${options.requestedDevfn.toString(16)} of "${dev.address.toString()}": the passthrough topology shows real addresses`,
      );
    }
    this.#byAddress.set(dev.address.key, dev);
    // Held before publishing: if publish throws, the device stays, as in the original.
    publish(devid, dev.address);
    return dev.address;
  }

  get(domain: number, bus: number, devfn: number): D | undefined {
    // Exact match on segment, bus and the full devfn: no aliasing here, unlike vpci.
    if (!inRange(domain, 0xffff) || !inRange(bus, 0xff) || !inRange(devfn, 0xff)) {
      return undefined;
    }
    // Same formula as `PciAddress.key`.
    return this.#byAddress.get(domain * 0x10000 + ((bus << 8) | devfn));
  }

  /**
   * Deviation: the original answers every device with its real address, held or not.
   * Its only caller (AER) asks about devices assigned to this connection, which
   * passthrough always holds, so answering `undefined` for others changes nothing
   * observable and keeps the contract of both backends the same.
   */
  find(dev: Pick<TopologyDevice, 'address'>): PciAddress | undefined {
    return this.#byAddress.get(dev.address.key)?.address;
  }

  release(dev: D): boolean {
    // The original compares `struct pci_dev` pointers: another object is not released.
    if (this.#byAddress.get(dev.address.key) !== dev) return false;
    this.#byAddress.delete(dev.address.key);
    return true;
  }

  /**
   * For each held device none of whose upstream bridges is held, its (segment, bus),
   * each pair once and in export order. The original reports duplicates and relies on
   * `publish_pci_root` to skip roots already in xenstore; the caller must still do that
   * check, since roots published by an earlier call are never removed (§7.5).
   */
  publishRoots(publishRoot: PublishRoot): void {
    const roots = new Map<number, PciAddress>();
    for (const [, dev] of this.#byAddress) {
      if (dev.upstreamBridges().some((bridge) => this.#byAddress.has(bridge.key))) continue;
      const rootKey = dev.address.domain * 0x100 + dev.address.bus;
      if (!roots.has(rootKey)) roots.set(rootKey, dev.address);
    }
    // Collected first: the callback may re-enter the topology.
    for (const address of roots.values()) publishRoot(address.domain, address.bus);
  }

  devices(): readonly D[] {
    return [...this.#byAddress.values()];
  }

  clear(): D[] {
    const all = [...this.#byAddress.values()];
    this.#byAddress.clear();
    return all;
  }
}

function inRange(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}
