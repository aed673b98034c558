// SPDX-License-Identifier: MIT
/**
 * The event-channel state of every domain in one SharedArrayBuffer, so that any thread
 * (dom0 on the main thread, each guest in its worker) can send, mask and wait without a
 * message: the part of Xen's `event_channel.c` and of the 2-level ABI's `shared_info`
 * (pending and mask bitmaps, `evtchn_upcall_pending`) that the simulator needs.
 *
 * Every shared transition is one atomic operation on one int32 word: a port's whole
 * state (type, remote domain, remote port) is packed into a single word so that binds
 * and closes from two threads race safely through compare-and-exchange. A thread that is
 * killed between two of these steps leaves each word consistent; the worst it leaves
 * behind is a pending bit without an upcall, which the receiver's timed wait recovers.
 *
 * Layout (int32 words): a 16-word header, then one area per domain slot (slot = domid):
 * a 16-word domain header (state, upcall, poll sequence, pollers), the pending bitmap,
 * the mask bitmap and the port table.
 *
 * Pirq bindings (`EVTCHNOP_bind_pirq`, added for the interrupt plumbing of
 * `platform/sim/interrupts`) live in the same port table: a port of state PIRQ carries
 * its pirq number in the entry, so the host finds the port a pirq is bound to by reading
 * the table (`findPirqPort`), with no message and no second shared structure.
 */
import { EVTCHN_ERRNO, MAX_PORTS_LIMIT } from './xen-abi.js';

/** Lifecycle of a domain slot, as stored in its area (other threads read it). */
export const DOMAIN_STATE = {
  /** No domain in this slot. */
  FREE: 0,
  RUNNING: 1,
  /** Paused: events stay pending, the guest's waits do not return them. */
  PAUSED: 2,
  /** Being destroyed: hypercalls of the domain do nothing, waits return. */
  DYING: 3,
} as const;

/** A {@link DOMAIN_STATE} value. */
export type DomainState = (typeof DOMAIN_STATE)[keyof typeof DOMAIN_STATE];

/** Type of a port-table entry (`ECS_*` of Xen's `event_channel.h` internals). */
export const PORT_STATE = {
  /** `ECS_FREE`. */
  FREE: 0,
  /** `ECS_UNBOUND`: waiting for the remote domain (in the entry) to bind. */
  UNBOUND: 1,
  /** `ECS_INTERDOMAIN`: connected to (remote domain, remote port). */
  INTERDOMAIN: 2,
  /** Claimed by an allocation in progress. */
  RESERVED: 3,
  /**
   * `ECS_PIRQ`: bound to a physical IRQ of the domain (`EVTCHNOP_bind_pirq`); the entry
   * holds the pirq (see {@link EventArea.pirqOfPort}). Added for the interrupt plumbing.
   */
  PIRQ: 4,
} as const;

/** A {@link PORT_STATE} value. */
export type PortState = (typeof PORT_STATE)[keyof typeof PORT_STATE];

/** A decoded port-table entry. */
export interface PortEntry {
  readonly state: PortState;
  /** UNBOUND: the domain allowed to bind; INTERDOMAIN: the peer; 0 otherwise. */
  readonly remoteDomid: number;
  /** INTERDOMAIN: the peer's port; 0 otherwise (PIRQ: see `pirqOfPort`). */
  readonly remotePort: number;
}

const MAGIC = 0x45564e54; // "EVNT": catches a wrong buffer handed to a worker.
const HEADER_WORDS = 16;
const H_MAGIC = 0;
const H_MAX_DOMAINS = 1;
const H_MAX_PORTS = 2;

// Domain header words. The upcall word and the poll sequence are what threads wait on.
const D_STATE = 0;
const D_UPCALL = 1;
const D_POLL_SEQ = 2;
const D_POLLERS = 3;
const DOMAIN_HEADER_WORDS = 16;

