// SPDX-License-Identifier: MIT
/**
 * The assignable-device database: what xl keeps in xenstore under `/libxl/pci/<bdf>/`
 * (peers.md §1.1: name, `driver_path`, `domid`) and what pciback keeps per device in
 * sysfs (spec/pciback.md §6.5: permissive, allow_interrupt_control, quirks), in one
 * SQLite file that survives restarts, so a device is never left on the wrong driver
 * because we forgot where it came from (peers.md §7.6).
 *
 * Durability: WAL with `synchronous=FULL` (every commit is on disk before the call
 * returns; a SIGKILL or a power cut loses no committed change). Every public change is
 * one IMMEDIATE transaction together with its event-log entry.
 *
 * Concurrency: several handles (processes) may open the file at once, as WAL allows:
 * readers never block, writers take turns. A writer that waits longer than
 * `busyTimeoutMs` for another gets `STATE_BUSY`. There is no single-writer lock file:
 * the CLI must be able to read (and change) state while the daemon runs.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PcibackError } from '../errors.js';
import { PciAddress } from '../pci/address.js';
import type { PciResetOutcome } from '../platform/pci-host.js';
import { PCI_SPEC_DEFAULTS } from '../toolstack/index.js';
import { formatQuirkSpec } from './quirk.js';
import { decodeAttachment, decodeDevice, decodeEvent, decodeQuirk } from './rows.js';
import { checkHeader, migrate, readHeader, SCHEMA_VERSION } from './schema.js';
import {
  EVENT_KINDS,
  STATE_ERROR,
  type AssignableDevice,
  type Attachment,
  type AttachmentOptions,
  type DevicePolicy,
  type DeviceStatus,
  type EventRecord,
  type OriginalDriver,
  type OriginalDriverInput,
  type Quirk,
} from './types.js';
import {
  attachmentOptionsInputSchema,
  deviceNameSchema,
  domainNameSchema,
  domidSchema,
  driverNameSchema,
  eventKindSchema,
  eventMessageSchema,
  originalDriverInputSchema,
  parseOrThrow,
  policyPatchSchema,
  quirkSchema,
  resetOutcomeSchema,
} from './validate.js';

/** The database file inside the state directory. */
export const STATE_DB_FILE = 'pciback.sqlite';
/** Events kept by default; older ones are dropped as new ones arrive. */
export const DEFAULT_EVENT_LIMIT = 1000;
/** How long a writer waits for another by default. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** `PRAGMA synchronous` values by number. */
const SYNCHRONOUS_NAMES: Readonly<Record<number, string>> = {
  0: 'off',
  1: 'normal',
  2: 'full',
  3: 'extra',
};

/** What {@link AssignableDb.info} reports. */
export interface StateDbInfo {
  readonly path: string;
  readonly schemaVersion: number;
  /** `wal`. */
  readonly journalMode: string;
  /** `full`. */
  readonly synchronous: string;
  readonly foreignKeys: boolean;
  readonly eventLimit: number;
  readonly busyTimeoutMs: number;
}

/** Options of {@link AssignableDb.open}. */
export interface AssignableDbOptions {
  /** The clock for `*AtMs` fields (ms since the epoch); `Date.now` by default. */
  readonly nowMs?: () => number;
  /** Events to keep (the last N), at least 1; {@link DEFAULT_EVENT_LIMIT} by default. */
  readonly eventLimit?: number;
  /** How long to wait for another writer; {@link DEFAULT_BUSY_TIMEOUT_MS} by default. */
  readonly busyTimeoutMs?: number;
}

/**
 * A device named by address, or by address text or name (a string is looked up as a
 * name first, then as an address: xl's order for `pci-assignable-remove`).
 */
export type DeviceRef = PciAddress | string;

/** An event to write instead of an operation's own (reconcile's repairs). */
export interface LogAs {
  readonly kind: string;
  readonly message: string;
}

/** Options of {@link AssignableDb.addAssignable}. */
export interface AddAssignableOptions {
  /** The driver the device had before the stub took it. */
  readonly originalDriver: OriginalDriverInput;
  /** The stub driver that holds it now. */
  readonly stubDriver: string;
  readonly name?: string | null;
  /** Defaults: both false. */
  readonly policy?: Partial<DevicePolicy>;
  readonly quirks?: readonly Quirk[];
  readonly logAs?: LogAs;
}

/** Options of {@link AssignableDb.setStatus}. */
export interface SetStatusOptions {
  /** With `rebound`: the driver found on the device (null: none). */
  readonly observedDriver?: string | null;
  readonly logAs?: LogAs;
}

