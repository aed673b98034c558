// SPDX-License-Identifier: MIT
/**
 * pciback's PCIe AER handlers (spec §6.6, `xen_pcibk_error_detected`,
 * `xen_pcibk_mmio_enabled`, `xen_pcibk_slot_reset`, `xen_pcibk_error_resume` and
 * `kill_domain_by_device` in `pci_stub.c`): what dom0's AER core calls for a seized device,
 * forwarded to the guest that owns it through the shared page's `aer_op`.
 *
 * The table of §6.6, per handler (default result; what happens when):
 *
 * | condition                          | error_detected | mmio_enabled | slot_reset | resume |
 * |------------------------------------|----------------|--------------|------------|--------|
 * | default result                     | CAN_RECOVER    | RECOVERED    | RECOVERED  | (void) |
 * | not seized or not assigned         | log            | log          | log        | log    |
 * | assigned, not connected            | kill           | kill         | kill       | kill   |
 * | `XEN_PCIB_AERHANDLER` clear        | kill           | log          | log        | kill   |
 * | otherwise: ask the guest, cmd      | 6 (state)      | 8 (normal)   | 9 (normal) | 7      |
 * | guest answered NONE or DISCONNECT  | kill           | kill         | kill       | —      |
 *
 * A timed-out request returns the default (the channel's `common_process`), so a guest
 * that advertises a handler and never answers is *not* killed; only an explicit NONE or
 * DISCONNECT (or no handler, or no connection) is.
 *
 * Deviations:
 * - The handlers are serialised among themselves, as the original's `pcistub_sem` (taken
 *   for write) does; the stub's other users of that semaphore (put/release) are not part
 *   of this lock.
 * - The kill's transaction is retried on EAGAIN a bounded number of times
 *   ({@link DEFAULT_KILL_RETRIES}; the original retries forever), so a store that
 *   always conflicts cannot hold the lock for ever.
 * - A failed write inside the transaction is logged (the original ignores the return
 *   value of `xenbus_printf`); the transaction is still committed, as there.
 */
import {
  PCI_CHANNEL_IO,
  PCI_ERS_RESULT,
  XEN_PCI_OP,
  type PciChannelState,
} from '../../abi/pciif.js';
import type { PciAddress } from '../../pci/index.js';
import { SILENT_LOGGER, type Logger } from '../../platform/types.js';
import type { XsClient } from '../../xenstore/client/index.js';
import type { AerDeviceLookup, AerSeizedDevice } from './types.js';

/** The key and value of the kill request (`xenbus_printf(xbt, nodename, "aerState", "aerfail")`). */
export const AER_STATE_KEY = 'aerState';
/** See {@link AER_STATE_KEY}. */
export const AER_STATE_FAILED = 'aerfail';

/** EAGAIN retries of the kill's transaction (the original loops without a bound). */
export const DEFAULT_KILL_RETRIES = 64;

/**
 * The backend directory `kill_domain_by_device` writes to. Hard-coded to backend domain 0
 * and device 0 in the original (`"/local/domain/0/backend/pci/%d/0"`), whatever domain
 * pciback runs in and whatever devid the connection has; kept so.
 */
export function aerKillNodename(frontendDomid: number): string {
  return `/local/domain/0/backend/pci/${frontendDomid}/0`;
}

/** The four callbacks, named as in `struct pci_error_handlers`. */
export type AerCallbackName = 'error_detected' | 'mmio_enabled' | 'slot_reset' | 'resume';

/** Options of {@link PcibackAer}. */
export interface PcibackAerOptions {
  /** `pcistub_device_find` and the connection each device is assigned to. */
  readonly devices: AerDeviceLookup;
  /** dom0's xenstore connection, for `kill_domain_by_device`. */
  readonly xs: Pick<XsClient, 'transaction'>;
  readonly logger?: Logger;
  /** EAGAIN retries of the kill's transaction (default {@link DEFAULT_KILL_RETRIES}). */
  readonly killRetries?: number;
}

/** One `kill_domain_by_device`, as {@link PcibackAer.stats} lists it. */
export interface AerKill {
  /** The real address of the device whose error caused it. */
  readonly device: string;
  readonly frontendDomid: number;
  readonly callback: AerCallbackName;
  /** True when the transaction writing `aerState` committed. */
  readonly written: boolean;
}

/** Counters of {@link PcibackAer}. */
export interface PcibackAerStats {
  /** Handler calls, by callback. */
  readonly calls: Readonly<Record<AerCallbackName, number>>;
  /** Requests forwarded to a guest (`common_process`). */
  readonly forwarded: number;
  /** Every kill, oldest first. */
  readonly kills: readonly AerKill[];
}

