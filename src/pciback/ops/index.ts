// SPDX-License-Identifier: MIT
/**
 * Op handling (spec §4.3-§4.5): one op on the backend's private snapshot, dispatched to
 * the virtualizer or the MSI layer.
 *
 * @example
 * import { doOneOp } from './pciback/ops/index.js';
 * const result = doOneOp(snapshotPciOp(page, 4), { topology, frontendDomid: 5 });
 */
export { doOneOp, type OpContext } from './do-one-op.js';
export { MSI_ERRNO, MULTI_MSI_MAX_VECTORS, msiMaxVectors } from './msi-ops.js';
