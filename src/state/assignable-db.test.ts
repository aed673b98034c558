// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PciAddress } from '../pci/address.js';
import { AssignableDb, STATE_DB_FILE } from './assignable-db.js';
import { openTestDb, stateError, tempDir } from './test-support.js';
import { STATE_ERROR, type OriginalDriverInput } from './types.js';

const NIC = PciAddress.parse('0000:03:00.0');
const GPU = PciAddress.parse('0000:0a:00.0');
const AUDIO = PciAddress.parse('0000:0a:00.1');
const E1000E: OriginalDriverInput = { state: 'bound', name: 'e1000e' };

function seize(db: AssignableDb, address: PciAddress, name?: string) {
  return db.addAssignable(address, {
    originalDriver: E1000E,
    stubDriver: 'pciback',
    ...(name === undefined ? {} : { name }),
  });
}

test('AssignableDb.open() creates the directory 0700 and the file 0600 in WAL mode with synchronous=FULL', (t) => {
  const root = tempDir(t);
  const dir = join(root, 'a', 'b');
  const db = AssignableDb.open(dir);
  t.after(() => {
    db.close();
  });
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, STATE_DB_FILE)).mode & 0o777, 0o600);
  const info = db.info();
  assert.equal(info.path, join(dir, STATE_DB_FILE));
  assert.equal(info.journalMode, 'wal');
  assert.equal(info.synchronous, 'full');
  assert.equal(info.foreignKeys, true);
  assert.equal(info.schemaVersion, 1);
});

test('AssignableDb.open() reports a state directory it cannot create', (t) => {
  const root = tempDir(t);
  AssignableDb.open(root).close(); // creates root/pciback.sqlite, a file
  assert.throws(
    () => AssignableDb.open(join(root, STATE_DB_FILE, 'sub')),
    stateError(STATE_ERROR.openFailed, /^Cannot open state database ".*sub\/pciback\.sqlite": /),
  );
});

test('AssignableDb.open() rejects a bad eventLimit or busyTimeoutMs', (t) => {
  const dir = tempDir(t);
  assert.throws(() => AssignableDb.open(dir, { eventLimit: 0 }), RangeError);
  assert.throws(() => AssignableDb.open(dir, { busyTimeoutMs: -1 }), RangeError);
});

test('addAssignable() records the device, its original driver and the stub, and logs it', (t) => {
  const { db, clock } = openTestDb(t);
  const t0 = clock.nowMs;
  const record = db.addAssignable(NIC, {
    originalDriver: E1000E,
    stubDriver: 'pciback',
    name: 'nic',
    policy: { permissive: true },
    quirks: [{ reg: 0xe0, size: 2, mask: 0xffff }],
  });
  assert.equal(record.address.toString(), '0000:03:00.0');
  assert.equal(record.name, 'nic');
  assert.deepEqual(record.originalDriver, {
    state: 'bound',
    name: 'e1000e',
    driverPath: '/sys/bus/pci/drivers/e1000e',
  });
  assert.equal(record.stubDriver, 'pciback');
  assert.equal(record.status, 'seized');
  assert.equal(record.observedDriver, null);
  assert.ok(record.seizedAtMs >= t0);
  assert.equal(record.statusSinceMs, record.seizedAtMs);
  assert.deepEqual(record.reset, { state: 'unknown' });
  assert.deepEqual(record.policy, { permissive: true, allowInterruptControl: false });
  assert.deepEqual(record.quirks, [{ reg: 0xe0, size: 2, mask: 0xffff }]);
  assert.deepEqual(db.getAssignable(NIC), record);

  const [event] = db.recentLog();
  assert.equal(event?.kind, 'assignable-added');
  assert.equal(event.device?.toString(), '0000:03:00.0');
  assert.equal(
    event.message,
    'Seized device "0000:03:00.0" as "nic" for stub "pciback": original driver "e1000e" (/sys/bus/pci/drivers/e1000e)',
  );
});

