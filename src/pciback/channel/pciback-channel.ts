// SPDX-License-Identifier: MIT
/**
 * One connected frontend (`struct xen_pcibk_device` with its shared page and event
 * channel): the late-EOI event handler (spec §4.1, pciback-fixes P5), the single draining
 * worker (§4.2), the shared-page side of each op (§4.3 steps 1, 6-8) and the AER round
 * trip (§6.6 `common_process`).
 *
 * Everything runs on the backend's event loop, so the private bits of `pdev->flags`
 * (`_PDEVF_op_active`, `_PCIB_op_pending`, `_EOI_pending`) are plain fields: the
 * handler and the worker never run at the same time. Only the shared `flags` word is
 * touched with `Atomics`, because the guest flips it from another thread.
 */
import {
  PCI_ERS_RESULT,
  XEN_PCI_ERR,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_SHAREDINFO_FLAGS_WORD,
  XEN_PCI_SHAREDINFO_OFFSET,
  XEN_PCIE_AER_OP_OFFSET,
  encodePcieAerOp,
  snapshotPciOp,
  writePciOpResult,
  type PciOp,
  type PciOpResult,
} from '../../abi/pciif.js';
import { PcibackError } from '../../errors.js';
import type {
  BoundEventChannel,
  EventChannelHandler,
  GrantMapper,
  GrantMapping,
  Logger,
} from '../../platform/types.js';
import { GNTST, SILENT_LOGGER, XEN_EOI_FLAG } from '../../platform/types.js';
import { countOp, createOpCounts, RateLimiter, type OpCounts } from '../device/index.js';
import type { PcibackDevice } from '../device/index.js';
import { doOneOp, type OpContext } from '../ops/index.js';
import type { Topology, TopologyDevice } from '../topology/index.js';

/** Default bound of the AER wait (`wait_event_timeout(..., 300 * HZ)`). */
export const AER_TIMEOUT_MS = 300_000;
/**
 * Default number of ops one worker run handles before it yields to the scheduler. The
 * original's worker is preemptible; on one event loop a guest re-posting ops as fast as
 * they are answered must not starve other guests (DESIGN.md §5).
 */
export const DEFAULT_MAX_OPS_PER_RUN = 64;

/**
 * How long the worker keeps polling for the frontend's next op before it EOIs and goes
 * back to waiting for an event (µs). A frontend issues ops back to back (enumeration,
 * BAR sizing) and posts the next one within a microsecond or two of the answer; catching
 * it here saves a cross-thread wake-up per op (tens of µs, DESIGN.md §5). Bounded, and
 * only while this guest keeps the worker busy; the op budget still applies. The op's
 * own notification then arrives after the EOI and is answered as spurious.
 */
export const DEFAULT_POLL_BEFORE_EOI_US = 20;

/** Stable codes of the `PcibackError`s a channel throws (caller faults only). */
export const CHANNEL_ERROR = {
  /** The shared page mapping is not a whole 4 KiB page. */
  badMapping: 'CHANNEL_BAD_MAPPING',
  /** An event channel was attached twice, or after disconnect. */
  badEventChannel: 'CHANNEL_BAD_EVENT_CHANNEL',
  /** A lifecycle move the transition table does not allow (a programming fault). */
  badTransition: 'CHANNEL_BAD_TRANSITION',
} as const;

/** Schedules the worker (`schedule_work`); `queueMicrotask` or `setImmediate`. */
export type ChannelScheduler = (job: () => void) => void;

/** A one-shot timer; returns its cancel function. */
export type ChannelTimer = (delayMs: number, callback: () => void) => () => void;

