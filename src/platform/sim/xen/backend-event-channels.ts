// SPDX-License-Identifier: MIT
/**
 * The backend domain's event core (Linux `events_base.c` + the 2-level ABI upcall) on
 * the main event loop: binds interdomain channels to handlers, waits for upcalls with
 * `Atomics.waitAsync` (re-armed; a sweep interval bounds every wait), and delivers each pending,
 * unmasked port to its handler under the late-EOI rules of spec-fixes P1 (loop guard,
 * `is_active`, EOI_PENDING mask, epochs).
 */
import type {
  BackendEventChannels,
  BindInterdomainOptions,
  BoundEventChannel,
  DomId,
  EventChannelHandler,
  EvtchnBindResult,
  EvtchnPort,
  JiffiesClock,
  Logger,
} from '../../types.js';
import { SILENT_LOGGER } from '../../types.js';
import { PORT_STATE, type EventArea } from './event-area.js';
import { IrqInfo, MASK_REASON, type IrqState } from './irq-info.js';
import { EVENT_EOI_DELAY_JIFFIES, EVENT_LOOP_TIMEOUT_JIFFIES, LateEoiEngine } from './late-eoi.js';

/** Options of {@link SimBackendEventChannels}. */
export interface SimBackendEventChannelsOptions {
  /** Kernel time for the loop guard and delayed EOIs. */
  clock: JiffiesClock;
  logger?: Logger;
  /** `xen.event_loop_timeout` (jiffies). Default 2. */
  eventLoopTimeout?: number;
  /** `xen.event_eoi_delay` (jiffies). Default 10. */
  eventEoiDelay?: number;
  /**
   * Interval of the sweep that wakes the wait loop for a scan anyway (ms). The scan
   * recovers a wake-up lost by a guest killed between setting a pending bit and raising
   * the upcall. Default 1000: an idle backend wakes once a second. (One interval timer,
   * not a timeout per `Atomics.waitAsync`: each early-woken wait would leave its timeout
   * task queued, and after a burst of N events N empty tasks would fire over the next
   * interval — measured at 20-45 % of a core for a second after 20 000 round trips.)
   */
  waitTimeoutMs?: number;
  /**
   * Rescans of one upcall while new events keep arriving (Linux loops without bound;
   * here a flood of non-late-EOI events must not hold the event loop). Default 16.
   */
  maxUpcallRounds?: number;
  /** Defers a callback to the event loop (default `setImmediate`). */
  defer?: (callback: () => void) => void;
  /**
   * Start the wait loop at the first bind (default true). With false, tests drive
   * delivery with {@link SimBackendEventChannels.processUpcall}.
   */
  autoStart?: boolean;
}

/** Loop-guard state of one upcall (`struct evtchn_loop_ctrl`). */
interface LoopCtrl {
  count: number;
  timeout: number | undefined;
  deferEoi: boolean;
}

/**
 * Event channels of one backend domain (dom0): bind, deliver, late EOI. Main-thread
 * only; guests reach it through the shared event area.
 *
 * @example
 * const evtchn = hypervisor.eventChannels(DOM0);
 * const r = evtchn.bindInterdomain(guest, port, (ch) => ch.lateEoi(XEN_EOI_FLAG.SPURIOUS), {
 *   lateEoi: true,
 *   counters,
 * });
 * if (r.ok) r.channel.notify();
 */
