// SPDX-License-Identifier: MIT
/**
 * dom0's Linux IRQ layer as the simulator needs it: numbered IRQs, level-triggered
 * shareable legacy lines (GSIs) with handler lists and the spurious-interrupt detector
 * ("nobody cared", kernel/irq/spurious.c), and the IRQs and message (address, data)
 * pairs of MSI/MSI-X vectors (the x86 vector domain's part of composing a message).
 *
 * Interrupts run their handlers on the main event loop: a device asserting its INTx
 * output (which happens inside a config write or a test's call) only queues the
 * interrupt; a microtask runs the handlers afterwards, never re-entrantly.
 */
import type { HostIrqLines, IrqHandler, Logger } from '../../types.js';
import { SILENT_LOGGER } from '../../types.js';

/** `-EINVAL`. */
const EINVAL = -22;
/** `-EBUSY`. */
const EBUSY = -16;
/** `-ENOSPC`. */
const ENOSPC = -28;

/**
 * Linux's spurious-interrupt rule (`note_interrupt`): after every
 * {@link NOBODY_CARED.windowInterrupts} interrupts on a line, if more than
 * {@link NOBODY_CARED.unhandledThreshold} of them were unhandled the line is disabled.
 */
export const NOBODY_CARED = {
  /** Interrupts per window (`desc->irq_count` reaching 100000). */
  windowInterrupts: 100_000,
  /** Unhandled interrupts in a window above which the line is disabled (`> 99900`). */
  unhandledThreshold: 99_900,
} as const;

/** Legacy lines (GSIs 0..47: two IO-APICs of 24 pins), Linux's usual x86 layout. */
export const DEFAULT_LEGACY_LINES = 48;
/** First IRQ number handed to MSI/MSI-X vectors (above every GSI). */
export const DEFAULT_FIRST_MSI_IRQ = 64;
/** `nr_irqs` of the simulated dom0. */
export const DEFAULT_MAX_IRQS = 64 + 4096;

/**
 * Address of every message the simulator composes: the x86 local APIC window
 * (`MSI_ADDR_BASE_LO` 0xfee00000), destination APIC 0, physical mode.
 */
export const MSI_ADDRESS = 0xfee00000n;
/** First message data value handed out (x86 vectors below 0x20 are exceptions). */
const FIRST_MSI_DATA = 0x20;
/** Message data is 16 bits for MSI; MSI-X values stay in the same space for simplicity. */
const MSI_DATA_LIMIT = 0x10000;

/** One message the host programmed into a device: address and data. */
export interface MsiMessageTarget {
  readonly address: bigint;
  readonly data: number;
}

/** IRQs allocated for MSI or MSI-X, each with the message that raises it. */
export interface MsiAllocation {
  readonly irqs: readonly number[];
  readonly messages: readonly MsiMessageTarget[];
}

/** Per-line statistics (`/proc/irq/N/spurious` plus what the simulator knows). */
export interface IrqLineStats {
  readonly irq: number;
  /** Interrupts taken on the line since boot (not counted while disabled). */
  readonly count: number;
  /** Of those, interrupts no handler claimed. */
  readonly unhandled: number;
  /** The line was disabled by the "nobody cared" rule. */
  readonly disabled: boolean;
  /** Some wired device drives the line. */
  readonly asserted: boolean;
  /** What {@link SimIrqLayer.isSharedWithOtherDomains} answers. */
  readonly shared: boolean;
  /** Handler names in registration order. */
  readonly handlers: readonly string[];
  /** Sources (devices) wired to the line. */
  readonly devices: readonly string[];
}

