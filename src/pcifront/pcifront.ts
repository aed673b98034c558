// SPDX-License-Identifier: MIT
/**
 * The guest side of the PV PCI protocol (Linux `drivers/pci/xen-pcifront.c`, spec §9):
 * the shared page, `do_pci_op` with its timeout, the config accessors with their
 * PCIBIOS mapping, the MSI/MSI-X hooks and the AER service.
 *
 * Everything here is synchronous, like the kernel driver (a spinlock and a poll loop):
 * a guest runs in its own worker thread and blocks in `GuestHypercalls.waitForEvent`
 * while the backend works on another thread. Because the backend may be dead or
 * hostile, every wait is bounded by `opTimeoutMs` and every value read back is checked.
 */
import { PCIBIOS, xenErrToPcibios } from '../abi/pcibios.js';
import {
  PCI_ERS_RESULT,
  SH_INFO_MAX_VEC,
  XEN_MSIX_ENTRY_OFFSET,
  XEN_MSIX_ENTRY_SIZE,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_OP,
  XEN_PCI_OP_OFFSET,
  XEN_PCI_OP_SIZE,
  XEN_PCI_ERR,
  XEN_PCI_SHAREDINFO_FLAGS_WORD,
  XEN_PCI_SHAREDINFO_OFFSET,
  XEN_PCIE_AER_OP_OFFSET,
  decodePciOp,
  encodePciOp,
  isPciErsResult,
  snapshotPcieAerOp,
  type PciOp,
  type PciOpInit,
  type PciErsResult,
} from '../abi/pciif.js';
import { PcibackError } from '../errors.js';
import {
  SILENT_LOGGER,
  type DomId,
  type EvtchnPort,
  type GrantRef,
  type GuestHypercalls,
  type Logger,
} from '../platform/types.js';

/** `EINVAL`: what the MSI hooks return for every refusal (spec §9). */
export const EINVAL = -22;
/** `ENODEV`: a config read answered with it reads as 0 (spec §9). */
export const ENODEV = -19;

/** A function as the guest addresses it in ops (`PciAddress` satisfies it). */
export interface GuestFunctionAddress {
  readonly domain: number;
  readonly bus: number;
  /** `(slot << 3) | fn`. */
  readonly devfn: number;
}

/** Access width of a config op. */
export type ConfigOpSize = 1 | 2 | 4;

/** The answer to {@link Pcifront.doPciOp}: the op as copied back, or the request on timeout. */
export interface PciOpReply extends PciOp {
  /**
   * True when the backend did not answer within `opTimeoutMs`: `err` is then -1 and the
   * other fields are the request as sent (nothing was copied back).
   */
  readonly timedOut: boolean;
  /** Time from setting `XEN_PCIF_active` to the answer (or the timeout), in ms. */
  readonly latencyMs: number;
}

/** Result of {@link Pcifront.readConfig}. */
export interface ConfigReadReply {
  /**
   * The value, truncated to the access size as Linux's typed accessors do; all-ones of
   * the size when `pcibios` is not SUCCESSFUL (`PCI_SET_ERROR_RESPONSE`).
   */
  readonly value: number;
  /** {@link PCIBIOS} code, or a raw negative errno passed through (spec §9). */
  readonly pcibios: number;
  /** What `do_pci_op` returned: `op.err`, or -1 on a timeout. */
  readonly err: number;
  readonly timedOut: boolean;
}

/** Result of {@link Pcifront.writeConfig}. */
export interface ConfigWriteReply {
  readonly pcibios: number;
  readonly err: number;
  readonly timedOut: boolean;
}

/** Result of {@link Pcifront.enableMsi} and {@link Pcifront.enableMultiMsi}. */
export type MsiEnableReply =
  | { readonly ok: true; readonly pirq: number; readonly err: 0 }
  | {
      readonly ok: false;
      /** What the hook returns to the guest kernel (-22 for every refusal, spec §9). */
      readonly errno: number;
      /** The backend's `op.err` (-1 after a timeout); undefined when refused locally. */
      readonly err: number | undefined;
      readonly reason: string;
    };

