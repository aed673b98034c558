// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_OFFSET,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSI_ADDRESS_HI_OFFSET,
  PCI_MSI_ADDRESS_LO_OFFSET,
  PCI_MSI_DATA_64_OFFSET,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_OFFSET,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_64_OFFSET,
} from '../../../abi/pci-regs.js';
import {
  ConfigImageBuilder,
  SimulatedFunction,
  buildCatalogDevice,
  type CatalogModel,
} from '../../../devices/index.js';
import { PciAddress } from '../../../pci/address.js';
import { findCapability } from '../../../pci/capabilities.js';
import { DOM0, domId, type DomId } from '../../types.js';
import { SimHostPciDevice } from '../pci-core.js';
import { ManualJiffiesClock, SimHypervisor } from '../xen/index.js';
import { MSI_ADDRESS } from './irq-layer.js';
import { SimInterrupts } from './sim-interrupts.js';

function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

interface Bench {
  readonly xen: SimHypervisor;
  readonly interrupts: SimInterrupts;
  readonly guest: DomId;
}

function bench(): Bench {
  const xen = new SimHypervisor({ clock: new ManualJiffiesClock(), maxDomains: 8 });
  const { domid } = xen.createDomain({ memoryPages: 8, name: 'guest' });
  return { xen, interrupts: new SimInterrupts(xen.eventArea), guest: domid };
}

function device(b: Bench, model: CatalogModel, bdf = '0000:03:00.0', irq = 16) {
  const address = PciAddress.parse(bdf);
  const fn = must(buildCatalogDevice(model, { irq, hooks: b.interrupts.catalogHooks(address) })[0]);
  const host = new SimHostPciDevice(fn.device, { address, irq });
  const msi = b.interrupts.attach(host);
  assert.equal(host.enableDevice(), 0);
  host.setMaster();
  return { address, host, msi, hw: fn.device };
}