/** Options of {@link PcibackChannel}. */
export interface PcibackChannelOptions<D extends TopologyDevice> {
  /** The mapped shared page (`pci-op-ref`). */
  readonly mapping: GrantMapping;
  /** Unmaps it at disconnect. */
  readonly grantMapper: Pick<GrantMapper, 'unmapGrantRef'>;
  /**
   * The channel bound with late EOI and {@link PcibackChannel.handler}. May also be given
   * later with {@link PcibackChannel.attachEventChannel} (the bind needs the handler
   * first); an event arriving before either is handled with the channel it names.
   */
  readonly eventChannel?: BoundEventChannel;
  /** This connection's exported devices. */
  readonly topology: Pick<Topology<D>, 'get' | 'find'>;
  /** Backend state of a held device; default: the device when it is a PcibackDevice. */
  readonly backendOf?: (dev: D) => PcibackDevice | undefined;
  /** The frontend's domain id. */
  readonly frontendDomid: number;
  /**
   * Runs the worker. Default `queueMicrotask`; the composition root should pass
   * `setImmediate` so a busy guest's continuations interleave with other I/O.
   */
  readonly schedule?: ChannelScheduler;
  /** Timer for the AER wait (default `setTimeout`). */
  readonly setTimer?: ChannelTimer;
  /** AER answer timeout (default {@link AER_TIMEOUT_MS}). */
  readonly aerTimeoutMs?: number;
  /** Ops per worker run before yielding (default {@link DEFAULT_MAX_OPS_PER_RUN}). */
  readonly maxOpsPerRun?: number;
  /** Polling window after the last op, µs (default {@link DEFAULT_POLL_BEFORE_EOI_US}; 0 off). */
  readonly pollBeforeEoiUs?: number;
  /** Monotonic clock in ms for the polling window (default `performance.now`). */
  readonly nowMs?: () => number;
  readonly logger?: Logger;
  /** Limits the "IRQ while EOI pending" warning; default Linux's 10 per 5 s. */
  readonly warnLimiter?: RateLimiter;
}

/** Per-channel statistics (the event counters proper live in `XenbusEventCounters`). */
export interface PcibackChannelStats {
  /** Ops handled. */
  readonly ops: number;
  /** Ops handled, by command. */
  readonly opsByCmd: Readonly<OpCounts>;
  /** Events that found nothing to do (answered with a spurious EOI). */
  readonly spuriousKicks: number;
  /** Events delivered while an EOI was still pending. */
  readonly irqWhileEoiPending: number;
  /** Worker runs started by an event (each ends with one non-spurious EOI). */
  readonly workerRuns: number;
  /** Times a run yielded after its op budget and continued later (same run). */
  readonly budgetYields: number;
  /** AER requests posted, and those the frontend did not answer in time. */
  readonly aerRequests: number;
  readonly aerTimeouts: number;
}

/** What {@link PcibackChannel.aerRequest} posts. */
export interface AerRequest {
  /** `XEN_PCI_OP_aer_*` (6..9). */
  readonly cmd: number;
  /** `pci_channel_state` put in `aer_op.err`. */
  readonly state: number;
  /** Returned when the frontend does not answer in time (or the channel goes away). */
  readonly defaultResult: number;
}

type ChannelState = 'connected' | 'disconnected';

const TRANSITIONS: Readonly<Record<ChannelState, readonly ChannelState[]>> = {
  connected: ['disconnected'],
  disconnected: [],
};

const OP_OFFSET = XEN_PCI_SHAREDINFO_OFFSET.op;
const AER_OFFSET = XEN_PCI_SHAREDINFO_OFFSET.aer_op;
const FLAGS = XEN_PCI_SHAREDINFO_FLAGS_WORD;
const PAGE_SIZE = 4096;

function defaultTimer(delayMs: number, callback: () => void): () => void {
  const handle = setTimeout(callback, delayMs);
  return () => {
    clearTimeout(handle);
  };
}

/**
 * The request path of one connected frontend.
 *
 * @example
 * const chan = new PcibackChannel({ mapping, grantMapper, topology, frontendDomid: 5,
 *   schedule: setImmediate, logger });
 * const bound = evtchn.bindInterdomain(5, port, chan.handler, { lateEoi: true, counters });
 * if (bound.ok) chan.attachEventChannel(bound.channel);
 * // ... later, on Closing:
 * chan.disconnect();
 */
export class PcibackChannel<D extends TopologyDevice = PcibackDevice> {
  /** The event handler to bind (`xen_pcibk_handle_event`); bound to this channel. */
  readonly handler: EventChannelHandler = (channel) => {
    this.#onEvent(channel);
  };

