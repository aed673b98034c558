// SPDX-License-Identifier: MIT
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPcibackError } from '../errors.js';
import { PciAddress } from '../pci/index.js';
import { LinuxPciHost } from '../platform/linux/index.js';
import { AssignableDb } from '../state/index.js';
import { DUMPS_DIR } from '../../test/support/paths.js';
import {
  availablePlatforms,
  checkSysfsWriteAccess,
  loadFakeHost,
  openPlatformSession,
  readFakeState,
  registerPlatform,
  type PlatformSession,
} from './platform-session.js';

const NVME_DUMP = join(DUMPS_DIR, 'curated', 'nvme-samsung-pm174x.txt');

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pciback-session-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function hostFile(dir: string, document: unknown): string {
  const path = join(dir, 'host.json');
  writeFileSync(path, JSON.stringify(document));
  return path;
}

const HOST = {
  drivers: ['pciback', { name: 'nvme', ids: [{ classCode: '0x010802', classMask: '0xffffff' }] }],
  functions: [
    { dump: NVME_DUMP, address: '0000:04:00.0', driver: 'nvme', iommuGroup: 8 },
    {
      address: '0000:03:00.0',
      driver: 'igb',
      iommuGroup: 7,
      command: '0x0006',
      simple: {
        vendorId: '0x8086',
        deviceId: '0x10c9',
        classCode: '0x020000',
        pcie: { flr: true },
      },
    },
  ],
};

test('loadFakeHost() builds the tree the file describes: dumps, simple functions, drivers, command', (t) => {
  const dir = tempDir(t);
  const fake = loadFakeHost(hostFile(dir, HOST));
  t.after(() => {
    fake.dispose();
  });
  const host = new LinuxPciHost({ io: fake.io });
  assert.deepEqual(
    host.list().map((f) => [f.address.toString(), f.driver, f.iommuGroup, f.vendorId]),
    [
      ['0000:03:00.0', 'igb', 7, 0x8086],
      ['0000:04:00.0', 'nvme', 8, 0x144d],
    ],
  );
  assert.deepEqual(host.drivers(), ['igb', 'nvme', 'pciback']);
  const command = host.open(PciAddress.parse('03:00.0')).readConfig(4, 2).value;
  assert.equal(command & 0x0006, 0x0006, 'the command register the file asked for');
  assert.deepEqual(fake.sysfs.writeLog(), [], 'setting it up is not logged as a write');
});

test('loadFakeHost() with a state file keeps the bindings across loads, as a kernel across daemon restarts', (t) => {
  const dir = tempDir(t);
  const file = hostFile(dir, HOST);
  const statePath = join(dir, 'state.json');
  const first = loadFakeHost(file, { statePath });
  assert.deepEqual(readFakeState(statePath)?.functions['0000:03:00.0'], {
    driver: 'igb',
    driverOverride: null,
  });
  const host = new LinuxPciHost({ io: first.io });
  const nic = PciAddress.parse('03:00.0');
  host.setDriverOverride(nic, 'pciback');
  host.unbind(nic);
  host.probe(nic);
  assert.deepEqual(readFakeState(statePath)?.functions['0000:03:00.0'], {
    driver: 'pciback',
    driverOverride: 'pciback',
  });
  first.dispose();

  const second = loadFakeHost(file, { statePath });
  t.after(() => {
    second.dispose();
  });
  const again = new LinuxPciHost({ io: second.io });
  assert.equal(again.info(nic)?.driver, 'pciback');
  assert.deepEqual(second.sysfs.slots(), ['0000:03:00.0']);
  // Its original driver still knows it after the restart.
  again.unbind(nic);
  again.setDriverOverride(nic, null);
  again.bind(nic, 'igb');
  assert.equal(again.info(nic)?.driver, 'igb');
  assert.equal(readFakeState(statePath)?.functions['0000:03:00.0']?.driver, 'igb');
  assert.ok(second.sysfs.root.startsWith(dir), 'the tree lives beside the state file');
});

test('loadFakeHost() names the bad field of an invalid file', (t) => {
  const dir = tempDir(t);
  const cases: [unknown, RegExp][] = [
    [{ functions: [] }, /functions: /],
    [
      { functions: [{ address: '03:00.0', driver: 'a b', simple: HOST.functions[1]?.simple }] },
      /functions\[0\]/,
    ],
    [[{ dump: 'missing.txt' }], /functions\[0\]: .*missing\.txt/],
    [[{ dump: join(DUMPS_DIR, 'pciutils', 'tree-asus-p6t6') }], /holds \d+ devices: give dumpBdf/],
  ];
  for (const [document, message] of cases) {
    assert.throws(
      () => loadFakeHost(hostFile(dir, document)),
      (err: unknown) => isPcibackError(err, 'FAKE_HOST_INVALID') && message.test(err.message),
      JSON.stringify(document),
    );
  }
  writeFileSync(join(dir, 'broken.json'), '{');
  assert.throws(
    () => loadFakeHost(join(dir, 'broken.json')),
    (err: unknown) => isPcibackError(err, 'FAKE_HOST_INVALID'),
  );
});

test('checkSysfsWriteAccess() refuses /sys to anyone but root and allows other roots', (t) => {
  assert.throws(
    () => {
      checkSysfsWriteAccess('/sys', 1000);
    },
    (err: unknown) =>
      isPcibackError(err, 'PERMISSION_DENIED') &&
      /must run as root: it writes \/sys\/bus\/pci/.test(err.message),
  );
  assert.throws(() => {
    checkSysfsWriteAccess('/sys/', 1000);
  });
  checkSysfsWriteAccess('/sys', 0);
  checkSysfsWriteAccess(tempDir(t), 1000);
});

test('openPlatformSession() opens linux on a fake host and refuses sim until it is registered', async (t) => {
  const dir = tempDir(t);
  const db = AssignableDb.open(join(dir, 'state'));
  t.after(() => {
    db.close();
  });
  await assert.rejects(
    openPlatformSession('sim', { db }),
    (err: unknown) => isPcibackError(err, 'PLATFORM_UNAVAILABLE') && /"sim"/.test(err.message),
  );

  const session = await openPlatformSession('linux', { db, fakeSysfs: hostFile(dir, HOST) });
  assert.equal(session.stubDriver, 'pciback');
  assert.equal(typeof session.forgetStubSlot, 'function');
  assert.deepEqual([...session.liveDomains()], []);
  const root = session.sysfsRoot ?? '';
  await session.close();
  assert.throws(() => readFileSync(join(root, 'bus/pci/drivers_probe')), 'the tree is deleted');

  await assert.rejects(
    openPlatformSession('linux', { db, fakeSysfs: 'x.json', sysfsRoot: '/sys' }),
    /not both/,
  );

  const fake = loadFakeHost(hostFile(dir, HOST));
  t.after(() => {
    fake.dispose();
  });
  const fakeSession: PlatformSession = {
    host: new LinuxPciHost({ io: fake.io }),
    stubDriver: 'pciback',
    liveDomains: () => [1],
    attachedTo: () => undefined,
    close: () => Promise.resolve(),
  };
  const unregister = registerPlatform('sim', () => Promise.resolve(fakeSession));
  try {
    assert.ok(availablePlatforms().includes('sim'));
    assert.equal(await openPlatformSession('sim', { db }), fakeSession);
  } finally {
    unregister();
  }
  assert.ok(!availablePlatforms().includes('sim'));
});
