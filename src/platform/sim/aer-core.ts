// SPDX-License-Identifier: MIT
/**
 * dom0's PCIe AER recovery core for the simulated host (spec §11 "AER core"; Linux
 * `drivers/pci/pcie/err.c` `pcie_do_recovery`, summarised): an uncorrectable error is
 * injected into a function (an {@link AerCoreDevice}: simulated hardware, or a sysfs
 * function whose config space gets the error bits), then the drivers bound to the functions
 * below the same bridge are called as Linux calls them:
 *
 * 1. `error_detected(state)` on every function (frozen for a fatal error, normal
 *    otherwise); the votes are merged (`merge_result`), starting from CAN_RECOVER. A
 *    function without a driver or without `error_detected` votes NO_AER_DRIVER (NONE for
 *    a bridge), which makes the recovery fail.
 * 2. Fatal (frozen): the link is reset (`aer_root_reset`: a secondary bus reset of the
 *    port above, i.e. a conventional reset of every function below; sticky bits such as
 *    the AER status survive it).
 * 3. CAN_RECOVER: the vote becomes RECOVERED and `mmio_enabled` is called on every
 *    function that has it (votes merged).
 * 4. NEED_RESET (from step 1 or 3): the vote becomes RECOVERED and `slot_reset` is called
 *    on every function that has it (votes merged). As in Linux, the core resets nothing
 *    here itself (its "TODO: platform-specific slot reset").
 * 5. RECOVERED: `resume` on every function that has it, then the detecting function's
 *    error status is cleared: Device Status (`pcie_clear_device_status`) and the
 *    non-fatal uncorrectable bits (`pci_aer_clear_nonfatal_status`). Anything else: the
 *    recovery failed and the status stays.
 *
 * Deviations and simplifications:
 * - The simulator has no bridge hierarchy to walk; the caller lists the functions below
 *   the bridge ({@link AerCoreOptions.affected}), by default only the detecting one.
 * - The link reset saves each function's state before and restores it after
 *   ({@link AerCoreOptions.restoreAfterReset}, default true). Linux's
 *   `pci_bus_error_reset` does not: drivers restore in `slot_reset`. pciback forwards
 *   `slot_reset` to the guest, whose config writes are virtualised (BAR writes never reach
 *   the device), so on real Xen a passed-through device stays in its post-reset state
 *   after a fatal error; pass `false` to see that.
 * - On the frozen path the fatal uncorrectable bits are cleared too (Linux clears them on
 *   its DPC path and clearing them here lets the next injection start a new error).
 * - The per-device `error_state` machine (`pci_dev_set_io_state`) is not modelled: each
 *   recovery starts from the normal state.
 * - Error reporting enables are not required: the error is treated as reported to the
 *   root port (Linux's `pci_aer_init` enables reporting at enumeration, which the
 *   simulator's PCI core does not do); {@link AerRecoveryResult.injected} says whether
 *   the function's own enables would have sent the message.
 */
import {
  PCI_CAP_ID,
  PCI_ERR_UNC_COMP_TIME,
  PCI_ERR_UNC_MALF_TLP,
  PCI_ERR_UNC_MASK,
  PCI_ERR_UNC_SEVER_DEFAULT,
  PCI_ERR_UNCOR_MASK_OFFSET,
  PCI_ERR_UNCOR_SEVER_OFFSET,
  PCI_ERR_UNCOR_STATUS_OFFSET,
  PCI_EXP_DEVSTA_OFFSET,
  PCI_EXT_CAP_ID,
  PCI_HEADER_TYPE_BRIDGE,
} from '../../abi/pci-regs.js';
import { PCI_CHANNEL_IO, PCI_ERS_RESULT, type PciChannelState } from '../../abi/pciif.js';
import type { AerErrorEvent } from '../../devices/index.js';
import type { PciAddress } from '../../pci/address.js';
import {
  findCapability,
  findExtendedCapability,
  type ConfigReader,
} from '../../pci/capabilities.js';
import type { SavedConfigState } from '../../pci/config-state.js';
import {
  SILENT_LOGGER,
  type ConfigAccessSize,
  type ConfigReadResult,
  type Logger,
} from '../types.js';

/**
 * A function as the AER core reaches it: config space, the error injection (what the
 * hardware records when it detects the errors) and the link reset of the port above.
 * The simulator's `SimHostPciDevice` is one (its hardware records the errors); the Linux
 * platform's stub device is another (the error bits are set in the function's config
 * space: on a fake sysfs tree through the fake; a real kernel would need aer-inject).
 */
