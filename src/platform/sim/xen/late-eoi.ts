// SPDX-License-Identifier: MIT
/**
 * Linux's late-EOI machinery (`drivers/xen/events/events_base.c`), implemented literally
 * from the replacement text of spec/pciback-fixes.md P1: `xen_irq_lateeoi_locked`, the
 * per-CPU delayed-EOI list ordered by `eoi_time`, its delayed work that completes queued
 * EOIs through the non-spurious path, and the per-CPU IRQ epochs. The simulated dom0 has
 * one CPU (0).
 */
import type { JiffiesClock } from '../../types.js';
import { XEN_EOI_FLAG } from '../../types.js';
import { MASK_REASON, type IrqInfo } from './irq-info.js';

/** `xen.event_loop_timeout` default: jiffies an upcall may run before EOIs are deferred. */
export const EVENT_LOOP_TIMEOUT_JIFFIES = 2;
/** `xen.event_eoi_delay` default: jiffies a deferred (loop-guard) EOI waits. */
export const EVENT_EOI_DELAY_JIFFIES = 10;

/** The one simulated CPU. */
const THIS_CPU = 0;

/**
 * The late-EOI state shared by all channels of one backend domain: epochs, the delayed
 * list and its timer.
 */
export class LateEoiEngine {
  readonly #clock: JiffiesClock;
  /** `irq_epoch` per CPU. */
  readonly #epochs: number[] = [0];
  /** `eoi_list` of CPU 0, ordered by `eoiTime` (ties in insertion order). */
  readonly #list: IrqInfo[] = [];
  #cancelTimer: (() => void) | undefined;

  constructor(clock: JiffiesClock) {
    this.#clock = clock;
  }

  /** The CPU the simulated backend runs on. */
  get cpu(): number {
    return THIS_CPU;
  }

  /** `per_cpu(irq_epoch, cpu)`. */
  epoch(cpu: number = THIS_CPU): number {
    return this.#epochs[cpu] ?? 0;
  }

  /** End of an upcall on this CPU: its epoch += 1. */
  endUpcall(): void {
    this.#epochs[THIS_CPU] = this.epoch() + 1;
  }

  /** Channels waiting on the delayed list, head first. */
  queued(): readonly IrqInfo[] {
    return [...this.#list];
  }

  /**
   * `xen_irq_lateeoi(irq, flags)` → `xen_irq_lateeoi_locked(info, spurious)`, P1
   * steps 1-4.
   */
  lateEoi(info: IrqInfo, flags: number): void {
    this.#lateEoiLocked(info, (flags & XEN_EOI_FLAG.SPURIOUS) !== 0);
  }

  #lateEoiLocked(info: IrqInfo, spurious: boolean): void {
    // 1. Nothing for an unbound channel, nor while an EOI for it is already queued.
    if (!info.valid || info.eoiQueued) return;
    let delay = 0;
    const hz = this.#clock.hz;
    // 2.
    if (spurious) {
      const dev = info.counters;
      const threshold =
        dev !== undefined && dev.spuriousThreshold !== 0 ? dev.spuriousThreshold : 1;
      // The counter only grows while 2^cnt < 4*HZ (and is a u8 in Linux).
      if (2 ** info.spuriousCnt < 4 * hz && info.spuriousCnt !== 0xff) info.spuriousCnt += 1;
      if (info.spuriousCnt > threshold) {
        delay = Math.min(2 ** (info.spuriousCnt - 1 - threshold), hz);
        if (info.eoiTime === 0) info.eoiCpu = THIS_CPU;
        info.eoiTime = this.#clock.nowJiffies() + delay;
        if (dev !== undefined) dev.jiffiesEoiDelayed += delay;
      }
      if (dev !== undefined) dev.spuriousEvents += 1;
    } else {
      info.spuriousCnt = 0;
    }
    // 3. Defer while the EOI falls in the epoch that set eoiTime, or when delayed.
    if (info.eoiTime !== 0 && (info.irqEpoch === this.epoch(info.eoiCpu) || delay !== 0)) {
      this.#listAdd(info);
      return;
    }
    // 4.
    info.eoiTime = 0;
    info.isActive = false;
    info.doUnmask(MASK_REASON.EOI_PENDING);
  }

  /** `lateeoi_list_add`: keeps the list ordered; a new head (re)arms the timer. */
  #listAdd(info: IrqInfo): void {
    info.eoiQueued = true;
    const head = this.#list[0];
    if (head === undefined || info.eoiTime < head.eoiTime) {
      this.#list.unshift(info);
      this.#arm(Math.max(info.eoiTime - this.#clock.nowJiffies(), 1));
      return;
    }
    // Walk back from the tail to the last element due no later than this one.
    let i = this.#list.length - 1;
    while (i > 0 && (this.#list[i]?.eoiTime ?? 0) > info.eoiTime) i--;
    this.#list.splice(i + 1, 0, info);
  }

  /** `lateeoi_list_del` (on unbind). */
  remove(info: IrqInfo): void {
    const i = this.#list.indexOf(info);
    if (i >= 0) this.#list.splice(i, 1);
    info.eoiQueued = false;
    if (this.#list.length === 0) this.#disarm();
  }

  /** Stops the timer (backend shut down). Queued channels stay queued. */
  dispose(): void {
    this.#disarm();
  }

  /** `mod_delayed_work`: one timer per CPU, moved to the new expiry. */
  #arm(delayJiffies: number): void {
    this.#disarm();
    this.#cancelTimer = this.#clock.setTimer(delayJiffies, () => {
      this.#cancelTimer = undefined;
      this.#worker();
    });
  }

  #disarm(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  /**
   * `xen_irq_lateeoi_worker`: every channel due is taken off the list and EOI'd through
   * the non-spurious path (which resets its counter and unmasks); a head not yet due
   * re-arms the timer.
   */
  #worker(): void {
    const now = this.#clock.nowJiffies();
    for (;;) {
      const info = this.#list[0];
      if (info === undefined) break;
      if (now < info.eoiTime) {
        this.#arm(info.eoiTime - now);
        break;
      }
      this.#list.shift();
      info.eoiQueued = false;
      info.eoiTime = 0;
      this.#lateEoiLocked(info, false);
    }
  }
}
