// SPDX-License-Identifier: MIT
// AssignableService against a fake sysfs that reacts like the kernel (FakeSysfs behind a
// LinuxPciHost) and a real state database in a temporary directory.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPcibackError } from '../errors.js';
import { PciAddress } from '../pci/index.js';
import {
  FakeSysfs,
  LinuxPciHost,
  type FakeConsumers,
  type FakeDriverSpec,
  type FakePciFunctionSpec,
} from '../platform/linux/index.js';
import type { Logger } from '../platform/types.js';
import { AssignableDb } from '../state/index.js';
import {
  ASSIGNABLE_ERROR,
  AssignableService,
  formatAssignableList,
  type AssignableServiceOptions,
} from './assignable-service.js';
import { forgetPcibackSlot } from './platform-session.js';

const NIC = '0000:03:00.0';
const NIC1 = '0000:03:00.1';
const NVME = '0000:04:00.0';
const HIDDEN = '0000:07:00.0';
const LONE = '0000:08:00.0';
const NO_GROUP = '0000:09:00.0';

function machine(): FakePciFunctionSpec[] {
  return [
    {
      address: '0000:00:1c.0',
      simple: {
        vendorId: 0x8086,
        deviceId: 0xa110,
        classCode: 0x060400,
        headerType: 1,
        secondaryBus: 3,
        subordinateBus: 3,
        pcie: {},
      },
      driver: 'pcieport',
    },
    {
      address: NIC,
      simple: {
        vendorId: 0x8086,
        deviceId: 0x10c9,
        classCode: 0x020000,
        irq: 16,
        barSizes: new Map([[0, 0x20000n]]),
        pcie: { flr: true },
      },
      driver: 'igb',
      iommuGroup: 7,
    },
    {
      address: NIC1,
      simple: {
        vendorId: 0x8086,
        deviceId: 0x10c9,
        classCode: 0x020000,
        irq: 17,
        barSizes: new Map([[0, 0x20000n]]),
        pcie: { flr: true },
      },
      driver: 'igb',
      iommuGroup: 7,
    },
    {
      address: NVME,
      simple: {
        vendorId: 0x144d,
        deviceId: 0xa80a,
        classCode: 0x010802,
        barSizes: new Map([[0, 0x4000n]]),
        pcie: { flr: true },
      },
      driver: 'nvme',
      iommuGroup: 8,
    },
    {
      address: HIDDEN,
      simple: { vendorId: 0x10de, deviceId: 0x1d10, classCode: 0x030000, pm: {} },
      driver: 'pciback',
      iommuGroup: 11,
    },
    {
      address: LONE,
      simple: { vendorId: 0x1b36, deviceId: 0x0001, classCode: 0x088000 },
      iommuGroup: 12,
    },
    {
      address: NO_GROUP,
      simple: { vendorId: 0x8086, deviceId: 0x10d3, classCode: 0x020000, pm: {} },
      driver: 'e1000e',
    },
  ];
}

interface Fixture {
  readonly sysfs: FakeSysfs;
  readonly host: LinuxPciHost;
  readonly db: AssignableDb;
  readonly service: AssignableService;
  readonly warnings: string[];
}

interface FixtureOptions {
  /** dom0's users of some functions, by BDF. */
  readonly consumers?: Readonly<Record<string, FakeConsumers>>;
  readonly stubDriver?: string;
  readonly drivers?: readonly (string | FakeDriverSpec)[];
  readonly service?: Partial<AssignableServiceOptions>;
}

