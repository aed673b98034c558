// SPDX-License-Identifier: MIT
/**
 * Small fakes of the platform services the device, ops and channel layers use, for the
 * tests of these folders only (not exported from any `index.ts`).
 */
import {
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_OFFSET,
} from '../../abi/pci-regs.js';
import {
  encodePciOp,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_SHAREDINFO_FLAGS_WORD,
  XEN_PCI_SHAREDINFO_OFFSET,
  type PciOpInit,
} from '../../abi/pciif.js';
import {
  FULL_DEVICE_LAYOUT,
  fullTestDevice,
  recordingLogger,
  type FullTestDeviceOptions,
  type MemoryHostDevice,
  type RecordingLogger,
} from '../../../test/support/memory-host-device.js';
import type {
  BoundEventChannel,
  DomId,
  EvtchnPort,
  GntStatus,
  GrantHandle,
  GrantMapping,
  GrantRef,
  HostIrqLines,
  HostMsiControl,
  IrqHandler,
  MsixEnableResult,
} from '../../platform/types.js';
import { PcibackDevice, type PcibackDeviceOptions } from './backend-device.js';
import { RateLimiter } from './rate-limit.js';

/** The pirq a fake IRQ maps to: distinct from the IRQ so tests see the translation. */
export function fakePirqOf(irq: number): number {
  return irq === 0 ? 0 : irq + 1000;
}

/** First IRQ the fake MSI layer hands out. */
export const FAKE_MSI_IRQ_BASE = 200;
/** First IRQ the fake MSI-X layer hands out. */
export const FAKE_MSIX_IRQ_BASE = 300;

/** A fake MSI layer over a {@link MemoryHostDevice}: it flips the enable bits in config. */
export class FakeMsi implements HostMsiControl {
  readonly calls: string[] = [];
  /** What enableMsi returns (0: success). */
  enableMsiResult = 0;
  /** What enableMsix returns; undefined: success with consecutive IRQs. */
  enableMsixResult: MsixEnableResult | undefined;
  /** IRQs (per entry) enableMsix returns on success; default consecutive. */
  msixIrqs: readonly number[] | undefined;
  readonly #dev: MemoryHostDevice;
  readonly #legacyIrq: number;
  #msi = false;
  #msix = false;
  #irqs: number[] = [];

  constructor(dev: MemoryHostDevice) {
    this.#dev = dev;
    this.#legacyIrq = dev.irqNumber;
  }

  msiEnabled(): boolean {
    return this.#msi;
  }
  msixEnabled(): boolean {
    return this.#msix;
  }
  enableMsi(nvec: number): number {
    this.calls.push(`enableMsi(${nvec})`);
    if (this.enableMsiResult !== 0) return this.enableMsiResult;
    this.#msi = true;
    this.#irqs = Array.from({ length: nvec }, (_, i) => FAKE_MSI_IRQ_BASE + i);
    this.#dev.irqNumber = FAKE_MSI_IRQ_BASE;
    this.#setBit(FULL_DEVICE_LAYOUT.msi + PCI_MSI_FLAGS_OFFSET, PCI_MSI_FLAGS_ENABLE, true);
    return 0;
  }
  disableMsi(): void {
    this.calls.push('disableMsi');
    this.#msi = false;
    this.#irqs = [];
    this.#dev.irqNumber = this.#legacyIrq;
    this.#setBit(FULL_DEVICE_LAYOUT.msi + PCI_MSI_FLAGS_OFFSET, PCI_MSI_FLAGS_ENABLE, false);
  }
  msiIrqs(): readonly number[] {
    return this.#irqs;
  }
  enableMsix(entries: readonly number[]): MsixEnableResult {
    this.calls.push(`enableMsix(${entries.join(',')})`);
    if (this.enableMsixResult !== undefined) return this.enableMsixResult;
    this.#msix = true;
    this.#setBit(FULL_DEVICE_LAYOUT.msix + PCI_MSIX_FLAGS_OFFSET, PCI_MSIX_FLAGS_ENABLE, true);
    return {
      ok: true,
      irqs: this.msixIrqs ?? entries.map((_, i) => FAKE_MSIX_IRQ_BASE + i),
    };
  }
  disableMsix(): void {
    this.calls.push('disableMsix');
    this.#msix = false;
    this.#setBit(FULL_DEVICE_LAYOUT.msix + PCI_MSIX_FLAGS_OFFSET, PCI_MSIX_FLAGS_ENABLE, false);
  }
  pirqOfIrq(irq: number): number {
    return fakePirqOf(irq);
  }

  #setBit(byteOffset: number, bit: number, on: boolean): void {
    const v = this.#dev.peek(byteOffset, 2);
    this.#dev.poke(byteOffset, 2, on ? v | bit : v & ~bit);
  }
}

