// SPDX-License-Identifier: MIT
/**
 * Test support (not a test file): a fake guest hypervisor and a tiny pciback that
 * answers in the same thread. `notify()` from the guest runs the responder at once, so
 * pcifront can be tested without workers; a manual clock makes timeouts instant.
 */
import {
  SH_INFO_MAX_VEC,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_OP,
  XEN_PCI_SHAREDINFO_FLAGS_WORD,
  XEN_PCI_SHAREDINFO_OFFSET,
  encodePcieAerOp,
  snapshotPciOp,
  writePciOpResult,
  type PciOp,
  type PciOpResult,
  type PcieAerOp,
} from '../abi/pciif.js';
import { PCI_COMMAND_MEMORY } from '../abi/pci-regs.js';
import {
  domId,
  evtchnPort,
  grantRef,
  type DomId,
  type EvtchnPort,
  type GrantRef,
  type GuestHypercalls,
} from '../platform/types.js';

const PAGE = 4096;

/** A GuestHypercalls in one thread with a manual clock (ms). */
export class FakeGuestHypercalls implements GuestHypercalls {
  readonly domid: DomId = domId(1);
  readonly pageCount = 4;
  readonly memory = new SharedArrayBuffer(PAGE * 4);
  /** Manual time in ms; waits advance it. */
  now = 0;
  notifies = 0;
  /** The backend has notified the guest and the guest has not consumed it yet. */
  guestPending = false;
  /** Runs on every guest notify (the backend's event handler). */
  onNotify: (() => void) | undefined;
  /** Runs on every clock read (lets a "concurrent" backend act mid-loop). */
  onClock: (() => void) | undefined;
  readonly grants = new Map<number, number>();
  #nextPage = 0;
  #closed = new Set<number>();

  /** The clock to hand to pcifront. */
  readonly clock = (): number => {
    this.now += 0.001;
    this.onClock?.();
    return this.now;
  };

