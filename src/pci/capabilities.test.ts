// SPDX-License-Identifier: MIT
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PCI_CAP_ID, PCI_EXT_CAP_ID } from '../abi/pci-regs.js';
import {
  findCapability,
  findExtendedCapability,
  walkCapabilities,
  walkExtendedCapabilities,
  type ConfigReader,
} from './capabilities.js';
import { ConfigSpace } from './config-space.js';
import { parseDumpFile, parseLspciText } from './dump.js';
import { DUMPS_DIR } from '../../test/support/paths.js';

// --- helpers ---

function curated(name: string): ConfigSpace {
  const [dump] = parseDumpFile(new Uint8Array(readFileSync(join(DUMPS_DIR, 'curated', name))));
  assert.ok(dump !== undefined);
  return new ConfigSpace(dump.config);
}

/** `[offset, id]` pairs of the standard list. */
function std(config: ConfigReader): [number, number][] {
  return walkCapabilities(config).map((c) => [c.byteOffset, c.id]);
}

/** `[offset, id, version]` triples of the extended list. */
function ext(config: ConfigReader): [number, number, number][] {
  return walkExtendedCapabilities(config).map((c) => [c.byteOffset, c.id, c.version]);
}

const STATUS_CAP_LIST = 0x10;

/** A normal-header image with the capability list bit set and `pointer` at 0x34. */
function image(sizeBytes: number, pointer: number): ConfigSpace {
  const cs = ConfigSpace.empty(sizeBytes);
  cs.write16(0x06, STATUS_CAP_LIST);
  cs.write8(0x34, pointer);
  return cs;
}

function putCap(cs: ConfigSpace, at: number, id: number, next: number): void {
  cs.write8(at, id);
  cs.write8(at + 1, next);
}

function putExtCap(cs: ConfigSpace, at: number, id: number, version: number, next: number): void {
  cs.write32(at, ((next << 20) | (version << 16) | id) >>> 0);
}

function toolAvailable(tool: string): boolean {
  const probe = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

function skipWithout(t: TestContext, tool: string): boolean {
  if (toolAvailable(tool)) return false;
  t.skip(`${tool} (Debian package pciutils) is not installed`);
  return true;
}

function textDumpFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (!name.endsWith('.bin') && !/^(COPYING|SOURCE-COMMIT)/.test(name)) out.push(path);
    }
  };
  walk(DUMPS_DIR);
  return out;
}

/**
 * The capability offsets `lspci -vvv -D` prints for each device of a dump: standard ones
 * as `40`, extended ones as `100v1` (chain order, as lspci walks them).
 */
function lspciCapabilities(file: string): Map<string, string[]> {
  const run = spawnSync('lspci', ['-F', file, '-vvv', '-D'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  assert.equal(run.status, 0, `lspci -F ${file} -vvv failed`);
  const devices = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of run.stdout.split('\n')) {
    const header = /^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) /.exec(line);
    if (header?.[1] !== undefined) {
      current = [];
      devices.set(header[1], current);
      continue;
    }
    const cap = /^\tCapabilities: \[([0-9a-f]+)(?: v(\d+))?\]/.exec(line);
    if (cap?.[1] !== undefined) {
      const offset = Number.parseInt(cap[1], 16).toString(16);
      current.push(cap[2] === undefined ? offset : `${offset}v${cap[2]}`);
    }
  }
  return devices;
}

// --- real devices ---

test('walkCapabilities() follows the Intel Wi-Fi 7265 list, which is not in address order', () => {
  const cs = curated('wifi-intel-7265-8086_095a-l1pm.bin');
  assert.deepEqual(std(cs), [
    [0xc8, PCI_CAP_ID.PM],
    [0xd0, PCI_CAP_ID.MSI],
    [0x40, PCI_CAP_ID.EXP],
  ]);
  assert.deepEqual(ext(cs), [
    [0x100, PCI_EXT_CAP_ID.ERR, 1],
    [0x140, PCI_EXT_CAP_ID.DSN, 1],
    [0x14c, PCI_EXT_CAP_ID.LTR, 1],
    [0x154, PCI_EXT_CAP_ID.L1SS, 1],
  ]);
  assert.equal(findCapability(cs, PCI_CAP_ID.EXP), 0x40);
  assert.equal(findCapability(cs, PCI_CAP_ID.MSIX), undefined);
});