  #state: ChannelState = 'connected';
  readonly #mapping: GrantMapping;
  readonly #grantMapper: Pick<GrantMapper, 'unmapGrantRef'>;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #words: Int32Array;
  readonly #topology: Pick<Topology<D>, 'get' | 'find'>;
  readonly #opCtx: OpContext<D>;
  readonly #frontendDomid: number;
  readonly #schedule: ChannelScheduler;
  readonly #setTimer: ChannelTimer;
  readonly #aerTimeoutMs: number;
  readonly #maxOpsPerRun: number;
  readonly #pollBeforeEoiMs: number;
  readonly #nowMs: () => number;
  readonly #logger: Logger;
  readonly #warnLimiter: RateLimiter;
  #evtchn: BoundEventChannel | undefined;

  /** `_PDEVF_op_active`: the worker owns an op (claimed, queued or running). */
  #opActive = false;
  /** `_PCIB_op_pending`: an AER request waits for the frontend's answer. */
  #aerPending = false;
  /** `_EOI_pending`: an event was received and not yet EOI'd. */
  #eoiPending = false;
  /** A worker job is in the scheduler's queue. */
  #workerQueued = false;
  /** The queued worker continues a run that yielded its op budget (no event behind it). */
  #continuing = false;
  /** The worker is on the stack (disconnect from inside it must not re-enter). */
  #inWorker = false;
  /** Re-checks the AER wait condition; set while an AER request waits. */
  #aerWake: ((timedOut: boolean) => void) | undefined;
  /** AER requests are serialised (the original holds `pcistub_sem`). */
  #aerChain: Promise<unknown> = Promise.resolve();

  #ops = 0;
  readonly #opsByCmd: OpCounts = createOpCounts();
  #spuriousKicks = 0;
  #irqWhileEoiPending = 0;
  #workerRuns = 0;
  #budgetYields = 0;
  #aerRequests = 0;
  #aerTimeouts = 0;

