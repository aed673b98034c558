// SPDX-License-Identifier: MIT
/**
 * pciback's PCIe AER handlers (spec §6.6): error_detected, mmio_enabled, slot_reset and
 * resume for a seized device, forwarded to the owning guest through `aer_op`, and
 * `kill_domain_by_device` (`aerState` = `aerfail`) when the guest cannot take part.
 *
 * @example
 * import { PcibackAer, xenbusAerLookup } from './pciback/aer/index.js';
 * const aer = new PcibackAer({ devices: xenbusAerLookup(pool, backend), xs, logger });
 * const handlers = aer.handlersFor(PciAddress.parse('0000:03:00.0'));
 * await handlers.errorDetected(PCI_CHANNEL_IO.normal); // the guest's vote
 */
export {
  AER_STATE_FAILED,
  AER_STATE_KEY,
  DEFAULT_KILL_RETRIES,
  PcibackAer,
  aerKillNodename,
  type AerCallbackName,
  type AerKill,
  type PcibackAerOptions,
  type PcibackAerStats,
  type PcibackErrorHandlers,
} from './pciback-aer.js';
export type { AerChannel, AerConnection, AerDeviceLookup, AerSeizedDevice } from './types.js';
export {
  isAerChannel,
  xenbusAerLookup,
  type AerStubDevices,
  type AerXenbusDevice,
  type AerXenbusDevices,
} from './xenbus-lookup.js';
