// SPDX-License-Identifier: MIT
/**
 * Device builders this project writes (realistic registers and capabilities, real
 * vendor IDs, nothing copied from a dump), by model name.
 */
import { buildGpu } from './gpu.js';
import { buildSriovNic } from './nic-sriov.js';
import { buildNvme } from './nvme.js';
import { buildRootPort } from './root-port.js';
import type { CatalogFunction, CatalogOptions } from './types.js';
import { buildXhci } from './xhci.js';

export { DEFAULT_WINDOWS, type FirmwareWindows } from './firmware.js';
export { DEFAULT_IRQ, type CatalogFunction, type CatalogOptions } from './types.js';

/** The models, each with a one-line description. */
export const CATALOG_MODELS = {
  'nic-sriov':
    'SR-IOV 10GbE NIC PF (8086:10fb): 64 MSI-X vectors in BAR 3, PCIe FLR, AER, PM, VPD, 16 VFs',
  nvme: 'NVMe SSD controller (144d:a808, class 01 08 02): 64-bit 16 KiB BAR 0, MSI-X, MSI, PCIe FLR',
  xhci: 'USB 3.0 xHCI controller (1912:0015, class 0c 03 30): MSI-X and MSI, PM reset, no FLR',
  gpu: 'GPU (10de:1c82) with prefetchable 64-bit BARs, ROM, I/O BAR, MSI + HDMI audio as function 1',
  'root-port':
    'PCIe root port (8086:a110, type-1 header): bus numbers, windows, hot-plug slot, AER root, MSI',
} as const;

/** A catalog model name. */
export type CatalogModel = keyof typeof CATALOG_MODELS;

/** True when `name` is a catalog model. */
export function isCatalogModel(name: string): name is CatalogModel {
  return Object.hasOwn(CATALOG_MODELS, name);
}

/**
 * Builds the functions of a catalog device, BARs assigned as firmware would.
 *
 * @example
 * const [nic] = buildCatalogDevice('nic-sriov', { mmioBase: 0xfe000000n });
 * nic.device.configRead(0x00, 4); // 0x10fb8086
 */
export function buildCatalogDevice(
  model: CatalogModel,
  options: CatalogOptions = {},
): CatalogFunction[] {
  switch (model) {
    case 'nic-sriov':
      return buildSriovNic(options);
    case 'nvme':
      return buildNvme(options);
    case 'xhci':
      return buildXhci(options);
    case 'gpu':
      return buildGpu(options);
    case 'root-port':
      return buildRootPort(options);
  }
}