test('walkCapabilities() lists the Samsung NVMe capabilities with their versions', () => {
  const cs = curated('nvme-samsung-pm174x.bin');
  assert.deepEqual(std(cs), [
    [0x40, PCI_CAP_ID.PM],
    [0x70, PCI_CAP_ID.EXP],
    [0xb0, PCI_CAP_ID.MSIX],
  ]);
  assert.deepEqual(ext(cs), [
    [0x100, PCI_EXT_CAP_ID.ERR, 2],
    [0x148, PCI_EXT_CAP_ID.DSN, 1],
    [0x168, PCI_EXT_CAP_ID.ARI, 1],
    [0x178, PCI_EXT_CAP_ID.SECPCI, 1],
    [0x198, PCI_EXT_CAP_ID.PL_16GT, 1],
    [0x1bc, 0x27, 1], // Lane Margining at the Receiver
    [0x1d4, 0x2a, 1],
    [0x1f8, PCI_EXT_CAP_ID.SRIOV, 1],
    [0x3c0, PCI_EXT_CAP_ID.DLF, 1],
  ]);
  assert.equal(findExtendedCapability(cs, PCI_EXT_CAP_ID.SRIOV), 0x1f8);
  assert.equal(findExtendedCapability(cs, PCI_EXT_CAP_ID.ACS), undefined);
});

test('walkExtendedCapabilities() follows an extended list that goes back and forth', () => {
  const gpu = curated('gpu-nvidia-gp108m-10de_1d10.bin');
  assert.deepEqual(
    ext(gpu).map(([offset]) => offset),
    [0x100, 0x250, 0x258, 0x128, 0x420, 0x600, 0x900],
  );
  // The PLX switch keeps AER near the top of the space, at 0xfb4.
  const plx = curated('switch-plx-8796-multicast.bin');
  assert.equal(findExtendedCapability(plx, PCI_EXT_CAP_ID.ERR), 0xfb4);
  assert.equal(findExtendedCapability(plx, PCI_EXT_CAP_ID.MCAST), 0xe00);
});

test('walkExtendedCapabilities() reports version 0 as it is (X58 vendor-specific capability)', () => {
  const cs = curated('rootport-intel-x58-8086_3408.bin');
  assert.deepEqual(ext(cs).at(-1), [0x160, PCI_EXT_CAP_ID.VNDR, 0]);
});

test('the walkers find the first instance when an ID repeats (virtio vendor capabilities)', () => {
  const cs = curated('virtio-net-legacy-256.bin');
  assert.deepEqual(std(cs), [
    [0x84, PCI_CAP_ID.MSIX],
    [0x70, PCI_CAP_ID.VNDR],
    [0x60, PCI_CAP_ID.VNDR],
    [0x50, PCI_CAP_ID.VNDR],
    [0x40, PCI_CAP_ID.VNDR],
  ]);
  assert.equal(findCapability(cs, PCI_CAP_ID.VNDR), 0x70);
  assert.deepEqual(ext(cs), [], 'a 256-byte space has no extended list');
});

test('walkCapabilities() starts a CardBus bridge list at 0x14 (O2 Micro OZ711SP1)', () => {
  const text = readFileSync(join(DUMPS_DIR, 'pciutils', 'tree-fujitsu-p8010'), 'utf8');
  const cardbus = parseLspciText(text).find((d) => d.address.toShortString() === '1c:03.0');
  assert.ok(cardbus !== undefined);
  const cs = new ConfigSpace(cardbus.config);
  assert.equal(cs.headerType, 2);
  assert.deepEqual(std(cs), [[0xa0, PCI_CAP_ID.PM]]);
});