function fixture(t: TestContext, options: FixtureOptions = {}): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'pciback-assignable-'));
  const sysfs = FakeSysfs.create({
    functions: machine().map((fn) => {
      const consumers = options.consumers?.[fn.address.toString()];
      return consumers === undefined ? fn : { ...fn, consumers };
    }),
    drivers: options.drivers ?? ['pciback', 'vfio-pci', 'pci-stub'],
    parentDir: dir,
  });
  const db = AssignableDb.open(join(dir, 'state'));
  t.after(() => {
    db.close();
    sysfs.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const host = new LinuxPciHost({
    io: sysfs,
    sleepMs: () => undefined,
    mountinfo: () => sysfs.mountinfo(),
  });
  const warnings: string[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn(_obj, msg) {
      warnings.push(msg ?? '');
    },
    error() {},
  };
  const stubDriver = options.stubDriver ?? 'pciback';
  const service = new AssignableService({
    host,
    db,
    stubDriver,
    logger,
    ...(stubDriver === 'pciback'
      ? {
          forgetStubSlot: (address: PciAddress) => {
            forgetPcibackSlot(sysfs, address);
          },
        }
      : {}),
    ...options.service,
  });
  return { sysfs, host, db, service, warnings };
}

function withCode(code: string, message?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isPcibackError(err), `expected a PcibackError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  };
}

/** Sets bus mastering (and memory decode) as a driver that is doing DMA would. */
function startDma(sysfs: FakeSysfs, bdf: string): void {
  sysfs.writeBytes(`bus/pci/devices/${bdf}/config`, 4, new Uint8Array([0x06, 0x00]));
}

test('add() moves a device from its driver to the stub and records where it came from', (t) => {
  const { sysfs, db, service } = fixture(t);
  sysfs.clearWriteLog();
  const result = service.add('03:00.0', { name: 'nic' });

  assert.equal(sysfs.driverOf(NIC), 'pciback');
  assert.equal(sysfs.driverOverrideOf(NIC), 'pciback');
  assert.deepEqual(
    sysfs.writeLog().map((w) => [w.target, w.text, w.errno]),
    [
      [`${sysfs.deviceDir(NIC)}/driver_override`, 'pciback', null],
      ['bus/pci/drivers/igb/unbind', NIC, null],
      ['bus/pci/drivers_probe', NIC, null],
    ],
  );
  assert.equal(result.address, NIC);
  assert.equal(result.name, 'nic');
  assert.equal(result.alreadyAssignable, false);
  assert.deepEqual(result.originalDriver, {
    state: 'bound',
    name: 'igb',
    driverPath: '/sys/bus/pci/drivers/igb',
  });
  const record = db.getAssignable('nic');
  assert.equal(record?.address.toString(), NIC);
  assert.equal(record.stubDriver, 'pciback');
  assert.equal(record.status, 'seized');
  assert.deepEqual(record.originalDriver, result.originalDriver);
  assert.deepEqual({ ...record.reset, atMs: 0 }, { state: 'method', method: 'flr', atMs: 0 });
  assert.deepEqual(service.list(), [
    { address: NIC, name: 'nic' },
    // Found on pciback at start (hide=): assignable although nobody recorded it.
    { address: HIDDEN, name: null },
  ]);
});

test('formatAssignableList() prints xl\'s "%04x:%02x:%02x.%01x %s" lines, ending in a space without a name', (t) => {
  const { service } = fixture(t);
  service.add(NIC, { name: 'nic' });
  service.add(LONE);
  const rows = service.list();
  assert.equal(formatAssignableList(rows), '0000:03:00.0 \n0000:07:00.0 \n0000:08:00.0 \n');
  assert.equal(
    formatAssignableList(rows, { names: true }),
    '0000:03:00.0 nic\n0000:07:00.0 \n0000:08:00.0 \n',
  );
  assert.equal(formatAssignableList([]), '');
});

test('list({ verbose }) adds the original driver, status, policy and reset of each device', (t) => {
  const { service } = fixture(t);
  service.add(NIC, { name: 'nic' });
  service.add(LONE);
  const rows = service.list({ verbose: true });
  assert.deepEqual(
    rows.map((r) => [r.address, r.originalDriver?.state ?? null, r.status, r.reset?.state ?? null]),
    [
      [NIC, 'bound', 'seized', 'method'],
      [HIDDEN, null, 'unrecorded', null],
      [LONE, 'none', 'seized', 'not-resettable'],
    ],
  );
  const text = formatAssignableList(rows, { verbose: true }).split('\n');
  assert.match(text[0] ?? '', /^Device +Name +Original driver +Status +Policy +Reset$/);
  assert.match(text[1] ?? '', /^0000:03:00\.0 +nic +igb +seized +- +flr$/);
  assert.match(text[2] ?? '', /^0000:07:00\.0 +- +\(unrecorded\) +unrecorded +- +\(unknown\)$/);
  assert.match(text[3] ?? '', /^0000:08:00\.0 +- +\(none\) +seized +- +not resettable: /);
});

test('add() of a device without a driver warns that it will not be rebound and that it cannot be reset', (t) => {
  const { db, service } = fixture(t);
  const result = service.add(LONE);
  assert.deepEqual(result.originalDriver, { state: 'none' });
  assert.equal(result.reset.state, 'not-resettable');
  assert.deepEqual(
    result.warnings.map((w) => w.replace(/("[^"]*") ([^:]*):.*/, '$1 $2')),
    ['Device "0000:08:00.0" has no driver', 'Device "0000:08:00.0" cannot be reset'],
  );
  assert.equal(db.getAssignable(LONE)?.reset.state, 'not-resettable');
});

test('add() of a device already on the stub keeps it, sets the name and says so; without -n it clears the name as xl', (t) => {
  const { sysfs, db, service } = fixture(t);
  sysfs.clearWriteLog();
  const first = service.add(HIDDEN, { name: 'gpu' });
  assert.equal(first.alreadyAssignable, true);
  assert.match(
    first.warnings[0] ?? '',
    /^Device "0000:07:00\.0" is already assignable \(it is on stub "pciback"\)$/,
  );
  assert.match(first.warnings[1] ?? '', /original driver is unknown/);
  assert.deepEqual(sysfs.writeLog(), [], 'the host is not touched');
  assert.deepEqual(db.getAssignable('gpu')?.originalDriver, { state: 'unknown' });

  const again = service.add(HIDDEN);
  assert.equal(again.alreadyAssignable, true);
  assert.equal(again.name, null);
  assert.equal(db.getAssignable('gpu'), undefined);
  assert.equal(db.getAssignable(HIDDEN)?.name, null);
});

test("add() refuses names that break xl's rule or ours, and accepts 64 printable characters", (t) => {
  const { sysfs, service } = fixture(t);
  for (const [name, why] of [
    ['', /it is empty/],
    ['x'.repeat(65), /65 characters, at most 64/],
    ['my nic', /printable ASCII characters without spaces/],
    ['caf\u00e9', /printable ASCII/],
    ['a,b', /comma/],
    ['03:00.1', /looks like a PCI address/],
  ] as const) {
    assert.throws(() => service.add(NIC, { name }), withCode(ASSIGNABLE_ERROR.invalidName, why));
  }
  assert.equal(sysfs.driverOf(NIC), 'igb', 'nothing moved');
  const long = `~${'N'.repeat(63)}`;
  assert.equal(service.add(NIC, { name: long }).name, long);
});

test('add() refuses a name another device has, before touching the host', (t) => {
  const { sysfs, service } = fixture(t);
  service.add(NIC, { name: 'nic' });
  sysfs.clearWriteLog();
  assert.throws(
    () => service.add(NIC1, { name: 'nic' }),
    withCode('STATE_DUPLICATE_NAME', /the name "nic" is used by device "0000:03:00\.0"/),
  );
  assert.equal(sysfs.driverOf(NIC1), 'igb');
  assert.deepEqual(sysfs.writeLog(), []);
});

test('add() refuses a device its driver is using (bus mastering on) unless forced', (t) => {
  const { sysfs, db, service } = fixture(t);
  startDma(sysfs, NVME);
  sysfs.clearWriteLog();
  assert.throws(
    () => service.add(NVME),
    withCode(
      ASSIGNABLE_ERROR.inUse,
      /^Cannot make device "0000:04:00\.0" assignable: driver "nvme" is using it \(bus mastering is on .*\): stop what uses it, or give --force$/,
    ),
  );
  assert.equal(sysfs.driverOf(NVME), 'nvme');
  assert.deepEqual(sysfs.writeLog(), [], 'refused before any write');
  assert.equal(db.getAssignable(NVME), undefined);

  const forced = service.add(NVME, { force: true });
  assert.match(forced.warnings[0] ?? '', /while it is in use .*: forced$/);
  assert.equal(sysfs.driverOf(NVME), 'pciback');
});

test("add() judges by dom0's users first: a mounted disk is refused, an idle NIC is taken though it masters", (t) => {
  const { sysfs, service } = fixture(t, {
    consumers: {
      [NVME]: {
        block: [
          { name: 'nvme0n1', dev: '259:0' },
          { name: 'nvme0n1p1', dev: '259:1', mountedOn: '/' },
        ],
      },
      [NIC]: { net: [{ name: 'eth0', up: false }] },
    },
  });
  startDma(sysfs, NVME);
  startDma(sysfs, NIC);
  assert.throws(
    () => service.add(NVME),
    withCode(
      ASSIGNABLE_ERROR.inUse,
      /^Cannot make device "0000:04:00\.0" assignable: driver "nvme" is using it \(block device "nvme0n1p1" is mounted on \/\): stop what uses it, or give --force$/,
    ),
  );
  assert.equal(sysfs.driverOf(NVME), 'nvme');
  // Its only interface is down: idle, bus mastering or not.
  assert.ok(!service.add(NIC).warnings.some((w) => /in use/.test(w)), 'not forced');
  assert.equal(sysfs.driverOf(NIC), 'pciback');
});

test('add() rolls back when the stub does not take the device: it is on its driver again', (t) => {
  // vfio-pci refuses a function without an IOMMU group (vfio_pci_core_register_device).
  const { sysfs, db, service } = fixture(t, { stubDriver: 'vfio-pci' });
  assert.throws(
    () => service.add(NO_GROUP),
    withCode(
      ASSIGNABLE_ERROR.stubRefused,
      /stub driver "vfio-pci" did not take it \(it has no driver after the probe: .*\); rolled back: it is on driver "e1000e" again$/,
    ),
  );
  assert.equal(sysfs.driverOf(NO_GROUP), 'e1000e');
  assert.equal(sysfs.driverOverrideOf(NO_GROUP), null);
  assert.equal(db.getAssignable(NO_GROUP), undefined);
  // The same stub takes a function that has a group.
  service.add(NIC);
  assert.equal(sysfs.driverOf(NIC), 'vfio-pci');
});

test('add() rolls back when the database refuses the record after the move', (t) => {
  const { sysfs, host, db } = fixture(t);
  const failing = new Proxy(db, {
    get(target, key, receiver) {
      if (key === 'transaction') {
        return () => {
          throw new Error('disk full');
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  });
  const service = new AssignableService({
    host,
    db: failing,
    stubDriver: 'pciback',
    forgetStubSlot: (address) => {
      forgetPcibackSlot(sysfs, address);
    },
  });
  assert.throws(() => service.add(NIC), /disk full \(rolled back: it is on driver "igb" again\)/);
  assert.equal(sysfs.driverOf(NIC), 'igb');
  assert.equal(sysfs.driverOverrideOf(NIC), null);
  assert.deepEqual(sysfs.slots(), [HIDDEN], 'pciback forgot the device again');
});

test('add() warns about IOMMU group members that stay in dom0, not about those on the stub', (t) => {
  const { service } = fixture(t);
  const first = service.add(NIC);
  assert.deepEqual(first.warnings, [
    'Other members of IOMMU group 7 stay in dom0 while "0000:03:00.0" is passed through: "0000:03:00.1" (driver "igb")',
  ]);
  const second = service.add(NIC1);
  assert.deepEqual(second.warnings, []);
});

test('add() refuses an unknown device and a malformed address', (t) => {
  const { service } = fixture(t);
  assert.throws(
    () => service.add('0000:0a:00.0'),
    withCode(
      'NO_SUCH_DEVICE',
      /^Cannot make device "0000:0a:00\.0" assignable: no such PCI device on the linux host$/,
    ),
  );
  assert.throws(
    () => service.add('03:00.9'),
    withCode(ASSIGNABLE_ERROR.invalidAddress, /function 0x9 is out of range/),
  );
});

test('remove() with rebind by name binds the original driver back and forgets the device', (t) => {
  const { sysfs, db, service } = fixture(t);
  service.add(NIC, { name: 'nic' });
  assert.deepEqual(sysfs.slots(), [HIDDEN, NIC], 'pciback listed it when it took it');
  const result = service.remove('nic', { rebind: true });
  assert.deepEqual(result, {
    address: NIC,
    name: 'nic',
    recorded: true,
    wasOnStub: true,
    driver: 'igb',
    warnings: [],
  });
  assert.equal(sysfs.driverOf(NIC), 'igb');
  assert.equal(sysfs.driverOverrideOf(NIC), null, 'driver_override cleared (Qubes #5843)');
  assert.deepEqual(sysfs.slots(), [HIDDEN], 'remove_slot, as xl does');
  assert.equal(db.getAssignable(NIC), undefined);
  assert.deepEqual(service.list(), [{ address: HIDDEN, name: null }]);
});

test('remove() without rebind leaves the device without a driver', (t) => {
  const { sysfs, db, service } = fixture(t);
  service.add(NIC);
  const result = service.remove(NIC);
  assert.equal(result.driver, null);
  assert.equal(sysfs.driverOf(NIC), null);
  assert.equal(sysfs.driverOverrideOf(NIC), null);
  assert.equal(db.getAssignable(NIC), undefined);
  // A later probe does not give it back to pciback.
  sysfs.writeText('bus/pci/drivers_probe', NIC);
  assert.equal(sysfs.driverOf(NIC), 'igb');
});

test('remove() works for a device on the stub the database does not know; with rebind the kernel picks its driver', (t) => {
  const gpuDriver: FakeDriverSpec = {
    name: 'gpu-driver',
    ids: [{ vendor: 0x10de, device: 0x1d10 }],
  };
  const { sysfs, service } = fixture(t, { drivers: ['pciback', gpuDriver] });
  const result = service.remove('07:00.0', { rebind: true });
  assert.equal(result.recorded, false);
  assert.equal(result.wasOnStub, true);
  assert.equal(result.driver, 'gpu-driver');
  assert.equal(sysfs.driverOf(HIDDEN), 'gpu-driver');
  assert.deepEqual(result.warnings, [
    'Device "0000:07:00.0" has no recorded original driver: the kernel chose driver "gpu-driver"',
  ]);
});

test('remove() refuses a device attached to a guest and names the domain', (t) => {
  const { sysfs, db, service } = fixture(t);
  service.add(NIC, { name: 'nic' });
  db.recordAttachment('nic', { domid: 5, domainName: 'web' });
  assert.throws(
    () => service.remove('nic', { rebind: true }),
    withCode(ASSIGNABLE_ERROR.attached, /it is attached to domain 5 \("web"\): detach it first$/),
  );
  assert.equal(sysfs.driverOf(NIC), 'pciback');
  assert.deepEqual(service.list(), [{ address: HIDDEN, name: null }], 'attached is not assignable');

  // The platform's own view counts too (the simulator knows live attachments).
  const live = fixture(t, {
    service: { attachedTo: (a) => (a.toString() === HIDDEN ? 9 : undefined) },
  });
  assert.throws(
    () => live.service.remove(HIDDEN),
    withCode(ASSIGNABLE_ERROR.attached, /domain 9:/),
  );
});

test('remove() refuses a name nobody has and a device that is not assignable', (t) => {
  const { service } = fixture(t);
  assert.throws(
    () => service.remove('nope'),
    withCode(
      ASSIGNABLE_ERROR.unknownDevice,
      /no device has that name, and it is not a PCI address/,
    ),
  );
  assert.throws(
    () => service.remove(NIC),
    withCode(
      ASSIGNABLE_ERROR.unknownDevice,
      /it is on driver "igb", not on stub "pciback", and has no record/,
    ),
  );
  assert.throws(
    () => service.remove('0000:0a:00.0'),
    withCode(ASSIGNABLE_ERROR.unknownDevice, /no such PCI device on the linux host and no record/),
  );
});

test('remove() keeps the record when the original driver does not take the device back, so a retry can', (t) => {
  const { sysfs, db, service } = fixture(t);
  service.add(NIC, { name: 'nic' });
  const clear = sysfs.injectFault({ path: 'bus/pci/drivers/igb/bind', errno: 'ENODEV' });
  assert.throws(
    () => service.remove('nic', { rebind: true }),
    withCode(
      ASSIGNABLE_ERROR.rebindFailed,
      /its record is kept, so "assignable-remove -r" can try again$/,
    ),
  );
  assert.equal(sysfs.driverOf(NIC), null);
  assert.equal(db.getAssignable('nic')?.status, 'rebound');
  clear();
  assert.equal(service.remove('nic', { rebind: true }).driver, 'igb');
  assert.equal(db.getAssignable(NIC), undefined);
});

test('add() of a device that left the stub behind our back replaces its record, keeping its policy', (t) => {
  const { sysfs, db, service } = fixture(t);
  service.add(NIC, { name: 'nic' });
  db.setPolicy(NIC, { permissive: true });
  // Someone gives it back to igb by hand; reconcile would mark it rebound.
  sysfs.writeText(`bus/pci/devices/${NIC}/driver/unbind`, NIC);
  sysfs.writeText(`bus/pci/devices/${NIC}/driver_override`, '\n');
  sysfs.writeText('bus/pci/drivers/igb/bind', NIC);
  db.setStatus(NIC, 'rebound', { observedDriver: 'igb' });

  service.add(NIC, { name: 'nic' });
  const record = db.getAssignable('nic');
  assert.equal(record?.status, 'seized');
  assert.equal(record.policy.permissive, true);
  assert.deepEqual(record.originalDriver, {
    state: 'bound',
    name: 'igb',
    driverPath: '/sys/bus/pci/drivers/igb',
  });
});

test('remove() of a recorded device that is gone from the host forgets it, but will not pretend to rebind it', (t) => {
  const { db, service } = fixture(t);
  const gone = PciAddress.parse('0000:0b:00.0');
  db.addAssignable(gone, {
    originalDriver: { state: 'bound', name: 'igb' },
    stubDriver: 'pciback',
    name: 'old',
  });
  assert.throws(
    () => service.remove('old', { rebind: true }),
    withCode(
      ASSIGNABLE_ERROR.rebindFailed,
      /it is not on the host, so it cannot be rebound; its record is kept/,
    ),
  );
  assert.equal(db.getAssignable('old')?.address.toString(), '0000:0b:00.0');
  const result = service.remove('old');
  assert.deepEqual(result.warnings, [
    'Device "0000:0b:00.0" is not on the host: only its record was deleted',
  ]);
  assert.equal(db.getAssignable('old'), undefined);
});
