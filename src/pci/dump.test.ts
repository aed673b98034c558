// SPDX-License-Identifier: MIT
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { PciAddress } from './address.js';
import { ConfigSpace } from './config-space.js';
import {
  DumpSyntaxError,
  formatLspciDump,
  parseBinaryDump,
  parseDumpFile,
  parseLspciText,
  type DeviceDump,
} from './dump.js';
import { DUMPS_DIR } from '../../test/support/paths.js';

// --- helpers ---

/** Every text dump under the oracles (all files but the *.bin images and the licence). */
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

function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

const LSPCI_MISSING = 'lspci (Debian package pciutils) is not installed';

function lspciAvailable(): boolean {
  const probe = spawnSync('lspci', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/** `lspci -F file ...args`, stdout only (its libkmod complaint goes to stderr). */
function lspci(file: string, ...args: string[]): string {
  const run = spawnSync('lspci', ['-F', file, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  assert.equal(run.status, 0, `lspci -F ${file} ${args.join(' ')} failed`);
  return run.stdout;
}

interface LspciIds {
  slot: string;
  fields: Map<string, string>;
}

/** `lspci -vmm -n -D`: one `Key:\tvalue` block per device. */
function lspciMachineIds(file: string): LspciIds[] {
  return lspci(file, '-vmm', '-n', '-D')
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.split('\n')) {
        const tab = line.indexOf(':\t');
        if (tab > 0) fields.set(line.slice(0, tab), line.slice(tab + 2));
      }
      return { slot: fields.get('Slot') ?? '', fields };
    });
}

function byAddress(dumps: readonly DeviceDump[]): DeviceDump[] {
  return [...dumps].sort((a, b) => a.address.compare(b.address));
}

function withTempFile<T>(text: string, fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'pciback-dump-'));
  try {
    const path = join(dir, 'dump.txt');
    writeFileSync(path, text);
    return fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function skipWithoutLspci(t: TestContext): boolean {
  if (lspciAvailable()) return false;
  t.skip(LSPCI_MISSING);
  return true;
}

const hexLine = (offset: number, bytes: readonly number[]): string =>
  `${offset.toString(16).padStart(2, '0')}: ${bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ')}`;

function assertDumpError(fn: () => unknown, line: number | undefined, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DumpSyntaxError, `expected DumpSyntaxError, got ${String(err)}`);
    assert.ok(err instanceof SyntaxError);
    assert.equal(err.line, line);
    assert.match(err.message, pattern);
    return true;
  });
}

// --- every oracle dump ---

test('parseLspciText() reads every text dump and agrees with lspci -F on each device', (t) => {
  if (skipWithoutLspci(t)) return;
  const files = textDumpFiles();
  assert.ok(files.length >= 50, `found only ${files.length} text dumps under ${DUMPS_DIR}`);
  let devices = 0;
  for (const file of files) {
    const name = relative(DUMPS_DIR, file);
    const ours = byAddress(parseLspciText(readText(file), { name }));
    const theirs = lspciMachineIds(file);
    assert.equal(ours.length, theirs.length, `${name}: device count`);
    ours.forEach((dump, i) => {
      const expected = theirs[i];
      assert.ok(expected !== undefined);
      const where = `${name} ${dump.address.toString()}`;
      const cs = new ConfigSpace(dump.config);
      const ids = expected.fields;
      assert.equal(dump.address.toString(), expected.slot, `${where}: address`);
      assert.equal(cs.vendorId, Number.parseInt(ids.get('Vendor') ?? '', 16), `${where}: vendor`);
      assert.equal(cs.deviceId, Number.parseInt(ids.get('Device') ?? '', 16), `${where}: device`);
      assert.equal(
        cs.classCode >>> 8,
        Number.parseInt(ids.get('Class') ?? '', 16),
        `${where}: class`,
      );
      assert.equal(cs.revision, Number.parseInt(ids.get('Rev') ?? '0', 16), `${where}: revision`);
      const progIf = ids.get('ProgIf');
      if (progIf !== undefined)
        assert.equal(cs.progIf, Number.parseInt(progIf, 16), `${where}: prog-if`);
      const subVendor = ids.get('SVendor');
      if (subVendor !== undefined) {
        assert.equal(cs.subsystemVendorId, Number.parseInt(subVendor, 16), `${where}: subvendor`);
        assert.equal(
          cs.subsystemId,
          Number.parseInt(ids.get('SDevice') ?? '', 16),
          `${where}: subdevice`,
        );
      }
    });
    devices += ours.length;
  }
  assert.ok(devices >= 150, `expected about 200 devices in the oracles, parsed ${devices}`);
});

