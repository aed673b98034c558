// SPDX-License-Identifier: MIT
/**
 * Field tables of the virtualized capabilities (`conf_space_capability.c`, spec §5.8):
 * the 2-byte capability header, VPD, Power Management, MSI and MSI-X, registered in
 * the original's order. Other capabilities (PCIe, vendor, ...) have no fields: raw read,
 * permissive-only write; the chain itself is passed through unmodified.
 */
import {
  PCI_CAP_ID,
  PCI_CAP_LIST_ID_OFFSET,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_OFFSET,
  PCI_PM_CAP_PME_MASK,
  PCI_PM_CTRL_DATA_SEL_MASK,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_CTRL_PME_ENABLE,
  PCI_PM_CTRL_PME_STATUS,
  PCI_PM_CTRL_STATE_MASK,
  PCI_PM_DATA_REGISTER_OFFSET,
  PCI_PM_PMC_OFFSET,
  PCI_PM_PPB_EXTENSIONS_OFFSET,
  PCI_VPD_ADDR_F,
  PCI_VPD_ADDR_OFFSET,
  PCI_VPD_DATA_OFFSET,
} from '../../abi/pci-regs.js';
import type { ConfigAccessSize, PciPowerState } from '../../platform/types.js';
import { rawRead, rawWrite } from './access.js';
import { DENIED_WRITE_REASON } from './audit.js';
import type { ConfigField } from './field.js';
import { INTERRUPT_TYPE, interruptType } from './interrupt-type.js';
import { PCIBIOS } from '../../abi/pcibios.js';

/**
 * PMCSR bits the guest may change: PME_Status (RW1C) and Data_Select. PME_Enable is
 * not among them: PMEs are shared, a guest must not enable them (`PM_OK_BITS`).
 */
export const PM_OK_BITS = PCI_PM_CTRL_PME_STATUS | PCI_PM_CTRL_DATA_SEL_MASK;

function rawReadOnly(
  name: string,
  byteOffset: number,
  sizeBytes: ConfigAccessSize,
): ConfigField<undefined> {
  return {
    name,
    byteOffset,
    sizeBytes,
    mask: 0,
    dynamic: false,
    readsRaw: true,
    read: (ctx, absOffset) => rawRead(ctx.dev, absOffset, sizeBytes),
  };
}

/** The capability header (ID + next pointer) added before every capability's fields. */
export const CAPLIST_HEADER_FIELDS: readonly ConfigField[] = [
  rawReadOnly('cap-header', PCI_CAP_LIST_ID_OFFSET, 2),
];

/** VPD: address writable without the F (write) flag, data read-only. */
const VPD_FIELDS: readonly ConfigField[] = [
  {
    name: 'vpd-address',
    byteOffset: PCI_VPD_ADDR_OFFSET,
    sizeBytes: 2,
    mask: 0,
    dynamic: false,
    readsRaw: true,
    read: (ctx, absOffset) => rawRead(ctx.dev, absOffset, 2),
    write(ctx, absOffset, value) {
      if ((value & PCI_VPD_ADDR_F) !== 0) {
        ctx.deny(absOffset, 2, DENIED_WRITE_REASON.vpdWrite);
        return PCIBIOS.SET_FAILED;
      }
      return rawWrite(ctx.dev, absOffset, 2, value);
    },
  },
  rawReadOnly('vpd-data', PCI_VPD_DATA_OFFSET, 4),
];

/** Power management: PME support hidden, PMCSR filtered, power state via the PCI core. */
const PM_FIELDS: readonly ConfigField[] = [
  {
    name: 'pm-pmc',
    byteOffset: PCI_PM_PMC_OFFSET,
    sizeBytes: 2,
    mask: 0,
    dynamic: false,
    read(ctx, absOffset) {
      const hw = rawRead(ctx.dev, absOffset, 2);
      // On error C leaves the temporary at 0.
      if (hw.err !== 0) return ctx.result(0, hw.err);
      return ctx.result(hw.value & ~PCI_PM_CAP_PME_MASK & 0xffff, 0);
    },
  },
  {
    name: 'pm-control',
    byteOffset: PCI_PM_CTRL_OFFSET,
    sizeBytes: 2,
    mask: 0,
    dynamic: false,
    // Ensure PMEs are disabled. As in C, only a negative errno aborts the add: a
    // positive PCIBIOS code is not an error pointer (IS_ERR) and is ignored.
    init(ctx, absOffset): { ok: true; data: undefined } | { ok: false; err: number } {
      const cur = rawRead(ctx.dev, absOffset, 2);
      let err = cur.err;
      if (err === 0 && (cur.value & PCI_PM_CTRL_PME_ENABLE) !== 0) {
        err = rawWrite(ctx.dev, absOffset, 2, cur.value & ~PCI_PM_CTRL_PME_ENABLE);
      }
      return err < 0 ? { ok: false, err } : { ok: true, data: undefined };
    },
    readsRaw: true,
    read: (ctx, absOffset) => rawRead(ctx.dev, absOffset, 2),
    write(ctx, absOffset, value) {
      const old = rawRead(ctx.dev, absOffset, 2);
      if (old.err !== 0) return old.err;
      const state = (value & PCI_PM_CTRL_STATE_MASK) as PciPowerState;
      // The one hardware-writable PMCSR bit pciback withholds is PME_Enable (the others
      // outside PM_OK_BITS and the state are read-only in hardware anyway).
      if (((old.value ^ value) & PCI_PM_CTRL_PME_ENABLE) !== 0) {
        ctx.deny(absOffset, 2, DENIED_WRITE_REASON.pmeEnable);
      }
      const okBits = value & PM_OK_BITS;
      if ((old.value & PM_OK_BITS) !== okBits) {
        const err = rawWrite(ctx.dev, absOffset, 2, (old.value & ~PM_OK_BITS) | okBits);
        if (err !== 0) return err;
      }
      // The PCI core handles delays, D1/D2 support and state tracking.
      if (ctx.dev.setPowerState(state) !== 0) {
        ctx.deny(absOffset, 2, DENIED_WRITE_REASON.powerState);
        return PCIBIOS.SET_FAILED;
      }
      return 0;
    },
  },
  rawReadOnly('pm-bridge-ext', PCI_PM_PPB_EXTENSIONS_OFFSET, 1),
  rawReadOnly('pm-data', PCI_PM_DATA_REGISTER_OFFSET, 1),
];