// Port entry: bits 0-2 state, 3-14 remote port, 15-30 remote domid (always positive).
// A PIRQ entry keeps its pirq in bits 3-30 instead. (The state was 2 bits wide until the
// PIRQ state was added; nothing outside this file sees the packing.)
const STATE_MASK = 0x7;
const RPORT_SHIFT = 3;
const RPORT_MASK = 0xfff;
const RDOM_SHIFT = 15;
const RDOM_MASK = 0xffff;
const PIRQ_SHIFT = 3;

/** Largest pirq a port-table entry can hold (28 bits). */
export const MAX_BINDABLE_PIRQ = 0x0fffffff;

/** `-EBUSY`: the pirq is already bound to a port of the domain (Xen's `evtchn_bind_pirq`). */
const EBUSY = -16;

// Bound on compare-and-exchange retries against a peer that keeps changing a word: a
// guest must not be able to livelock another thread (Xen bounds its grant retries too).
const MAX_CAS_RETRIES = 16;

function pack(state: PortState, remoteDomid: number, remotePort: number): number {
  return state | (remotePort << RPORT_SHIFT) | (remoteDomid << RDOM_SHIFT);
}

/** Options of {@link EventArea.create}. */
export interface EventAreaOptions {
  /** Domain slots (domids 0..maxDomains-1). */
  maxDomains: number;
  /** Ports per domain, a multiple of 32 up to 4096. */
  maxPorts: number;
}

/**
 * Typed access to the shared event-channel buffer. One instance per thread over the same
 * buffer; every method is safe to call from any thread.
 */
export class EventArea {
  /** Domain slots in the buffer. */
  readonly maxDomains: number;
  /** Ports per domain (port 0 is never allocated). */
  readonly maxPorts: number;
  /** The whole buffer as int32 words (for `Atomics.wait`/`waitAsync` on the indices below). */
  readonly words: Int32Array;
  readonly #bitmapWords: number;
  readonly #domainWords: number;

  private constructor(words: Int32Array) {
    this.words = words;
    this.maxDomains = words[H_MAX_DOMAINS] ?? 0;
    this.maxPorts = words[H_MAX_PORTS] ?? 0;
    this.#bitmapWords = this.maxPorts / 32;
    this.#domainWords = DOMAIN_HEADER_WORDS + 2 * this.#bitmapWords + this.maxPorts;
  }

  /**
   * Allocates a zeroed area for `maxDomains` slots of `maxPorts` ports.
   *
   * @throws {RangeError} for sizes outside the packed entry's limits.
   */
  static create(options: EventAreaOptions): EventArea {
    const { maxDomains, maxPorts } = options;
    if (
      !Number.isInteger(maxPorts) ||
      maxPorts < 32 ||
      maxPorts > MAX_PORTS_LIMIT ||
      maxPorts % 32 !== 0
    ) {
      throw new RangeError(
        `Cannot size the event area with "${maxPorts}" ports: use a multiple of 32 in 32..4096`,
      );
    }
    if (!Number.isInteger(maxDomains) || maxDomains < 1 || maxDomains > RDOM_MASK + 1) {
      throw new RangeError(`Cannot size the event area for "${maxDomains}" domains: use 1..65536`);
    }
    const domainWords = DOMAIN_HEADER_WORDS + 2 * (maxPorts / 32) + maxPorts;
    const sab = new SharedArrayBuffer((HEADER_WORDS + maxDomains * domainWords) * 4);
    const words = new Int32Array(sab);
    words[H_MAX_DOMAINS] = maxDomains;
    words[H_MAX_PORTS] = maxPorts;
    Atomics.store(words, H_MAGIC, MAGIC);
    return new EventArea(words);
  }

  /**
   * Attaches to a buffer made by {@link EventArea.create} (in a worker).
   *
   * @throws {TypeError} when the buffer is not an event area.
   */
  static attach(buffer: SharedArrayBuffer): EventArea {
    const words = new Int32Array(buffer);
    if (words.length < HEADER_WORDS || Atomics.load(words, H_MAGIC) !== MAGIC) {
      throw new TypeError('Cannot attach the event area: the buffer is not one');
    }
    return new EventArea(words);
  }