export interface AerCoreDevice {
  readonly address: PciAddress;
  readonly headerType: number;
  readonly configSizeBytes: number;
  readConfig(byteOffset: number, sizeBytes: ConfigAccessSize): ConfigReadResult;
  writeConfig(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): number;
  /** The function detects `uncorrectable` (`PCI_ERR_UNC_*`): AER status, Device Status. */
  injectAerError(errors: { readonly uncorrectable: number }): AerErrorEvent;
  /** The port's secondary bus reset as it reaches this function (sticky bits survive). */
  linkReset(): void;
  /** `pci_save_state`. */
  saveState(): SavedConfigState;
  /** `pci_restore_state`. */
  restoreState(state: SavedConfigState): void;
}

function readerOf(device: AerCoreDevice): ConfigReader {
  return {
    sizeBytes: device.configSizeBytes,
    read8: (at) => device.readConfig(at, 1).value,
    read16: (at) => device.readConfig(at, 2).value,
    read32: (at) => device.readConfig(at, 4).value,
  };
}

function aerCapOf(device: AerCoreDevice): number | undefined {
  return device.configSizeBytes > 256
    ? findExtendedCapability(readerOf(device), PCI_EXT_CAP_ID.ERR)
    : undefined;
}

/**
 * A driver's `struct pci_error_handlers`, as the AER core calls them. Every callback is
 * optional, as in Linux. Votes are `pci_ers_result` values ({@link PCI_ERS_RESULT}).
 */
export interface PciErrorHandlers {
  readonly errorDetected?: (state: PciChannelState) => number | Promise<number>;
  readonly mmioEnabled?: () => number | Promise<number>;
  readonly slotReset?: () => number | Promise<number>;
  readonly resume?: () => void | Promise<void>;
}

/** One function below the bridge, with the error handlers of the driver bound to it. */
export interface AerCoreFunction {
  readonly device: AerCoreDevice;
  /** `dev->driver->err_handler`; `undefined` when no driver (or none with handlers) is bound. */
  readonly handlers: PciErrorHandlers | undefined;
}

/** Options of {@link injectAndRecover}. */
export interface AerCoreOptions {
  /** Inject a fatal error (the channel is frozen and the link reset); default non-fatal. */
  readonly fatal?: boolean;
  /**
   * The `PCI_ERR_UNC_*` bits to inject. Default: one bit the function's severity
   * register classifies as asked (Malformed TLP for fatal, Completion Timeout for
   * non-fatal when those qualify) and that is not masked.
   */
  readonly uncorrectable?: number;
  /**
   * Every function below the same bridge, the detecting one included
   * (`pci_walk_bridge`); walked in address order. Default: the detecting function only.
   */
  readonly affected?: readonly AerCoreFunction[];
  /** Save and restore each function's state around the link reset (default true). */
  readonly restoreAfterReset?: boolean;
  readonly logger?: Logger;
}

/** One callback the core made. */
export interface AerCoreCall {
  /** The function's real address. */
  readonly address: string;
  readonly callback: 'error_detected' | 'mmio_enabled' | 'slot_reset' | 'resume';
  /** The driver's vote; `null` for `resume`. */
  readonly result: number | null;
}

/** What {@link injectAndRecover} did. */
export interface AerRecoveryResult {
  /** The detecting function. */
  readonly address: string;
  /** The `PCI_ERR_UNC_*` bits injected. */
  readonly uncorrectable: number;
  /** What the hardware recorded (unmasked bits by severity; `reported` per its enables). */
  readonly injected: AerErrorEvent;
  /** False when every injected bit was masked: nothing was detected, nothing recovered. */
  readonly detected: boolean;
  /** `pci_channel_io_frozen` (2) for a fatal error, `pci_channel_io_normal` (1) otherwise. */
  readonly channelState: PciChannelState;
  /** The merged vote at the end (`pci_ers_result`). */
  readonly status: number;
  /** Its name, e.g. `RECOVERED`. */
  readonly statusName: string;
  /** True when the status ended RECOVERED (and `resume` was broadcast). */
  readonly recovered: boolean;
  /** Every callback made, in order. */
  readonly calls: readonly AerCoreCall[];
  /** Functions that voted for lacking `error_detected` (no driver or no handler). */
  readonly withoutHandler: readonly string[];
  /** Functions reset with the link (fatal errors only). */
  readonly linkReset: readonly string[];
  /** True when the detecting function's error status was cleared (recovered). */
  readonly statusCleared: boolean;
}

const ERS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(PCI_ERS_RESULT).map(([name, value]) => [value, name]),
);

/** The name of a `pci_ers_result` (`RECOVERED`), or `unknown(<n>)`. */
export function ersResultName(result: number): string {
  return ERS_NAMES[result] ?? `unknown(${result})`;
}

