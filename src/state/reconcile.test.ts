// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PcibackError } from '../errors.js';
import { PciAddress } from '../pci/address.js';
import type { PciResource } from '../pci/resource.js';
import type {
  HostPciFunctionInfo,
  PciHostPlatform,
  PciResetOutcome,
} from '../platform/pci-host.js';
import type { HostPciDevice, Logger } from '../platform/types.js';
import type { AssignableDb } from './assignable-db.js';
import { reconcile } from './reconcile.js';
import { openTestDb, stateError } from './test-support.js';
import { STATE_ERROR } from './types.js';

/**
 * A host that only lists functions and their drivers: all reconcile reads. Changing
 * calls throw, so a test fails if reconcile ever touches the host.
 */
class FakeHost implements PciHostPlatform {
  readonly kind = 'fake';
  readonly #functions = new Map<number, HostPciFunctionInfo>();
  /** What `nativeDriver` answers (absent: undefined, the host cannot tell). */
  readonly native = new Map<number, string | null>();
  failList = false;

  nativeDriver(address: PciAddress): string | null | undefined {
    return this.native.get(address.key);
  }

  plug(bdf: string, driver: string | null): void {
    const address = PciAddress.parse(bdf);
    this.#functions.set(address.key, {
      address,
      vendorId: 0x8086,
      deviceId: 0x10d3,
      subsystemVendorId: 0x8086,
      subsystemDeviceId: 0xa01f,
      classCode: 0x020000,
      headerType: 0,
      driver,
      driverOverride: null,
      iommuGroup: 1,
      upstreamBridge: null,
      physfn: null,
      virtfns: [],
      resetMethods: ['flr'],
      irq: 11,
    });
  }

  unplug(bdf: string): void {
    this.#functions.delete(PciAddress.parse(bdf).key);
  }

  list(): readonly HostPciFunctionInfo[] {
    if (this.failList) {
      throw new PcibackError('HOST_IO', 'Cannot list PCI functions: sysfs went away');
    }
    return [...this.#functions.values()].sort((a, b) => a.address.compare(b.address));
  }
  info(address: PciAddress): HostPciFunctionInfo | undefined {
    return this.#functions.get(address.key);
  }
  open(_address: PciAddress): HostPciDevice {
    throw new Error('reconcile must not open devices');
  }
  resources(_address: PciAddress): readonly PciResource[] {
    throw new Error('reconcile must not read resources');
  }
  drivers(): readonly string[] {
    return ['pciback', 'e1000e', 'nvme'];
  }
  unbind(_address: PciAddress): void {
    throw new Error('reconcile must not unbind');
  }
  setDriverOverride(_address: PciAddress, _driver: string | null): void {
    throw new Error('reconcile must not set driver_override');
  }
  bind(_address: PciAddress, _driver: string): void {
    throw new Error('reconcile must not bind');
  }
  probe(_address: PciAddress): void {
    throw new Error('reconcile must not probe');
  }
  reset(_address: PciAddress): PciResetOutcome {
    throw new Error('reconcile must not reset');
  }
}

class RecordingLogger implements Logger {
  readonly lines: { level: string; obj: object; msg: string | undefined }[] = [];
  debug(obj: object, msg?: string): void {
    this.lines.push({ level: 'debug', obj, msg });
  }
  info(obj: object, msg?: string): void {
    this.lines.push({ level: 'info', obj, msg });
  }
  warn(obj: object, msg?: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: object, msg?: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
}

const NIC = PciAddress.parse('0000:03:00.0');
const NVME = PciAddress.parse('0000:04:00.0');
const GPU = PciAddress.parse('0000:0a:00.0');

function seize(db: AssignableDb, address: PciAddress): void {
  db.addAssignable(address, {
    originalDriver: { state: 'bound', name: 'e1000e' },
    stubDriver: 'pciback',
  });
}

function run(db: AssignableDb, host: FakeHost, live: Iterable<number>, logger?: Logger) {
  return reconcile(db, host, {
    stubDriver: 'pciback',
    liveDomains: () => live,
    ...(logger === undefined ? {} : { logger }),
  });
}

test('reconcile() changes nothing when database, host and domains agree', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  host.plug('03:00.0', 'pciback');
  host.plug('00:1f.0', 'lpc_ich');
  seize(db, NIC);
  db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  const before = db.recentLog();
  const logger = new RecordingLogger();
  assert.deepEqual(run(db, host, new Set([0, 5]), logger), []);
  assert.deepEqual(db.recentLog(), before);
  assert.deepEqual(logger.lines, [
    {
      level: 'info',
      obj: { repairs: 0, stubDriver: 'pciback', host: 'fake' },
      msg: 'State database agrees with the host',
    },
  ]);
});

