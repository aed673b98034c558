// SPDX-License-Identifier: MIT
/**
 * Linux's `pci_save_state` / `pci_restore_state` (drivers/pci/pci.c, v6.x) over any
 * config accessor: the 16 header dwords, the capability registers Linux saves (PM
 * control, PCIe control registers, AER controls, MSI, MSI-X control, SR-IOV) and, while
 * MSI-X is enabled, the MSI-X table. One module serves the simulator's PCI core (config
 * cycles of simulated hardware) and the Linux platform (the sysfs `config` file and the
 * BAR's `resource<N>` file), so both restore the seize-time state the same way.
 *
 * Everything is found through config space (capability lists, PCIe type, MSI-X table
 * location and size), so the accessor needs nothing device-specific.
 */
import {
  PCI_CAP_ID,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_ERR_CAP_OFFSET,
  PCI_ERR_COR_MASK_OFFSET,
  PCI_ERR_ROOT_COMMAND_OFFSET,
  PCI_ERR_UNCOR_MASK_OFFSET,
  PCI_ERR_UNCOR_SEVER_OFFSET,
  PCI_EXP_CAP_V2_SIZE,
  PCI_EXP_DEVCTL2_OFFSET,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_EXP_FLAGS_OFFSET,
  PCI_EXP_FLAGS_TYPE_MASK,
  PCI_EXP_FLAGS_VERS_MASK,
  PCI_EXP_LNKCTL2_OFFSET,
  PCI_EXP_LNKCTL_OFFSET,
  PCI_EXP_RTCTL_OFFSET,
  PCI_EXP_SLTCTL2_OFFSET,
  PCI_EXP_SLTCTL_OFFSET,
  PCI_EXP_TYPE_RC_EC,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXT_CAP_ID,
  PCI_MSIX_BIR_MASK,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_OFFSET_MASK,
  PCI_MSIX_TABLE_OFFSET,
  PCI_MSI_ADDRESS_HI_OFFSET,
  PCI_MSI_ADDRESS_LO_OFFSET,
  PCI_MSI_DATA_32_OFFSET,
  PCI_MSI_DATA_64_OFFSET,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_OFFSET,
  PCI_MSI_MASK_32_OFFSET,
  PCI_MSI_MASK_64_OFFSET,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_CTRL_PME_STATUS,
  PCI_SRIOV_BAR_OFFSET,
  PCI_SRIOV_CTRL_OFFSET,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_NUM_VF_OFFSET,
  PCI_SRIOV_SYS_PGSIZE_OFFSET,
} from '../abi/pci-regs.js';
import { findCapability, findExtendedCapability, type ConfigReader } from './capabilities.js';

/** Width of one saved register. */
export type SavedRegisterSize = 1 | 2 | 4;

/** One register of a saved config state. */
export interface SavedRegister {
  readonly byteOffset: number;
  readonly sizeBytes: SavedRegisterSize;
  readonly value: number;
}

/**
 * A config snapshot like `pci_save_state`: the 16 header dwords and the capability
 * registers Linux saves. Plain data (serializable).
 */
export interface SavedConfigState {
  /** Dwords 0..15 of the header. */
  readonly header: readonly number[];
  /** Restored before the header: PM control, PCIe control registers, AER controls. */
  readonly early: readonly SavedRegister[];
  /** Restored after the header: MSI, MSI-X control, SR-IOV (enable bits written last). */
  readonly late: readonly SavedRegister[];
  /** MSI-X table entries (dwords), when MSI-X was enabled and readable at save time. */
  readonly msixTable?: {
    readonly bar: number;
    readonly byteOffset: number;
    readonly dwords: readonly number[];
  };
}

/** Where a function's MSI-X table is (from its MSI-X capability). */
export interface MsixTableLocation {
  /** BAR indicator (BIR). */
  readonly bar: number;
  /** Offset of the table in the BAR. */
  readonly byteOffset: number;
  /** Table size in entries. */
  readonly entries: number;
}

