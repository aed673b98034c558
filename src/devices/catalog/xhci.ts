// SPDX-License-Identifier: MIT
/**
 * A USB 3.0 xHCI host controller modelled on Renesas' uPD720202 (IDs 1912:0015, class
 * 0c 03 30): 64-bit BAR 0 of 8 KiB with the 8-entry MSI-X table (0x1000) and PBA
 * (0x1080); PM with PME from every state and No_Soft_Reset clear (so D3hot->D0 is its
 * reset: it has no FLR), MSI with 8 vectors, PCIe without FLR; AER and DSN.
 */
import { PCI_CAP_ID, PCI_EXP_TYPE_ENDPOINT, PCI_EXT_CAP_ID } from '../../abi/pci-regs.js';
import { aerBody, dsnBody, msiBody, msixBody, pcieBody, pmBody } from '../capability-bodies.js';
import { ConfigImageBuilder } from '../config-image-builder.js';
import { SimulatedFunction } from '../simulated-function.js';
import { FirmwareAllocator, assignBars, firmwareEnable } from './firmware.js';
import { DEFAULT_IRQ, hooksFor, type CatalogFunction, type CatalogOptions } from './types.js';

/** The xHCI controller (one function). */
export function buildXhci(options: CatalogOptions = {}): CatalogFunction[] {
  const image = new ConfigImageBuilder(4096).identity({
    vendorId: 0x1912,
    deviceId: 0x0015,
    revision: 0x02,
    classCode: 0x0c0330,
    headerType: 0,
    subsystemVendorId: 0x1912,
    subsystemId: 0x0015,
  });
  image.addCapability(PCI_CAP_ID.PM, pmBody({ pmeSupport: 0x1f }));
  image.addCapability(PCI_CAP_ID.MSI, msiBody({ is64: true, maskable: false, vectorsLog2: 3 }));
  image.addCapability(
    PCI_CAP_ID.MSIX,
    msixBody({ tableSize: 8, tableBar: 0, tableOffset: 0x1000, pbaBar: 0, pbaOffset: 0x1080 }),
  );
  image.addCapability(
    PCI_CAP_ID.EXP,
    pcieBody({
      type: PCI_EXP_TYPE_ENDPOINT,
      devcap: 0x00008fc0, // 128-byte payload, RBE, no FLR
      lnkcap: 0x00477812, // 5 GT/s x1, ASPM L0s/L1
      lnksta: 0x1012,
      devcap2: 0x0000081f,
      lnkcap2: 0x6,
      lnkctl2: 0x2,
    }),
  );
  image.addExtendedCapability(PCI_EXT_CAP_ID.ERR, aerBody({}), { version: 2 });
  image.addExtendedCapability(PCI_EXT_CAP_ID.DSN, dsnBody(0xffffffffffffffffn));
  const barSizes = assignBars(image, {
    firstBarOffset: 0x10,
    bars: [{ index: 0, kind: 'mem64', sizeBytes: 0x2000n }],
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