test('addAssignable() keeps a given driver_path, no driver, or an unknown one', (t) => {
  const { db } = openTestDb(t);
  const a = db.addAssignable(NIC, {
    originalDriver: { state: 'bound', name: 'nvme', driverPath: '/sys/bus/pci/drivers/nvme' },
    stubDriver: 'pciback',
  });
  assert.deepEqual(a.originalDriver, {
    state: 'bound',
    name: 'nvme',
    driverPath: '/sys/bus/pci/drivers/nvme',
  });
  const b = db.addAssignable(GPU, { originalDriver: { state: 'none' }, stubDriver: 'pciback' });
  assert.deepEqual(b.originalDriver, { state: 'none' });
  assert.equal(b.name, null);
  const c = db.addAssignable(AUDIO, {
    originalDriver: { state: 'unknown' },
    stubDriver: 'vfio-pci',
  });
  assert.deepEqual(c.originalDriver, { state: 'unknown' });
  assert.equal(c.stubDriver, 'vfio-pci');
  assert.deepEqual(
    db.listAssignable().map((d) => d.address.toString()),
    ['0000:03:00.0', '0000:0a:00.0', '0000:0a:00.1'],
  );
});

test('addAssignable() refuses a device already recorded', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  assert.throws(
    () => seize(db, NIC),
    stateError(
      STATE_ERROR.duplicateDevice,
      /^Cannot add device "0000:03:00.0" to the assignable list: it is already there \(status "seized"\)$/,
    ),
  );
});

test('addAssignable() refuses a name another device has', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC, 'nic');
  assert.throws(
    () => seize(db, GPU, 'nic'),
    stateError(STATE_ERROR.duplicateName, /the name "nic" is used by device "0000:03:00.0"$/),
  );
  assert.equal(db.getAssignable(GPU), undefined);
});

test('addAssignable() validates names as xl does (1-64 isgraph), no comma, no address shape', (t) => {
  const { db } = openTestDb(t);
  const bad: [string, RegExp][] = [
    ['', /a name cannot be empty/],
    ['my nic', /printable ASCII characters and no spaces/],
    ['tab\there', /no spaces/],
    ['caf\u00e9', /printable ASCII/],
    ['x'.repeat(65), /at most 64 characters/],
    ['a,b', /cannot contain a comma/],
    ['03:00.0', /cannot look like a PCI address/],
  ];
  for (const [name, message] of bad) {
    assert.throws(() => seize(db, NIC, name), stateError(STATE_ERROR.invalid, message), name);
  }
  assert.equal(db.listAssignable().length, 0);
  assert.equal(seize(db, NIC, 'x'.repeat(64)).name, 'x'.repeat(64));
  assert.equal(seize(db, GPU, '!~gpu#1').name, '!~gpu#1');
});

test('addAssignable() validates the drivers, policy and quirks it is given', (t) => {
  const { db } = openTestDb(t);
  assert.throws(
    () => db.addAssignable(NIC, { originalDriver: E1000E, stubDriver: 'pci back' }),
    stateError(STATE_ERROR.invalid, /driver name/),
  );
  assert.throws(
    () =>
      db.addAssignable(NIC, {
        originalDriver: { state: 'bound', name: '../evil' },
        stubDriver: 'pciback',
      }),
    stateError(STATE_ERROR.invalid, /cannot be a path/),
  );
  assert.throws(
    () =>
      db.addAssignable(NIC, {
        originalDriver: { state: 'bound', name: 'e1000e', driverPath: 'drivers/e1000e' },
        stubDriver: 'pciback',
      }),
    stateError(STATE_ERROR.invalid, /driverPath: a driver path is absolute/),
  );
  assert.throws(
    () =>
      db.addAssignable(NIC, {
        originalDriver: E1000E,
        stubDriver: 'pciback',
        policy: { permissive: 'yes' } as unknown as { permissive: boolean },
      }),
    stateError(STATE_ERROR.invalid, /permissive/),
  );
  assert.equal(db.listAssignable().length, 0);
});

test('getAssignable() finds by address, short address text or name, name first', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC, 'nic');
  seize(db, GPU, 'gpu');
  assert.equal(db.getAssignable('nic')?.address.toString(), '0000:03:00.0');
  assert.equal(db.getAssignable('03:00.0')?.address.toString(), '0000:03:00.0');
  assert.equal(db.getAssignable('0000:0a:00.0')?.name, 'gpu');
  assert.equal(db.getAssignable(GPU)?.name, 'gpu');
  assert.equal(db.getAssignable('nope'), undefined);
  assert.equal(db.getAssignable('zz:00.0'), undefined);
  assert.equal(db.getAssignable(AUDIO), undefined);
});