test('parseLspciText() reads every text dump to the bytes lspci -F prints back', (t) => {
  if (skipWithoutLspci(t)) return;
  for (const file of textDumpFiles()) {
    const name = relative(DUMPS_DIR, file);
    const ours = byAddress(parseLspciText(readText(file)));
    const theirs = parseLspciText(lspci(file, '-xxxx'));
    assert.equal(ours.length, theirs.length, name);
    ours.forEach((dump, i) => {
      assert.deepEqual(dump.config, theirs[i]?.config, `${name} ${dump.address.toString()}`);
    });
  }
});

test('the curated text dumps hold the same bytes as the curated binary images', () => {
  const dir = join(DUMPS_DIR, 'curated');
  const texts = readdirSync(dir).filter((n) => n.endsWith('.txt'));
  assert.equal(texts.length, 14);
  for (const name of texts) {
    const [fromText] = parseDumpFile(readBytes(join(dir, name)), name);
    const [fromBinary] = parseDumpFile(readBytes(join(dir, name.replace(/\.txt$/, '.bin'))));
    assert.ok(fromText !== undefined && fromBinary !== undefined);
    assert.deepEqual(fromText.config, fromBinary.config, name);
  }
});

test('the local lspci -xxxx text holds the same bytes as the sysfs config files', () => {
  const dir = join(DUMPS_DIR, 'local');
  const dumps = parseDumpFile(readBytes(join(dir, 'lspci-xxxx.txt')), 'lspci-xxxx.txt');
  const binaries = readdirSync(dir).filter((n) => n.endsWith('.config.bin'));
  assert.equal(binaries.length, 6);
  assert.equal(dumps.length, binaries.length);
  for (const name of binaries) {
    const [binary] = parseDumpFile(readBytes(join(dir, name)), join(dir, name));
    assert.ok(binary !== undefined);
    assert.equal(
      `${binary.address.toString()}.config.bin`,
      name,
      'address taken from the file name',
    );
    assert.equal(binary.hasDomain, true);
    const text = dumps.find((d) => d.address.equals(binary.address));
    assert.ok(text !== undefined, `no text dump for ${name}`);
    assert.deepEqual(text.config, binary.config, name);
  }
});

// --- BAR sizes ---

test('parseLspciText() takes BAR sizes from Region and Expansion ROM lines', () => {
  const [dump] = parseLspciText(readText(join(DUMPS_DIR, 'pciutils', 'cap-pcie-2')));
  assert.deepEqual(
    dump?.barSizes,
    new Map([
      [0, 128n * 1024n],
      [1, 4n << 20n],
      [2, 32n],
      [3, 16n * 1024n],
      [6, 4n << 20n],
    ]),
  );
});

test('parseLspciText() keeps sizes of [virtual] and [disabled] regions and skips sizeless ones', () => {
  // cap-ea-1: `Region 0: [virtual] Memory at ... [size=1G]`.
  const [ea] = parseLspciText(readText(join(DUMPS_DIR, 'pciutils', 'cap-ea-1')));
  assert.deepEqual(
    ea?.barSizes,
    new Map([
      [0, 1n << 30n],
      [4, 1n << 20n],
    ]),
  );
  // cap-dvsec-cxl: `[disabled] [size=1M]`, with the VF BARs of SR-IOV (no size, and
  // indented under the capability) not taken as the device's own.
  const [cxl, second] = parseLspciText(readText(join(DUMPS_DIR, 'pciutils', 'cap-dvsec-cxl')));
  assert.deepEqual(
    cxl?.barSizes,
    new Map([
      [0, 1n << 20n],
      [2, 1024n],
      [4, 16n << 20n],
    ]),
  );
  assert.equal(second?.barSizes.size, 0);
});