/**
 * What {@link saveConfigState} and {@link restoreConfigState} need of a function.
 * Reads of an unreachable register give all-ones; writes that cannot be done are
 * dropped (the device decides, as hardware would).
 */
export interface ConfigStateAccess {
  /** 256 or 4096. */
  readonly configSizeBytes: number;
  readConfigValue(byteOffset: number, sizeBytes: SavedRegisterSize): number;
  writeConfigValue(byteOffset: number, sizeBytes: SavedRegisterSize, value: number): void;
  /** True for an SR-IOV virtual function (its SR-IOV capability, if any, is not saved). */
  readonly isVirtualFunction: boolean;
  /** One dword of BAR memory (the MSI-X table); all-ones when memory decode is off. */
  readBarDword(bar: number, byteOffset: number): number;
  /** One dword write to BAR memory (dropped when memory decode is off). */
  writeBarDword(bar: number, byteOffset: number, value: number): void;
}

/** A {@link ConfigReader} over an access's config reads (for the capability walkers). */
export function configReaderOf(access: ConfigStateAccess): ConfigReader {
  return {
    sizeBytes: access.configSizeBytes,
    read8: (at) => access.readConfigValue(at, 1),
    read16: (at) => access.readConfigValue(at, 2),
    read32: (at) => access.readConfigValue(at, 4),
  };
}

/** The PCIe device/port type (`PCI_EXP_TYPE_*`), undefined without a PCIe capability. */
export function pcieTypeOf(reader: ConfigReader): number | undefined {
  const exp = findCapability(reader, PCI_CAP_ID.EXP);
  if (exp === undefined) return undefined;
  return (reader.read16(exp + PCI_EXP_FLAGS_OFFSET) & PCI_EXP_FLAGS_TYPE_MASK) >> 4;
}

/** The MSI-X table location read from the MSI-X capability, undefined without one. */
export function msixTableOf(reader: ConfigReader): MsixTableLocation | undefined {
  const cap = findCapability(reader, PCI_CAP_ID.MSIX);
  if (cap === undefined) return undefined;
  const flags = reader.read16(cap + PCI_MSIX_FLAGS_OFFSET);
  const table = reader.read32(cap + PCI_MSIX_TABLE_OFFSET);
  return {
    bar: table & PCI_MSIX_BIR_MASK,
    byteOffset: (table & PCI_MSIX_OFFSET_MASK) >>> 0,
    entries: (flags & PCI_MSIX_FLAGS_QSIZE) + 1,
  };
}

function extCap(access: ConfigStateAccess, reader: ConfigReader, id: number): number | undefined {
  return access.configSizeBytes >= PCI_CFG_SPACE_EXP_SIZE
    ? findExtendedCapability(reader, id)
    : undefined;
}

/**
 * `pci_save_state`: header dwords and the capability registers Linux saves.
 *
 * @example
 * const saved = saveConfigState(access);
 * // ... reset ...
 * restoreConfigState(access, saved);
 */