/** Options of {@link SimIrqLayer}. */
export interface SimIrqLayerOptions {
  logger?: Logger;
  /** Number of legacy lines (IRQs 0..n-1). Default {@link DEFAULT_LEGACY_LINES}. */
  legacyLines?: number;
  /** First MSI IRQ. Default {@link DEFAULT_FIRST_MSI_IRQ}. */
  firstMsiIrq?: number;
  /** `nr_irqs`: MSI IRQs are below it. Default {@link DEFAULT_MAX_IRQS}. */
  maxIrqs?: number;
  /** Window of the "nobody cared" rule. Default 100000 (tests use small values). */
  nobodyCaredWindow?: number;
  /** Unhandled interrupts in a window above which a line is disabled. Default 99900. */
  nobodyCaredThreshold?: number;
  /** Interrupts handled in one turn before yielding to the event loop. Default 10000. */
  maxInterruptsPerTurn?: number;
  /** Runs the first turn after an interrupt is queued. Default `queueMicrotask`. */
  scheduleMicrotask?: (callback: () => void) => void;
  /** Runs later turns of a long burst. Default `setImmediate`. */
  defer?: (callback: () => void) => void;
}

/** Options of {@link SimIrqLayer.requestIrq}. */
export interface RequestIrqOptions {
  /** `IRQF_SHARED`. Default true. */
  shared?: boolean;
}

interface Action {
  readonly name: string;
  readonly handler: IrqHandler;
  readonly shared: boolean;
}

interface Line {
  readonly irq: number;
  actions: Action[];
  /** Wired sources and their current level. */
  readonly sources: Map<string, boolean>;
  sharedOverride: boolean | undefined;
  count: number;
  unhandled: number;
  windowCount: number;
  windowUnhandled: number;
  disabled: boolean;
  /** Interrupts queued and not yet handled. */
  pending: number;
}

/**
 * The simulated dom0 IRQ layer.
 *
 * @example
 * const irqs = new SimIrqLayer();
 * irqs.connectIntx(16, '0000:03:00.0');
 * irqs.requestSharedIrq(16, 'e1000e', () => true);
 * irqs.setIntxLevel(16, '0000:03:00.0', true); // handlers run in a microtask
 * irqs.allocateMsi(2, 'block'); // { irqs: [64, 65], messages: [...] }
 */
export class SimIrqLayer implements HostIrqLines {
  /** Number of legacy lines. */
  readonly legacyLines: number;
  /** First MSI IRQ. */
  readonly firstMsiIrq: number;
  /** `nr_irqs`. */
  readonly maxIrqs: number;
  readonly #logger: Logger;
  readonly #window: number;
  readonly #threshold: number;
  readonly #perTurn: number;
  readonly #microtask: (callback: () => void) => void;
  readonly #defer: (callback: () => void) => void;
  readonly #lines = new Map<number, Line>();
  readonly #busyLines = new Set<Line>();
  #scheduled = false;
  readonly #msiIrqs = new Map<number, MsiMessageTarget>();
  readonly #irqOfData = new Map<number, number>();

