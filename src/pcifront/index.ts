// SPDX-License-Identifier: MIT
/**
 * pcifront: the guest side of the PV PCI protocol (spec §9) and the built-in guest
 * programs the simulator runs in guest workers.
 */
export { PCIBIOS, xenErrToPcibios } from '../abi/pcibios.js';
export {
  EINVAL,
  ENODEV,
  Pcifront,
  type AerHandler,
  type AerRequest,
  type AerRequestKind,
  type ConfigOpSize,
  type ConfigReadReply,
  type ConfigWriteReply,
  type DoPciOpOptions,
  type GuestFunctionAddress,
  type MsiDisableReply,
  type MsiEnableReply,
  type MsixEnableReply,
  type PciOpReply,
  type PcifrontOptions,
  type PcifrontStats,
} from './pcifront.js';
export {
  DEFAULT_ROOTS,
  enumerate,
  formatGuestAddress,
  parseRoot,
  type EnumerateOptions,
  type EnumerationResult,
  type GuestBar,
  type GuestCapability,
  type GuestExtCapability,
  type GuestPciDevice,
  type GuestPciRoot,
  type GuestRom,
} from './enumerate.js';
export { className, formatDevice, formatListing, formatSize } from './listing.js';
export {
  GUEST_PROGRAMS,
  createXsa332Program,
  isGuestProgramName,
  type GuestProgram,
  type GuestProgramEnv,
  type GuestProgramName,
  type ProgramReport,
  type Xsa332Options,
} from './programs/index.js';
export {
  PCIFRONT_MAX_DEVICES,
  PCIFRONT_MAX_ROOTS,
  PcifrontXenbus,
  type PcifrontEndpoints,
  type PcifrontFatalError,
  type PcifrontGuestKernel,
  type PcifrontXenbusOptions,
} from './xenbus.js';
export {
  diffEnumerations,
  type EnumerationDevices,
  type EnumerationDiff,
} from './xenbus-rescan-diff.js';
