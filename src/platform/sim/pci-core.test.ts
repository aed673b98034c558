// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_D3HOT,
  PCI_ERR_UNCOR_MASK_OFFSET,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_EXT_CAP_ID,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_PM_CTRL_OFFSET,
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_OFFSET,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_NUM_VF_OFFSET,
} from '../../abi/pci-regs.js';
import {
  ConfigImageBuilder,
  SimulatedFunction,
  afBody,
  buildCatalogDevice,
  createVirtualFunctions,
  functionFromDump,
  msiBody,
  pmBody,
  type MsiMessage,
} from '../../devices/index.js';
import { PciAddress } from '../../pci/address.js';
import { findCapability, findExtendedCapability } from '../../pci/capabilities.js';
import { parseDumpFile } from '../../pci/dump.js';
import { EMPTY_RESOURCE, IORESOURCE, PCI_ROM_RESOURCE } from '../../pci/resource.js';
import { DUMPS_DIR } from '../../../test/support/paths.js';
import { SimHostPciDevice, type SavedConfigState } from './pci-core.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

const ADDRESS = PciAddress.parse('0000:01:00.0');

/** The spec §5.7 examples: 4 KiB 32-bit BAR 0 at 0xfeb00000, 64-bit prefetchable 16 KiB BAR 2. */
function specExample(options: { command?: number; romEnabled?: boolean } = {}): SimulatedFunction {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x8086,
    deviceId: 0x10d3,
    revision: 0,
    classCode: 0x020000,
    headerType: 0,
  });
  image.set32(0x10, 0xfeb00000);
  image.set32(0x18, 0x8000000c).set32(0x1c, 0x3);
  image.set32(0x20, 0xe021);
  image.set32(0x30, 0xfeb80000 | (options.romEnabled === true ? 1 : 0));
  image.set16(0x04, options.command ?? 0);
  image.set8(0x3d, 1).set8(0x3c, 10);
  image.addCapability(PCI_CAP_ID.PM, pmBody({ d1: true, d2: true }));
  image.addCapability(PCI_CAP_ID.MSI, msiBody({ is64: true, maskable: false, vectorsLog2: 0 }));
  return new SimulatedFunction(image.build(), {
    barSizes: new Map([
      [0, 0x1000n],
      [2, 0x4000n],
      [4, 0x20n],
      [6, 0x10000n],
    ]),
  });
}

function host(
  fn: SimulatedFunction,
  options: Partial<ConstructorParameters<typeof SimHostPciDevice>[1]> = {},
): SimHostPciDevice {
  return new SimHostPciDevice(fn, { address: ADDRESS, irq: 10, ...options });
}