export class SimBackendEventChannels implements BackendEventChannels {
  /** The domain whose ports these are. */
  readonly domid: DomId;
  readonly #area: EventArea;
  readonly #clock: JiffiesClock;
  readonly #logger: Logger;
  readonly #eoi: LateEoiEngine;
  readonly #eventLoopTimeout: number;
  readonly #eventEoiDelay: number;
  readonly #waitTimeoutMs: number;
  #sweep: ReturnType<typeof setInterval> | undefined;
  readonly #maxRounds: number;
  readonly #defer: (callback: () => void) => void;
  readonly #autoStart: boolean;
  readonly #byPort = new Map<number, { info: IrqInfo; channel: SimBoundChannel }>();
  /** Bit position after the last delivered port: scans resume there (2-level ABI fairness). */
  #scanStart = 0;
  #running = false;
  #generation = 0;
  #upcalls = 0;
  /** What a channel handle may do to its channel (kept off the public surface). */
  readonly #ops: ChannelOps = {
    notify: (info) => {
      if (info.valid) this.#area.send(this.domid, info.port);
    },
    lateEoi: (info, flags) => {
      if (info.lateEoi) this.#eoi.lateEoi(info, flags);
    },
    connected: (info) =>
      info.valid && this.#area.portEntry(this.domid, info.port).state === PORT_STATE.INTERDOMAIN,
    unbind: (info) => {
      this.#unbind(info);
    },
  };

  constructor(area: EventArea, domid: DomId, options: SimBackendEventChannelsOptions) {
    this.#area = area;
    this.domid = domid;
    this.#clock = options.clock;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#eoi = new LateEoiEngine(options.clock);
    this.#eventLoopTimeout = options.eventLoopTimeout ?? EVENT_LOOP_TIMEOUT_JIFFIES;
    this.#eventEoiDelay = options.eventEoiDelay ?? EVENT_EOI_DELAY_JIFFIES;
    this.#waitTimeoutMs = options.waitTimeoutMs ?? 1000;
    this.#maxRounds = options.maxUpcallRounds ?? 16;
    this.#defer = options.defer ?? ((cb) => setImmediate(cb));
    this.#autoStart = options.autoStart ?? true;
  }

  /** Upcalls processed so far (diagnostics, benchmarks). */
  get upcalls(): number {
    return this.#upcalls;
  }

  /** True while the wait loop is armed. */
  get running(): boolean {
    return this.#running;
  }

  /** {@inheritDoc BackendEventChannels.bindInterdomain} */
  bindInterdomain(
    remoteDomid: DomId,
    remotePort: EvtchnPort,
    handler: EventChannelHandler,
    options: BindInterdomainOptions = {},
  ): EvtchnBindResult {
    // Bound masked, like Linux: the port is unmasked once the handler is installed, and
    // the pending bit Xen sets at bind time is then delivered.
    const port = this.#area.bindInterdomain(this.domid, remoteDomid, remotePort, true);
    if (port < 0) return { ok: false, errno: port };
    const info = new IrqInfo(this.#area, this.domid, {
      port,
      lateEoi: options.lateEoi ?? false,
      counters: options.counters,
      handler,
    });
    const channel = new SimBoundChannel(this.#ops, info, remoteDomid, remotePort);
    this.#byPort.set(port, { info, channel });
    if (info.counters !== undefined) info.counters.eventChannels += 1;
    this.#area.unmask(this.domid, port);
    if (this.#autoStart) this.start();
    return { ok: true, channel };
  }

  /** Late-EOI state of the channel on `localPort` (tests, diagnostics). */
  irqState(localPort: EvtchnPort): IrqState | undefined {
    return this.#byPort.get(localPort)?.info.state();
  }

  /** Current epoch of the (single) CPU. */
  get epoch(): number {
    return this.#eoi.epoch();
  }

  /** Local ports on the delayed-EOI list, head first. */
  queuedEois(): number[] {
    return this.#eoi.queued().map((i) => i.port);
  }

  /** Arms the wait loop (idempotent). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#generation += 1;
    this.#arm(this.#generation);
    const words = this.#area.words;
    const index = this.#area.upcallIndex(this.domid);
    this.#sweep = setInterval(() => {
      Atomics.notify(words, index);
    }, this.#waitTimeoutMs);
    this.#sweep.unref();
  }

  /** Stops the wait loop; bound channels stay bound. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#generation += 1;
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    // Resolve the outstanding waitAsync now rather than at its timeout.
    Atomics.notify(this.#area.words, this.#area.upcallIndex(this.domid));
  }

  /** Stops the loop and the delayed-EOI timer (the backend is going away). */
  dispose(): void {
    this.stop();
    this.#eoi.dispose();
  }

  #arm(generation: number): void {
    const wake = (): void => {
      if (generation !== this.#generation) return;
      this.processUpcall();
      this.#arm(generation);
    };
    // No timeout here: the sweep interval of start() bounds the wait.
    const r = Atomics.waitAsync(this.#area.words, this.#area.upcallIndex(this.domid), 0);
    if (r.async) {
      void r.value.then(wake);
    } else {
      // Already raised: go through the event loop so other work still runs.
      this.#defer(wake);
    }
  }

  /**
   * One upcall (`xen_evtchn_do_upcall`): clear the upcall flag and deliver every pending
   * unmasked port, again while the flag was raised meanwhile (bounded), then the CPU's
   * epoch += 1. Synchronous; returns the number of ports handled.
   */
  processUpcall(): number {
    const ctrl: LoopCtrl = { count: 0, timeout: undefined, deferEoi: false };
    let handled = 0;
    let rounds = 0;
    do {
      this.#area.takeUpcall(this.domid);
      handled += this.#scan(ctrl);
      rounds += 1;
    } while (this.#area.upcallRaised(this.domid) && rounds < this.#maxRounds);
    this.#eoi.endUpcall();
    this.#upcalls += 1;
    return handled;
  }

  /** `evtchn_2l_handle_events`: one pass over the bitmaps, resuming after the last port. */
  #scan(ctrl: LoopCtrl): number {
    const area = this.#area;
    const nWords = area.bitmapWords;
    const startWord = this.#scanStart >>> 5;
    const startBit = this.#scanStart & 31;
    let handled = 0;
    for (let i = 0; i <= nWords; i++) {
      const wordIndex = (startWord + i) % nWords;
      let bits = area.deliverableBits(this.domid, wordIndex);
      // The start word is split: its high bits first, its low bits after the wrap.
      if (i === 0) bits &= startBit === 0 ? ~0 : ~((1 << startBit) - 1);
      else if (i === nWords) bits &= startBit === 0 ? 0 : (1 << startBit) - 1;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits & -bits);
        bits &= ~(1 << bit);
        const port = wordIndex * 32 + bit;
        this.#handlePort(port, ctrl);
        this.#scanStart = (port + 1) % this.#area.maxPorts;
        handled += 1;
      }
    }
    return handled;
  }

  /** `handle_irq_for_port` + the chip's ack + `generic_handle_irq` (P1 delivery 1-3). */
  #handlePort(port: number, ctrl: LoopCtrl): void {
    const entry = this.#byPort.get(port);
    if (entry === undefined) {
      // No IRQ for this port (Linux keeps such ports masked): quiet it.
      this.#area.mask(this.domid, port);
      this.#area.clearPending(this.domid, port);
      return;
    }
    const { info, channel } = entry;
    // 1. Loop guard: every 256th event looks at the time.
    if (!ctrl.deferEoi && (++ctrl.count & 0xff) === 0) {
      const now = this.#clock.nowJiffies();
      if (ctrl.timeout === undefined) ctrl.timeout = now + this.#eventLoopTimeout;
      else if (now > ctrl.timeout) ctrl.deferEoi = true;
    }
    // 2.
    if (info.isActive) return;
    // 3.
    info.isActive = true;
    if (info.counters !== undefined) info.counters.events += 1;
    if (ctrl.deferEoi) {
      info.eoiCpu = this.#eoi.cpu;
      info.irqEpoch = this.#eoi.epoch();
      info.eoiTime = this.#clock.nowJiffies() + this.#eventEoiDelay;
    }
    if (info.lateEoi) {
      // lateeoi_ack_dynirq: mask until the driver's EOI, then clear pending.
      info.doMask(MASK_REASON.EOI_PENDING);
      this.#area.clearPending(this.domid, port);
    } else {
      // ack_dynirq → event_handler_exit: an ordinary channel is done at ack.
      info.isActive = false;
      this.#area.clearPending(this.domid, port);
    }
    try {
      info.handler(channel);
    } catch (err) {
      // A handler bug must not take down delivery for every other channel.
      this.#logger.error({ err, port, remoteDomid: channel.remoteDomid }, 'Event handler threw');
    }
  }

  /** `unbind_from_irqhandler`: off the delayed list, counters, port closed. */
  #unbind(info: IrqInfo): void {
    if (!info.valid) return;
    this.#eoi.remove(info);
    info.valid = false;
    this.#byPort.delete(info.port);
    this.#area.mask(this.domid, info.port);
    this.#area.closePort(this.domid, info.port);
    if (info.counters !== undefined) info.counters.eventChannels -= 1;
  }
}

