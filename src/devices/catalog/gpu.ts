// SPDX-License-Identifier: MIT
/**
 * A discrete GPU modelled on NVIDIA's GP107 (IDs 10de:1c82, class 03 00 00) with its
 * HDMI audio function (10de:0fb9, class 04 03 00) as function 1. Function 0: BAR 0
 * 16 MiB 32-bit, BAR 1 256 MiB and BAR 3 32 MiB 64-bit prefetchable, BAR 5 128-byte
 * I/O, a 512 KiB expansion ROM; PM with No_Soft_Reset set and no FLR (like the real
 * part, it has no reset method of its own), MSI, PCIe legacy endpoint. Function 1:
 * BAR 0 16 KiB, PM (D3hot->D0 resets it), MSI, PCIe legacy endpoint, INTB. The
 * multi-function bit is set in both headers.
 */
import { PCI_CAP_ID, PCI_EXP_TYPE_LEG_END, PCI_ROM_ADDRESS_OFFSET } from '../../abi/pci-regs.js';
import { PCI_ROM_RESOURCE } from '../../pci/resource.js';
import { msiBody, pcieBody, pmBody } from '../capability-bodies.js';
import { ConfigImageBuilder } from '../config-image-builder.js';
import { SimulatedFunction } from '../simulated-function.js';
import { FirmwareAllocator, assignBars, firmwareEnable } from './firmware.js';
import { DEFAULT_IRQ, hooksFor, type CatalogFunction, type CatalogOptions } from './types.js';

const VENDOR_NVIDIA = 0x10de;
const SUBSYSTEM_VENDOR = 0x1043;
const SUBSYSTEM_ID = 0x8613;
const ROM_SIZE = 0x80000n;
/** DevCap: 256-byte payload, extended tags, L0s/L1 latencies, RBE; no FLR. */
const DEVCAP = 0x00008d21;
const LNKCAP = 0x00097d03; // 8 GT/s x16
const LNKSTA = 0x1103;

/** The GPU (function 0) and its HDMI audio (function 1). */
export function buildGpu(options: CatalogOptions = {}): CatalogFunction[] {
  const allocator = new FirmwareAllocator(options);
  const irq = options.irq ?? DEFAULT_IRQ;

  const vga = new ConfigImageBuilder(4096).identity({
    vendorId: VENDOR_NVIDIA,
    deviceId: 0x1c82,
    revision: 0xa1,
    classCode: 0x030000,
    headerType: 0,
    multiFunction: true,
    subsystemVendorId: SUBSYSTEM_VENDOR,
    subsystemId: SUBSYSTEM_ID,
  });
  addGraphicsCapabilities(vga, true);
  const vgaSizes = assignBars(vga, {
    firstBarOffset: 0x10,
    bars: [
      { index: 0, kind: 'mem32', sizeBytes: 0x1000000n },
      { index: 1, kind: 'mem64', prefetchable: true, sizeBytes: 0x10000000n },
      { index: 3, kind: 'mem64', prefetchable: true, sizeBytes: 0x2000000n },
      { index: 5, kind: 'io', sizeBytes: 0x80n },
    ],
    allocator,
  });
  // The ROM is assigned but left disabled, as firmware does once it has run it.
  const romAddress = allocator.allocate('mem32', ROM_SIZE);
  vga.set32(PCI_ROM_ADDRESS_OFFSET, Number(romAddress));
  vgaSizes.set(PCI_ROM_RESOURCE, ROM_SIZE);
  firmwareEnable(vga, { hasIo: true, hasMemory: true, irq, interruptPin: 1 });

  const audio = new ConfigImageBuilder(4096).identity({
    vendorId: VENDOR_NVIDIA,
    deviceId: 0x0fb9,
    revision: 0xa1,
    classCode: 0x040300,
    headerType: 0,
    multiFunction: true,
    subsystemVendorId: SUBSYSTEM_VENDOR,
    subsystemId: SUBSYSTEM_ID,
  });
  addGraphicsCapabilities(audio, false);
  const audioSizes = assignBars(audio, {
    firstBarOffset: 0x10,
    bars: [{ index: 0, kind: 'mem32', sizeBytes: 0x4000n }],
    allocator,
  });
  firmwareEnable(audio, { hasIo: false, hasMemory: true, irq, interruptPin: 2 });

  return [
    {
      fn: 0,
      device: new SimulatedFunction(vga.build(), {
        barSizes: vgaSizes,
        hooks: hooksFor(options, 0),
      }),
    },
    {
      fn: 1,
      device: new SimulatedFunction(audio.build(), {
        barSizes: audioSizes,
        hooks: hooksFor(options, 1),
      }),
    },
  ];
}

function addGraphicsCapabilities(image: ConfigImageBuilder, noSoftReset: boolean): void {
  image.addCapability(PCI_CAP_ID.PM, pmBody({ noSoftReset }));
  image.addCapability(PCI_CAP_ID.MSI, msiBody({ is64: true, maskable: false, vectorsLog2: 0 }));
  image.addCapability(
    PCI_CAP_ID.EXP,
    pcieBody({
      type: PCI_EXP_TYPE_LEG_END,
      devcap: DEVCAP,
      lnkcap: LNKCAP,
      lnksta: LNKSTA,
      devcap2: 0x0000001f,
      lnkcap2: 0xe,
      lnkctl2: 0x3,
    }),
  );
}
