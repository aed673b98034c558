// SPDX-License-Identifier: MIT
/**
 * Xen's physical-IRQ mappings as the simulator needs them (`PHYSDEVOP_map_pirq` /
 * `PHYSDEVOP_unmap_pirq` for MSI, `send_guest_pirq`): each dom0 MSI IRQ is mapped to a
 * pirq in one domain's pirq space, and an interrupt on that IRQ is delivered to the
 * event channel the domain bound to the pirq.
 *
 * The binding itself lives in the domain's port table in the shared event area (a port
 * of state PIRQ holding the pirq, written by the guest's `bindPirq` in its worker), so
 * the host finds the port by reading shared memory, without a message. It remembers the
 * port it last found per mapping and re-checks it on every delivery (one atomic load);
 * only when the guest has closed or moved the binding does it scan the port table again.
 */
import type { DomId } from '../../types.js';
import type { EventArea } from '../xen/index.js';

/** First pirq handed out in each domain (pirq 0 is never used). */
export const DEFAULT_FIRST_PIRQ = 0x100;
/** Pirqs per domain for MSI (`nr_pirqs` minus the static range). */
export const DEFAULT_PIRQS_PER_DOMAIN = 1024;

/** `-ESRCH`. */
const ESRCH = -3;
/** `-ENOSPC`. */
const ENOSPC = -28;

/** Where an IRQ is mapped. */
export interface PirqMapping {
  readonly domid: DomId;
  readonly pirq: number;
}

/** Options of {@link SimPirqSpace}. */
export interface SimPirqSpaceOptions {
  /** First pirq of each domain. Default {@link DEFAULT_FIRST_PIRQ}. */
  firstPirq?: number;
  /** Pirqs available per domain. Default {@link DEFAULT_PIRQS_PER_DOMAIN}. */
  pirqsPerDomain?: number;
}

interface MappingRecord {
  readonly domid: DomId;
  readonly pirq: number;
  /** Port found at the last delivery (0: none yet). */
  cachedPort: number;
}

/**
 * Per-domain pirq spaces and the IRQ -> (domain, pirq) map.
 *
 * @example
 * const pirqs = new SimPirqSpace(xen.eventArea);
 * pirqs.map(domid, 64); // 0x100
 * guest.bindPirq(0x100); // in the guest: a port
 * pirqs.deliver(64); // true: the port is pending in the guest
 */
export class SimPirqSpace {
  readonly #area: EventArea;
  readonly #first: number;
  readonly #count: number;
  readonly #byIrq = new Map<number, MappingRecord>();
  readonly #used = new Map<number, Set<number>>();

  constructor(area: EventArea, options: SimPirqSpaceOptions = {}) {
    this.#area = area;
    this.#first = options.firstPirq ?? DEFAULT_FIRST_PIRQ;
    this.#count = options.pirqsPerDomain ?? DEFAULT_PIRQS_PER_DOMAIN;
    if (!Number.isInteger(this.#first) || this.#first < 1 || !Number.isInteger(this.#count)) {
      throw new RangeError(
        `Cannot lay out pirqs from "${this.#first}" (${this.#count} per domain): the first pirq must be a positive integer`,
      );
    }
  }

  /**
   * `PHYSDEVOP_map_pirq` of dom0 IRQ `irq` into `domid`: the lowest free pirq of the
   * domain. Returns the pirq, or -3 (ESRCH) when the domain does not exist or is dying,
   * -28 (ENOSPC) when its pirq space is full. An IRQ already mapped keeps its mapping.
   */
  map(domid: DomId, irq: number): number {
    const existing = this.#byIrq.get(irq);
    if (existing !== undefined) return existing.domid === domid ? existing.pirq : ENOSPC;
    if (!this.#area.validDomid(domid) || !this.#area.domainAlive(domid)) return ESRCH;
    let used = this.#used.get(domid);
    if (used === undefined) {
      used = new Set();
      this.#used.set(domid, used);
    }
    for (let pirq = this.#first; pirq < this.#first + this.#count; pirq++) {
      if (used.has(pirq)) continue;
      used.add(pirq);
      this.#byIrq.set(irq, { domid, pirq, cachedPort: 0 });
      return pirq;
    }
    return ENOSPC;
  }

  /** `PHYSDEVOP_unmap_pirq`: the IRQ's pirq becomes free again. */
  unmap(irq: number): void {
    const record = this.#byIrq.get(irq);
    if (record === undefined) return;
    this.#byIrq.delete(irq);
    this.#used.get(record.domid)?.delete(record.pirq);
  }

  /** The mapping of `irq`, if any. */
  lookup(irq: number): PirqMapping | undefined {
    const record = this.#byIrq.get(irq);
    return record === undefined ? undefined : { domid: record.domid, pirq: record.pirq };
  }

  /** Pirqs currently mapped into `domid`, ascending. */
  mappedPirqs(domid: DomId): number[] {
    return [...(this.#used.get(domid) ?? [])].sort((a, b) => a - b);
  }

  /**
   * An interrupt on `irq`: sets the port bound to its pirq pending in the owner domain
   * (which raises the upcall unless the port is masked, and wakes pollers). False when
   * the IRQ is not mapped, the domain is gone, or no port is bound to the pirq.
   */
  deliver(irq: number): boolean {
    const record = this.#byIrq.get(irq);
    if (record === undefined) return false;
    const { domid, pirq } = record;
    const area = this.#area;
    if (!area.domainAlive(domid)) return false;
    let port = record.cachedPort;
    if (port === 0 || area.pirqOfPort(domid, port) !== pirq) {
      port = area.findPirqPort(domid, pirq);
      record.cachedPort = port;
    }
    if (port === 0) return false;
    area.setPending(domid, port);
    return true;
  }
}