/** Result of {@link Pcifront.enableMsix}. */
export type MsixEnableReply =
  | { readonly ok: true; readonly pirqs: readonly number[]; readonly err: 0 }
  | {
      readonly ok: false;
      /** What the hook returns: -22 locally or for a zero vector, else `err` or `value`. */
      readonly errno: number;
      readonly err: number | undefined;
      readonly reason: string;
    };

/** Result of {@link Pcifront.disableMsi} / {@link Pcifront.disableMsix}. */
export interface MsiDisableReply {
  readonly ok: boolean;
  readonly err: number;
  /** pirq of the device's legacy IRQ after the disable, or 0. */
  readonly value: number;
}

/** The kind of AER callback a request asks for (`aer_op.cmd` 6..9). */
export type AerRequestKind = 'error_detected' | 'resume' | 'mmio_enabled' | 'slot_reset';

/** One AER request from the backend, as given to the `aerHandler`. */
export interface AerRequest {
  readonly kind: AerRequestKind;
  readonly cmd: number;
  /** `pci_channel_state` (1 normal, 2 frozen, 3 perm_failure) as sent; not validated. */
  readonly channelState: number;
  readonly domain: number;
  readonly bus: number;
  readonly devfn: number;
}

/**
 * A guest driver's error handlers. Returns a `pci_ers_result` ({@link PCI_ERS_RESULT}); anything else (or a
 * throw) answers NONE. Called synchronously; it may issue config ops.
 */
export type AerHandler = (request: AerRequest) => number;

/** Options of {@link Pcifront.create}. */
export interface PcifrontOptions {
  /** The domain running pciback (usually dom0). */
  backendDomid: DomId;
  /** How long an op may take before "pciback not responding" (spec §9: 2 s). */
  opTimeoutMs?: number;
  /** Monotonic time in ms; default `performance.now()`. */
  clock?: () => number;
  /** The guest's AER handlers; default: answer NONE to everything. */
  aerHandler?: AerHandler;
  /** Longest single block in `waitForEvent` while an op is pending (default 50 ms). */
  pollSliceMs?: number;
  /**
   * Loads of the `flags` word before the first `waitForEvent` of an op (default
   * {@link DEFAULT_OP_SPIN_ITERATIONS}; 0 goes straight to the event wait).
   */
  opSpinIterations?: number;
  logger?: Logger;
}

/** Options of {@link Pcifront.doPciOp}. */
export interface DoPciOpOptions {
  /**
   * For hostile-guest programs only (XSA-155): called in a tight loop after the op is
   * posted, instead of blocking, until the backend answers or the timeout. It may
   * rewrite the op in the shared page (the `DataView` covers the whole op, offset 0 =
   * `op.cmd`) to race the backend's single snapshot.
   */
  whilePending?: (op: DataView, iteration: number) => void;
}

/** Counters of one frontend. */
export interface PcifrontStats {
  ops: number;
  timeouts: number;
  aerRequests: number;
  failedNotifies: number;
}

/** At most this many AER requests are served per call, so a backend cannot hold us. */
const MAX_AER_ROUNDS = 16;

/**
 * Default {@link PcifrontOptions.opSpinIterations}: how many times the frontend reloads
 * its own `flags` word, waiting for the backend to clear `XEN_PCIF_active`, before it
 * falls back to the event channel. A backend that is polling for the next op (pciback's
 * channel polls 20 us before its EOI) answers in a few us, well inside this bound (about
 * 20-40 us on this project's 2-core machines); sleeping in the event wait instead costs
 * a futex wake-up per op. The spin is bounded and only runs while an op is in flight.
 */
export const DEFAULT_OP_SPIN_ITERATIONS = 4000;

const OP_PAGE_OFFSET = XEN_PCI_SHAREDINFO_OFFSET.op;
const LE = true;
const ENTRIES_OFFSET = XEN_PCI_OP_OFFSET.msix_entries;
const NO_OPTIONS: DoPciOpOptions = Object.freeze({});
const AER_PAGE_OFFSET = XEN_PCI_SHAREDINFO_OFFSET.aer_op;
const FLAGS = XEN_PCI_SHAREDINFO_FLAGS_WORD;

function defaultClock(): number {
  return performance.now();
}

function allOnes(size: number): number {
  return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
}

