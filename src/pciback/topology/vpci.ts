// SPDX-License-Identifier: MIT
/**
 * The vpci topology backend (`vpci.c`, spec §8.1), pciback's default: every exported
 * device appears on one virtual bus 0000:00 with 32 slots; the functions of one real
 * multi-function device share a virtual slot and keep their real function numbers.
 *
 * Placement follows the 2021 fix "redo VF placement in the virtual topology" (§10): a
 * VF at function 0 always opens a slot of its own and nothing ever joins it (guests
 * would otherwise take it for function 0 of a multi-function device, or skip its
 * siblings because a VF does not set the multi-function bit).
 */
import { PciAddress } from '../../pci/index.js';
import { SILENT_LOGGER, type Logger } from '../../platform/types.js';
import {
  alreadyExported,
  checkDevid,
  checkRequestedDevfn,
  TOPOLOGY_ERRNO,
  TOPOLOGY_ERROR,
  TopologyError,
  type PublishDevice,
  type PublishRoot,
  type Topology,
  type TopologyAddOptions,
  type TopologyDevice,
} from './types.js';

/** Slots on the virtual bus (`PCI_SLOT_MAX`). */
export const VPCI_SLOT_MAX = 32;

/** Base class of bridges (`PCI_BASE_CLASS_BRIDGE`): host, ISA, PCI-PCI, ... bridges. */
export const PCI_BASE_CLASS_BRIDGE = 0x06;

/**
 * Whether vpci refuses bridges by default (pciback-fixes.md P8): `false`, bug-compatible.
 *
 * The original means to refuse base class 0x06 with -EFAULT "Can't export bridges on the
 * virtual PCI bus", but tests `(dev->class >> 24)`, and `dev->class` holds only 24 bits,
 * so the check never fires (still true in current mainline). The fixes document says to
 * implement the observable behaviour: bridges are placed by the normal slot rules. The
 * bridge's secondary bus stays unreachable, since vpci `get` answers bus 0 only. Pass
 * `refuseBridges: true` to get the check the original intended.
 */
export const VPCI_REFUSES_BRIDGES = false;

/** The original's `xenbus_dev_fatal` texts. */
const FATAL_NO_SPACE = 'No more space on root virtual PCI bus';
const FATAL_BRIDGE = "Can't export bridges on the virtual PCI bus";

/** Options of {@link VpciTopology}. */
export interface VpciTopologyOptions {
  /**
   * Refuse devices of base class 0x06 with -EFAULT, the check the original intends but
   * never performs. Defaults to {@link VPCI_REFUSES_BRIDGES} (`false`).
   */
  readonly refuseBridges?: boolean;
  /** Where placements are logged (the original's `dev_info` "vpci: assign to virtual slot"). */
  readonly logger?: Logger;
}

interface Entry<D> {
  readonly dev: D;
  readonly slot: number;
  readonly guestAddress: PciAddress;
}

/**
 * The vpci backend. Lookups: `get` indexes the slot array and scans at most the 8
 * functions of one slot; `find` and `release` use a map keyed by real address.
 *
 * @example
 * const topo = new VpciTopology<MyDevice>();
 * topo.add(dev0300, 0, publish); // 0000:00:00.0
 * topo.add(dev0301, 1, publish); // 0000:00:00.1 (same real slot, same virtual slot)
 * topo.add(dev021a1, 2, publish); // 0000:00:01.1
 */
export class VpciTopology<D extends TopologyDevice> implements Topology<D> {
  /** Always `'vpci'`. */
  readonly kind = 'vpci' as const;

  /** Each slot's devices in placement order; the first is the slot's head. */
  readonly #slots: D[][] = Array.from({ length: VPCI_SLOT_MAX }, () => []);
  /** Real address key -> entry, for `find` and `release`. */
  readonly #byAddress = new Map<number, Entry<D>>();
  readonly #refuseBridges: boolean;
  readonly #logger: Logger;