/** `struct msi_msix_field_config`: per-type rules of the Message Control write. */
export interface MsiFlagsConfig {
  /** Bit that enables this interrupt type. */
  readonly enableBit: number;
  /** Bits the guest may change with allow_interrupt_control. */
  readonly allowedBits: number;
  /** This capability's `INTERRUPT_TYPE`. */
  readonly interruptType: number;
}

const MSI_FLAGS_CONFIG: MsiFlagsConfig = Object.freeze({
  enableBit: PCI_MSI_FLAGS_ENABLE,
  allowedBits: PCI_MSI_FLAGS_ENABLE,
  interruptType: INTERRUPT_TYPE.MSI,
});

const MSIX_FLAGS_CONFIG: MsiFlagsConfig = Object.freeze({
  enableBit: PCI_MSIX_FLAGS_ENABLE,
  allowedBits: PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL,
  interruptType: INTERRUPT_TYPE.MSIX,
});

/** `msi_msix_flags_write` as a field on Message Control (+2). */
function msiFlagsField(name: string, config: MsiFlagsConfig): ConfigField<MsiFlagsConfig> {
  return {
    name,
    byteOffset: PCI_MSI_FLAGS_OFFSET, // same +2 for MSI-X (PCI_MSIX_FLAGS_OFFSET)
    sizeBytes: 2,
    mask: 0,
    dynamic: false,
    init: () => ({ ok: true, data: config }),
    readsRaw: true,
    read: (ctx, absOffset) => rawRead(ctx.dev, absOffset, 2),
    write(ctx, absOffset, value, data) {
      if (ctx.isPermissive()) return rawWrite(ctx.dev, absOffset, 2, value);
      const old = rawRead(ctx.dev, absOffset, 2);
      if (old.err !== 0) return old.err;
      if (value === old.value) return 0;
      if (
        !ctx.policy.allowInterruptControl ||
        ((value ^ old.value) & ~data.allowedBits & 0xffff) !== 0
      ) {
        ctx.deny(absOffset, 2, DENIED_WRITE_REASON.interruptControl);
        return PCIBIOS.SET_FAILED;
      }
      if ((value & data.enableBit) !== 0) {
        // Enabling is allowed while nothing or only INTx is on (Linux's own MSI
        // start-up does that) or this same type is on; never next to the other type.
        // A failed read makes the C comparison fail too: refused.
        const current = interruptType(ctx);
        const types = current.ok ? current.types : -1;
        if (
          types !== INTERRUPT_TYPE.NONE &&
          types !== INTERRUPT_TYPE.INTX &&
          types !== data.interruptType
        ) {
          ctx.deny(absOffset, 2, DENIED_WRITE_REASON.interruptControl);
          return PCIBIOS.SET_FAILED;
        }
      }
      return rawWrite(ctx.dev, absOffset, 2, value);
    },
  };
}

/** One registered capability: its ID and its fields (after the header). */
export interface CapabilityTable {
  readonly capId: number;
  readonly fields: readonly ConfigField[];
}

/** The registered capabilities in registration order: VPD, PM, MSI, MSI-X (§2.4). */
export const CAPABILITY_TABLES: readonly CapabilityTable[] = [
  { capId: PCI_CAP_ID.VPD, fields: VPD_FIELDS },
  { capId: PCI_CAP_ID.PM, fields: PM_FIELDS },
  { capId: PCI_CAP_ID.MSI, fields: [msiFlagsField('msi-flags', MSI_FLAGS_CONFIG)] },
  {
    capId: PCI_CAP_ID.MSIX,
    fields: [
      { ...msiFlagsField('msix-flags', MSIX_FLAGS_CONFIG), byteOffset: PCI_MSIX_FLAGS_OFFSET },
    ],
  },
];
