// SPDX-License-Identifier: MIT
/**
 * What the two topology backends (spec §8, `vpci.c` and `passthrough.c`) share: the
 * device shape they need, the interface the xenbus and ops layers call, and the errors
 * `add` throws.
 *
 * A topology knows nothing of Xen or xenstore. It maps real devices to the addresses a
 * guest uses and reports what to publish (`vdev-N`, `root-N`) through callbacks; the
 * xenbus layer formats and writes the keys (§7.6).
 */
import { PcibackError } from '../../errors.js';
import type { PciAddress } from '../../pci/index.js';

/**
 * What a device must offer to be placed in a topology. The simulator's and the Linux
 * platform's host devices provide it (directly or through a small adapter).
 */
export interface TopologyDevice {
  /** The real address (`pci_domain_nr(dev->bus)`, `dev->bus->number`, `dev->devfn`). */
  readonly address: PciAddress;
  /**
   * The 24-bit class code, `base << 16 | sub << 8 | prog-if`, as Linux keeps it in
   * `dev->class` (config bytes 0x09..0x0b).
   */
  readonly classCode: number;
  /** True for an SR-IOV virtual function (`dev->is_virtfn`). */
  readonly isVirtualFn: boolean;
  /**
   * The bridges above the device, nearest first: the `dev->bus->self` chain, empty for a
   * device on a root bus. Only the passthrough backend reads it (root publication,
   * §8.2).
   */
  upstreamBridges(): readonly PciAddress[];
}

/** The two backends; the module parameter `passthrough` picks one (§2.3). */
export type TopologyKind = 'vpci' | 'passthrough';

/**
 * Called by {@link Topology.add} once the device is placed: the xenbus layer writes
 * `vdev-<devid>` = the guest address (`publish_pci_dev`, §7.6).
 */
export type PublishDevice = (devid: number, guestAddress: PciAddress) => void;

/**
 * Called by {@link Topology.publishRoots} for each root bus the guest must scan: the
 * xenbus layer adds `root-K` unless an equal root is already listed (`publish_pci_root`,
 * §7.6).
 */
export type PublishRoot = (domain: number, bus: number) => void;

/** Options of {@link Topology.add}. */
export interface TopologyAddOptions {
  /**
   * The guest devfn the toolstack asked for (`vdevfn-N`, peers.md §1.3), 0..0xff. Linux
   * pciback ignores it; we honour it. vpci puts the device in virtual slot
   * `devfn >> 3` (its function stays the real one, as every vpci function does) when the
   * slot is free or holds functions of the same physical device, and refuses it
   * otherwise. passthrough ignores it with a warning: the guest sees real addresses.
   */
  readonly requestedDevfn?: number;
}

/**
 * One connection's view of its exported devices (`pdev->pci_dev_data` with the backend
 * ops of `pciback.h`). Lookups run for every guest op, so they are O(1) or bounded by
 * the 8 functions of a slot.
 *
 * @example
 * const topo = createTopology<MyDevice>('vpci');
 * topo.add(dev, 0, (devid, addr) => store.write(`vdev-${devid}`, formatVdev(addr)));
 * topo.publishRoots((domain, bus) => publishRoot(domain, bus));
 * topo.get(0, 0, 0x00); // dev
 */
export interface Topology<D extends TopologyDevice> {
  /** Which backend this is. */
  readonly kind: TopologyKind;
  /** How many devices are held. */
  readonly size: number;

  /**
   * Export `dev` (`xen_pcibk_add_pci_dev`): place it, then call `publish(devid, guest
   * address)` and return that address. When `publish` throws, the device stays held
   * (the original keeps the entry when `publish_cb` fails), so `clear()` still returns
   * it to be put.
   *
   * @throws {TopologyError} `TOPOLOGY_NO_SPACE` (-ENOMEM) when vpci has no free slot,
   *   `TOPOLOGY_BRIDGE_REFUSED` (-EFAULT) when bridges are refused,
   *   `TOPOLOGY_ALREADY_EXPORTED` (-EEXIST) when a device with the same real address is
   *   already held (a deviation: the original would list it twice), and
   *   `TOPOLOGY_SLOT_IN_USE` (-EBUSY) when vpci cannot honour
   *   {@link TopologyAddOptions.requestedDevfn}.
   * @throws {RangeError} when `devid` is not a non-negative integer or `requestedDevfn`
   *   is not an integer in 0..0xff.
   */
  add(dev: D, devid: number, publish: PublishDevice, options?: TopologyAddOptions): PciAddress;

