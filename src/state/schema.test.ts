// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AssignableDb, STATE_DB_FILE } from './assignable-db.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, migrate, type Migration } from './schema.js';
import { stateError, tempDir } from './test-support.js';
import { STATE_ERROR } from './types.js';

function tables(db: Database.Database): string[] {
  return (
    db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as {
      name: string;
    }[]
  ).map((r) => r.name);
}

function rawOpen(path: string): Database.Database {
  return new Database(path);
}

test('AssignableDb.open() migrates an empty (0-byte) file to the current schema', (t) => {
  const dir = tempDir(t);
  const path = join(dir, STATE_DB_FILE);
  writeFileSync(path, '');
  AssignableDb.open(dir).close();
  const raw = rawOpen(path);
  t.after(() => raw.close());
  assert.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(raw.pragma('application_id', { simple: true }), APPLICATION_ID);
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  assert.deepEqual(tables(raw), ['assignable', 'attachment', 'event', 'quirk', 'sqlite_sequence']);
  assert.deepEqual(raw.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
});

test('AssignableDb.open() refuses a file from a newer pciback and leaves it untouched', (t) => {
  const dir = tempDir(t);
  const path = join(dir, STATE_DB_FILE);
  const raw = rawOpen(path);
  raw.exec('CREATE TABLE future (x INTEGER)');
  raw.pragma(`application_id = ${APPLICATION_ID}`);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  const before = readFileSync(path);
  assert.throws(
    () => AssignableDb.open(dir),
    stateError(
      STATE_ERROR.schemaTooNew,
      new RegExp(
        `^Cannot open state database ".*pciback\\.sqlite": its schema version ${SCHEMA_VERSION + 1} is newer than this pciback supports \\(${SCHEMA_VERSION}\\); run a newer pciback or move the file away$`,
      ),
    ),
  );
  // Not even switched to WAL: the newer program's file is as it left it.
  assert.deepEqual(readFileSync(path), before);
});

test("AssignableDb.open() refuses another program's database", (t) => {
  const dir = tempDir(t);
  const path = join(dir, STATE_DB_FILE);
  const raw = rawOpen(path);
  raw.pragma('application_id = 1234');
  raw.close();
  assert.throws(
    () => AssignableDb.open(dir),
    stateError(STATE_ERROR.foreignFile, /belongs to another program \(application_id 0x4d2\)$/),
  );
  const dir2 = tempDir(t);
  const raw2 = rawOpen(join(dir2, STATE_DB_FILE));
  raw2.exec('CREATE TABLE users (id INTEGER)');
  raw2.close();
  assert.throws(
    () => AssignableDb.open(dir2),
    stateError(
      STATE_ERROR.foreignFile,
      /it has 1 schema objects but no pciback marker; move it away$/,
    ),
  );
});

test('AssignableDb.open() reports a file that is not a database', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, STATE_DB_FILE), 'this is not sqlite, just text '.repeat(200));
  assert.throws(
    () => AssignableDb.open(dir),
    stateError(STATE_ERROR.corrupt, /^Cannot open state database ".*": file is not a database/),
  );
});

const V2: Migration = {
  version: 2,
  description: 'device notes',
  up(db) {
    db.exec('CREATE TABLE note (address TEXT NOT NULL, text TEXT NOT NULL) STRICT');
    db.exec("ALTER TABLE assignable ADD COLUMN colour TEXT NOT NULL DEFAULT 'blue'");
  },
};

test('migrate() runs the missing steps in order and keeps the data', (t) => {
  const dir = tempDir(t);
  const path = join(dir, STATE_DB_FILE);
  const raw = rawOpen(path);
  t.after(() => raw.close());
  assert.deepEqual(migrate(raw, path, MIGRATIONS.slice(0, 1)), { fromVersion: 0, toVersion: 1 });
  raw
    .prepare(
      `INSERT INTO assignable (address, original_driver_state, stub_driver, seized_at_ms, status,
         status_since_ms) VALUES ('0000:03:00.0', 'none', 'pciback', 1, 'seized', 1)`,
    )
    .run();
  assert.deepEqual(migrate(raw, path, [...MIGRATIONS, V2]), { fromVersion: 1, toVersion: 2 });
  assert.equal(raw.pragma('user_version', { simple: true }), 2);
  assert.ok(tables(raw).includes('note'));
  assert.deepEqual(raw.prepare('SELECT address, colour FROM assignable').all(), [
    { address: '0000:03:00.0', colour: 'blue' },
  ]);
  // Up to date: nothing to do.
  assert.deepEqual(migrate(raw, path, [...MIGRATIONS, V2]), { fromVersion: 2, toVersion: 2 });
  // This program (schema 1) now refuses the file.
  raw.close();
  assert.throws(
    () => AssignableDb.open(dir),
    stateError(STATE_ERROR.schemaTooNew, /version 2 is newer/),
  );
});

test('migrate() rolls back a failing step whole and keeps the previous version', (t) => {
  const dir = tempDir(t);
  const path = join(dir, STATE_DB_FILE);
  const raw = rawOpen(path);
  t.after(() => raw.close());
  const broken: Migration = {
    version: 2,
    description: 'half a migration',
    up(db) {
      db.exec('CREATE TABLE half (x INTEGER)');
      db.exec('ALTER TABLE no_such_table ADD COLUMN y INTEGER');
    },
  };
  assert.throws(
    () => migrate(raw, path, [...MIGRATIONS, broken]),
    stateError(
      STATE_ERROR.migrationFailed,
      /^Cannot migrate state database ".*" to schema version 2 \(half a migration\): no such table: no_such_table$/,
    ),
  );
  assert.equal(raw.pragma('user_version', { simple: true }), 1);
  assert.ok(!tables(raw).includes('half'));
  assert.ok(tables(raw).includes('assignable'));
});

test('migrate() refuses a migration list out of order', (t) => {
  const dir = tempDir(t);
  const path = join(dir, STATE_DB_FILE);
  const raw = rawOpen(path);
  t.after(() => raw.close());
  assert.throws(() => migrate(raw, path, [V2]), /Migration 0 has version 2: expected 1/);
  assert.equal(raw.pragma('user_version', { simple: true }), 0);
});
