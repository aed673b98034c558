// SPDX-License-Identifier: MIT
/**
 * Start-up reconciliation: compare the database with the host and the running domains,
 * and repair the database (never the host) so it says what is true. libvirt rebuilds
 * its lists from running domains and a FIXME admits the gap for devices (peers.md §5.2);
 * we close it here.
 *
 * Repairs, in this order:
 * 1. An attachment whose guest is gone is released (`attachment-orphaned`).
 * 2. A recorded device absent from the host is **kept** and marked `missing`
 *    (`device-missing`): it may come back (hot-plug, SR-IOV re-enabled), and the record
 *    is the only place its original driver is remembered (peers.md §7.6). A missing
 *    device that is back is `device-returned`.
 * 3. A `seized` device now on another driver (or none) is marked `rebound`
 *    (`device-rebound`); a `rebound` one found on the stub again is `seized`
 *    (`device-reseized`). When a device of a live guest left the stub (2 or 3), its
 *    attachment is released first (`attachment-lost`), as Linux pciback releases a
 *    device unbound under a guest (spec/pciback.md §6.4).
 * 4. A device on the stub driver that the database does not know is adopted
 *    (`device-adopted`), with the driver the host says would take it natively
 *    ({@link PciHostPlatform.nativeDriver}), else an unknown original driver.
 *
 * The whole pass is one IMMEDIATE transaction: each repair is committed together with
 * its event-log entry, and a failure (the host listing throws) changes nothing.
 */
import type { PciAddress } from '../pci/address.js';
import type { HostPciFunctionInfo, PciHostPlatform } from '../platform/pci-host.js';
import type { Logger } from '../platform/types.js';
import type { AssignableDb } from './assignable-db.js';
import { EVENT_KINDS, type AssignableDevice } from './types.js';

/** The kinds of repair, as written to the event log. */
export type RepairKind =
  | typeof EVENT_KINDS.deviceMissing
  | typeof EVENT_KINDS.deviceReturned
  | typeof EVENT_KINDS.deviceRebound
  | typeof EVENT_KINDS.deviceReseized
  | typeof EVENT_KINDS.attachmentOrphaned
  | typeof EVENT_KINDS.attachmentLost
  | typeof EVENT_KINDS.deviceAdopted;

/** One change reconcile made. */
export interface Repair {
  readonly kind: RepairKind;
  readonly device: PciAddress;
  /** For attachment repairs: the domain the device was released from. */
  readonly domid?: number;
  /** As written to the event log. */
  readonly message: string;
}

/** Options of {@link reconcile}. */
export interface ReconcileOptions {
  /** The stub driver this pciback uses (`pciback`). */
  readonly stubDriver: string;
  /** The domains that exist now (from the hypervisor or xenstore). */
  liveDomains(): ReadonlySet<number> | Iterable<number>;
  /** Each repair is also logged here (warn), with a summary (info). */
  readonly logger?: Logger;
}

function driverText(driver: string | null): string {
  return driver === null ? 'no driver' : `driver "${driver}"`;
}

/**
 * Repair `db` against `host` and the live domains; return what was repaired (empty when
 * all agreed). Run it once at start, before serving guests.
 *
 * @example
 * const repairs = reconcile(db, host, {
 *   stubDriver: 'pciback',
 *   liveDomains: () => new Set(xen.domains().map((d) => d.domid)),
 *   logger,
 * });
 * for (const r of repairs) console.log(`${r.kind} ${r.device}: ${r.message}`);
 */
