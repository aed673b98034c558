// SPDX-License-Identifier: MIT
/**
 * Creating the VFs of an SR-IOV physical function once VF Enable is set (PCIe 6.0
 * §9.2, §9.3.3): VF n sits at routing ID PF + First VF Offset + n * VF Stride; its
 * Vendor and Device ID registers read 0xffff (§9.3.4.1.1-2), so the host caches the
 * PF's vendor ID and the SR-IOV VF Device ID instead; its BARs are slices of the PF's
 * VF BARs and decode while the PF's VF MSE is set.
 *
 * The VF's config image is the PF's `vfTemplate` when the hardware defines one;
 * otherwise a generic VF: the PF's class and subsystem IDs, a PCIe endpoint capability
 * with FLR and, if the PF has MSI-X, the same MSI-X layout (in the VF BARs).
 */
import {
  PCI_CAP_ID,
  PCI_CLASS_PROG_OFFSET,
  PCI_EXP_DEVCAP_FLR,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXT_CAP_ID,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSIX_PBA_OFFSET,
  PCI_MSIX_TABLE_OFFSET,
  PCI_REVISION_ID_OFFSET,
  PCI_SUBSYSTEM_ID_OFFSET,
  PCI_SUBSYSTEM_VENDOR_ID_OFFSET,
  PCI_VENDOR_ID_OFFSET,
  PCI_EXP_DEVCAP_OFFSET,
} from '../abi/pci-regs.js';
import { PciAddress } from '../pci/address.js';
import { findCapability } from '../pci/capabilities.js';
import { aerBody, msixBody, pcieBody } from './capability-bodies.js';
import { ConfigImageBuilder } from './config-image-builder.js';
import type { DeviceHooks } from './hooks.js';
import { SimulatedFunction } from './simulated-function.js';
import type { SriovStatus } from './sriov.js';

/** One VF with what the host needs to enumerate it. */
export interface VirtualFunction {
  /** 0-based VF number. */
  readonly vfIndex: number;
  readonly address: PciAddress;
  /** The PF's vendor ID (the VF's own register reads 0xffff). */
  readonly vendorId: number;
  /** VF Device ID from the PF's SR-IOV capability. */
  readonly deviceId: number;
  readonly device: SimulatedFunction;
}

/** Options of {@link createVirtualFunctions}. */
export interface CreateVirtualFunctionsOptions {
  /** Where the PF sits (VF addresses are computed from it). */
  readonly pfAddress: PciAddress;
  /** Side effects of VF `vfIndex`. */
  readonly hooks?: (vfIndex: number) => DeviceHooks;
}

/**
 * The address of VF `vfIndex`, or undefined when its routing ID runs past bus 255.
 *
 * @example
 * virtualFunctionAddress(PciAddress.parse('0000:03:00.0'), { firstVfOffset: 0x80, vfStride: 2, vfIndex: 1 });
 * // 0000:03:10.2
 */
export function virtualFunctionAddress(
  pfAddress: PciAddress,
  vf: Pick<SriovStatus, 'firstVfOffset' | 'vfStride'> & { readonly vfIndex: number },
): PciAddress | undefined {
  const { vfIndex, ...sriov } = vf;
  const pfRid = (pfAddress.bus << 8) | pfAddress.devfn;
  const rid = pfRid + sriov.firstVfOffset + vfIndex * sriov.vfStride;
  if (rid > 0xffff) return undefined;
  return PciAddress.fromDevfn(pfAddress.domain, rid >> 8, rid & 0xff);
}

/**
 * The VFs a PF exposes now: none unless VF Enable is set, else NumVFs of them (VFs
 * whose routing ID would be past bus 255 are left out).
 */
export function createVirtualFunctions(
  pf: SimulatedFunction,
  options: CreateVirtualFunctionsOptions,
): VirtualFunction[] {
  const sriov = pf.sriovStatus();
  if (sriov?.enabled !== true) return [];
  const image = pf.vfTemplate() ?? genericVfImage(pf);
  const vendorId = pf.configRead(PCI_VENDOR_ID_OFFSET, 2);
  const out: VirtualFunction[] = [];
  for (let vfIndex = 0; vfIndex < sriov.numVfs; vfIndex++) {
    const address = virtualFunctionAddress(options.pfAddress, { ...sriov, vfIndex });
    if (address === undefined) break;
    const hooks = options.hooks?.(vfIndex);
    const device = new SimulatedFunction(image, {
      virtualFunctionOf: { pf, vfIndex },
      ...(hooks === undefined ? {} : { hooks }),
    });
    out.push({ vfIndex, address, vendorId, deviceId: sriov.vfDeviceId, device });
  }
  return out;
}

/** A generic VF config image derived from its PF (see the module comment). */
export function genericVfImage(pf: SimulatedFunction): Uint8Array {
  const image = new ConfigImageBuilder(pf.sizeBytes === 4096 ? 4096 : 256).identity({
    vendorId: 0xffff,
    deviceId: 0xffff,
    revision: pf.configRead(PCI_REVISION_ID_OFFSET, 1),
    classCode:
      pf.configRead(PCI_CLASS_PROG_OFFSET, 1) | (pf.configRead(PCI_CLASS_PROG_OFFSET + 1, 2) << 8),
    headerType: 0,
    subsystemVendorId: pf.configRead(PCI_SUBSYSTEM_VENDOR_ID_OFFSET, 2),
    subsystemId: pf.configRead(PCI_SUBSYSTEM_ID_OFFSET, 2),
  });
  const msix = findCapability(pf, PCI_CAP_ID.MSIX);
  if (msix !== undefined) {
    const table = pf.configRead(msix + PCI_MSIX_TABLE_OFFSET, 4);
    const pba = pf.configRead(msix + PCI_MSIX_PBA_OFFSET, 4);
    image.addCapability(
      PCI_CAP_ID.MSIX,
      msixBody({
        tableSize: (pf.configRead(msix + PCI_MSIX_FLAGS_OFFSET, 2) & PCI_MSIX_FLAGS_QSIZE) + 1,
        tableBar: table & 7,
        tableOffset: (table & ~7) >>> 0,
        pbaBar: pba & 7,
        pbaOffset: (pba & ~7) >>> 0,
      }),
    );
  }
  const exp = findCapability(pf, PCI_CAP_ID.EXP);
  const devcap = exp === undefined ? 0 : pf.configRead(exp + PCI_EXP_DEVCAP_OFFSET, 4);
  image.addCapability(
    PCI_CAP_ID.EXP,
    pcieBody({ type: PCI_EXP_TYPE_ENDPOINT, devcap: (devcap | PCI_EXP_DEVCAP_FLR) >>> 0 }),
  );
  if (pf.sizeBytes === 4096)
    image.addExtendedCapability(PCI_EXT_CAP_ID.ERR, aerBody({}), { version: 2 });
  return image.build();
}