  /**
   * Guest address to device (`xen_pcibk_get_pci_dev`), for the guest's op. Never throws:
   * any value a guest sends (u32 or not) that names no held device gives `undefined`.
   */
  get(domain: number, bus: number, devfn: number): D | undefined;

  /**
   * Real device to guest address (`xen_pcibk_get_pcifront_dev`, used by AER, §6.6).
   * Matches by real address, as the original does; `undefined` when no held device has
   * that address.
   */
  find(dev: Pick<TopologyDevice, 'address'>): PciAddress | undefined;

  /**
   * Stop exporting `dev` (`xen_pcibk_release_pci_dev`). Returns true when this very
   * object was held; the caller then puts the device (`pcistub_put_pci_dev`, under the
   * device lock).
   */
  release(dev: D): boolean;

  /** Report the root buses the guest scans (`xen_pcibk_publish_pci_roots`). */
  publishRoots(publishRoot: PublishRoot): void;

  /** The held devices: vpci in slot order, passthrough in export order. */
  devices(): readonly D[];

  /**
   * Forget every device (`xen_pcibk_release_devices`, the `free` op) and return them in
   * {@link devices} order so the caller can put each one. The topology is empty and
   * usable afterwards.
   */
  clear(): D[];
}

/** Stable codes of the {@link TopologyError}s that {@link Topology.add} throws. */
export const TOPOLOGY_ERROR = {
  /** vpci: all 32 slots of the virtual bus are taken (-ENOMEM). */
  noSpace: 'TOPOLOGY_NO_SPACE',
  /** vpci with `refuseBridges`: the device has base class 0x06 (-EFAULT). */
  bridgeRefused: 'TOPOLOGY_BRIDGE_REFUSED',
  /** A device with the same real address is already held (-EEXIST; ours, not the original's). */
  alreadyExported: 'TOPOLOGY_ALREADY_EXPORTED',
  /** vpci: the requested virtual slot holds another device (-EBUSY; ours, not the original's). */
  slotInUse: 'TOPOLOGY_SLOT_IN_USE',
} as const;

/** One of {@link TOPOLOGY_ERROR}'s values. */
export type TopologyErrorCode = (typeof TOPOLOGY_ERROR)[keyof typeof TOPOLOGY_ERROR];

/** Linux errno values the topology reports, negative as the kernel returns them. */
export const TOPOLOGY_ERRNO = {
  ENOMEM: -12,
  EFAULT: -14,
  EBUSY: -16,
  EEXIST: -17,
} as const;

/**
 * A refused {@link Topology.add}. Besides the project-style `message`, it carries what
 * the original passes to `xenbus_dev_fatal` so the xenbus layer can write the same
 * `error` node: `errno` (negative) and `fatalMessage` (the original's text, verbatim).
 *
 * @example
 * try { topo.add(dev, 3, publish); } catch (err) {
 *   if (err instanceof TopologyError) xenbusFatal(err.errno, err.fatalMessage);
 * }
 */
export class TopologyError extends PcibackError {
  /** Negative Linux errno, e.g. -12 for {@link TOPOLOGY_ERROR.noSpace}. */
  readonly errno: number;
  /** The original's `xenbus_dev_fatal` text, e.g. "No more space on root virtual PCI bus". */
  readonly fatalMessage: string;

  constructor(
    code: TopologyErrorCode,
    message: string,
    details: { readonly errno: number; readonly fatalMessage: string },
  ) {
    super(code, message);
    this.name = 'TopologyError';
    this.errno = details.errno;
    this.fatalMessage = details.fatalMessage;
  }
}

/** `add`'s devid check, shared by both backends (a caller bug, not a guest input). */
export function checkDevid(devid: number): void {
  if (!Number.isInteger(devid) || devid < 0) {
    throw new RangeError(`Invalid devid ${String(devid)}: it must be a non-negative integer`);
  }
}

/** `add`'s requested-devfn check (a caller bug: the xenbus layer validates `vdevfn-N`). */
export function checkRequestedDevfn(devfn: number | undefined): void {
  if (devfn === undefined) return;
  if (!Number.isInteger(devfn) || devfn < 0 || devfn > 0xff) {
    throw new RangeError(
      `Invalid requested devfn ${String(devfn)}: it must be an integer in 0..0xff`,
    );
  }
}

/** Both backends refuse a second device with an address already held. */
export function alreadyExported(dev: TopologyDevice, guestAddress: PciAddress): TopologyError {
  const message = `Cannot export "${dev.address.toString()}": it is already exported as "${guestAddress.toString()}"`;
  return new TopologyError(TOPOLOGY_ERROR.alreadyExported, message, {
    errno: TOPOLOGY_ERRNO.EEXIST,
    fatalMessage: message,
  });
}