export function reconcile(
  db: AssignableDb,
  host: PciHostPlatform,
  options: ReconcileOptions,
): Repair[] {
  const { stubDriver, logger } = options;
  const repairs: Repair[] = [];

  db.transaction(() => {
    const live = new Set(options.liveDomains());
    const onHost = new Map<number, HostPciFunctionInfo>();
    for (const info of host.list()) onHost.set(info.address.key, info);

    // 1: attachments whose guest is gone.
    for (const attachment of db.listAttachments()) {
      if (live.has(attachment.domid)) continue;
      const message =
        `Released device "${attachment.address.toString()}" from domain ${attachment.domid} ` +
        `("${attachment.domainName}"): the domain no longer exists`;
      db.releaseAttachment(attachment.address, {
        domid: attachment.domid,
        logAs: { kind: EVENT_KINDS.attachmentOrphaned, message },
      });
      repairs.push({
        kind: EVENT_KINDS.attachmentOrphaned,
        device: attachment.address,
        domid: attachment.domid,
        message,
      });
    }

    // 2 and 3: where each recorded device is now.
    const records = db.listAssignable();
    for (const record of records) {
      const info = onHost.get(record.address.key);
      const repair = deviceRepair(record, info, stubDriver);
      if (repair === null) continue;
      // An attachment of a device that left the stub cannot stand (the status change
      // below requires it gone): release it first, as its own repair.
      if (repair.status !== 'seized') {
        const attachment = db.getAttachment(record.address);
        if (attachment !== undefined) {
          const message =
            `Released device "${record.address.toString()}" from domain ${attachment.domid} ` +
            `("${attachment.domainName}"): the device ${repair.status === 'missing' ? 'is gone from the host' : `is on ${driverText(info?.driver ?? null)}, not on the stub`}`;
          db.releaseAttachment(record.address, {
            logAs: { kind: EVENT_KINDS.attachmentLost, message },
          });
          repairs.push({
            kind: EVENT_KINDS.attachmentLost,
            device: record.address,
            domid: attachment.domid,
            message,
          });
        }
      }
      db.setStatus(record.address, repair.status, {
        observedDriver: info?.driver ?? null,
        logAs: { kind: repair.kind, message: repair.message },
      });
      repairs.push({ kind: repair.kind, device: record.address, message: repair.message });
    }

    // 4: devices on the stub that nobody recorded.
    const known = new Set(records.map((r) => r.address.key));
    for (const info of onHost.values()) {
      if (info.driver !== stubDriver || known.has(info.address.key)) continue;
      const native = host.nativeDriver?.(info.address);
      const adopted = `Adopted device "${info.address.toString()}" found on stub "${stubDriver}" without a record`;
      const message =
        native === undefined
          ? `${adopted}: its original driver is unknown, so removing it cannot rebind one`
          : `${adopted}: ${native === null ? 'no driver matches it' : `its native driver is "${native}"`}`;
      db.addAssignable(info.address, {
        originalDriver:
          native === undefined
            ? { state: 'unknown' }
            : native === null
              ? { state: 'none' }
              : { state: 'bound', name: native },
        stubDriver,
        logAs: { kind: EVENT_KINDS.deviceAdopted, message },
      });
      repairs.push({ kind: EVENT_KINDS.deviceAdopted, device: info.address, message });
    }
  });

  // Logged after the commit: a pass that failed half-way repaired nothing.
  for (const repair of repairs) {
    logger?.warn(
      { kind: repair.kind, device: repair.device.toString(), domid: repair.domid },
      repair.message,
    );
  }
  logger?.info(
    { repairs: repairs.length, stubDriver, host: host.kind },
    repairs.length === 0
      ? 'State database agrees with the host'
      : `Repaired the state database: ${repairs.length} change(s)`,
  );
  return repairs;
}

interface DeviceRepair {
  readonly kind: RepairKind;
  readonly status: AssignableDevice['status'];
  readonly message: string;
}

/** What a recorded device needs, given what the host shows; null when nothing. */
function deviceRepair(
  record: AssignableDevice,
  info: HostPciFunctionInfo | undefined,
  stubDriver: string,
): DeviceRepair | null {
  const bdf = record.address.toString();
  if (info === undefined) {
    if (record.status === 'missing') return null;
    return {
      kind: EVENT_KINDS.deviceMissing,
      status: 'missing',
      message: `Device "${bdf}" is gone from the host; its record is kept (status was "${record.status}")`,
    };
  }
  const onStub = info.driver === stubDriver;
  switch (record.status) {
    case 'missing':
      return {
        kind: EVENT_KINDS.deviceReturned,
        status: onStub ? 'seized' : 'rebound',
        message: `Device "${bdf}" is back on the host, on ${driverText(info.driver)}`,
      };
    case 'seized':
      if (onStub) return null;
      return {
        kind: EVENT_KINDS.deviceRebound,
        status: 'rebound',
        message: `Device "${bdf}" was moved to ${driverText(info.driver)} behind our back; it is no longer seized`,
      };
    case 'rebound':
      if (onStub) {
        return {
          kind: EVENT_KINDS.deviceReseized,
          status: 'seized',
          message: `Device "${bdf}" is on stub "${stubDriver}" again`,
        };
      }
      if (info.driver === record.observedDriver) return null;
      return {
        kind: EVENT_KINDS.deviceRebound,
        status: 'rebound',
        message: `Device "${bdf}" moved from ${driverText(record.observedDriver)} to ${driverText(info.driver)}`,
      };
  }
}
