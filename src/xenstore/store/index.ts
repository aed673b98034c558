// SPDX-License-Identifier: MIT
/** The xenstore store: tree, permissions, watches, transactions, domains, quotas. */
export { XenStore } from './store.js';
export {
  XS_DEFAULT_QUOTAS,
  type XsCaller,
  type XsNodeSnapshot,
  type XsQuotas,
  type XsStoreOptions,
  type XsStorePerm,
  type XsStorePermLetter,
  type XsStoreResult,
  type XsWatchEvent,
} from './types.js';
export {
  XS_SPECIAL_PATHS,
  canonicalizePath,
  countedPathLength,
  domainPath,
  isValidCanonicalPath,
  isXsSpecialPath,
  type XsSpecialPath,
} from './path.js';
