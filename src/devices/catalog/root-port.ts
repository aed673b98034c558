// SPDX-License-Identifier: MIT
/**
 * A PCIe root port modelled on Intel's Sunrise Point-H root port #1 (IDs 8086:a110,
 * class 06 04 00, type-1 header): bus numbers and I/O, memory and 64-bit prefetchable
 * windows programmed as firmware would; PCIe v2 root port with a hot-plug slot, MSI,
 * PM, bridge subsystem IDs; AER with the root registers and ACS.
 */
import {
  PCI_BRIDGE_CONTROL_OFFSET,
  PCI_BRIDGE_CTL_SERR,
  PCI_CAP_ID,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_OFFSET,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXT_CAP_ID,
  PCI_IO_BASE_OFFSET,
  PCI_IO_BASE_UPPER16_OFFSET,
  PCI_IO_LIMIT_OFFSET,
  PCI_IO_LIMIT_UPPER16_OFFSET,
  PCI_IO_RANGE_TYPE_32,
  PCI_MEMORY_BASE_OFFSET,
  PCI_MEMORY_LIMIT_OFFSET,
  PCI_PREF_BASE_UPPER32_OFFSET,
  PCI_PREF_LIMIT_UPPER32_OFFSET,
  PCI_PREF_MEMORY_BASE_OFFSET,
  PCI_PREF_MEMORY_LIMIT_OFFSET,
  PCI_PREF_RANGE_TYPE_64,
  PCI_PRIMARY_BUS_OFFSET,
  PCI_SECONDARY_BUS_OFFSET,
  PCI_SUBORDINATE_BUS_OFFSET,
} from '../../abi/pci-regs.js';
import { acsBody, aerBody, msiBody, pcieBody, pmBody } from '../capability-bodies.js';
import { ConfigImageBuilder, le } from '../config-image-builder.js';
import { SimulatedFunction } from '../simulated-function.js';
import { FirmwareAllocator, firmwareEnable } from './firmware.js';
import { DEFAULT_IRQ, hooksFor, type CatalogFunction, type CatalogOptions } from './types.js';

const MEMORY_WINDOW = 0x200000n; // 2 MiB
const PREF_WINDOW = 0x10000000n; // 256 MiB
const IO_WINDOW = 0x1000n; // 4 KiB, the granularity of bridge I/O windows

/** The root port (one function). */
export function buildRootPort(options: CatalogOptions = {}): CatalogFunction[] {
  const allocator = new FirmwareAllocator(options);
  const primary = options.primaryBus ?? 0;
  const secondary = options.secondaryBus ?? primary + 1;
  const image = new ConfigImageBuilder(4096).identity({
    vendorId: 0x8086,
    deviceId: 0xa110,
    revision: 0xf1,
    classCode: 0x060400,
    headerType: 1,
  });
  image.addCapability(
    PCI_CAP_ID.EXP,
    pcieBody({
      type: PCI_EXP_TYPE_ROOT_PORT,
      slotImplemented: true,
      devcap: 0x00008001, // 256-byte payload, RBE
      lnkcap: 0x01124c43, // port 1, 8 GT/s x4, ASPM, DLL link active reporting
      lnksta: 0x3043, // trained at 8 GT/s x4, slot clock, DLL link active
      sltcap: 0x00080060, // slot 1, hot-plug capable and surprise
      sltsta: 0x0040, // presence detected
      rtcap: 0x0001, // CRS software visibility
      devcap2: 0x0000002f, // completion timeouts, ARI forwarding
      lnkcap2: 0xe,
      lnkctl2: 0x3,
    }),
  );
  image.addCapability(PCI_CAP_ID.MSI, msiBody({ is64: false, maskable: false, vectorsLog2: 0 }));
  image.addCapability(PCI_CAP_ID.SSVID, [0, 0, ...le(0x8086, 2), ...le(0x7270, 2)]);
  image.addCapability(PCI_CAP_ID.PM, pmBody({ pmeSupport: 0x19 }));
  image.addExtendedCapability(PCI_EXT_CAP_ID.ERR, aerBody({ root: true }), { version: 2 });
  image.addExtendedCapability(PCI_EXT_CAP_ID.ACS, acsBody(0x001f));

  image.set8(PCI_PRIMARY_BUS_OFFSET, primary);
  image.set8(PCI_SECONDARY_BUS_OFFSET, secondary);
  image.set8(PCI_SUBORDINATE_BUS_OFFSET, secondary);
  const memory = allocator.allocate('mem32', MEMORY_WINDOW);
  image.set16(PCI_MEMORY_BASE_OFFSET, Number(memory >> 16n) & 0xfff0);
  image.set16(PCI_MEMORY_LIMIT_OFFSET, Number((memory + MEMORY_WINDOW - 1n) >> 16n) & 0xfff0);
  const pref = allocator.allocate('mem64', PREF_WINDOW, { prefetchable: true });
  const prefEnd = pref + PREF_WINDOW - 1n;
  image.set16(
    PCI_PREF_MEMORY_BASE_OFFSET,
    Number((pref >> 16n) & 0xfff0n) | PCI_PREF_RANGE_TYPE_64,
  );
  image.set16(
    PCI_PREF_MEMORY_LIMIT_OFFSET,
    Number((prefEnd >> 16n) & 0xfff0n) | PCI_PREF_RANGE_TYPE_64,
  );
  image.set32(PCI_PREF_BASE_UPPER32_OFFSET, Number(pref >> 32n));
  image.set32(PCI_PREF_LIMIT_UPPER32_OFFSET, Number(prefEnd >> 32n));
  const io = allocator.allocate('io', IO_WINDOW);
  const ioEnd = io + IO_WINDOW - 1n;
  image.set8(PCI_IO_BASE_OFFSET, (Number(io >> 8n) & 0xf0) | PCI_IO_RANGE_TYPE_32);
  image.set8(PCI_IO_LIMIT_OFFSET, (Number(ioEnd >> 8n) & 0xf0) | PCI_IO_RANGE_TYPE_32);
  image.set16(PCI_IO_BASE_UPPER16_OFFSET, Number(io >> 16n));
  image.set16(PCI_IO_LIMIT_UPPER16_OFFSET, Number(ioEnd >> 16n));
  image.set16(PCI_BRIDGE_CONTROL_OFFSET, PCI_BRIDGE_CTL_SERR);
  firmwareEnable(image, {
    hasIo: true,
    hasMemory: true,
    irq: options.irq ?? DEFAULT_IRQ,
    interruptPin: 1,
  });
  // Bridges forward their devices' DMA: firmware turns bus mastering on.
  image.set16(PCI_COMMAND_OFFSET, image.get(PCI_COMMAND_OFFSET, 2) | PCI_COMMAND_MASTER);
  return [{ fn: 0, device: new SimulatedFunction(image.build(), { hooks: hooksFor(options, 0) }) }];
}