  constructor(options: VpciTopologyOptions = {}) {
    this.#refuseBridges = options.refuseBridges ?? VPCI_REFUSES_BRIDGES;
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  /** Whether this instance refuses bridges (see {@link VPCI_REFUSES_BRIDGES}). */
  get refusesBridges(): boolean {
    return this.#refuseBridges;
  }

  get size(): number {
    return this.#byAddress.size;
  }

  add(dev: D, devid: number, publish: PublishDevice, options: TopologyAddOptions = {}): PciAddress {
    checkDevid(devid);
    const requested = options.requestedDevfn;
    checkRequestedDevfn(requested);
    const existing = this.#byAddress.get(dev.address.key);
    if (existing !== undefined) throw alreadyExported(dev, existing.guestAddress);

    // The intended check, on the base class (bits 23..16). The original shifts by 24.
    if (this.#refuseBridges && dev.classCode >>> 16 === PCI_BASE_CLASS_BRIDGE) {
      throw new TopologyError(
        TOPOLOGY_ERROR.bridgeRefused,
        `Cannot export "${dev.address.toString()}" on the virtual PCI bus: it is a bridge (class 0x${dev.classCode.toString(16).padStart(6, '0')})`,
        { errno: TOPOLOGY_ERRNO.EFAULT, fatalMessage: FATAL_BRIDGE },
      );
    }

    const fn = dev.address.fn;
    let slot = -1;
    let joined: boolean;
    if (requested !== undefined) {
      slot = (requested >>> 3) & 0x1f;
      joined = this.#checkRequestedSlot(dev, slot);
      if ((requested & 7) !== fn) {
        this.#logger.info(
          { device: dev.address.toString(), requestedDevfn: requested, slot, fn },
          `vpci: placing "${dev.address.toString()}" at function ${fn} of the requested slot: vpci keeps real function numbers`,
        );
      }
    } else {
      if (!dev.isVirtualFn || fn !== 0) slot = this.#slotOfSameDevice(dev.address);
      joined = slot >= 0;
      if (!joined) slot = this.#firstEmptySlot();
    }
    if (slot < 0) {
      throw new TopologyError(
        TOPOLOGY_ERROR.noSpace,
        `Cannot export "${dev.address.toString()}" on the virtual PCI bus: all ${VPCI_SLOT_MAX} slots are in use`,
        { errno: TOPOLOGY_ERRNO.ENOMEM, fatalMessage: FATAL_NO_SPACE },
      );
    }

    const guestAddress = new PciAddress(0, 0, slot, fn);
    this.#slotAt(slot).push(dev);
    this.#byAddress.set(dev.address.key, { dev, slot, guestAddress });
    this.#logger.info(
      { device: dev.address.toString(), slot, fn, joined },
      joined ? 'vpci: assign to virtual slot with its siblings' : 'vpci: assign to virtual slot',
    );
    // Held before publishing: if publish throws, the device stays, as in the original.
    publish(devid, guestAddress);
    return guestAddress;
  }

  get(domain: number, bus: number, devfn: number): D | undefined {
    if (domain !== 0 || bus !== 0) return undefined;
    if (!Number.isInteger(devfn) || devfn < 0 || devfn > 0xffffffff) return undefined;
    // PCI_SLOT/PCI_FUNC on the guest's u32: devfn values above 0xff alias (§8.1).
    const fn = devfn & 7;
    for (const dev of this.#slotAt((devfn >>> 3) & 0x1f)) {
      if (dev.address.fn === fn) return dev;
    }
    return undefined;
  }

  find(dev: Pick<TopologyDevice, 'address'>): PciAddress | undefined {
    return this.#byAddress.get(dev.address.key)?.guestAddress;
  }

  release(dev: D): boolean {
    const entry = this.#byAddress.get(dev.address.key);
    // The original compares `struct pci_dev` pointers: another object is not released.
    if (entry?.dev !== dev) return false;
    const list = this.#slotAt(entry.slot);
    list.splice(list.indexOf(dev), 1);
    this.#byAddress.delete(dev.address.key);
    return true;
  }

  publishRoots(publishRoot: PublishRoot): void {
    // Unconditional, even with no device: the guest always has the virtual bus 0000:00.
    publishRoot(0, 0);
  }

  devices(): readonly D[] {
    return this.#slots.flat();
  }

  clear(): D[] {
    const all = this.#slots.flat();
    for (const list of this.#slots) list.length = 0;
    this.#byAddress.clear();
    return all;
  }

  /**
   * The first slot whose head is from the same real device (segment, bus and slot) and
   * is not a VF at function 0, or -1 (the loop of `__xen_pcibk_add_pci_dev`).
   */
  #slotOfSameDevice(address: PciAddress): number {
    for (let slot = 0; slot < VPCI_SLOT_MAX; slot++) {
      const head = this.#slotAt(slot)[0];
      if (head === undefined) continue;
      if (head.isVirtualFn && head.address.fn === 0) continue;
      const h = head.address;
      if (h.domain === address.domain && h.bus === address.bus && h.device === address.device) {
        return slot;
      }
    }
    return -1;
  }

  /**
   * Whether `dev` may go to the requested `slot` (ours: the original ignores `vdevfn-N`):
   * a free slot is taken; an occupied one is joined only by a function of the same
   * physical device, under the VF rule of automatic placement (a VF at function 0 never
   * shares a slot). Returns true when joining.
   *
   * @throws {TopologyError} `TOPOLOGY_SLOT_IN_USE` (-EBUSY) naming the occupant.
   */
  #checkRequestedSlot(dev: D, slot: number): boolean {
    const head = this.#slotAt(slot)[0];
    if (head === undefined) return false;
    const h = head.address;
    const a = dev.address;
    const vf0 = (d: D): boolean => d.isVirtualFn && d.address.fn === 0;
    const sameDevice = h.domain === a.domain && h.bus === a.bus && h.device === a.device;
    if (sameDevice && !vf0(head) && !vf0(dev)) return true;
    const where = `0000:00:${slot.toString(16).padStart(2, '0')}`;
    const occupant = head.address.toString();
    throw new TopologyError(
      TOPOLOGY_ERROR.slotInUse,
      `Cannot export "${a.toString()}" at the requested virtual slot "${where}": it holds "${occupant}"`,
      {
        errno: TOPOLOGY_ERRNO.EBUSY,
        fatalMessage: `Requested virtual slot ${where} for ${a.toString()} is in use by ${occupant}`,
      },
    );
  }

  #firstEmptySlot(): number {
    return this.#slots.findIndex((list) => list.length === 0);
  }

  #slotAt(slot: number): D[] {
    const list = this.#slots[slot];
    if (list === undefined) throw new RangeError(`Invalid virtual slot ${slot}`);
    return list;
  }
}
