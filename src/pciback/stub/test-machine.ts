// SPDX-License-Identifier: MIT
/**
 * A small simulated machine for the stub's tests: catalog devices on a `SimPciHost`,
 * the simulator's interrupt plumbing, and a `PciStub` registered as its `pciback`
 * driver, wired as a composition root would. For this folder's tests only (not
 * exported from `index.ts`).
 */
import {
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_OFFSET,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_NUM_VF_OFFSET,
} from '../../abi/pci-regs.js';
import { buildCatalogDevice, type CatalogModel } from '../../devices/catalog/index.js';
import { createVirtualFunctions } from '../../devices/index.js';
import type { SimulatedFunction } from '../../devices/simulated-function.js';
import { PciAddress } from '../../pci/index.js';
import { SimInterrupts } from '../../platform/sim/interrupts/index.js';
import { SimHostPciDevice, firmwareIrq } from '../../platform/sim/pci-core.js';
import {
  CATALOG_LINUX_VF_DRIVERS,
  SimPciHost,
  catalogDriverName,
  type SimPciHostEntry,
} from '../../platform/sim/sim-pci-host.js';
import { ManualJiffiesClock, SimHypervisor } from '../../platform/sim/xen/index.js';
import type { DomId } from '../../platform/types.js';
import { recordingLogger, type RecordingLogger } from '../../../test/support/memory-host-device.js';
import type { GlobalConfigPolicy } from '../confspace/index.js';
import { pcibackDeviceFactory, type PciStubDeviceFactory } from './device-factory.js';
import { PciStub } from './pci-stub.js';

/** One catalog device of the machine (all its functions). */
export interface TestMachineDevice {
  /** Slot address; functions are `.0`, `.1`, ... */
  readonly bdf: string;
  readonly model: CatalogModel;
  /** Root port: the bus below it. */
  readonly secondaryBus?: number;
  /** Override the catalog's usual driver (null: none). */
  readonly driver?: string | null;
}

/** Options of {@link buildTestMachine}. */
export interface TestMachineOptions {
  readonly hide?: string;
  /** Wrap the factory (to make it fail, count calls, ...). */
  readonly factory?: (inner: PciStubDeviceFactory) => PciStubDeviceFactory;
  /** Extra functions (built by the test) added before the drivers load. */
  readonly extra?: readonly SimPciHostEntry[];
  /** Bind the rest to their dom0 drivers (default true). */
  readonly bindDom0Drivers?: boolean;
}

/** The machine and its parts. */
export interface TestMachine {
  readonly xen: SimHypervisor;
  readonly interrupts: SimInterrupts;
  readonly pci: SimPciHost;
  readonly stub: PciStub;
  readonly logger: RecordingLogger;
  readonly global: GlobalConfigPolicy;
  /** `onForcedRelease` calls, in order. */
  readonly forced: { address: string; domid: number }[];
  /** A function's simulated PCI core device. */
  host(bdf: string): SimHostPciDevice;
  /** A function's hardware. */
  hw(bdf: string): SimulatedFunction;
  /**
   * The PF driver enables `count` VFs: they are hot added (and probed, so hidden ones
   * go to the stub). Returns their addresses.
   */
  enableVfs(pfBdf: string, count: number): PciAddress[];
  close(): void;
}

/** 64 MiB of 32-bit MMIO, 1 GiB of 64-bit MMIO and 1 KiB of I/O per device, as sim-host. */
function firmwareWindows(index: number): { mmioBase: bigint; mmio64Base: bigint; ioBase: bigint } {
  return {
    mmioBase: 0xc0000000n + BigInt(index) * 0x04000000n,
    mmio64Base: 0x3800000000n + BigInt(index) * 0x40000000n,
    ioBase: 0x2000n + BigInt(index) * 0x400n,
  };
}

/** Domain 5, the guest of most tests. */
export const GUEST = 5 as DomId;

/**
 * Build the machine: every device's functions on a `SimPciHost`, the stub registered as
 * `pciback` (seizing what `hide` names), the bus notifier wired, then dom0's drivers.
 */
export function buildTestMachine(
  devices: readonly TestMachineDevice[],
  options: TestMachineOptions = {},
): TestMachine {
  const xen = new SimHypervisor({ clock: new ManualJiffiesClock(), maxDomains: 8 });
  const logger = recordingLogger();
  const interrupts = new SimInterrupts(xen.eventArea, { logger });
  const entries: SimPciHostEntry[] = [];
  for (const [index, device] of devices.entries()) {
    const slot = PciAddress.parse(device.bdf);
    const fns = buildCatalogDevice(device.model, {
      ...firmwareWindows(index),
      primaryBus: slot.bus,
      ...(device.secondaryBus === undefined ? {} : { secondaryBus: device.secondaryBus }),
      hooks: interrupts.catalogHooks(slot),
    });
    for (const { fn, device: hardware } of fns) {
      const address = slot.withFunction(fn);
      const host = new SimHostPciDevice(hardware, { address, irq: firmwareIrq(hardware) });
      entries.push({
        address,
        host,
        originalDriver:
          device.driver === undefined ? catalogDriverName(device.model, fn) : device.driver,
      });
    }
  }
  entries.push(...(options.extra ?? []));
  const pci = new SimPciHost(entries, { logger });
  const global: GlobalConfigPolicy = { permissive: false };
  const inner = pcibackDeviceFactory((a) => pci.stubDevice(a, interrupts), {
    global,
    irqLines: interrupts.irqs,
    host: pci,
    logger,
  });
  const forced: { address: string; domid: number }[] = [];
  const stub = new PciStub(pci, {
    factory: options.factory === undefined ? inner : options.factory(inner),
    owners: interrupts.owners,
    logger,
    ...(options.hide === undefined ? {} : { hide: options.hide }),
    onForcedRelease: (address, domid) => {
      forced.push({ address: address.toString(), domid });
    },
    nowMs: () => 1000,
  });
  pci.registerDriver(stub.driverName, stub);
  pci.onDriverUnbinding((address) => {
    stub.driverUnbinding(address);
  });
  if (options.bindDom0Drivers !== false) pci.bindDom0Drivers();

  const host = (bdf: string): SimHostPciDevice => {
    const found = pci.hostDevice(PciAddress.parse(bdf));
    if (found === undefined) throw new RangeError(`No function "${bdf}" in the test machine`);
    return found;
  };
  return {
    xen,
    interrupts,
    pci,
    stub,
    logger,
    global,
    forced,
    host,
    hw: (bdf) => host(bdf).hardware,
    enableVfs(pfBdf, count) {
      const pf = host(pfBdf);
      const sriov = pf.hardware.sriovStatus();
      if (sriov === undefined) throw new RangeError(`"${pfBdf}" has no SR-IOV capability`);
      pf.hardware.configWrite(sriov.byteOffset + PCI_SRIOV_NUM_VF_OFFSET, 2, count);
      pf.hardware.configWrite(
        sriov.byteOffset + PCI_SRIOV_CTRL_OFFSET,
        2,
        PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE,
      );
      const out: PciAddress[] = [];
      for (const vf of createVirtualFunctions(pf.hardware, { pfAddress: pf.address })) {
        const vfHost = new SimHostPciDevice(vf.device, {
          address: vf.address,
          irq: 0,
          vendorId: vf.vendorId,
          deviceId: vf.deviceId,
          physfn: pf,
        });
        pci.addFunction({
          address: vf.address,
          host: vfHost,
          originalDriver: CATALOG_LINUX_VF_DRIVERS['nic-sriov'] ?? null,
        });
        out.push(vf.address);
      }
      return out;
    },
    close() {
      xen.dispose();
    },
  };
}
