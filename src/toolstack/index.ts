// SPDX-License-Identifier: MIT
/**
 * What xl/libxl do for PCI (DESIGN.md §1): the PCI_SPEC_STRING grammar, the xenstore
 * side of pci-attach/-detach/-list, and the reaction to pciback's `aerState = aerfail`.
 * Import from here, not from the files beside it.
 *
 * @example
 * import { formatPciSpec, parsePciSpec } from './toolstack/index.js';
 * formatPciSpec(parsePciSpec('36:00.0,vslot=14,seize=1')); // '0000:36:00.0@14,seize=1'
 */
export {
  PCI_FUNC_WILDCARD,
  PCI_NAME_MAX_LENGTH,
  PCI_SPEC_DEFAULTS,
  PCI_SPEC_KEYS,
  PCI_VSLOT_MAX,
  PciSpecError,
  RDM_POLICIES,
  formatBdf,
  formatPciSpec,
  formatVdev,
  isPciSpecKey,
  isRdmPolicy,
  parsePciSpec,
  pciSpecToJson,
  type FormatPciSpecOptions,
  type ParsePciSpecOptions,
  type PciSpec,
  type PciSpecBdf,
  type PciSpecByBdf,
  type PciSpecByName,
  type PciSpecCommon,
  type PciSpecDefaults,
  type PciSpecErrorDetails,
  type PciSpecErrorKind,
  type PciSpecJson,
  type PciSpecKey,
  type RdmPolicy,
} from './pci-spec.js';
export {
  PCI_BACKEND_INDEXED_KEYS,
  PCI_BACKEND_WAIT_MS,
  attachPci,
  detachPci,
  formatPciList,
  libxlPciPath,
  listPci,
  pciBackendPath,
  pciFrontendPath,
  waitForBackendState,
  type AttachPciOptions,
  type AttachPciResult,
  type DetachPciOptions,
  type DetachPciResult,
  type PciListRow,
} from './attach.js';
export { resolveDomain, type DomainRef } from './domains.js';
export {
  AER_STATE_FAILED,
  AER_STATE_KEY,
  watchAerFailures,
  type AerFailureWatch,
  type WatchAerFailuresOptions,
} from './aer-watch.js';
export {
  BACKEND_ERROR_MAX_LENGTH,
  watchBackendErrors,
  type BackendErrorReport,
  type BackendErrorWatch,
  type WatchBackendErrorsOptions,
} from './backend-errors.js';
export {
  GUEST_READONLY_DIRS,
  GUEST_WRITABLE_DIRS,
  createDomainNodes,
  destroyDomainNodes,
  type DomainNodes,
} from './domain.js';
