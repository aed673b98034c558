// SPDX-License-Identifier: MIT
// LinuxPciHost over fake trees built from real config dumps agrees with the dumps (IDs,
// class, header type, subsystem, config bytes, BAR sizes) and, where pciutils is
// installed, with `lspci -PP -D -n -F`: the same functions, classes and IDs, and the same
// path of bridges from the root bus to each function.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PciAddress } from '../../pci/address.js';
import { ConfigSpace } from '../../pci/config-space.js';
import { parseDumpFile, type DeviceDump } from '../../pci/dump.js';
import { DUMPS_DIR } from '../../../test/support/paths.js';
import { FakeSysfs, fakeFunctionFromDump } from './fake-sysfs.js';
import { LinuxPciHost, type LinuxPciFunctionInfo } from './linux-pci-host.js';

const TREES = [
  'pciutils/tree-asus-p6t6',
  'pciutils/tree-fujitsu-p8010',
  'pciutils/tree-fsl-p2020',
  'pciutils/PCI-X-bridges-and-domains',
  'pciutils/cap-vc-and-rcl',
  'pciutils/cap-pcie-2',
  'local/lspci-xxxx.txt',
];

const lspciMissing = spawnSync('lspci', ['--version']).error !== undefined;

function readDumps(relative: string): DeviceDump[] {
  return parseDumpFile(new Uint8Array(readFileSync(join(DUMPS_DIR, relative))), relative);
}

function withTree(
  dumps: readonly DeviceDump[],
  run: (host: LinuxPciHost) => void,
  placement: { onRootBuses?: boolean } = {},
): void {
  const sysfs = FakeSysfs.create({
    functions: dumps.map((d) =>
      fakeFunctionFromDump(d, placement.onRootBuses === true ? { parent: null } : {}),
    ),
  });
  try {
    run(new LinuxPciHost({ io: sysfs }));
  } finally {
    sysfs.dispose();
  }
}

function assertAgreesWithDump(
  host: LinuxPciHost,
  info: LinuxPciFunctionInfo,
  dump: DeviceDump,
  where: string,
): void {
  const cs = new ConfigSpace(dump.config);
  const name = `${where} ${dump.address.toString()}`;
  assert.equal(info.vendorId, cs.vendorId, `${name} vendor`);
  assert.equal(info.deviceId, cs.deviceId, `${name} device`);
  assert.equal(info.classCode, cs.classCode, `${name} class`);
  assert.equal(info.headerType, cs.headerType, `${name} header type`);
  if (dump.config.length > 0x2f || cs.headerType !== 0) {
    assert.equal(info.subsystemVendorId, cs.subsystemVendorId ?? 0, `${name} subsystem vendor`);
    assert.equal(info.subsystemDeviceId, cs.subsystemId ?? 0, `${name} subsystem device`);
  }
  const device = host.open(info.address);
  for (let at = 0; at < dump.config.length && at < device.configSizeBytes; at += 4) {
    assert.equal(
      device.readConfig(at, 4).value,
      cs.read32(at),
      `${name} config dword 0x${at.toString(16)}`,
    );
  }
  const resources = host.resources(info.address);
  for (const [index, sizeBytes] of dump.barSizes) {
    assert.equal(resources[index]?.sizeBytes, sizeBytes, `${name} region ${index} size`);
  }
}

for (const relative of TREES) {
  test(`a fake tree of ${relative} enumerates as the dump says`, () => {
    const dumps = readDumps(relative);
    withTree(dumps, (host) => {
      const list = host.list();
      const byKey = new Map(list.map((info) => [info.address.key, info]));
      assert.deepEqual(
        list.map((f) => f.address.toString()),
        dumps
          .map((d) => d.address)
          .sort((a, b) => a.compare(b))
          .map(String),
      );
      for (const dump of dumps) {
        const info = byKey.get(dump.address.key);
        assert.ok(info, `${dump.address.toString()} is listed`);
        assertAgreesWithDump(host, info, dump, relative);
      }
    });
  });

  test(
    `a fake tree of ${relative} has the functions, IDs and bridge paths of lspci -PP -F`,
    { skip: lspciMissing ? 'lspci is not installed (apt-get install pciutils)' : false },
    () => {
      const run = spawnSync('lspci', ['-PP', '-D', '-n', '-F', join(DUMPS_DIR, relative)], {
        encoding: 'utf8',
      });
      assert.equal(run.status, 0, `lspci failed: ${run.stderr}`);
      const expected = new Map<string, string>();
      for (const line of run.stdout.split('\n')) {
        const match = /^(\S+) ([0-9a-f]{4}): ([0-9a-f]{4}):([0-9a-f]{4})/.exec(line);
        if (match === null) continue;
        const [, path = '', cls = '', vendor = '', device = ''] = match;
        const parts = path.split('/');
        const domain = (parts[0] ?? '').slice(0, 4);
        const address = PciAddress.parse(
          `${domain}:${(parts.at(-1) ?? '').replace(/^[0-9a-f]{4}:/, '')}`,
        );
        expected.set(address.toString(), `${path} ${cls} ${vendor}:${device}`);
      }
      assert.ok(expected.size > 0, 'lspci printed devices');
      withTree(readDumps(relative), (host) => {
        const seen = new Map<string, string>();
        for (const info of host.list()) {
          const chain: PciAddress[] = [info.address];
          for (
            let up = info.upstreamBridge;
            up !== null;
            up = host.info(up)?.upstreamBridge ?? null
          ) {
            chain.unshift(up);
          }
          const path = chain.map((a, i) => (i === 0 ? a.toString() : a.toShortString())).join('/');
          const hex = (n: number, digits: number): string => n.toString(16).padStart(digits, '0');
          seen.set(
            info.address.toString(),
            `${path} ${hex(info.classCode >>> 8, 4)} ${hex(info.vendorId, 4)}:${hex(info.deviceId, 4)}`,
          );
        }
        assert.deepEqual(seen, expected);
      });
    },
  );
}

test('fake trees of the curated single-device dumps enumerate as their dumps say', () => {
  const files = readdirSync(join(DUMPS_DIR, 'curated'))
    .filter((name) => name.endsWith('.bin') || name.endsWith('.txt'))
    .sort();
  // One function per dump, each on a root bus of its own (the bridges among them would
  // otherwise adopt the next bus), so addresses never collide.
  const dumps = files.map((name, index) => {
    const [dump] = readDumps(`curated/${name}`);
    assert.ok(dump, `${name} holds a device`);
    return { ...dump, address: new PciAddress(1, index + 1, 0, 0) };
  });
  assert.ok(dumps.length >= 14);
  withTree(
    dumps,
    (host) => {
      const list = host.list();
      assert.equal(list.length, dumps.length);
      for (const [index, dump] of dumps.entries()) {
        const info = list[index];
        assert.ok(info);
        assert.equal(info.address.toString(), dump.address.toString());
        assert.equal(info.upstreamBridge, null);
        assertAgreesWithDump(host, info, dump, files[index] ?? '');
      }
    },
    { onRootBuses: true },
  );
});