test('removeAssignable() returns the last record with its quirks, forgets it and logs it', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC, 'nic');
  db.addQuirk('nic', { reg: 0x40, size: 4, mask: 0xffffffff });
  const removed = db.removeAssignable('nic');
  assert.deepEqual(removed.originalDriver, {
    state: 'bound',
    name: 'e1000e',
    driverPath: '/sys/bus/pci/drivers/e1000e',
  });
  assert.deepEqual(removed.quirks, [{ reg: 0x40, size: 4, mask: 0xffffffff }]);
  assert.equal(db.getAssignable(NIC), undefined);
  // The quirk went with it (ON DELETE CASCADE): re-adding starts clean.
  assert.deepEqual(seize(db, NIC).quirks, []);
  const kinds = db.recentLog().map((e) => e.kind);
  assert.deepEqual(kinds, [
    'assignable-added',
    'quirk-added',
    'assignable-removed',
    'assignable-added',
  ]);
  assert.match(
    db.recentLog()[2]?.message ?? '',
    /^Removed device "0000:03:00.0" from the assignable list: original driver "e1000e"/,
  );
});

test('removeAssignable() refuses an unknown device and an attached one', (t) => {
  const { db } = openTestDb(t);
  assert.throws(
    () => db.removeAssignable('nic'),
    stateError(
      STATE_ERROR.unknownDevice,
      /^Cannot remove device "nic" from the assignable list: no assignable device has the address or name "nic"$/,
    ),
  );
  seize(db, NIC);
  db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  assert.throws(
    () => db.removeAssignable(NIC),
    stateError(
      STATE_ERROR.alreadyAttached,
      /^Cannot remove device "0000:03:00.0" from the assignable list: it is attached to domain 5 \("web"\); detach it first$/,
    ),
  );
  assert.ok(db.getAssignable(NIC));
});

test('setName() renames, clears, keeps a device its own name, and refuses a taken one', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC, 'nic');
  seize(db, GPU, 'gpu');
  assert.equal(db.setName('nic', 'lan').name, 'lan');
  assert.equal(db.getAssignable('nic'), undefined);
  assert.equal(db.setName(NIC, 'lan').name, 'lan');
  assert.throws(
    () => db.setName(NIC, 'gpu'),
    stateError(
      STATE_ERROR.duplicateName,
      /^Cannot name device "0000:03:00.0" "gpu": the name "gpu" is used by device "0000:0a:00.0"$/,
    ),
  );
  assert.throws(() => db.setName(NIC, 'a b'), stateError(STATE_ERROR.invalid, /no spaces/));
  assert.equal(db.setName('lan', null).name, null);
  assert.throws(() => db.setName('lan', 'x'), stateError(STATE_ERROR.unknownDevice));
  const messages = db.recentLog({ device: NIC }).map((e) => e.message);
  assert.deepEqual(messages.slice(1), [
    'Named device "0000:03:00.0" "lan"',
    'Named device "0000:03:00.0" "lan"',
    'Removed the name of device "0000:03:00.0" ("lan")',
  ]);
});

test('setPolicy() changes only the fields given', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  assert.deepEqual(db.setPolicy(NIC, { allowInterruptControl: true }).policy, {
    permissive: false,
    allowInterruptControl: true,
  });
  assert.deepEqual(db.setPolicy(NIC, { permissive: true }).policy, {
    permissive: true,
    allowInterruptControl: true,
  });
  assert.deepEqual(db.setPolicy(NIC, { allowInterruptControl: false }).policy, {
    permissive: true,
    allowInterruptControl: false,
  });
  assert.equal(
    db.recentLog().at(-1)?.message,
    'Set the policy of device "0000:03:00.0": permissive=1, allow_interrupt_control=0',
  );
  assert.throws(
    () => db.setPolicy(NIC, { permissive: true, extra: 1 } as unknown as { permissive: boolean }),
    stateError(STATE_ERROR.invalid, /extra/),
  );
  assert.throws(() => db.setPolicy(GPU, {}), stateError(STATE_ERROR.unknownDevice));
});

