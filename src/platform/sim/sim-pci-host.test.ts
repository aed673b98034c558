// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_CAP_ID,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_D3HOT,
} from '../../abi/pci-regs.js';
import {
  ConfigImageBuilder,
  SimulatedFunction,
  afBody,
  buildCatalogDevice,
  type CatalogModel,
} from '../../devices/index.js';
import { isPcibackError } from '../../errors.js';
import { PciAddress } from '../../pci/address.js';
import { ManualJiffiesClock, SimHypervisor } from './xen/index.js';
import { SimInterrupts } from './interrupts/index.js';
import { SimHostPciDevice, firmwareIrq } from './pci-core.js';
import {
  SimPciHost,
  catalogDriverName,
  type SimPciDriver,
  type SimPciHostEntry,
} from './sim-pci-host.js';

const A = (text: string): PciAddress => PciAddress.parse(text);

/** The reason of a failed outcome (fails the test when it succeeded). */
function reasonOf(outcome: { readonly ok: boolean; readonly reason?: string }): string {
  assert.equal(outcome.ok, false, 'expected a failure');
  return outcome.reason ?? assert.fail('a failure has a reason');
}

function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

/** All functions of a catalog device at `bdf`, with the usual drivers. */
function catalog(
  model: CatalogModel,
  bdf: string,
  index: number,
  extra: { secondaryBus?: number; iommuGroup?: number } = {},
): SimPciHostEntry[] {
  const slot = A(bdf);
  return buildCatalogDevice(model, {
    mmioBase: 0xc0000000n + BigInt(index) * 0x4000000n,
    mmio64Base: 0x3800000000n + BigInt(index) * 0x40000000n,
    ioBase: 0x2000n + BigInt(index) * 0x400n,
    primaryBus: slot.bus,
    ...(extra.secondaryBus === undefined ? {} : { secondaryBus: extra.secondaryBus }),
  }).map(({ fn, device }) => {
    const address = slot.withFunction(fn);
    return {
      address,
      host: new SimHostPciDevice(device, { address, irq: firmwareIrq(device) }),
      originalDriver: catalogDriverName(model, fn),
      ...(extra.iommuGroup === undefined ? {} : { iommuGroup: extra.iommuGroup }),
    };
  });
}

/** A function with only an Advanced Features FLR (no PCIe FLR, no PM). */
function afOnly(bdf: string): SimPciHostEntry {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x8086,
    deviceId: 0x1234,
    revision: 1,
    classCode: 0x0c0300,
    headerType: 0,
  });
  image.addCapability(PCI_CAP_ID.AF, afBody({ flr: true, transactionsPending: true }));
  const address = A(bdf);
  const hw = new SimulatedFunction(image.build());
  return { address, host: new SimHostPciDevice(hw, { address, irq: 0 }), originalDriver: null };
}

/**
 * 00:1c.0 root port (bus 1 below), 01:00.0/.1 GPU + audio, 00:02.0 NVMe, 00:14.0 xHCI,
 * 00:05.0 a function with only AF FLR.
 */
function machine(): SimPciHost {
  return new SimPciHost(
    [
      ...catalog('nvme', '0000:00:02.0', 0, { iommuGroup: 7 }),
      ...catalog('root-port', '0000:00:1c.0', 1, { secondaryBus: 1 }),
      ...catalog('gpu', '0000:01:00.0', 2),
      ...catalog('xhci', '0000:00:14.0', 3),
      afOnly('0000:00:05.0'),
    ],
    { dom0Drivers: ['vfio-pci'] },
  );
}

/** A registrable driver that records its calls and takes what `accept` says. */
function recordingDriver(accept: (a: PciAddress) => boolean) {
  const calls: string[] = [];
  const driver: SimPciDriver = {
    probe(address) {
      calls.push(`probe ${address.toString()}`);
      return accept(address);
    },
    remove(address) {
      calls.push(`remove ${address.toString()}`);
    },
  };
  return { calls, driver };
}

