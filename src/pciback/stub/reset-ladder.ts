// SPDX-License-Identifier: MIT
/**
 * The stub's reset ladder (spec §6.3 `reset_device_state`, peers.md §5.1 and §8): try a
 * function-level reset first, then a power-management reset, and only then a secondary
 * bus reset, which also resets every other function behind the same bridge and is
 * therefore taken only when all of those are free.
 *
 * Rungs, in order, each used when the platform lists it in `resetMethods`:
 * 1. `flr`: PCIe FLR (Device Capabilities FLR bit);
 * 2. `af_flr`: the Advanced Features capability's FLR (with Transactions Pending);
 * 3. `pm`: D3hot then D0, when No_Soft_Reset is clear;
 * 4. `bus`: Secondary Bus Reset through the upstream bridge, refused while another
 *    function behind that bridge is used by a guest or bound to a dom0 driver other than
 *    the stub.
 *
 * Beyond the original (whose PCI core picks silently and whose failure is ignored),
 * every skipped rung says why, so "not resettable" comes with the reason users need
 * (peers.md §7.1).
 */
import type { PciAddress } from '../../pci/index.js';
import type {
  HostPciFunctionInfo,
  PciHostPlatform,
  PciResetMethod,
} from '../../platform/pci-host.js';

/** The methods the ladder tries, in order. */
export const RESET_LADDER = ['flr', 'af_flr', 'pm', 'bus'] as const;

/** One rung of {@link RESET_LADDER}. */
export type ResetLadderMethod = (typeof RESET_LADDER)[number];

/** A rung that was not used, and why. */
export interface ResetRungSkip {
  readonly method: ResetLadderMethod;
  readonly reason: string;
}

/** What {@link resetWithLadder} did. */
export type ResetLadderOutcome =
  | {
      readonly ok: true;
      readonly method: PciResetMethod;
      /** Rungs above the one used, with the reason each was passed over. */
      readonly skipped: readonly ResetRungSkip[];
    }
  | {
      readonly ok: false;
      /** `"<BDF>" is not resettable: <each rung's reason>`. */
      readonly reason: string;
      readonly skipped: readonly ResetRungSkip[];
    };

/** What the ladder needs to know about the functions around the one it resets. */
export interface ResetLadderOptions {
  /** The stub driver's name: a function bound to it is not in use by dom0. */
  readonly stubDriver: string;
  /** The domain whose guest uses a function, null when none does. */
  readonly userOf: (address: PciAddress) => number | null;
}

const WHY_NOT: Readonly<Record<ResetLadderMethod, string>> = {
  flr: 'no FLR (PCIe Device Capabilities has no FLR bit)',
  af_flr: 'no Advanced Features FLR (no AF capability with FLR and Transactions Pending)',
  pm: 'no PM reset (No_Soft_Reset is set or there is no PM capability)',
  bus: 'no bus reset (no bridge is upstream: the device is on a root bus)',
};

/** Every function on the host, by key, for walking bridges. */
function byKey(host: PciHostPlatform): Map<number, HostPciFunctionInfo> {
  return new Map(host.list().map((f) => [f.address.key, f]));
}

/** True when `bridge` is above `fn` (its upstream bridge, or that bridge's, ...). */
function isBehind(
  fn: HostPciFunctionInfo,
  bridge: PciAddress,
  all: ReadonlyMap<number, HostPciFunctionInfo>,
): boolean {
  const seen = new Set<number>();
  let up = fn.upstreamBridge;
  while (up !== null && !seen.has(up.key)) {
    if (up.equals(bridge)) return true;
    seen.add(up.key);
    up = all.get(up.key)?.upstreamBridge ?? null;
  }
  return false;
}

/**
 * Why a secondary bus reset of `address` is refused, or undefined when it may be done:
 * it needs an upstream bridge, and every other function behind that bridge must be free
 * (no guest uses it, and it is unbound or bound to the stub).
 *
 * @example
 * checkBusReset(host, gpu, { stubDriver: 'pciback', userOf });
 * // 'bus reset refused: "0000:01:00.1" behind bridge "0000:00:1c.0" is bound to dom0 driver "snd_hda_intel"'
 */
export function checkBusReset(
  host: PciHostPlatform,
  address: PciAddress,
  options: ResetLadderOptions,
): string | undefined {
  const all = byKey(host);
  const self = all.get(address.key);
  if (self === undefined) return `bus reset refused: "${address.toString()}" is not on the host`;
  const bridge = self.upstreamBridge;
  if (bridge === null) return WHY_NOT.bus;
  const busy: string[] = [];
  for (const fn of all.values()) {
    if (fn.address.equals(address) || !isBehind(fn, bridge, all)) continue;
    const name = `"${fn.address.toString()}"`;
    const user = options.userOf(fn.address);
    if (user !== null) busy.push(`${name} is used by domain ${user}`);
    else if (fn.driver !== null && fn.driver !== options.stubDriver) {
      busy.push(`${name} is bound to dom0 driver "${fn.driver}"`);
    }
  }
  if (busy.length === 0) return undefined;
  return `bus reset refused behind bridge "${bridge.toString()}": ${busy.join(', ')}`;
}

/**
 * Reset `address` with the first rung that applies and works.
 *
 * @example
 * const outcome = resetWithLadder(host, PciAddress.parse('0000:03:00.0'), {
 *   stubDriver: 'pciback',
 *   userOf: (a) => stub.userOf(a),
 * });
 * // { ok: true, method: 'flr', skipped: [] } for an NVMe drive
 */
export function resetWithLadder(
  host: PciHostPlatform,
  address: PciAddress,
  options: ResetLadderOptions,
): ResetLadderOutcome {
  const name = address.toString();
  const info = host.info(address);
  if (info === undefined) {
    return { ok: false, reason: `"${name}" is not resettable: it is not on the host`, skipped: [] };
  }
  const skipped: ResetRungSkip[] = [];
  for (const method of RESET_LADDER) {
    if (!info.resetMethods.includes(method)) {
      skipped.push({ method, reason: WHY_NOT[method] });
      continue;
    }
    if (method === 'bus') {
      const refused = checkBusReset(host, address, options);
      if (refused !== undefined) {
        skipped.push({ method, reason: refused });
        continue;
      }
    }
    let failure: string;
    try {
      const outcome = host.reset(address, method);
      if (outcome.ok) return { ok: true, method: outcome.method, skipped };
      failure = outcome.reason;
    } catch (err) {
      failure = err instanceof Error ? err.message : String(err);
    }
    skipped.push({ method, reason: `${method} failed: ${failure}` });
  }
  return {
    ok: false,
    reason: `"${name}" is not resettable: ${skipped.map((s) => s.reason).join('; ')}`,
    skipped,
  };
}