describe('SimHostPciDevice resources', () => {
  test('a 4 KiB 32-bit BAR at 0xfeb00000 is a MEM resource starting there (spec §5.7)', () => {
    const res = must(host(specExample()).resources()[0]);
    assert.deepEqual(res, { start: 0xfeb00000n, sizeBytes: 0x1000n, flags: IORESOURCE.MEM });
    assert.equal(
      (Number(res.start & 0xffffffffn) | (res.flags & 0xf)) >>> 0,
      0xfeb00000,
      'pciback val',
    );
    assert.equal(
      (Number(-res.sizeBytes & 0xffffffffn) | (res.flags & 0xf)) >>> 0,
      0xfffff000,
      'pciback len_val',
    );
  });

  test('a 64-bit prefetchable 16 KiB BAR at 0x3_8000_0000 keeps its low bits (spec §5.7)', () => {
    const resources = host(specExample()).resources();
    const res = must(resources[2]);
    assert.deepEqual(res, {
      start: 0x380000000n,
      sizeBytes: 0x4000n,
      flags: IORESOURCE.MEM | IORESOURCE.PREFETCH | IORESOURCE.MEM_64 | 0xc,
    });
    assert.equal((Number(res.start & 0xffffffffn) | (res.flags & 0xf)) >>> 0, 0x8000000c);
    assert.equal((Number(-res.sizeBytes & 0xffffffffn) | (res.flags & 0xf)) >>> 0, 0xffffc00c);
    assert.equal(Number(res.start >> 32n), 0x3);
    assert.deepEqual(resources[3], EMPTY_RESOURCE, 'the upper half has no resource of its own');
    assert.deepEqual(resources[1], EMPTY_RESOURCE, 'absent BAR');
  });

  test('I/O and ROM resources carry IO and the boot-time ROM enable bit', () => {
    const resources = host(specExample({ romEnabled: true })).resources();
    assert.deepEqual(resources[4], {
      start: 0xe020n,
      sizeBytes: 0x20n,
      flags: IORESOURCE.IO | 0x1,
    });
    assert.deepEqual(resources[6], {
      start: 0xfeb80000n,
      sizeBytes: 0x10000n,
      flags: IORESOURCE.MEM | IORESOURCE.PREFETCH | IORESOURCE.ROM_ENABLE,
    });
    assert.equal(must(host(specExample()).resources()[6]).flags & IORESOURCE.ROM_ENABLE, 0);
    assert.equal(host(specExample()).resources().length, 7);
  });

  test('sizing at creation leaves the hardware as it found it', () => {
    const fn = specExample({ command: 0x0007 });
    const before = Array.from({ length: 16 }, (_, i) => fn.configRead(4 * i, 4));
    host(fn);
    assert.deepEqual(
      Array.from({ length: 16 }, (_, i) => fn.configRead(4 * i, 4)),
      before,
    );
  });

  test('a BAR at address 0 is IORESOURCE_UNSET and makes enableDevice fail', () => {
    const fn = specExample();
    fn.configWrite(0x10, 4, 0);
    const dev = host(fn);
    assert.equal(must(dev.resources()[0]).flags & IORESOURCE.UNSET, IORESOURCE.UNSET);
    assert.equal(dev.enableDevice(), -22);
    assert.equal(dev.isEnabled(), false);
  });

  test('a VF has its PF VF BAR slices, its cached IDs and IRQ 0', () => {
    const pf = must(buildCatalogDevice('nic-sriov')[0]).device;
    const sriov = must(pf.sriovStatus()).byteOffset;
    pf.configWrite(sriov + PCI_SRIOV_NUM_VF_OFFSET, 2, 2);
    pf.configWrite(sriov + PCI_SRIOV_CTRL_OFFSET, 2, PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE);
    const pfHost = host(pf);
    const [, vf] = createVirtualFunctions(pf, { pfAddress: ADDRESS });
    const dev = new SimHostPciDevice(must(vf).device, {
      address: must(vf).address,
      irq: 0,
      vendorId: must(vf).vendorId,
      deviceId: must(vf).deviceId,
      physfn: pfHost,
    });
    assert.equal(dev.vendorId, 0x8086);
    assert.equal(dev.deviceId, 0x10ed);
    assert.equal(dev.readConfig(0, 2).value, 0xffff, 'hardware still reads 0xffff');
    assert.equal(dev.irq(), 0);
    assert.equal(dev.physfn, pfHost);
    const vfBars = must(pf.sriovStatus()).vfBars;
    assert.deepEqual(dev.resources()[0], {
      start: must(vfBars[0]).address + 0x4000n,
      sizeBytes: 0x4000n,
      flags: IORESOURCE.MEM | IORESOURCE.MEM_64 | 0x4,
    });
  });
});

