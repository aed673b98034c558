// SPDX-License-Identifier: MIT
/**
 * The schema of `pciback.sqlite` and its forward migrations. The file's version is
 * SQLite's `user_version`; `application_id` marks the file as ours ('PCIB'), so an
 * unrelated database given by mistake is refused, not "migrated".
 *
 * Each migration runs in its own IMMEDIATE transaction together with the `user_version`
 * bump: a failure (or a kill) leaves the file at the previous version, and two processes
 * opening an old file at once migrate it once.
 */
import type Database from 'better-sqlite3';
import { PcibackError } from '../errors.js';
import { STATE_ERROR } from './types.js';

/** `PRAGMA application_id` of our files: 'PCIB' in ASCII. */
export const APPLICATION_ID = 0x50434942;

/** One forward step, from `version - 1` to `version`. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  up(db: Database.Database): void;
}

const V1_SQL = `
CREATE TABLE assignable (
  address TEXT PRIMARY KEY NOT NULL,
  name TEXT UNIQUE,
  original_driver_state TEXT NOT NULL
    CHECK (original_driver_state IN ('bound', 'none', 'unknown')),
  original_driver TEXT,
  original_driver_path TEXT,
  stub_driver TEXT NOT NULL,
  seized_at_ms INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('seized', 'rebound', 'missing')),
  status_since_ms INTEGER NOT NULL,
  observed_driver TEXT,
  reset_state TEXT NOT NULL DEFAULT 'unknown'
    CHECK (reset_state IN ('unknown', 'method', 'not-resettable')),
  reset_method TEXT,
  reset_reason TEXT,
  reset_at_ms INTEGER,
  permissive INTEGER NOT NULL DEFAULT 0 CHECK (permissive IN (0, 1)),
  allow_interrupt_control INTEGER NOT NULL DEFAULT 0 CHECK (allow_interrupt_control IN (0, 1)),
  CHECK ((original_driver_state = 'bound') = (original_driver IS NOT NULL))
) STRICT;

CREATE TABLE quirk (
  address TEXT NOT NULL REFERENCES assignable (address) ON DELETE CASCADE,
  reg INTEGER NOT NULL CHECK (reg BETWEEN 0 AND 4095),
  size INTEGER NOT NULL CHECK (size IN (1, 2, 4)),
  mask INTEGER NOT NULL CHECK (mask BETWEEN 0 AND 4294967295),
  PRIMARY KEY (address, reg)
) STRICT, WITHOUT ROWID;

CREATE TABLE attachment (
  address TEXT PRIMARY KEY NOT NULL REFERENCES assignable (address) ON DELETE RESTRICT,
  domid INTEGER NOT NULL CHECK (domid BETWEEN 1 AND 32751),
  domain_name TEXT NOT NULL,
  vdev TEXT,
  permissive INTEGER NOT NULL CHECK (permissive IN (0, 1)),
  msitranslate INTEGER NOT NULL CHECK (msitranslate IN (0, 1)),
  power_mgmt INTEGER NOT NULL CHECK (power_mgmt IN (0, 1)),
  rdm_policy TEXT NOT NULL CHECK (rdm_policy IN ('strict', 'relaxed')),
  attached_at_ms INTEGER NOT NULL,
  UNIQUE (domid, vdev)
) STRICT;

CREATE INDEX attachment_by_domid ON attachment (domid);

-- No foreign key: the log outlives the records it talks about.
CREATE TABLE event (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  kind TEXT NOT NULL,
  address TEXT,
  message TEXT NOT NULL
) STRICT;
`;

/** Every migration, in order; `MIGRATIONS[i].version === i + 1`. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'assignable devices, quirks, attachments, event log',
    up(db) {
      db.exec(V1_SQL);
      db.pragma(`application_id = ${APPLICATION_ID}`);
    },
  },
];

/** The version this program writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** What {@link readHeader} finds. */
export interface SchemaHeader {
  readonly applicationId: number;
  readonly userVersion: number;
  /** Tables, indexes, views or triggers present. */
  readonly objectCount: number;
}

/** Read the marker, version and size of the schema (no write, no lock held after). */
export function readHeader(db: Database.Database): SchemaHeader {
  return {
    applicationId: db.pragma('application_id', { simple: true }) as number,
    userVersion: db.pragma('user_version', { simple: true }) as number,
    objectCount: (
      db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as {
        n: number;
      }
    ).n,
  };
}

/**
 * Refuse a file that is not ours or is newer than `latest`. An empty database (no
 * objects, version 0) is ours to create.
 */
export function checkHeader(header: SchemaHeader, path: string, latest: number): void {
  const { applicationId, userVersion, objectCount } = header;
  if (applicationId !== 0 && applicationId !== APPLICATION_ID) {
    throw new PcibackError(
      STATE_ERROR.foreignFile,
      `Cannot open state database "${path}": it belongs to another program (application_id 0x${(applicationId >>> 0).toString(16)})`,
    );
  }
  if (applicationId === 0 && userVersion === 0 && objectCount > 0) {
    throw new PcibackError(
      STATE_ERROR.foreignFile,
      `Cannot open state database "${path}": it has ${objectCount} schema objects but no pciback marker; move it away`,
    );
  }
  if (userVersion > latest) {
    throw new PcibackError(
      STATE_ERROR.schemaTooNew,
      `Cannot open state database "${path}": its schema version ${userVersion} is newer than this pciback supports (${latest}); run a newer pciback or move the file away`,
    );
  }
}

/** What {@link migrate} did. */
export interface MigrationResult {
  readonly fromVersion: number;
  readonly toVersion: number;
}

/**
 * Bring the schema to the last of `migrations`, one transaction per step. Throws
 * `STATE_SCHEMA_TOO_NEW`, `STATE_FOREIGN_FILE`, or `STATE_MIGRATION_FAILED` (with the
 * cause) leaving the file at the last completed version.
 */
export function migrate(
  db: Database.Database,
  path: string,
  migrations: readonly Migration[] = MIGRATIONS,
): MigrationResult {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new RangeError(`Migration ${i} has version ${m.version}: expected ${i + 1}`);
    }
  });
  const latest = migrations.length;
  let fromVersion: number | undefined;
  for (;;) {
    // Re-read inside each transaction: another process may have migrated meanwhile.
    const step = db
      .transaction((): number | null => {
        const header = readHeader(db);
        checkHeader(header, path, latest);
        fromVersion ??= header.userVersion;
        const migration = migrations[header.userVersion];
        if (migration === undefined) return null;
        try {
          migration.up(db);
        } catch (err) {
          throw new PcibackError(
            STATE_ERROR.migrationFailed,
            `Cannot migrate state database "${path}" to schema version ${migration.version} (${migration.description}): ${(err as Error).message}`,
            { cause: err },
          );
        }
        db.pragma(`user_version = ${migration.version}`);
        return migration.version;
      })
      .immediate();
    if (step === null) break;
  }
  return { fromVersion: fromVersion ?? latest, toVersion: latest };
}