  constructor(options: PcibackChannelOptions<D>) {
    const { mapping } = options;
    if (mapping.bytes.length < PAGE_SIZE || mapping.words.length < PAGE_SIZE / 4) {
      throw new PcibackError(
        CHANNEL_ERROR.badMapping,
        `Cannot connect to the frontend of domain ${options.frontendDomid}: the shared page mapping has ${mapping.bytes.length} bytes, expected ${PAGE_SIZE}`,
      );
    }
    this.#mapping = mapping;
    this.#grantMapper = options.grantMapper;
    this.#bytes = mapping.bytes;
    this.#view = new DataView(mapping.bytes.buffer, mapping.bytes.byteOffset, PAGE_SIZE);
    this.#words = mapping.words;
    this.#topology = options.topology;
    this.#frontendDomid = options.frontendDomid;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#opCtx = {
      topology: options.topology,
      frontendDomid: options.frontendDomid,
      logger: this.#logger,
      ...(options.backendOf !== undefined ? { backendOf: options.backendOf } : {}),
    };
    this.#schedule = options.schedule ?? queueMicrotask;
    this.#setTimer = options.setTimer ?? defaultTimer;
    this.#aerTimeoutMs = options.aerTimeoutMs ?? AER_TIMEOUT_MS;
    const maxOps = options.maxOpsPerRun ?? DEFAULT_MAX_OPS_PER_RUN;
    if (!Number.isInteger(maxOps) || maxOps < 1) {
      throw new RangeError(`Invalid maxOpsPerRun ${maxOps}: it must be a positive integer`);
    }
    this.#maxOpsPerRun = maxOps;
    const pollUs = options.pollBeforeEoiUs ?? DEFAULT_POLL_BEFORE_EOI_US;
    if (!(pollUs >= 0)) throw new RangeError(`Invalid pollBeforeEoiUs ${pollUs}: it must be >= 0`);
    this.#pollBeforeEoiMs = pollUs / 1000;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    this.#warnLimiter = options.warnLimiter ?? new RateLimiter();
    this.#evtchn = options.eventChannel;
  }

  /** True until {@link disconnect}. */
  get connected(): boolean {
    return this.#state === 'connected';
  }

  /** The frontend's domain id. */
  get frontendDomid(): number {
    return this.#frontendDomid;
  }

  /**
   * Give the channel returned by the bind (`pdev->evtchn_irq = err`).
   *
   * @throws PcibackError `CHANNEL_BAD_EVENT_CHANNEL` after disconnect or when another
   *   channel is already attached.
   */
  attachEventChannel(channel: BoundEventChannel): void {
    if (this.#state !== 'connected' || (this.#evtchn !== undefined && this.#evtchn !== channel)) {
      throw new PcibackError(
        CHANNEL_ERROR.badEventChannel,
        `Cannot attach event channel ${channel.localPort} to the frontend of domain ${this.#frontendDomid}: it is ${this.#state === 'connected' ? 'already attached to another channel' : 'disconnected'}`,
      );
    }
    this.#evtchn = channel;
  }

  /** Whether the frontend said it has a PV AER handler (`XEN_PCIB_AERHANDLER`). */
  frontendHasAerHandler(): boolean {
    if (this.#state !== 'connected') return false;
    return (Atomics.load(this.#words, FLAGS) & XEN_PCI_FLAG_MASK.PCIB_AERHANDLER) !== 0;
  }

  /** Statistics as plain data. */
  stats(): PcibackChannelStats {
    return {
      ops: this.#ops,
      opsByCmd: { ...this.#opsByCmd },
      spuriousKicks: this.#spuriousKicks,
      irqWhileEoiPending: this.#irqWhileEoiPending,
      workerRuns: this.#workerRuns,
      budgetYields: this.#budgetYields,
      aerRequests: this.#aerRequests,
      aerTimeouts: this.#aerTimeouts,
    };
  }

  // --- §4.1 event handler ---------------------------------------------------------

  #onEvent(channel: BoundEventChannel): void {
    // Step 1: the event may arrive before the bind call returned.
    if (this.#evtchn !== channel) this.#evtchn = channel;
    if (this.#state !== 'connected') {
      // Stopped accepting: end the event without work (the unbind follows or happened).
      channel.lateEoi(XEN_EOI_FLAG.SPURIOUS);
      return;
    }
    // Step 2.
    if (this.#eoiPending) {
      this.#irqWhileEoiPending++;
      this.#warnLimiter.warn(
        this.#logger,
        { domid: this.#frontendDomid, port: channel.localPort },
        `IRQ while EOI pending on the channel of domain ${this.#frontendDomid}`,
      );
    }
    this.#eoiPending = true;
    // Step 3.
    this.#testAndScheduleOp();
  }

  /** `xen_pcibk_test_and_schedule_op`. */
  #testAndScheduleOp(): void {
    let eoi = true;
    const flags = Atomics.load(this.#words, FLAGS);
    if ((flags & XEN_PCI_FLAG_MASK.PCIF_active) !== 0 && !this.#opActive) {
      this.#opActive = true;
      this.#queueWorker();
      eoi = false;
    }
    if ((flags & XEN_PCI_FLAG_MASK.PCIB_active) === 0 && this.#aerPending) {
      this.#aerWake?.(false);
      eoi = false;
    }
    if (eoi) {
      this.#spuriousKicks++;
      this.#lateEoi(XEN_EOI_FLAG.SPURIOUS);
    }
  }

  /** `xen_pcibk_lateeoi`: EOI only if an event is still un-EOI'd. */
  #lateEoi(flags: number): void {
    if (!this.#eoiPending) return;
    this.#eoiPending = false;
    this.#evtchn?.lateEoi(flags);
  }

  // --- §4.2 worker ----------------------------------------------------------------

  #queueWorker(): void {
    this.#workerQueued = true;
    this.#schedule(() => {
      this.#runWorker();
    });
  }

  /** `xen_pcibk_do_op`: drain every posted op, then one non-spurious EOI. */
  #runWorker(): void {
    this.#workerQueued = false;
    // Disconnect took over (and answered a claimed op if it could).
    if (this.#state !== 'connected' || !this.#opActive) return;
    // A continuation after a budget yield is the same run (same event, EOI still pending).
    if (this.#continuing) this.#budgetYields++;
    else this.#workerRuns++;
    this.#continuing = false;
    this.#inWorker = true;
    try {
      let budget = this.#maxOpsPerRun;
      for (;;) {
        this.#processOneOp();
        // A logger or platform callback may have disconnected us meanwhile.
        if (!this.connected) return;
        if (!this.#claimPendingOp() && !this.#pollForNextOp()) break;
        if (--budget === 0) {
          // Yield with the op claimed and the EOI still pending: the channel stays
          // masked and no second worker can start.
          this.#continuing = true;
          this.#queueWorker();
          return;
        }
      }
      this.#lateEoi(0);
    } finally {
      this.#inWorker = false;
    }
  }

  /** Poll briefly for the frontend's next op; true when one was posted and claimed. */
  #pollForNextOp(): boolean {
    if (this.#pollBeforeEoiMs === 0) return false;
    const deadline = this.#nowMs() + this.#pollBeforeEoiMs;
    do {
      if (this.#claimPendingOp()) return true;
    } while (this.#nowMs() < deadline);
    return false;
  }

  /** `xen_pcibk_test_op_pending`-style re-test: an op is posted and nobody owns it. */
  #claimPendingOp(): boolean {
    if ((Atomics.load(this.#words, FLAGS) & XEN_PCI_FLAG_MASK.PCIF_active) === 0) return false;
    if (this.#opActive) return false;
    this.#opActive = true;
    return true;
  }

  /** §4.3: snapshot once, handle, write back err/value/vectors, clear the bit, notify. */
  #processOneOp(): void {
    // Step 1 (XSA-155): the only read of the op in the shared page.
    const op: PciOp = snapshotPciOp(this.#bytes, OP_OFFSET);
    // Steps 2-5 (never throws).
    const result = doOneOp(op, this.#opCtx);
    this.#ops++;
    countOp(this.#opsByCmd, op.cmd);
    // Step 6.
    this.#writeResult(op, result);
    // Step 7: Atomics.and is sequentially consistent, so the frontend that sees the bit
    // clear also sees the answer written above.
    Atomics.and(this.#words, FLAGS, ~XEN_PCI_FLAG_MASK.PCIF_active);
    this.#evtchn?.notify();
    // Step 8.
    this.#opActive = false;
  }

  #writeResult(op: PciOp, result: PciOpResult): void {
    try {
      writePciOpResult(this.#view, OP_OFFSET, result);
    } catch (cause) {
      // Only a programming fault can make a result unencodable; the guest gets op_failed.
      this.#logger.error(
        { cause, domid: this.#frontendDomid, cmd: op.cmd },
        `Cannot write the answer of op ${op.cmd} for guest ${this.#frontendDomid}: invalid result`,
      );
      writePciOpResult(this.#view, OP_OFFSET, { err: XEN_PCI_ERR.op_failed, value: op.value });
    }
  }

  // --- §6.6 AER round trip ----------------------------------------------------------

  /**
   * `common_process`: post an AER request about `dev` in `aer_op`, set
   * `XEN_PCIB_active`, notify, and wait (up to the AER timeout) for the frontend to clear
   * the bit. Resolves to the frontend's `pci_ers_result` from `aer_op.err`, `NONE` (1)
   * when the device is not exported on this connection, or `defaultResult` on timeout or
   * disconnect. Requests are serialised. Never rejects.
   *
   * Deviation: on timeout `_PCIB_op_pending` is cleared (the original leaves it set, after
   * which events that only carry an AER answer are never EOI'd and the channel stays
   * masked until the next op).
   */
  aerRequest(dev: Pick<TopologyDevice, 'address'>, request: AerRequest): Promise<number> {
    const run = this.#aerChain.then(() => this.#aerRoundTrip(dev, request));
    this.#aerChain = run.catch(() => undefined);
    return run.catch((cause: unknown) => {
      this.#logger.error({ cause }, 'Cannot complete an AER request: internal error');
      return request.defaultResult;
    });
  }

  #aerRoundTrip(dev: Pick<TopologyDevice, 'address'>, request: AerRequest): Promise<number> {
    const name = dev.address.toString();
    if (this.#state !== 'connected') return Promise.resolve(request.defaultResult);
    const guest = this.#topology.find(dev);
    if (guest === undefined) {
      this.#logger.warn(
        { device: name, domid: this.#frontendDomid },
        `Cannot send AER request for "${name}" to guest ${this.#frontendDomid}: the device is not exported to it`,
      );
      return Promise.resolve(PCI_ERS_RESULT.NONE);
    }
    // Step 1-2.
    encodePcieAerOp(this.#view, AER_OFFSET, {
      cmd: request.cmd,
      err: request.state,
      domain: guest.domain,
      bus: guest.bus,
      devfn: guest.devfn,
    });
    this.#aerRequests++;
    this.#aerPending = true;
    Atomics.or(this.#words, FLAGS, XEN_PCI_FLAG_MASK.PCIB_active);
    this.#evtchn?.notify();
    // Step 3: let the frontend's completion event through even if one is un-EOI'd.
    this.#lateEoi(0);
    // Step 4.
    return new Promise<number>((resolve) => {
      const finish = (timedOut: boolean): void => {
        const answered =
          this.#state === 'connected' &&
          (Atomics.load(this.#words, FLAGS) & XEN_PCI_FLAG_MASK.PCIB_active) === 0;
        // A wake-up whose condition is still false keeps waiting (wait_event semantics).
        if (!timedOut && !answered && this.#state === 'connected') return;
        cancel();
        this.#aerWake = undefined;
        this.#aerPending = false;
        if (this.#state !== 'connected') {
          resolve(request.defaultResult);
          return;
        }
        // Step 5.
        if (!this.#opActive) this.#lateEoi(0);
        if (!answered) {
          // Step 6.
          this.#aerTimeouts++;
          this.#logger.error(
            { device: name, domid: this.#frontendDomid },
            `pcifront aer process not responding! (guest ${this.#frontendDomid}, "${name}")`,
          );
          Atomics.and(this.#words, FLAGS, ~XEN_PCI_FLAG_MASK.PCIB_active);
          this.#view.setInt32(AER_OFFSET + XEN_PCIE_AER_OP_OFFSET.err, PCI_ERS_RESULT.NONE, true);
          resolve(request.defaultResult);
          return;
        }
        // Step 7: one read of the answer.
        resolve(this.#view.getInt32(AER_OFFSET + XEN_PCIE_AER_OP_OFFSET.err, true));
      };
      const cancel = this.#setTimer(this.#aerTimeoutMs, () => {
        finish(true);
      });
      this.#aerWake = finish;
    });
  }

  // --- disconnect --------------------------------------------------------------------

  /**
   * `xen_pcibk_disconnect`: stop accepting events, finish an op the worker already
   * claimed (the original's `flush_work`; bounded: one op), end a waiting AER request
   * with its default, unbind the event channel and unmap the page. Synchronous, so it
   * cannot hang; idempotent.
   */
  disconnect(): void {
    if (this.#state !== 'connected') return;
    if (this.#opActive && this.#workerQueued && !this.#inWorker) {
      // A claimed op is answered so the frontend does not wait for its timeout.
      this.#processOneOp();
    }
    this.#transition('disconnected');
    this.#aerWake?.(true);
    this.#evtchn?.unbind();
    const status = this.#grantMapper.unmapGrantRef(this.#mapping.handle);
    if (status !== GNTST.okay) {
      this.#logger.warn(
        { domid: this.#frontendDomid, status },
        `Cannot unmap the shared page of domain ${this.#frontendDomid}: grant status ${status}`,
      );
    }
  }

  #transition(to: ChannelState): void {
    if (!TRANSITIONS[this.#state].includes(to)) {
      throw new PcibackError(
        CHANNEL_ERROR.badTransition,
        `Cannot move the channel of domain ${this.#frontendDomid} from "${this.#state}" to "${to}"`,
      );
    }
    this.#state = to;
  }
}
