// SPDX-License-Identifier: MIT
/**
 * The backend half of a PV connection on the simulated host (spec §7.3, "attach /
 * connect"): map the frontend's shared page, bind its event channel with late EOI, and
 * put a `PcibackChannel` on them. Used by the simulator's machine and by the benchmarks;
 * the XenBus control plane will call it when the frontend reaches Initialised.
 */
import type { SimHypervisor } from '../platform/sim/xen/hypervisor.js';
import {
  evtchnPort,
  grantRef,
  type DomId,
  type Logger,
  type XenbusEventCounters,
} from '../platform/types.js';
import { PcibackChannel } from '../pciback/channel/index.js';
import type { PcibackDevice } from '../pciback/device/index.js';
import type { Topology } from '../pciback/topology/index.js';

/** What the frontend published (`pci-op-ref`, `event-channel`). */
export interface FrontendEndpoints {
  readonly grantRef: number;
  readonly eventPort: number;
}

/** Options of {@link connectFrontend}. */
export interface ConnectFrontendOptions {
  readonly topology: Topology<PcibackDevice>;
  /** The xenbus device's event counters (kept across reconnects). */
  readonly counters: XenbusEventCounters;
  readonly logger?: Logger;
}

/** The connected channel, or why the connection failed (nothing is left mapped or bound). */
export type ConnectFrontendResult =
  | { readonly ok: true; readonly channel: PcibackChannel }
  | { readonly ok: false; readonly error: string };

/** Connect dom0's backend to the frontend of `domid`. Never throws for bad endpoints. */
export function connectFrontend(
  xen: SimHypervisor,
  domid: DomId,
  endpoints: FrontendEndpoints,
  options: ConnectFrontendOptions,
): ConnectFrontendResult {
  let ref;
  let port;
  try {
    ref = grantRef(endpoints.grantRef);
    port = evtchnPort(endpoints.eventPort);
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  const mapped = xen.grantMapper().mapGrantRef(domid, ref);
  if (!mapped.ok) {
    return {
      ok: false,
      error: `Cannot map grant ${ref} of domain ${domid}: status ${mapped.status}`,
    };
  }
  const channel = new PcibackChannel<PcibackDevice>({
    mapping: mapped.mapping,
    grantMapper: xen.grantMapper(),
    topology: options.topology,
    frontendDomid: domid,
    // Not a microtask: a busy guest's continuations must interleave with other I/O.
    schedule: (job) => setImmediate(job),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const bound = xen.eventChannels().bindInterdomain(domid, port, channel.handler, {
    lateEoi: true,
    counters: options.counters,
  });
  if (!bound.ok) {
    channel.disconnect(); // unmaps the page
    return {
      ok: false,
      error: `Cannot bind event channel ${port} of domain ${domid}: errno ${bound.errno}`,
    };
  }
  channel.attachEventChannel(bound.channel);
  return { ok: true, channel };
}