describe('SimHostPciDevice resources of real devices', () => {
  test('sizing through config cycles finds the BARs and ROM the hardware model has', () => {
    let checked = 0;
    for (const sub of ['pciutils', 'curated']) {
      for (const file of readdirSync(join(DUMPS_DIR, sub))) {
        if (file.startsWith('COPYING') || file === 'SOURCE-COMMIT') continue;
        for (const dump of parseDumpFile(readFileSync(join(DUMPS_DIR, sub, file)), file)) {
          const fn = functionFromDump(dump);
          const resources = host(fn).resources();
          const where = `${sub}/${file} ${dump.address.toString()}`;
          for (const bar of fn.bars()) {
            const res = must(resources[bar.index]);
            assert.equal(res.sizeBytes, bar.sizeBytes, `${where} BAR ${bar.index} size`);
            assert.equal(res.start, bar.address, `${where} BAR ${bar.index} start`);
            const type = bar.kind === 'io' ? IORESOURCE.IO : IORESOURCE.MEM;
            assert.equal(res.flags & type, type, `${where} BAR ${bar.index} type`);
            checked++;
          }
          const rom = fn.rom();
          assert.equal(
            must(resources[PCI_ROM_RESOURCE]).sizeBytes,
            rom?.sizeBytes ?? 0n,
            `${where} ROM`,
          );
        }
      }
    }
    assert.ok(checked > 100, `only ${checked} BARs checked`);
  });
});

describe('SimHostPciDevice over catalog devices', () => {
  test('every catalog endpoint has a non-empty resource table matching its BARs', () => {
    for (const model of ['nic-sriov', 'nvme', 'xhci', 'gpu'] as const) {
      for (const { fn, device } of buildCatalogDevice(model)) {
        const resources = host(device).resources();
        const used = resources.filter((r) => r.flags !== 0);
        assert.ok(used.length > 0, `${model} function ${fn}`);
        for (const bar of device.bars()) {
          assert.equal(must(resources[bar.index]).start, bar.address);
          assert.equal(must(resources[bar.index]).flags & IORESOURCE.UNSET, 0);
        }
        assert.equal(host(device).enableDevice(), 0, `${model} function ${fn} enables`);
      }
    }
  });
});

describe('SimHostPciDevice config accessors', () => {
  test('reads return the value and 0, bad accesses all-ones and -EINVAL', () => {
    const dev = host(specExample());
    assert.deepEqual(dev.readConfig(0x00, 2), { value: 0x8086, err: 0 });
    assert.deepEqual(dev.readConfig(0x01, 2), { value: 0xffff, err: -22 });
    assert.deepEqual(dev.readConfig(0x100, 4), { value: 0xffffffff, err: -22 });
    assert.deepEqual(dev.readConfig(0xff, 1), {
      value: dev.readConfig(0xfc, 4).value >>> 24,
      err: 0,
    });
    assert.equal(dev.writeConfig(0x3c, 1, 5), 0);
    assert.equal(dev.readConfig(0x3c, 1).value, 5);
    assert.equal(dev.writeConfig(0x3e, 4, 0), -22);
    assert.equal(dev.writeConfig(0x1000, 4, 0), -22);
  });

  test('IDs, header type and config size are cached at creation', () => {
    const dev = host(must(buildCatalogDevice('root-port')[0]).device);
    assert.deepEqual(
      [dev.vendorId, dev.deviceId, dev.headerType, dev.configSizeBytes],
      [0x8086, 0xa110, 1, 4096],
    );
  });
});

