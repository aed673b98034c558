// SPDX-License-Identifier: MIT
/**
 * Per-device backend state of a seized device (spec §3.2 `xen_pcibk_dev_data`): the
 * virtualizer, the fake INTx handler (§4.6), reset (§4.7), counters and the rate limit
 * of guest-triggerable warnings (CVE-2013-0231).
 *
 * @example
 * import { PcibackDevice } from './pciback/device/index.js';
 * const dev = PcibackDevice.create({ host, msi, irqLines }, { global, logger });
 * dev.resetDevice();
 */
export {
  FAKE_IRQ_SHARED_CHECK_INTERVAL,
  PcibackDevice,
  type BackendDevice,
  type PcibackDeviceOptions,
  type PcibackDeviceStats,
} from './backend-device.js';
export { countOp, createOpCounts, type OpCounts } from './op-counts.js';
export {
  DEFAULT_RATELIMIT_BURST,
  DEFAULT_RATELIMIT_INTERVAL_MS,
  RateLimiter,
  type RateLimiterOptions,
} from './rate-limit.js';
