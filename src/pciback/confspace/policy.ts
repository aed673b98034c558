// SPDX-License-Identifier: MIT
/**
 * The two policy switches that decide how much of the config space a guest may change.
 * Both are plain mutable objects read on every access, so a sysfs-like writer (or a
 * test) can flip them while a guest is attached, as in the original.
 */

/**
 * Module-wide settings (`xen_pciback.permissive`, a 0644 module parameter: runtime
 * writable; spec §2.3).
 */
export interface GlobalConfigPolicy {
  /** Global permissive mode (§5.4). */
  permissive: boolean;
}

/** Per-device flags set through the driver's sysfs attributes (spec §3.2, §6.5). */
export interface DevicePolicy {
  /**
   * Per-device permissive mode (§5.4). The original can only set it; it is never
   * cleared while the device stays bound to pciback.
   */
  permissive: boolean;
  /**
   * Let the guest toggle INTX_DISABLE, MSI enable, MSI-X enable and Function Mask
   * through config writes (§5.8). The stub clears it when the device is released from
   * a guest (§6.3 step 7).
   */
  allowInterruptControl: boolean;
}

/** A fresh device policy: everything off. */
export function defaultDevicePolicy(): DevicePolicy {
  return { permissive: false, allowInterruptControl: false };
}
