// SPDX-License-Identifier: MIT
/**
 * {@link AerDeviceLookup} over the PCI stub's seized devices and the XenBus backend's
 * live connections: the stub says whether a device is seized and which domain it is
 * assigned to (`psdev->pdev != NULL`), the backend device whose topology holds it is the
 * connection, and that connection's channel (when connected) is `pdev->sh_info`.
 */
import type { PciAddress } from '../../pci/index.js';
import type { TopologyDevice } from '../topology/index.js';
import type { AerChannel, AerConnection, AerDeviceLookup, AerSeizedDevice } from './types.js';

/** The stub's view: `PciDevicePool` satisfies it. */
export interface AerStubDevices {
  /** The seized device at `address`, assigned or not. */
  get(address: PciAddress): Pick<TopologyDevice, 'address'> | undefined;
  /** The domain whose connection claimed the device, or null while it is free. */
  userOf(address: PciAddress): number | null;
}

/** One live connection of the backend: `PcibackXenbusDevice` satisfies it. */
export interface AerXenbusDevice {
  readonly frontendDomid: number;
  readonly topology: {
    find(dev: Pick<TopologyDevice, 'address'>): PciAddress | undefined;
  };
  /** The connected channel, `undefined` while not connected. */
  readonly channel: object | undefined;
}

/** The backend's live connections: `XenbusBackend` satisfies it. */
export interface AerXenbusDevices {
  devices(): readonly AerXenbusDevice[];
}

/** True when `channel` offers what the AER handlers need (a `PcibackChannel` does). */
export function isAerChannel(channel: unknown): channel is AerChannel {
  if (typeof channel !== 'object' || channel === null) return false;
  const c = channel as Partial<Record<keyof AerChannel, unknown>>;
  return (
    typeof c.connected === 'boolean' &&
    typeof c.frontendHasAerHandler === 'function' &&
    typeof c.aerRequest === 'function'
  );
}

function connectionOf(
  device: Pick<TopologyDevice, 'address'>,
  user: number,
  backend: AerXenbusDevices,
): AerConnection {
  const live = backend.devices();
  // The connection whose topology holds the device; a device claimed but not yet (or no
  // longer) in a topology belongs to the user's connection, if any.
  const holder =
    live.find((d) => d.topology.find(device) !== undefined) ??
    live.find((d) => d.frontendDomid === user);
  if (holder === undefined) return { frontendDomid: user, channel: undefined };
  const channel = holder.channel;
  return {
    frontendDomid: holder.frontendDomid,
    channel: isAerChannel(channel) && channel.connected ? channel : undefined,
  };
}

/**
 * `pcistub_device_find` + `psdev->pdev` for the AER handlers, from the stub's devices and
 * the backend's connections. Looked up afresh on every call, so it follows hot plug.
 *
 * @example
 * const aer = new PcibackAer({ devices: xenbusAerLookup(pool, backend), xs });
 */
export function xenbusAerLookup(stub: AerStubDevices, backend: AerXenbusDevices): AerDeviceLookup {
  return {
    find(address: PciAddress): AerSeizedDevice | undefined {
      const device = stub.get(address);
      if (device === undefined) return undefined;
      const user = stub.userOf(address);
      return {
        device,
        connection: user === null ? undefined : connectionOf(device, user, backend),
      };
    },
  };
}
