// SPDX-License-Identifier: MIT
/**
 * An NVMe SSD controller modelled on Samsung's 970-series (IDs 144d:a808, class
 * 01 08 02): 64-bit BAR 0 of 16 KiB holding the controller registers, the 33-entry
 * MSI-X table (0x3000) and PBA (0x2000); PM with No_Soft_Reset, MSI with 32 maskable
 * vectors, PCIe with FLR; AER and DSN. Register values are ours.
 */
import { PCI_CAP_ID, PCI_EXP_TYPE_ENDPOINT, PCI_EXT_CAP_ID } from '../../abi/pci-regs.js';
import { aerBody, dsnBody, msiBody, msixBody, pcieBody, pmBody } from '../capability-bodies.js';
import { ConfigImageBuilder } from '../config-image-builder.js';
import { SimulatedFunction } from '../simulated-function.js';
import { FirmwareAllocator, assignBars, firmwareEnable } from './firmware.js';
import { DEFAULT_IRQ, hooksFor, type CatalogFunction, type CatalogOptions } from './types.js';

/** The NVMe controller (one function). */
export function buildNvme(options: CatalogOptions = {}): CatalogFunction[] {
  const image = new ConfigImageBuilder(4096).identity({
    vendorId: 0x144d,
    deviceId: 0xa808,
    revision: 0x00,
    classCode: 0x010802,
    headerType: 0,
    subsystemVendorId: 0x144d,
    subsystemId: 0xa801,
  });
  image.addCapability(PCI_CAP_ID.PM, pmBody({ noSoftReset: true }));
  image.addCapability(PCI_CAP_ID.MSI, msiBody({ is64: true, maskable: true, vectorsLog2: 5 }));
  image.addCapability(
    PCI_CAP_ID.EXP,
    pcieBody({
      type: PCI_EXP_TYPE_ENDPOINT,
      devcap: 0x10008fc1, // 256-byte payload, unlimited L0s/L1 latency, RBE, FLR
      lnkcap: 0x00477843, // 8 GT/s x4, ASPM L1
      lnksta: 0x1043,
      devcap2: 0x0070081f, // completion timeouts, LTR, OBFF
      lnkcap2: 0xe,
      lnkctl2: 0x3,
    }),
  );
  image.addCapability(
    PCI_CAP_ID.MSIX,
    msixBody({ tableSize: 33, tableBar: 0, tableOffset: 0x3000, pbaBar: 0, pbaOffset: 0x2000 }),
  );
  image.addExtendedCapability(PCI_EXT_CAP_ID.ERR, aerBody({}), { version: 2 });
  image.addExtendedCapability(PCI_EXT_CAP_ID.DSN, dsnBody(0x0000000100000001n));
  const barSizes = assignBars(image, {
    firstBarOffset: 0x10,
    bars: [{ index: 0, kind: 'mem64', sizeBytes: 0x4000n }],
    allocator: new FirmwareAllocator(options),
  });
  firmwareEnable(image, {
    hasIo: false,
    hasMemory: true,
    irq: options.irq ?? DEFAULT_IRQ,
    interruptPin: 1,
  });
  return [
    {
      fn: 0,
      device: new SimulatedFunction(image.build(), { barSizes, hooks: hooksFor(options, 0) }),
    },
  ];
}
