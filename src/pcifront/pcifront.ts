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
import {
  PCI_ERS_RESULT,
  SH_INFO_MAX_VEC,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_OP,
  XEN_PCI_OP_SIZE,
  XEN_PCI_ERR,
  XEN_PCI_SHAREDINFO_FLAGS_WORD,
  XEN_PCI_SHAREDINFO_OFFSET,
  XEN_PCIE_AER_OP_OFFSET,
  decodePciOp,
  encodePciOp,
  isPciErsResult,
  snapshotPciOp,
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

/**
 * `PCIBIOS_*` (`include/linux/pci.h`): what the guest's PCI core gets from the config
 * accessors. Declared here, not imported from `pciback/`, because the frontend must not
 * depend on the backend (STYLE.md dependency direction).
 */
export const PCIBIOS = {
  SUCCESSFUL: 0x00,
  FUNC_NOT_SUPPORTED: 0x81,
  BAD_VENDOR_ID: 0x83,
  DEVICE_NOT_FOUND: 0x86,
  BAD_REGISTER_NUMBER: 0x87,
  SET_FAILED: 0x88,
  BUFFER_TOO_SMALL: 0x89,
} as const;

/**
 * pcifront's `errno_to_pcibios_err` (spec §9): 0 -> SUCCESSFUL, -1 -> DEVICE_NOT_FOUND,
 * -2 and -5 -> BAD_REGISTER_NUMBER, -4 -> FUNC_NOT_SUPPORTED, -3 -> SET_FAILED; any other
 * value is returned unchanged (a raw negative errno reaches the PCI core as is).
 */
export function xenErrToPcibios(err: number): number {
  switch (err) {
    case XEN_PCI_ERR.success:
      return PCIBIOS.SUCCESSFUL;
    case XEN_PCI_ERR.dev_not_found:
      return PCIBIOS.DEVICE_NOT_FOUND;
    case XEN_PCI_ERR.invalid_offset:
    case XEN_PCI_ERR.op_failed:
      return PCIBIOS.BAD_REGISTER_NUMBER;
    case XEN_PCI_ERR.not_implemented:
      return PCIBIOS.FUNC_NOT_SUPPORTED;
    case XEN_PCI_ERR.access_denied:
      return PCIBIOS.SET_FAILED;
    default:
      return err;
  }
}

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

const OP_PAGE_OFFSET = XEN_PCI_SHAREDINFO_OFFSET.op;
const AER_PAGE_OFFSET = XEN_PCI_SHAREDINFO_OFFSET.aer_op;
const FLAGS = XEN_PCI_SHAREDINFO_FLAGS_WORD;

function defaultClock(): number {
  return performance.now();
}

function allOnes(size: number): number {
  return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
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
   * @throws {RangeError} for a non-positive timeout or poll slice.
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
    if (this.#closed) {
      throw new PcibackError('PCIFRONT_CLOSED', 'Cannot issue a PCI op: the frontend is closed');
    }
    if (this.#busy) {
      throw new PcibackError(
        'PCIFRONT_BUSY',
        'Cannot issue a PCI op: another op is in flight on this frontend (one at a time)',
      );
    }
    // Encode privately first: a bad argument throws before the page is touched, and the
    // timeout path can answer with the request without reading the page again.
    const request = new Uint8Array(XEN_PCI_OP_SIZE);
    encodePciOp(new DataView(request.buffer), 0, op);
    this.#busy = true;
    let reply: PciOpReply;
    try {
      reply = this.#exchange(request, options);
    } finally {
      this.#busy = false;
    }
    if ((Atomics.load(this.#words, FLAGS) & XEN_PCI_FLAG_MASK.PCIB_active) !== 0) {
      this.serviceAer();
    }
    return reply;
  }

  #exchange(request: Uint8Array, options: DoPciOpOptions): PciOpReply {
    const words = this.#words;
    const active = XEN_PCI_FLAG_MASK.PCIF_active;
    this.#stats.ops += 1;
    this.#bytes.set(request, OP_PAGE_OFFSET);
    // Atomics.or is a full barrier: the op is visible before the bit.
    Atomics.or(words, FLAGS, active);
    if (this.#hv.notify(this.eventPort) !== 0) this.#stats.failedNotifies += 1;
    const start = this.#clock();
    const deadline = start + this.opTimeoutMs;
    const whilePending = options.whilePending;
    let iteration = 0;
    while ((Atomics.load(words, FLAGS) & active) !== 0) {
      const now = this.#clock();
      if (now >= deadline) {
        // "pciback not responding!!!": take the bit back so the next op starts clean.
        Atomics.and(words, FLAGS, ~active);
        this.#stats.timeouts += 1;
        this.#log.warn(
          { port: this.eventPort, timeoutMs: this.opTimeoutMs },
          'pciback not responding',
        );
        const sent = decodePciOp(new DataView(request.buffer), 0);
        return { ...sent, err: XEN_PCI_ERR.dev_not_found, timedOut: true, latencyMs: now - start };
      }
      if (whilePending !== undefined) {
        whilePending(this.#opView, iteration++);
      } else {
        // Short slices: an event may be consumed by something else (an AER request on
        // the same port), so the flag is re-checked at least every slice.
        this.#hv.waitForEvent(this.eventPort, Math.min(deadline - now, this.#pollSliceMs));
      }
    }
    const latencyMs = this.#clock() - start;
    // One copy of the whole op (the backend might still scribble on the page).
    const answer = snapshotPciOp(this.#bytes, OP_PAGE_OFFSET);
    return { ...answer, timedOut: false, latencyMs };
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
    const reply = this.doPciOp({
      cmd: XEN_PCI_OP.conf_read,
      domain: address.domain,
      bus: address.bus,
      devfn: address.devfn,
      offset: byteOffset,
      size,
    });
    let err = reply.err;
    let value = reply.value;
    if (err === ENODEV) {
      // "No device here, pretend that it just returned 0".
      err = 0;
      value = 0;
    }
    const pcibios = xenErrToPcibios(err);
    if (pcibios !== PCIBIOS.SUCCESSFUL) {
      return { value: allOnes(size), pcibios, err: reply.err, timedOut: reply.timedOut };
    }
    // Linux's typed accessors truncate (`*value = (u8)data`): extra bits from a buggy or
    // hostile backend never reach the caller.
    const masked = size === 4 ? value >>> 0 : value & allOnes(size);
    return { value: masked, pcibios, err: reply.err, timedOut: false };
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
    const reply = this.doPciOp({
      cmd: XEN_PCI_OP.conf_write,
      domain: address.domain,
      bus: address.bus,
      devfn: address.devfn,
      offset: byteOffset,
      size,
      value: size === 4 ? value >>> 0 : value & allOnes(size),
    });
    return { pcibios: xenErrToPcibios(reply.err), err: reply.err, timedOut: reply.timedOut };
  }

  /**
   * `pci_frontend_enable_msi` (spec §9): cmd 2. Success needs `err == 0` and a non-zero
   * pirq in `value`; anything else is -EINVAL.
   */
  enableMsi(address: GuestFunctionAddress): MsiEnableReply {
    const reply = this.doPciOp({ cmd: XEN_PCI_OP.enable_msi, ...pick(address) });
    return msiEnableResult(reply, 'enable_msi');
  }

  /** `pci_frontend_disable_msi` (spec §9): cmd 3; -1 is logged as "no response". */
  disableMsi(address: GuestFunctionAddress): MsiDisableReply {
    const reply = this.doPciOp({ cmd: XEN_PCI_OP.disable_msi, ...pick(address) });
    return this.#disableResult(reply, 'disable_msi');
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
    const reply = this.doPciOp({
      cmd: XEN_PCI_OP.enable_msix,
      ...pick(address),
      value: nvec,
      msixEntries: entries.map((entry) => ({ entry, vector: 0xffff })),
    });
    if (reply.err !== 0) {
      this.#log.warn({ err: reply.err }, 'enable msix get err');
      return { ok: false, errno: reply.err, err: reply.err, reason: `backend err ${reply.err}` };
    }
    if (reply.value !== 0) {
      const errno = reply.value | 0;
      return { ok: false, errno, err: 0, reason: `backend value ${errno}` };
    }
    const pirqs: number[] = [];
    for (let i = 0; i < nvec; i++) {
      const vector = reply.msixEntries[i]?.vector ?? 0;
      if (vector === 0) {
        return { ok: false, errno: EINVAL, err: 0, reason: `vector ${i} came back 0` };
      }
      pirqs.push(vector);
    }
    return { ok: true, pirqs, err: 0 };
  }

  /** `pci_frontend_disable_msix` (spec §9): cmd 5; errors logged. */
  disableMsix(address: GuestFunctionAddress): MsiDisableReply {
    const reply = this.doPciOp({ cmd: XEN_PCI_OP.disable_msix, ...pick(address) });
    return this.#disableResult(reply, 'disable_msix');
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
    const reply = this.doPciOp({
      cmd: XEN_PCI_OP.enable_multi_msi,
      ...pick(address),
      value: 0,
      info: nvec,
    });
    return msiEnableResult(reply, 'enable_multi_msi');
  }

  #disableResult(reply: PciOpReply, what: string): MsiDisableReply {
    if (reply.err === XEN_PCI_ERR.dev_not_found) {
      this.#log.warn({ op: what }, 'no response from pciback');
    } else if (reply.err !== 0) {
      this.#log.warn({ op: what, err: reply.err }, 'error from pciback');
    }
    return { ok: reply.err === 0, err: reply.err, value: reply.value };
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

function pick(address: GuestFunctionAddress): { domain: number; bus: number; devfn: number } {
  return { domain: address.domain, bus: address.bus, devfn: address.devfn };
}

function msiEnableResult(reply: PciOpReply, what: string): MsiEnableReply {
  if (reply.err !== 0) {
    return {
      ok: false,
      errno: EINVAL,
      err: reply.err,
      reason: `${what}: backend err ${reply.err}`,
    };
  }
  if (reply.value === 0) {
    return { ok: false, errno: EINVAL, err: 0, reason: `${what}: backend returned pirq 0` };
  }
  return { ok: true, pirq: reply.value, err: 0 };
}