test('parseLspciText() reads every size suffix and the [enhanced] variant', () => {
  const text = [
    '00:00.0 Synthetic device',
    '\tRegion 0: Memory at 100000000 (64-bit, prefetchable) [enhanced] [size=8G]',
    '\tRegion 2: Memory at <unassigned> (64-bit, prefetchable) [size=2T]',
    '\tRegion 4: I/O ports at 1000 [size=256]',
    '\tRegion 5: Memory at fe000000 (32-bit, non-prefetchable)',
    '\tExpansion ROM at fe100000 [virtual] [disabled] [size=64K]',
    '\t\tRegion 1: Memory at 0 (64-bit) [size=4K]',
    hexLine(0, [0x86, 0x80]),
    '',
  ].join('\n');
  const [dump] = parseLspciText(text);
  assert.deepEqual(
    dump?.barSizes,
    new Map([
      [0, 8n << 30n],
      [2, 2n << 40n],
      [4, 256n],
      [6, 64n << 10n],
    ]),
  );
});

test('parseLspciText() accepts -vvv text indented with spaces', () => {
  const text = [
    '00:00.0 Synthetic device',
    '        Region 0: Memory at a6f00000 (32-bit, non-prefetchable) [size=1M]',
    '                Region 2: Memory at a6900000 (32-bit, non-prefetchable) [size=4K]',
    hexLine(0, [1]),
  ].join('\n');
  assert.deepEqual(parseLspciText(text)[0]?.barSizes, new Map([[0, 1n << 20n]]));
});

// --- the text grammar ---

test('parseLspciText() reads several devices with and without a domain', () => {
  const text = [
    '0002:01:00.0 Ethernet controller: Cavium',
    hexLine(0, [0x7d, 0x17, 0x1e, 0xa0]),
    '',
    '03:1f.7 Something else',
    hexLine(0, [0x86, 0x80]),
    '',
  ].join('\n');
  const dumps = parseLspciText(text);
  assert.equal(dumps.length, 2);
  const [first, second] = dumps;
  assert.ok(first !== undefined && second !== undefined);
  assert.equal(first.address.toString(), '0002:01:00.0');
  assert.equal(first.hasDomain, true);
  assert.equal(first.description, 'Ethernet controller: Cavium');
  assert.equal(second.address.toString(), '0000:03:1f.7');
  assert.equal(second.hasDomain, false);
  assert.equal(second.description, 'Something else');
});

test('parseLspciText() sizes the image by the highest byte, rounded to 64, 256 or 4096', () => {
  const device = (lines: string[]): DeviceDump | undefined =>
    parseLspciText(['00:00.0 x', ...lines].join('\n'))[0];
  assert.equal(device([hexLine(0, [1])])?.config.length, 64);
  assert.equal(device([hexLine(0x30, Array<number>(16).fill(1))])?.config.length, 64);
  assert.equal(device([hexLine(0x40, [1])])?.config.length, 256);
  assert.equal(device([hexLine(0xf0, Array<number>(16).fill(1))])?.config.length, 256);
  assert.equal(device([hexLine(0x100, [1])])?.config.length, 4096);
  const sparse = device([hexLine(0x10, [0xaa, 0xbb]), hexLine(0x100, [0xcc])]);
  assert.ok(sparse !== undefined);
  assert.equal(sparse.config[0x10], 0xaa);
  assert.equal(sparse.config[0x11], 0xbb);
  assert.equal(sparse.config[0x100], 0xcc);
  // Bytes the text does not give are 0.
  assert.equal(
    sparse.config.reduce((sum, b) => sum + b, 0),
    0xaa + 0xbb + 0xcc,
  );
});

test('parseLspciText() accepts CRLF line ends, upper-case hex and trailing blanks', () => {
  const text = '0000:00:1F.3 SMBus\r\n00: 86 80 A2 9D  \r\n\r\n';
  const [dump] = parseLspciText(text);
  assert.ok(dump !== undefined);
  assert.equal(dump.address.toString(), '0000:00:1f.3');
  assert.equal(dump.description, 'SMBus');
  assert.deepEqual([...dump.config.subarray(0, 4)], [0x86, 0x80, 0xa2, 0x9d]);
});

test('parseLspciText() lets a later line overwrite bytes, as lspci does', () => {
  const [dump] = parseLspciText(['00:00.0 x', hexLine(0, [1, 2]), hexLine(1, [9])].join('\n'));
  assert.deepEqual([...(dump?.config.subarray(0, 3) ?? [])], [1, 9, 0]);
});

test('parseLspciText() returns no devices for text without headers', () => {
  assert.deepEqual(parseLspciText(''), []);
  assert.deepEqual(parseLspciText('just some words\n\tRegion 0: Memory [size=4K]\n'), []);
});