test('reconcile() keeps a device gone from the host, marked missing, and logs it', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  seize(db, NIC);
  const repairs = run(db, host, []);
  assert.deepEqual(
    repairs.map((r) => [r.kind, r.device.toString(), r.message]),
    [
      [
        'device-missing',
        '0000:03:00.0',
        'Device "0000:03:00.0" is gone from the host; its record is kept (status was "seized")',
      ],
    ],
  );
  const record = db.getAssignable(NIC);
  assert.equal(record?.status, 'missing');
  // The original driver is still known, for when it comes back.
  assert.equal(record.originalDriver.state, 'bound');
  const last = db.recentLog().at(-1);
  assert.equal(last?.kind, 'device-missing');
  assert.equal(last.message, repairs[0]?.message);
  // Idempotent: a second pass finds nothing new.
  assert.deepEqual(run(db, host, []), []);
});

test('reconcile() notices a missing device that came back, on the stub or elsewhere', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  seize(db, NIC);
  seize(db, NVME);
  run(db, host, []);
  host.plug('03:00.0', 'pciback');
  host.plug('04:00.0', 'nvme');
  const repairs = run(db, host, []);
  assert.deepEqual(
    repairs.map((r) => [r.kind, r.device.toString(), r.message]),
    [
      [
        'device-returned',
        '0000:03:00.0',
        'Device "0000:03:00.0" is back on the host, on driver "pciback"',
      ],
      [
        'device-returned',
        '0000:04:00.0',
        'Device "0000:04:00.0" is back on the host, on driver "nvme"',
      ],
    ],
  );
  assert.equal(db.getAssignable(NIC)?.status, 'seized');
  assert.equal(db.getAssignable(NVME)?.status, 'rebound');
  assert.equal(db.getAssignable(NVME)?.observedDriver, 'nvme');
});

test('reconcile() marks a device rebound behind our back as no longer seized', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  host.plug('03:00.0', 'e1000e');
  host.plug('04:00.0', null);
  seize(db, NIC);
  seize(db, NVME);
  const repairs = run(db, host, []);
  assert.deepEqual(
    repairs.map((r) => [r.kind, r.device.toString(), r.message]),
    [
      [
        'device-rebound',
        '0000:03:00.0',
        'Device "0000:03:00.0" was moved to driver "e1000e" behind our back; it is no longer seized',
      ],
      [
        'device-rebound',
        '0000:04:00.0',
        'Device "0000:04:00.0" was moved to no driver behind our back; it is no longer seized',
      ],
    ],
  );
  const nic = db.getAssignable(NIC);
  assert.equal(nic?.status, 'rebound');
  assert.equal(nic.observedDriver, 'e1000e');
  assert.equal(db.getAssignable(NVME)?.observedDriver, null);
  // It cannot be attached until it is on the stub again.
  assert.throws(
    () => db.recordAttachment(NIC, { domid: 5, domainName: 'web' }),
    stateError(STATE_ERROR.notAssignable),
  );
  // Moved again: the record follows; then back to the stub.
  host.plug('03:00.0', 'igb');
  assert.deepEqual(
    run(db, host, []).map((r) => r.message),
    ['Device "0000:03:00.0" moved from driver "e1000e" to driver "igb"'],
  );
  host.plug('03:00.0', 'pciback');
  assert.deepEqual(
    run(db, host, []).map((r) => [r.kind, r.message]),
    [['device-reseized', 'Device "0000:03:00.0" is on stub "pciback" again']],
  );
  assert.equal(db.getAssignable(NIC)?.status, 'seized');
});

test('reconcile() releases an attachment whose guest is gone', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  host.plug('03:00.0', 'pciback');
  host.plug('0a:00.0', 'pciback');
  seize(db, NIC);
  seize(db, GPU);
  db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  db.recordAttachment(GPU, { domid: 6, domainName: 'desk' });
  const repairs = run(db, host, new Set([0, 6]));
  assert.deepEqual(repairs, [
    {
      kind: 'attachment-orphaned',
      device: NIC,
      domid: 5,
      message: 'Released device "0000:03:00.0" from domain 5 ("web"): the domain no longer exists',
    },
  ]);
  assert.equal(db.getAttachment(NIC), undefined);
  assert.equal(db.getAttachment(GPU)?.domid, 6);
  // The device itself stays assignable, ready for the next guest.
  assert.equal(db.getAssignable(NIC)?.status, 'seized');
  const last = db.recentLog().at(-1);
  assert.equal(last?.kind, 'attachment-orphaned');
  assert.equal(last.device?.toString(), '0000:03:00.0');
});

test('reconcile() releases the attachment of a live guest whose device left the stub', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  host.plug('03:00.0', 'e1000e');
  seize(db, NIC);
  seize(db, NVME);
  db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  db.recordAttachment(NVME, { domid: 5, domainName: 'web' });
  const repairs = run(db, host, [5]);
  assert.deepEqual(
    repairs.map((r) => [r.kind, r.device.toString(), r.domid, r.message]),
    [
      [
        'attachment-lost',
        '0000:03:00.0',
        5,
        'Released device "0000:03:00.0" from domain 5 ("web"): the device is on driver "e1000e", not on the stub',
      ],
      [
        'device-rebound',
        '0000:03:00.0',
        undefined,
        'Device "0000:03:00.0" was moved to driver "e1000e" behind our back; it is no longer seized',
      ],
      [
        'attachment-lost',
        '0000:04:00.0',
        5,
        'Released device "0000:04:00.0" from domain 5 ("web"): the device is gone from the host',
      ],
      [
        'device-missing',
        '0000:04:00.0',
        undefined,
        'Device "0000:04:00.0" is gone from the host; its record is kept (status was "seized")',
      ],
    ],
  );
  assert.deepEqual(db.listAttachments(), []);
  assert.deepEqual(
    db.recentLog({ limit: 4 }).map((e) => e.kind),
    ['attachment-lost', 'device-rebound', 'attachment-lost', 'device-missing'],
  );
});