test('addQuirk() keeps quirks by register and refuses duplicates and bad values', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC, 'nic');
  db.addQuirk(NIC, { reg: 0xe0, size: 2, mask: 0xffff });
  db.addQuirk('nic', { reg: 0x40, size: 1, mask: 0xff });
  db.addQuirk('nic', { reg: 0xfff, size: 4, mask: 0 });
  assert.deepEqual(db.listQuirks(NIC), [
    { reg: 0x40, size: 1, mask: 0xff },
    { reg: 0xe0, size: 2, mask: 0xffff },
    { reg: 0xfff, size: 4, mask: 0 },
  ]);
  assert.equal(db.recentLog().at(-1)?.message, 'Added quirk 0000:03:00.0-fff:4:0');
  assert.throws(
    () => db.addQuirk(NIC, { reg: 0xe0, size: 4, mask: 1 }),
    stateError(
      STATE_ERROR.duplicateQuirk,
      /a quirk at register 0xe0 exists \(0000:03:00\.0-e0:2:ffff\)$/,
    ),
  );
  const bad: [object, RegExp][] = [
    [{ reg: 0x1000, size: 4, mask: 0 }, /reg is at most 0xfff/],
    [{ reg: -1, size: 4, mask: 0 }, /reg/],
    [{ reg: 0x10, size: 3, mask: 0 }, /size is 1, 2 or 4/],
    [{ reg: 0x10, size: 1, mask: 0x100 }, /mask does not fit in size bytes/],
    [{ reg: 0x10, size: 2, mask: 0x10000 }, /mask does not fit/],
    [{ reg: 0x10, size: 4, mask: 2 ** 32 }, /mask is at most 0xffffffff/],
    [{ reg: 1.5, size: 4, mask: 0 }, /reg/],
  ];
  for (const [quirk, message] of bad) {
    assert.throws(
      () => db.addQuirk(NIC, quirk as never),
      stateError(STATE_ERROR.invalid, message),
      JSON.stringify(quirk),
    );
  }
  assert.equal(db.listQuirks(NIC).length, 3);
  assert.throws(() => db.listQuirks(GPU), stateError(STATE_ERROR.unknownDevice));
});

test('removeQuirk() removes one quirk and refuses a register without one', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  db.addQuirk(NIC, { reg: 0xe0, size: 2, mask: 0xffff });
  assert.deepEqual(db.removeQuirk(NIC, 0xe0).quirks, []);
  assert.equal(db.recentLog().at(-1)?.message, 'Removed quirk 0000:03:00.0-e0:2:ffff');
  assert.throws(
    () => db.removeQuirk(NIC, 0xe0),
    stateError(
      STATE_ERROR.unknownQuirk,
      /^Cannot remove the quirk at 0xe0 of device "0000:03:00.0": there is no quirk there$/,
    ),
  );
});

test('recordReset() keeps the method that worked, or why the device is not resettable', (t) => {
  const { db, clock } = openTestDb(t);
  seize(db, NIC);
  clock.nowMs = 5_000_000;
  const ok = db.recordReset(NIC, { ok: true, method: 'flr' });
  assert.deepEqual(ok.reset, { state: 'method', method: 'flr', atMs: 5_000_000 });
  assert.equal(db.recentLog().at(-1)?.message, 'Device "0000:03:00.0" resets with "flr"');
  clock.nowMs = 6_000_000;
  const failed = db.recordReset(NIC, {
    ok: false,
    reason: 'no FLR, PM reset or bus reset available',
  });
  assert.deepEqual(failed.reset, {
    state: 'not-resettable',
    reason: 'no FLR, PM reset or bus reset available',
    atMs: 6_000_000,
  });
  assert.equal(
    db.recentLog().at(-1)?.message,
    'Device "0000:03:00.0" is not resettable: no FLR, PM reset or bus reset available',
  );
  assert.throws(
    () => db.recordReset(NIC, { ok: true, method: 'magic' } as never),
    stateError(STATE_ERROR.invalid, /method/),
  );
  assert.throws(
    () => db.recordReset(NIC, { ok: false, reason: '' }),
    stateError(STATE_ERROR.invalid, /reason/),
  );
  assert.equal(db.getAssignable(NIC)?.reset.state, 'not-resettable');
});

