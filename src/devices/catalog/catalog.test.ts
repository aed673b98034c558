// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_EXP_FLAGS_OFFSET,
  PCI_EXP_FLAGS_SLOT,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXT_CAP_ID,
} from '../../abi/pci-regs.js';
import { walkCapabilities, walkExtendedCapabilities } from '../../pci/capabilities.js';
import type { SimulatedFunction } from '../simulated-function.js';
import { CATALOG_MODELS, buildCatalogDevice, isCatalogModel, type CatalogModel } from './index.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

interface Expected {
  readonly ids: number; // device << 16 | vendor
  readonly classCode: number;
  readonly caps: readonly number[];
  readonly extCaps: readonly number[];
}

const EXPECTED: Record<CatalogModel, readonly Expected[]> = {
  'nic-sriov': [
    {
      ids: 0x10fb8086,
      classCode: 0x020000,
      caps: [PCI_CAP_ID.PM, PCI_CAP_ID.MSI, PCI_CAP_ID.MSIX, PCI_CAP_ID.EXP, PCI_CAP_ID.VPD],
      extCaps: [PCI_EXT_CAP_ID.ERR, PCI_EXT_CAP_ID.DSN, PCI_EXT_CAP_ID.ARI, PCI_EXT_CAP_ID.SRIOV],
    },
  ],
  nvme: [
    {
      ids: 0xa808144d,
      classCode: 0x010802,
      caps: [PCI_CAP_ID.PM, PCI_CAP_ID.MSI, PCI_CAP_ID.EXP, PCI_CAP_ID.MSIX],
      extCaps: [PCI_EXT_CAP_ID.ERR, PCI_EXT_CAP_ID.DSN],
    },
  ],
  xhci: [
    {
      ids: 0x00151912,
      classCode: 0x0c0330,
      caps: [PCI_CAP_ID.PM, PCI_CAP_ID.MSI, PCI_CAP_ID.MSIX, PCI_CAP_ID.EXP],
      extCaps: [PCI_EXT_CAP_ID.ERR, PCI_EXT_CAP_ID.DSN],
    },
  ],
  gpu: [
    {
      ids: 0x1c8210de,
      classCode: 0x030000,
      caps: [PCI_CAP_ID.PM, PCI_CAP_ID.MSI, PCI_CAP_ID.EXP],
      extCaps: [],
    },
    {
      ids: 0x0fb910de,
      classCode: 0x040300,
      caps: [PCI_CAP_ID.PM, PCI_CAP_ID.MSI, PCI_CAP_ID.EXP],
      extCaps: [],
    },
  ],
  'root-port': [
    {
      ids: 0xa1108086,
      classCode: 0x060400,
      caps: [PCI_CAP_ID.EXP, PCI_CAP_ID.MSI, PCI_CAP_ID.SSVID, PCI_CAP_ID.PM],
      extCaps: [PCI_EXT_CAP_ID.ERR, PCI_EXT_CAP_ID.ACS],
    },
  ],
};

/** Size mask a BAR register reads after all-ones is written (then restored). */
function sizeMask(fn: SimulatedFunction, offset: number): number {
  const original = fn.configRead(offset, 4);
  fn.configWrite(offset, 4, 0xffffffff);
  const mask = fn.configRead(offset, 4);
  fn.configWrite(offset, 4, original);
  assert.equal(fn.configRead(offset, 4), original, 'restoring the BAR gives the address back');
  return mask;
}

