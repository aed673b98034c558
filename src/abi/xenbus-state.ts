// SPDX-License-Identifier: MIT
/**
 * `enum xenbus_state` (Xen `xen/include/public/io/xenbus.h`): the value each side writes
 * to its `state` key in xenstore, as a decimal string (spec/pciback.md §7).
 */

/**
 * The XenBus states, keyed like the C names without `XenbusState`
 * (`XENBUS_STATE.Connected` is `XenbusStateConnected`).
 */
export const XENBUS_STATE = {
  Unknown: 0,
  Initialising: 1,
  /** The backend waits for the frontend's details (hotplug done). */
  InitWait: 2,
  /** The frontend has published its details. */
  Initialised: 3,
  Connected: 4,
  /** The device is being closed: the other end should close too. */
  Closing: 5,
  Closed: 6,
  /** Hot attach/detach in progress (used by pciback). */
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;

/** A XenBus state value. */
export type XenbusState = (typeof XENBUS_STATE)[keyof typeof XENBUS_STATE];
/** A XenBus state name, e.g. `'Connected'`. */
export type XenbusStateName = keyof typeof XENBUS_STATE;

const NAMES: readonly XenbusStateName[] = Object.freeze(
  Object.keys(XENBUS_STATE) as XenbusStateName[],
);

/** True when `value` is one of the nine states (0–8). */
export function isXenbusState(value: unknown): value is XenbusState {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 8;
}

/**
 * The name of a state (`'Connected'` for 4), or `undefined` for any other value (a peer
 * may write anything to its `state` key).
 */
export function xenbusStateName(state: number): XenbusStateName | undefined {
  return isXenbusState(state) ? NAMES[state] : undefined;
}