test('setStatus() records rebound with the driver found, and keeps status_since on no change', (t) => {
  const { db, clock } = openTestDb(t);
  seize(db, NIC);
  clock.nowMs = 9_000_000;
  const rebound = db.setStatus(NIC, 'rebound', { observedDriver: 'e1000e' });
  assert.equal(rebound.status, 'rebound');
  assert.equal(rebound.observedDriver, 'e1000e');
  assert.equal(rebound.statusSinceMs, 9_000_000);
  assert.equal(
    db.recentLog().at(-1)?.message,
    'Device "0000:03:00.0" is now rebound (driver "e1000e")',
  );
  clock.nowMs = 9_500_000;
  assert.equal(db.setStatus(NIC, 'rebound', { observedDriver: null }).statusSinceMs, 9_000_000);
  const back = db.setStatus(NIC, 'seized');
  assert.equal(back.status, 'seized');
  assert.equal(back.observedDriver, null);
  assert.ok(back.statusSinceMs >= 9_500_000);
  assert.throws(
    () => db.setStatus(NIC, 'rebound', { observedDriver: 'a b' }),
    stateError(STATE_ERROR.invalid),
  );
});

test('setStatus() refuses to take an attached device off the stub', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  db.recordAttachment(NIC, { domid: 3, domainName: 'vm3' });
  assert.throws(
    () => db.setStatus(NIC, 'missing'),
    stateError(
      STATE_ERROR.alreadyAttached,
      /^Cannot set the status of device "0000:03:00.0" to "missing": it is attached to domain 3 \("vm3"\); release it first$/,
    ),
  );
  assert.equal(db.getAssignable(NIC)?.status, 'seized');
});

test('recordAttachment() records owner, name, vdev and options with xl defaults', (t) => {
  const { db, clock } = openTestDb(t);
  seize(db, NIC, 'nic');
  seize(db, GPU);
  clock.nowMs = 7_000_000;
  const a = db.recordAttachment('nic', {
    domid: 5,
    domainName: 'web',
    vdev: PciAddress.parse('0000:00:01.0'),
  });
  assert.equal(a.address.toString(), '0000:03:00.0');
  assert.equal(a.domid, 5);
  assert.equal(a.domainName, 'web');
  assert.equal(a.vdev?.toString(), '0000:00:01.0');
  assert.deepEqual(a.options, {
    permissive: false,
    msitranslate: false,
    power_mgmt: false,
    rdm_policy: 'strict',
  });
  assert.equal(a.attachedAtMs, 7_000_000);
  const b = db.recordAttachment(GPU, {
    domid: 6,
    domainName: 'desk top',
    options: { permissive: true, rdm_policy: 'relaxed', power_mgmt: true },
  });
  assert.equal(b.vdev, null);
  assert.deepEqual(b.options, {
    permissive: true,
    msitranslate: false,
    power_mgmt: true,
    rdm_policy: 'relaxed',
  });
  assert.equal(
    db.recentLog().at(-1)?.message,
    'Attached device "0000:0a:00.0" to domain 6 ("desk top"), permissive',
  );
  assert.deepEqual(db.getAttachment('nic'), a);
  assert.deepEqual(db.listAttachments(), [a, b]);
  assert.deepEqual(db.listAttachments(6), [b]);
  assert.deepEqual(db.listAttachments(7), []);
  // Per-attachment permissive does not touch the device-wide policy.
  assert.equal(db.getAssignable(GPU)?.policy.permissive, false);
});

test('recordAttachment() refuses a device attached already, to this or another domain', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  for (const domid of [5, 6]) {
    assert.throws(
      () => db.recordAttachment(NIC, { domid, domainName: 'x' }),
      stateError(
        STATE_ERROR.alreadyAttached,
        new RegExp(
          `^Cannot attach device "0000:03:00.0" to domain ${domid}: it is already attached to domain 5 \\("web"\\)$`,
        ),
      ),
    );
  }
  assert.equal(db.listAttachments().length, 1);
});

