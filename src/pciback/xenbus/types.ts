// SPDX-License-Identifier: MIT
/**
 * What the XenBus backend (spec §7) is given and what it reports: the connector that maps
 * the frontend's page and binds its event channel (§7.3, injected so `pciback` never
 * imports the daemon or a platform), and the plain snapshots for the simulator's report.
 */
import type { DomId, Logger, XenbusEventCounters } from '../../platform/types.js';
import type { PcibackChannelStats } from '../channel/index.js';
import type { PcibackDevice } from '../device/index.js';
import type { Topology } from '../topology/index.js';

/** What the frontend published: `pci-op-ref` and `event-channel` (§7.1), as read. */
export interface FrontendEndpoints {
  /** Grant reference of the shared page (`%u`). */
  readonly grantRef: number;
  /** The unbound port the frontend allocated for the backend (`%u`). */
  readonly eventPort: number;
}

/** What the connector gets besides the endpoints. */
export interface FrontendConnectorOptions {
  /** The connection's topology: the channel resolves guest addresses through it. */
  readonly topology: Topology<PcibackDevice>;
  /** The xenbus device's event counters (kept for the device's lifetime). */
  readonly counters: XenbusEventCounters;
  readonly logger: Logger;
}

/** A connected channel as the xenbus layer uses it (`PcibackChannel` satisfies it). */
export interface XenbusChannel {
  /** Unbind the event channel, finish a claimed op and unmap the page; idempotent. */
  disconnect(): void;
  stats(): PcibackChannelStats;
}

/**
 * The connector's answer: the channel, or why it failed with nothing left mapped or
 * bound. `errno` (positive) goes into the fatal error node; EINVAL when absent.
 */
export type FrontendConnectResult =
  | { readonly ok: true; readonly channel: XenbusChannel }
  | { readonly ok: false; readonly error: string; readonly errno?: number };

/**
 * `xen_pcibk_do_attach`: map the frontend's page and bind its event channel with late EOI
 * (§7.3). The daemon passes `(domid, endpoints, options) => connectFrontend(xen, domid,
 * endpoints, options)`. May be async; a throw is treated as a failure.
 */
export type FrontendConnector = (
  domid: DomId,
  endpoints: FrontendEndpoints,
  options: FrontendConnectorOptions,
) => FrontendConnectResult | Promise<FrontendConnectResult>;

/** One exported device: real address → the address the guest sees (`vdev-N`). */
export interface ExportedDevice {
  /** `DDDD:BB:DD.F`. */
  readonly real: string;
  /** `DDDD:BB:DD.FF`, as written to `vdev-N`. */
  readonly guest: string;
}

/** A snapshot of one {@link PcibackXenbusDevice}. */
export interface PcibackXenbusDeviceStats {
  /** Backend directory, `/local/domain/<be>/backend/pci/<fe>/<devid>`. */
  readonly nodename: string;
  readonly frontend: string;
  readonly frontendDomid: number;
  /** The backend's state as last switched (the cached `dev->state`). */
  readonly state: number;
  readonly stateName: string;
  /** The frontend's state as last read; null before the first read. */
  readonly frontendState: number | null;
  readonly frontendStateName: string | null;
  /** Devices held by the connection's topology, in topology order. */
  readonly exported: readonly ExportedDevice[];
  /** The channel's counters while connected, null otherwise. */
  readonly channel: PcibackChannelStats | null;
  /** The xenbus device's event counters (sysfs `xenbus/`). */
  readonly events: XenbusEventCounters;
  /** The last fatal error written (`"<errno> <message>"`), null when none. */
  readonly error: string | null;
  /** True once the device was removed (`free_pdev` ran). */
  readonly removed: boolean;
}

/** A snapshot of the whole backend. */
export interface XenbusBackendStats {
  readonly backendDomid: number;
  readonly devices: readonly PcibackXenbusDeviceStats[];
}
