// SPDX-License-Identifier: MIT
/**
 * dom0's side of guest xenstore rings on the simulated host: what C xenstored's
 * `map_interface` and `new_domain` do on INTRODUCE (spec/xenstore.md §7.1). The ring is
 * reached through the reserved grant ref 1 (GNTTAB_RESERVED_XENSTORE), as C does, so the
 * `gfn` of the request is ignored; the guest's store port is bound as an ordinary
 * (not late-EOI) interdomain channel of dom0.
 */
import { xsErrorNameForErrno } from '../../../abi/index.js';
import type {
  XsDomainRing,
  XsDomainRingProvider,
  XsDomainRingResult,
} from '../../../xenstore/server/index.js';
import type { DomId, EvtchnPort, GrantRef } from '../../types.js';
import { DOM0 } from '../../types.js';
import { GNTTAB_RESERVED_XENSTORE, type SimHypervisor } from './hypervisor.js';

/**
 * The ring provider of an `XsServer` running as dom0 on a {@link SimHypervisor}.
 *
 * @example
 * const xen = new SimHypervisor();
 * const server = new XsServer({ domainRings: new SimXenstoreRings(xen) });
 * const { domid } = xen.createDomain({ memoryPages: 64 });
 * const { gfn, port } = xen.xenstoreOf(domid)!;
 * await dom0.introduce(domid, { gfn, port }); // the guest's ring is now served
 */
export class SimXenstoreRings implements XsDomainRingProvider {
  readonly #hv: SimHypervisor;
  #open = 0;

  constructor(hv: SimHypervisor) {
    this.#hv = hv;
  }

  /** Rings currently connected (mapped and bound). */
  get openRings(): number {
    return this.#open;
  }

  /**
   * {@inheritDoc XsDomainRingProvider.connect}
   *
   * A grant that cannot be mapped (no such domain, ref 1 not granted to dom0) gives
   * ENOENT, as C reports its mapping failure; a port that cannot be bound gives the
   * bind's errno name (EINVAL for one that is not unbound for dom0).
   */
  connect(domid: number, _gfn: number, port: number): XsDomainRingResult {
    if (!Number.isInteger(domid) || domid <= 0 || domid > 0xffff) {
      return { ok: false, error: 'ENOENT' };
    }
    const mapper = this.#hv.grantMapper(DOM0);
    const mapped = mapper.mapGrantRef(domid as DomId, GNTTAB_RESERVED_XENSTORE as GrantRef);
    if (!mapped.ok) return { ok: false, error: 'ENOENT' };
    const { mapping } = mapped;
    let onEvent: () => void = () => {
      /* not registered yet */
    };
    const bound = this.#hv.eventChannels(DOM0).bindInterdomain(
      domid as DomId,
      port as EvtchnPort,
      () => {
        onEvent();
      },
      { lateEoi: false },
    );
    if (!bound.ok) {
      mapper.unmapGrantRef(mapping.handle);
      return { ok: false, error: xsErrorNameForErrno(-bound.errno) ?? 'EINVAL' };
    }
    const { channel } = bound;
    this.#open += 1;
    let closed = false;
    const ring: XsDomainRing = {
      page: mapping.bytes,
      notify: () => {
        channel.notify();
      },
      onEvent: (cb) => {
        onEvent = cb;
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.#open -= 1;
        onEvent = () => {
          /* closed */
        };
        channel.unbind();
        mapper.unmapGrantRef(mapping.handle);
      },
    };
    return { ok: true, ring };
  }
}