test('parseLspciText() rejects malformed hex lines and names the line', () => {
  const bad = ['00: 86 8', '00: 86 80 zz', '00:86 80', '10: ', '00: 186 80', '123456789: 00'];
  for (const line of bad) {
    assertDumpError(
      () => parseLspciText(['00:00.0 x', hexLine(0, [1]), line].join('\n')),
      3,
      /^Cannot parse lspci dump line 3: expected "OFF: "/,
    );
  }
});

test('parseLspciText() names the file in its errors when given one', () => {
  assertDumpError(
    () => parseLspciText('00:00.0 x\n00: zz\n', { name: 'gpu.txt' }),
    2,
    /^Cannot parse lspci dump "gpu.txt" line 2:/,
  );
});

test('parseLspciText() rejects hex data outside a device', () => {
  assertDumpError(() => parseLspciText(hexLine(0, [1])), 1, /outside a device/);
  // An empty line ends a device in pciutils, so data after it belongs to none.
  assertDumpError(
    () => parseLspciText(['00:00.0 x', hexLine(0, [1]), '', hexLine(0x10, [1])].join('\n')),
    4,
    /outside a device/,
  );
});

test('parseLspciText() rejects data beyond 4096 bytes', () => {
  assertDumpError(
    () => parseLspciText(['00:00.0 x', hexLine(0xff8, Array<number>(16).fill(0))].join('\n')),
    2,
    /runs past 4096 bytes/,
  );
  assertDumpError(
    () => parseLspciText(['00:00.0 x', hexLine(0x1000, [0])].join('\n')),
    2,
    /runs past 4096 bytes/,
  );
});

test('parseLspciText() rejects a header with an impossible address, naming the component', () => {
  assertDumpError(() => parseLspciText('00:20.0 x\n00: 00\n'), 1, /invalid device in "00:20\.0 x"/);
  assertDumpError(() => parseLspciText('00:00.8 x\n00: 00\n'), 1, /invalid function/);
  assertDumpError(() => parseLspciText('10000:00:00.0 x\n00: 00\n'), 1, /invalid domain/);
});

test('parseLspciText() rejects a device header with no hex data', () => {
  assertDumpError(
    () => parseLspciText('00:00.0 x\n\tControl: I/O-\n01:00.0 y\n00: 00\n'),
    1,
    /device "0000:00:00\.0" has no hex data/,
  );
});

// --- binary images and detection ---

test('parseBinaryDump() wraps 64, 256 and 4096 bytes and rejects other lengths', () => {
  for (const size of [64, 256, 4096]) {
    const dump = parseBinaryDump(new Uint8Array(size));
    assert.equal(dump.config.length, size);
    assert.equal(dump.address.toString(), '0000:00:00.0');
    assert.equal(dump.hasDomain, false);
    assert.equal(dump.barSizes.size, 0);
  }
  for (const size of [0, 1, 63, 100, 255, 4095, 4097]) {
    assertDumpError(
      () => parseBinaryDump(new Uint8Array(size)),
      undefined,
      /must be 64, 256 or 4096/,
    );
  }
});

test('parseBinaryDump() copies the bytes and takes address and description options', () => {
  const bytes = readBytes(join(DUMPS_DIR, 'curated', 'nic-intel-82576-8086_10c9-sriov-msix.bin'));
  const dump = parseBinaryDump(bytes, {
    address: PciAddress.parse('0003:04:00.1'),
    description: 'Ethernet controller',
  });
  bytes[0] = 0;
  assert.equal(dump.config[0], 0x86);
  assert.equal(dump.address.toString(), '0003:04:00.1');
  assert.equal(dump.hasDomain, true, 'a non-zero domain is shown');
  assert.equal(dump.description, 'Ethernet controller');
  assert.equal(parseBinaryDump(bytes, { hasDomain: true }).hasDomain, true);
});

test('parseBinaryDump() describes a device the way lspci -n does by default', () => {
  const dump = parseBinaryDump(
    readBytes(join(DUMPS_DIR, 'curated', 'nic-intel-82576-8086_10c9-sriov-msix.bin')),
  );
  assert.equal(dump.description, 'Class 0200: Device 8086:10c9 (rev 01)');
  const noRev = parseBinaryDump(readBytes(join(DUMPS_DIR, 'curated', 'nvme-samsung-pm174x.bin')));
  assert.equal(noRev.description, 'Class 0108: Device 144d:a826');
});