describe('SimPciHost: functions', () => {
  test('list() is in bus order with IDs, class, header, IOMMU group, IRQ and bridges', () => {
    const host = machine();
    assert.deepEqual(
      host.list().map((f) => f.address.toString()),
      [
        '0000:00:02.0',
        '0000:00:05.0',
        '0000:00:14.0',
        '0000:00:1c.0',
        '0000:01:00.0',
        '0000:01:00.1',
      ],
    );
    const nvme = must(host.info(A('0000:00:02.0')));
    assert.equal(nvme.vendorId, 0x144d);
    assert.equal(nvme.deviceId, 0xa808);
    assert.equal(nvme.classCode, 0x010802);
    assert.equal(nvme.headerType, 0);
    assert.equal(nvme.iommuGroup, 7);
    assert.equal(nvme.upstreamBridge, null);
    assert.equal(
      nvme.irq,
      firmwareIrq(host.hostDevice(A('0000:00:02.0'))?.hardware ?? assert.fail()),
    );
    const audio = must(host.info(A('0000:01:00.1')));
    assert.equal(audio.classCode, 0x040300);
    assert.equal(must(audio.upstreamBridge).toString(), '0000:00:1c.0');
    assert.equal(audio.iommuGroup, null);
    const port = must(host.info(A('0000:00:1c.0')));
    assert.equal(port.headerType, 1);
    assert.deepEqual([port.subsystemVendorId, port.subsystemDeviceId], [0x8086, 0x7270]);
    assert.equal(host.info(A('0000:07:00.0')), undefined);
  });

  test('resetMethods come from the hardware: FLR, AF FLR, PM, and bus behind a bridge', () => {
    const host = machine();
    const methods = (bdf: string) => must(host.info(A(bdf))).resetMethods;
    assert.deepEqual(methods('0000:00:02.0'), ['flr'], 'NVMe: FLR; PM has No_Soft_Reset');
    assert.deepEqual(methods('0000:00:05.0'), ['af_flr']);
    assert.deepEqual(methods('0000:00:14.0'), ['pm'], 'xHCI: PM only');
    assert.deepEqual(methods('0000:01:00.0'), ['bus'], 'GPU: nothing of its own');
    assert.deepEqual(methods('0000:01:00.1'), ['pm', 'bus']);
    assert.deepEqual(methods('0000:00:1c.0'), ['pm'], 'the root port is on the root bus');
  });

  test('VFs name their PF and the PF lists them', () => {
    const entries = catalog('nic-sriov', '0000:03:00.0', 0);
    const pf = must(entries[0]).host;
    const vfHw = new SimulatedFunction(pf.hardware.vfTemplate() ?? assert.fail(), {
      virtualFunctionOf: { pf: pf.hardware, vfIndex: 0 },
    });
    const vfAddress = A('0000:03:10.0');
    const host = new SimPciHost(entries);
    host.addFunction({
      address: vfAddress,
      host: new SimHostPciDevice(vfHw, {
        address: vfAddress,
        irq: 0,
        vendorId: 0x8086,
        deviceId: 0x10ed,
        physfn: pf,
      }),
      originalDriver: 'ixgbevf',
    });
    assert.equal(must(host.info(vfAddress)).physfn?.toString(), '0000:03:00.0');
    assert.deepEqual(
      must(host.info(A('0000:03:00.0'))).virtfns.map((a) => a.toString()),
      ['0000:03:10.0'],
    );
    assert.equal(must(host.info(vfAddress)).driver, 'ixgbevf', 'hot add probes the drivers');
    host.removeFunction(vfAddress);
    assert.equal(host.info(vfAddress), undefined);
  });

  test('the catalog models have their usual Linux drivers', () => {
    assert.equal(catalogDriverName('nic-sriov', 0), 'ixgbe');
    assert.equal(catalogDriverName('nvme', 0), 'nvme');
    assert.equal(catalogDriverName('xhci', 0), 'xhci_hcd');
    assert.equal(catalogDriverName('gpu', 0), 'nouveau');
    assert.equal(catalogDriverName('gpu', 1), 'snd_hda_intel');
    assert.equal(catalogDriverName('root-port', 0), 'pcieport');
    assert.equal(catalogDriverName('nvme', 1), null);
  });

  test('open() and resources() give the function; unknown addresses are NO_SUCH_DEVICE', () => {
    const host = machine();
    const nvme = A('0000:00:02.0');
    assert.equal(host.open(nvme), host.hostDevice(nvme));
    assert.equal(host.resources(nvme), host.hostDevice(nvme)?.resources());
    assert.throws(
      () => host.open(A('0000:09:00.0')),
      (e) => isPcibackError(e, 'NO_SUCH_DEVICE'),
    );
  });
});

