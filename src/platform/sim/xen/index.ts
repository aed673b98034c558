// SPDX-License-Identifier: MIT
/**
 * The simulated Xen hypervisor: domains and their memory, v1 grant tables, event channels
 * with Linux's late-EOI semantics, simulated jiffies, and round-trip benchmarks. The core
 * sees only the interfaces of `platform/types.ts`; composition roots and tests use these.
 */
export {
  GNTTAB_RESERVED_XENSTORE,
  SIM_XENSTORE_GFN,
  SimHypervisor,
  type CreateDomainOptions,
  type SimDomainInfo,
  type SimHypervisorOptions,
} from './hypervisor.js';
export {
  SimGuestHypercalls,
  DEFAULT_SPIN_ITERATIONS,
  type SimGuestHypercallsOptions,
} from './guest-hypercalls.js';
export { isSimGuestInit, type SimGuestInit, type SimGuestXenstore } from './guest-init.js';
export { SimXenstoreRings } from './xenstore-rings.js';
export {
  createGuestXenstoreTransport,
  type GuestXenstoreTransportOptions,
} from './guest-xenstore.js';
export {
  SimBackendEventChannels,
  type SimBackendEventChannelsOptions,
} from './backend-event-channels.js';
export { SimGrantMapper } from './grant-mapper.js';
export { GuestGrantTable } from './guest-grant-table.js';
export { MASK_REASON, type IrqState, type MaskReason } from './irq-info.js';
export { EVENT_EOI_DELAY_JIFFIES, EVENT_LOOP_TIMEOUT_JIFFIES } from './late-eoi.js';
export { DEFAULT_HZ, ManualJiffiesClock, RealJiffiesClock } from './jiffies.js';
export {
  DOMAIN_STATE,
  PORT_STATE,
  EventArea,
  type DomainState,
  type PortEntry,
  type PortState,
} from './event-area.js';
export {
  DEFAULT_MAX_GRANT_FRAMES,
  DEFAULT_MAX_PORTS,
  EVTCHN_ERRNO,
  GNTTAB_NR_RESERVED_ENTRIES,
  GRANT_ENTRIES_PER_FRAME,
  GRANT_ENTRY_V1,
  GTF,
  XEN_PAGE_SIZE,
} from './xen-abi.js';
export {
  measureBackendRoundTrip,
  measureGuestRoundTrip,
  serveRoundTripGuest,
  startRoundTripGuest,
  type MeasureRoundTripOptions,
  type RoundTripGuest,
  type RoundTripGuestOptions,
  type RoundTripResult,
  type RoundTripServer,
} from './round-trip.js';
export { ROUND_TRIP_WORD, type RoundTripGuestMessage } from './round-trip-protocol.js';