  /** The shared buffer, to hand to a worker. */
  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  /** True when `domid` names a slot of this area. */
  validDomid(domid: number): boolean {
    return Number.isInteger(domid) && domid >= 0 && domid < this.maxDomains;
  }

  /** True when `port` is an allocatable port number (1..maxPorts-1). */
  validPort(port: number): boolean {
    return Number.isInteger(port) && port >= 1 && port < this.maxPorts;
  }

  #base(domid: number): number {
    return HEADER_WORDS + domid * this.#domainWords;
  }

  #pendingIndex(domid: number, port: number): number {
    return this.#base(domid) + DOMAIN_HEADER_WORDS + (port >>> 5);
  }

  #maskIndex(domid: number, port: number): number {
    return this.#base(domid) + DOMAIN_HEADER_WORDS + this.#bitmapWords + (port >>> 5);
  }

  #portIndex(domid: number, port: number): number {
    return this.#base(domid) + DOMAIN_HEADER_WORDS + 2 * this.#bitmapWords + port;
  }

  /** Index in {@link words} of the domain's upcall word (`evtchn_upcall_pending`). */
  upcallIndex(domid: number): number {
    return this.#base(domid) + D_UPCALL;
  }

  /** Index in {@link words} of the domain's poll sequence (bumped for pollers). */
  pollSeqIndex(domid: number): number {
    return this.#base(domid) + D_POLL_SEQ;
  }

  /** Index in {@link words} of the count of threads polling in the domain. */
  pollersIndex(domid: number): number {
    return this.#base(domid) + D_POLLERS;
  }

  /** Number of 32-port words in each bitmap. */
  get bitmapWords(): number {
    return this.#bitmapWords;
  }

  // --- domains --------------------------------------------------------------------------

  /** The slot's {@link DOMAIN_STATE}. */
  domainState(domid: number): DomainState {
    return Atomics.load(this.words, this.#base(domid) + D_STATE) as DomainState;
  }

  /** Sets the slot's state (hypervisor only). */
  setDomainState(domid: number, state: DomainState): void {
    Atomics.store(this.words, this.#base(domid) + D_STATE, state);
  }

  /** True when the domain exists and is not being destroyed. */
  domainAlive(domid: number): boolean {
    const s = this.domainState(domid);
    return s === DOMAIN_STATE.RUNNING || s === DOMAIN_STATE.PAUSED;
  }

  /** Zeroes a slot (hypervisor only, after its ports are closed). */
  resetDomain(domid: number): void {
    const base = this.#base(domid);
    for (let i = base + 1; i < base + this.#domainWords; i++) Atomics.store(this.words, i, 0);
  }

  /**
   * Wakes every thread waiting in the domain (upcall and poll waiters) so that it
   * re-reads the domain state: used on pause/unpause and destroy.
   */
  wakeDomain(domid: number): void {
    const base = this.#base(domid);
    Atomics.add(this.words, base + D_POLL_SEQ, 1);
    Atomics.notify(this.words, base + D_POLL_SEQ);
    Atomics.notify(this.words, base + D_UPCALL);
  }

  // --- ports ----------------------------------------------------------------------------

  /** Decodes a port-table entry. */
  portEntry(domid: number, port: number): PortEntry {
    const e = Atomics.load(this.words, this.#portIndex(domid, port));
    if ((e & STATE_MASK) === PORT_STATE.PIRQ) {
      return { state: PORT_STATE.PIRQ, remoteDomid: 0, remotePort: 0 };
    }
    return {
      state: (e & STATE_MASK) as PortState,
      remoteDomid: (e >>> RDOM_SHIFT) & RDOM_MASK,
      remotePort: (e >>> RPORT_SHIFT) & RPORT_MASK,
    };
  }

  /**
   * Claims a free port of `domid` and publishes it as unbound for `remoteDomid`
   * (`EVTCHNOP_alloc_unbound`). Pending is cleared; the mask bit is set as asked.
   * Returns the port or a negative errno.
   */
  allocUnbound(domid: number, remoteDomid: number, masked: boolean): number {
    if (!this.validDomid(domid) || !this.domainAlive(domid)) return EVTCHN_ERRNO.ESRCH;
    if (!this.validDomid(remoteDomid)) return EVTCHN_ERRNO.ESRCH;
    const port = this.#claimPort(domid, masked);
    if (port < 0) return port;
    Atomics.store(
      this.words,
      this.#portIndex(domid, port),
      pack(PORT_STATE.UNBOUND, remoteDomid, 0),
    );
    return port;
  }

  #claimPort(domid: number, masked: boolean): number {
    const w = this.words;
    for (let port = 1; port < this.maxPorts; port++) {
      const idx = this.#portIndex(domid, port);
      if (Atomics.load(w, idx) !== 0) continue;
      if (Atomics.compareExchange(w, idx, 0, PORT_STATE.RESERVED) !== 0) continue;
      const bit = 1 << (port & 31);
      Atomics.and(w, this.#pendingIndex(domid, port), ~bit);
      if (masked) Atomics.or(w, this.#maskIndex(domid, port), bit);
      else Atomics.and(w, this.#maskIndex(domid, port), ~bit);
      return port;
    }
    return EVTCHN_ERRNO.ENOSPC;
  }

  /**
   * `EVTCHNOP_bind_interdomain` for `domid`: connects a new local port to
   * `(remoteDomid, remotePort)`, which must be unbound for `domid`. Like Xen, the new
   * local port is then set pending, since notifications sent to the unbound remote port
   * may have been lost. Returns the local port or a negative errno.
   */
  bindInterdomain(domid: number, remoteDomid: number, remotePort: number, masked: boolean): number {
    if (!this.validDomid(domid) || !this.domainAlive(domid)) return EVTCHN_ERRNO.ESRCH;
    if (!this.validDomid(remoteDomid) || !this.domainAlive(remoteDomid)) return EVTCHN_ERRNO.ESRCH;
    if (!this.validPort(remotePort)) return EVTCHN_ERRNO.EINVAL;
    const port = this.#claimPort(domid, masked);
    if (port < 0) return port;
    const w = this.words;
    const localIdx = this.#portIndex(domid, port);
    // Local end first: once the remote entry points here, the peer may close it and
    // will then look for this exact entry.
    Atomics.store(w, localIdx, pack(PORT_STATE.INTERDOMAIN, remoteDomid, remotePort));
    const expected = pack(PORT_STATE.UNBOUND, domid, 0);
    const linked = pack(PORT_STATE.INTERDOMAIN, domid, port);
    if (
      Atomics.compareExchange(w, this.#portIndex(remoteDomid, remotePort), expected, linked) !==
      expected
    ) {
      Atomics.store(w, localIdx, 0);
      return EVTCHN_ERRNO.EINVAL;
    }
    this.setPending(domid, port);
    return port;
  }

  /**
   * `EVTCHNOP_close`: frees the port; an interdomain peer's end becomes unbound for this
   * domain (Xen's rule). Safe against the peer closing at the same time.
   */
  closePort(domid: number, port: number): void {
    if (!this.validDomid(domid) || !this.validPort(port)) return;
    const w = this.words;
    const idx = this.#portIndex(domid, port);
    let closed = false;
    for (let attempt = 0; attempt < MAX_CAS_RETRIES && !closed; attempt++) {
      const e = Atomics.load(w, idx);
      if (e === 0) return;
      if ((e & STATE_MASK) === PORT_STATE.INTERDOMAIN) {
        const rd = (e >>> RDOM_SHIFT) & RDOM_MASK;
        const rp = (e >>> RPORT_SHIFT) & RPORT_MASK;
        if (this.validDomid(rd) && this.validPort(rp)) {
          Atomics.compareExchange(
            w,
            this.#portIndex(rd, rp),
            pack(PORT_STATE.INTERDOMAIN, domid, port),
            pack(PORT_STATE.UNBOUND, domid, 0),
          );
        }
      }
      closed = Atomics.compareExchange(w, idx, e, 0) === e;
    }
    // A peer that keeps rewriting the entry cannot keep it alive.
    if (!closed) Atomics.store(w, idx, 0);
    Atomics.and(w, this.#pendingIndex(domid, port), ~(1 << (port & 31)));
  }

  // --- pirqs (added for platform/sim/interrupts) ---------------------------------------

  /**
   * `EVTCHNOP_bind_pirq` for `domid`: a new local port bound to `pirq` (1..
   * {@link MAX_BINDABLE_PIRQ}). Returns the port, or -ESRCH (dying domain), -EINVAL (bad
   * pirq), -EBUSY (the pirq is already bound to a port of this domain), -ENOSPC.
   *
   * Deviation: Xen also refuses a pirq the domain has no access to (`-EPERM`); here the
   * binding succeeds, and the host only ever delivers pirqs it mapped into the domain,
   * so a guest binding a foreign number just never hears from it. The busy check and the
   * claim are two steps: two threads of one domain binding the same pirq at once could
   * both succeed (a guest is one worker thread, so only a misbehaving guest hurts itself).
   */
  bindPirq(domid: number, pirq: number, masked: boolean): number {
    if (!this.validDomid(domid) || !this.domainAlive(domid)) return EVTCHN_ERRNO.ESRCH;
    if (!Number.isInteger(pirq) || pirq < 1 || pirq > MAX_BINDABLE_PIRQ) {
      return EVTCHN_ERRNO.EINVAL;
    }
    if (this.findPirqPort(domid, pirq) !== 0) return EBUSY;
    const port = this.#claimPort(domid, masked);
    if (port < 0) return port;
    Atomics.store(this.words, this.#portIndex(domid, port), PORT_STATE.PIRQ | (pirq << PIRQ_SHIFT));
    return port;
  }

  /** The pirq a PIRQ port of `domid` is bound to; 0 for any other port. */
  pirqOfPort(domid: number, port: number): number {
    if (!this.validDomid(domid) || !this.validPort(port)) return 0;
    const e = Atomics.load(this.words, this.#portIndex(domid, port));
    return (e & STATE_MASK) === PORT_STATE.PIRQ ? e >>> PIRQ_SHIFT : 0;
  }

  /**
   * The port of `domid` bound to `pirq`, or 0: a scan of the domain's port table (the
   * host caches the answer and re-checks it with {@link pirqOfPort}).
   */
  findPirqPort(domid: number, pirq: number): number {
    if (!this.validDomid(domid) || !Number.isInteger(pirq) || pirq < 1) return 0;
    if (pirq > MAX_BINDABLE_PIRQ) return 0;
    const w = this.words;
    const wanted = PORT_STATE.PIRQ | (pirq << PIRQ_SHIFT);
    const first = this.#portIndex(domid, 0);
    for (let port = 1; port < this.maxPorts; port++) {
      if (Atomics.load(w, first + port) === wanted) return port;
    }
    return 0;
  }

  // --- delivery -------------------------------------------------------------------------

  /**
   * `EVTCHNOP_send` from `(domid, port)`: sets the peer's pending bit. Dropped silently on
   * an unbound port (as Xen does); -EINVAL for a free or invalid port, -ESRCH from a
   * dying domain.
   */
  send(domid: number, port: number): number {
    if (!this.validDomid(domid) || !this.validPort(port)) return EVTCHN_ERRNO.EINVAL;
    const e = Atomics.load(this.words, this.#portIndex(domid, port));
    const state = e & STATE_MASK;
    if (state === PORT_STATE.INTERDOMAIN) {
      if (Atomics.load(this.words, this.#base(domid) + D_STATE) === DOMAIN_STATE.DYING) {
        return EVTCHN_ERRNO.ESRCH;
      }
      this.setPending((e >>> RDOM_SHIFT) & RDOM_MASK, (e >>> RPORT_SHIFT) & RPORT_MASK);
      return 0;
    }
    return state === PORT_STATE.UNBOUND ? 0 : EVTCHN_ERRNO.EINVAL;
  }

  /**
   * Xen's `evtchn_2l_set_pending`: sets the bit; only a newly pending, unmasked port
   * raises the upcall, and only a 0 -> 1 upcall transition pays for `Atomics.notify`.
   * Pollers are woken whether or not the port is masked (SCHEDOP_poll ignores masks).
   */
  setPending(domid: number, port: number): void {
    const w = this.words;
    const bit = 1 << (port & 31);
    const old = Atomics.or(w, this.#pendingIndex(domid, port), bit);
    if ((old & bit) !== 0) return;
    const base = this.#base(domid);
    if ((Atomics.load(w, this.#maskIndex(domid, port)) & bit) === 0) {
      if (Atomics.exchange(w, base + D_UPCALL, 1) === 0) Atomics.notify(w, base + D_UPCALL);
    }
    if (Atomics.load(w, base + D_POLLERS) !== 0) {
      Atomics.add(w, base + D_POLL_SEQ, 1);
      Atomics.notify(w, base + D_POLL_SEQ);
    }
  }

  /** True when the port's pending bit is set. */
  isPending(domid: number, port: number): boolean {
    return (Atomics.load(this.words, this.#pendingIndex(domid, port)) & (1 << (port & 31))) !== 0;
  }

  /** Clears the pending bit (`clear_evtchn`). */
  clearPending(domid: number, port: number): void {
    Atomics.and(this.words, this.#pendingIndex(domid, port), ~(1 << (port & 31)));
  }

  /** Clears the pending bit; true when it was set. */
  testAndClearPending(domid: number, port: number): boolean {
    const bit = 1 << (port & 31);
    return (Atomics.and(this.words, this.#pendingIndex(domid, port), ~bit) & bit) !== 0;
  }

  /** True when the port's mask bit is set. */
  isMasked(domid: number, port: number): boolean {
    return (Atomics.load(this.words, this.#maskIndex(domid, port)) & (1 << (port & 31))) !== 0;
  }

  /** Sets the mask bit (`mask_evtchn`). */
  mask(domid: number, port: number): void {
    Atomics.or(this.words, this.#maskIndex(domid, port), 1 << (port & 31));
  }

  /**
   * Clears the mask bit; a port that is pending raises the upcall now, so events sent
   * while it was masked are delivered once (`unmask_evtchn` / `EVTCHNOP_unmask`).
   */
  unmask(domid: number, port: number): void {
    const w = this.words;
    const bit = 1 << (port & 31);
    Atomics.and(w, this.#maskIndex(domid, port), ~bit);
    if ((Atomics.load(w, this.#pendingIndex(domid, port)) & bit) === 0) return;
    const up = this.upcallIndex(domid);
    if (Atomics.exchange(w, up, 1) === 0) Atomics.notify(w, up);
  }

  /** Pending and not masked ports of bitmap word `wordIndex`, as a bit set. */
  deliverableBits(domid: number, wordIndex: number): number {
    const base = this.#base(domid) + DOMAIN_HEADER_WORDS;
    const w = this.words;
    return (
      Atomics.load(w, base + wordIndex) & ~Atomics.load(w, base + this.#bitmapWords + wordIndex)
    );
  }

  /** Clears bits of pending word `wordIndex`. */
  clearPendingBits(domid: number, wordIndex: number, bits: number): void {
    Atomics.and(this.words, this.#base(domid) + DOMAIN_HEADER_WORDS + wordIndex, ~bits);
  }

  /** Consumes the upcall flag: true when it was raised. */
  takeUpcall(domid: number): boolean {
    return Atomics.exchange(this.words, this.#base(domid) + D_UPCALL, 0) !== 0;
  }

  /** True while the upcall flag is raised. */
  upcallRaised(domid: number): boolean {
    return Atomics.load(this.words, this.#base(domid) + D_UPCALL) !== 0;
  }
}