test('reconcile() adopts a device on the stub that the database does not know', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  host.plug('03:00.0', 'pciback');
  host.plug('04:00.0', 'nvme');
  host.plug('0a:00.0', 'vfio-pci');
  const repairs = run(db, host, []);
  assert.deepEqual(repairs, [
    {
      kind: 'device-adopted',
      device: NIC,
      message:
        'Adopted device "0000:03:00.0" found on stub "pciback" without a record: its original driver is unknown, so removing it cannot rebind one',
    },
  ]);
  const record = db.getAssignable(NIC);
  assert.deepEqual(record?.originalDriver, { state: 'unknown' });
  assert.equal(record.stubDriver, 'pciback');
  assert.equal(record.status, 'seized');
  assert.equal(db.getAssignable(NVME), undefined);
  assert.equal(db.getAssignable(GPU), undefined);
  // One event, the adoption (not also an "assignable-added").
  assert.deepEqual(
    db.recentLog().map((e) => e.kind),
    ['device-adopted'],
  );
});

test('reconcile() adopts with the native driver when the host knows it (a boot-time hide=)', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  host.plug('03:00.0', 'pciback');
  host.plug('04:00.0', 'pciback');
  host.native.set(NIC.key, 'ixgbe');
  host.native.set(NVME.key, null);
  const repairs = run(db, host, []);
  assert.deepEqual(
    repairs.map((r) => r.message),
    [
      'Adopted device "0000:03:00.0" found on stub "pciback" without a record: its native driver is "ixgbe"',
      'Adopted device "0000:04:00.0" found on stub "pciback" without a record: no driver matches it',
    ],
  );
  assert.equal(db.getAssignable(NIC)?.originalDriver.state, 'bound');
  assert.deepEqual(
    { ...db.getAssignable(NIC)?.originalDriver, driverPath: undefined },
    { state: 'bound', name: 'ixgbe', driverPath: undefined },
  );
  assert.deepEqual(db.getAssignable(NVME)?.originalDriver, { state: 'none' });
});

test('reconcile() accepts any iterable of live domains and logs each repair after commit', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  host.plug('03:00.0', 'pciback');
  seize(db, NIC);
  db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  const logger = new RecordingLogger();
  function* domains(): Generator<number> {
    yield 0;
    yield 7;
  }
  const repairs = reconcile(db, host, { stubDriver: 'pciback', liveDomains: domains, logger });
  assert.equal(repairs.length, 1);
  assert.deepEqual(logger.lines, [
    {
      level: 'warn',
      obj: { kind: 'attachment-orphaned', device: '0000:03:00.0', domid: 5 },
      msg: 'Released device "0000:03:00.0" from domain 5 ("web"): the domain no longer exists',
    },
    {
      level: 'info',
      obj: { repairs: 1, stubDriver: 'pciback', host: 'fake' },
      msg: 'Repaired the state database: 1 change(s)',
    },
  ]);
});

test('reconcile() changes nothing when the host cannot be listed', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  seize(db, NIC);
  db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  host.failList = true;
  const before = db.recentLog();
  const logger = new RecordingLogger();
  assert.throws(() => run(db, host, [], logger), /sysfs went away/);
  assert.equal(db.getAttachment(NIC)?.domid, 5);
  assert.equal(db.getAssignable(NIC)?.status, 'seized');
  assert.deepEqual(db.recentLog(), before);
  assert.deepEqual(logger.lines, []);
});

test('reconcile() rolls back every repair when one fails half-way', (t) => {
  const { db } = openTestDb(t);
  const host = new FakeHost();
  seize(db, NIC);
  db.recordAttachment(NIC, { domid: 5, domainName: 'web' });
  // A stub whose name the database refuses: the adoption, the last step, throws after
  // the orphaned attachment was released and the NIC marked missing.
  host.plug('0a:00.0', 'pci back');
  const before = db.recentLog();
  assert.throws(
    () => reconcile(db, host, { stubDriver: 'pci back', liveDomains: () => [] }),
    stateError(
      STATE_ERROR.invalid,
      /^Cannot add device "0000:0a:00.0" to the assignable list: .*driver name/,
    ),
  );
  assert.equal(db.getAttachment(NIC)?.domid, 5);
  assert.equal(db.getAssignable(NIC)?.status, 'seized');
  assert.equal(db.getAssignable(GPU), undefined);
  assert.deepEqual(db.recentLog(), before);
});