describe('SimMsiControl.enableMsi()', () => {
  test('one vector: programs address, data and enable, turns INTx off, maps a pirq into the owner', () => {
    const b = bench();
    const { address, host, msi, hw } = device(b, 'gpu');
    assert.equal(b.interrupts.owners.register(address, b.guest), 0);
    assert.equal(msi.msiEnabled(), false);
    assert.equal(msi.enableMsi(1), 0);

    const cap = must(findCapability(hw, PCI_CAP_ID.MSI));
    const flags = hw.configRead(cap + PCI_MSI_FLAGS_OFFSET, 2);
    assert.equal(flags & PCI_MSI_FLAGS_ENABLE, PCI_MSI_FLAGS_ENABLE);
    assert.equal(flags & PCI_MSI_FLAGS_QSIZE, 0);
    assert.equal(hw.configRead(cap + PCI_MSI_ADDRESS_LO_OFFSET, 4), Number(MSI_ADDRESS));
    assert.equal(hw.configRead(cap + PCI_MSI_ADDRESS_HI_OFFSET, 4), 0);
    const irq = host.irq();
    assert.equal(irq, 64);
    assert.notEqual(irq, host.legacyIrq);
    const message = must(b.interrupts.irqs.messageOfIrq(irq));
    assert.equal(hw.configRead(cap + PCI_MSI_DATA_64_OFFSET, 2), message.data);
    assert.ok((hw.configRead(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_INTX_DISABLE) !== 0);
    assert.equal(msi.msiEnabled(), true);
    assert.deepEqual(msi.msiIrqs(), [64]);
    assert.equal(msi.pirqOfIrq(irq), 0x100);
    assert.deepEqual(b.interrupts.pirqs.lookup(irq), { domid: b.guest, pirq: 0x100 });
    assert.equal(msi.mappedDomain(), b.guest);
  });

  test('several vectors: Multiple Message Enable, aligned data, unmasked vectors, one pirq each', () => {
    const b = bench();
    const { address, host, msi, hw } = device(b, 'nvme');
    b.interrupts.owners.register(address, b.guest);
    assert.equal(msi.enableMsi(4), 0);
    const cap = must(findCapability(hw, PCI_CAP_ID.MSI));
    assert.equal((hw.configRead(cap + PCI_MSI_FLAGS_OFFSET, 2) & PCI_MSI_FLAGS_QSIZE) >> 4, 2);
    assert.equal(hw.configRead(cap + PCI_MSI_MASK_64_OFFSET, 4) >>> 0, 0xfffffff0);
    const irqs = msi.msiIrqs();
    assert.equal(irqs.length, 4);
    assert.equal(host.irq(), irqs[0]);
    const data = hw.configRead(cap + PCI_MSI_DATA_64_OFFSET, 2);
    assert.equal(data % 4, 0);
    irqs.forEach((irq, i) => {
      assert.equal(b.interrupts.irqs.irqOfMessage(MSI_ADDRESS, data + i), irq);
    });
    assert.deepEqual(
      irqs.map((irq) => msi.pirqOfIrq(irq)),
      [0x100, 0x101, 0x102, 0x103],
    );
    assert.deepEqual(b.interrupts.pirqs.mappedPirqs(b.guest), [0x100, 0x101, 0x102, 0x103]);
    assert.equal(msi.enableMsi(32), -22, 'MSI is already on');
  });

  test('disableMsi() gives back the legacy IRQ, INTx and the pirqs', () => {
    const b = bench();
    const { address, host, msi, hw } = device(b, 'nvme');
    b.interrupts.owners.register(address, b.guest);
    assert.equal(msi.enableMsi(2), 0);
    const irqs = [...msi.msiIrqs()];
    msi.disableMsi();
    assert.equal(msi.msiEnabled(), false);
    assert.deepEqual(msi.msiIrqs(), []);
    assert.equal(host.irq(), 16);
    assert.equal(msi.pirqOfIrq(host.irq()), 16, 'a GSI answers its own number');
    assert.equal(msi.pirqOfIrq(irqs[0] ?? 0), 0);
    assert.equal(hw.configRead(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_INTX_DISABLE, 0);
    assert.deepEqual(b.interrupts.pirqs.mappedPirqs(b.guest), []);
    // The IRQs and pirqs are reused by the next enable.
    assert.equal(msi.enableMsi(1), 0);
    assert.deepEqual(msi.msiIrqs(), [irqs[0]]);
    assert.equal(msi.pirqOfIrq(host.irq()), 0x100);
  });

  test("rejects what Linux rejects, with Linux's errnos", () => {
    const b = bench();
    const xhci = device(b, 'xhci', '0000:04:00.0'); // 8 vectors, MSI-X too
    assert.equal(xhci.msi.enableMsi(0), -22);
    assert.equal(xhci.msi.enableMsi(3), -22, 'not a power of two');
    assert.equal(xhci.msi.enableMsi(64), -22, 'more than 32');
    assert.equal(xhci.msi.enableMsi(16), -28, 'above Multiple Message Capable');
    assert.equal(xhci.msi.enableMsi(8), 0);
    xhci.msi.disableMsi();
    assert.equal(xhci.msi.enableMsix([0]).ok, true);
    assert.equal(xhci.msi.enableMsi(1), -22, 'MSI-X is on');

    const image = new ConfigImageBuilder(256).identity({
      vendorId: 0x1234,
      deviceId: 0x5678,
      revision: 0,
      classCode: 0xff0000,
      headerType: 0,
    });
    const plain = new SimHostPciDevice(new SimulatedFunction(image.build()), {
      address: PciAddress.parse('0000:05:00.0'),
      irq: 0,
    });
    const plainMsi = b.interrupts.attach(plain);
    assert.equal(plainMsi.enableMsi(1), -22, 'no MSI capability');
    assert.deepEqual(plainMsi.enableMsix([0]), { ok: false, errno: -22 });
    assert.equal(plainMsi.pirqOfIrq(0), 0);
  });

  test('a device without a registered owner maps into dom0, as Xen does with DOMID_SELF', () => {
    const b = bench();
    const { host, msi } = device(b, 'gpu');
    assert.equal(msi.enableMsi(1), 0);
    assert.deepEqual(b.interrupts.pirqs.lookup(host.irq()), { domid: DOM0, pirq: 0x100 });
  });

  test('an owner domain that is gone makes the enable fail with ESRCH and leaves nothing behind', () => {
    const b = bench();
    const { address, host, msi } = device(b, 'nvme');
    b.interrupts.owners.register(address, domId(7));
    assert.equal(msi.enableMsi(4), -3);
    assert.equal(msi.msiEnabled(), false);
    assert.equal(host.irq(), 16);
    assert.equal(b.interrupts.irqs.isMsiIrq(64), false);
  });

  test('MSI lost by a reset is released at the next enable', () => {
    const b = bench();
    const { address, host, msi, hw } = device(b, 'nvme');
    b.interrupts.owners.register(address, b.guest);
    assert.equal(msi.enableMsi(2), 0);
    hw.functionLevelReset();
    assert.equal(msi.msiEnabled(), false);
    host.enableDevice();
    assert.equal(msi.enableMsi(1), 0);
    assert.deepEqual(b.interrupts.pirqs.mappedPirqs(b.guest), [0x100]);
  });
});

describe('SimMsiControl.enableMsix()', () => {
  test('programs the requested table entries through MMIO and enables MSI-X unmasked', () => {
    const b = bench();
    const { address, host, msi, hw } = device(b, 'nvme');
    b.interrupts.owners.register(address, b.guest);
    const r = msi.enableMsix([3, 0, 7]);
    assert.ok(r.ok);
    assert.equal(r.irqs.length, 3);
    assert.equal(host.irq(), 16, 'MSI-X leaves dev->irq alone');
    const cap = must(findCapability(hw, PCI_CAP_ID.MSIX));
    const flags = hw.configRead(cap + PCI_MSIX_FLAGS_OFFSET, 2);
    assert.equal(flags & (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL), PCI_MSIX_FLAGS_ENABLE);
    assert.ok((hw.configRead(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_INTX_DISABLE) !== 0);
    const { table } = must(hw.msixLayout());
    const entry = (e: number, dword: number): number =>
      hw.mmioRead(table.bar, table.byteOffset + 16 * e + 4 * dword, 4);
    [3, 0, 7].forEach((e, i) => {
      const irq = must(r.irqs[i]);
      const message = must(b.interrupts.irqs.messageOfIrq(irq));
      assert.equal(entry(e, 0), Number(MSI_ADDRESS));
      assert.equal(entry(e, 1), 0);
      assert.equal(entry(e, 2), message.data);
      assert.equal(entry(e, 3) & PCI_MSIX_ENTRY_CTRL_MASKBIT, 0);
      assert.equal(msi.pirqOfIrq(irq), 0x100 + i);
    });
    assert.equal(entry(1, 3) & PCI_MSIX_ENTRY_CTRL_MASKBIT, 1, 'unused entries stay masked');
    assert.deepEqual(msi.msixIrqs(), r.irqs);
    assert.deepEqual(msi.enableMsix([1]), { ok: false, errno: -22 }, 'already on');
    assert.equal(msi.enableMsi(1), -22);

    msi.disableMsix();
    assert.equal(msi.msixEnabled(), false);
    assert.equal(entry(3, 3) & PCI_MSIX_ENTRY_CTRL_MASKBIT, 1);
    assert.equal(hw.configRead(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_INTX_DISABLE, 0);
    assert.deepEqual(b.interrupts.pirqs.mappedPirqs(b.guest), []);
  });

  test('validates the entries: in the table, no duplicates, at least one; MSI on refuses', () => {
    const b = bench();
    const { msi } = device(b, 'xhci'); // 8 entries
    assert.deepEqual(msi.enableMsix([]), { ok: false, errno: -22 });
    assert.deepEqual(msi.enableMsix([8]), { ok: false, errno: -22 });
    assert.deepEqual(msi.enableMsix([-1]), { ok: false, errno: -22 });
    assert.deepEqual(msi.enableMsix([1.5]), { ok: false, errno: -22 });
    assert.deepEqual(msi.enableMsix([2, 2]), { ok: false, errno: -22 });
    assert.equal(msi.msixEnabled(), false);
    assert.equal(msi.enableMsi(1), 0);
    assert.deepEqual(msi.enableMsix([0]), { ok: false, errno: -22 });
    msi.disableMsi();
    assert.equal(msi.enableMsix([0, 1, 2, 3, 4, 5, 6, 7]).ok, true);
  });

  test('with memory decode off the table writes are dropped, as by the hardware', () => {
    const b = bench();
    const { host, msi, hw } = device(b, 'nvme');
    host.writeConfig(PCI_COMMAND_OFFSET, 2, host.readConfig(PCI_COMMAND_OFFSET, 2).value & ~0x2);
    const r = msi.enableMsix([0]);
    assert.ok(r.ok);
    host.writeConfig(PCI_COMMAND_OFFSET, 2, host.readConfig(PCI_COMMAND_OFFSET, 2).value | 0x2);
    const { table } = must(hw.msixLayout());
    assert.equal(hw.mmioRead(table.bar, table.byteOffset + 12, 4) & 1, 1, 'still masked');
    assert.equal(hw.mmioRead(table.bar, table.byteOffset, 4), 0);
  });
});
