// SPDX-License-Identifier: MIT
/**
 * One guest op on the backend's private snapshot (`xen_pcibk_do_one_op` minus the
 * shared-page copy and write-back, spec §4.3 steps 2-5): look the device up, dispatch,
 * and say what to write back. Never throws for anything a guest sends.
 */
import {
  SH_INFO_MAX_VEC,
  XEN_PCI_ERR,
  XEN_PCI_OP,
  xenPciOpName,
  type PciOp,
  type PciOpResult,
} from '../../abi/pciif.js';
import type { Logger } from '../../platform/types.js';
import { SILENT_LOGGER } from '../../platform/types.js';
import { PcibackDevice } from '../device/index.js';
import type { Topology, TopologyDevice } from '../topology/index.js';
import {
  disableMsi,
  disableMsix,
  enableMsi,
  enableMsix,
  enableMultiMsi,
  type MsiOpContext,
} from './msi-ops.js';

/** What {@link doOneOp} needs besides the op. */
export interface OpContext<D extends TopologyDevice = PcibackDevice> {
  /** This connection's exported devices (only they can be reached: §4.4). */
  readonly topology: Pick<Topology<D>, 'get'>;
  /**
   * The backend state of a held device (`pci_get_drvdata`). Default: the device itself
   * when it is a {@link PcibackDevice}. A device without backend state answers
   * `dev_not_found`.
   */
  readonly backendOf?: (dev: D) => PcibackDevice | undefined;
  /** The frontend's domain id, for messages. */
  readonly frontendDomid: number;
  /** For programming faults caught at the op boundary. */
  readonly logger?: Logger;
}

function defaultBackendOf(dev: unknown): PcibackDevice | undefined {
  return dev instanceof PcibackDevice ? dev : undefined;
}

/**
 * Handle one op (spec §4.3 steps 2-5, §4.5 with pciback-fixes P3, and `enable_multi_msi`).
 * `op` must be the private snapshot ({@link snapshotPciOp}): nothing here reads the
 * shared page.
 *
 * The result is what step 6 writes back: `err`, `value` (the request's value when the
 * op does not set one) and, for a successful `enable_msix` only, the first `nr` vectors,
 * `nr` being the request's `value` (the XSA-155 follow-up).
 *
 * @example
 * const op = snapshotPciOp(page, XEN_PCI_SHAREDINFO_OFFSET.op);
 * const result = doOneOp(op, { topology, frontendDomid: 5 });
 * writePciOpResult(view, XEN_PCI_SHAREDINFO_OFFSET.op, result);
 */
export function doOneOp<D extends TopologyDevice>(op: PciOp, ctx: OpContext<D>): PciOpResult {
  const logger = ctx.logger ?? SILENT_LOGGER;
  let dev: PcibackDevice | undefined;
  try {
    const held = ctx.topology.get(op.domain, op.bus, op.devfn);
    if (held !== undefined) {
      dev = ctx.backendOf !== undefined ? ctx.backendOf(held) : defaultBackendOf(held);
    }
  } catch (cause) {
    logger.error({ cause, domid: ctx.frontendDomid }, 'Cannot look up the device of a guest op');
    dev = undefined;
  }
  if (dev === undefined) return { err: XEN_PCI_ERR.dev_not_found, value: op.value };

  dev.countOp(xenPciOpName(op.cmd) ?? 'unknown');
  const intxBefore = dev.enableIntx;
  let result: PciOpResult;
  try {
    result = dispatch(op, dev, ctx.frontendDomid);
  } catch (cause) {
    // A platform or programming fault must not escape to the channel (the guest only
    // sees its op fail).
    logger.error(
      { cause, device: dev.address.toString(), cmd: op.cmd, domid: ctx.frontendDomid },
      `Cannot complete op ${op.cmd} for guest ${ctx.frontendDomid} on "${dev.address.toString()}": internal error`,
    );
    return { err: XEN_PCI_ERR.op_failed, value: op.value };
  }
  if (result.err === 0 && dev.enableIntx !== intxBefore) {
    try {
      dev.controlIsr(false);
    } catch (cause) {
      logger.error(
        { cause, device: dev.address.toString() },
        `Cannot update the fake INTx handler of "${dev.address.toString()}": internal error`,
      );
    }
  }
  return result;
}

function dispatch(op: PciOp, dev: PcibackDevice, frontendDomid: number): PciOpResult {
  const msiCtx: MsiOpContext = { dev, frontendDomid };
  switch (op.cmd) {
    case XEN_PCI_OP.conf_read: {
      const { value, err } = dev.config.read(op.offset, op.size);
      return { err, value: value >>> 0 };
    }
    case XEN_PCI_OP.conf_write:
      return { err: dev.config.write(op.offset, op.size, op.value), value: op.value };
    case XEN_PCI_OP.enable_msi:
      return enableMsi(op, msiCtx);
    case XEN_PCI_OP.disable_msi:
      return disableMsi(op, msiCtx);
    case XEN_PCI_OP.enable_msix: {
      // nr is captured from the snapshot before the call: the handler's result value
      // (0 on success) must not bound the copy-back (XSA-155 follow-up).
      const nr = Math.min(op.value, SH_INFO_MAX_VEC);
      const r = enableMsix(op, msiCtx);
      if (r.result.err !== 0) return r.result;
      return { err: 0, value: r.result.value, msixVectors: r.vectors.slice(0, nr) };
    }
    case XEN_PCI_OP.disable_msix:
      return disableMsix(op, msiCtx);
    case XEN_PCI_OP.enable_multi_msi:
      return enableMultiMsi(op, msiCtx);
    default:
      // 6..9 are backend-to-frontend AER commands; anything else is unknown.
      return { err: XEN_PCI_ERR.not_implemented, value: op.value };
  }
}
