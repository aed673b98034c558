// SPDX-License-Identifier: MIT
/**
 * The command register field (`command_init/read/write` in `conf_space_header.c`),
 * the XSA-120 design of spec §5.6: the guest writes a virtual value; decode, bus
 * mastering, MWI and (with allow_interrupt_control) INTx changes reach hardware only
 * through the PCI core; in permissive mode only `PCI_COMMAND_GUEST_MASK` bits are
 * written through.
 */
import {
  PCI_COMMAND_GUEST_MASK,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
} from '../../abi/pci-regs.js';
import { rawRead, rawWrite } from './access.js';
import type { ConfigField } from './field.js';

/** `struct pci_cmd_info`: the guest's virtual command value. */
export interface CommandData {
  /**
   * Last value the guest wrote (16 bits); starts as the hardware value at seize time
   * and is deliberately not reset between guests (§5.6).
   */
  val: number;
}

/** The guest asks for decoding (`is_enable_cmd`). */
function wantsDecode(value: number): boolean {
  return (value & (PCI_COMMAND_MEMORY | PCI_COMMAND_IO)) !== 0;
}

/** Header field at 0x04, 2 bytes. */
export const COMMAND_FIELD: ConfigField<CommandData> = {
  name: 'command',
  byteOffset: PCI_COMMAND_OFFSET,
  sizeBytes: 2,
  mask: 0,
  dynamic: false,

  init(ctx, byteOffset) {
    const { value, err } = rawRead(ctx.dev, byteOffset, 2);
    return err !== 0 ? { ok: false, err } : { ok: true, data: { val: value } };
  },

  // bar_release in C only frees the data; nothing to do here.
  release() {},

  // Real MASTER/SPECIAL/INVALIDATE/VGA/WAIT/FAST_BACK, virtual everything else. The
  // hardware read error is returned but the merge happens anyway, as in C.
  read(ctx, byteOffset, data) {
    const hw = rawRead(ctx.dev, byteOffset, 2);
    return ctx.result(
      (hw.value & PCI_COMMAND_GUEST_MASK) | (data.val & ~PCI_COMMAND_GUEST_MASK & 0xffff),
      hw.err,
    );
  },

  write(ctx, byteOffset, newValue, data) {
    const { dev } = ctx;
    let value = newValue;
    // 1. Decode: on through pci_enable_device, off through pci_disable_device (which
    //    does not clear IO/MEM in hardware: XSA-120).
    if (!dev.isEnabled() && wantsDecode(value)) {
      const err = dev.enableDevice();
      if (err !== 0) return err;
      ctx.enableIntx = true;
    } else if (dev.isEnabled() && !wantsDecode(value)) {
      dev.disableDevice();
      ctx.enableIntx = false;
    }
    // 2. Bus mastering, judged by the kernel's bookkeeping (dev->is_busmaster).
    if (!dev.isBusMaster() && (value & PCI_COMMAND_MASTER) !== 0) {
      dev.setMaster();
    } else if (dev.isBusMaster() && (value & PCI_COMMAND_MASTER) === 0) {
      dev.clearMaster();
    }
    // 3. Memory-write-invalidate, judged against the virtual value.
    if ((data.val & PCI_COMMAND_INVALIDATE) === 0 && (value & PCI_COMMAND_INVALIDATE) !== 0) {
      const err = dev.setMwi();
      if (err !== 0) {
        ctx.logger.warn(
          { device: dev.address.toString(), err },
          `Cannot enable memory-write-invalidate for "${dev.address.toString()}": error ${err}`,
        );
        value &= ~PCI_COMMAND_INVALIDATE;
      }
    } else if (
      (data.val & PCI_COMMAND_INVALIDATE) !== 0 &&
      (value & PCI_COMMAND_INVALIDATE) === 0
    ) {
      dev.clearMwi();
    }
    // 4. INTx only with allow_interrupt_control (no exclusivity check here, as in C).
    if (ctx.policy.allowInterruptControl && ((data.val ^ value) & PCI_COMMAND_INTX_DISABLE) !== 0) {
      dev.intx((value & PCI_COMMAND_INTX_DISABLE) === 0);
    }
    // 5. Remember what the guest asked for.
    data.val = value;
    // 6. Non-permissive: done.
    if (!ctx.isPermissive()) return 0;
    // 7. Permissive: only the PCI_COMMAND_GUEST bits reach hardware.
    const hw = rawRead(dev, byteOffset, 2);
    if (hw.err !== 0 || hw.value === value) return hw.err;
    return rawWrite(
      dev,
      byteOffset,
      2,
      (value & PCI_COMMAND_GUEST_MASK) | (hw.value & ~PCI_COMMAND_GUEST_MASK),
    );
  },
};
