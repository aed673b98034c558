// SPDX-License-Identifier: MIT
/**
 * PCI Express capability (PCIe 6.0 §7.5.3).
 *
 * Device Control RW (Bridge Configuration Retry Enable only in a PCIe-to-PCI bridge;
 * elsewhere bit 15 is Initiate FLR: it reads 0 and, when Device Capabilities says FLR,
 * a written 1 resets the function). Device Status error bits RW1C. Link Control RW
 * for the bits an endpoint has, plus Link Disable and the bandwidth interrupt enables
 * in root and downstream ports (Retrain Link reads 0; the simulated link trains at
 * once). Link Status bandwidth bits RW1C in those ports. Slot Control/Status only when
 * the Slot Implemented flag is set; Root Control/Status only in root ports and event
 * collectors. Version 2 adds Device Control 2 and Link Control 2 RW and the Link
 * Equalization Request bit RW1C. Everything else, including the capability registers,
 * is RO. FLR leaves link registers as the reset defaults, like any other register
 * (PCIe keeps some link fields across FLR; Linux restores them anyway).
 */
import {
  PCI_EXP_CAP_V1_SIZE,
  PCI_EXP_CAP_V2_SIZE,
  PCI_EXP_DEVCAP_FLR,
  PCI_EXP_DEVCAP_OFFSET,
  PCI_EXP_DEVCTL2_OFFSET,
  PCI_EXP_DEVCTL_BCR_FLR,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_EXP_DEVCTL_RESET_VALUE,
  PCI_EXP_DEVSTA_CED,
  PCI_EXP_DEVSTA_FED,
  PCI_EXP_DEVSTA_NFED,
  PCI_EXP_DEVSTA_OFFSET,
  PCI_EXP_DEVSTA_URD,
  PCI_EXP_FLAGS_OFFSET,
  PCI_EXP_FLAGS_SLOT,
  PCI_EXP_FLAGS_TYPE_MASK,
  PCI_EXP_FLAGS_VERS_MASK,
  PCI_EXP_LNKCTL2_OFFSET,
  PCI_EXP_LNKCTL_ASPM_MASK,
  PCI_EXP_LNKCTL_CCC,
  PCI_EXP_LNKCTL_CLKREQ_EN,
  PCI_EXP_LNKCTL_ES,
  PCI_EXP_LNKCTL_HAWD,
  PCI_EXP_LNKCTL_LABIE,
  PCI_EXP_LNKCTL_LBMIE,
  PCI_EXP_LNKCTL_LD,
  PCI_EXP_LNKCTL_OFFSET,
  PCI_EXP_LNKCTL_RCB,
  PCI_EXP_LNKSTA2_EQ_REQ,
  PCI_EXP_LNKSTA2_OFFSET,
  PCI_EXP_LNKSTA_LABS,
  PCI_EXP_LNKSTA_LBMS,
  PCI_EXP_LNKSTA_OFFSET,
  PCI_EXP_RTCTL_MASK,
  PCI_EXP_RTCTL_OFFSET,
  PCI_EXP_RTSTA_OFFSET,
  PCI_EXP_RTSTA_PME,
  PCI_EXP_SLTCTL_MASK,
  PCI_EXP_SLTCTL_OFFSET,
  PCI_EXP_SLTSTA_OFFSET,
  PCI_EXP_SLTSTA_RW1C_MASK,
  PCI_EXP_TYPE_DOWNSTREAM,
  PCI_EXP_TYPE_PCI_BRIDGE,
  PCI_EXP_TYPE_RC_EC,
  PCI_EXP_TYPE_ROOT_PORT,
} from '../abi/pci-regs.js';
import { sliceWrite, type ConfigWriteAccess } from './access.js';
import type { DeviceFeature, FunctionContext } from './feature.js';

