// SPDX-License-Identifier: MIT
/**
 * The MSI, multi-MSI and MSI-X ops (`xen_pcibk_enable_msi` ... in `pciback_ops.c`), with
 * the exact checks and codes of spec §4.5 as corrected by pciback-fixes P3 (XSA-157) and
 * the CVE-2013-0231 rate limit on guest-triggerable warnings.
 */
import {
  PCI_CAP_ID,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_MSI_FLAGS_OFFSET,
  PCI_MSI_FLAGS_QMASK,
} from '../../abi/pci-regs.js';
import { SH_INFO_MAX_VEC, XEN_PCI_ERR, type PciOp, type PciOpResult } from '../../abi/pciif.js';
import { findCapability, type ConfigReader } from '../../pci/capabilities.js';
import type { HostPciDevice } from '../../platform/types.js';
import type { PcibackDevice } from '../device/index.js';

/** Linux errnos the MSI ops return raw in `op.err` (spec §1.1 note, §4.9). */
export const MSI_ERRNO = {
  ENXIO: -6,
  ENOMEM: -12,
  EINVAL: -22,
  EALREADY: -114,
} as const;

/** Most vectors multi-MSI can give one function (PCI: Multiple Message Capable <= 5). */
export const MULTI_MSI_MAX_VECTORS = 32;

/** The device an MSI op works on and the guest asking. */
export interface MsiOpContext {
  readonly dev: PcibackDevice;
  readonly frontendDomid: number;
}

/** A platform errno as an s32 (a non-integer from a faulty platform becomes -EINVAL). */
function errnoOf(value: number): number {
  return Number.isInteger(value) && value < 0 && value >= -0x80000000 ? value : MSI_ERRNO.EINVAL;
}

/** `xen_pirq_from_irq(irq)` as a u32, 0 for IRQ 0. */
function pirqOf(dev: PcibackDevice, irq: number): number {
  if (irq === 0) return 0;
  return dev.backend.msi.pirqOfIrq(irq) >>> 0;
}

function warnEnableFailed(ctx: MsiOpContext, what: string, err: number): void {
  const { dev } = ctx;
  dev.warnLimiter.warn(
    dev.logger,
    { device: dev.address.toString(), domid: ctx.frontendDomid, err },
    `Cannot enable ${what} of "${dev.address.toString()}" for guest ${ctx.frontendDomid}: error ${err}`,
  );
}

/** The XSA-157 patch 1 state check shared by enable_msi and enable_multi_msi. */
function msiStateError(dev: PcibackDevice): number {
  const { msi } = dev.backend;
  if (msi.msiEnabled()) return MSI_ERRNO.EALREADY;
  if (msi.msixEnabled()) return MSI_ERRNO.ENXIO;
  return 0;
}

/**
 * enable_msi (2): refuse when MSI (-EALREADY) or MSI-X (-ENXIO) is on without calling
 * the platform (XSA-157 (a)); any failure answers `op_failed` with value 0, the raw
 * status only goes to the rate-limited log. Success: value = pirq of the (MSI) IRQ.
 */
export function enableMsi(_op: PciOp, ctx: MsiOpContext): PciOpResult {
  const { dev } = ctx;
  let status = msiStateError(dev);
  if (status === 0) status = errnoOrZero(dev.backend.msi.enableMsi(1));
  if (status !== 0) {
    warnEnableFailed(ctx, 'MSI', status);
    return { err: XEN_PCI_ERR.op_failed, value: 0 };
  }
  dev.setAckIntr(false);
  return { err: 0, value: pirqOf(dev, dev.backend.host.irq()) };
}

function errnoOrZero(status: number): number {
  return status === 0 ? 0 : errnoOf(status);
}

/**
 * disable_msi (3): act (and set `ack_intr`) only when MSI is on (XSA-157 (d)); always
 * err 0 with value = pirq of the device's current IRQ (the legacy one after disabling).
 */
export function disableMsi(_op: PciOp, ctx: MsiOpContext): PciOpResult {
  const { dev } = ctx;
  const { msi } = dev.backend;
  if (msi.msiEnabled()) {
    msi.disableMsi();
    dev.setAckIntr(true);
  }
  return { err: 0, value: pirqOf(dev, dev.backend.host.irq()) };
}

/** The real command register of the device, or of its PF for a VF. */
function realCommand(dev: PcibackDevice): { value: number; err: number } {
  const fn: HostPciDevice = dev.backend.physfn ?? dev.backend.host;
  return fn.readConfig(PCI_COMMAND_OFFSET, 2);
}

/** Result of {@link enableMsix}: the op result and, on success, one pirq per entry. */
export interface EnableMsixOutcome {
  readonly result: PciOpResult;
  /** u16 vectors for entries 0..nvec-1 (empty unless the op succeeded). */
  readonly vectors: readonly number[];
}

/**
 * enable_msix (4), `value` = nvec, `msix_entries[i].entry` = table indices:
 * nvec > 128 -> -EINVAL (value unchanged); MSI-X on -> -EALREADY (XSA-157 (b)); MSI on or
 * MEMORY clear in the real command register (the PF's for a VF) -> -ENXIO (XSA-157 (e));
 * then the platform: failure -> err = value = errno; success -> value 0 and one pirq per
 * entry (16 bits; an entry whose IRQ is 0 keeps the request's vector). `ack_intr` = 0
 * once the platform was asked.
 */
