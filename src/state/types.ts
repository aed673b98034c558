// SPDX-License-Identifier: MIT
/**
 * The records of the assignable-device database (peers.md §1.1: what xl keeps under
 * `/libxl/pci/<bdf>/`, plus what pciback's sysfs holds per device, spec/pciback.md §6.5)
 * and the error codes of `state/`. Plain values: every record survives `JSON.stringify`.
 */
import type { PciAddress } from '../pci/address.js';
import type { PciResetMethod } from '../platform/pci-host.js';
import type { RdmPolicy } from '../toolstack/index.js';

/**
 * The driver a device had before it was seized: what `pci-assignable-remove -r` binds it
 * back to.
 *
 * - `bound`: it had `name`; `driverPath` is xl's `driver_path` (the real path of the
 *   device's `driver` link, `/sys/bus/pci/drivers/<name>`).
 * - `none`: it had no driver (xl logs "will not be rebound").
 * - `unknown`: we found it already on the stub without a record (reconcile adopted it).
 */
export type OriginalDriver =
  | { readonly state: 'bound'; readonly name: string; readonly driverPath: string }
  | { readonly state: 'none' }
  | { readonly state: 'unknown' };

/** {@link OriginalDriver} as callers give it: `driverPath` defaults to the sysfs path. */
export type OriginalDriverInput =
  | { readonly state: 'bound'; readonly name: string; readonly driverPath?: string }
  | { readonly state: 'none' }
  | { readonly state: 'unknown' };

/** The states of a recorded device, as last seen on the host. */
export const DEVICE_STATUSES = ['seized', 'rebound', 'missing'] as const;

/**
 * Where a recorded device is:
 * - `seized`: bound to the stub driver (the normal state of an assignable device);
 * - `rebound`: present, but something bound it to another driver (or none) behind our
 *   back; the record stays so the original driver is not forgotten;
 * - `missing`: absent from the host (unplugged, SR-IOV disabled); kept, see reconcile.
 */
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/**
 * The reset the stub chose for a device:
 * - `unknown`: never recorded;
 * - `method`: the method that worked (`reset_method` names);
 * - `not-resettable`: every method failed or none exists, with the reason
 *   (peers.md §7.1: the most common complaint, so we keep the reason).
 */
export type ResetRecord =
  | { readonly state: 'unknown' }
  | { readonly state: 'method'; readonly method: PciResetMethod; readonly atMs: number }
  | { readonly state: 'not-resettable'; readonly reason: string; readonly atMs: number };

/**
 * Device-wide policy, as pciback's sysfs sets it (spec/pciback.md §6.5). `permissive`
 * here lasts as long as the record, as in Linux; an attachment's own `permissive` ends
 * with the attachment (peers.md §1.8, "Permissive mode sticks to the device").
 */
export interface DevicePolicy {
  /** Pass through writes to config registers pciback does not virtualize. */
  readonly permissive: boolean;
  /** Let the guest (a stub domain) enable MSI/MSI-X itself. */
  readonly allowInterruptControl: boolean;
}

/** Config access widths a quirk may cover. */
export type QuirkSize = 1 | 2 | 4;

/**
 * A quirk field (`quirks` sysfs, `DDDD:BB:SS.F-REG:SIZE:MASK`, spec/pciback.md §5.9): the
 * register at `reg` becomes guest read/write pass-through; `mask` is informational.
 */
export interface Quirk {
  /** Config offset, 0..0xfff; no alignment rule (as Linux). */
  readonly reg: number;
  readonly size: QuirkSize;
  /** Fits in `size` bytes. */
  readonly mask: number;
}

/** One assignable device. */
export interface AssignableDevice {
  /** Host address, the primary key. */
  readonly address: PciAddress;
  /** Alias from `pci-assignable-add -n`, or null. */
  readonly name: string | null;
  readonly originalDriver: OriginalDriver;
  /** The stub driver that holds it (`pciback`, or `pci-stub`/`vfio-pci` elsewhere). */
  readonly stubDriver: string;
  /** When it was seized (ms since the epoch). */
  readonly seizedAtMs: number;
  readonly status: DeviceStatus;
  /** When `status` last changed. */
  readonly statusSinceMs: number;
  /** With `rebound`: the driver found on it (null: none). Null otherwise. */
  readonly observedDriver: string | null;
  readonly reset: ResetRecord;
  readonly policy: DevicePolicy;
  /** Quirk fields, by `reg`. */
  readonly quirks: readonly Quirk[];
}

/**
 * The per-attachment options of a PCI_SPEC_STRING (peers.md §1.6; `seize` is an action,
 * `vslot` is the guest address, so neither is kept here).
 */
