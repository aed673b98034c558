// SPDX-License-Identifier: MIT
/**
 * The small machine the Linux platform's tests share (not exported from the folder's
 * index): a host bridge, a root port above bus 3, a two-function NIC with a VF, a GPU
 * with PM, and a device whose PM reset is blocked (No_Soft_Reset).
 */
import type { FakePciFunctionSpec } from './fake-sysfs.js';

export const NIC = '0000:03:00.0';
export const NIC1 = '0000:03:00.1';
export const VF = '0000:03:10.0';
export const PORT = '0000:00:1c.0';
export const GPU = '0000:00:02.0';
export const STUCK = '0000:00:03.0';

/** A fresh spec of the machine (each test builds its own tree). */
export function machine(): FakePciFunctionSpec[] {
  return [
    {
      address: '0000:00:00.0',
      simple: { vendorId: 0x8086, deviceId: 0x3e0f, classCode: 0x060000 },
    },
    {
      address: PORT,
      simple: {
        vendorId: 0x8086,
        deviceId: 0xa110,
        classCode: 0x060400,
        headerType: 1,
        secondaryBus: 3,
        subordinateBus: 3,
        pcie: {},
      },
      driver: 'pcieport',
    },
    {
      address: NIC,
      simple: {
        vendorId: 0x8086,
        deviceId: 0x10c9,
        classCode: 0x020000,
        subsystemVendorId: 0x8086,
        subsystemDeviceId: 0xa03c,
        irq: 16,
        barSizes: new Map([[0, 0x20000n]]),
        pm: {},
        pcie: { flr: true },
      },
      driver: 'igb',
      iommuGroup: 7,
    },
    {
      address: NIC1,
      simple: {
        vendorId: 0x8086,
        deviceId: 0x10c9,
        classCode: 0x020000,
        irq: 17,
        barSizes: new Map([[0, 0x20000n]]),
      },
      driver: 'igb',
      iommuGroup: 7,
    },
    {
      address: VF,
      simple: { vendorId: 0x8086, deviceId: 0x10ca, classCode: 0x020000, pcie: { flr: true } },
      physfn: NIC,
      iommuGroup: 8,
      resources: [{ start: 0xd0000000n, sizeBytes: 0x4000n, flags: 0x40200 }],
    },
    {
      address: GPU,
      simple: {
        vendorId: 0x10de,
        deviceId: 0x1d10,
        classCode: 0x030000,
        irq: 11,
        barSizes: new Map([[0, 0x1000000n]]),
        pm: {},
      },
      iommuGroup: 2,
    },
    {
      address: STUCK,
      simple: {
        vendorId: 0x1b36,
        deviceId: 0x0001,
        classCode: 0x088000,
        pm: { noSoftReset: true },
      },
    },
  ];
}
