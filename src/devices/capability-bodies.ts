// SPDX-License-Identifier: MIT
/**
 * Bodies of the capabilities the catalog and generic VFs use, for
 * `ConfigImageBuilder.addCapability` (bytes from offset 2) and
 * `addExtendedCapability` (bytes from offset 4). Field layouts are the specifications';
 * the values are whatever the caller asks for.
 */
import {
  PCI_ERR_COR_ADV_NFAT,
  PCI_ERR_UNC_SEVER_DEFAULT,
  PCI_EXP_CAP_V1_SIZE,
  PCI_EXP_CAP_V2_SIZE,
  PCI_EXP_DEVCTL_RESET_VALUE,
  PCI_EXP_FLAGS_SLOT,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_PM_CTRL_NO_SOFT_RESET,
} from '../abi/pci-regs.js';
import { le } from './config-image-builder.js';

/** Writes `value` of `sizeBytes` at `offset` of `body`, growing it when needed. */
function put(body: number[], offset: number, sizeBytes: 1 | 2 | 4, value: number): void {
  while (body.length < offset + sizeBytes) body.push(0);
  le(value, sizeBytes).forEach((byte, i) => (body[offset + i] = byte));
}

/** Power Management (version 3). `pmeSupport` is the 5-bit PME mask D0..D3cold. */
export function pmBody(options: {
  d1?: boolean;
  d2?: boolean;
  pmeSupport?: number;
  noSoftReset?: boolean;
}): number[] {
  const pmc =
    3 |
    (options.d1 === true ? 0x0200 : 0) |
    (options.d2 === true ? 0x0400 : 0) |
    ((options.pmeSupport ?? 0) << 11);
  const body: number[] = [];
  put(body, 0, 2, pmc);
  put(body, 2, 2, options.noSoftReset === true ? PCI_PM_CTRL_NO_SOFT_RESET : 0);
  put(body, 4, 2, 0); // PMCSR_BSE, Data
  return body;
}

/** MSI with 2^`vectorsLog2` vectors. */
export function msiBody(options: {
  is64: boolean;
  maskable: boolean;
  vectorsLog2: number;
}): number[] {
  const flags =
    (options.is64 ? PCI_MSI_FLAGS_64BIT : 0) |
    (options.maskable ? PCI_MSI_FLAGS_MASKBIT : 0) |
    (options.vectorsLog2 << 1);
  const size = (options.maskable ? 20 : 10) + (options.is64 ? 4 : 0);
  const body: number[] = [];
  put(body, 0, 2, flags);
  put(body, size - 2 - 1, 1, 0);
  return body;
}

/** MSI-X: table and PBA locations (BAR indicator and byte offset). */
export function msixBody(options: {
  tableSize: number;
  tableBar: number;
  tableOffset: number;
  pbaBar: number;
  pbaOffset: number;
}): number[] {
  const body: number[] = [];
  put(body, 0, 2, options.tableSize - 1);
  put(body, 2, 4, (options.tableOffset | options.tableBar) >>> 0);
  put(body, 6, 4, (options.pbaOffset | options.pbaBar) >>> 0);
  return body;
}

/** Registers of a PCI Express capability (offsets as in the capability). */
export interface PcieBodyOptions {
  /** Device/port type (`PCI_EXP_TYPE_*`). */
  readonly type: number;
  /** 1 or 2 (default 2). */
  readonly version?: number;
  readonly slotImplemented?: boolean;
  /** Interrupt Message Number (MSI/MSI-X vector of the capability's events). */
  readonly interruptMessage?: number;
  readonly devcap: number;
  readonly devctl?: number;
  readonly devsta?: number;
  readonly lnkcap?: number;
  readonly lnkctl?: number;
  readonly lnksta?: number;
  readonly sltcap?: number;
  readonly sltctl?: number;
  readonly sltsta?: number;
  readonly rtcap?: number;
  readonly devcap2?: number;
  readonly devctl2?: number;
  readonly lnkcap2?: number;
  readonly lnkctl2?: number;
  readonly lnksta2?: number;
}

