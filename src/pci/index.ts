// SPDX-License-Identifier: MIT
/**
 * The PCI model without Xen: addresses, config images, capability walkers, dump formats
 * and the kernel's resource table. Import from here, not from the files beside it.
 */
export {
  PCI_BUS_MAX,
  PCI_DEVICE_MAX,
  PCI_DOMAIN_MAX,
  PCI_FUNCTION_MAX,
  PciAddress,
  PciAddressError,
  type PciAddressComponent,
} from './address.js';
export {
  findCapability,
  findExtendedCapability,
  walkCapabilities,
  walkExtendedCapabilities,
  type ConfigReader,
  type PciCapability,
  type PciExtCapability,
} from './capabilities.js';
export {
  CONFIG_SPACE_SIZES,
  ConfigSpace,
  isConfigSpaceSize,
  type ConfigAccessSize,
  type ConfigSpaceSize,
} from './config-space.js';
export {
  DumpSyntaxError,
  formatLspciDump,
  parseBinaryDump,
  parseDumpFile,
  parseLspciText,
  type DeviceDump,
  type FormatLspciDumpOptions,
  type ParseBinaryDumpOptions,
  type ParseLspciTextOptions,
} from './dump.js';
export {
  EMPTY_RESOURCE,
  IORESOURCE,
  PCI_NUM_RESOURCES,
  PCI_ROM_RESOURCE,
  type PciResource,
} from './resource.js';