/**
 * A driver's `struct pci_error_handlers` for one device, as dom0's AER core calls them.
 * Results are `pci_ers_result` values ({@link PCI_ERS_RESULT}).
 */
export interface PcibackErrorHandlers {
  errorDetected(state: PciChannelState): Promise<number>;
  mmioEnabled(): Promise<number>;
  slotReset(): Promise<number>;
  resume(): Promise<void>;
}

interface HandlerRow {
  readonly callback: AerCallbackName;
  readonly cmd: number;
  readonly defaultResult: number;
  /** What to do when the frontend has no AER handler: kill, or only log. */
  readonly noHandler: 'kill' | 'log';
  /** Whether a NONE / DISCONNECT answer kills (resume ignores the answer). */
  readonly killOnNone: boolean;
}

const ROWS: Readonly<Record<AerCallbackName, HandlerRow>> = {
  error_detected: {
    callback: 'error_detected',
    cmd: XEN_PCI_OP.aer_detected,
    defaultResult: PCI_ERS_RESULT.CAN_RECOVER,
    noHandler: 'kill',
    killOnNone: true,
  },
  mmio_enabled: {
    callback: 'mmio_enabled',
    cmd: XEN_PCI_OP.aer_mmio,
    defaultResult: PCI_ERS_RESULT.RECOVERED,
    noHandler: 'log',
    killOnNone: true,
  },
  slot_reset: {
    callback: 'slot_reset',
    cmd: XEN_PCI_OP.aer_slotreset,
    defaultResult: PCI_ERS_RESULT.RECOVERED,
    noHandler: 'log',
    killOnNone: true,
  },
  resume: {
    callback: 'resume',
    cmd: XEN_PCI_OP.aer_resume,
    // `common_process(..., PCI_ERS_RESULT_RECOVERED)`; the handler returns void.
    defaultResult: PCI_ERS_RESULT.RECOVERED,
    noHandler: 'kill',
    killOnNone: false,
  },
};

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * pciback's AER error handlers. One instance per pciback (its lock is the driver's
 * `pcistub_sem`). No method rejects: every failure is logged and answered with the
 * callback's default, as nothing dom0's AER core does may be stopped by a guest.
 *
 * @example
 * const aer = new PcibackAer({ devices: xenbusAerLookup(pool, backend), xs, logger });
 * const vote = await aer.errorDetected(PciAddress.parse('0000:03:00.0'), PCI_CHANNEL_IO.frozen);
 * // CAN_RECOVER (2) by default; the guest's answer when it has an AER handler
 */