describe('catalog', () => {
  test('CATALOG_MODELS lists every model with a one-line description', () => {
    assert.deepEqual(Object.keys(CATALOG_MODELS).sort(), Object.keys(EXPECTED).sort());
    for (const description of Object.values(CATALOG_MODELS)) {
      assert.ok(description.length > 20 && !description.includes('\n'));
    }
    assert.equal(isCatalogModel('nvme'), true);
    assert.equal(isCatalogModel('toString'), false);
  });

  for (const model of Object.keys(EXPECTED) as CatalogModel[]) {
    test(`${model}: IDs, class and capabilities are walkable`, () => {
      const functions = buildCatalogDevice(model);
      const expected = EXPECTED[model];
      assert.deepEqual(
        functions.map((f) => f.fn),
        expected.map((_, i) => i),
      );
      functions.forEach(({ device }, i) => {
        const want = must(expected[i]);
        assert.equal(device.configRead(0x00, 4), want.ids);
        assert.equal(device.configRead(0x08, 4) >>> 8, want.classCode);
        assert.deepEqual(
          walkCapabilities(device).map((c) => c.id),
          want.caps,
        );
        assert.deepEqual(
          walkExtendedCapabilities(device).map((c) => c.id),
          want.extCaps,
        );
      });
    });

    test(`${model}: every BAR is assigned and sizes to its size`, () => {
      for (const { device } of buildCatalogDevice(model)) {
        for (const bar of device.bars()) {
          assert.notEqual(bar.address, 0n, `BAR ${bar.index} assigned`);
          assert.equal(bar.address % bar.sizeBytes, 0n, `BAR ${bar.index} naturally aligned`);
          const offset = 0x10 + 4 * bar.index;
          const low = sizeMask(device, offset);
          const sizeMaskBits = ~(bar.sizeBytes - 1n);
          const expectedLow = Number(
            sizeMaskBits & (bar.kind === 'io' ? 0xfffffffcn : 0xfffffff0n),
          );
          assert.equal(
            low & (bar.kind === 'io' ? ~0x3 : ~0xf),
            expectedLow | 0,
            `BAR ${bar.index} low`,
          );
          if (bar.kind === 'mem64') {
            assert.equal(sizeMask(device, offset + 4), Number((sizeMaskBits >> 32n) & 0xffffffffn));
          }
        }
        const rom = device.rom();
        if (rom !== undefined) {
          const romOffset = device.headerType === 1 ? 0x38 : 0x30;
          const romMask = (sizeMask(device, romOffset) & ~1) >>> 0;
          assert.equal(romMask, Number(~(rom.sizeBytes - 1n) & 0xfffff800n));
        }
      }
    });
  }

  test('the NIC has 64 MSI-X vectors in BAR 3, FLR and 16 VFs', () => {
    const fn = must(buildCatalogDevice('nic-sriov')[0]).device;
    assert.equal(fn.msixTableSize, 64);
    assert.equal(fn.msixLayout()?.table.bar, 3);
    assert.deepEqual(fn.resetCapabilities(), { flr: true, afFlr: false, pmSoftReset: true });
    const sriov = must(fn.sriovStatus());
    assert.equal(sriov.totalVfs, 16);
    assert.equal(sriov.vfDeviceId, 0x10ed);
    assert.deepEqual(
      sriov.vfBars.map((b) => [b.index, b.kind, b.sizeBytes]),
      [
        [0, 'mem64', 0x4000n],
        [3, 'mem64', 0x4000n],
      ],
    );
    assert.ok(fn.vfTemplate() !== undefined);
  });

  test('the NVMe controller has a 64-bit 16 KiB BAR 0, MSI-X, MSI and FLR', () => {
    const fn = must(buildCatalogDevice('nvme')[0]).device;
    assert.deepEqual(
      fn.bars().map((b) => [b.index, b.kind, b.sizeBytes]),
      [[0, 'mem64', 0x4000n]],
    );
    assert.equal(fn.hasMsi && fn.hasMsix, true);
    assert.equal(fn.resetCapabilities().flr, true);
  });

  test('the xHCI controller has no FLR but resets through PM', () => {
    const fn = must(buildCatalogDevice('xhci')[0]).device;
    assert.deepEqual(fn.resetCapabilities(), { flr: false, afFlr: false, pmSoftReset: true });
    assert.equal(fn.hasMsi || fn.hasMsix, true);
  });

  test('the GPU is multi-function with an HDMI audio function 1', () => {
    const [vga, audio] = buildCatalogDevice('gpu');
    assert.equal(
      must(vga).device.configRead(0x0e, 1) & 0x80,
      0x80,
      'multi-function bit on function 0',
    );
    assert.equal(must(audio).fn, 1);
    assert.equal(must(audio).device.configRead(0x3d, 1), 2, 'INTB');
    const kinds = must(vga)
      .device.bars()
      .map((b) => `${b.kind}${b.prefetchable ? '-pref' : ''}`);
    assert.deepEqual(kinds, ['mem32', 'mem64-pref', 'mem64-pref', 'io']);
    assert.equal(must(vga).device.rom()?.sizeBytes, 0x80000n);
    assert.equal(must(vga).device.rom()?.enabled, false);
    assert.equal(must(vga).device.hasMsi, true);
    const vgaBars = must(vga).device.bars();
    const audioBar = must(must(audio).device.bars()[0]);
    assert.ok(
      vgaBars.every(
        (b) =>
          b.kind === 'io' ||
          b.address + b.sizeBytes <= audioBar.address ||
          b.address >= audioBar.address + audioBar.sizeBytes,
      ),
      'functions get disjoint ranges',
    );
  });

  test('the root port is a type-1 root port with a slot, AER root registers and MSI', () => {
    const fn = must(buildCatalogDevice('root-port', { primaryBus: 0, secondaryBus: 5 })[0]).device;
    assert.equal(fn.headerType, 1);
    assert.equal(fn.pcieType, PCI_EXP_TYPE_ROOT_PORT);
    const exp = must(walkCapabilities(fn).find((c) => c.id === PCI_CAP_ID.EXP)).byteOffset;
    assert.equal(
      fn.configRead(exp + PCI_EXP_FLAGS_OFFSET, 2) & PCI_EXP_FLAGS_SLOT,
      PCI_EXP_FLAGS_SLOT,
    );
    assert.equal(fn.configRead(0x18, 4) & 0xffffff, 0x050500);
    assert.notEqual(fn.configRead(0x20, 4), 0, 'memory window programmed');
    assert.equal(fn.hasMsi, true);
    assert.deepEqual(fn.bars(), []);
  });

  test('options move the firmware windows and give hooks to each function', () => {
    const seen: number[] = [];
    const [vga, audio] = buildCatalogDevice('gpu', {
      mmioBase: 0xc0000000n,
      mmio64Base: 0x4000000000n,
      ioBase: 0x2000n,
      irq: 5,
      hooks: (fn) => ({ onIntx: () => seen.push(fn) }),
    });
    assert.equal(must(must(vga).device.bars()[0]).address, 0xc0000000n);
    assert.equal(must(must(vga).device.bars()[1]).address, 0x4000000000n);
    assert.equal(must(must(vga).device.bars()[3]).address, 0x2000n);
    assert.equal(must(vga).device.configRead(0x3c, 1), 5);
    must(audio).device.setIntx(true);
    must(vga).device.setIntx(true);
    assert.deepEqual(seen, [1, 0]);
  });
});