test('parseDumpFile() tells text from binary for every curated pair', () => {
  const dir = join(DUMPS_DIR, 'curated');
  for (const name of readdirSync(dir)) {
    const [dump] = parseDumpFile(readBytes(join(dir, name)), name);
    assert.ok(dump !== undefined, name);
    if (name.endsWith('.txt')) {
      const header = readText(join(dir, name)).split('\n')[0] ?? '';
      const address = dump.hasDomain ? dump.address.toString() : dump.address.toShortString();
      assert.equal(`${address} ${dump.description}`, header, `${name} as text`);
    } else {
      assert.match(dump.description, /^Class [0-9a-f]{4}: Device /, `${name} read as binary`);
    }
  }
});

test('parseDumpFile() reads a binary image even when its bytes are printable', () => {
  const bytes = new Uint8Array(64).fill(0x41); // 'AAAA...'
  const [dump] = parseDumpFile(bytes, 'weird.bin');
  assert.ok(dump !== undefined);
  assert.equal(dump.config.length, 64);
  assert.equal(dump.address.toString(), '0000:00:00.0');
});

test('parseDumpFile() takes the address of a binary image from a sysfs-style name', () => {
  const bytes = new Uint8Array(256);
  assert.equal(
    parseDumpFile(
      bytes,
      '/sys/bus/pci/devices/0000:03:00.1/../0001:02:1f.7.config.bin',
    )[0]?.address.toString(),
    '0001:02:1f.7',
  );
  const short = parseDumpFile(bytes, '03:00.1-config')[0];
  assert.ok(short !== undefined);
  assert.equal(short.address.toString(), '0000:03:00.1');
  assert.equal(short.hasDomain, false);
  assert.equal(parseDumpFile(bytes, 'ff:20.0.bin')[0]?.address.toString(), '0000:00:00.0');
});

test('parseDumpFile() rejects bytes that are neither text nor a config image', () => {
  assertDumpError(
    () => parseDumpFile(new Uint8Array(100), 'x.bin'),
    undefined,
    /^Cannot read dump "x\.bin": 100 bytes/,
  );
  assertDumpError(
    () => parseDumpFile(new TextEncoder().encode('hello\n')),
    undefined,
    /neither lspci text nor/,
  );
});

test('parseDumpFile() reports a malformed text dump with its line', () => {
  const text = new TextEncoder().encode('00:00.0 x\n00: 01 02\n10: 0g\n');
  assertDumpError(() => parseDumpFile(text, 'bad.txt'), 3, /"bad\.txt" line 3/);
});

// --- formatting ---

test('formatLspciDump() writes what lspci -xxxx prints, byte for byte', (t) => {
  if (skipWithoutLspci(t)) return;
  const files = [
    'curated/nvme-samsung-pm174x.txt',
    'curated/virtio-net-legacy-256.txt',
    'curated/nic-cavium-thunderx-177d_a01e-sriov-ea.txt',
    'pciutils/PCI-X-bridges-and-domains',
    'pciutils/tree-asus-p6t6',
    'local/lspci-xxxx.txt',
  ];
  for (const name of files) {
    const file = join(DUMPS_DIR, name);
    const expected = lspci(file, '-xxxx');
    // Our bytes from the original file, lspci's own names and device order.
    const names = parseLspciText(expected);
    const ours = byAddress(parseLspciText(readText(file))).map((dump, i) => ({
      ...dump,
      description: names[i]?.description ?? '',
      hasDomain: names[i]?.hasDomain ?? false,
    }));
    assert.equal(formatLspciDump(ours), expected, name);
    assert.equal(formatLspciDump(names), expected, `${name} (reparsed)`);
  }
});

test('formatLspciDump() output reads back through lspci -F for 64, 256 and 4096 bytes', (t) => {
  if (skipWithoutLspci(t)) return;
  const dumps: DeviceDump[] = [64, 256, 4096].map((size, i) => {
    const config = new Uint8Array(size);
    for (let j = 0; j < size; j++) config[j] = (j * 7 + i) & 0xff;
    config.set([0x86, 0x80, 0x00 + i, 0x10], 0);
    config[0x0e] = 0; // a normal header, so lspci decodes it as one
    return {
      address: new PciAddress(0, 1 + i, 0, 0),
      hasDomain: false,
      description: 'Test device',
      config,
      barSizes: new Map(),
    };
  });
  const text = formatLspciDump(dumps);
  withTempFile(text, (path) => {
    const back = parseLspciText(lspci(path, '-xxxx'));
    assert.equal(back.length, 3);
    back.forEach((dump, i) => {
      assert.deepEqual(dump.config, dumps[i]?.config, `${dumps[i]?.config.length}-byte image`);
    });
  });
});