export class PcibackAer {
  readonly #devices: AerDeviceLookup;
  readonly #xs: Pick<XsClient, 'transaction'>;
  readonly #logger: Logger;
  readonly #killRetries: number;
  /** `pcistub_sem`: one handler at a time. */
  #lock: Promise<unknown> = Promise.resolve();
  readonly #calls: Record<AerCallbackName, number> = {
    error_detected: 0,
    mmio_enabled: 0,
    slot_reset: 0,
    resume: 0,
  };
  #forwarded = 0;
  readonly #kills: AerKill[] = [];

  /** @throws {RangeError} when `killRetries` is not a non-negative integer. */
  constructor(options: PcibackAerOptions) {
    const retries = options.killRetries ?? DEFAULT_KILL_RETRIES;
    if (!Number.isInteger(retries) || retries < 0) {
      throw new RangeError(
        `Invalid killRetries ${String(retries)}: it must be a non-negative integer`,
      );
    }
    this.#devices = options.devices;
    this.#xs = options.xs;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#killRetries = retries;
  }

  /** `xen_pcibk_error_detected`: default CAN_RECOVER (2). */
  errorDetected(address: PciAddress, state: PciChannelState): Promise<number> {
    return this.#handle(ROWS.error_detected, address, state);
  }

  /** `xen_pcibk_mmio_enabled`: default RECOVERED (5). */
  mmioEnabled(address: PciAddress): Promise<number> {
    return this.#handle(ROWS.mmio_enabled, address, PCI_CHANNEL_IO.normal);
  }

  /** `xen_pcibk_slot_reset`: default RECOVERED (5). */
  slotReset(address: PciAddress): Promise<number> {
    return this.#handle(ROWS.slot_reset, address, PCI_CHANNEL_IO.normal);
  }

  /** `xen_pcibk_error_resume`: the guest's answer is ignored. */
  async resume(address: PciAddress): Promise<void> {
    await this.#handle(ROWS.resume, address, PCI_CHANNEL_IO.normal);
  }

  /** The handlers bound to one device, as a driver registers them. */
  handlersFor(address: PciAddress): PcibackErrorHandlers {
    return {
      errorDetected: (state) => this.errorDetected(address, state),
      mmioEnabled: () => this.mmioEnabled(address),
      slotReset: () => this.slotReset(address),
      resume: () => this.resume(address),
    };
  }

  /** A copy of the counters. */
  stats(): PcibackAerStats {
    return { calls: { ...this.#calls }, forwarded: this.#forwarded, kills: [...this.#kills] };
  }

  #handle(row: HandlerRow, address: PciAddress, state: PciChannelState): Promise<number> {
    const run = this.#lock.then(() => this.#handleLocked(row, address, state));
    this.#lock = run.catch(() => undefined);
    return run.catch((cause: unknown) => {
      // Only a programming fault gets here (the lookup or the channel threw).
      this.#logger.error(
        { cause, device: address.toString(), callback: row.callback },
        `Cannot handle AER ${row.callback} for "${address.toString()}": ${describe(cause)}`,
      );
      return row.defaultResult;
    });
  }

  async #handleLocked(
    row: HandlerRow,
    address: PciAddress,
    state: PciChannelState,
  ): Promise<number> {
    this.#calls[row.callback]++;
    const name = address.toString();
    const psdev = this.#devices.find(address);
    const connection = psdev?.connection;
    if (psdev === undefined || connection === undefined) {
      this.#logger.error(
        { device: name, callback: row.callback },
        `Cannot forward AER ${row.callback} for "${name}": the device is not found/assigned`,
      );
      return row.defaultResult;
    }
    const domid = connection.frontendDomid;
    const channel = connection.channel;
    if (channel === undefined) {
      this.#logger.error(
        { device: name, domid, callback: row.callback },
        `Killing domain ${domid} on AER ${row.callback} for "${name}": the device is not connected or owned by HVM`,
      );
      await this.#kill(psdev, domid, row.callback);
      return row.defaultResult;
    }
    if (!channel.frontendHasAerHandler()) {
      if (row.noHandler === 'kill') {
        this.#logger.warn(
          { device: name, domid, callback: row.callback },
          `Killing domain ${domid} on AER ${row.callback} for "${name}": the guest may have no AER driver`,
        );
        await this.#kill(psdev, domid, row.callback);
      } else {
        this.#logger.error(
          { device: name, domid, callback: row.callback },
          `Cannot forward AER ${row.callback} for "${name}": guest ${domid} with no AER driver should have been killed`,
        );
      }
      return row.defaultResult;
    }
    this.#forwarded++;
    const result = await channel.aerRequest(psdev.device, {
      cmd: row.cmd,
      state,
      defaultResult: row.defaultResult,
    });
    if (
      row.killOnNone &&
      (result === PCI_ERS_RESULT.NONE || result === PCI_ERS_RESULT.DISCONNECT)
    ) {
      this.#logger.warn(
        { device: name, domid, callback: row.callback, result },
        `Killing domain ${domid} on AER ${row.callback} for "${name}": no AER ${row.callback} service or disconnected (result ${result})`,
      );
      await this.#kill(psdev, domid, row.callback);
    }
    return result;
  }

  /** `kill_domain_by_device`: ask the toolstack to destroy the guest. Never throws. */
  async #kill(psdev: AerSeizedDevice, domid: number, callback: AerCallbackName): Promise<void> {
    const device = psdev.device.address.toString();
    const path = `${aerKillNodename(domid)}/${AER_STATE_KEY}`;
    let written = false;
    try {
      await this.#xs.transaction(
        async (tx) => {
          written = false;
          try {
            await tx.write(path, AER_STATE_FAILED);
            written = true;
          } catch (cause) {
            this.#logger.error(
              { cause, device, domid },
              `Cannot write "${path}" = "${AER_STATE_FAILED}": ${describe(cause)}`,
            );
          }
        },
        { maxRetries: this.#killRetries },
      );
    } catch (cause) {
      written = false;
      this.#logger.error(
        { cause, device, domid },
        `Cannot ask the toolstack to kill domain ${domid} for "${device}": the xenstore transaction failed: ${describe(cause)}`,
      );
    }
    this.#kills.push({ device, frontendDomid: domid, callback, written });
  }
}