export interface AttachmentOptions {
  /** Permissive for this attachment only: it ends when the attachment is released. */
  readonly permissive: boolean;
  readonly msitranslate: boolean;
  readonly power_mgmt: boolean;
  readonly rdm_policy: RdmPolicy;
}

/** A device given to a guest. */
export interface Attachment {
  readonly address: PciAddress;
  /** The owner (a guest or stub domain id, 1..0x7fef). */
  readonly domid: number;
  /** The owner's name when it was attached (xenstore `domain`). */
  readonly domainName: string;
  /** The guest address the backend published (`vdev-N`), or null while unknown. */
  readonly vdev: PciAddress | null;
  readonly options: AttachmentOptions;
  readonly attachedAtMs: number;
}

/** One entry of the event log. */
export interface EventRecord {
  /** Increasing; never reused. */
  readonly id: number;
  readonly atMs: number;
  /** Kebab-case: `assignable-added`, `device-missing`, ... ({@link EVENT_KINDS}). */
  readonly kind: string;
  /** The device it is about, or null. */
  readonly device: PciAddress | null;
  readonly message: string;
}

/**
 * The kinds the database and reconcile write. {@link AssignableDb.log} accepts others
 * (kebab-case).
 */
export const EVENT_KINDS = {
  assignableAdded: 'assignable-added',
  assignableRemoved: 'assignable-removed',
  nameSet: 'name-set',
  policySet: 'policy-set',
  quirkAdded: 'quirk-added',
  quirkRemoved: 'quirk-removed',
  resetRecorded: 'reset-recorded',
  statusSet: 'status-set',
  attached: 'attached',
  released: 'released',
  /** reconcile: a recorded device is absent from the host. */
  deviceMissing: 'device-missing',
  /** reconcile: a missing device is back. */
  deviceReturned: 'device-returned',
  /** reconcile: a seized device is on another driver. */
  deviceRebound: 'device-rebound',
  /** reconcile: a rebound device is on the stub again. */
  deviceReseized: 'device-reseized',
  /** reconcile: the stub holds a device we had no record of. */
  deviceAdopted: 'device-adopted',
  /** reconcile: the guest of an attachment no longer exists. */
  attachmentOrphaned: 'attachment-orphaned',
  /** reconcile: the device of an attachment left the stub. */
  attachmentLost: 'attachment-lost',
} as const;

/** Stable `code`s of the `PcibackError`s `state/` throws. */
export const STATE_ERROR = {
  /** A value from outside failed validation (bad name, quirk, domid...). */
  invalid: 'STATE_INVALID',
  /** `addAssignable` for an address already recorded. */
  duplicateDevice: 'STATE_DUPLICATE_DEVICE',
  /** The name is taken by another device. */
  duplicateName: 'STATE_DUPLICATE_NAME',
  /** A quirk at that register exists. */
  duplicateQuirk: 'STATE_DUPLICATE_QUIRK',
  /** No record with that address or name. */
  unknownDevice: 'STATE_UNKNOWN_DEVICE',
  /** No quirk at that register. */
  unknownQuirk: 'STATE_UNKNOWN_QUIRK',
  /** The device is attached to a domain (attach again, or remove). */
  alreadyAttached: 'STATE_ALREADY_ATTACHED',
  /** Release of a device not attached (or attached to another domain). */
  notAttached: 'STATE_NOT_ATTACHED',
  /** Attach of a device that is not `seized`. */
  notAssignable: 'STATE_NOT_ASSIGNABLE',
  /** The guest address is used by another device of that domain. */
  vdevInUse: 'STATE_VDEV_IN_USE',
  /** The file's schema is newer than this program. */
  schemaTooNew: 'STATE_SCHEMA_TOO_NEW',
  /** The file is an SQLite database of some other program. */
  foreignFile: 'STATE_FOREIGN_FILE',
  /** A schema migration failed (the file keeps its old version). */
  migrationFailed: 'STATE_MIGRATION_FAILED',
  /** A stored row does not decode (the file was edited or damaged). */
  corrupt: 'STATE_CORRUPT',
  /** The file cannot be opened (permissions, not a database, WAL not possible). */
  openFailed: 'STATE_OPEN_FAILED',
  /** Another handle holds the write lock longer than the busy timeout. */
  busy: 'STATE_BUSY',
  /** Other SQLite failures (I/O, disk full). */
  io: 'STATE_IO',
  /** The handle was closed. */
  closed: 'STATE_CLOSED',
} as const;

/** One of {@link STATE_ERROR}'s values. */
export type StateErrorCode = (typeof STATE_ERROR)[keyof typeof STATE_ERROR];