export function saveConfigState(access: ConfigStateAccess): SavedConfigState {
  const reader = configReaderOf(access);
  const header: number[] = [];
  for (let i = 0; i < 16; i++) header.push(access.readConfigValue(4 * i, 4));
  const early: SavedRegister[] = [];
  const late: SavedRegister[] = [];
  const save = (list: SavedRegister[], byteOffset: number, sizeBytes: SavedRegisterSize): void => {
    list.push({ byteOffset, sizeBytes, value: access.readConfigValue(byteOffset, sizeBytes) });
  };

  const pm = findCapability(reader, PCI_CAP_ID.PM);
  if (pm !== undefined) save(early, pm + PCI_PM_CTRL_OFFSET, 2);
  const exp = findCapability(reader, PCI_CAP_ID.EXP);
  const type = pcieTypeOf(reader);
  const rootLike = type === PCI_EXP_TYPE_ROOT_PORT || type === PCI_EXP_TYPE_RC_EC;
  if (exp !== undefined) {
    save(early, exp + PCI_EXP_DEVCTL_OFFSET, 2);
    save(early, exp + PCI_EXP_LNKCTL_OFFSET, 2);
    save(early, exp + PCI_EXP_SLTCTL_OFFSET, 2);
    if (rootLike) save(early, exp + PCI_EXP_RTCTL_OFFSET, 2);
    const version = access.readConfigValue(exp + PCI_EXP_FLAGS_OFFSET, 2) & PCI_EXP_FLAGS_VERS_MASK;
    if (version >= 2 && exp + PCI_EXP_CAP_V2_SIZE <= access.configSizeBytes) {
      save(early, exp + PCI_EXP_DEVCTL2_OFFSET, 2);
      save(early, exp + PCI_EXP_LNKCTL2_OFFSET, 2);
      save(early, exp + PCI_EXP_SLTCTL2_OFFSET, 2);
    }
  }
  const aer = extCap(access, reader, PCI_EXT_CAP_ID.ERR);
  if (aer !== undefined) {
    save(early, aer + PCI_ERR_UNCOR_MASK_OFFSET, 4);
    save(early, aer + PCI_ERR_UNCOR_SEVER_OFFSET, 4);
    save(early, aer + PCI_ERR_COR_MASK_OFFSET, 4);
    save(early, aer + PCI_ERR_CAP_OFFSET, 4);
    if (rootLike) save(early, aer + PCI_ERR_ROOT_COMMAND_OFFSET, 4);
  }

  const msi = findCapability(reader, PCI_CAP_ID.MSI);
  if (msi !== undefined) {
    const flags = access.readConfigValue(msi + PCI_MSI_FLAGS_OFFSET, 2);
    const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    save(late, msi + PCI_MSI_ADDRESS_LO_OFFSET, 4);
    if (is64) save(late, msi + PCI_MSI_ADDRESS_HI_OFFSET, 4);
    save(late, msi + (is64 ? PCI_MSI_DATA_64_OFFSET : PCI_MSI_DATA_32_OFFSET), 2);
    if ((flags & PCI_MSI_FLAGS_MASKBIT) !== 0) {
      save(late, msi + (is64 ? PCI_MSI_MASK_64_OFFSET : PCI_MSI_MASK_32_OFFSET), 4);
    }
    save(late, msi + PCI_MSI_FLAGS_OFFSET, 2);
  }
  const msix = findCapability(reader, PCI_CAP_ID.MSIX);
  let msixTable: SavedConfigState['msixTable'];
  if (msix !== undefined) {
    save(late, msix + PCI_MSIX_FLAGS_OFFSET, 2);
    msixTable = saveMsixTable(access, reader, msix);
  }
  const sriov = extCap(access, reader, PCI_EXT_CAP_ID.SRIOV);
  if (sriov !== undefined && !access.isVirtualFunction) {
    for (let i = 0; i < 6; i++) save(late, sriov + PCI_SRIOV_BAR_OFFSET + 4 * i, 4);
    save(late, sriov + PCI_SRIOV_SYS_PGSIZE_OFFSET, 4);
    save(late, sriov + PCI_SRIOV_NUM_VF_OFFSET, 2);
    save(late, sriov + PCI_SRIOV_CTRL_OFFSET, 2);
  }
  return { header, early, late, ...(msixTable === undefined ? {} : { msixTable }) };
}

/**
 * `pci_restore_state`: early registers (PM first, so a D3hot->D0 reset cannot undo the
 * rest), header dwords 15..0 where they differ, then MSI, MSI-X (enabled with the
 * function masked while its table is restored) and SR-IOV.
 *
 * @throws {RangeError} when `state` does not hold 16 header dwords.
 */