export function enableMsix(op: PciOp, ctx: MsiOpContext): EnableMsixOutcome {
  const { dev } = ctx;
  const { msi } = dev.backend;
  const nvec = op.value;
  const refuse = (err: number, value: number): EnableMsixOutcome => ({
    result: { err, value },
    vectors: [],
  });
  if (nvec > SH_INFO_MAX_VEC) return refuse(MSI_ERRNO.EINVAL, op.value);
  if (msi.msixEnabled()) return refuse(MSI_ERRNO.EALREADY, op.value);
  const cmd = realCommand(dev);
  // A failed read of the command register is treated as "memory decoding off": the check
  // exists to keep MSI-X table accesses away from a disabled BAR, so it fails closed.
  if (msi.msiEnabled() || cmd.err !== 0 || (cmd.value & PCI_COMMAND_MEMORY) === 0) {
    return refuse(MSI_ERRNO.ENXIO, op.value);
  }
  // Bounded by the check above: at most 128 entries are read from the snapshot.
  const entries = op.msixEntries.slice(0, nvec).map((e) => e.entry);
  const outcome = msi.enableMsix(entries);
  dev.setAckIntr(false);
  if (!outcome.ok) {
    const errno = errnoOf(outcome.errno);
    warnEnableFailed(ctx, 'MSI-X', errno);
    return refuse(errno, errno >>> 0);
  }
  const vectors = entries.map((_, i) => {
    const irq = outcome.irqs[i] ?? 0;
    return irq !== 0 ? pirqOf(dev, irq) & 0xffff : (op.msixEntries[i]?.vector ?? 0);
  });
  return { result: { err: 0, value: 0 }, vectors };
}

/**
 * disable_msix (5): like disable_msi with MSI-X; value = pirq of the device IRQ or 0
 * (SR-IOV VFs have IRQ 0).
 */
export function disableMsix(_op: PciOp, ctx: MsiOpContext): PciOpResult {
  const { dev } = ctx;
  const { msi } = dev.backend;
  if (msi.msixEnabled()) {
    msi.disableMsix();
    dev.setAckIntr(true);
  }
  return { err: 0, value: pirqOf(dev, dev.backend.host.irq()) };
}

/**
 * The most vectors the device's MSI capability offers (2^Multiple Message Capable), or 0
 * without an MSI capability.
 */
export function msiMaxVectors(host: HostPciDevice): number {
  const read = (byteOffset: number, sizeBytes: 1 | 2 | 4): number => {
    const r = host.readConfig(byteOffset, sizeBytes);
    return r.err === 0 ? r.value : 0;
  };
  const reader: ConfigReader = {
    sizeBytes: host.configSizeBytes,
    read8: (o) => read(o, 1),
    read16: (o) => read(o, 2),
    read32: (o) => read(o, 4),
  };
  const cap = findCapability(reader, PCI_CAP_ID.MSI);
  if (cap === undefined) return 0;
  const mmc = (read(cap + PCI_MSI_FLAGS_OFFSET, 2) & PCI_MSI_FLAGS_QMASK) >> 1;
  // Encodings 6 and 7 are reserved; the most a function may claim is 32 (encoding 5).
  return Math.min(1 << mmc, MULTI_MSI_MAX_VECTORS);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * enable_multi_msi (10), only in Xen's copy of pciif.h (Linux pciback answers
 * not_implemented). nvec is read from `info`, as Xen's header defines for this op;
 * `value` is ignored on input.
 *
 * - nvec not a power of two in 1..32, above the capability's Multiple Message Capable,
 *   or no MSI capability -> err -EINVAL (-22), value 0, platform not called (an input
 *   check, reported raw like enable_msix's nvec bound).
 * - MSI or MSI-X already on (the XSA-157 (a) checks) or a platform failure -> `op_failed`
 *   with value 0 and a rate-limited warning, as enable_msi.
 * - Success: value = pirq of the first vector; Xen maps multi-MSI as one block of
 *   consecutive pirqs (`MAP_PIRQ_TYPE_MULTI_MSI`), so the guest derives the others.
 *   `ack_intr` = 0.
 */
export function enableMultiMsi(op: PciOp, ctx: MsiOpContext): PciOpResult {
  const { dev } = ctx;
  const nvec = op.info;
  if (
    !isPowerOfTwo(nvec) ||
    nvec > MULTI_MSI_MAX_VECTORS ||
    nvec > msiMaxVectors(dev.backend.host)
  ) {
    return { err: MSI_ERRNO.EINVAL, value: 0 };
  }
  let status = msiStateError(dev);
  if (status === 0) status = errnoOrZero(dev.backend.msi.enableMsi(nvec));
  if (status !== 0) {
    warnEnableFailed(ctx, `multi-MSI (${nvec} vectors)`, status);
    return { err: XEN_PCI_ERR.op_failed, value: 0 };
  }
  dev.setAckIntr(false);
  const first = dev.backend.msi.msiIrqs()[0] ?? dev.backend.host.irq();
  return { err: 0, value: pirqOf(dev, first) };
}
