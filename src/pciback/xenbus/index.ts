// SPDX-License-Identifier: MIT
/**
 * The XenBus control plane of pciback (spec §7, pciback-fixes.md P7): the "pci" backend
 * driver that turns the toolstack's `backend/pci/<fe>/<devid>` directories into exported
 * devices and connected channels.
 *
 * @example
 * import { XenbusBackend } from './pciback/xenbus/index.js';
 * const backend = new XenbusBackend({
 *   xs, pool, owners,
 *   connector: (domid, endpoints, options) => connectFrontend(xen, domid, endpoints, options),
 * });
 * await backend.start();
 * backend.stats().devices[0]?.exported; // [{ real: '0000:03:00.0', guest: '0000:00:00.00' }]
 */
export { XenbusBackend, type XenbusBackendOptions } from './xenbus-backend.js';
export {
  MAX_NUM_DEVS,
  MAX_ROOT_NUM,
  PcibackXenbusDevice,
  XEN_PCI_MAGIC,
  type PcibackXenbusDeviceOptions,
} from './xenbus-device.js';
export type {
  ExportedDevice,
  FrontendConnectResult,
  FrontendConnector,
  FrontendConnectorOptions,
  FrontendEndpoints,
  PcibackXenbusDeviceStats,
  XenbusBackendStats,
  XenbusChannel,
} from './types.js';
export type { PciDeviceSource } from '../stub/device-pool.js';
export { formatRoot, formatVdev, parsePciKey, parseVdevfn, type PciKeyFields } from './keys.js';