/** The same RangeError `encodePciOp` throws, for the fast paths that skip it. */
function checkU32(value: number, field: string): number {
  if (value >>> 0 !== value) {
    throw new RangeError(`Cannot encode ${field} ${value}: it must be a u32 (0-0xffffffff)`);
  }
  return value;
}

function checkS32(value: number, field: string): number {
  if ((value | 0) !== value) {
    throw new RangeError(`Cannot encode ${field} ${value}: it must be an s32`);
  }
  return value;
}

function isConfigOpSize(size: number): size is ConfigOpSize {
  return size === 1 || size === 2 || size === 4;
}

function aerKind(cmd: number): AerRequestKind | undefined {
  switch (cmd) {
    case XEN_PCI_OP.aer_detected:
      return 'error_detected';
    case XEN_PCI_OP.aer_resume:
      return 'resume';
    case XEN_PCI_OP.aer_mmio:
      return 'mmio_enabled';
    case XEN_PCI_OP.aer_slotreset:
      return 'slot_reset';
    default:
      return undefined;
  }
}

/**
 * One pcifront connection: a granted page and an unbound event channel for the backend.
 *
 * @example
 * const front = Pcifront.create(hv, { backendDomid: DOM0 });
 * // control plane: give front.grantRef and front.eventPort to the backend, then
 * const { value, pcibios } = front.readConfig({ domain: 0, bus: 0, devfn: 0 }, 0, 4);
 */
export class Pcifront {
  /** The page's grant reference (xenstore `pci-op-ref`). */
  readonly grantRef: GrantRef;
  /** The port allocated for the backend to bind (xenstore `event-channel`). */
  readonly eventPort: EvtchnPort;
  /** The backend's domain. */
  readonly backendDomid: DomId;
  /** The op timeout in ms. */
  readonly opTimeoutMs: number;

  #hv: GuestHypercalls;
  #pageIndex: number;
  #bytes: Uint8Array;
  #words: Int32Array;
  #opView: DataView;
  /** The op in the shared page (548 bytes at offset 4), for the whole-op copies. */
  #pageOp: Uint8Array;
  /**
   * Private image of the next request (Linux builds `struct xen_pci_op` on its stack and
   * copies it whole). Scalar ops rewrite only the nine scalar fields; the MSI-X entries
   * stay zero except the first {@link #requestEntryBytes} bytes.
   */
  #request = new Uint8Array(XEN_PCI_OP_SIZE);
  #requestView = new DataView(this.#request.buffer);
  /** Bytes of `msix_entries` in {@link #request} that may be non-zero. */
  #requestEntryBytes = 0;
  /** Private copy of the answer: the whole op, copied back once per op. */
  #answer = new Uint8Array(XEN_PCI_OP_SIZE);
  #answerView = new DataView(this.#answer.buffer);
  #latencyMs = 0;
  #spin: number;
  #clock: () => number;
  #aerHandler: AerHandler | undefined;
  #pollSliceMs: number;
  #log: Logger;
  #busy = false;
  #inAer = false;
  #closed = false;
  #stats: PcifrontStats = { ops: 0, timeouts: 0, aerRequests: 0, failedNotifies: 0 };