/** Fake INTx lines: records requests and keeps the handlers so tests can fire them. */
export class FakeIrqLines implements HostIrqLines {
  readonly requests: { irq: number; name: string }[] = [];
  readonly frees: { irq: number; name: string }[] = [];
  readonly handlers = new Map<number, IrqHandler[]>();
  /** What requestSharedIrq returns. */
  requestResult = 0;
  /** Answer of isSharedWithOtherDomains. */
  shared = true;
  sharedQueries = 0;

  requestSharedIrq(irq: number, name: string, handler: IrqHandler): number {
    this.requests.push({ irq, name });
    if (irq === 0) return -22;
    if (this.requestResult !== 0) return this.requestResult;
    this.handlers.set(irq, [...(this.handlers.get(irq) ?? []), handler]);
    return 0;
  }
  freeIrq(irq: number, name: string): void {
    this.frees.push({ irq, name });
    this.handlers.delete(irq);
  }
  isSharedWithOtherDomains(): boolean {
    this.sharedQueries++;
    return this.shared;
  }
  /** Fire the line: true when some handler claimed it. */
  fire(irq: number): boolean {
    let claimed = false;
    for (const h of this.handlers.get(irq) ?? []) claimed = h() || claimed;
    return claimed;
  }
}

/** Everything a test of one seized device needs. */
export interface DeviceFixture {
  readonly host: MemoryHostDevice;
  readonly msi: FakeMsi;
  readonly irqLines: FakeIrqLines;
  readonly dev: PcibackDevice;
  readonly logger: RecordingLogger;
}

/** Options of {@link deviceFixture}. */
export interface DeviceFixtureOptions extends FullTestDeviceOptions {
  /** Make it a VF with this PF. */
  readonly physfn?: MemoryHostDevice;
  readonly deviceOptions?: Partial<PcibackDeviceOptions>;
}

/** A full test device behind a {@link PcibackDevice}, with fake MSI and IRQ lines. */
export function deviceFixture(options: DeviceFixtureOptions = {}): DeviceFixture {
  const { physfn, deviceOptions, ...hostOptions } = options;
  const host = fullTestDevice(hostOptions);
  const msi = new FakeMsi(host);
  const irqLines = new FakeIrqLines();
  const logger = recordingLogger();
  const dev = PcibackDevice.create(
    { host, msi, irqLines, ...(physfn !== undefined ? { physfn } : {}) },
    {
      global: { permissive: false },
      logger,
      warnLimiter: new RateLimiter({ nowMs: () => 0 }),
      ...deviceOptions,
    },
  );
  return { host, msi, irqLines, dev, logger };
}

/** A fake shared page on a SharedArrayBuffer, as a grant mapping. */
export function fakeMapping(): GrantMapping {
  const sab = new SharedArrayBuffer(4096);
  return {
    handle: 1 as GrantHandle,
    domid: 5 as DomId,
    ref: 8 as GrantRef,
    readonly: false,
    bytes: new Uint8Array(sab),
    words: new Int32Array(sab),
  };
}

/** A grant mapper that records unmaps. */
export function fakeGrantMapper(): {
  unmaps: GrantHandle[];
  unmapGrantRef(handle: GrantHandle): GntStatus;
} {
  const unmaps: GrantHandle[] = [];
  return {
    unmaps,
    unmapGrantRef(handle) {
      unmaps.push(handle);
      return 0;
    },
  };
}

/** A bound event channel that records notify/lateEoi/unbind. */
export class FakeEventChannel implements BoundEventChannel {
  readonly localPort = 7 as EvtchnPort;
  readonly remoteDomid = 5 as DomId;
  readonly remotePort = 3 as EvtchnPort;
  bound = true;
  notifies = 0;
  readonly eois: number[] = [];
  /** Called on notify (a test frontend reacting). */
  onNotify: (() => void) | undefined;

  connected(): boolean {
    return this.bound;
  }
  notify(): void {
    if (!this.bound) return;
    this.notifies++;
    this.onNotify?.();
  }
  lateEoi(flags: number): void {
    if (!this.bound) return;
    this.eois.push(flags);
  }
  mask(): void {}
  unmask(): void {}
  unbind(): void {
    this.bound = false;
  }
}

/** The frontend side: write the whole op, then set `XEN_PCIF_active`. */
export function postOp(mapping: GrantMapping, op: PciOpInit): void {
  const view = new DataView(mapping.bytes.buffer, mapping.bytes.byteOffset, 4096);
  encodePciOp(view, XEN_PCI_SHAREDINFO_OFFSET.op, op);
  Atomics.or(mapping.words, XEN_PCI_SHAREDINFO_FLAGS_WORD, XEN_PCI_FLAG_MASK.PCIF_active);
}

/** True while `XEN_PCIF_active` is set. */
export function opActive(mapping: GrantMapping): boolean {
  return (
    (Atomics.load(mapping.words, XEN_PCI_SHAREDINFO_FLAGS_WORD) & XEN_PCI_FLAG_MASK.PCIF_active) !==
    0
  );
}