test('recordAttachment() refuses a device that is not on the stub', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  db.setStatus(NIC, 'rebound', { observedDriver: 'e1000e' });
  assert.throws(
    () => db.recordAttachment(NIC, { domid: 5, domainName: 'web' }),
    stateError(
      STATE_ERROR.notAssignable,
      /^Cannot attach device "0000:03:00.0" to domain 5: its status is "rebound", not "seized" \(driver "e1000e"\)$/,
    ),
  );
  db.setStatus(NIC, 'missing');
  assert.throws(
    () => db.recordAttachment(NIC, { domid: 5, domainName: 'web' }),
    stateError(STATE_ERROR.notAssignable, /its status is "missing", not "seized"$/),
  );
});

test('recordAttachment() refuses a guest address another device of the domain has', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  seize(db, GPU);
  seize(db, AUDIO);
  const vdev = PciAddress.parse('00:02.0');
  db.recordAttachment(NIC, { domid: 5, domainName: 'web', vdev });
  assert.throws(
    () => db.recordAttachment(GPU, { domid: 5, domainName: 'web', vdev }),
    stateError(
      STATE_ERROR.vdevInUse,
      /^Cannot attach device "0000:0a:00.0" to domain 5: guest address "0000:00:02.0" holds device "0000:03:00.0"$/,
    ),
  );
  // Another domain may use the same guest address.
  assert.equal(db.recordAttachment(GPU, { domid: 6, domainName: 'db', vdev }).domid, 6);
});

test('recordAttachment() validates domid, domain name and options, and the device', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  const bad: [object, RegExp][] = [
    [{ domid: 0, domainName: 'dom0' }, /dom0 cannot be a guest/],
    [{ domid: 0x7ff0, domainName: 'x' }, /at most 0x7fef/],
    [{ domid: 2.5, domainName: 'x' }, /integer/],
    [{ domid: 2, domainName: '' }, /cannot be empty/],
    [{ domid: 2, domainName: 'a\nb' }, /control characters/],
    [{ domid: 2, domainName: 'x', options: { rdm_policy: 'loose' } }, /rdm_policy/],
    [{ domid: 2, domainName: 'x', options: { seize: true } }, /seize/],
  ];
  for (const [options, message] of bad) {
    assert.throws(
      () => db.recordAttachment(NIC, options as never),
      stateError(STATE_ERROR.invalid, message),
      JSON.stringify(options),
    );
  }
  assert.throws(
    () => db.recordAttachment(GPU, { domid: 2, domainName: 'x' }),
    stateError(
      STATE_ERROR.unknownDevice,
      /^Cannot attach device "0000:0a:00.0" to domain 2: no assignable device/,
    ),
  );
  assert.deepEqual(db.listAttachments(), []);
  assert.throws(() => db.listAttachments(0), stateError(STATE_ERROR.invalid));
});

test('releaseAttachment() returns the attachment and refuses a device not attached there', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC, 'nic');
  assert.throws(
    () => db.releaseAttachment('nic'),
    stateError(
      STATE_ERROR.notAttached,
      /^Cannot release device "0000:03:00.0": it is not attached to any domain$/,
    ),
  );
  const attached = db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  assert.throws(
    () => db.releaseAttachment(NIC, { domid: 7 }),
    stateError(
      STATE_ERROR.notAttached,
      /^Cannot release device "0000:03:00.0" from domain 7: it is attached to domain 5 \("web"\)$/,
    ),
  );
  assert.deepEqual(db.releaseAttachment('nic', { domid: 5 }), attached);
  assert.equal(db.getAttachment(NIC), undefined);
  assert.equal(
    db.recentLog().at(-1)?.message,
    'Released device "0000:03:00.0" from domain 5 ("web")',
  );
  // Released: it can go to another guest.
  assert.equal(db.recordAttachment(NIC, { domid: 7, domainName: 'b' }).domid, 7);
  assert.throws(() => db.releaseAttachment(GPU), stateError(STATE_ERROR.unknownDevice));
});

