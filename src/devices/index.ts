// SPDX-License-Identifier: MIT
/**
 * Simulated PCI hardware: functions built from a config image with the behaviour of
 * the real thing (masks, BAR sizing, resets, MSI/MSI-X, INTx, AER, VPD, SR-IOV), the
 * catalog of devices this project writes, and devices from dumps of real ones.
 * Import from here, not from the files beside it.
 */
export type { ConfigWriteAccess } from './access.js';
export {
  INFERRED_SIZE_LIMITS,
  MIN_ROM_SIZE,
  decodeBarType,
  inferBarSize,
  inferRomSize,
  type BarDescriptor,
  type BarKind,
  type BarLayout,
  type RomLayout,
} from './bars.js';
export type { BarMemoryPage } from './bar-memory.js';
export {
  acsBody,
  aerBody,
  afBody,
  ariBody,
  dsnBody,
  msiBody,
  msixBody,
  pcieBody,
  pmBody,
  sriovBody,
  vpdBody,
  type PcieBodyOptions,
  type SriovBodyOptions,
} from './capability-bodies.js';
export { ConfigImageBuilder, le, type HeaderIdentity } from './config-image-builder.js';
export type { InjectedErrors } from './error-injection.js';
export type { ResetKind } from './feature.js';
export type { ResetCounts, SimulatedFunctionState } from './function-state.js';
export { functionFromDump, type FunctionFromDumpOptions } from './from-dump.js';
export type { AerErrorEvent, DeviceHooks, MsiMessage, SriovChange } from './hooks.js';
export type { MsixRegion } from './msix.js';
export { applyMaskedWrite } from './register-file.js';
export {
  SimulatedFunction,
  type RegisterMasks,
  type ResetCapabilities,
  type RomDescriptor,
  type SimulatedFunctionOptions,
  type VirtualFunctionLink,
} from './simulated-function.js';
export type { SriovStatus } from './sriov.js';
export {
  createVirtualFunctions,
  genericVfImage,
  virtualFunctionAddress,
  type CreateVirtualFunctionsOptions,
  type VirtualFunction,
} from './virtual-functions.js';
export { buildVpdImage, type VpdContents } from './vpd-image.js';
export {
  CATALOG_MODELS,
  DEFAULT_IRQ,
  DEFAULT_WINDOWS,
  buildCatalogDevice,
  isCatalogModel,
  type CatalogFunction,
  type CatalogModel,
  type CatalogOptions,
  type FirmwareWindows,
} from './catalog/index.js';
