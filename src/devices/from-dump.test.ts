// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSI_FLAGS_ENABLE,
} from '../abi/pci-regs.js';
import {
  walkCapabilities,
  walkExtendedCapabilities,
  type ConfigReader,
} from '../pci/capabilities.js';
import { parseDumpFile, parseLspciText, type DeviceDump } from '../pci/dump.js';
import { PCI_ROM_RESOURCE } from '../pci/resource.js';
import { DUMPS_DIR } from '../../test/support/paths.js';
import { functionFromDump } from './from-dump.js';
import type { SimulatedFunction } from './simulated-function.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

const CURATED = join(DUMPS_DIR, 'curated');
const PCIUTILS = join(DUMPS_DIR, 'pciutils');

function readDump(name: string): DeviceDump {
  const dumps = parseDumpFile(readFileSync(join(CURATED, name)), name);
  assert.equal(dumps.length, 1, `${name} holds one device`);
  return must(dumps[0]);
}

/** A plain reader over the dump bytes, to walk what the dump itself says. */
function imageReader(config: Uint8Array): ConfigReader {
  const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
  const inRange = (o: number, n: number): boolean => o >= 0 && o + n <= config.length;
  return {
    sizeBytes: config.length,
    read8: (o) => (inRange(o, 1) ? view.getUint8(o) : 0xff),
    read16: (o) => (inRange(o, 2) ? view.getUint16(o, true) : 0xffff),
    read32: (o) => (inRange(o, 4) ? view.getUint32(o, true) : 0xffffffff),
  };
}

/**
 * The curated dumps were cut from pciutils' test files, whose `-vvv` text has the
 * `Region N ... [size=]` lines. Finds the source device (same header line and same
 * first 64 bytes) and returns its sizes, without Enhanced Allocation `[virtual]`
 * regions (those are not BARs).
 */