  allocPage(): number {
    if (this.#nextPage >= this.pageCount) throw new RangeError('Cannot allocate a page: none left');
    return this.#nextPage++;
  }
  freePage(): void {}
  pageBytes(pageIndex: number): Uint8Array {
    return new Uint8Array(this.memory, pageIndex * PAGE, PAGE);
  }
  pageWords(pageIndex: number): Int32Array {
    return new Int32Array(this.memory, pageIndex * PAGE, PAGE / 4);
  }
  grantAccess(_domid: DomId, pageIndex: number): GrantRef {
    const ref = this.grants.size + 8;
    this.grants.set(ref, pageIndex);
    return grantRef(ref);
  }
  endForeignAccess(): boolean {
    return true;
  }
  allocUnbound(): EvtchnPort {
    return evtchnPort(5);
  }
  closePort(port: EvtchnPort): void {
    this.#closed.add(port);
  }
  /** No interrupt plumbing in the fake: every pirq is refused. */
  bindPirq(): number {
    return -22;
  }
  notify(port: EvtchnPort): number {
    if (this.#closed.has(port)) return -22;
    this.notifies += 1;
    this.onNotify?.();
    return 0;
  }
  waitForEvent(_port: EvtchnPort, timeoutMs: number): boolean {
    if (this.guestPending) {
      this.guestPending = false;
      return true;
    }
    this.now += timeoutMs;
    return false;
  }
  poll(_port: EvtchnPort, timeoutMs: number): boolean {
    if (!this.guestPending) this.now += timeoutMs;
    return this.guestPending;
  }
  wait(timeoutMs: number): EvtchnPort[] {
    if (!this.waitForEvent(evtchnPort(5), timeoutMs)) return [];
    return [evtchnPort(5)];
  }
  clearPending(): void {
    this.guestPending = false;
  }
  mask(): void {}
  unmask(): void {}
}

/** Config space of one fake function (`SimulatedFunction` satisfies it). */
export interface FakeFunction {
  configRead(byteOffset: number, sizeBytes: number): number;
  configWrite(byteOffset: number, sizeBytes: number, value: number): void;
}

interface FunctionState {
  readonly fn: FakeFunction;
  msi: boolean;
  msix: boolean;
}

/** How the fake backend behaves. */
export type FakeBackendMode =
  /** Answers inside the guest's notify. */
  | 'sync'
  /** Never answers (a dead dom0). */
  | 'dead'
  /** Answers after `deferTicks` clock reads, as a concurrent backend would. */
  | 'deferred';

/**
 * A pciback stand-in with the op semantics pcifront relies on (spec §1.3, §1.4, §4.5):
 * single snapshot, write-back of err/value/vectors only, MSI/MSI-X checks in order.
 */
export class FakePciBackend {
  readonly hv: FakeGuestHypercalls;
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
  readonly functions = new Map<string, FunctionState>();
  /** Every op snapshot the backend took. */
  readonly seen: PciOp[] = [];
  mode: FakeBackendMode = 'sync';
  /** Answers instead of the model when it returns a result (hostile/buggy backends). */
  override: ((op: PciOp) => PciOpResult | undefined) | undefined;
  deferTicks = 50;
  #ticks = 0;

  constructor(hv: FakeGuestHypercalls, ref: GrantRef) {
    const page = hv.grants.get(ref);
    if (page === undefined) throw new RangeError(`Cannot map grant ${ref}: not granted`);
    this.hv = hv;
    this.bytes = hv.pageBytes(page);
    this.words = hv.pageWords(page);
    hv.onNotify = () => {
      if (this.mode === 'sync') this.process();
    };
    hv.onClock = () => {
      if (this.mode !== 'deferred' || !this.#active()) return;
      if (++this.#ticks >= this.deferTicks) {
        this.#ticks = 0;
        this.process();
      }
    };
  }

  /** Exports a function at a guest address. */
  add(domain: number, bus: number, devfn: number, fn: FakeFunction): void {
    this.functions.set(`${domain}:${bus}:${devfn}`, { fn, msi: false, msix: false });
  }

  #active(): boolean {
    return (
      (Atomics.load(this.words, XEN_PCI_SHAREDINFO_FLAGS_WORD) & XEN_PCI_FLAG_MASK.PCIF_active) !==
      0
    );
  }

  /** Handles a posted op, if any: answer, clear the bit, notify the guest. */
  process(): void {
    if (!this.#active()) return;
    const op = snapshotPciOp(this.bytes, XEN_PCI_SHAREDINFO_OFFSET.op);
    this.seen.push(op);
    const result = this.override?.(op) ?? this.#dispatch(op);
    writePciOpResult(
      new DataView(this.bytes.buffer, this.bytes.byteOffset, PAGE),
      XEN_PCI_SHAREDINFO_OFFSET.op,
      result,
    );
    Atomics.and(this.words, XEN_PCI_SHAREDINFO_FLAGS_WORD, ~XEN_PCI_FLAG_MASK.PCIF_active);
    this.hv.guestPending = true;
  }

  /** Posts an AER request as pciback's `common_process` does. */
  postAer(op: PcieAerOp): void {
    encodePcieAerOp(
      new DataView(this.bytes.buffer, this.bytes.byteOffset, PAGE),
      XEN_PCI_SHAREDINFO_OFFSET.aer_op,
      op,
    );
    Atomics.or(this.words, XEN_PCI_SHAREDINFO_FLAGS_WORD, XEN_PCI_FLAG_MASK.PCIB_active);
    this.hv.guestPending = true;
  }

  /** The `aer_op.err` the guest answered. */
  aerAnswer(): number {
    return new DataView(this.bytes.buffer, this.bytes.byteOffset, PAGE).getInt32(
      XEN_PCI_SHAREDINFO_OFFSET.aer_op + 4,
      true,
    );
  }

  #dispatch(op: PciOp): PciOpResult {
    const state = this.functions.get(`${op.domain}:${op.bus}:${op.devfn}`);
    if (state === undefined) return { err: -1, value: op.value };
    const dev = state.fn;
    const legacyPirq = 11;
    switch (op.cmd) {
      case XEN_PCI_OP.conf_read:
        if (![1, 2, 4].includes(op.size) || op.offset % op.size !== 0) return { err: -2, value: 0 };
        return { err: 0, value: dev.configRead(op.offset, op.size) >>> 0 };
      case XEN_PCI_OP.conf_write:
        if (![1, 2, 4].includes(op.size) || op.offset % op.size !== 0) {
          return { err: -2, value: op.value };
        }
        dev.configWrite(op.offset, op.size, op.value);
        return { err: 0, value: op.value };
      case XEN_PCI_OP.enable_msi:
        if (state.msi || state.msix) return { err: -5, value: 0 };
        state.msi = true;
        return { err: 0, value: 100 + op.devfn };
      case XEN_PCI_OP.disable_msi:
        state.msi = false;
        return { err: 0, value: legacyPirq };
      case XEN_PCI_OP.enable_msix: {
        const nvec = op.value;
        if (nvec > SH_INFO_MAX_VEC) return { err: -22, value: op.value };
        if (state.msix) return { err: -114, value: op.value };
        if (state.msi || (dev.configRead(4, 2) & PCI_COMMAND_MEMORY) === 0) {
          return { err: -6, value: op.value };
        }
        state.msix = true;
        return {
          err: 0,
          value: 0,
          msixVectors: Array.from({ length: nvec }, (_, i) => 200 + i),
        };
      }
      case XEN_PCI_OP.disable_msix:
        state.msix = false;
        return { err: 0, value: legacyPirq };
      default:
        return { err: -4, value: op.value };
    }
  }
}
