// SPDX-License-Identifier: MIT
/**
 * An SR-IOV capable 10 GbE NIC physical function modelled on Intel's 82599 (IDs
 * 8086:10fb, VF 8086:10ed): 64-bit BAR 0 of 512 KiB, an I/O BAR, BAR 3 (16 KiB)
 * holding the 64-entry MSI-X table and PBA; PM, MSI, MSI-X, PCIe with FLR, VPD; AER,
 * DSN, ARI and SR-IOV with 16 VFs (offset 0x80, stride 2, two 16 KiB 64-bit VF BARs).
 * Register values are ours, not copied from a dump.
 */
import {
  PCI_EXT_CAP_ID,
  PCI_CAP_ID,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_SRIOV_BAR_OFFSET,
} from '../../abi/pci-regs.js';
import {
  aerBody,
  ariBody,
  dsnBody,
  msiBody,
  msixBody,
  pcieBody,
  pmBody,
  sriovBody,
  vpdBody,
} from '../capability-bodies.js';
import { ConfigImageBuilder } from '../config-image-builder.js';
import { SimulatedFunction } from '../simulated-function.js';
import { buildVpdImage } from '../vpd-image.js';
import { FirmwareAllocator, assignBars, firmwareEnable, type BarRequest } from './firmware.js';
import { DEFAULT_IRQ, hooksFor, type CatalogFunction, type CatalogOptions } from './types.js';

const VENDOR_INTEL = 0x8086;
const NIC_DEVICE_ID = 0x10fb;
const NIC_VF_DEVICE_ID = 0x10ed;
const SUBSYSTEM_ID = 0x000c;
const TOTAL_VFS = 16;
const MSIX_VECTORS = 64;
const VF_MSIX_VECTORS = 3;
/** DevCap: 512-byte payload, extended tags, L0s/L1 latencies, RBE, FLR. */
const DEVCAP = 0x10008ce2;
/** Link: 5 GT/s x8, ASPM L0s and L1. */
const LNKCAP = 0x00033c82;
const LNKSTA = 0x1082;

/** The NIC PF (one function). */
export function buildSriovNic(options: CatalogOptions = {}): CatalogFunction[] {
  const allocator = new FirmwareAllocator(options);
  const image = new ConfigImageBuilder(4096).identity({
    vendorId: VENDOR_INTEL,
    deviceId: NIC_DEVICE_ID,
    revision: 0x01,
    classCode: 0x020000,
    headerType: 0,
    subsystemVendorId: VENDOR_INTEL,
    subsystemId: SUBSYSTEM_ID,
  });
  image.addCapability(PCI_CAP_ID.PM, pmBody({ pmeSupport: 0x19 }));
  image.addCapability(PCI_CAP_ID.MSI, msiBody({ is64: true, maskable: true, vectorsLog2: 0 }));
  image.addCapability(
    PCI_CAP_ID.MSIX,
    msixBody({
      tableSize: MSIX_VECTORS,
      tableBar: 3,
      tableOffset: 0,
      pbaBar: 3,
      pbaOffset: 0x2000,
    }),
  );
  image.addCapability(
    PCI_CAP_ID.EXP,
    pcieBody({
      type: PCI_EXP_TYPE_ENDPOINT,
      devcap: DEVCAP,
      lnkcap: LNKCAP,
      lnksta: LNKSTA,
      devcap2: 0x1f,
      lnkcap2: 0x6,
      lnkctl2: 0x2,
    }),
  );
  image.addCapability(PCI_CAP_ID.VPD, vpdBody());
  image.addExtendedCapability(PCI_EXT_CAP_ID.ERR, aerBody({ capabilities: 0xa0 }), { version: 2 });
  image.addExtendedCapability(PCI_EXT_CAP_ID.DSN, dsnBody(0x001b21fffe8a5c00n));
  image.addExtendedCapability(PCI_EXT_CAP_ID.ARI, ariBody(0));
  const vfBars: BarRequest[] = [
    { index: 0, kind: 'mem64', sizeBytes: 0x4000n },
    { index: 3, kind: 'mem64', sizeBytes: 0x4000n },
  ];
  const sriovOffset = image.addExtendedCapability(
    PCI_EXT_CAP_ID.SRIOV,
    sriovBody({
      totalVfs: TOTAL_VFS,
      firstVfOffset: 0x80,
      vfStride: 2,
      vfDeviceId: NIC_VF_DEVICE_ID,
      vfBars: [0x4, 0, 0, 0x4, 0, 0],
    }),
  );

  const barSizes = assignBars(image, {
    firstBarOffset: 0x10,
    bars: [
      { index: 0, kind: 'mem64', sizeBytes: 0x80000n },
      { index: 2, kind: 'io', sizeBytes: 0x20n },
      { index: 3, kind: 'mem32', sizeBytes: 0x4000n },
    ],
    allocator,
  });
  const vfBarSizes = assignBars(image, {
    firstBarOffset: sriovOffset + PCI_SRIOV_BAR_OFFSET,
    bars: vfBars,
    allocator,
    perBarMultiplier: BigInt(TOTAL_VFS),
  });
  firmwareEnable(image, {
    hasIo: true,
    hasMemory: true,
    irq: options.irq ?? DEFAULT_IRQ,
    interruptPin: 1,
  });
  const device = new SimulatedFunction(image.build(), {
    barSizes,
    vfBarSizes,
    vfTemplate: buildNicVfImage(),
    vpd: buildVpdImage({
      identifier: 'Simulated 10GbE SR-IOV Network Adapter',
      fields: [
        ['PN', 'SIM-10G-2P'],
        ['EC', 'A1'],
        ['SN', 'SIM0000001'],
        ['V0', 'pciback-ts catalog'],
      ],
    }),
    hooks: hooksFor(options, 0),
  });
  return [{ fn: 0, device }];
}

/** The config image of one of the NIC's VFs (IDs read 0xffff, as in every VF). */
function buildNicVfImage(): Uint8Array {
  const image = new ConfigImageBuilder(4096).identity({
    vendorId: 0xffff,
    deviceId: 0xffff,
    revision: 0x01,
    classCode: 0x020000,
    headerType: 0,
    subsystemVendorId: VENDOR_INTEL,
    subsystemId: SUBSYSTEM_ID,
  });
  image.addCapability(
    PCI_CAP_ID.MSIX,
    msixBody({
      tableSize: VF_MSIX_VECTORS,
      tableBar: 3,
      tableOffset: 0,
      pbaBar: 3,
      pbaOffset: 0x2000,
    }),
  );
  image.addCapability(
    PCI_CAP_ID.EXP,
    pcieBody({
      type: PCI_EXP_TYPE_ENDPOINT,
      devcap: DEVCAP,
      lnkcap: LNKCAP,
      lnksta: LNKSTA,
      devcap2: 0x1f,
    }),
  );
  image.addExtendedCapability(PCI_EXT_CAP_ID.ERR, aerBody({}), { version: 2 });
  image.addExtendedCapability(PCI_EXT_CAP_ID.ARI, ariBody(0));
  return image.build();
}