test('the walkers agree with lspci -vvv on every device of every oracle dump', (t) => {
  if (skipWithout(t, 'lspci')) return;
  let devices = 0;
  for (const file of textDumpFiles()) {
    const name = relative(DUMPS_DIR, file);
    const expected = lspciCapabilities(file);
    for (const dump of parseLspciText(readFileSync(file, 'utf8'))) {
      const address = dump.address.toString();
      const cs = new ConfigSpace(dump.config);
      const ours = [
        ...std(cs).map(([offset]) => offset.toString(16)),
        ...ext(cs).map(([offset, , version]) => `${offset.toString(16)}v${version}`),
      ];
      if (name === 'pciutils/broken-ecaps') {
        // A conventional PCI host bridge whose 0x100..0xfff aliases 0x00..0xff. lspci
        // (like Linux, which sizes it at 256 bytes) only reads extended capabilities of
        // PCIe and PCI-X 2.0 devices; the walker reads whatever a 4096-byte image holds.
        assert.deepEqual(expected.get(address), [], `${name} ${address}`);
        assert.deepEqual(ours, ['100v1', '790v0', 'd00v1'], `${name} ${address}`);
        continue;
      }
      assert.deepEqual(ours, expected.get(address), `${name} ${address}`);
      devices++;
    }
  }
  assert.ok(devices >= 150, `compared only ${devices} devices`);
});

test('findCapability() agrees with setpci on every curated device', (t) => {
  if (skipWithout(t, 'setpci')) return;
  const stdNames: Record<string, number> = {
    CAP_PM: PCI_CAP_ID.PM,
    CAP_VPD: PCI_CAP_ID.VPD,
    CAP_MSI: PCI_CAP_ID.MSI,
    CAP_PCIX: PCI_CAP_ID.PCIX,
    CAP_VNDR: PCI_CAP_ID.VNDR,
    CAP_SSVID: PCI_CAP_ID.SSVID,
    CAP_EXP: PCI_CAP_ID.EXP,
    CAP_MSIX: PCI_CAP_ID.MSIX,
    CAP_AF: PCI_CAP_ID.AF,
    CAP_EA: PCI_CAP_ID.EA,
  };
  const extNames: Record<string, number> = {
    ECAP_AER: PCI_EXT_CAP_ID.ERR,
    ECAP_VC: PCI_EXT_CAP_ID.VC,
    ECAP_DSN: PCI_EXT_CAP_ID.DSN,
    ECAP_PB: PCI_EXT_CAP_ID.PWR,
    ECAP_VNDR: PCI_EXT_CAP_ID.VNDR,
    ECAP_ACS: PCI_EXT_CAP_ID.ACS,
    ECAP_ARI: PCI_EXT_CAP_ID.ARI,
    ECAP_ATS: PCI_EXT_CAP_ID.ATS,
    ECAP_SRIOV: PCI_EXT_CAP_ID.SRIOV,
    ECAP_MCAST: PCI_EXT_CAP_ID.MCAST,
    ECAP_PRI: PCI_EXT_CAP_ID.PRI,
    ECAP_REBAR: PCI_EXT_CAP_ID.REBAR,
    ECAP_LTR: PCI_EXT_CAP_ID.LTR,
    ECAP_SECPCI: PCI_EXT_CAP_ID.SECPCI,
    ECAP_PASID: PCI_EXT_CAP_ID.PASID,
    ECAP_DPC: PCI_EXT_CAP_ID.DPC,
    ECAP_L1PM: PCI_EXT_CAP_ID.L1SS,
    ECAP_PTM: PCI_EXT_CAP_ID.PTM,
    ECAP_DLNK: PCI_EXT_CAP_ID.DLF,
    ECAP_16GT: PCI_EXT_CAP_ID.PL_16GT,
  };
  const dir = join(DUMPS_DIR, 'curated');
  let found = 0;
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.txt'))) {
    const file = join(dir, name);
    const [dump] = parseLspciText(readFileSync(file, 'utf8'));
    assert.ok(dump !== undefined);
    const cs = new ConfigSpace(dump.config);
    const lookups: [string, number | undefined][] = [
      ...Object.entries(stdNames).map(([n, id]): [string, number | undefined] => [
        n,
        findCapability(cs, id),
      ]),
      ...Object.entries(extNames).map(([n, id]): [string, number | undefined] => [
        n,
        findExtendedCapability(cs, id),
      ]),
    ];
    for (const [register, offset] of lookups) {
      // setpci has no "print the offset"; the dword it reads at the capability (ID, next
      // pointer and the first register) pins the offset down.
      const run: SpawnSyncReturns<string> = spawnSync(
        'setpci',
        ['-A', 'dump', '-O', `dump.name=${file}`, '-s', dump.address.toString(), `${register}.l`],
        { encoding: 'utf8' },
      );
      const where = `${name} ${register}`;
      if (offset === undefined) {
        assert.notEqual(run.status, 0, `${where}: setpci found it, the walker did not`);
        assert.match(run.stderr, /not found/, where);
      } else {
        assert.equal(
          run.status,
          0,
          `${where}: the walker found it at 0x${offset.toString(16)}, setpci did not`,
        );
        assert.equal(Number.parseInt(run.stdout.trim(), 16), cs.read32(offset), where);
        found++;
      }
    }
  }
  assert.ok(found >= 60, `only ${found} capabilities were cross-checked`);
});

