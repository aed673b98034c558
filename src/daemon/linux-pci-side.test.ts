// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { PciAddress } from '../pci/address.js';
import { FakeSysfs, LinuxPciHost, fakeFunctionsFromDumpFile } from '../platform/linux/index.js';
import { SimInterrupts } from '../platform/sim/interrupts/index.js';
import { ManualJiffiesClock, SimHypervisor } from '../platform/sim/xen/index.js';
import { SILENT_LOGGER } from '../platform/types.js';
import { DUMPS_DIR } from '../../test/support/paths.js';
import { linuxPciSide } from './linux-pci-side.js';
import { parseMachine } from './machine-file.js';
import { SimHost } from './sim-host.js';

const NIC = PciAddress.parse('0000:03:00.0');
const DUMP = join(DUMPS_DIR, 'curated', 'nic-intel-82576-8086_10c9-sriov-msix.txt');

let fake: FakeSysfs | undefined;
afterEach(() => {
  fake?.dispose();
  fake = undefined;
});

function bench() {
  const [spec] = fakeFunctionsFromDumpFile(DUMP);
  assert.ok(spec !== undefined);
  fake = FakeSysfs.create({
    functions: [{ ...spec, address: NIC, driver: 'pciback' }],
    drivers: ['pciback'],
  });
  const xen = new SimHypervisor({ clock: new ManualJiffiesClock(), maxDomains: 8 });
  const { domid } = xen.createDomain({ memoryPages: 8, name: 'guest' });
  const interrupts = new SimInterrupts(xen.eventArea);
  const side = linuxPciSide(new LinuxPciHost({ io: fake }), { stubDriver: 'pciback' })({
    xen,
    interrupts,
    logger: SILENT_LOGGER,
  });
  const dev = side.stubDevice(NIC);
  assert.ok(dev !== undefined);
  // The dump comes with MSI-X on and bus mastering: start from a quiet function.
  dev.host.writeConfig(0x72, 2, 0x0009);
  dev.host.writeConfig(4, 2, 0x0006);
  interrupts.owners.register(NIC, domid);
  return { fake, interrupts, domid, dev };
}

describe('linuxPciSide() MSI under the simulated hypervisor', () => {
  test('enableMsi() programs the capability in the fake config file and maps a pirq', () => {
    const { fake, interrupts, domid, dev } = bench();
    assert.equal(dev.msi.enableMsi(1), 0);
    const config = new DataView(fake.configBytes(NIC).buffer);
    assert.equal(config.getUint16(0x52, true) & 0x1, 0x1, 'MSI Enable in config');
    assert.equal(config.getUint32(0x54, true), 0xfee00000, 'message address');
    const irq = dev.host.irq();
    assert.deepEqual(dev.msi.msiIrqs(), [irq]);
    assert.deepEqual(interrupts.pirqs.lookup(irq), { domid, pirq: dev.msi.pirqOfIrq(irq) });
    dev.msi.disableMsi();
    assert.equal(new DataView(fake.configBytes(NIC).buffer).getUint16(0x52, true) & 0x1, 0);
    assert.deepEqual(interrupts.pirqs.mappedPirqs(domid), []);
  });

  test('enableMsix() writes the table into the fake resource3 file', () => {
    const { fake, interrupts, domid, dev } = bench();
    const result = dev.msi.enableMsix([0, 1]);
    assert.ok(result.ok);
    const config = new DataView(fake.configBytes(NIC).buffer);
    assert.equal(config.getUint16(0x72, true) & 0xc000, 0x8000, 'enabled, function unmasked');
    const table = new DataView(fake.barBytes(NIC, 3, 0, 48).slice().buffer);
    assert.equal(table.getUint32(0, true), 0xfee00000);
    assert.equal(table.getUint32(12, true), 0, 'entry 0 unmasked');
    assert.equal(table.getUint32(16 + 12, true), 0, 'entry 1 unmasked');
    assert.equal(table.getUint32(32 + 12, true), 1, 'entry 2 stays masked');
    assert.equal(interrupts.pirqs.mappedPirqs(domid).length, 2);
    dev.msi.disableMsix();
    assert.equal(new DataView(fake.barBytes(NIC, 3, 0, 16).slice().buffer).getUint32(12, true), 1);
  });
});

describe('linuxPciSide() follows the kernel', () => {
  test("a device unbound from pciback behind the daemon's back is forgotten, one bound to it is seized", async () => {
    const [spec] = fakeFunctionsFromDumpFile(DUMP);
    assert.ok(spec !== undefined);
    fake = FakeSysfs.create({
      functions: [{ ...spec, address: NIC, driver: 'pciback' }],
      drivers: ['pciback'],
    });
    const io = fake;
    const host = await SimHost.startOn(
      parseMachine({ domains: [] }, 'test', { hostBus: true }),
      linuxPciSide(new LinuxPciHost({ io }), { stubDriver: 'pciback', followIntervalMs: 20 }),
    );
    try {
      assert.notEqual(host.stub.get(NIC), undefined, 'seized at start');
      const command = (): number => new DataView(io.configBytes(NIC).buffer).getUint16(4, true);
      const before = command();
      // A shell: echo 0000:03:00.0 > /sys/bus/pci/drivers/pciback/unbind
      io.writeText('bus/pci/drivers/pciback/unbind', NIC.toString());
      await until(() => host.stub.get(NIC) === undefined);
      assert.equal(command(), before, 'the hardware was left alone');
      // echo 0000:03:00.0 > /sys/bus/pci/drivers/pciback/bind
      io.writeText('bus/pci/drivers/pciback/bind', NIC.toString());
      await until(() => host.stub.get(NIC) !== undefined);
    } finally {
      await host.close();
    }
  });
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), 'the daemon followed the kernel within 2 s');
}
