// SPDX-License-Identifier: MIT
/**
 * SR-IOV extended capability of a physical function (PCIe 6.0 §9.3.3).
 *
 * SR-IOV Control: VF Enable, VF MSE and ARI Capable Hierarchy RW (VF Migration Enable
 * and its interrupt enable too when VF Migration is capable); SR-IOV Status VF
 * Migration Status RW1C; NumVFs RW, a value above TotalVFs is lowered to TotalVFs and
 * a change while VF Enable is set is ignored (both are undefined in the spec); System
 * Page Size RW for the supported sizes (power-on 4 KiB); the VF BARs size like BARs.
 * Everything else (TotalVFs, First VF Offset, VF Stride, VF Device ID, ...) is RO.
 * Changes of VF Enable are reported through `onSriovChange`; the host creates the VFs
 * (see `virtual-functions.ts`).
 */
import {
  PCI_SRIOV_BAR_OFFSET,
  PCI_SRIOV_CAP_OFFSET,
  PCI_SRIOV_CAP_VFM,
  PCI_SRIOV_CTRL_ARI,
  PCI_SRIOV_CTRL_INTR,
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_OFFSET,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_CTRL_VFM,
  PCI_SRIOV_INITIAL_VF_OFFSET,
  PCI_SRIOV_NUM_VF_OFFSET,
  PCI_SRIOV_STATUS_OFFSET,
  PCI_SRIOV_STATUS_VFM,
  PCI_SRIOV_SUP_PGSIZE_OFFSET,
  PCI_SRIOV_SYS_PGSIZE_OFFSET,
  PCI_SRIOV_TOTAL_VF_OFFSET,
  PCI_SRIOV_VF_DID_OFFSET,
  PCI_SRIOV_VF_OFFSET_OFFSET,
  PCI_SRIOV_VF_STRIDE_OFFSET,
} from '../abi/pci-regs.js';
import { touches, type ConfigWriteAccess } from './access.js';
import {
  applyBarLayout,
  describeBars,
  readBar,
  type BarDescriptor,
  type BarLayout,
} from './bars.js';
import type { DeviceFeature, FunctionContext } from './feature.js';

/** Number of VF BARs in the capability. */
const VF_BAR_COUNT = 6;

/** What the SR-IOV capability says now. */
export interface SriovStatus {
  /** Capability offset in config space. */
  readonly byteOffset: number;
  readonly enabled: boolean;
  /** VF Memory Space Enable: VFs decode their BARs. */
  readonly memorySpaceEnabled: boolean;
  readonly numVfs: number;
  readonly totalVfs: number;
  readonly initialVfs: number;
  /** Routing ID offset of VF 0 from the PF. */
  readonly firstVfOffset: number;
  /** Routing ID distance between VFs. */
  readonly vfStride: number;
  readonly vfDeviceId: number;
  /** Size of one VF's share of each VF BAR, with the address of VF 0's share. */
  readonly vfBars: readonly BarDescriptor[];
}

