// SPDX-License-Identifier: MIT
/**
 * The side effects of simulated hardware, handed to a device through its constructor
 * (vm-superio's `Trigger`): the simulator, the Linux platform and tests each pass their
 * own, so several hosts can live in one process. Every hook is optional.
 */

/** One MSI or MSI-X memory write the function sent. */
export interface MsiMessage {
  /** Message address (64-bit for 64-bit capable MSI and for MSI-X). */
  readonly address: bigint;
  /** Message data (for multi-message MSI the vector is in the low bits). */
  readonly data: number;
  /** Which mechanism sent it. */
  readonly source: 'msi' | 'msix';
  /** MSI vector or MSI-X table entry. */
  readonly vector: number;
}

/** What an injected PCIe error did (see `SimulatedFunction.injectAerError`). */
export interface AerErrorEvent {
  /** Correctable error bits that are not masked. */
  readonly correctable: number;
  /** Uncorrectable error bits that are not masked and have non-fatal severity. */
  readonly nonFatal: number;
  /** Uncorrectable error bits that are not masked and have fatal severity. */
  readonly fatal: number;
  /** True when at least one fatal error was detected. */
  readonly isFatal: boolean;
  /**
   * True when the function would send an error message upstream: the matching Device
   * Control reporting enable (or, for uncorrectable errors, SERR# enable) is set.
   */
  readonly reported: boolean;
}

/** VF Enable or NumVFs of an SR-IOV physical function changed. */
export interface SriovChange {
  readonly enabled: boolean;
  readonly numVfs: number;
}

/** Side effects of one simulated function. */
export interface DeviceHooks {
  /** An MSI/MSI-X message was sent (the memory write reached the host bridge). */
  onMessage?(message: MsiMessage): void;
  /** The function's INTx output changed level (level-triggered, active when true). */
  onIntx?(asserted: boolean): void;
  /** An injected error was detected and not entirely masked. */
  onError?(event: AerErrorEvent): void;
  /** VF Enable changed (VFs appear on true, disappear on false). */
  onSriovChange?(change: SriovChange): void;
  /** A bridge's Secondary Bus Reset bit changed: devices below are held in reset. */
  onSecondaryBusReset?(asserted: boolean): void;
}