/** Options of {@link AssignableDb.recordAttachment}. */
export interface RecordAttachmentOptions {
  readonly domid: number;
  /** The guest's name (xenstore `domain`). */
  readonly domainName: string;
  /** The guest address the backend published, if known. */
  readonly vdev?: PciAddress | null;
  /** Defaults: xl's ({@link PCI_SPEC_DEFAULTS}). */
  readonly options?: Partial<AttachmentOptions>;
}

/** Options of {@link AssignableDb.releaseAttachment}. */
export interface ReleaseAttachmentOptions {
  /** Refuse unless the device is attached to this domain. */
  readonly domid?: number;
  readonly logAs?: LogAs;
}

/** An entry for {@link AssignableDb.log}. */
export interface LogEntry {
  readonly kind: string;
  readonly message: string;
  readonly device?: PciAddress | null;
}

/** Options of {@link AssignableDb.recentLog}. */
export interface RecentLogOptions {
  /** At most this many (the newest); all kept entries by default. */
  readonly limit?: number;
  /** Only entries about this device. */
  readonly device?: PciAddress;
}

function describeDriver(driver: OriginalDriver): string {
  switch (driver.state) {
    case 'bound':
      return `original driver "${driver.name}" (${driver.driverPath})`;
    case 'none':
      return 'it had no driver';
    case 'unknown':
      return 'original driver unknown';
  }
}

function describeOwner(attachment: { domid: number; domainName: string }): string {
  return `domain ${attachment.domid} ("${attachment.domainName}")`;
}

function bit(value: boolean): 0 | 1 {
  return value ? 1 : 0;
}

function checkPositiveInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Invalid ${what} ${String(value)}: it must be a positive integer`);
  }
  return value;
}

function checkNonNegativeInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Invalid ${what} ${String(value)}: it must be a non-negative integer`);
  }
  return value;
}

/**
 * Turn a better-sqlite3 failure into a `PcibackError`: `STATE_BUSY` for a lock held
 * too long, `STATE_IO` for the rest. `PcibackError`s pass through.
 */
function toStateError(err: unknown, action: string, busyTimeoutMs: number): unknown {
  if (err instanceof PcibackError) return err;
  if (err instanceof Database.SqliteError) {
    if (err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED')) {
      return new PcibackError(
        STATE_ERROR.busy,
        `${action}: another process holds the database lock (waited ${busyTimeoutMs} ms)`,
        { cause: err },
      );
    }
    if (err.code.startsWith('SQLITE_NOTADB') || err.code.startsWith('SQLITE_CORRUPT')) {
      return new PcibackError(STATE_ERROR.corrupt, `${action}: ${err.message} (${err.code})`, {
        cause: err,
      });
    }
    return new PcibackError(STATE_ERROR.io, `${action}: ${err.message} (${err.code})`, {
      cause: err,
    });
  }
  return err;
}

/**
 * The assignable-device database of one state directory.
 *
 * @example
 * const db = AssignableDb.open(defaultStateDir(process.env));
 * const nic = PciAddress.parse('0000:03:00.0');
 * db.addAssignable(nic, {
 *   originalDriver: { state: 'bound', name: 'e1000e' },
 *   stubDriver: 'pciback',
 *   name: 'nic',
 * });
 * db.recordAttachment('nic', { domid: 5, domainName: 'web' });
 * db.listAttachments(5); // [{ address: 0000:03:00.0, domid: 5, ... }]
 * db.releaseAttachment(nic, { domid: 5 });
 * const record = db.removeAssignable(nic); // rebind record.originalDriver
 * db.close();
 */
export class AssignableDb {
  readonly #conn: Database.Database;
  readonly #path: string;
  readonly #nowMs: () => number;
  readonly #eventLimit: number;
  readonly #busyTimeoutMs: number;
  readonly #statements = new Map<string, Database.Statement>();

  private constructor(
    conn: Database.Database,
    path: string,
    options: Required<AssignableDbOptions>,
  ) {
    this.#conn = conn;
    this.#path = path;
    this.#nowMs = options.nowMs;
    this.#eventLimit = options.eventLimit;
    this.#busyTimeoutMs = options.busyTimeoutMs;
  }

