// SPDX-License-Identifier: MIT
/**
 * The simulated Xen hypervisor: domains with their memory and grant tables, the shared
 * event-channel area, and the privileged side (map grants, bind channels, create and
 * destroy domains). Lives on the main thread; guests act on their own state from their
 * workers through {@link SimGuestHypercalls}, without messages.
 */
import { PcibackError } from '../../../errors.js';
import type { DomId, EvtchnPort, JiffiesClock, Logger } from '../../types.js';
import { DOM0, SILENT_LOGGER } from '../../types.js';
import {
  SimBackendEventChannels,
  type SimBackendEventChannelsOptions,
} from './backend-event-channels.js';
import { DOMAIN_STATE, EventArea, type DomainState } from './event-area.js';
import { GrantingDomain, SimGrantMapper } from './grant-mapper.js';
import { SimGuestHypercalls, type SimGuestHypercallsOptions } from './guest-hypercalls.js';
import { GRANT_ENTRY_WORDS } from './guest-grant-table.js';
import type { SimGuestInit, SimGuestXenstore } from './guest-init.js';
import { RealJiffiesClock } from './jiffies.js';
import {
  DEFAULT_MAX_GRANT_FRAMES,
  DEFAULT_MAX_PORTS,
  GRANT_ENTRIES_PER_FRAME,
  GRANT_ENTRY_V1,
  GTF,
  XEN_PAGE_SIZE,
} from './xen-abi.js';

/**
 * `GNTTAB_RESERVED_XENSTORE` (grant_table.h): the reserved grant ref through which the
 * domain builder grants the xenstore ring page to the xenstore domain, and which C
 * xenstored maps on INTRODUCE. (Belongs beside GNTTAB_NR_RESERVED_ENTRIES in xen-abi.ts.)
 */
export const GNTTAB_RESERVED_XENSTORE = 1;

/** The guest frame of the xenstore ring page (the first reserved page). */
export const SIM_XENSTORE_GFN = 0;

/** Options of {@link SimHypervisor}. */
export interface SimHypervisorOptions {
  /** Domain slots, dom0 included; domids are 0..maxDomains-1. Default 64. */
  maxDomains?: number;
  /** Event-channel ports per domain. Default 1024. */
  maxPorts?: number;
  /** Kernel time of dom0 (late EOI). Default: a {@link RealJiffiesClock} at HZ 250. */
  clock?: JiffiesClock;
  logger?: Logger;
  /** dom0's own memory, in pages. Default 16. */
  dom0MemoryPages?: number;
  /** Options of every domain's {@link SimBackendEventChannels} (clock and logger aside). */
  backend?: Omit<SimBackendEventChannelsOptions, 'clock' | 'logger'>;
}

/** Options of {@link SimHypervisor.createDomain}. */
export interface CreateDomainOptions {
  /** Guest memory in 4 KiB pages (at least 1). */
  memoryPages: number;
  /** Grant-table frames (512 entries each). Default 64, Xen 4.17's default maximum. */
  grantFrames?: number;
  /**
   * Pages at the start of memory the guest's allocator leaves alone (room for the
   * xenstore ring and console, the toolstack's "magic" pages). Default 1.
   */
  reservedPages?: number;
  /** A name for logs and listings. */
  name?: string;
  /** Create paused (like `xl create -p`). */
  paused?: boolean;
  /**
   * Set up the xenstore ring like the domain builder (default true): frame 0 is the ring
   * page (zeroed), grant ref 1 grants it to dom0 read-write, and a port of the guest is
   * allocated unbound for dom0 (`start_info.store_evtchn`). Needs `reservedPages` ≥ 1.
   */
  xenstore?: boolean;
}

/** One domain as `xl list` would show it. */
export interface SimDomainInfo {
  readonly domid: DomId;
  readonly name: string;
  readonly memoryPages: number;
  readonly state: 'running' | 'paused' | 'dying';
}

interface DomainRecord {
  readonly domid: DomId;
  readonly name: string;
  readonly init: SimGuestInit;
  readonly granter: GrantingDomain;
}