// --- damaged and hostile lists ---

test('walkCapabilities() is empty when the status register has no capability list', () => {
  const cs = image(256, 0x40);
  putCap(cs, 0x40, PCI_CAP_ID.PM, 0);
  assert.deepEqual(std(cs), [[0x40, PCI_CAP_ID.PM]]);
  cs.write16(0x06, 0);
  assert.deepEqual(std(cs), []);
});

test('walkCapabilities() ignores the two low bits of every pointer', () => {
  const cs = image(256, 0x43);
  putCap(cs, 0x40, PCI_CAP_ID.PM, 0x52);
  putCap(cs, 0x50, PCI_CAP_ID.MSI, 0x03); // 0x03 & ~3 = 0: end of list
  assert.deepEqual(std(cs), [
    [0x40, PCI_CAP_ID.PM],
    [0x50, PCI_CAP_ID.MSI],
  ]);
});

test('walkCapabilities() stops at a loop and lists each capability once', () => {
  const cs = image(256, 0x40);
  putCap(cs, 0x40, PCI_CAP_ID.PM, 0x50);
  putCap(cs, 0x50, PCI_CAP_ID.MSI, 0x40);
  assert.deepEqual(std(cs), [
    [0x40, PCI_CAP_ID.PM],
    [0x50, PCI_CAP_ID.MSI],
  ]);
  putCap(cs, 0x50, PCI_CAP_ID.MSI, 0x50); // points at itself
  assert.equal(walkCapabilities(cs).length, 2);
});

test('walkCapabilities() stops at a pointer into the header', () => {
  const cs = image(256, 0x20);
  assert.deepEqual(std(cs), [], 'the list head points into the header');
  cs.write8(0x34, 0x40);
  putCap(cs, 0x40, PCI_CAP_ID.PM, 0x3c);
  assert.deepEqual(std(cs), [[0x40, PCI_CAP_ID.PM]]);
});

test('walkCapabilities() stops at a pointer beyond the image', () => {
  // A 64-byte image (lspci -x) has no room for any capability.
  assert.deepEqual(std(image(64, 0x40)), []);
  // The last dword of a 256-byte space is still a valid capability.
  const cs = image(256, 0xff);
  putCap(cs, 0xfc, PCI_CAP_ID.VNDR, 0);
  assert.deepEqual(std(cs), [[0xfc, PCI_CAP_ID.VNDR]]);
});

test('walkCapabilities() stops at a capability ID of 0xff', () => {
  const cs = image(256, 0x40);
  putCap(cs, 0x40, PCI_CAP_ID.PM, 0x50);
  putCap(cs, 0x50, 0xff, 0x60);
  putCap(cs, 0x60, PCI_CAP_ID.MSI, 0);
  assert.deepEqual(std(cs), [[0x40, PCI_CAP_ID.PM]]);
});

test('walkCapabilities() ignores a list on a header type it does not know', () => {
  const cs = image(256, 0x40);
  putCap(cs, 0x40, PCI_CAP_ID.PM, 0);
  cs.write8(0x0e, 0x03);
  assert.deepEqual(std(cs), []);
  cs.write8(0x0e, 0x81); // a multi-function bridge walks from 0x34
  assert.deepEqual(std(cs), [[0x40, PCI_CAP_ID.PM]]);
});

test('walkCapabilities() lists at most the 48 capabilities that fit in 0x40-0xff', () => {
  const cs = image(256, 0x40);
  for (let at = 0x40; at <= 0xfc; at += 4)
    putCap(cs, at, PCI_CAP_ID.VNDR, at === 0xfc ? 0 : at + 4);
  assert.equal(walkCapabilities(cs).length, 48);
});