  /**
   * Open (creating as needed) `<stateDir>/pciback.sqlite`. The directory is created with
   * mode 0700 and the file with 0600 (an existing directory keeps its mode). The schema
   * is migrated forward; a file written by a newer pciback is refused
   * (`STATE_SCHEMA_TOO_NEW`) and left untouched, as is a database of another program
   * (`STATE_FOREIGN_FILE`).
   */
  static open(stateDir: string, options: AssignableDbOptions = {}): AssignableDb {
    const resolved: Required<AssignableDbOptions> = {
      nowMs: options.nowMs ?? Date.now,
      eventLimit: checkPositiveInt(options.eventLimit ?? DEFAULT_EVENT_LIMIT, 'eventLimit'),
      busyTimeoutMs: checkNonNegativeInt(
        options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
        'busyTimeoutMs',
      ),
    };
    const path = join(stateDir, STATE_DB_FILE);
    const action = `Cannot open state database "${path}"`;
    let conn: Database.Database;
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      // Created here so the mode is 0600; SQLite would use 0644. The -wal and -shm files
      // take the database file's mode.
      closeSync(openSync(path, 'a', 0o600));
      conn = new Database(path, { timeout: resolved.busyTimeoutMs });
    } catch (err) {
      throw new PcibackError(STATE_ERROR.openFailed, `${action}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      // Refuse a newer or foreign file before anything writes to it (WAL mode included).
      checkHeader(readHeader(conn), path, SCHEMA_VERSION);
      const mode = conn.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') {
        throw new PcibackError(
          STATE_ERROR.openFailed,
          `${action}: the file system does not support WAL mode (journal mode is "${String(mode)}")`,
        );
      }
      conn.pragma('synchronous = FULL');
      conn.pragma('foreign_keys = ON');
      migrate(conn, path);
    } catch (err) {
      conn.close();
      throw toStateError(err, action, resolved.busyTimeoutMs);
    }
    return new AssignableDb(conn, path, resolved);
  }

  /** The database file. */
  get path(): string {
    return this.#path;
  }

  /**
   * The settings in force, for diagnostics (`pciback state info`) and tests:
   * `journalMode` is `wal` and `synchronous` is `full` on every handle this class opens.
   */
  info(): StateDbInfo {
    const action = 'Cannot read the state database settings';
    return this.#read(action, () => {
      const synchronous = this.#conn.pragma('synchronous', { simple: true });
      return {
        path: this.#path,
        schemaVersion: this.#conn.pragma('user_version', { simple: true }) as number,
        journalMode: String(this.#conn.pragma('journal_mode', { simple: true })),
        synchronous: SYNCHRONOUS_NAMES[synchronous as number] ?? String(synchronous),
        foreignKeys: this.#conn.pragma('foreign_keys', { simple: true }) === 1,
        eventLimit: this.#eventLimit,
        busyTimeoutMs: this.#busyTimeoutMs,
      };
    });
  }

  /** False after {@link close}. */
  get isOpen(): boolean {
    return this.#conn.open;
  }

  /** Close the handle; later calls throw `STATE_CLOSED`. Closing twice is a no-op. */
  close(): void {
    if (this.#conn.open) this.#conn.close();
  }

  /**
   * Run `fn` as one IMMEDIATE transaction: every change it makes through this handle is
   * committed together when it returns, or none when it throws. Calls nest (inner ones
   * become savepoints).
   *
   * @example
   * db.transaction(() => {
   *   db.addAssignable(addr, { originalDriver: { state: 'none' }, stubDriver: 'pciback' });
   *   db.recordReset(addr, { ok: true, method: 'flr' });
   * });
   */
  transaction<T>(fn: () => T): T {
    return this.#write('Cannot run a state database transaction', fn);
  }

  // -----------------------------------------------------------------------------------
  // Assignable devices
  // -----------------------------------------------------------------------------------

  /**
   * Record a device the stub has just seized. Throws `STATE_DUPLICATE_DEVICE`,
   * `STATE_DUPLICATE_NAME`, `STATE_DUPLICATE_QUIRK` or `STATE_INVALID`. A recorded
   * device that the stub takes back (status `rebound` or `missing`) keeps its record:
   * use {@link setStatus} with `seized`, so its original driver is not overwritten.
   */
  addAssignable(address: PciAddress, options: AddAssignableOptions): AssignableDevice {
    const bdf = address.toString();
    const action = `Cannot add device "${bdf}" to the assignable list`;
    const originalDriver = parseOrThrow(originalDriverInputSchema, options.originalDriver, action);
    const stubDriver = parseOrThrow(driverNameSchema, options.stubDriver, action);
    const name =
      options.name === undefined || options.name === null
        ? null
        : parseOrThrow(deviceNameSchema, options.name, action);
    const policy = parseOrThrow(policyPatchSchema, options.policy ?? {}, action);
    const logAs = options.logAs === undefined ? undefined : this.#checkLogAs(options.logAs);
    return this.#write(action, () => {
      const existing = this.#row(bdf);
      if (existing !== undefined) {
        throw new PcibackError(
          STATE_ERROR.duplicateDevice,
          `${action}: it is already there (status "${existing.status}")`,
        );
      }
      if (name !== null) this.#checkNameFree(name, bdf, action);
      const now = this.#nowMs();
      const driver: OriginalDriver =
        originalDriver.state === 'bound'
          ? {
              state: 'bound',
              name: originalDriver.name,
              driverPath:
                originalDriver.driverPath ?? `/sys/bus/pci/drivers/${originalDriver.name}`,
            }
          : originalDriver;
      this.#stmt(
        `INSERT INTO assignable (address, name, original_driver_state, original_driver,
             original_driver_path, stub_driver, seized_at_ms, status, status_since_ms,
             permissive, allow_interrupt_control)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'seized', ?, ?, ?)`,
      ).run(
        bdf,
        name,
        driver.state,
        driver.state === 'bound' ? driver.name : null,
        driver.state === 'bound' ? driver.driverPath : null,
        stubDriver,
        now,
        now,
        bit(policy.permissive ?? false),
        bit(policy.allowInterruptControl ?? false),
      );
      // One by one, after the device row: a bad or duplicate quirk rolls back the device.
      for (const quirk of options.quirks ?? []) this.#insertQuirk(address, quirk, action);
      this.#appendEvent(
        logAs ?? {
          kind: EVENT_KINDS.assignableAdded,
          message:
            `Seized device "${bdf}"${name === null ? '' : ` as "${name}"`} for stub ` +
            `"${stubDriver}": ${describeDriver(driver)}`,
        },
        bdf,
      );
      return this.#device(bdf, action);
    });
  }

  /**
   * Forget a device and return its last record, so the caller can bind
   * `record.originalDriver` again. Refused (`STATE_ALREADY_ATTACHED`) while attached.
   */
  removeAssignable(ref: DeviceRef): AssignableDevice {
    const action = `Cannot remove device "${String(ref)}" from the assignable list`;
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const bdf = record.address.toString();
      const attachment = this.#attachment(bdf);
      if (attachment !== undefined) {
        throw new PcibackError(
          STATE_ERROR.alreadyAttached,
          `Cannot remove device "${bdf}" from the assignable list: it is attached to ${describeOwner(attachment)}; detach it first`,
        );
      }
      this.#stmt('DELETE FROM assignable WHERE address = ?').run(bdf);
      this.#appendEvent(
        {
          kind: EVENT_KINDS.assignableRemoved,
          message: `Removed device "${bdf}" from the assignable list: ${describeDriver(record.originalDriver)}`,
        },
        bdf,
      );
      return record;
    });
  }

  /** A device by address or name, or undefined. */
  getAssignable(ref: DeviceRef): AssignableDevice | undefined {
    return this.#read('Cannot read an assignable device', () => {
      const bdf = this.#resolve(ref);
      return bdf === undefined ? undefined : this.#device(bdf, 'Cannot read device');
    });
  }

  /** Every device (optionally only those with `status`), by address. */
  listAssignable(options: { readonly status?: DeviceStatus } = {}): AssignableDevice[] {
    return this.#read('Cannot list assignable devices', () => {
      const quirks = new Map<string, Quirk[]>();
      for (const raw of this.#stmt('SELECT * FROM quirk ORDER BY address, reg').all()) {
        const address = (raw as { address: string }).address;
        const list = quirks.get(address) ?? [];
        list.push(decodeQuirk(raw));
        quirks.set(address, list);
      }
      const rows =
        options.status === undefined
          ? this.#stmt('SELECT * FROM assignable ORDER BY address').all()
          : this.#stmt('SELECT * FROM assignable WHERE status = ? ORDER BY address').all(
              options.status,
            );
      return rows.map((raw) =>
        decodeDevice(raw, quirks.get((raw as { address: string }).address) ?? []),
      );
    });
  }

  /** Set (or with null, clear) a device's name. Throws `STATE_DUPLICATE_NAME`. */
  setName(ref: DeviceRef, name: string | null): AssignableDevice {
    const action = `Cannot name device "${String(ref)}"${name === null ? '' : ` "${name}"`}`;
    const checked = name === null ? null : parseOrThrow(deviceNameSchema, name, action);
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const bdf = record.address.toString();
      if (checked !== null) this.#checkNameFree(checked, bdf, action);
      this.#stmt('UPDATE assignable SET name = ? WHERE address = ?').run(checked, bdf);
      this.#appendEvent(
        {
          kind: EVENT_KINDS.nameSet,
          message:
            checked === null
              ? `Removed the name of device "${bdf}"${record.name === null ? '' : ` ("${record.name}")`}`
              : `Named device "${bdf}" "${checked}"`,
        },
        bdf,
      );
      return this.#device(bdf, action);
    });
  }

  /** Change the device-wide policy (only the fields given). */
  setPolicy(ref: DeviceRef, patch: Partial<DevicePolicy>): AssignableDevice {
    const action = `Cannot set the policy of device "${String(ref)}"`;
    const checked = parseOrThrow(policyPatchSchema, patch, action);
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const bdf = record.address.toString();
      const policy: DevicePolicy = {
        permissive: checked.permissive ?? record.policy.permissive,
        allowInterruptControl: checked.allowInterruptControl ?? record.policy.allowInterruptControl,
      };
      this.#stmt(
        'UPDATE assignable SET permissive = ?, allow_interrupt_control = ? WHERE address = ?',
      ).run(bit(policy.permissive), bit(policy.allowInterruptControl), bdf);
      this.#appendEvent(
        {
          kind: EVENT_KINDS.policySet,
          message: `Set the policy of device "${bdf}": permissive=${bit(policy.permissive)}, allow_interrupt_control=${bit(policy.allowInterruptControl)}`,
        },
        bdf,
      );
      return this.#device(bdf, action);
    });
  }

  /**
   * Add a quirk field. Unlike Linux, which silently keeps the first field at an offset,
   * a second quirk at the same `reg` is refused (`STATE_DUPLICATE_QUIRK`). Quirks stay
   * until removed: Linux drops them at every release (spec/pciback.md §5.9), so the stub
   * applies the recorded ones again at each attachment.
   */
  addQuirk(ref: DeviceRef, quirk: Quirk): AssignableDevice {
    const action = `Cannot add a quirk to device "${String(ref)}"`;
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const checked = this.#insertQuirk(record.address, quirk, action);
      const bdf = record.address.toString();
      this.#appendEvent(
        {
          kind: EVENT_KINDS.quirkAdded,
          message: `Added quirk ${formatQuirkSpec(record.address, checked)}`,
        },
        bdf,
      );
      return this.#device(bdf, action);
    });
  }

  /** Remove the quirk at `reg`. Throws `STATE_UNKNOWN_QUIRK`. */
  removeQuirk(ref: DeviceRef, reg: number): AssignableDevice {
    const action = `Cannot remove the quirk at 0x${reg.toString(16)} of device "${String(ref)}"`;
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const bdf = record.address.toString();
      const quirk = record.quirks.find((q) => q.reg === reg);
      if (quirk === undefined) {
        throw new PcibackError(STATE_ERROR.unknownQuirk, `${action}: there is no quirk there`);
      }
      this.#stmt('DELETE FROM quirk WHERE address = ? AND reg = ?').run(bdf, reg);
      this.#appendEvent(
        {
          kind: EVENT_KINDS.quirkRemoved,
          message: `Removed quirk ${formatQuirkSpec(record.address, quirk)}`,
        },
        bdf,
      );
      return this.#device(bdf, action);
    });
  }

  /** A device's quirks, by register. Throws `STATE_UNKNOWN_DEVICE`. */
  listQuirks(ref: DeviceRef): Quirk[] {
    const action = `Cannot list the quirks of device "${String(ref)}"`;
    return this.#read(action, () => [...this.#require(ref, action).quirks]);
  }

  /** Record the outcome of the stub's reset: the method that worked, or why none did. */
  recordReset(ref: DeviceRef, outcome: PciResetOutcome): AssignableDevice {
    const action = `Cannot record the reset of device "${String(ref)}"`;
    const checked = parseOrThrow(resetOutcomeSchema, outcome, action);
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const bdf = record.address.toString();
      const now = this.#nowMs();
      this.#stmt(
        `UPDATE assignable SET reset_state = ?, reset_method = ?, reset_reason = ?,
             reset_at_ms = ? WHERE address = ?`,
      ).run(
        checked.ok ? 'method' : 'not-resettable',
        checked.ok ? checked.method : null,
        checked.ok ? null : checked.reason,
        now,
        bdf,
      );
      this.#appendEvent(
        {
          kind: EVENT_KINDS.resetRecorded,
          message: checked.ok
            ? `Device "${bdf}" resets with "${checked.method}"`
            : `Device "${bdf}" is not resettable: ${checked.reason}`,
        },
        bdf,
      );
      return this.#device(bdf, action);
    });
  }

  /**
   * Record where a device is on the host (reconcile's findings, or the stub after it
   * binds a device again). Leaving `seized` requires that the device is not attached
   * (`STATE_ALREADY_ATTACHED`): an attached device is always on the stub.
   */
  setStatus(
    ref: DeviceRef,
    status: DeviceStatus,
    options: SetStatusOptions = {},
  ): AssignableDevice {
    const action = `Cannot set the status of device "${String(ref)}" to "${status}"`;
    const observed =
      status === 'rebound' && options.observedDriver != null
        ? parseOrThrow(driverNameSchema, options.observedDriver, action)
        : null;
    const logAs = options.logAs === undefined ? undefined : this.#checkLogAs(options.logAs);
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const bdf = record.address.toString();
      if (status !== 'seized') {
        const attachment = this.#attachment(bdf);
        if (attachment !== undefined) {
          throw new PcibackError(
            STATE_ERROR.alreadyAttached,
            `${action}: it is attached to ${describeOwner(attachment)}; release it first`,
          );
        }
      }
      const now = this.#nowMs();
      this.#stmt(
        `UPDATE assignable SET status = ?, observed_driver = ?,
             status_since_ms = CASE WHEN status = ? THEN status_since_ms ELSE ? END
           WHERE address = ?`,
      ).run(status, observed, status, now, bdf);
      this.#appendEvent(
        logAs ?? {
          kind: EVENT_KINDS.statusSet,
          message:
            `Device "${bdf}" is now ${status}` +
            (status === 'rebound'
              ? ` (driver ${observed === null ? 'none' : `"${observed}"`})`
              : ''),
        },
        bdf,
      );
      return this.#device(bdf, action);
    });
  }

  // -----------------------------------------------------------------------------------
  // Attachments
  // -----------------------------------------------------------------------------------

  /**
   * Record that a device was given to a guest. Throws `STATE_ALREADY_ATTACHED`,
   * `STATE_NOT_ASSIGNABLE` (not on the stub), `STATE_VDEV_IN_USE`, `STATE_UNKNOWN_DEVICE`.
   */
  recordAttachment(ref: DeviceRef, options: RecordAttachmentOptions): Attachment {
    const action = `Cannot attach device "${String(ref)}" to domain ${String(options.domid)}`;
    const domid = parseOrThrow(domidSchema, options.domid, action);
    const domainName = parseOrThrow(domainNameSchema, options.domainName, action);
    const given = parseOrThrow(attachmentOptionsInputSchema, options.options ?? {}, action);
    const attachOptions: AttachmentOptions = {
      permissive: given.permissive ?? PCI_SPEC_DEFAULTS.permissive,
      msitranslate: given.msitranslate ?? PCI_SPEC_DEFAULTS.msitranslate,
      power_mgmt: given.power_mgmt ?? PCI_SPEC_DEFAULTS.power_mgmt,
      rdm_policy: given.rdm_policy ?? PCI_SPEC_DEFAULTS.rdm_policy,
    };
    const vdev = options.vdev?.toString() ?? null;
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const bdf = record.address.toString();
      const full = `Cannot attach device "${bdf}" to domain ${domid}`;
      const existing = this.#attachment(bdf);
      if (existing !== undefined) {
        throw new PcibackError(
          STATE_ERROR.alreadyAttached,
          `${full}: it is already attached to ${describeOwner(existing)}`,
        );
      }
      if (record.status !== 'seized') {
        throw new PcibackError(
          STATE_ERROR.notAssignable,
          `${full}: its status is "${record.status}", not "seized"` +
            (record.status === 'rebound'
              ? ` (driver ${record.observedDriver === null ? 'none' : `"${record.observedDriver}"`})`
              : ''),
        );
      }
      if (vdev !== null) {
        const holder = this.#stmt(
          'SELECT address FROM attachment WHERE domid = ? AND vdev = ?',
        ).get(domid, vdev) as { address: string } | undefined;
        if (holder !== undefined) {
          throw new PcibackError(
            STATE_ERROR.vdevInUse,
            `${full}: guest address "${vdev}" holds device "${holder.address}"`,
          );
        }
      }
      this.#stmt(
        `INSERT INTO attachment (address, domid, domain_name, vdev, permissive, msitranslate,
             power_mgmt, rdm_policy, attached_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        bdf,
        domid,
        domainName,
        vdev,
        bit(attachOptions.permissive),
        bit(attachOptions.msitranslate),
        bit(attachOptions.power_mgmt),
        attachOptions.rdm_policy,
        this.#nowMs(),
      );
      this.#appendEvent(
        {
          kind: EVENT_KINDS.attached,
          message:
            `Attached device "${bdf}" to ${describeOwner({ domid, domainName })}` +
            (vdev === null ? '' : ` at "${vdev}"`) +
            (attachOptions.permissive ? ', permissive' : ''),
        },
        bdf,
      );
      const attachment = this.#attachment(bdf);
      if (attachment === undefined)
        throw new Error('Attachment row vanished inside its transaction');
      return attachment;
    });
  }

  /**
   * End an attachment and return it. Throws `STATE_NOT_ATTACHED` when the device is not
   * attached, or attached to another domain than `options.domid`.
   */
  releaseAttachment(ref: DeviceRef, options: ReleaseAttachmentOptions = {}): Attachment {
    const action = `Cannot release device "${String(ref)}"`;
    const domid =
      options.domid === undefined ? undefined : parseOrThrow(domidSchema, options.domid, action);
    const logAs = options.logAs === undefined ? undefined : this.#checkLogAs(options.logAs);
    return this.#write(action, () => {
      const record = this.#require(ref, action);
      const bdf = record.address.toString();
      const attachment = this.#attachment(bdf);
      if (attachment === undefined) {
        throw new PcibackError(
          STATE_ERROR.notAttached,
          `Cannot release device "${bdf}"${domid === undefined ? '' : ` from domain ${domid}`}: it is not attached to any domain`,
        );
      }
      if (domid !== undefined && attachment.domid !== domid) {
        throw new PcibackError(
          STATE_ERROR.notAttached,
          `Cannot release device "${bdf}" from domain ${domid}: it is attached to ${describeOwner(attachment)}`,
        );
      }
      this.#stmt('DELETE FROM attachment WHERE address = ?').run(bdf);
      this.#appendEvent(
        logAs ?? {
          kind: EVENT_KINDS.released,
          message: `Released device "${bdf}" from ${describeOwner(attachment)}`,
        },
        bdf,
      );
      return attachment;
    });
  }

  /** The attachment of a device, or undefined. */
  getAttachment(ref: DeviceRef): Attachment | undefined {
    return this.#read('Cannot read an attachment', () => {
      const bdf = this.#resolve(ref);
      return bdf === undefined ? undefined : this.#attachment(bdf);
    });
  }

  /** Every attachment (of `domid` only, when given), by device address. */
  listAttachments(domid?: number): Attachment[] {
    const action = `Cannot list attachments${domid === undefined ? '' : ` of domain ${domid}`}`;
    const checked = domid === undefined ? undefined : parseOrThrow(domidSchema, domid, action);
    return this.#read(action, () => {
      const rows =
        checked === undefined
          ? this.#stmt('SELECT * FROM attachment ORDER BY address').all()
          : this.#stmt('SELECT * FROM attachment WHERE domid = ? ORDER BY address').all(checked);
      return rows.map(decodeAttachment);
    });
  }

  // -----------------------------------------------------------------------------------
  // Event log
  // -----------------------------------------------------------------------------------

  /** Append an event (its own transaction; inside {@link transaction}, part of it). */
  log(entry: LogEntry): EventRecord {
    const action = 'Cannot append to the state event log';
    const checked = this.#checkLogAs(entry);
    return this.#write(action, () =>
      this.#appendEvent(checked, entry.device == null ? null : entry.device.toString()),
    );
  }

  /** The newest events (at most `limit`), oldest first. */
  recentLog(options: RecentLogOptions = {}): EventRecord[] {
    const limit = checkNonNegativeInt(options.limit ?? this.#eventLimit, 'limit');
    return this.#read('Cannot read the state event log', () => {
      const rows =
        options.device === undefined
          ? this.#stmt('SELECT * FROM event ORDER BY id DESC LIMIT ?').all(limit)
          : this.#stmt('SELECT * FROM event WHERE address = ? ORDER BY id DESC LIMIT ?').all(
              options.device.toString(),
              limit,
            );
      return rows.map(decodeEvent).reverse();
    });
  }

  // -----------------------------------------------------------------------------------
  // Internals
  // -----------------------------------------------------------------------------------

  /** A prepared statement, compiled once per handle. */
  #stmt(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#conn.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #checkOpen(action: string): void {
    if (!this.#conn.open) {
      throw new PcibackError(
        STATE_ERROR.closed,
        `${action}: the database "${this.#path}" is closed`,
      );
    }
  }

  #write<T>(action: string, fn: () => T): T {
    this.#checkOpen(action);
    try {
      return this.#conn.transaction(fn).immediate();
    } catch (err) {
      throw toStateError(err, action, this.#busyTimeoutMs);
    }
  }

  #read<T>(action: string, fn: () => T): T {
    this.#checkOpen(action);
    try {
      // A read transaction: the statements of `fn` see one snapshot.
      return this.#conn.transaction(fn).deferred();
    } catch (err) {
      throw toStateError(err, action, this.#busyTimeoutMs);
    }
  }

  #checkLogAs(entry: LogAs): LogAs {
    const action = 'Cannot log an event';
    return {
      kind: parseOrThrow(eventKindSchema, entry.kind, action),
      message: parseOrThrow(eventMessageSchema, entry.message, action),
    };
  }

  #appendEvent(entry: LogAs, bdf: string | null): EventRecord {
    const info = this.#stmt(
      'INSERT INTO event (at_ms, kind, address, message) VALUES (?, ?, ?, ?)',
    ).run(this.#nowMs(), entry.kind, bdf, entry.message);
    const id = Number(info.lastInsertRowid);
    this.#stmt('DELETE FROM event WHERE id <= ?').run(id - this.#eventLimit);
    return decodeEvent(this.#stmt('SELECT * FROM event WHERE id = ?').get(id));
  }

  #row(bdf: string): { status: string } | undefined {
    return this.#stmt('SELECT status FROM assignable WHERE address = ?').get(bdf) as
      { status: string } | undefined;
  }

  /** The address of `ref` when recorded: a name first, then an address. */
  #resolve(ref: DeviceRef): string | undefined {
    if (ref instanceof PciAddress) {
      const bdf = ref.toString();
      return this.#row(bdf) === undefined ? undefined : bdf;
    }
    if (typeof ref !== 'string') throw new TypeError('A device is a PciAddress or a string');
    const byName = this.#stmt('SELECT address FROM assignable WHERE name = ?').get(ref) as
      { address: string } | undefined;
    if (byName !== undefined) return byName.address;
    let bdf: string;
    try {
      bdf = PciAddress.parse(ref).toString();
    } catch {
      return undefined;
    }
    return this.#row(bdf) === undefined ? undefined : bdf;
  }

  #require(ref: DeviceRef, action: string): AssignableDevice {
    const bdf = this.#resolve(ref);
    if (bdf === undefined) {
      throw new PcibackError(
        STATE_ERROR.unknownDevice,
        `${action}: no assignable device has the address or name "${String(ref)}"`,
      );
    }
    return this.#device(bdf, action);
  }

  #device(bdf: string, action: string): AssignableDevice {
    const raw = this.#stmt('SELECT * FROM assignable WHERE address = ?').get(bdf);
    if (raw === undefined) {
      throw new PcibackError(
        STATE_ERROR.unknownDevice,
        `${action}: device "${bdf}" is not recorded`,
      );
    }
    const quirks = this.#stmt('SELECT * FROM quirk WHERE address = ? ORDER BY reg')
      .all(bdf)
      .map(decodeQuirk);
    return decodeDevice(raw, quirks);
  }

  #attachment(bdf: string): Attachment | undefined {
    const raw = this.#stmt('SELECT * FROM attachment WHERE address = ?').get(bdf);
    return raw === undefined ? undefined : decodeAttachment(raw);
  }

  #checkNameFree(name: string, bdf: string, action: string): void {
    const holder = this.#stmt('SELECT address FROM assignable WHERE name = ?').get(name) as
      { address: string } | undefined;
    if (holder !== undefined && holder.address !== bdf) {
      throw new PcibackError(
        STATE_ERROR.duplicateName,
        `${action}: the name "${name}" is used by device "${holder.address}"`,
      );
    }
  }

  #insertQuirk(address: PciAddress, quirk: Quirk, action: string): Quirk {
    const checked = parseOrThrow(quirkSchema, quirk, action);
    const bdf = address.toString();
    const existing = this.#stmt('SELECT * FROM quirk WHERE address = ? AND reg = ?').get(
      bdf,
      checked.reg,
    );
    if (existing !== undefined) {
      throw new PcibackError(
        STATE_ERROR.duplicateQuirk,
        `${action}: a quirk at register 0x${checked.reg.toString(16)} exists (${formatQuirkSpec(address, decodeQuirk(existing))})`,
      );
    }
    this.#stmt('INSERT INTO quirk (address, reg, size, mask) VALUES (?, ?, ?, ?)').run(
      bdf,
      checked.reg,
      checked.size,
      checked.mask,
    );
    return checked;
  }
}