/** Bits of Device Control 2 an endpoint implements (timeouts, AtomicOp, IDO, LTR). */
const DEVCTL2_ENDPOINT_MASK = 0x075f;
/** Ports add ARI Forwarding and AtomicOp Egress Blocking. */
const DEVCTL2_PORT_MASK = 0x07ff;
/** Link Control 2: everything except the HwInit Selectable De-emphasis bit. */
const LNKCTL2_MASK = 0xffbf;
/** Endpoint end of a PCIe capability of version 1 (no slot or root registers). */
const ENDPOINT_V1_SIZE = 0x14;

/** Error classes the Device Status register records. */
export interface DeviceErrorBits {
  readonly correctable: boolean;
  readonly nonFatal: boolean;
  readonly fatal: boolean;
  readonly unsupportedRequest: boolean;
}

/** Bytes of the PCIe capability at `capOffset`, by version and port type. */
export function pcieCapabilitySize(flags: number): number {
  if ((flags & PCI_EXP_FLAGS_VERS_MASK) >= 2) return PCI_EXP_CAP_V2_SIZE;
  const type = (flags & PCI_EXP_FLAGS_TYPE_MASK) >> 4;
  const hasMore =
    (flags & PCI_EXP_FLAGS_SLOT) !== 0 ||
    type === PCI_EXP_TYPE_ROOT_PORT ||
    type === PCI_EXP_TYPE_RC_EC;
  return hasMore ? PCI_EXP_CAP_V1_SIZE : ENDPOINT_V1_SIZE;
}