function regionSizes(dump: DeviceDump): Map<number, bigint> | undefined {
  for (const file of readdirSync(PCIUTILS)) {
    if (file.startsWith('COPYING') || file === 'SOURCE-COMMIT') continue;
    const text = readFileSync(join(PCIUTILS, file), 'utf8');
    if (!text.includes(dump.description)) continue;
    const source = parseLspciText(text).find(
      (d) =>
        d.description === dump.description &&
        sameBytes(d.config.subarray(0, 64), dump.config.subarray(0, 64)),
    );
    if (source === undefined || source.barSizes.size === 0) continue;
    const block = text.slice(text.indexOf(dump.description));
    const blockEnd = block.indexOf('\n\n');
    const device = blockEnd === -1 ? block : block.slice(0, blockEnd);
    const virtual = new Set(
      [...device.matchAll(/^\s+Region (\d): \[virtual\]/gm)].map((m) => Number(m[1])),
    );
    return new Map([...source.barSizes].filter(([index]) => !virtual.has(index)));
  }
  return undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The size a BAR (or the ROM, index 6) reports through sizing writes. */
function sizedBar(fn: SimulatedFunction, index: number): bigint {
  const offset =
    index === PCI_ROM_RESOURCE ? (fn.headerType === 1 ? 0x38 : 0x30) : 0x10 + 4 * index;
  const probe = (at: number): number => {
    const original = fn.configRead(at, 4);
    fn.configWrite(at, 4, 0xffffffff);
    const mask = fn.configRead(at, 4);
    fn.configWrite(at, 4, original);
    return mask;
  };
  const low = probe(offset);
  if (index === PCI_ROM_RESOURCE) {
    const mask = BigInt((low & 0xfffff800) >>> 0);
    return mask & -mask;
  }
  if ((low & 1) === 1) {
    const mask = BigInt((low & 0xfffffffc) >>> 0);
    return mask & -mask;
  }
  let mask = BigInt((low & 0xfffffff0) >>> 0);
  if ((low & 0x6) === 0x4) mask |= BigInt(probe(offset + 4)) << 32n;
  return mask & -mask;
}

const curated = readdirSync(CURATED).filter((f) => f.endsWith('.txt') || f.endsWith('.bin'));

describe('functionFromDump() on the curated dumps', () => {
  test('there are curated dumps to test', () => {
    assert.ok(curated.length >= 28);
  });

  for (const name of curated) {
    test(`${name}: the device shows the dump's IDs and capability lists`, () => {
      const dump = readDump(name);
      const fn = functionFromDump(dump);
      assert.equal(fn.sizeBytes, dump.config.length);
      const image = imageReader(dump.config);
      for (const offset of [0x00, 0x08, 0x2c, 0x34]) {
        assert.equal(
          fn.configRead(offset, 4),
          image.read32(offset),
          `dword 0x${offset.toString(16)}`,
        );
      }
      assert.deepEqual(walkCapabilities(fn), walkCapabilities(image));
      assert.deepEqual(walkExtendedCapabilities(fn), walkExtendedCapabilities(image));
    });

    test(`${name}: capabilities and header get their write masks`, () => {
      const fn = functionFromDump(readDump(name));
      assert.ok((fn.registerMasks(0x04, 2).writable & 0x0006) === 0x0006, 'MEMORY and MASTER');
      for (const cap of walkCapabilities(fn)) {
        const masks = fn.registerMasks(cap.byteOffset, 2);
        assert.equal(
          masks.writable,
          0,
          `capability header at 0x${cap.byteOffset.toString(16)} is RO`,
        );
      }
      const exp = walkCapabilities(fn).find((c) => c.id === PCI_CAP_ID.EXP);
      if (exp !== undefined) {
        assert.equal(
          fn.registerMasks(exp.byteOffset + PCI_EXP_DEVCTL_OFFSET, 2).writable & 0x7fff,
          0x7fff,
        );
      }
      const msi = walkCapabilities(fn).find((c) => c.id === PCI_CAP_ID.MSI);
      if (msi !== undefined) {
        assert.equal(fn.registerMasks(msi.byteOffset + 2, 2).writable & PCI_MSI_FLAGS_ENABLE, 1);
      }
      const msix = walkCapabilities(fn).find((c) => c.id === PCI_CAP_ID.MSIX);
      if (msix !== undefined) {
        assert.equal(
          fn.registerMasks(msix.byteOffset + 2, 2).writable,
          PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL,
        );
      }
      if (fn.headerType === 1)
        assert.equal(fn.registerMasks(0x18, 4).writable & 0xffffff, 0xffffff);
    });
  }

  for (const name of curated.filter((f) => f.endsWith('.txt'))) {
    test(`${name}: BAR sizes equal the Region sizes of the source dump`, (t) => {
      const dump = readDump(name);
      const sizes = regionSizes(dump);
      if (sizes === undefined || sizes.size === 0) {
        t.diagnostic('the source dump has no Region sizes: inferred sizes are upper bounds only');
        const fn = functionFromDump(dump);
        for (const bar of fn.bars()) {
          assert.equal(
            bar.address % bar.sizeBytes,
            0n,
            `BAR ${bar.index} aligned to its inferred size`,
          );
          assert.equal(sizedBar(fn, bar.index), bar.sizeBytes);
        }
        return;
      }
      const fn = functionFromDump(dump, { barSizes: sizes });
      for (const [index, size] of sizes) {
        assert.equal(sizedBar(fn, index), size, `region ${index}`);
      }
      // Inference alone never undersizes a BAR (natural alignment is an upper bound).
      const inferred = functionFromDump(dump);
      for (const [index, size] of sizes) {
        const bar =
          index === PCI_ROM_RESOURCE
            ? inferred.rom()
            : inferred.bars().find((b) => b.index === index);
        assert.ok(
          bar !== undefined && bar.sizeBytes >= size,
          `inferred region ${index} >= ${size}`,
        );
      }
    });
  }
});

describe('functionFromDump() size precedence', () => {
  test('an explicit size beats the dump Region size, which beats inference', () => {
    const dump = readDump('nic-intel-82576-8086_10c9-sriov-msix.txt');
    const withRegions: DeviceDump = {
      ...dump,
      barSizes: new Map([
        [0, 0x20000n],
        [3, 0x4000n],
      ]),
    };
    const fromRegions = functionFromDump(withRegions);
    assert.equal(sizedBar(fromRegions, 0), 0x20000n);
    assert.equal(sizedBar(fromRegions, 1), 0x800000n, 'BAR 1 inferred: next BAR is 8 MiB above');
    const explicit = functionFromDump(withRegions, { barSizes: new Map([[0, 0x40000n]]) });
    assert.equal(sizedBar(explicit, 0), 0x40000n);
    assert.equal(sizedBar(explicit, 3), 0x4000n);
  });

  test('a dump device resets to power-on values: BAR addresses 0, decode off', () => {
    const dump = readDump('nvme-samsung-pm174x.txt');
    const fn = functionFromDump(dump);
    assert.notEqual(fn.configRead(0x04, 2) & 0x6, 0, 'captured with decode on');
    fn.functionLevelReset();
    assert.equal(fn.configRead(0x04, 2), 0);
    assert.equal(fn.configRead(0x10, 4), 0x4, '64-bit BAR at 0');
    assert.equal(fn.configRead(0x00, 4), imageReader(dump.config).read32(0));
  });
});

describe('functionFromDump() with Region sizes that are no BAR sizes', () => {
  function sourceDevice(file: string, description: string): DeviceDump {
    const dump = parseLspciText(readFileSync(join(PCIUTILS, file), 'utf8')).find((d) =>
      d.description.startsWith(description),
    );
    return must(dump);
  }

  test('legacy IDE regions of 1 byte are ignored, the 8-byte ones used', () => {
    const dump = sourceDevice('cap-vc-and-rcl', 'IDE interface: Intel Corporation 82801GBM');
    assert.equal(dump.barSizes.get(1), 1n, 'lspci printed a 1-byte region');
    const fn = functionFromDump(dump);
    const sizes = new Map(fn.bars().map((b) => [b.index, b.sizeBytes]));
    assert.equal(sizes.get(0), 8n);
    assert.equal(sizes.get(1), 32n, 'inferred instead: an I/O BAR at 0 gets the default');
  });

  test('Enhanced Allocation regions behind BARs that read 0 create no BAR', () => {
    const dump = sourceDevice('cap-ea-1', 'Ethernet controller: Cavium');
    assert.equal(dump.barSizes.get(0), 1n << 30n);
    assert.deepEqual(functionFromDump(dump).bars(), []);
  });
});

describe('functionFromDump() on every oracle dump', () => {
  test('every device of every dump builds, keeps its IDs and survives a reset', () => {
    let devices = 0;
    for (const sub of ['pciutils', 'linux-pci-ml', 'local', 'curated']) {
      for (const file of readdirSync(join(DUMPS_DIR, sub))) {
        if (file.startsWith('COPYING') || file === 'SOURCE-COMMIT') continue;
        for (const dump of parseDumpFile(readFileSync(join(DUMPS_DIR, sub, file)), file)) {
          const fn = functionFromDump(dump);
          const ids = imageReader(dump.config).read32(0);
          assert.equal(fn.configRead(0, 4), ids, `${sub}/${file} ${dump.address.toString()}`);
          fn.functionLevelReset();
          assert.equal(fn.configRead(0, 4), ids);
          devices++;
        }
      }
    }
    assert.ok(devices >= 200, `only ${devices} devices`);
  });
});
