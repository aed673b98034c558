// SPDX-License-Identifier: MIT
/**
 * Simulated kernel time: jiffies at a configurable HZ, with one-shot timers. The late-EOI
 * rules (spec-fixes P1) are written in jiffies, so the simulator keeps that unit instead
 * of milliseconds. {@link ManualJiffiesClock} lets tests step time by hand;
 * {@link RealJiffiesClock} follows `performance.now()`.
 */
import type { JiffiesClock } from '../../types.js';

/**
 * Default HZ: 250, the tick rate of Debian 12's x86-64 kernels (`CONFIG_HZ_250=y`,
 * `CONFIG_HZ=250` in linux-config-6.1's `config.amd64_none_amd64`), the dom0 kernel this
 * project's users most likely run. It makes a jiffy 4 ms and caps late-EOI delays at 250
 * jiffies (1 s); the spurious counter then saturates at 10 (2^10 >= 4 * 250).
 */
export const DEFAULT_HZ = 250;

function checkHz(hz: number): number {
  if (!Number.isInteger(hz) || hz < 1 || hz > 10_000) {
    throw new RangeError(`Cannot run a clock at HZ "${hz}": use an integer in 1..10000`);
  }
  return hz;
}

function checkDelay(delayJiffies: number): number {
  if (!Number.isFinite(delayJiffies) || delayJiffies < 0) {
    throw new RangeError(
      `Cannot set a timer "${delayJiffies}" jiffies ahead: use a finite number >= 0`,
    );
  }
  return Math.ceil(delayJiffies);
}

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly callback: () => void;
}

/**
 * A clock that only moves when told to. Timers run inside {@link advance}, in order of
 * due time (then of creation), each seeing `nowJiffies()` equal to its due time.
 *
 * @example
 * const clock = new ManualJiffiesClock({ hz: 100 });
 * clock.setTimer(3, () => console.log(clock.nowJiffies())); // prints 3
 * clock.advance(5);
 */
export class ManualJiffiesClock implements JiffiesClock {
  /** Ticks per second. */
  readonly hz: number;
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  constructor(options: { hz?: number; startJiffies?: number } = {}) {
    this.hz = checkHz(options.hz ?? DEFAULT_HZ);
    this.#now = options.startJiffies ?? 0;
  }

  /** Current jiffies. */
  nowJiffies(): number {
    return this.#now;
  }

  /** Arms a one-shot timer; the returned function cancels it. */
  setTimer(delayJiffies: number, callback: () => void): () => void {
    const timer: ManualTimer = {
      due: this.#now + checkDelay(delayJiffies),
      seq: this.#seq++,
      callback,
    };
    this.#timers.push(timer);
    return () => {
      const i = this.#timers.indexOf(timer);
      if (i >= 0) this.#timers.splice(i, 1);
    };
  }

  /** Timers armed and not yet run. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `jiffies`, running every timer that falls due on the way. */
  advance(jiffies: number): void {
    if (!Number.isInteger(jiffies) || jiffies < 0) {
      throw new RangeError(`Cannot advance the clock by "${jiffies}" jiffies: use an integer >= 0`);
    }
    const target = this.#now + jiffies;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (
          t.due <= target &&
          (next === undefined || t.due < next.due || (t.due === next.due && t.seq < next.seq))
        ) {
          next = t;
        }
      }
      if (next === undefined) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.due);
      next.callback();
    }
    this.#now = target;
  }
}

/**
 * Jiffies derived from a millisecond source (default `performance.now()`), timers from
 * `setTimeout`. A timer never fires before its jiffy is reached: if the host timer is
 * early, it re-arms for the rest.
 */
export class RealJiffiesClock implements JiffiesClock {
  /** Ticks per second. */
  readonly hz: number;
  readonly #nowMs: () => number;
  readonly #originMs: number;

  constructor(options: { hz?: number; nowMs?: () => number } = {}) {
    this.hz = checkHz(options.hz ?? DEFAULT_HZ);
    this.#nowMs = options.nowMs ?? (() => performance.now());
    this.#originMs = this.#nowMs();
  }

  /** Current jiffies since the clock was made. */
  nowJiffies(): number {
    return Math.floor(((this.#nowMs() - this.#originMs) * this.hz) / 1000);
  }

  /** Arms a one-shot timer; the returned function cancels it. */
  setTimer(delayJiffies: number, callback: () => void): () => void {
    const due = this.nowJiffies() + checkDelay(delayJiffies);
    let handle: ReturnType<typeof setTimeout> | undefined;
    const arm = (): void => {
      const left = due - this.nowJiffies();
      if (left <= 0) {
        handle = undefined;
        callback();
        return;
      }
      handle = setTimeout(arm, Math.ceil((left * 1000) / this.hz));
    };
    // Always through the host timer, even when due now: callers arm timers while
    // holding their own state half-updated and must not be re-entered.
    handle = setTimeout(arm, Math.max(0, Math.ceil((delayJiffies * 1000) / this.hz)));
    return () => {
      if (handle !== undefined) clearTimeout(handle);
      handle = undefined;
    };
  }
}