/** The PCI Express capability of one function. */
export class PcieFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;
  readonly #capOffset: number;
  /** Device/port type (PCI_EXP_TYPE_*). */
  readonly portType: number;
  /** Capability version (1 or 2). */
  readonly version: number;

  constructor(ctx: FunctionContext, capOffset: number) {
    this.#ctx = ctx;
    this.#capOffset = capOffset;
    const { regs } = ctx;
    const flags = regs.read(capOffset + PCI_EXP_FLAGS_OFFSET, 2);
    this.portType = (flags & PCI_EXP_FLAGS_TYPE_MASK) >> 4;
    this.version = flags & PCI_EXP_FLAGS_VERS_MASK;
    const isDownstreamPort =
      this.portType === PCI_EXP_TYPE_ROOT_PORT || this.portType === PCI_EXP_TYPE_DOWNSTREAM;
    const isRoot = this.portType === PCI_EXP_TYPE_ROOT_PORT || this.portType === PCI_EXP_TYPE_RC_EC;

    const devctl =
      this.portType === PCI_EXP_TYPE_PCI_BRIDGE ? 0xffff : 0xffff & ~PCI_EXP_DEVCTL_BCR_FLR;
    regs.setMask('writable', capOffset + PCI_EXP_DEVCTL_OFFSET, 2, devctl);
    regs.set(
      capOffset + PCI_EXP_DEVCTL_OFFSET,
      2,
      regs.read(capOffset + PCI_EXP_DEVCTL_OFFSET, 2) & devctl,
    );
    regs.setMask(
      'rw1c',
      capOffset + PCI_EXP_DEVSTA_OFFSET,
      2,
      PCI_EXP_DEVSTA_CED | PCI_EXP_DEVSTA_NFED | PCI_EXP_DEVSTA_FED | PCI_EXP_DEVSTA_URD,
    );
    let lnkctl =
      PCI_EXP_LNKCTL_ASPM_MASK |
      PCI_EXP_LNKCTL_RCB |
      PCI_EXP_LNKCTL_CCC |
      PCI_EXP_LNKCTL_ES |
      PCI_EXP_LNKCTL_CLKREQ_EN |
      PCI_EXP_LNKCTL_HAWD;
    if (isDownstreamPort) lnkctl |= PCI_EXP_LNKCTL_LD | PCI_EXP_LNKCTL_LBMIE | PCI_EXP_LNKCTL_LABIE;
    regs.setMask('writable', capOffset + PCI_EXP_LNKCTL_OFFSET, 2, lnkctl);
    if (isDownstreamPort) {
      regs.setMask(
        'rw1c',
        capOffset + PCI_EXP_LNKSTA_OFFSET,
        2,
        PCI_EXP_LNKSTA_LBMS | PCI_EXP_LNKSTA_LABS,
      );
    }
    if ((flags & PCI_EXP_FLAGS_SLOT) !== 0) {
      regs.setMask('writable', capOffset + PCI_EXP_SLTCTL_OFFSET, 2, PCI_EXP_SLTCTL_MASK);
      regs.setMask('rw1c', capOffset + PCI_EXP_SLTSTA_OFFSET, 2, PCI_EXP_SLTSTA_RW1C_MASK);
    }
    if (isRoot) {
      regs.setMask('writable', capOffset + PCI_EXP_RTCTL_OFFSET, 2, PCI_EXP_RTCTL_MASK);
      regs.setMask('rw1c', capOffset + PCI_EXP_RTSTA_OFFSET, 4, PCI_EXP_RTSTA_PME);
    }
    if (this.version >= 2 && regs.sizeBytes >= capOffset + PCI_EXP_CAP_V2_SIZE) {
      const devctl2 = isDownstreamPort ? DEVCTL2_PORT_MASK : DEVCTL2_ENDPOINT_MASK;
      regs.setMask('writable', capOffset + PCI_EXP_DEVCTL2_OFFSET, 2, devctl2);
      regs.setMask('writable', capOffset + PCI_EXP_LNKCTL2_OFFSET, 2, LNKCTL2_MASK);
      regs.setMask('rw1c', capOffset + PCI_EXP_LNKSTA2_OFFSET, 2, PCI_EXP_LNKSTA2_EQ_REQ);
    }
  }

  /** Device Capabilities says Function Level Reset is supported. */
  flrCapable(): boolean {
    const devcap = this.#ctx.regs.read(this.#capOffset + PCI_EXP_DEVCAP_OFFSET, 4);
    return (devcap & PCI_EXP_DEVCAP_FLR) !== 0 && this.portType !== PCI_EXP_TYPE_PCI_BRIDGE;
  }

  /** Device Control. */
  deviceControl(): number {
    return this.#ctx.regs.read(this.#capOffset + PCI_EXP_DEVCTL_OFFSET, 2);
  }

  /** Records detected errors in Device Status (RW1C bits). */
  recordErrors(errors: DeviceErrorBits): void {
    let bits = 0;
    if (errors.correctable) bits |= PCI_EXP_DEVSTA_CED;
    if (errors.nonFatal) bits |= PCI_EXP_DEVSTA_NFED;
    if (errors.fatal) bits |= PCI_EXP_DEVSTA_FED;
    if (errors.unsupportedRequest) bits |= PCI_EXP_DEVSTA_URD;
    this.#ctx.regs.setBits(this.#capOffset + PCI_EXP_DEVSTA_OFFSET, 2, bits, true);
  }

  afterConfigWrite(access: ConfigWriteAccess): void {
    const written = sliceWrite(access, {
      byteOffset: this.#capOffset + PCI_EXP_DEVCTL_OFFSET,
      sizeBytes: 2,
    });
    if (written === undefined || (written.value & PCI_EXP_DEVCTL_BCR_FLR) === 0) return;
    if (this.flrCapable()) this.#ctx.requestReset('flr');
  }

  adjustDefaults(): void {
    // PCIe 6.0 §7.5.3.4: 128-byte payload, 512-byte read requests, relaxed ordering
    // and no-snoop enabled.
    const offset = this.#capOffset + PCI_EXP_DEVCTL_OFFSET;
    const writable = this.#ctx.regs.mask('writable', offset, 2);
    const kept = this.#ctx.regs.defaultValue(offset, 2) & ~writable;
    this.#ctx.regs.setDefault(offset, 2, kept | (PCI_EXP_DEVCTL_RESET_VALUE & writable));
  }
}
