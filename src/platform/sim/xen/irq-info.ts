// SPDX-License-Identifier: MIT
/**
 * Per bound channel state of the backend's event core: Linux's `struct irq_info` for an
 * interdomain event channel, with the late-EOI fields of spec-fixes P1 and the mask
 * reasons. Internal to `platform/sim/xen`: the core only sees `BoundEventChannel`.
 */
import type { EventChannelHandler, XenbusEventCounters } from '../../types.js';
import type { EventArea } from './event-area.js';

/**
 * `EVT_MASK_REASON_*` (events_base.c): the channel is masked while any reason is set.
 */
export const MASK_REASON = {
  /** The driver disabled the IRQ (`disable_irq`). */
  EXPLICIT: 0x01,
  /** The core masked it around an internal operation. */
  TEMPORARY: 0x02,
  /** A late-EOI event was acked and not yet EOI'd. */
  EOI_PENDING: 0x04,
} as const;

/** A {@link MASK_REASON} bit. */
export type MaskReason = (typeof MASK_REASON)[keyof typeof MASK_REASON];

/** A read-only snapshot of a channel's late-EOI state (for tests and diagnostics). */
export interface IrqState {
  readonly localPort: number;
  readonly lateEoi: boolean;
  readonly spuriousCnt: number;
  readonly eoiTime: number;
  readonly eoiCpu: number;
  readonly irqEpoch: number;
  readonly isActive: boolean;
  readonly maskReasons: number;
  readonly eoiQueued: boolean;
  readonly bound: boolean;
}

/** Linux `irq_info` of one bound interdomain channel (fields named as in P1). */
export class IrqInfo {
  readonly #area: EventArea;
  readonly #domid: number;
  /** The local port (`evtchn`). */
  readonly port: number;
  /** Bound with the lateeoi chip. */
  readonly lateEoi: boolean;
  /** The xenbus device (`u.interdomain`), if any. */
  readonly counters: XenbusEventCounters | undefined;
  /** The driver's handler. */
  readonly handler: EventChannelHandler;
  /** `spurious_cnt` (u8 in Linux; saturates long before 255). */
  spuriousCnt = 0;
  /** `eoi_time` in jiffies; 0 = none. */
  eoiTime = 0;
  /** `eoi_cpu`. */
  eoiCpu = 0;
  /** `irq_epoch`. */
  irqEpoch = 0;
  /** `is_active`. */
  isActive = false;
  /** Set of {@link MASK_REASON} bits. */
  maskReasons = 0;
  /** On the delayed-EOI list (`!list_empty(&info->eoi_list)`). */
  eoiQueued = false;
  /** `VALID_EVTCHN(evtchn)`: false once unbound. */
  valid = true;

  constructor(
    area: EventArea,
    domid: number,
    init: {
      port: number;
      lateEoi: boolean;
      counters: XenbusEventCounters | undefined;
      handler: EventChannelHandler;
    },
  ) {
    this.#area = area;
    this.#domid = domid;
    this.port = init.port;
    this.lateEoi = init.lateEoi;
    this.counters = init.counters;
    this.handler = init.handler;
  }

  /** `do_mask`: the shared mask bit is set when the first reason appears. */
  doMask(reason: MaskReason): void {
    if (this.maskReasons === 0) this.#area.mask(this.#domid, this.port);
    this.maskReasons |= reason;
  }

  /** `do_unmask`: the shared mask bit is cleared (re-raising if pending) when none is left. */
  doUnmask(reason: MaskReason): void {
    this.maskReasons &= ~reason;
    if (this.maskReasons === 0 && this.valid) this.#area.unmask(this.#domid, this.port);
  }

  /** Snapshot for diagnostics. */
  state(): IrqState {
    return {
      localPort: this.port,
      lateEoi: this.lateEoi,
      spuriousCnt: this.spuriousCnt,
      eoiTime: this.eoiTime,
      eoiCpu: this.eoiCpu,
      irqEpoch: this.irqEpoch,
      isActive: this.isActive,
      maskReasons: this.maskReasons,
      eoiQueued: this.eoiQueued,
      bound: this.valid,
    };
  }
}
