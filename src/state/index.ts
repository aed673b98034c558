// SPDX-License-Identifier: MIT
/**
 * Persistent state (not core: SQLite through better-sqlite3, and the file system): the
 * assignable-device database, its start-up reconciliation with the host, and the state
 * directory. Import from here, not from the files beside it.
 *
 * @example
 * import { AssignableDb, defaultStateDir, reconcile } from './state/index.js';
 * const db = AssignableDb.open(defaultStateDir(process.env));
 * reconcile(db, host, { stubDriver: 'pciback', liveDomains: () => xen.domids() });
 */
export {
  AssignableDb,
  DEFAULT_BUSY_TIMEOUT_MS,
  DEFAULT_EVENT_LIMIT,
  STATE_DB_FILE,
  type AddAssignableOptions,
  type AssignableDbOptions,
  type DeviceRef,
  type LogAs,
  type LogEntry,
  type RecentLogOptions,
  type RecordAttachmentOptions,
  type ReleaseAttachmentOptions,
  type SetStatusOptions,
  type StateDbInfo,
} from './assignable-db.js';
export { formatQuirkSpec, parseQuirkSpec, type QuirkSpec } from './quirk.js';
export { reconcile, type ReconcileOptions, type Repair, type RepairKind } from './reconcile.js';
export { SCHEMA_VERSION } from './schema.js';
export { defaultStateDir, type StateDirEnv } from './state-dir.js';
export {
  DEVICE_STATUSES,
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
  type QuirkSize,
  type ResetRecord,
  type StateErrorCode,
} from './types.js';
export { QUIRK_REG_MAX } from './validate.js';