/** PCI Express capability. */
export function pcieBody(o: PcieBodyOptions): number[] {
  const version = o.version ?? 2;
  const flags =
    version |
    (o.type << 4) |
    (o.slotImplemented === true ? PCI_EXP_FLAGS_SLOT : 0) |
    ((o.interruptMessage ?? 0) << 9);
  const body: number[] = [];
  const at = (capOffset: number, size: 1 | 2 | 4, value: number | undefined): void => {
    put(body, capOffset - 2, size, value ?? 0);
  };
  at(2, 2, flags);
  at(4, 4, o.devcap);
  at(8, 2, o.devctl ?? PCI_EXP_DEVCTL_RESET_VALUE);
  at(10, 2, o.devsta);
  at(12, 4, o.lnkcap);
  at(16, 2, o.lnkctl);
  at(18, 2, o.lnksta);
  at(20, 4, o.sltcap);
  at(24, 2, o.sltctl);
  at(26, 2, o.sltsta);
  at(30, 2, o.rtcap);
  at(PCI_EXP_CAP_V1_SIZE - 2, 2, 0);
  if (version >= 2) {
    at(36, 4, o.devcap2);
    at(40, 2, o.devctl2);
    at(44, 4, o.lnkcap2);
    at(48, 2, o.lnkctl2);
    at(50, 2, o.lnksta2);
    at(PCI_EXP_CAP_V2_SIZE - 2, 2, 0);
  }
  return body;
}

/** Advanced Features: length 6, TP and FLR capable bits. */
export function afBody(options: { flr: boolean; transactionsPending: boolean }): number[] {
  const cap = (options.transactionsPending ? 0x01 : 0) | (options.flr ? 0x02 : 0);
  return [6, cap, 0, 0];
}

/** VPD: address and data registers. */
export function vpdBody(): number[] {
  return [0, 0, 0, 0, 0, 0];
}

/** AER, with root port registers when `root`. Advisory non-fatal errors start masked. */
export function aerBody(options: { root?: boolean; capabilities?: number }): number[] {
  const body: number[] = [];
  put(body, 0x08, 4, PCI_ERR_UNC_SEVER_DEFAULT);
  put(body, 0x10, 4, PCI_ERR_COR_ADV_NFAT);
  put(body, 0x14, 4, options.capabilities ?? 0);
  put(body, (options.root === true ? 0x34 : 0x28) - 4 + 3, 1, 0);
  return body;
}

/** SR-IOV capability of a physical function. */
export interface SriovBodyOptions {
  readonly totalVfs: number;
  readonly initialVfs?: number;
  readonly firstVfOffset: number;
  readonly vfStride: number;
  readonly vfDeviceId: number;
  readonly functionLink?: number;
  /** Supported page sizes (bit n = 4 KiB << n); default 0x553 like most NICs. */
  readonly supportedPageSizes?: number;
  /** Raw VF BAR registers 0..5 (type bits and, once assigned, addresses). */
  readonly vfBars: readonly number[];
}

/** SR-IOV. */
export function sriovBody(o: SriovBodyOptions): number[] {
  const body: number[] = [];
  put(body, 0x0c - 4, 2, o.initialVfs ?? o.totalVfs);
  put(body, 0x0e - 4, 2, o.totalVfs);
  put(body, 0x12 - 4, 1, o.functionLink ?? 0);
  put(body, 0x14 - 4, 2, o.firstVfOffset);
  put(body, 0x16 - 4, 2, o.vfStride);
  put(body, 0x1a - 4, 2, o.vfDeviceId);
  put(body, 0x1c - 4, 4, o.supportedPageSizes ?? 0x553);
  put(body, 0x20 - 4, 4, 1);
  for (let i = 0; i < 6; i++) put(body, 0x24 - 4 + 4 * i, 4, o.vfBars[i] ?? 0);
  put(body, 0x40 - 4 - 4, 4, 0);
  return body;
}

/** ACS with the given capability bits (control starts 0). */
export function acsBody(capabilities: number): number[] {
  return [...le(capabilities, 2), 0, 0];
}

/** ARI with the next function number. */
export function ariBody(nextFunction: number): number[] {
  return [0, nextFunction & 0xff, 0, 0];
}

/** Device Serial Number. */
export function dsnBody(serial: bigint): number[] {
  const low = Number(serial & 0xffffffffn);
  const high = Number((serial >> 32n) & 0xffffffffn);
  return [...le(low, 4), ...le(high, 4)];
}