test('the walkers find nothing in an all-ones or an all-zero space of any size', () => {
  for (const size of [64, 256, 4096]) {
    const ones = new ConfigSpace(new Uint8Array(size).fill(0xff));
    assert.deepEqual(std(ones), [], `${size} bytes of ones`);
    assert.deepEqual(ext(ones), [], `${size} bytes of ones`);
    const zeros = ConfigSpace.empty(size);
    assert.deepEqual(std(zeros), [], `${size} bytes of zeros`);
    assert.deepEqual(ext(zeros), [], `${size} bytes of zeros`);
  }
});

test('walkExtendedCapabilities() stops at a loop and lists each capability once', () => {
  const cs = ConfigSpace.empty(4096);
  putExtCap(cs, 0x100, PCI_EXT_CAP_ID.ERR, 2, 0x200);
  putExtCap(cs, 0x200, PCI_EXT_CAP_ID.ACS, 1, 0x100);
  assert.deepEqual(ext(cs), [
    [0x100, PCI_EXT_CAP_ID.ERR, 2],
    [0x200, PCI_EXT_CAP_ID.ACS, 1],
  ]);
  putExtCap(cs, 0x100, PCI_EXT_CAP_ID.ERR, 2, 0x100);
  assert.deepEqual(ext(cs), [[0x100, PCI_EXT_CAP_ID.ERR, 2]]);
});

test('walkExtendedCapabilities() stops at a pointer below 0x100', () => {
  const cs = ConfigSpace.empty(4096);
  putExtCap(cs, 0x100, PCI_EXT_CAP_ID.ERR, 1, 0x40);
  cs.write32(0x40, 0x00010003);
  assert.deepEqual(ext(cs), [[0x100, PCI_EXT_CAP_ID.ERR, 1]]);
});

test('walkExtendedCapabilities() reads a capability in the last dword and ignores low pointer bits', () => {
  const cs = ConfigSpace.empty(4096);
  putExtCap(cs, 0x100, PCI_EXT_CAP_ID.ERR, 1, 0xfff); // 0xfff & 0xffc = 0xffc
  putExtCap(cs, 0xffc, PCI_EXT_CAP_ID.VNDR, 1, 0);
  assert.deepEqual(ext(cs), [
    [0x100, PCI_EXT_CAP_ID.ERR, 1],
    [0xffc, PCI_EXT_CAP_ID.VNDR, 1],
  ]);
});

test('walkExtendedCapabilities() stops at an empty or all-ones header', () => {
  const cs = ConfigSpace.empty(4096);
  putExtCap(cs, 0x100, PCI_EXT_CAP_ID.ERR, 1, 0x200);
  assert.deepEqual(ext(cs), [[0x100, PCI_EXT_CAP_ID.ERR, 1]], 'the header at 0x200 is 0');
  cs.write32(0x200, 0xffffffff);
  assert.deepEqual(ext(cs), [[0x100, PCI_EXT_CAP_ID.ERR, 1]]);
  // An ID of 0 with a next pointer is a placeholder: listed and walked past, as Linux
  // and lspci walk past it.
  putExtCap(cs, 0x100, 0, 1, 0x200);
  putExtCap(cs, 0x200, PCI_EXT_CAP_ID.ACS, 1, 0);
  assert.deepEqual(ext(cs), [
    [0x100, 0, 1],
    [0x200, PCI_EXT_CAP_ID.ACS, 1],
  ]);
});

test('walkExtendedCapabilities() lists at most 480 capabilities, as Linux does', () => {
  const cs = ConfigSpace.empty(4096);
  for (let at = 0x100; at <= 0xffc; at += 4) {
    putExtCap(cs, at, PCI_EXT_CAP_ID.VNDR, 1, at === 0xffc ? 0 : at + 4);
  }
  assert.equal(walkExtendedCapabilities(cs).length, 480);
});

test('the walkers accept any ConfigReader, not only ConfigSpace', () => {
  const backing = curated('nic-intel-82576-8086_10c9-sriov-msix.bin');
  let reads = 0;
  const reader: ConfigReader = {
    sizeBytes: backing.sizeBytes,
    read8(o) {
      reads++;
      return backing.read8(o);
    },
    read16(o) {
      reads++;
      return backing.read16(o);
    },
    read32(o) {
      reads++;
      return backing.read32(o);
    },
  };
  assert.deepEqual(std(reader), std(backing));
  assert.deepEqual(ext(reader), ext(backing));
  assert.ok(reads > 0);
});
