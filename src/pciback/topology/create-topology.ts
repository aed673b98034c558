// SPDX-License-Identifier: MIT
/** The one place that picks a topology backend by kind (`xen_pcibk_backend`, §2.3). */
import { PassthroughTopology } from './passthrough.js';
import type { Topology, TopologyDevice, TopologyKind } from './types.js';
import { VpciTopology, type VpciTopologyOptions } from './vpci.js';

/** The backend used when none is configured: vpci, as the original (`passthrough=0`). */
export const DEFAULT_TOPOLOGY_KIND: TopologyKind = 'vpci';

/** Options of {@link createTopology}; passthrough uses only `logger`. */
export type CreateTopologyOptions = VpciTopologyOptions;

/**
 * A new, empty topology of the given kind for one frontend connection (the backend
 * `init` op, §7.2).
 *
 * @throws {TypeError} when `kind` is neither `'vpci'` nor `'passthrough'` (it may come
 *   from an unchecked configuration file).
 * @example
 * const topo = createTopology<MyDevice>(options.passthrough ? 'passthrough' : 'vpci');
 */
export function createTopology<D extends TopologyDevice>(
  kind: TopologyKind,
  options: CreateTopologyOptions = {},
): Topology<D> {
  switch (kind) {
    case 'vpci':
      return new VpciTopology<D>(options);
    case 'passthrough':
      return new PassthroughTopology<D>(
        options.logger === undefined ? {} : { logger: options.logger },
      );
    default:
      return assertNever(kind);
  }
}

function assertNever(value: never): never {
  throw new TypeError(
    `Cannot create a topology of kind ${JSON.stringify(value)}: expected "vpci" or "passthrough"`,
  );
}
