// SPDX-License-Identifier: MIT
/**
 * The PCI stub (spec §6): the `hide=` grammar, the id list, the stub itself with its
 * driver attributes, the reset ladder, and the device factory that keeps it
 * platform-neutral. The simple `PciDevicePool` stays for tests of the XenBus layer.
 *
 * @example
 * import { PciStub, pcibackDeviceFactory } from './pciback/stub/index.js';
 * const stub = new PciStub(host, { factory, owners, hide: '(0000:03:00.*)' });
 * stub.newSlot('0000:04:00.0');
 * stub.slots(); // '0000:03:00.0\n...\n0000:04:00.0\n'
 */
export {
  PciDevicePool,
  type PciDevicePoolEntry,
  type PciDevicePoolOptions,
  type PciDeviceSource,
} from './device-pool.js';
export {
  pcibackDeviceFactory,
  upstreamBridgesOf,
  type PcibackDeviceFactoryOptions,
  type PciStubDeviceFactory,
  type PciStubDeviceHandle,
  type PciStubPlatformDevice,
} from './device-factory.js';
export { PCI_STUB_ERROR, PciStubError, STUB_ERRNO, type PciStubErrorCode } from './errors.js';
export {
  HIDE_WILDCARD,
  HideSyntaxError,
  expandHideSelector,
  expandHideSelectors,
  formatHide,
  formatHideSelector,
  hideMatches,
  hideSelectorMatches,
  parseHide,
  type HideComponent,
  type HideErrorKind,
  type HideSelector,
  type HideSyntaxErrorDetails,
} from './hide.js';
export {
  PCISTUB_DRIVER_NAME,
  PciStub,
  type PciStubClaimOptions,
  type PciStubEntry,
  type PciStubOptions,
  type PciStubPermissive,
  type PciStubPermissiveOptions,
  type PciStubResetRecord,
} from './pci-stub.js';
export {
  RESET_LADDER,
  checkBusReset,
  resetWithLadder,
  type ResetLadderMethod,
  type ResetLadderOptions,
  type ResetLadderOutcome,
  type ResetRungSkip,
} from './reset-ladder.js';
export {
  PciStubSlots,
  SYSFS_PAGE_SIZE_BYTES,
  pageLimited,
  parseSlotSelector,
  selectorAddress,
} from './slot-ids.js';