test('log() appends events and recentLog() returns the newest, oldest first, per device', (t) => {
  const { db, clock } = openTestDb(t);
  clock.nowMs = 1000;
  const e1 = db.log({ kind: 'daemon-start', message: 'Started' });
  const e2 = db.log({ kind: 'note', message: 'About the nic', device: NIC });
  assert.deepEqual(e1, {
    id: e1.id,
    atMs: 1000,
    kind: 'daemon-start',
    device: null,
    message: 'Started',
  });
  assert.ok(e2.id > e1.id);
  assert.equal(e2.device?.toString(), '0000:03:00.0');
  assert.deepEqual(db.recentLog(), [e1, e2]);
  assert.deepEqual(db.recentLog({ limit: 1 }), [e2]);
  assert.deepEqual(db.recentLog({ limit: 0 }), []);
  assert.deepEqual(db.recentLog({ device: NIC }), [e2]);
  assert.deepEqual(db.recentLog({ device: GPU }), []);
  assert.throws(
    () => db.log({ kind: 'Bad Kind', message: 'x' }),
    stateError(STATE_ERROR.invalid, /kebab-case/),
  );
  assert.throws(
    () => db.log({ kind: 'ok', message: '' }),
    stateError(STATE_ERROR.invalid, /cannot be empty/),
  );
  assert.throws(
    () => db.log({ kind: 'ok', message: 'x'.repeat(4097) }),
    stateError(STATE_ERROR.invalid, /at most 4096/),
  );
  assert.throws(() => db.recentLog({ limit: -1 }), RangeError);
});

test('The event log keeps only the last eventLimit entries', (t) => {
  const { db } = openTestDb(t, { eventLimit: 5 });
  for (let i = 0; i < 12; i++) db.log({ kind: 'tick', message: `tick ${i}` });
  const log = db.recentLog({ limit: 100 });
  assert.deepEqual(
    log.map((e) => e.message),
    ['tick 7', 'tick 8', 'tick 9', 'tick 10', 'tick 11'],
  );
  // Ids are never reused after pruning.
  assert.deepEqual(
    log.map((e) => e.id),
    [8, 9, 10, 11, 12],
  );
  assert.equal(db.info().eventLimit, 5);
});

test('transaction() commits every change together, or none when it throws', (t) => {
  const { db } = openTestDb(t);
  const result = db.transaction(() => {
    seize(db, NIC);
    db.recordReset(NIC, { ok: true, method: 'flr' });
    return 'done';
  });
  assert.equal(result, 'done');
  assert.equal(db.getAssignable(NIC)?.reset.state, 'method');
  const before = db.recentLog();
  assert.throws(
    () =>
      db.transaction(() => {
        seize(db, GPU, 'gpu');
        db.recordAttachment(GPU, { domid: 4, domainName: 'vm' });
        db.setPolicy(NIC, { permissive: true });
        throw new Error('power cut (simulated)');
      }),
    /power cut/,
  );
  assert.equal(db.getAssignable(GPU), undefined);
  assert.equal(db.getAssignable('gpu'), undefined);
  assert.deepEqual(db.listAttachments(), []);
  assert.equal(db.getAssignable(NIC)?.policy.permissive, false);
  assert.deepEqual(db.recentLog(), before);
});

test('transaction() nests: an inner failure caught inside keeps the outer changes', (t) => {
  const { db } = openTestDb(t);
  db.transaction(() => {
    seize(db, NIC);
    assert.throws(() => {
      db.transaction(() => {
        seize(db, GPU);
        seize(db, GPU);
      });
    }, stateError(STATE_ERROR.duplicateDevice));
  });
  assert.ok(db.getAssignable(NIC));
  assert.equal(db.getAssignable(GPU), undefined);
});

test('addAssignable() failing at its second quirk leaves neither the device, its quirks nor an event', (t) => {
  const { db } = openTestDb(t);
  assert.throws(
    () =>
      db.addAssignable(NIC, {
        originalDriver: E1000E,
        stubDriver: 'pciback',
        name: 'nic',
        quirks: [
          { reg: 0xe0, size: 2, mask: 0xffff },
          { reg: 0xe0, size: 4, mask: 0 },
        ],
      }),
    stateError(STATE_ERROR.duplicateQuirk),
  );
  assert.equal(db.getAssignable(NIC), undefined);
  assert.deepEqual(db.listAssignable(), []);
  assert.deepEqual(db.recentLog(), []);
  // Nothing half-written: the same device and name can be added now.
  assert.equal(seize(db, NIC, 'nic').name, 'nic');
});