/** Operations a {@link SimBoundChannel} delegates to its owner. */
interface ChannelOps {
  notify(info: IrqInfo): void;
  lateEoi(info: IrqInfo, flags: number): void;
  connected(info: IrqInfo): boolean;
  unbind(info: IrqInfo): void;
}

/** The driver's handle on one bound channel. */
class SimBoundChannel implements BoundEventChannel {
  readonly #ops: ChannelOps;
  readonly #info: IrqInfo;
  readonly localPort: EvtchnPort;
  readonly remoteDomid: DomId;
  readonly remotePort: EvtchnPort;

  constructor(ops: ChannelOps, info: IrqInfo, remoteDomid: DomId, remotePort: EvtchnPort) {
    this.#ops = ops;
    this.#info = info;
    this.localPort = info.port as EvtchnPort;
    this.remoteDomid = remoteDomid;
    this.remotePort = remotePort;
  }

  get bound(): boolean {
    return this.#info.valid;
  }

  connected(): boolean {
    return this.#ops.connected(this.#info);
  }

  notify(): void {
    this.#ops.notify(this.#info);
  }

  lateEoi(flags: number): void {
    this.#ops.lateEoi(this.#info, flags);
  }

  mask(): void {
    if (this.#info.valid) this.#info.doMask(MASK_REASON.EXPLICIT);
  }

  unmask(): void {
    if (this.#info.valid) this.#info.doUnmask(MASK_REASON.EXPLICIT);
  }

  unbind(): void {
    this.#ops.unbind(this.#info);
  }
}
