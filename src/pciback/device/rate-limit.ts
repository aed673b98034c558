// SPDX-License-Identifier: MIT
/**
 * Bounded log output for messages a guest can trigger at will (CVE-2013-0231, "xen-pciback:
 * rate limit error messages from xen_pcibk_enable_msi{,x}()"): Linux's `___ratelimit`
 * with `DEFAULT_RATELIMIT_INTERVAL` (5 s) and `DEFAULT_RATELIMIT_BURST` (10).
 */
import type { Logger } from '../../platform/types.js';

/** Linux `DEFAULT_RATELIMIT_INTERVAL` (5 * HZ), in milliseconds. */
export const DEFAULT_RATELIMIT_INTERVAL_MS = 5000;
/** Linux `DEFAULT_RATELIMIT_BURST`. */
export const DEFAULT_RATELIMIT_BURST = 10;

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Length of one window (default {@link DEFAULT_RATELIMIT_INTERVAL_MS}). */
  readonly intervalMs?: number;
  /** Messages allowed per window (default {@link DEFAULT_RATELIMIT_BURST}). */
  readonly burst?: number;
  /** Clock in milliseconds (default `Date.now`); tests pass a manual one. */
  readonly nowMs?: () => number;
}

/**
 * `struct ratelimit_state`: at most `burst` messages per `intervalMs` window. When a new
 * window opens after messages were suppressed, the next allowed message is preceded by
 * one "N callbacks suppressed" line, as Linux prints.
 *
 * @example
 * const limiter = new RateLimiter({ nowMs: () => clock.now });
 * limiter.warn(logger, { domid }, 'Cannot enable MSI for guest 5: error -114');
 */
export class RateLimiter {
  readonly #intervalMs: number;
  readonly #burst: number;
  readonly #nowMs: () => number;
  #windowStartMs: number | undefined;
  #printed = 0;
  #missed = 0;
  #totalSuppressed = 0;

  constructor(options: RateLimiterOptions = {}) {
    const intervalMs = options.intervalMs ?? DEFAULT_RATELIMIT_INTERVAL_MS;
    const burst = options.burst ?? DEFAULT_RATELIMIT_BURST;
    if (!(intervalMs > 0) || !Number.isInteger(burst) || burst < 1) {
      throw new RangeError(
        `Cannot create a rate limiter with interval ${intervalMs} ms and burst ${burst}: both must be positive`,
      );
    }
    this.#intervalMs = intervalMs;
    this.#burst = burst;
    this.#nowMs = options.nowMs ?? Date.now;
  }

  /** Messages suppressed since creation (for statistics). */
  get suppressed(): number {
    return this.#totalSuppressed;
  }

  /**
   * `__ratelimit`: true when one more message may be printed now. `onSuppressedReport`
   * receives the count of the previous window's suppressed messages when a new window
   * opens.
   */
  allow(onSuppressedReport?: (missed: number) => void): boolean {
    const now = this.#nowMs();
    if (this.#windowStartMs === undefined || now - this.#windowStartMs >= this.#intervalMs) {
      if (this.#missed > 0) onSuppressedReport?.(this.#missed);
      this.#windowStartMs = now;
      this.#printed = 0;
      this.#missed = 0;
    }
    if (this.#printed < this.#burst) {
      this.#printed++;
      return true;
    }
    this.#missed++;
    this.#totalSuppressed++;
    return false;
  }

  /** `pr_warn_ratelimited`: log `msg` at warn level if the limit allows it. */
  warn(logger: Logger, obj: object, msg: string): boolean {
    const allowed = this.allow((missed) => {
      logger.warn({ ...obj, suppressed: missed }, `${missed} callbacks suppressed`);
    });
    if (allowed) logger.warn(obj, msg);
    return allowed;
  }
}