test('formatLspciDump() writes 16 bytes a line, two-digit offsets below 0x100, three above', () => {
  const config = new Uint8Array(4096);
  config[0x1ff] = 0xab;
  const text = formatLspciDump({
    address: PciAddress.parse('00:02.0'),
    hasDomain: false,
    description: 'VGA',
    config,
    barSizes: new Map(),
  });
  const lines = text.split('\n');
  assert.equal(lines[0], '00:02.0 VGA');
  assert.equal(lines[1], '00: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
  assert.equal(lines[16], 'f0: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
  assert.equal(lines[17], '100: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
  assert.equal(lines[32], '1f0: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ab');
  assert.equal(lines[256], 'ff0: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
  assert.equal(lines.length, 259);
  assert.ok(text.endsWith('\n\n'), 'an empty line after the device');
});

test('formatLspciDump() honours withDomain but always writes a non-zero domain', () => {
  const dump = (domain: number, hasDomain: boolean): DeviceDump => ({
    address: new PciAddress(domain, 3, 0, 0),
    hasDomain,
    description: 'x',
    config: new Uint8Array(64),
    barSizes: new Map(),
  });
  const header = (text: string): string => text.split('\n')[0] ?? '';
  assert.equal(header(formatLspciDump(dump(0, false))), '03:00.0 x');
  assert.equal(header(formatLspciDump(dump(0, true))), '0000:03:00.0 x');
  assert.equal(header(formatLspciDump(dump(0, false), { withDomain: true })), '0000:03:00.0 x');
  assert.equal(header(formatLspciDump(dump(0, true), { withDomain: false })), '03:00.0 x');
  assert.equal(header(formatLspciDump(dump(2, false), { withDomain: false })), '0002:03:00.0 x');
});

test('formatLspciDump() writes nothing for no dumps and each dump of a list in order', () => {
  assert.equal(formatLspciDump([]), '');
  const a: DeviceDump = {
    address: PciAddress.parse('01:00.0'),
    hasDomain: false,
    description: 'a',
    config: new Uint8Array(64),
    barSizes: new Map(),
  };
  const b = { ...a, address: PciAddress.parse('00:01.0'), description: 'b' };
  const text = formatLspciDump([a, b]);
  assert.deepEqual(
    text.split('\n').filter((l) => /^\d\d:\d\d\.\d /.test(l)),
    ['01:00.0 a', '00:01.0 b'],
  );
  assert.equal(text, formatLspciDump(a) + formatLspciDump(b));
});

test('formatLspciDump() rejects a bad image length or a description with a line break', () => {
  const base: DeviceDump = {
    address: PciAddress.parse('00:00.0'),
    hasDomain: false,
    description: 'x',
    config: new Uint8Array(64),
    barSizes: new Map(),
  };
  assert.throws(() => formatLspciDump({ ...base, config: new Uint8Array(128) }), RangeError);
  assert.throws(() => formatLspciDump({ ...base, description: 'a\nb' }), /line break/);
  assert.throws(() => formatLspciDump({ ...base, description: 'a\rb' }), RangeError);
});

test('parseLspciText() reads formatLspciDump() output of every oracle device back unchanged', () => {
  for (const file of textDumpFiles()) {
    const dumps = parseLspciText(readText(file));
    const back = parseLspciText(formatLspciDump(dumps));
    assert.deepEqual(
      back,
      dumps.map((d) => ({ ...d, barSizes: new Map() })),
      basename(file),
    );
  }
});

test('descriptions that are empty, blank-led or hold U+2028 survive a round trip', () => {
  for (const description of [
    '',
    '  two blanks',
    'tab\there',
    'para\u2028graph\u2029end',
    'Zürich ✓',
  ]) {
    const dump: DeviceDump = {
      address: PciAddress.parse('00:1f.0'),
      hasDomain: false,
      description,
      config: new Uint8Array(64),
      barSizes: new Map(),
    };
    assert.deepEqual(parseLspciText(formatLspciDump(dump)), [dump], JSON.stringify(description));
  }
});
