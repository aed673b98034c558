// SPDX-License-Identifier: MIT
// The Linux platform against this machine's real /sys, READ-ONLY: the host is opened
// with `readOnly` (every write would fail with EROFS before reaching the kernel) and the
// test calls no mutating method. It enumerates the PCI functions, reads the first 64
// bytes of each config space (readable without privileges) and checks them against the
// `vendor`, `device` and `class` attributes, and against lspci where it is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { LinuxPciHost } from '../../src/platform/linux/index.js';

const SYS_PCI = '/sys/bus/pci/devices';

function pciSkipReason(): string | false {
  if (!existsSync(SYS_PCI))
    return `${SYS_PCI} is absent: this machine (or container) shows no PCI bus`;
  if (readdirSync(SYS_PCI).length === 0)
    return `${SYS_PCI} is empty: this machine has no PCI functions`;
  return false;
}

const skip = pciSkipReason();
const lspciSkip =
  skip !== false
    ? skip
    : spawnSync('lspci', ['--version']).error !== undefined
      ? 'lspci is not installed'
      : false;

function host(): LinuxPciHost {
  return new LinuxPciHost({ root: '/sys', readOnly: true });
}

function attribute(bdf: string, name: string): number {
  return Number.parseInt(readFileSync(`${SYS_PCI}/${bdf}/${name}`, 'utf8').trim(), 16);
}

test('LinuxPciHost lists every PCI function of /sys/bus/pci/devices', { skip }, () => {
  const names = readdirSync(SYS_PCI).filter((n) =>
    /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(n),
  );
  const list = host().list();
  assert.deepEqual(
    list.map((f) => f.address.toString()),
    [...names].sort(),
  );
  for (const info of list) {
    const bdf = info.address.toString();
    const driverLink = `${SYS_PCI}/${bdf}/driver`;
    assert.equal(
      info.driver,
      existsSync(driverLink) ? basename(readlinkSync(driverLink)) : null,
      `${bdf} driver`,
    );
    assert.equal(info.vendorId, attribute(bdf, 'vendor'), `${bdf} vendor`);
    assert.equal(info.resettable, existsSync(`${SYS_PCI}/${bdf}/reset`), `${bdf} reset file`);
    assert.ok(info.sysfsPath.startsWith('devices/'), `${bdf} real path ${info.sysfsPath}`);
    assert.equal(host().resources(info.address).length, 7);
  }
  const drivers = host().drivers();
  for (const info of list) if (info.driver !== null) assert.ok(drivers.includes(info.driver));
});

test(
  'consumers() reads every function of the real tree; a mounted block device is busy',
  { skip },
  () => {
    const pci = host();
    const mounted = new Set(
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((line) => line.split(' ')[2])
        .filter((dev): dev is string => dev !== undefined),
    );
    for (const info of pci.list()) {
      const consumers = pci.consumers(info.address);
      assert.ok(consumers !== undefined, `${info.address.toString()} is present`);
      for (const busy of consumers.busy) {
        assert.match(
          busy,
          /^(network interface "[^"]+" is up|block device "[^"]+" is (mounted on \S+|held by .+))$/,
        );
      }
      // Every "mounted on" claim is backed by mountinfo.
      if (consumers.busy.some((b) => b.includes(' is mounted on '))) assert.ok(mounted.size > 0);
    }
  },
);

test(
  'the first 64 bytes of each config space agree with the vendor, device and class files',
  { skip },
  () => {
    const pci = host();
    const list = pci.list();
    assert.ok(list.length > 0);
    for (const info of list) {
      const bdf = info.address.toString();
      const device = pci.open(info.address);
      const dwords: number[] = [];
      for (let at = 0; at < 64; at += 4) {
        const read = device.readConfig(at, 4);
        assert.equal(read.err, 0, `${bdf} config 0x${at.toString(16)} is readable`);
        dwords.push(read.value);
      }
      const [ids = 0, , classRev = 0, bist = 0] = dwords;
      assert.equal(ids & 0xffff, attribute(bdf, 'vendor'), `${bdf} vendor`);
      assert.equal(ids >>> 16, attribute(bdf, 'device'), `${bdf} device`);
      assert.equal(classRev >>> 8, attribute(bdf, 'class'), `${bdf} class`);
      assert.equal((bist >>> 16) & 0x7f, info.headerType, `${bdf} header type`);
      assert.equal(device.vendorId, info.vendorId);
      assert.equal(device.deviceId, info.deviceId);
      assert.ok(device.configSizeBytes === 256 || device.configSizeBytes === 4096);
    }
  },
);

test('LinuxPciHost agrees with lspci -n -D on this machine', { skip: lspciSkip }, () => {
  const run = spawnSync('lspci', ['-n', '-D'], { encoding: 'utf8' });
  assert.equal(run.status, 0, `lspci failed: ${run.stderr}`);
  const expected = run.stdout
    .split('\n')
    .map((line) => /^(\S+) ([0-9a-f]{4}): ([0-9a-f]{4}):([0-9a-f]{4})/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1] ?? ''} ${m[2] ?? ''} ${m[3] ?? ''}:${m[4] ?? ''}`);
  const hex = (n: number, digits: number): string => n.toString(16).padStart(digits, '0');
  const seen = host()
    .list()
    .map(
      (f) =>
        `${f.address.toString()} ${hex(f.classCode >>> 8, 4)} ${hex(f.vendorId, 4)}:${hex(f.deviceId, 4)}`,
    );
  assert.deepEqual(seen, expected);
});