/**
 * The simulated host.
 *
 * @example
 * const xen = new SimHypervisor({ clock: new ManualJiffiesClock() });
 * const { domid, init } = xen.createDomain({ memoryPages: 256, name: 'guest1' });
 * const worker = new Worker(guestEntry, { workerData: { xen: init } });
 * // ... later
 * await worker.terminate();
 * xen.destroyDomain(domid);
 */
export class SimHypervisor {
  /** dom0's kernel time. */
  readonly clock: JiffiesClock;
  readonly #area: EventArea;
  readonly #logger: Logger;
  readonly #backendOptions: Omit<SimBackendEventChannelsOptions, 'clock' | 'logger'>;
  readonly #domains = new Map<number, DomainRecord>();
  readonly #mappers = new Map<number, SimGrantMapper>();
  readonly #eventChannels = new Map<number, SimBackendEventChannels>();
  #lastDomid = 0;

  constructor(options: SimHypervisorOptions = {}) {
    this.clock = options.clock ?? new RealJiffiesClock();
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#backendOptions = options.backend ?? {};
    this.#area = EventArea.create({
      maxDomains: options.maxDomains ?? 64,
      maxPorts: options.maxPorts ?? DEFAULT_MAX_PORTS,
    });
    this.#addDomain(DOM0, {
      memoryPages: options.dom0MemoryPages ?? 16,
      name: 'Domain-0',
      reservedPages: 0,
    });
  }

  /** The shared event-channel area (for tests and benchmarks). */
  get eventArea(): EventArea {
    return this.#area;
  }

  /**
   * Creates a guest with the lowest free domid after the last one handed out (Xen
   * allocates round-robin, so a destroyed domain's id is not reused at once).
   *
   * @throws {PcibackError} `DOMAIN_LIMIT` when every slot is taken.
   * @throws {RangeError} for a bad size.
   */
  createDomain(options: CreateDomainOptions): { domid: DomId; init: SimGuestInit } {
    const max = this.#area.maxDomains;
    let domid: number | undefined;
    for (let i = 1; i < max; i++) {
      const candidate = ((this.#lastDomid - 1 + i) % (max - 1)) + 1;
      if (
        !this.#domains.has(candidate) &&
        this.#area.domainState(candidate) === DOMAIN_STATE.FREE
      ) {
        domid = candidate;
        break;
      }
    }
    if (domid === undefined) {
      throw new PcibackError(
        'DOMAIN_LIMIT',
        `Cannot create a domain: all ${max - 1} guest slots are in use`,
      );
    }
    this.#lastDomid = domid;
    const record = this.#addDomain(domid as DomId, options);
    this.#logger.info({ domid, name: record.name }, 'Domain created');
    return { domid: record.domid, init: record.init };
  }

  #addDomain(domid: DomId, options: CreateDomainOptions): DomainRecord {
    const { memoryPages } = options;
    if (!Number.isInteger(memoryPages) || memoryPages < 1 || memoryPages > 1 << 20) {
      throw new RangeError(`Cannot create a domain with "${memoryPages}" pages: use 1..1048576`);
    }
    const grantFrames = options.grantFrames ?? DEFAULT_MAX_GRANT_FRAMES;
    if (!Number.isInteger(grantFrames) || grantFrames < 1 || grantFrames > 1024) {
      throw new RangeError(
        `Cannot create a domain with "${grantFrames}" grant frames: use 1..1024`,
      );
    }
    const reservedPages = options.reservedPages ?? 1;
    const withXenstore = domid !== DOM0 && (options.xenstore ?? true);
    if (withXenstore && reservedPages < 1) {
      throw new RangeError(
        `Cannot give a domain a xenstore ring with reservedPages ${reservedPages}: frame ${SIM_XENSTORE_GFN} must be reserved`,
      );
    }
    const memory = new SharedArrayBuffer(memoryPages * XEN_PAGE_SIZE);
    const grantTable = new SharedArrayBuffer(
      grantFrames * GRANT_ENTRIES_PER_FRAME * GRANT_ENTRY_V1.SIZE,
    );
    this.#area.resetDomain(domid);
    this.#area.setDomainState(
      domid,
      options.paused === true ? DOMAIN_STATE.PAUSED : DOMAIN_STATE.RUNNING,
    );
    let xenstore: SimGuestXenstore | undefined;
    if (withXenstore) xenstore = this.#seedXenstore(domid, memory, grantTable);
    const init: SimGuestInit = {
      domid,
      memory,
      grantTable,
      events: this.#area.buffer,
      reservedPages,
      ...(xenstore === undefined ? {} : { xenstore }),
    };
    const record: DomainRecord = {
      domid,
      name: options.name ?? `domain-${domid}`,
      init,
      granter: new GrantingDomain(domid, grantTable, memory),
    };
    this.#domains.set(domid, record);
    return record;
  }

  /**
   * The domain builder's part of xenstore (`xc_dom_gnttab_seed`, `alloc_magic_pages`,
   * libxl's `store_evtchn`): a zeroed ring page, grant ref 1 granting it to dom0
   * read-write, and a port of the guest unbound for dom0. The port is allocated masked,
   * as a Linux guest keeps a port masked until it binds a handler: until its xenstore
   * driver starts, dom0's kicks raise no upcall in the guest.
   */
  #seedXenstore(
    domid: DomId,
    memory: SharedArrayBuffer,
    grantTable: SharedArrayBuffer,
  ): SimGuestXenstore {
    new Uint8Array(memory, SIM_XENSTORE_GFN * XEN_PAGE_SIZE, XEN_PAGE_SIZE).fill(0);
    const words = new Int32Array(grantTable);
    const entry = GNTTAB_RESERVED_XENSTORE * GRANT_ENTRY_WORDS;
    Atomics.store(words, entry + 1, SIM_XENSTORE_GFN);
    Atomics.store(words, entry, GTF.permit_access | (DOM0 << 16));
    const port = this.#area.allocUnbound(domid, DOM0, true);
    if (port < 0) {
      this.#area.resetDomain(domid);
      this.#area.setDomainState(domid, DOMAIN_STATE.FREE);
      throw new PcibackError(
        'EVTCHN_ALLOC_FAILED',
        `Cannot allocate the xenstore event channel of domain ${domid}: errno ${port}`,
      );
    }
    return { gfn: SIM_XENSTORE_GFN, port };
  }

  /** The data a guest's worker needs, or undefined for an unknown domain. */
  guestInit(domid: DomId): SimGuestInit | undefined {
    return this.#domains.get(domid)?.init;
  }

  /**
   * The guest's xenstore ring frame and store port (what the toolstack passes to
   * INTRODUCE), or undefined for an unknown domain or one created without xenstore.
   */
  xenstoreOf(domid: DomId): { readonly gfn: number; readonly port: EvtchnPort } | undefined {
    const xs = this.#domains.get(domid)?.init.xenstore;
    return xs === undefined ? undefined : { gfn: xs.gfn, port: xs.port as EvtchnPort };
  }

  /** Builds the guest side on this thread (in-process guests, tests). */
  guestHypercalls(domid: DomId, options?: SimGuestHypercallsOptions): SimGuestHypercalls {
    const init = this.guestInit(domid);
    if (init === undefined) throw new RangeError(`Cannot reach domain ${domid}: it does not exist`);
    return new SimGuestHypercalls(init, options);
  }

  /** Existing domains. */
  listDomains(): SimDomainInfo[] {
    return [...this.#domains.values()].map((r) => ({
      domid: r.domid,
      name: r.name,
      memoryPages: r.granter.pageCount,
      state: stateName(this.#area.domainState(r.domid)),
    }));
  }

  /** Pauses a domain: its events stay pending until unpaused. False if it does not exist. */
  pauseDomain(domid: DomId): boolean {
    return this.#setRunState(domid, DOMAIN_STATE.PAUSED);
  }

  /** Unpauses a domain. False if it does not exist. */
  unpauseDomain(domid: DomId): boolean {
    return this.#setRunState(domid, DOMAIN_STATE.RUNNING);
  }

  #setRunState(domid: DomId, state: DomainState): boolean {
    if (!this.#domains.has(domid) || !this.#area.domainAlive(domid)) return false;
    this.#area.setDomainState(domid, state);
    this.#area.wakeDomain(domid);
    // A domain that had events while paused gets its upcall now.
    if (state === DOMAIN_STATE.RUNNING) this.#raiseIfDeliverable(domid);
    return true;
  }

  #raiseIfDeliverable(domid: number): void {
    for (let wi = 0; wi < this.#area.bitmapWords; wi++) {
      const bits = this.#area.deliverableBits(domid, wi);
      if (bits !== 0) {
        const port = wi * 32 + (31 - Math.clz32(bits & -bits));
        this.#area.unmask(domid, port); // already unmasked: just re-raises the upcall
        return;
      }
    }
  }

  /**
   * Destroys a guest: its hypercalls stop, its waits return, every port is closed (the
   * peers' ends become unbound), its grant table is revoked (pages already mapped stay
   * valid until unmapped) and the mappings it held are released. The caller terminates
   * the guest's worker. False if the domain does not exist.
   *
   * @throws {RangeError} for dom0.
   */
  destroyDomain(domid: DomId): boolean {
    if (domid === DOM0) throw new RangeError('Cannot destroy domain 0: it is the control domain');
    const record = this.#domains.get(domid);
    if (record === undefined) return false;
    const area = this.#area;
    area.setDomainState(domid, DOMAIN_STATE.DYING);
    area.wakeDomain(domid);
    for (let port = 1; port < area.maxPorts; port++) area.closePort(domid, port);
    record.granter.dead = true;
    this.#domains.delete(domid);
    this.#eventChannels.get(domid)?.dispose();
    this.#eventChannels.delete(domid);
    this.#mappers.get(domid)?.releaseAll();
    this.#mappers.delete(domid);
    area.resetDomain(domid);
    area.setDomainState(domid, DOMAIN_STATE.FREE);
    area.wakeDomain(domid);
    this.#logger.info({ domid, name: record.name }, 'Domain destroyed');
    return true;
  }

  /** The grant mapper of `mapper` (dom0 by default). */
  grantMapper(mapper: DomId = DOM0): SimGrantMapper {
    let m = this.#mappers.get(mapper);
    if (m === undefined) {
      if (!this.#domains.has(mapper))
        throw new RangeError(`Cannot map grants into domain ${mapper}: it does not exist`);
      m = new SimGrantMapper(mapper, (d) => this.#domains.get(d)?.granter);
      this.#mappers.set(mapper, m);
    }
    return m;
  }

  /** The event core of `domid` (dom0 by default): bind, deliver, late EOI. */
  eventChannels(domid: DomId = DOM0): SimBackendEventChannels {
    let ec = this.#eventChannels.get(domid);
    if (ec === undefined) {
      if (!this.#domains.has(domid))
        throw new RangeError(`Cannot open event channels of domain ${domid}: it does not exist`);
      ec = new SimBackendEventChannels(this.#area, domid, {
        ...this.#backendOptions,
        clock: this.clock,
        logger: this.#logger,
      });
      this.#eventChannels.set(domid, ec);
    }
    return ec;
  }

  /**
   * `EVTCHNOP_alloc_unbound` by the toolstack on a guest's behalf (e.g. its xenstore
   * port): a port of `domid` that `remoteDomid` may bind.
   *
   * @throws {PcibackError} `EVTCHN_ALLOC_FAILED` with the errno in the message.
   */
  allocUnbound(domid: DomId, remoteDomid: DomId): EvtchnPort {
    const port = this.#area.allocUnbound(domid, remoteDomid, false);
    if (port < 0) {
      throw new PcibackError(
        'EVTCHN_ALLOC_FAILED',
        `Cannot allocate an event channel in domain ${domid} for domain ${remoteDomid}: errno ${port}`,
      );
    }
    return port as EvtchnPort;
  }

  /** Stops every event loop and timer (end of a simulation or test). */
  dispose(): void {
    for (const ec of this.#eventChannels.values()) ec.dispose();
  }
}

function stateName(state: DomainState): SimDomainInfo['state'] {
  switch (state) {
    case DOMAIN_STATE.PAUSED:
      return 'paused';
    case DOMAIN_STATE.DYING:
    case DOMAIN_STATE.FREE:
      return 'dying';
    case DOMAIN_STATE.RUNNING:
      return 'running';
    default: {
      const never: never = state;
      return never;
    }
  }
}