/** The SR-IOV capability of a physical function. */
export class SriovFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;
  readonly #capOffset: number;
  /** Layout of the VF BARs (per-VF sizes). */
  readonly vfBarLayout: readonly BarLayout[];
  #enabled: boolean;
  #numVfs: number;

  constructor(
    ctx: FunctionContext,
    capOffset: number,
    options: { readonly vfBarSizes: ReadonlyMap<number, bigint> },
  ) {
    const { vfBarSizes } = options;
    this.#ctx = ctx;
    this.#capOffset = capOffset;
    const { regs } = ctx;
    const at = (relative: number): number => capOffset + relative;
    const vfm = (regs.read(at(PCI_SRIOV_CAP_OFFSET), 4) & PCI_SRIOV_CAP_VFM) !== 0;
    let control = PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE | PCI_SRIOV_CTRL_ARI;
    if (vfm) control |= PCI_SRIOV_CTRL_VFM | PCI_SRIOV_CTRL_INTR;
    regs.setMask('writable', at(PCI_SRIOV_CTRL_OFFSET), 2, control);
    regs.set(at(PCI_SRIOV_CTRL_OFFSET), 2, regs.read(at(PCI_SRIOV_CTRL_OFFSET), 2) & control);
    regs.setMask('rw1c', at(PCI_SRIOV_STATUS_OFFSET), 2, vfm ? PCI_SRIOV_STATUS_VFM : 0);
    regs.setMask('writable', at(PCI_SRIOV_NUM_VF_OFFSET), 2, 0xffff);
    const supported = regs.read(at(PCI_SRIOV_SUP_PGSIZE_OFFSET), 4);
    regs.setMask('writable', at(PCI_SRIOV_SYS_PGSIZE_OFFSET), 4, supported);
    const totalVfs = regs.read(at(PCI_SRIOV_TOTAL_VF_OFFSET), 2);
    this.vfBarLayout = describeBars((byteOffset) => regs.read(byteOffset, 4), {
      firstBarOffset: at(PCI_SRIOV_BAR_OFFSET),
      barCount: VF_BAR_COUNT,
      sizes: vfBarSizes,
      otherMemory: [],
      spanMultiplier: BigInt(Math.max(totalVfs, 1)),
    });
    applyBarLayout(regs, {
      firstBarOffset: at(PCI_SRIOV_BAR_OFFSET),
      barCount: VF_BAR_COUNT,
      bars: this.vfBarLayout,
    });
    this.#clampNumVfs();
    this.#enabled = this.#readEnabled();
    this.#numVfs = this.#readNumVfs();
  }

  /** The capability's registers, decoded. */
  status(): SriovStatus {
    const { regs } = this.#ctx;
    const at = (relative: number): number => this.#capOffset + relative;
    const control = regs.read(at(PCI_SRIOV_CTRL_OFFSET), 2);
    return {
      byteOffset: this.#capOffset,
      enabled: (control & PCI_SRIOV_CTRL_VFE) !== 0,
      memorySpaceEnabled: (control & PCI_SRIOV_CTRL_MSE) !== 0,
      numVfs: this.#readNumVfs(),
      totalVfs: regs.read(at(PCI_SRIOV_TOTAL_VF_OFFSET), 2),
      initialVfs: regs.read(at(PCI_SRIOV_INITIAL_VF_OFFSET), 2),
      firstVfOffset: regs.read(at(PCI_SRIOV_VF_OFFSET_OFFSET), 2),
      vfStride: regs.read(at(PCI_SRIOV_VF_STRIDE_OFFSET), 2),
      vfDeviceId: regs.read(at(PCI_SRIOV_VF_DID_OFFSET), 2),
      vfBars: this.vfBarLayout.map((bar) =>
        readBar(regs, { firstBarOffset: at(PCI_SRIOV_BAR_OFFSET), bar }),
      ),
    };
  }

  afterConfigWrite(access: ConfigWriteAccess): void {
    const numVfsOffset = this.#capOffset + PCI_SRIOV_NUM_VF_OFFSET;
    if (touches(access, { byteOffset: numVfsOffset, sizeBytes: 2 })) {
      if (this.#enabled) this.#ctx.regs.set(numVfsOffset, 2, this.#numVfs);
      else this.#clampNumVfs();
    }
    this.#sync();
  }

  afterReset(): void {
    this.#sync();
  }

  adjustDefaults(): void {
    const { regs } = this.#ctx;
    const supported = regs.read(this.#capOffset + PCI_SRIOV_SUP_PGSIZE_OFFSET, 4);
    // §9.3.3.13: System Page Size defaults to 4 KiB (bit 0); pick the smallest
    // supported size when 4 KiB is not.
    const smallest = supported & -supported;
    regs.setDefault(this.#capOffset + PCI_SRIOV_SYS_PGSIZE_OFFSET, 4, smallest >>> 0);
  }

  #sync(): void {
    const enabled = this.#readEnabled();
    this.#numVfs = this.#readNumVfs();
    if (enabled === this.#enabled) return;
    this.#enabled = enabled;
    this.#ctx.hooks.onSriovChange?.({ enabled, numVfs: this.#numVfs });
  }

  #clampNumVfs(): void {
    const { regs } = this.#ctx;
    const total = regs.read(this.#capOffset + PCI_SRIOV_TOTAL_VF_OFFSET, 2);
    const offset = this.#capOffset + PCI_SRIOV_NUM_VF_OFFSET;
    if (regs.read(offset, 2) > total) regs.set(offset, 2, total);
  }

  #readEnabled(): boolean {
    const control = this.#ctx.regs.read(this.#capOffset + PCI_SRIOV_CTRL_OFFSET, 2);
    return (control & PCI_SRIOV_CTRL_VFE) !== 0;
  }

  #readNumVfs(): number {
    return this.#ctx.regs.read(this.#capOffset + PCI_SRIOV_NUM_VF_OFFSET, 2);
  }
}