  private constructor(
    hv: GuestHypercalls,
    options: PcifrontOptions,
    page: { index: number; ref: GrantRef; port: EvtchnPort },
  ) {
    this.#hv = hv;
    this.#pageIndex = page.index;
    this.#bytes = hv.pageBytes(page.index);
    this.#words = hv.pageWords(page.index);
    this.#opView = new DataView(
      this.#bytes.buffer,
      this.#bytes.byteOffset + OP_PAGE_OFFSET,
      XEN_PCI_OP_SIZE,
    );
    this.#pageOp = this.#bytes.subarray(OP_PAGE_OFFSET, OP_PAGE_OFFSET + XEN_PCI_OP_SIZE);
    this.#spin = options.opSpinIterations ?? DEFAULT_OP_SPIN_ITERATIONS;
    this.grantRef = page.ref;
    this.eventPort = page.port;
    this.backendDomid = options.backendDomid;
    this.opTimeoutMs = options.opTimeoutMs ?? 2000;
    this.#clock = options.clock ?? defaultClock;
    this.#aerHandler = options.aerHandler;
    this.#pollSliceMs = options.pollSliceMs ?? 50;
    this.#log = options.logger ?? SILENT_LOGGER;
  }

  /**
   * pcifront's probe (spec §9 "Connection" step 1): allocates and zeroes one page, sets
   * `XEN_PCIB_AERHANDLER`, grants the page to the backend and allocates an unbound port
   * for it. Publishing `grantRef`/`eventPort` (and `magic`) is the control plane's job.
   *
   * @throws {RangeError} for a non-positive timeout or poll slice, or a spin count that
   *   is not a non-negative integer.
   */
  static create(hv: GuestHypercalls, options: PcifrontOptions): Pcifront {
    const timeout = options.opTimeoutMs ?? 2000;
    if (!(timeout > 0)) {
      throw new RangeError(`Cannot use op timeout "${timeout}" ms: it must be positive`);
    }
    if (options.pollSliceMs !== undefined && !(options.pollSliceMs > 0)) {
      throw new RangeError(
        `Cannot use poll slice "${options.pollSliceMs}" ms: it must be positive`,
      );
    }
    const spin = options.opSpinIterations;
    if (spin !== undefined && !(Number.isInteger(spin) && spin >= 0)) {
      throw new RangeError(
        `Cannot use op spin "${spin}" iterations: it must be a non-negative integer`,
      );
    }
    const index = hv.allocPage();
    // A fresh page, as `__get_free_page(__GFP_ZERO)`: no stale op or AER request.
    hv.pageBytes(index).fill(0);
    const words = hv.pageWords(index);
    Atomics.store(words, FLAGS, 0);
    Atomics.or(words, FLAGS, XEN_PCI_FLAG_MASK.PCIB_AERHANDLER);
    const ref = hv.grantAccess(options.backendDomid, index);
    const port = hv.allocUnbound(options.backendDomid);
    return new Pcifront(hv, options, { index, ref, port });
  }

  /** A copy of the counters. */
  stats(): PcifrontStats {
    return { ...this.#stats };
  }

  /** The current `flags` word of the shared page (for reports and tests). */
  flags(): number {
    return Atomics.load(this.#words, FLAGS);
  }

  /**
   * `do_pci_op` (spec §1.3, §9): copies the whole op into the page, sets
   * `XEN_PCIF_active`, notifies and waits until the backend clears the bit. After
   * `opTimeoutMs` it clears the bit itself and answers `err = -1` ("pciback not
   * responding") without copying back. Then serves a pending AER request, which the
   * shared channel may have hidden.
   *
   * @throws {PcibackError} `PCIFRONT_BUSY` when called from inside another op's callback
   *   (the kernel's spinlock would deadlock), `PCIFRONT_CLOSED` after {@link close}.
   * @throws {RangeError} when a field of `op` does not fit its C type.
   */
  doPciOp(op: PciOpInit, options: DoPciOpOptions = {}): PciOpReply {
    this.#checkIdle();
    // Encode privately first: `encodePciOp` checks every field before it writes, so a bad
    // argument throws before the request image or the page is touched, and the timeout
    // path can answer with the request without reading the page again.
    encodePciOp(this.#requestView, 0, op);
    // It wrote all 128 entries: the given ones, then zeros.
    this.#requestEntryBytes = (op.msixEntries?.length ?? 0) * XEN_MSIX_ENTRY_SIZE;
    const timedOut = this.#run(options);
    const reply: PciOpReply = {
      ...decodePciOp(this.#answerView, 0),
      timedOut,
      latencyMs: this.#latencyMs,
    };
    this.#serviceAerIfPosted();
    return reply;
  }

  #checkIdle(): void {
    if (this.#closed) {
      throw new PcibackError('PCIFRONT_CLOSED', 'Cannot issue a PCI op: the frontend is closed');
    }
    if (this.#busy) {
      throw new PcibackError(
        'PCIFRONT_BUSY',
        'Cannot issue a PCI op: another op is in flight on this frontend (one at a time)',
      );
    }
  }

  /**
   * The fast path of the config and MSI ops: writes only the scalar fields (and, for
   * enable_msix, the first entries) into the request image, whose other MSI-X entries are
   * zero as in Linux's `struct xen_pci_op op = {...}`, then posts the whole image. The answer is left in {@link #answer}: read it before
   * {@link #serviceAerIfPosted}, whose handler may issue ops of its own.
   *
   * @returns true when the op timed out (the answer is then the request with err -1).
   */
  #postScalar(
    cmd: number,
    address: GuestFunctionAddress,
    fields: { offset?: number; size?: number; value?: number; info?: number } = {},
    msixTableEntries: readonly number[] = [],
  ): boolean {
    this.#checkIdle();
    // Check before the first write, as `encodePciOp` does.
    const domain = checkU32(address.domain, 'domain');
    const bus = checkU32(address.bus, 'bus');
    const devfn = checkU32(address.devfn, 'devfn');
    const offset = checkS32(fields.offset ?? 0, 'offset');
    const size = checkS32(fields.size ?? 0, 'size');
    const value = checkU32(fields.value ?? 0, 'value');
    const info = checkU32(fields.info ?? 0, 'info');
    this.#writeScalars(cmd, domain, bus, devfn, offset, size, value, info);
    const entryBytes = msixTableEntries.length * XEN_MSIX_ENTRY_SIZE;
    if (this.#requestEntryBytes > entryBytes) {
      this.#request.fill(0, ENTRIES_OFFSET + entryBytes, ENTRIES_OFFSET + this.#requestEntryBytes);
    }
    // enable_msix (callers check the count and that each index is a u16): each entry's
    // table index, and 0xffff in `vector` as Linux's pci_frontend_enable_msix sends.
    let at = ENTRIES_OFFSET;
    for (const entry of msixTableEntries) {
      this.#requestView.setUint16(at + XEN_MSIX_ENTRY_OFFSET.vector, 0xffff, LE);
      this.#requestView.setUint16(at + XEN_MSIX_ENTRY_OFFSET.entry, entry, LE);
      at += XEN_MSIX_ENTRY_SIZE;
    }
    this.#requestEntryBytes = entryBytes;
    return this.#run(NO_OPTIONS);
  }

  #writeScalars(
    cmd: number,
    domain: number,
    bus: number,
    devfn: number,
    offset: number,
    size: number,
    value: number,
    info: number,
  ): void {
    const v = this.#requestView;
    const o = XEN_PCI_OP_OFFSET;
    v.setUint32(o.cmd, cmd, LE);
    v.setInt32(o.err, 0, LE);
    v.setUint32(o.domain, domain, LE);
    v.setUint32(o.bus, bus, LE);
    v.setUint32(o.devfn, devfn, LE);
    v.setInt32(o.offset, offset, LE);
    v.setInt32(o.size, size, LE);
    v.setUint32(o.value, value, LE);
    v.setUint32(o.info, info, LE);
  }

  /** `op.err` of the last answer (s32). */
  #answerErr(): number {
    return this.#answerView.getInt32(XEN_PCI_OP_OFFSET.err, LE);
  }

  /** `op.value` of the last answer (u32). */
  #answerValue(): number {
    return this.#answerView.getUint32(XEN_PCI_OP_OFFSET.value, LE);
  }

  /** After an op: serve an AER request the shared event channel may have hidden. */
  #serviceAerIfPosted(): void {
    if ((Atomics.load(this.#words, FLAGS) & XEN_PCI_FLAG_MASK.PCIB_active) !== 0) {
      this.serviceAer();
    }
  }

  /**
   * Posts {@link #request} and waits for the answer, which it copies into
   * {@link #answer}; on a timeout {@link #answer} is the request with `err = -1`.
   *
   * @returns true when the op timed out.
   */
  #run(options: DoPciOpOptions): boolean {
    this.#busy = true;
    try {
      return this.#exchange(options);
    } finally {
      this.#busy = false;
    }
  }

  #exchange(options: DoPciOpOptions): boolean {
    const words = this.#words;
    const active = XEN_PCI_FLAG_MASK.PCIF_active;
    const port = this.eventPort;
    this.#stats.ops += 1;
    // The whole op, as one byte copy of the pre-encoded image (spec §1.3).
    this.#pageOp.set(this.#request);
    // Atomics.or is a full barrier: the op is visible before the bit.
    Atomics.or(words, FLAGS, active);
    if (this.#hv.notify(port) !== 0) this.#stats.failedNotifies += 1;
    const start = this.#clock();
    const deadline = start + this.opTimeoutMs;
    // As Linux's do_pci_op (`xen_clear_irq_pending` before its loop): a notification
    // left over from an earlier answer must not end the first wait. The loop below
    // re-tests the flag, and an AER request it may hide is served after the op.
    this.#hv.clearPending(port);
    const whilePending = options.whilePending;
    if (whilePending === undefined) {
      // Spin on our own flags word first: a polling backend clears the bit a few us
      // after the notify, sooner than a sleeping waiter could be woken (DESIGN.md §5).
      for (let i = this.#spin; i > 0; i--) {
        if ((Atomics.load(words, FLAGS) & active) === 0) break;
      }
    }
    let iteration = 0;
    while ((Atomics.load(words, FLAGS) & active) !== 0) {
      const now = this.#clock();
      if (now >= deadline) {
        // "pciback not responding!!!": take the bit back so the next op starts clean.
        Atomics.and(words, FLAGS, ~active);
        this.#stats.timeouts += 1;
        this.#log.warn({ port, timeoutMs: this.opTimeoutMs }, 'pciback not responding');
        this.#answer.set(this.#request);
        this.#answerView.setInt32(XEN_PCI_OP_OFFSET.err, XEN_PCI_ERR.dev_not_found, LE);
        this.#latencyMs = now - start;
        return true;
      }
      if (whilePending !== undefined) {
        whilePending(this.#opView, iteration++);
      } else {
        // Short slices: an event may be consumed by something else (an AER request on
        // the same port), so the flag is re-checked at least every slice.
        this.#hv.waitForEvent(port, Math.min(deadline - now, this.#pollSliceMs));
      }
    }
    this.#latencyMs = this.#clock() - start;
    // One copy of the whole op back (the backend might still scribble on the page);
    // everything the caller sees is decoded from this private copy.
    this.#answer.set(this.#pageOp);
    return false;
  }

  /**
   * The AER worker (spec §9 "AER service"): while `XEN_PCIB_active` is set, reads
   * `aer_op` once, asks the `aerHandler` (error_detected / mmio_enabled / slot_reset;
   * resume and unknown commands answer NONE), writes the result into `aer_op.err`,
   * clears `XEN_PCIB_active` and notifies. A guest loop calls this on any event.
   *
   * @returns the number of requests answered (0 when none was pending).
   */
  serviceAer(): number {
    if (this.#inAer || this.#closed) return 0;
    this.#inAer = true;
    let served = 0;
    try {
      while (
        served < MAX_AER_ROUNDS &&
        (Atomics.load(this.#words, FLAGS) & XEN_PCI_FLAG_MASK.PCIB_active) !== 0
      ) {
        const request = snapshotPcieAerOp(this.#bytes, AER_PAGE_OFFSET);
        const result = this.#aerResult(request);
        new DataView(this.#bytes.buffer, this.#bytes.byteOffset).setInt32(
          AER_PAGE_OFFSET + XEN_PCIE_AER_OP_OFFSET.err,
          result,
          true,
        );
        Atomics.and(this.#words, FLAGS, ~XEN_PCI_FLAG_MASK.PCIB_active);
        if (this.#hv.notify(this.eventPort) !== 0) this.#stats.failedNotifies += 1;
        this.#stats.aerRequests += 1;
        served += 1;
      }
    } finally {
      this.#inAer = false;
    }
    return served;
  }

  #aerResult(op: {
    cmd: number;
    err: number;
    domain: number;
    bus: number;
    devfn: number;
  }): PciErsResult {
    const kind = aerKind(op.cmd);
    if (kind === undefined) {
      this.#log.warn({ cmd: op.cmd }, 'bad request in aer recovery operation');
      return PCI_ERS_RESULT.NONE;
    }
    const handler = this.#aerHandler;
    if (handler === undefined) return PCI_ERS_RESULT.NONE;
    let result: number;
    try {
      result = handler({
        kind,
        cmd: op.cmd,
        channelState: op.err,
        domain: op.domain,
        bus: op.bus,
        devfn: op.devfn,
      });
    } catch (err) {
      // A guest driver bug must not leave the backend waiting for an answer.
      this.#log.error({ err, kind }, 'AER handler threw; answering NONE');
      return PCI_ERS_RESULT.NONE;
    }
    // pcifront answers NONE after resume whatever the driver does.
    if (kind === 'resume') return PCI_ERS_RESULT.NONE;
    return isPciErsResult(result) ? result : PCI_ERS_RESULT.NONE;
  }

  /**
   * `pcifront_bus_read` (spec §9): a config read through the backend, with the PCI
   * core's alignment check done locally. `err == -19` reads as 0; other errors map to
   * PCIBIOS codes and read as all-ones.
   */
  readConfig(
    address: GuestFunctionAddress,
    byteOffset: number,
    size: ConfigOpSize,
  ): ConfigReadReply {
    if (!isConfigOpSize(size) || !Number.isInteger(byteOffset) || byteOffset % size !== 0) {
      // The guest's PCI core refuses these before calling the bus ops.
      return {
        value: allOnes(isConfigOpSize(size) ? size : 4),
        pcibios: PCIBIOS.BAD_REGISTER_NUMBER,
        err: XEN_PCI_ERR.invalid_offset,
        timedOut: false,
      };
    }
    const timedOut = this.#postScalar(XEN_PCI_OP.conf_read, address, { offset: byteOffset, size });
    const replyErr = this.#answerErr();
    let err = replyErr;
    let value = this.#answerValue();
    this.#serviceAerIfPosted();
    if (err === ENODEV) {
      // "No device here, pretend that it just returned 0".
      err = 0;
      value = 0;
    }
    const pcibios = xenErrToPcibios(err);
    if (pcibios !== PCIBIOS.SUCCESSFUL) {
      return { value: allOnes(size), pcibios, err: replyErr, timedOut };
    }
    // Linux's typed accessors truncate (`*value = (u8)data`): extra bits from a buggy or
    // hostile backend never reach the caller.
    const masked = size === 4 ? value >>> 0 : value & allOnes(size);
    return { value: masked, pcibios, err: replyErr, timedOut: false };
  }

  /** `pcifront_bus_write` (spec §9): only the low `size` bytes of `value` are sent. */
  writeConfig(
    address: GuestFunctionAddress,
    byteOffset: number,
    size: ConfigOpSize,
    value: number,
  ): ConfigWriteReply {
    if (!isConfigOpSize(size) || !Number.isInteger(byteOffset) || byteOffset % size !== 0) {
      return {
        pcibios: PCIBIOS.BAD_REGISTER_NUMBER,
        err: XEN_PCI_ERR.invalid_offset,
        timedOut: false,
      };
    }
    const timedOut = this.#postScalar(XEN_PCI_OP.conf_write, address, {
      offset: byteOffset,
      size,
      value: size === 4 ? value >>> 0 : value & allOnes(size),
    });
    const err = this.#answerErr();
    this.#serviceAerIfPosted();
    return { pcibios: xenErrToPcibios(err), err, timedOut };
  }

  /**
   * `pci_frontend_enable_msi` (spec §9): cmd 2. Success needs `err == 0` and a non-zero
   * pirq in `value`; anything else is -EINVAL.
   */
  enableMsi(address: GuestFunctionAddress): MsiEnableReply {
    this.#postScalar(XEN_PCI_OP.enable_msi, address);
    return this.#msiEnableResult('enable_msi');
  }

  /** `pci_frontend_disable_msi` (spec §9): cmd 3; -1 is logged as "no response". */
  disableMsi(address: GuestFunctionAddress): MsiDisableReply {
    this.#postScalar(XEN_PCI_OP.disable_msi, address);
    return this.#disableResult('disable_msi');
  }

  /**
   * `pci_frontend_enable_msix` (spec §9): cmd 4 with `value = nvec`, each entry's table
   * index and `vector = 0xffff`. More than 128 entries, none, or an index that is not a
   * u16 is refused locally with -EINVAL. On `err == 0 && value == 0` every returned
   * vector must be non-zero; a non-zero `value` is returned as the error.
   */
  enableMsix(address: GuestFunctionAddress, entries: readonly number[]): MsixEnableReply {
    const nvec = entries.length;
    if (nvec === 0 || nvec > SH_INFO_MAX_VEC) {
      return { ok: false, errno: EINVAL, err: undefined, reason: `nvec ${nvec} is not in 1..128` };
    }
    const bad = entries.find((e) => !Number.isInteger(e) || e < 0 || e > 0xffff);
    if (bad !== undefined) {
      return { ok: false, errno: EINVAL, err: undefined, reason: `entry ${bad} is not a u16` };
    }
    this.#postScalar(XEN_PCI_OP.enable_msix, address, { value: nvec }, entries);
    // Decode only what the hook needs, before AER service may reuse the answer buffer.
    const err = this.#answerErr();
    const value = this.#answerValue();
    const pirqs: number[] = [];
    if (err === 0 && value === 0) {
      let at = ENTRIES_OFFSET + XEN_MSIX_ENTRY_OFFSET.vector;
      for (let i = 0; i < nvec; i++, at += XEN_MSIX_ENTRY_SIZE) {
        pirqs.push(this.#answerView.getUint16(at, LE));
      }
    }
    this.#serviceAerIfPosted();
    if (err !== 0) {
      this.#log.warn({ err }, 'enable msix get err');
      return { ok: false, errno: err, err, reason: `backend err ${err}` };
    }
    if (value !== 0) {
      const errno = value | 0;
      return { ok: false, errno, err: 0, reason: `backend value ${errno}` };
    }
    const zero = pirqs.indexOf(0);
    if (zero >= 0) {
      return { ok: false, errno: EINVAL, err: 0, reason: `vector ${zero} came back 0` };
    }
    return { ok: true, pirqs, err: 0 };
  }

  /** `pci_frontend_disable_msix` (spec §9): cmd 5; errors logged. */
  disableMsix(address: GuestFunctionAddress): MsiDisableReply {
    this.#postScalar(XEN_PCI_OP.disable_msix, address);
    return this.#disableResult('disable_msix');
  }

  /**
   * `XEN_PCI_OP_enable_multi_msi` (cmd 10, Xen's header only). The vector count goes in
   * `info` (Xen's header: "info" carries nvec for this op) and `value` is sent as 0, so
   * the request has one reading. `nvec` must be a power of two in 1..32 (MSI's Multiple
   * Message Enable), else -EINVAL locally. Success needs `err == 0` and the first pirq
   * in `value`. Linux pciback answers -4 (not implemented).
   */
  enableMultiMsi(address: GuestFunctionAddress, nvec: number): MsiEnableReply {
    if (!Number.isInteger(nvec) || nvec < 1 || nvec > 32 || (nvec & (nvec - 1)) !== 0) {
      return {
        ok: false,
        errno: EINVAL,
        err: undefined,
        reason: `nvec ${nvec} is not a power of two in 1..32`,
      };
    }
    this.#postScalar(XEN_PCI_OP.enable_multi_msi, address, { value: 0, info: nvec });
    return this.#msiEnableResult('enable_multi_msi');
  }

  /** Reads the answer of a disable op, then serves AER (see {@link #postScalar}). */
  #disableResult(what: string): MsiDisableReply {
    const err = this.#answerErr();
    const value = this.#answerValue();
    this.#serviceAerIfPosted();
    if (err === XEN_PCI_ERR.dev_not_found) {
      this.#log.warn({ op: what }, 'no response from pciback');
    } else if (err !== 0) {
      this.#log.warn({ op: what, err }, 'error from pciback');
    }
    return { ok: err === 0, err, value };
  }

  /** Reads the answer of an MSI enable op, then serves AER (see {@link #postScalar}). */
  #msiEnableResult(what: string): MsiEnableReply {
    const err = this.#answerErr();
    const value = this.#answerValue();
    this.#serviceAerIfPosted();
    if (err !== 0) {
      return { ok: false, errno: EINVAL, err, reason: `${what}: backend err ${err}` };
    }
    if (value === 0) {
      return { ok: false, errno: EINVAL, err: 0, reason: `${what}: backend returned pirq 0` };
    }
    return { ok: true, pirq: value, err: 0 };
  }

  /**
   * Ends the connection on the guest side: closes the port and ends the grant (the page
   * is freed only when the backend no longer maps it). Later ops throw.
   *
   * @returns true when the page could be freed.
   */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#hv.closePort(this.eventPort);
    if (!this.#hv.endForeignAccess(this.grantRef)) return false;
    this.#hv.freePage(this.#pageIndex);
    return true;
  }
}
