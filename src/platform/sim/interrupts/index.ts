// SPDX-License-Identifier: MIT
/**
 * The simulator's interrupt plumbing (spec §4.5, §4.6, §11 "MSI layer", "Device-owner
 * registry", IRQ status query): dom0's IRQ layer with shared INTx lines and the "nobody
 * cared" rule, the MSI layer with Xen's pirq mapping into the owner domain, delivery of
 * device messages to the guest's bound pirq port, and device activity helpers.
 */
export {
  fireInterrupts,
  type FireInterruptsOptions,
  type FireInterruptsResult,
} from './activity.js';
export { SimDeviceOwners } from './device-owners.js';
export {
  DEFAULT_FIRST_MSI_IRQ,
  DEFAULT_LEGACY_LINES,
  DEFAULT_MAX_IRQS,
  MSI_ADDRESS,
  NOBODY_CARED,
  SimIrqLayer,
  type IrqLineStats,
  type MsiAllocation,
  type MsiMessageTarget,
  type RequestIrqOptions,
  type SimIrqLayerOptions,
} from './irq-layer.js';
export { SimMsiControl, type MsiDevice, type SimMsiEnvironment } from './msi-control.js';
export {
  DEFAULT_FIRST_PIRQ,
  DEFAULT_PIRQS_PER_DOMAIN,
  SimPirqSpace,
  type PirqMapping,
  type SimPirqSpaceOptions,
} from './pirq-space.js';
export {
  SimInterrupts,
  type DeviceInterruptStats,
  type MessageCounters,
  type SimInterruptsOptions,
} from './sim-interrupts.js';