test('A closed handle refuses every call with STATE_CLOSED; close() twice is harmless', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  db.close();
  db.close();
  assert.equal(db.isOpen, false);
  assert.throws(() => db.listAssignable(), stateError(STATE_ERROR.closed, /is closed$/));
  assert.throws(() => seize(db, GPU), stateError(STATE_ERROR.closed));
  assert.throws(() => db.log({ kind: 'x', message: 'y' }), stateError(STATE_ERROR.closed));
});

test('Everything survives close and reopen', (t) => {
  const { db, dir } = openTestDb(t);
  seize(db, NIC, 'nic');
  db.addQuirk(NIC, { reg: 0xe0, size: 2, mask: 0xffff });
  db.setPolicy(NIC, { permissive: true, allowInterruptControl: true });
  db.recordReset(NIC, { ok: false, reason: 'no reset method' });
  db.recordAttachment(NIC, {
    domid: 9,
    domainName: 'nine',
    vdev: PciAddress.parse('00:05.0'),
    options: { permissive: true },
  });
  const device = db.getAssignable(NIC);
  const attachments = db.listAttachments();
  const log = db.recentLog();
  db.close();
  const again = AssignableDb.open(dir);
  t.after(() => {
    again.close();
  });
  assert.deepEqual(again.getAssignable('nic'), device);
  assert.deepEqual(again.listAttachments(), attachments);
  assert.deepEqual(again.recentLog(), log);
});

test('A row edited into nonsense is reported as STATE_CORRUPT, naming the row', (t) => {
  const { db } = openTestDb(t);
  seize(db, NIC);
  const raw = new Database(db.path);
  t.after(() => raw.close());
  raw
    .prepare(
      "UPDATE assignable SET reset_state = 'method', reset_method = 'magic', reset_at_ms = 1",
    )
    .run();
  assert.throws(
    () => db.getAssignable(NIC),
    stateError(
      STATE_ERROR.corrupt,
      /^Cannot read state database row assignable "0000:03:00.0": reset_method: /,
    ),
  );
  raw.prepare('UPDATE assignable SET reset_method = NULL').run();
  assert.throws(
    () => db.getAssignable(NIC),
    stateError(STATE_ERROR.corrupt, /a reset method has no name or time$/),
  );
  raw.prepare("UPDATE assignable SET reset_state = 'unknown', address = '3:0.0'").run();
  assert.throws(
    () => db.listAssignable(),
    stateError(
      STATE_ERROR.corrupt,
      /row assignable "3:0.0": the address is not in canonical form "0000:03:00.0"$/,
    ),
  );
});

test("Two handles share the file (WAL): each sees the other's commits", (t) => {
  const { db: a, dir } = openTestDb(t);
  const b = AssignableDb.open(dir);
  t.after(() => {
    b.close();
  });
  seize(a, NIC, 'nic');
  assert.equal(b.getAssignable('nic')?.address.toString(), '0000:03:00.0');
  b.recordAttachment('nic', { domid: 2, domainName: 'two' });
  assert.equal(a.getAttachment(NIC)?.domid, 2);
  assert.throws(
    () => a.recordAttachment(NIC, { domid: 3, domainName: 'three' }),
    stateError(STATE_ERROR.alreadyAttached, /attached to domain 2/),
  );
});

test('A writer that waits longer than busyTimeoutMs gets STATE_BUSY; readers are not blocked', (t) => {
  const { db } = openTestDb(t, { busyTimeoutMs: 50 });
  seize(db, NIC);
  // Another process in the middle of a write transaction.
  const other = new Database(db.path);
  t.after(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  other.prepare("UPDATE assignable SET name = 'other'").run();
  const started = Date.now();
  assert.throws(
    () => seize(db, GPU),
    stateError(
      STATE_ERROR.busy,
      /^Cannot add device "0000:0a:00.0" to the assignable list: another process holds the database lock \(waited 50 ms\)$/,
    ),
  );
  assert.ok(Date.now() - started >= 40);
  // Reads go on from the last committed state.
  assert.equal(db.getAssignable(NIC)?.name, null);
  other.exec('COMMIT');
  assert.equal(db.getAssignable(NIC)?.name, 'other');
  assert.ok(seize(db, GPU));
});
