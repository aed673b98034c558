// SPDX-License-Identifier: MIT
/**
 * The topology backends (spec §8): how exported devices are laid out for the guest.
 * `vpci` puts them on one virtual bus 0000:00; `passthrough` shows real addresses.
 *
 * @example
 * import { createTopology } from './pciback/topology/index.js';
 * const topo = createTopology<MyDevice>('vpci');
 * const guest = topo.add(dev, 0, (devid, addr) => writeVdev(devid, addr));
 * topo.get(guest.domain, guest.bus, guest.devfn) === dev; // true
 */
export {
  createTopology,
  DEFAULT_TOPOLOGY_KIND,
  type CreateTopologyOptions,
} from './create-topology.js';
export { PassthroughTopology, type PassthroughTopologyOptions } from './passthrough.js';
export {
  TOPOLOGY_ERRNO,
  TOPOLOGY_ERROR,
  TopologyError,
  type PublishDevice,
  type PublishRoot,
  type Topology,
  type TopologyAddOptions,
  type TopologyDevice,
  type TopologyErrorCode,
  type TopologyKind,
} from './types.js';
export {
  PCI_BASE_CLASS_BRIDGE,
  VPCI_REFUSES_BRIDGES,
  VPCI_SLOT_MAX,
  VpciTopology,
  type VpciTopologyOptions,
} from './vpci.js';