describe('SimPciHost: driver core', () => {
  test('functions start unbound; bindDom0Drivers() gives each its usual driver', () => {
    const host = machine();
    assert.ok(host.list().every((f) => f.driver === null));
    host.bindDom0Drivers();
    const drivers = Object.fromEntries(host.list().map((f) => [f.address.toString(), f.driver]));
    assert.deepEqual(drivers, {
      '0000:00:02.0': 'nvme',
      '0000:00:05.0': null,
      '0000:00:14.0': 'xhci_hcd',
      '0000:00:1c.0': 'pcieport',
      '0000:01:00.0': 'nouveau',
      '0000:01:00.1': 'snd_hda_intel',
    });
    assert.deepEqual(host.drivers(), [
      'nouveau',
      'nvme',
      'pcieport',
      'snd_hda_intel',
      'vfio-pci',
      'xhci_hcd',
    ]);
  });

  test('a registered driver is offered every unbound function and takes what its probe accepts', () => {
    const host = machine();
    const nvme = A('0000:00:02.0');
    const { calls, driver } = recordingDriver((a) => a.equals(nvme));
    host.registerDriver('pciback', driver);
    assert.equal(calls.length, 6, 'every function was offered');
    assert.equal(host.info(nvme)?.driver, 'pciback');
    host.bindDom0Drivers();
    assert.equal(host.info(nvme)?.driver, 'pciback', 'dom0 drivers only take unbound functions');
    assert.equal(host.info(A('0000:00:14.0'))?.driver, 'xhci_hcd');
    assert.ok(host.drivers().includes('pciback'));
    assert.throws(() => {
      host.registerDriver('nvme', driver);
    }, RangeError);
  });

  test('bind(): EBUSY when bound (even to the same driver), NO_SUCH_DEVICE, NO_SUCH_DRIVER, refusals', () => {
    const host = machine();
    host.bindDom0Drivers();
    const nvme = A('0000:00:02.0');
    assert.throws(
      () => {
        host.bind(nvme, 'vfio-pci');
      },
      (e) => isPcibackError(e, 'DEVICE_BUSY') && /bound to driver "nvme"/.test(e.message),
    );
    assert.throws(
      () => {
        host.bind(nvme, 'nvme');
      },
      (e) => isPcibackError(e, 'DEVICE_BUSY'),
    );
    assert.throws(
      () => {
        host.bind(A('0000:09:00.0'), 'nvme');
      },
      (e) => isPcibackError(e, 'NO_SUCH_DEVICE'),
    );
    host.unbind(nvme);
    assert.throws(
      () => {
        host.bind(nvme, 'e1000e');
      },
      (e) => isPcibackError(e, 'NO_SUCH_DRIVER'),
    );
    assert.throws(
      () => {
        host.bind(nvme, 'xhci_hcd');
      },
      (e) => isPcibackError(e, 'HOST_IO') && /does not accept it/.test(e.message),
      'a dom0 driver only takes its own devices',
    );
    const refuse = recordingDriver(() => false);
    host.registerDriver('pciback', refuse.driver);
    assert.throws(
      () => {
        host.bind(nvme, 'pciback');
      },
      (e) => isPcibackError(e, 'HOST_IO'),
    );
    host.bind(nvme, 'nvme');
    assert.equal(host.info(nvme)?.driver, 'nvme');
  });

  test('driver_override is honoured by probe() and bind(), and shown by info()', () => {
    const host = machine();
    host.bindDom0Drivers();
    const nvme = A('0000:00:02.0');
    const stub = recordingDriver(() => true);
    host.registerDriver('pciback', stub.driver);
    assert.equal(host.info(nvme)?.driver, 'nvme');
    host.setDriverOverride(nvme, 'vfio-pci');
    assert.equal(host.info(nvme)?.driverOverride, 'vfio-pci');
    host.unbind(nvme);
    host.probe(nvme);
    assert.equal(host.info(nvme)?.driver, 'vfio-pci', 'only the override driver is tried');
    host.unbind(nvme);
    assert.throws(
      () => {
        host.bind(nvme, 'nvme');
      },
      (e) => isPcibackError(e, 'HOST_IO') && /driver_override is "vfio-pci"/.test(e.message),
    );
    host.setDriverOverride(nvme, 'pci-stub');
    host.probe(nvme);
    assert.equal(host.info(nvme)?.driver, null, 'an absent override driver leaves it unbound');
    host.setDriverOverride(nvme, 'pciback');
    host.probe(nvme);
    assert.equal(host.info(nvme)?.driver, 'pciback');
    host.probe(nvme); // bound: a no-op
    assert.equal(stub.calls.filter((c) => c === 'probe 0000:00:02.0').length, 1);
    host.unbind(nvme);
    host.setDriverOverride(nvme, null);
    host.probe(nvme);
    assert.equal(host.info(nvme)?.driver, 'pciback', 'registered drivers get the first look');
  });

  test('unbind() tells the listeners before the driver removes the function; unbinding nothing is a no-op', () => {
    const host = machine();
    const nvme = A('0000:00:02.0');
    const order: string[] = [];
    const stub: SimPciDriver = {
      probe: (a) => a.equals(nvme),
      remove: (a) => order.push(`remove ${a.toString()}`),
    };
    host.registerDriver('pciback', stub);
    const stop = host.onDriverUnbinding((a, driver) =>
      order.push(`unbinding ${a.toString()} ${driver}`),
    );
    host.unbind(nvme);
    assert.deepEqual(order, ['unbinding 0000:00:02.0 pciback', 'remove 0000:00:02.0']);
    assert.equal(host.info(nvme)?.driver, null);
    host.unbind(nvme);
    assert.equal(order.length, 2);
    stop();
    host.probe(nvme);
    host.unregisterDriver('pciback');
    assert.deepEqual(order.slice(2), ['remove 0000:00:02.0'], 'unregistering unbinds');
    assert.equal(host.info(nvme)?.driver, null);
  });

  test('a driver whose probe throws does not get the function', () => {
    const host = machine();
    host.registerDriver('pciback', {
      probe: () => {
        throw new Error('boom');
      },
      remove: () => undefined,
    });
    assert.ok(host.list().every((f) => f.driver === null));
  });
});

