// SPDX-License-Identifier: MIT
/**
 * Plain {@link TopologyDevice}s for this folder's tests. Not part of the public surface
 * (not exported from `index.ts`).
 */
import { PciAddress } from '../../pci/index.js';
import type { TopologyDevice } from './types.js';

/** Class code of a PCI-to-PCI bridge (base 0x06, sub 0x04). */
export const CLASS_PCI_BRIDGE = 0x060400;
/** Class code of an Ethernet controller. */
export const CLASS_ETHERNET = 0x020000;

/** Options of {@link testDevice}. */
export interface TestDeviceOptions {
  readonly classCode?: number;
  readonly isVirtualFn?: boolean;
  /** Upstream bridges, nearest first, as `DDDD:BB:DD.F` strings. */
  readonly bridges?: readonly string[];
}

/** A device as the topology sees it; identity is the object, as for `struct pci_dev`. */
export interface TestDevice extends TopologyDevice {
  /** For assertion messages. */
  readonly name: string;
}

/**
 * A device at `address` (`DDDD:BB:DD.F` or `BB:DD.F`), an Ethernet function unless
 * told otherwise.
 *
 * @example
 * const vf = testDevice('05:10.0', { isVirtualFn: true });
 */
export function testDevice(address: string, options: TestDeviceOptions = {}): TestDevice {
  const parsed = PciAddress.parse(address);
  const bridges = Object.freeze((options.bridges ?? []).map((b) => PciAddress.parse(b)));
  return {
    name: parsed.toString(),
    address: parsed,
    classCode: options.classCode ?? CLASS_ETHERNET,
    isVirtualFn: options.isVirtualFn ?? false,
    upstreamBridges: () => bridges,
  };
}

/** A publish callback that records `[devid, guest address]` pairs. */
export function recorder(): {
  readonly calls: [number, string][];
  readonly publish: (devid: number, guestAddress: PciAddress) => void;
} {
  const calls: [number, string][] = [];
  return {
    calls,
    publish: (devid, guestAddress) => {
      calls.push([devid, guestAddress.toString()]);
    },
  };
}