/**
 * Linux `merge_result`: fold one driver's vote into the recovery status. NO_AER_DRIVER
 * wins, NONE is ignored, CAN_RECOVER and RECOVERED take the new vote, DISCONNECT only
 * yields to NEED_RESET, anything else stays.
 */
export function mergeErsResult(orig: number, vote: number): number {
  if (vote === PCI_ERS_RESULT.NO_AER_DRIVER) return PCI_ERS_RESULT.NO_AER_DRIVER;
  if (vote === PCI_ERS_RESULT.NONE) return orig;
  switch (orig) {
    case PCI_ERS_RESULT.CAN_RECOVER:
    case PCI_ERS_RESULT.RECOVERED:
      return vote;
    case PCI_ERS_RESULT.DISCONNECT:
      return vote === PCI_ERS_RESULT.NEED_RESET ? PCI_ERS_RESULT.NEED_RESET : orig;
    default:
      return orig;
  }
}

function lowestBit(bits: number): number {
  return (bits & -bits) >>> 0;
}

/** An unmasked `PCI_ERR_UNC_*` bit of the asked severity (see {@link AerCoreOptions}). */
function chooseUncorrectable(device: AerCoreDevice, fatal: boolean): number {
  const aer = aerCapOf(device);
  const severity =
    aer === undefined
      ? PCI_ERR_UNC_SEVER_DEFAULT
      : device.readConfig(aer + PCI_ERR_UNCOR_SEVER_OFFSET, 4).value;
  const mask = aer === undefined ? 0 : device.readConfig(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4).value;
  const preferred = fatal ? PCI_ERR_UNC_MALF_TLP : PCI_ERR_UNC_COMP_TIME;
  const candidates = ((fatal ? severity : ~severity) & ~mask & PCI_ERR_UNC_MASK) >>> 0;
  if ((candidates & preferred) !== 0) return preferred;
  // Everything of that severity masked: inject the preferred bit anyway (not detected).
  return candidates !== 0 ? lowestBit(candidates) : preferred;
}

/** `pcie_clear_device_status` + `pci_aer_clear_nonfatal_status` (+ fatal bits when frozen). */
function clearErrorStatus(device: AerCoreDevice, frozen: boolean): void {
  const exp = findCapability(readerOf(device), PCI_CAP_ID.EXP);
  if (exp !== undefined) {
    const devsta = device.readConfig(exp + PCI_EXP_DEVSTA_OFFSET, 2).value;
    device.writeConfig(exp + PCI_EXP_DEVSTA_OFFSET, 2, devsta); // RW1C: clears what was set
  }
  const aer = aerCapOf(device);
  if (aer !== undefined) {
    const status = device.readConfig(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4).value;
    const severity = device.readConfig(aer + PCI_ERR_UNCOR_SEVER_OFFSET, 4).value;
    const clear = frozen ? status : status & ~severity;
    if (clear !== 0) device.writeConfig(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4, clear >>> 0);
  }
}

/** The AER core's state for one recovery. */
class Recovery {
  readonly calls: AerCoreCall[] = [];
  readonly withoutHandler: string[] = [];
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Run one callback; a throwing driver votes NONE (Linux drivers cannot throw). */
  async vote(
    fn: AerCoreFunction,
    callback: Exclude<AerCoreCall['callback'], 'resume'>,
    run: () => number | Promise<number>,
  ): Promise<number> {
    const address = fn.device.address.toString();
    let result: number;
    try {
      result = await run();
    } catch (cause) {
      this.#logger.error(
        { cause, device: address, callback },
        `Cannot get the ${callback} vote of "${address}": its handler threw`,
      );
      result = PCI_ERS_RESULT.NONE;
    }
    this.calls.push({ address, callback, result });
    return result;
  }

  /** `report_error_detected`. */
  async errorDetected(fn: AerCoreFunction, state: PciChannelState): Promise<number> {
    const errorDetected = fn.handlers?.errorDetected;
    if (errorDetected === undefined) {
      const address = fn.device.address.toString();
      this.withoutHandler.push(address);
      this.#logger.info(
        { device: address },
        `"${address}": can't recover (no error_detected callback)`,
      );
      return fn.device.headerType === PCI_HEADER_TYPE_BRIDGE
        ? PCI_ERS_RESULT.NONE
        : PCI_ERS_RESULT.NO_AER_DRIVER;
    }
    return this.vote(fn, 'error_detected', () => errorDetected(state));
  }

  /** `report_resume`. */
  async resume(fn: AerCoreFunction): Promise<void> {
    const resume = fn.handlers?.resume;
    if (resume === undefined) return;
    const address = fn.device.address.toString();
    try {
      await resume();
    } catch (cause) {
      this.#logger.error(
        { cause, device: address },
        `Cannot resume "${address}": its handler threw`,
      );
    }
    this.calls.push({ address, callback: 'resume', result: null });
  }
}