export function restoreConfigState(access: ConfigStateAccess, state: SavedConfigState): void {
  if (state.header.length !== 16) {
    throw new RangeError(
      `Cannot restore a config state with ${state.header.length} header dwords: expected 16`,
    );
  }
  const reader = configReaderOf(access);
  const pm = findCapability(reader, PCI_CAP_ID.PM);
  const sriov = extCap(access, reader, PCI_EXT_CAP_ID.SRIOV);
  const restoreRegister = (reg: SavedRegister): void => {
    let value = reg.value;
    // Writing back a saved PME_Status of 1 would clear the live bit.
    if (pm !== undefined && reg.byteOffset === pm + PCI_PM_CTRL_OFFSET)
      value &= ~PCI_PM_CTRL_PME_STATUS;
    if (sriov !== undefined && reg.byteOffset === sriov + PCI_SRIOV_CTRL_OFFSET) {
      // sriov_restore_state: nothing to do while VFs are enabled.
      if ((access.readConfigValue(reg.byteOffset, 2) & PCI_SRIOV_CTRL_VFE) !== 0) return;
    }
    access.writeConfigValue(reg.byteOffset, reg.sizeBytes, value);
  };
  for (const reg of state.early) restoreRegister(reg);
  for (let i = 15; i >= 0; i--) {
    const saved = state.header[i] ?? 0;
    if (access.readConfigValue(4 * i, 4) !== saved) access.writeConfigValue(4 * i, 4, saved);
  }
  const msix = findCapability(reader, PCI_CAP_ID.MSIX);
  const msixFlags = msix === undefined ? undefined : msix + PCI_MSIX_FLAGS_OFFSET;
  for (const reg of state.late) {
    if (reg.byteOffset === msixFlags && (reg.value & PCI_MSIX_FLAGS_ENABLE) !== 0) {
      access.writeConfigValue(reg.byteOffset, 2, reg.value | PCI_MSIX_FLAGS_MASKALL);
      const table = state.msixTable;
      table?.dwords.forEach((dword, i) => {
        access.writeBarDword(table.bar, table.byteOffset + 4 * i, dword);
      });
    }
    restoreRegister(reg);
  }
}

/** True when `state` has the shape {@link saveConfigState} gives. */
export function isSavedConfigState(state: unknown): state is SavedConfigState {
  if (typeof state !== 'object' || state === null) return false;
  const s = state as Partial<SavedConfigState>;
  return (
    Array.isArray(s.header) &&
    s.header.length === 16 &&
    Array.isArray(s.early) &&
    Array.isArray(s.late)
  );
}

/**
 * The opaque snapshot a stub hands back (`PciStubPlatformDevice.restoreState`), checked
 * before it reaches the device.
 *
 * @throws TypeError naming `address` when `state` is not a {@link SavedConfigState}.
 */
export function assertSavedConfigState(
  state: unknown,
  address: { toString(): string },
): asserts state is SavedConfigState {
  if (!isSavedConfigState(state)) {
    throw new TypeError(
      `Cannot restore the config state of "${address.toString()}": it is not a saved state`,
    );
  }
}

function saveMsixTable(
  access: ConfigStateAccess,
  reader: ConfigReader,
  cap: number,
): SavedConfigState['msixTable'] {
  if ((access.readConfigValue(cap + PCI_MSIX_FLAGS_OFFSET, 2) & PCI_MSIX_FLAGS_ENABLE) === 0) {
    return undefined;
  }
  const layout = msixTableOf(reader);
  if (layout === undefined) return undefined;
  const dwords: number[] = [];
  for (let at = 0; at < layout.entries * PCI_MSIX_ENTRY_SIZE; at += 4) {
    dwords.push(access.readBarDword(layout.bar, layout.byteOffset + at));
  }
  // All-ones everywhere means the table could not be read (decode off).
  if (dwords.every((d) => d === 0xffffffff)) return undefined;
  return { bar: layout.bar, byteOffset: layout.byteOffset, dwords };
}