describe('SimHostPciDevice enable, master, MWI, INTx', () => {
  test('the first enable turns on decode for the resource types and clears INTX_DISABLE', () => {
    const fn = specExample({ command: PCI_COMMAND_INTX_DISABLE });
    const dev = host(fn);
    assert.equal(dev.enableDevice(), 0);
    assert.equal(fn.configRead(0x04, 2), PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    assert.equal(dev.isEnabled(), true);
    fn.configWrite(0x04, 2, 0);
    assert.equal(dev.enableDevice(), 0);
    assert.equal(fn.configRead(0x04, 2), 0, 'a second enable only counts');
    assert.equal(dev.enableCount, 2);
  });

  test('enable keeps INTX_DISABLE while MSI is on', () => {
    const fn = specExample({ command: PCI_COMMAND_INTX_DISABLE });
    const msi = must(findCapability(fn, PCI_CAP_ID.MSI));
    fn.configWrite(msi + 2, 2, 1);
    host(fn).enableDevice();
    assert.equal(fn.configRead(0x04, 2) & PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_INTX_DISABLE);
  });

  test('the last disable clears MASTER only; decode stays on', () => {
    const fn = specExample();
    const dev = host(fn);
    dev.enableDevice();
    dev.enableDevice();
    dev.setMaster();
    dev.disableDevice();
    assert.equal(fn.configRead(0x04, 2) & PCI_COMMAND_MASTER, PCI_COMMAND_MASTER);
    assert.equal(dev.isBusMaster(), true);
    dev.disableDevice();
    assert.equal(fn.configRead(0x04, 2), PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    assert.equal(dev.isBusMaster(), false);
    assert.equal(dev.isEnabled(), false);
    dev.disableDevice();
    assert.equal(dev.enableCount, 0, 'an unbalanced disable is ignored');
  });

  test('enable brings a function in D3hot back to D0', () => {
    const fn = specExample();
    const pm = must(findCapability(fn, PCI_CAP_ID.PM));
    fn.configWrite(pm + PCI_PM_CTRL_OFFSET, 2, PCI_D3HOT);
    host(fn).enableDevice();
    assert.equal(fn.powerState(), 0);
  });

  test('setMaster raises a low latency timer to 64 on conventional PCI (x86)', () => {
    const fn = specExample();
    const dev = host(fn);
    dev.setMaster();
    assert.equal(dev.isBusMaster(), true);
    assert.equal(fn.configRead(0x04, 2) & PCI_COMMAND_MASTER, PCI_COMMAND_MASTER);
    assert.equal(fn.configRead(0x0d, 1), 64);
    dev.clearMaster();
    assert.equal(dev.isBusMaster(), false);
    assert.equal(fn.configRead(0x04, 2) & PCI_COMMAND_MASTER, 0);
    const generic = specExample();
    host(generic, { arch: 'generic' }).setMaster();
    assert.equal(generic.configRead(0x0d, 1), 0);
    const highLatency = specExample();
    highLatency.configWrite(0x0d, 1, 32);
    host(highLatency).setMaster();
    assert.equal(highLatency.configRead(0x0d, 1), 32);
  });

  test('setMaster leaves the latency timer of a PCIe function alone', () => {
    const fn = must(buildCatalogDevice('nvme')[0]).device;
    host(fn).setMaster();
    assert.equal(fn.configRead(0x0d, 1), 0);
  });

  test('setMwi programs the cache line size and sets INVALIDATE where implemented', () => {
    const fn = specExample();
    const dev = host(fn);
    fn.configWrite(0x0c, 1, 0);
    assert.equal(dev.setMwi(), 0);
    assert.equal(fn.configRead(0x0c, 1), 16);
    assert.equal(fn.configRead(0x04, 2) & PCI_COMMAND_INVALIDATE, PCI_COMMAND_INVALIDATE);
    dev.clearMwi();
    assert.equal(fn.configRead(0x04, 2) & PCI_COMMAND_INVALIDATE, 0);
    const pcie = must(buildCatalogDevice('nvme')[0]).device;
    assert.equal(host(pcie).setMwi(), 0, 'Linux does not check the hardwired bit');
    assert.equal(pcie.configRead(0x04, 2) & PCI_COMMAND_INVALIDATE, 0);
  });

  test('intx() clears or sets INTX_DISABLE', () => {
    const fn = specExample();
    const dev = host(fn);
    dev.intx(false);
    assert.equal(fn.configRead(0x04, 2), PCI_COMMAND_INTX_DISABLE);
    dev.intx(true);
    assert.equal(fn.configRead(0x04, 2), 0);
  });

  test('irq() is the legacy IRQ unless the MSI layer set one', () => {
    const dev = host(specExample());
    assert.equal(dev.irq(), 10);
    dev.setMsiIrq(72);
    assert.equal(dev.irq(), 72);
    dev.setMsiIrq(undefined);
    assert.equal(dev.irq(), 10);
    assert.throws(() => host(specExample(), { irq: -1 }), RangeError);
  });
});

describe('SimHostPciDevice power states', () => {
  test('supported states are set, unsupported ones fail with -EIO', () => {
    const dev = host(specExample());
    assert.equal(dev.setPowerState(1), 0);
    assert.equal(dev.currentPowerState(), 1);
    assert.equal(dev.setPowerState(3), 0);
    assert.equal(dev.setPowerState(2), -22, 'no shallower non-D0 state from D3hot');
    assert.equal(dev.setPowerState(0), 0);
    const noD1 = host(must(buildCatalogDevice('nvme')[0]).device);
    assert.equal(noD1.setPowerState(1), -5);
    assert.equal(noD1.setPowerState(2), -5);
  });

  test('a function without PM can only be in D0', () => {
    const image = new ConfigImageBuilder(256).identity({
      vendorId: 1,
      deviceId: 1,
      revision: 0,
      classCode: 0xff0000,
      headerType: 0,
    });
    const dev = host(new SimulatedFunction(image.build()));
    assert.equal(dev.setPowerState(0), 0);
    assert.equal(dev.setPowerState(3), -5);
  });

  test('D3hot->D0 that reset the function restores the BARs from the resource table', () => {
    const fn = must(buildCatalogDevice('xhci')[0]).device;
    const dev = host(fn);
    const bar0 = fn.configRead(0x10, 4);
    dev.setPowerState(3);
    assert.equal(dev.setPowerState(0), 0);
    assert.equal(fn.resetCounts().pm, 1);
    assert.equal(fn.configRead(0x10, 4), bar0);
    assert.equal(fn.configRead(0x04, 2), 0, 'the rest of the state is gone');
  });

  test('setPowerState does not clear PME_Status', () => {
    const fn = must(buildCatalogDevice('xhci')[0]).device;
    const pm = must(findCapability(fn, PCI_CAP_ID.PM));
    const before = fn.configRead(pm + PCI_PM_CTRL_OFFSET, 2);
    host(fn).setPowerState(3);
    assert.equal(fn.configRead(pm + PCI_PM_CTRL_OFFSET, 2), (before & ~3) | 3);
  });
});

describe('SimHostPciDevice.resetFunction()', () => {
  test('chooses FLR, then AF FLR, then PM, else reports none', () => {
    const nic = must(buildCatalogDevice('nic-sriov')[0]).device;
    assert.deepEqual(host(nic).resetFunction(), { method: 'flr', err: 0 });
    assert.equal(nic.resetCounts().flr, 1);
    const xhci = must(buildCatalogDevice('xhci')[0]).device;
    assert.deepEqual(host(xhci).resetFunction(), { method: 'pm', err: 0 });
    assert.equal(xhci.resetCounts().pm, 1);
    assert.equal(xhci.powerState(), 0);
    const gpu = must(buildCatalogDevice('gpu')[0]).device;
    assert.deepEqual(host(gpu).resetFunction(), { method: 'none', err: -25 });
  });

  test('AF FLR needs both the TP and FLR capability bits', () => {
    const build = (transactionsPending: boolean): SimulatedFunction => {
      const image = new ConfigImageBuilder(256).identity({
        vendorId: 0x8086,
        deviceId: 0x2934,
        revision: 0,
        classCode: 0x0c0300,
        headerType: 0,
      });
      image.addCapability(PCI_CAP_ID.AF, afBody({ flr: true, transactionsPending }));
      return new SimulatedFunction(image.build());
    };
    const withTp = build(true);
    assert.deepEqual(host(withTp).resetFunction(), { method: 'af-flr', err: 0 });
    assert.equal(withTp.resetCounts().afFlr, 1);
    assert.deepEqual(host(build(false)).resetFunction(), { method: 'none', err: -25 });
  });

  test('a PM reset refuses a function that is not in D0', () => {
    const fn = must(buildCatalogDevice('xhci')[0]).device;
    const dev = host(fn);
    dev.setPowerState(3);
    assert.deepEqual(dev.resetFunction(), { method: 'pm', err: -22 });
    assert.equal(fn.resetCounts().pm, 0);
  });
});

describe('SimHostPciDevice save and restore', () => {
  function configured(): { fn: SimulatedFunction; dev: SimHostPciDevice; sent: MsiMessage[] } {
    const sent: MsiMessage[] = [];
    const fn = must(
      buildCatalogDevice('nic-sriov', { hooks: { onMessage: (m) => sent.push(m) } })[0],
    ).device;
    const dev = host(fn);
    dev.enableDevice();
    dev.setMaster();
    fn.configWrite(0x0c, 1, 0x10);
    const exp = must(findCapability(fn, PCI_CAP_ID.EXP));
    fn.configWrite(exp + PCI_EXP_DEVCTL_OFFSET, 2, 0x203f);
    const aer = must(findExtendedCapability(fn, PCI_EXT_CAP_ID.ERR));
    fn.configWrite(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4, 0x00400000);
    const msix = must(findCapability(fn, PCI_CAP_ID.MSIX));
    fn.configWrite(msix + 2, 2, PCI_MSIX_FLAGS_ENABLE);
    fn.mmioWrite(3, 0x10, 4, 0xfee02000);
    fn.mmioWrite(3, 0x18, 4, 0x0000004a);
    fn.mmioWrite(3, 0x1c, 4, 0);
    return { fn, dev, sent };
  }

  test('restoreState() after an FLR brings back the header, PCIe, AER and MSI-X state', () => {
    const { fn, dev, sent } = configured();
    const saved = dev.saveState();
    const snapshot = Array.from({ length: 1024 }, (_, i) => fn.configRead(4 * i, 4));
    assert.deepEqual(JSON.parse(JSON.stringify(saved)), saved, 'a plain serializable object');
    assert.deepEqual(dev.resetFunction(), { method: 'flr', err: 0 });
    assert.notEqual(fn.configRead(0x10, 4), snapshot[4]);
    dev.restoreState(saved);
    assert.deepEqual(
      Array.from({ length: 1024 }, (_, i) => fn.configRead(4 * i, 4)),
      snapshot,
    );
    assert.equal(fn.mmioRead(3, 0x10, 4), 0xfee02000);
    assert.equal(fn.mmioRead(3, 0x1c, 4), 0, 'entry 1 unmasked again');
    assert.equal(fn.signalMsix(1), true);
    assert.deepEqual(sent, [{ address: 0xfee02000n, data: 0x4a, source: 'msix', vector: 1 }]);
  });

  test('MSI-X is restored with the function masked while the table is written', () => {
    const { fn, dev } = configured();
    const saved = dev.saveState();
    const msix = must(findCapability(fn, PCI_CAP_ID.MSIX));
    assert.equal(saved.msixTable?.bar, 3);
    dev.resetFunction();
    // Watch the accesses restoreState() makes (methods bound to the real object, whose
    // #private fields a proxy could not reach).
    const log: string[] = [];
    const spy = new Proxy(fn, {
      get(target, prop) {
        if (prop === 'configWrite') {
          return (offset: number, size: number, value: number) => {
            if (offset === msix + 2) log.push(`flags ${(value & 0xc000).toString(16)}`);
            target.configWrite(offset, size, value);
          };
        }
        if (prop === 'mmioWrite') {
          return (bar: number, offset: number, size: number, value: number) => {
            if (log.at(-1) !== 'table') log.push('table');
            target.mmioWrite(bar, offset, size, value);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function'
          ? (value as (...a: unknown[]) => unknown).bind(target)
          : value;
      },
    });
    new SimHostPciDevice(spy, { address: ADDRESS, irq: 10 }).restoreState(saved);
    assert.deepEqual(log.slice(-3), ['flags c000', 'table', 'flags 8000']);
    assert.equal(
      fn.configRead(msix + 2, 2) & (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL),
      PCI_MSIX_FLAGS_ENABLE,
    );
  });

  test('restoreState() rejects a state without 16 header dwords', () => {
    const dev = host(specExample());
    const bad: SavedConfigState = { header: [1, 2, 3], early: [], late: [] };
    assert.throws(() => {
      dev.restoreState(bad);
    }, RangeError);
  });
});