/**
 * Inject an uncorrectable error into `target`'s hardware and run dom0's recovery over
 * the functions below its bridge (see the module comment). Resolves when every callback
 * has answered; rejects only for caller faults.
 *
 * @throws {RangeError} when `target` is not among `options.affected`.
 * @example
 * const result = await injectAndRecover(
 *   { device: host, handlers: pcibackAer.handlersFor(host.address) },
 *   { fatal: true },
 * );
 * result.calls.map((c) => c.callback); // ['error_detected', 'slot_reset', 'resume'] ...
 */
export async function injectAndRecover(
  target: AerCoreFunction,
  options: AerCoreOptions = {},
): Promise<AerRecoveryResult> {
  const logger = options.logger ?? SILENT_LOGGER;
  const fatal = options.fatal === true;
  const device = target.device;
  const address = device.address.toString();
  const walk = [...(options.affected ?? [target])].sort((a, b) =>
    a.device.address.compare(b.device.address),
  );
  if (!walk.some((f) => f.device === device)) {
    throw new RangeError(
      `Cannot recover "${address}": it is not among the functions below its bridge`,
    );
  }
  const uncorrectable = (options.uncorrectable ?? chooseUncorrectable(device, fatal)) >>> 0;
  const injected = device.injectAerError({ uncorrectable });
  const recovery = new Recovery(logger);
  const detected = injected.fatal !== 0 || injected.nonFatal !== 0;
  const state: PciChannelState =
    injected.fatal !== 0 ? PCI_CHANNEL_IO.frozen : PCI_CHANNEL_IO.normal;
  const result = (
    status: number,
    extra: { linkReset?: string[]; cleared?: boolean } = {},
  ): AerRecoveryResult => ({
    address,
    uncorrectable,
    injected,
    detected,
    channelState: state,
    status,
    statusName: ersResultName(status),
    recovered: status === PCI_ERS_RESULT.RECOVERED && detected,
    calls: recovery.calls,
    withoutHandler: recovery.withoutHandler,
    linkReset: extra.linkReset ?? [],
    statusCleared: extra.cleared ?? false,
  });
  if (!detected) {
    logger.info(
      { device: address, uncorrectable },
      `"${address}": injected error masked, nothing to recover`,
    );
    return result(PCI_ERS_RESULT.NONE);
  }

  logger.info(
    { device: address, fatal: injected.fatal !== 0 },
    `"${address}": AER: broadcast error_detected message`,
  );
  let status: number = PCI_ERS_RESULT.CAN_RECOVER;
  for (const fn of walk) status = mergeErsResult(status, await recovery.errorDetected(fn, state));

  const linkReset: string[] = [];
  if (state === PCI_CHANNEL_IO.frozen) {
    // aer_root_reset: the port's secondary bus reset resets every function below it.
    const restore = options.restoreAfterReset ?? true;
    for (const fn of walk) {
      const saved = restore ? fn.device.saveState() : undefined;
      fn.device.linkReset();
      if (saved !== undefined) fn.device.restoreState(saved);
      linkReset.push(fn.device.address.toString());
    }
    logger.info({ device: address }, `"${address}": AER: link has been reset`);
  }

  if (status === PCI_ERS_RESULT.CAN_RECOVER) {
    status = PCI_ERS_RESULT.RECOVERED;
    for (const fn of walk) {
      const mmioEnabled = fn.handlers?.mmioEnabled;
      if (mmioEnabled === undefined) continue;
      status = mergeErsResult(status, await recovery.vote(fn, 'mmio_enabled', () => mmioEnabled()));
    }
  }
  if (status === PCI_ERS_RESULT.NEED_RESET) {
    status = PCI_ERS_RESULT.RECOVERED;
    for (const fn of walk) {
      const slotReset = fn.handlers?.slotReset;
      if (slotReset === undefined) continue;
      status = mergeErsResult(status, await recovery.vote(fn, 'slot_reset', () => slotReset()));
    }
  }
  if (status !== PCI_ERS_RESULT.RECOVERED) {
    logger.warn(
      { device: address, status },
      `"${address}": AER: device recovery failed (${ersResultName(status)})`,
    );
    return result(status, { linkReset });
  }
  for (const fn of walk) await recovery.resume(fn);
  clearErrorStatus(device, state === PCI_CHANNEL_IO.frozen);
  logger.info({ device: address }, `"${address}": AER: device recovery successful`);
  return result(status, { linkReset, cleared: true });
}