describe('SimPciHost: resets', () => {
  test('FLR on the NVMe drive is transparent: the config state comes back', () => {
    const host = machine();
    const nvme = A('0000:00:02.0');
    const dev = must(host.hostDevice(nvme));
    dev.enableDevice();
    dev.hardware.configWrite(PCI_CACHE_LINE_SIZE_OFFSET, 1, 0x10);
    const bar0 = dev.hardware.configRead(0x10, 4);
    assert.deepEqual(host.reset(nvme), { ok: true, method: 'flr' });
    assert.equal(dev.hardware.resetCounts().flr, 1);
    assert.equal(dev.hardware.configRead(0x10, 4), bar0);
    assert.equal(dev.hardware.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1), 0x10);
    assert.notEqual(dev.hardware.configRead(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_MEMORY, 0);
  });

  test('AF FLR, PM reset, and the refusals of PM outside D0 and of methods the device lacks', () => {
    const host = machine();
    const af = A('0000:00:05.0');
    assert.deepEqual(host.reset(af), { ok: true, method: 'af_flr' });
    assert.equal(must(host.hostDevice(af)).hardware.resetCounts().afFlr, 1);
    const xhci = A('0000:00:14.0');
    assert.deepEqual(host.reset(xhci, 'pm'), { ok: true, method: 'pm' });
    assert.equal(must(host.hostDevice(xhci)).hardware.resetCounts().pm, 1);
    const flr = host.reset(xhci, 'flr');
    assert.equal(flr.ok, false);
    assert.match(reasonOf(flr), /method "flr": the device does not support it \(its methods: pm\)/);
    assert.equal(must(host.hostDevice(xhci)).setPowerState(PCI_D3HOT), 0);
    const pm = host.reset(xhci);
    assert.equal(pm.ok, false);
    assert.match(reasonOf(pm), /in D3, not D0/);
    assert.equal(must(host.hostDevice(xhci)).hardware.resetCounts().pm, 1);
    assert.throws(
      () => host.reset(A('0000:09:00.0')),
      (e) => isPcibackError(e, 'NO_SUCH_DEVICE'),
    );
  });

  test('a bus reset resets every function behind the bridge, and nothing else', () => {
    const host = machine();
    const gpu = A('0000:01:00.0');
    const audio = must(host.hostDevice(A('0000:01:00.1')));
    audio.hardware.configWrite(PCI_CACHE_LINE_SIZE_OFFSET, 1, 0x10);
    assert.deepEqual(host.reset(gpu), { ok: true, method: 'bus' });
    assert.equal(must(host.hostDevice(gpu)).hardware.resetCounts().bus, 1);
    assert.equal(audio.hardware.resetCounts().bus, 1);
    assert.equal(audio.hardware.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1), 0x10, 'restored');
    const port = must(host.hostDevice(A('0000:00:1c.0')));
    assert.deepEqual(port.hardware.resetCounts(), { flr: 0, afFlr: 0, pm: 0, bus: 0 });
    assert.equal(port.hardware.configRead(0x3e, 2) & 0x40, 0, 'Secondary Bus Reset released');
  });

  test('a function without any method is "not resettable" and says why', () => {
    const host = new SimPciHost(catalog('gpu', '0000:00:03.0', 0));
    const outcome = host.reset(A('0000:00:03.0'));
    assert.equal(outcome.ok, false);
    assert.match(
      reasonOf(outcome),
      /"0000:00:03.0" is not resettable: it has no FLR.*no upstream bridge/,
    );
  });

  test('stubDevice() gives the MSI layer and a restore that checks its input', () => {
    const host = machine();
    const xen = new SimHypervisor({ clock: new ManualJiffiesClock(), maxDomains: 2 });
    try {
      const interrupts = new SimInterrupts(xen.eventArea);
      const nvme = A('0000:00:02.0');
      const dev = must(host.stubDevice(nvme, interrupts));
      assert.equal(dev.host, host.hostDevice(nvme));
      assert.equal(dev.msi, interrupts.msiControl(nvme));
      assert.equal(dev.physfn, undefined);
      const before = dev.host.hardware.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1);
      const saved = dev.saveState();
      dev.host.hardware.configWrite(PCI_CACHE_LINE_SIZE_OFFSET, 1, 0x20);
      assert.equal(dev.host.hardware.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1), 0x20);
      dev.restoreState(saved);
      assert.equal(dev.host.hardware.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1), before);
      assert.throws(() => {
        dev.restoreState({ header: [] });
      }, TypeError);
      assert.equal(host.stubDevice(A('0000:09:00.0'), interrupts), undefined);
    } finally {
      xen.dispose();
    }
  });

  test('addFunction() refuses a second function at one address', () => {
    const host = machine();
    const [entry] = catalog('nvme', '0000:00:02.0', 5);
    assert.throws(() => {
      host.addFunction(must(entry));
    }, RangeError);
  });
});