  constructor(options: SimIrqLayerOptions = {}) {
    this.legacyLines = options.legacyLines ?? DEFAULT_LEGACY_LINES;
    this.firstMsiIrq = options.firstMsiIrq ?? DEFAULT_FIRST_MSI_IRQ;
    this.maxIrqs = options.maxIrqs ?? DEFAULT_MAX_IRQS;
    if (
      !Number.isInteger(this.legacyLines) ||
      this.legacyLines < 1 ||
      !Number.isInteger(this.firstMsiIrq) ||
      this.firstMsiIrq < this.legacyLines ||
      !Number.isInteger(this.maxIrqs) ||
      this.maxIrqs <= this.firstMsiIrq
    ) {
      throw new RangeError(
        `Cannot lay out IRQs with ${this.legacyLines} legacy lines, MSI from ${this.firstMsiIrq} below ${this.maxIrqs}: they must be integers in increasing order`,
      );
    }
    this.#window = options.nobodyCaredWindow ?? NOBODY_CARED.windowInterrupts;
    this.#threshold = options.nobodyCaredThreshold ?? NOBODY_CARED.unhandledThreshold;
    if (!Number.isInteger(this.#window) || this.#window < 1 || !Number.isInteger(this.#threshold)) {
      throw new RangeError(
        `Cannot use a "nobody cared" window of ${this.#window} with threshold ${this.#threshold}: use integers, window >= 1`,
      );
    }
    this.#perTurn = Math.max(1, options.maxInterruptsPerTurn ?? 10_000);
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#microtask = options.scheduleMicrotask ?? queueMicrotask;
    this.#defer = options.defer ?? setImmediate;
  }

  /** True when `irq` names a legacy line other than 0 (which no device uses). */
  isLegacyLine(irq: number): boolean {
    return Number.isInteger(irq) && irq >= 1 && irq < this.legacyLines;
  }

  /** True when `irq` is an allocated MSI/MSI-X IRQ. */
  isMsiIrq(irq: number): boolean {
    return this.#msiIrqs.has(irq);
  }

  // --- wiring of legacy lines --------------------------------------------------------------

  /**
   * Wires `source` (a device, by name) to legacy line `irq`, deasserted. Returns 0, or
   * -22 for a line that does not exist. Wiring twice is harmless.
   */
  connectIntx(irq: number, source: string): number {
    if (!this.isLegacyLine(irq)) return EINVAL;
    const line = this.#line(irq);
    if (!line.sources.has(source)) line.sources.set(source, false);
    return 0;
  }

  /** Unwires `source` from the line (its level no longer counts). */
  disconnectIntx(irq: number, source: string): void {
    this.#lines.get(irq)?.sources.delete(source);
  }

  /**
   * The level of `source`'s INTx output changed. Each rising edge of a source raises one
   * interrupt on the line; handlers run later, in a microtask. Ignored for a source that
   * is not wired to the line.
   *
   * Deviation: a real level-triggered line that stays asserted re-fires after every EOI
   * (an interrupt storm when nobody deasserts the device); the simulator takes one
   * interrupt per assertion, so that a stuck device cannot hold the event loop. Use
   * {@link raise} to model repeated interrupts.
   */
  setIntxLevel(irq: number, source: string, asserted: boolean): void {
    const line = this.#lines.get(irq);
    if (line?.sources.has(source) !== true) return;
    const was = line.sources.get(source) === true;
    line.sources.set(source, asserted);
    if (asserted && !was) this.#queue(line, 1);
  }

  /** Raises `count` interrupts on a legacy line as if a wired device fired them. */
  raise(irq: number, count = 1): void {
    if (!this.isLegacyLine(irq) || !Number.isInteger(count) || count < 1) return;
    this.#queue(this.#line(irq), count);
  }

  /**
   * Sets what {@link isSharedWithOtherDomains} answers for the line; `undefined` goes back
   * to the default (shared when more than one device is wired to it).
   */
  setShared(irq: number, shared: boolean | undefined): void {
    if (this.isLegacyLine(irq)) this.#line(irq).sharedOverride = shared;
  }

  // --- HostIrqLines ------------------------------------------------------------------------

  /** {@inheritDoc HostIrqLines.requestSharedIrq} */
  requestSharedIrq(irq: number, name: string, handler: IrqHandler): number {
    return this.requestIrq(irq, name, handler, { shared: true });
  }

  /**
   * `request_irq`: adds a handler to a legacy line. A non-shared request needs an idle
   * line and then holds it alone. Installing the first handler re-enables a line the
   * "nobody cared" rule disabled and restarts its window, as `__setup_irq` does.
   * Returns 0, -22 (IRQ 0, unknown line) or -16 (EBUSY).
   */
  requestIrq(
    irq: number,
    name: string,
    handler: IrqHandler,
    options: RequestIrqOptions = {},
  ): number {
    if (!this.isLegacyLine(irq)) return EINVAL;
    const shared = options.shared ?? true;
    const line = this.#line(irq);
    if (line.actions.length > 0 && (!shared || line.actions.some((a) => !a.shared))) {
      return EBUSY;
    }
    if (line.actions.length === 0) {
      line.disabled = false;
      line.windowCount = 0;
      line.windowUnhandled = 0;
    }
    line.actions = [...line.actions, { name, handler, shared }];
    return 0;
  }

  /** {@inheritDoc HostIrqLines.freeIrq} */
  freeIrq(irq: number, name: string): void {
    const line = this.#lines.get(irq);
    if (line === undefined) return;
    const at = line.actions.findIndex((a) => a.name === name);
    if (at < 0) {
      this.#logger.warn({ irq, name }, `Trying to free already-free IRQ ${irq}`);
      return;
    }
    line.actions = line.actions.filter((_, i) => i !== at);
  }

  /**
   * {@inheritDoc HostIrqLines.isSharedWithOtherDomains}
   *
   * Answers from the per-line flag ({@link setShared}); by default a line is shared when
   * more than one device is wired to it. MSI IRQs and unknown IRQs are never shared.
   */
  isSharedWithOtherDomains(irq: number): boolean {
    const line = this.#lines.get(irq);
    if (line === undefined) return false;
    return line.sharedOverride ?? line.sources.size > 1;
  }

  // --- statistics ----------------------------------------------------------------------------

  /** Statistics of a legacy line, or undefined when it does not exist. */
  lineStats(irq: number): IrqLineStats | undefined {
    if (!this.isLegacyLine(irq)) return undefined;
    const line = this.#lines.get(irq);
    if (line === undefined) {
      return {
        irq,
        count: 0,
        unhandled: 0,
        disabled: false,
        asserted: false,
        shared: false,
        handlers: [],
        devices: [],
      };
    }
    return {
      irq,
      count: line.count,
      unhandled: line.unhandled,
      disabled: line.disabled,
      asserted: [...line.sources.values()].some(Boolean),
      shared: this.isSharedWithOtherDomains(irq),
      handlers: line.actions.map((a) => a.name),
      devices: [...line.sources.keys()],
    };
  }

  /** Statistics of every line that has been used (wired, requested or raised). */
  allLineStats(): IrqLineStats[] {
    return [...this.#lines.keys()]
      .sort((a, b) => a - b)
      .flatMap((irq) => this.lineStats(irq) ?? []);
  }

  // --- MSI IRQs and messages -------------------------------------------------------------

  /**
   * Allocates `count` MSI IRQs with their messages. `'block'` (multi-message MSI) gives
   * consecutive data values starting at a multiple of `count` (a power of two), since the
   * function puts the vector number in the low data bits; `'separate'` (MSI-X) gives
   * each vector its own value. Returns -28 (ENOSPC) when IRQs or data values run out,
   * -22 for a bad count.
   */
  allocateMsi(count: number, layout: 'block' | 'separate'): MsiAllocation | number {
    if (!Number.isInteger(count) || count < 1) return EINVAL;
    if (layout === 'block' && (count & (count - 1)) !== 0) return EINVAL;
    const irqs: number[] = [];
    for (let irq = this.firstMsiIrq; irq < this.maxIrqs && irqs.length < count; irq++) {
      if (!this.#msiIrqs.has(irq)) irqs.push(irq);
    }
    if (irqs.length < count) return ENOSPC;
    const data: number[] = [];
    if (layout === 'block') {
      const base = this.#findDataBlock(count);
      if (base === undefined) return ENOSPC;
      for (let i = 0; i < count; i++) data.push(base + i);
    } else {
      for (let d = FIRST_MSI_DATA; d < MSI_DATA_LIMIT && data.length < count; d++) {
        if (!this.#irqOfData.has(d)) data.push(d);
      }
      if (data.length < count) return ENOSPC;
    }
    const messages = irqs.map((irq, i) => {
      const message: MsiMessageTarget = { address: MSI_ADDRESS, data: data[i] ?? 0 };
      this.#msiIrqs.set(irq, message);
      this.#irqOfData.set(message.data, irq);
      return message;
    });
    return { irqs, messages };
  }

  /** Frees MSI IRQs and their messages (unknown IRQs are ignored). */
  freeMsi(irqs: readonly number[]): void {
    for (const irq of irqs) {
      const message = this.#msiIrqs.get(irq);
      if (message === undefined) continue;
      this.#msiIrqs.delete(irq);
      this.#irqOfData.delete(message.data);
    }
  }

  /** The message of an MSI IRQ. */
  messageOfIrq(irq: number): MsiMessageTarget | undefined {
    return this.#msiIrqs.get(irq);
  }

  /**
   * Decodes a message a device sent (what the interrupt controller does with the
   * memory write): its IRQ, or undefined for a message nobody programmed.
   */
  irqOfMessage(address: bigint, data: number): number | undefined {
    if (address !== MSI_ADDRESS) return undefined;
    return this.#irqOfData.get(data);
  }

  #findDataBlock(count: number): number | undefined {
    const start = Math.ceil(FIRST_MSI_DATA / count) * count;
    for (let base = start; base + count <= MSI_DATA_LIMIT; base += count) {
      let free = true;
      for (let i = 0; i < count && free; i++) free = !this.#irqOfData.has(base + i);
      if (free) return base;
    }
    return undefined;
  }

  // --- delivery ------------------------------------------------------------------------------

  #line(irq: number): Line {
    let line = this.#lines.get(irq);
    if (line === undefined) {
      line = {
        irq,
        actions: [],
        sources: new Map(),
        sharedOverride: undefined,
        count: 0,
        unhandled: 0,
        windowCount: 0,
        windowUnhandled: 0,
        disabled: false,
        pending: 0,
      };
      this.#lines.set(irq, line);
    }
    return line;
  }

  #queue(line: Line, count: number): void {
    // A disabled line is masked at the interrupt controller: nothing arrives.
    if (line.disabled) return;
    line.pending += count;
    this.#busyLines.add(line);
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#microtask(() => {
      this.#turn();
    });
  }

  /** Handles queued interrupts, at most `maxInterruptsPerTurn`, then yields. */
  #turn(): void {
    this.#scheduled = false;
    let budget = this.#perTurn;
    for (const line of this.#busyLines) {
      if (budget === 0) break;
      while (line.pending > 0 && budget > 0 && !line.disabled) {
        line.pending--;
        budget--;
        this.#handle(line);
      }
      if (line.disabled) line.pending = 0;
      if (line.pending === 0) this.#busyLines.delete(line);
    }
    // A handler may have raised an interrupt, which scheduled a turn already.
    if (this.#busyLines.size > 0 && !this.#isScheduled()) {
      this.#scheduled = true;
      this.#defer(() => {
        this.#turn();
      });
    }
  }

  #isScheduled(): boolean {
    return this.#scheduled;
  }

  /** `handle_level_irq` + `note_interrupt` for one interrupt. */
  #handle(line: Line): void {
    let handled = false;
    for (const action of line.actions) {
      try {
        if (action.handler()) handled = true;
      } catch (err) {
        this.#logger.error(
          { irq: line.irq, handler: action.name, err },
          `Interrupt handler "${action.name}" of IRQ ${line.irq} threw: counted as not handled`,
        );
      }
    }
    line.count++;
    line.windowCount++;
    if (!handled) {
      line.unhandled++;
      line.windowUnhandled++;
    }
    if (line.windowCount < this.#window) return;
    if (line.windowUnhandled > this.#threshold) {
      line.disabled = true;
      line.pending = 0;
      this.#logger.error(
        { irq: line.irq, handlers: line.actions.map((a) => a.name) },
        `irq ${line.irq}: nobody cared (try booting with the "irqpoll" option); Disabling IRQ #${line.irq}`,
      );
    }
    line.windowCount = 0;
    line.windowUnhandled = 0;
  }
}
