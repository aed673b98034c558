// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  PCI_CAP_ID,
  PCI_EXP_DEVCTL_BCR_FLR,
  PCI_EXP_DEVCTL_OFFSET,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_SRIOV_CTRL_ARI,
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_OFFSET,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_NUM_VF_OFFSET,
  PCI_SRIOV_SYS_PGSIZE_OFFSET,
  PCI_SRIOV_TOTAL_VF_OFFSET,
} from '../abi/pci-regs.js';
import { PciAddress } from '../pci/address.js';
import { findCapability } from '../pci/capabilities.js';
import { parseDumpFile } from '../pci/dump.js';
import { DUMPS_DIR } from '../../test/support/paths.js';
import { buildCatalogDevice } from './catalog/index.js';
import { functionFromDump } from './from-dump.js';
import type { SriovChange } from './hooks.js';
import type { SimulatedFunction } from './simulated-function.js';
import { createVirtualFunctions, virtualFunctionAddress } from './virtual-functions.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

const PF_ADDRESS = PciAddress.parse('0000:03:00.0');

function nic(): { pf: SimulatedFunction; sriov: number; changes: SriovChange[] } {
  const changes: SriovChange[] = [];
  const pf = must(
    buildCatalogDevice('nic-sriov', {
      hooks: { onSriovChange: (c) => changes.push(c) },
    })[0],
  ).device;
  const sriov = pf.sriovStatus()?.byteOffset;
  assert.ok(sriov !== undefined);
  return { pf, sriov, changes };
}

function enable(pf: SimulatedFunction, sriov: number, numVfs: number): void {
  pf.configWrite(sriov + PCI_SRIOV_NUM_VF_OFFSET, 2, numVfs);
  pf.configWrite(sriov + PCI_SRIOV_CTRL_OFFSET, 2, PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE);
}

describe('SR-IOV capability', () => {
  test('control has VFE, MSE and ARI writable; other fields are read-only', () => {
    const { pf, sriov } = nic();
    pf.configWrite(sriov + PCI_SRIOV_CTRL_OFFSET, 2, 0xffff);
    assert.equal(
      pf.configRead(sriov + PCI_SRIOV_CTRL_OFFSET, 2),
      PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE | PCI_SRIOV_CTRL_ARI,
    );
    pf.configWrite(sriov + PCI_SRIOV_TOTAL_VF_OFFSET, 2, 99);
    assert.equal(pf.configRead(sriov + PCI_SRIOV_TOTAL_VF_OFFSET, 2), 16);
    assert.equal(
      pf.configRead(sriov + PCI_SRIOV_SYS_PGSIZE_OFFSET, 4),
      1,
      'system page size 4 KiB',
    );
  });

  test('NumVFs is limited to TotalVFs and frozen while VFs are enabled', () => {
    const { pf, sriov } = nic();
    pf.configWrite(sriov + PCI_SRIOV_NUM_VF_OFFSET, 2, 100);
    assert.equal(pf.configRead(sriov + PCI_SRIOV_NUM_VF_OFFSET, 2), 16);
    enable(pf, sriov, 4);
    pf.configWrite(sriov + PCI_SRIOV_NUM_VF_OFFSET, 2, 8);
    assert.equal(pf.configRead(sriov + PCI_SRIOV_NUM_VF_OFFSET, 2), 4);
  });

  test('VF Enable changes are reported, and an FLR of the PF disables the VFs', () => {
    const { pf, sriov, changes } = nic();
    enable(pf, sriov, 4);
    const exp = must(findCapability(pf, PCI_CAP_ID.EXP));
    pf.configWrite(exp + PCI_EXP_DEVCTL_OFFSET, 2, PCI_EXP_DEVCTL_BCR_FLR);
    assert.deepEqual(changes, [
      { enabled: true, numVfs: 4 },
      { enabled: false, numVfs: 0 },
    ]);
    assert.deepEqual(createVirtualFunctions(pf, { pfAddress: PF_ADDRESS }), []);
  });

  test('VF BARs size like BARs', () => {
    const { pf, sriov } = nic();
    const vfBar0 = sriov + 0x24;
    pf.configWrite(vfBar0, 4, 0xffffffff);
    assert.equal(pf.configRead(vfBar0, 4), 0xffffc004);
    pf.configWrite(vfBar0 + 4, 4, 0xffffffff);
    assert.equal(pf.configRead(vfBar0 + 4, 4), 0xffffffff);
  });
});

describe('createVirtualFunctions()', () => {
  test('creates NumVFs VFs at offset + n * stride once VF Enable is set', () => {
    const { pf, sriov } = nic();
    assert.deepEqual(createVirtualFunctions(pf, { pfAddress: PF_ADDRESS }), []);
    enable(pf, sriov, 3);
    const vfs = createVirtualFunctions(pf, { pfAddress: PF_ADDRESS });
    assert.deepEqual(
      vfs.map((vf) => [vf.vfIndex, vf.address.toString(), vf.vendorId, vf.deviceId]),
      [
        [0, '0000:03:10.0', 0x8086, 0x10ed],
        [1, '0000:03:10.2', 0x8086, 0x10ed],
        [2, '0000:03:10.4', 0x8086, 0x10ed],
      ],
    );
  });

  test('a VF reads 0xffff as vendor and device ID, has no ROM and hardwired BARs', () => {
    const { pf, sriov } = nic();
    enable(pf, sriov, 2);
    const [vf] = createVirtualFunctions(pf, { pfAddress: PF_ADDRESS });
    const fn = must(vf).device;
    assert.equal(fn.configRead(0x00, 4), 0xffffffff);
    assert.equal(fn.configRead(0x0a, 2), 0x0200, 'class of the PF');
    for (const offset of [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30]) {
      fn.configWrite(offset, 4, 0xffffffff);
      assert.equal(fn.configRead(offset, 4), 0, `offset 0x${offset.toString(16)}`);
    }
    fn.configWrite(0x04, 2, 0xffff);
    assert.equal(fn.configRead(0x04, 2), 0x0144, 'VF: no IO/MEM/INTX_DISABLE');
  });

  test('VF BARs are slices of the PF VF BARs and decode only with VF MSE', () => {
    const { pf, sriov } = nic();
    enable(pf, sriov, 2);
    const vfs = createVirtualFunctions(pf, { pfAddress: PF_ADDRESS });
    const base = must(pf.sriovStatus()).vfBars;
    assert.equal(must(must(vfs[1]).device.bars()[0]).address, must(base[0]).address + 0x4000n);
    const vf = must(vfs[1]).device;
    vf.mmioWrite(0, 0x10, 4, 0x1234);
    assert.equal(vf.mmioRead(0, 0x10, 4), 0x1234);
    pf.configWrite(sriov + PCI_SRIOV_CTRL_OFFSET, 2, PCI_SRIOV_CTRL_VFE);
    assert.equal(vf.mmioRead(0, 0x10, 4), 0xffffffff, 'VF MSE off');
  });

  test('a VF has its own MSI-X and FLR', () => {
    const { pf, sriov } = nic();
    enable(pf, sriov, 1);
    const vf = must(createVirtualFunctions(pf, { pfAddress: PF_ADDRESS })[0]).device;
    const msix = must(findCapability(vf, PCI_CAP_ID.MSIX));
    vf.configWrite(msix + 2, 2, PCI_MSIX_FLAGS_ENABLE);
    assert.equal(vf.msixEnabled(), true);
    assert.equal(vf.msixTableSize, 3);
    assert.equal(vf.resetCapabilities().flr, true);
    vf.functionLevelReset();
    assert.equal(vf.msixEnabled(), false);
    assert.equal(pf.sriovStatus()?.enabled, true, 'a VF reset leaves the PF alone');
  });

  test('a PF from a dump gets generic VFs with the PF class and MSI-X layout', () => {
    const text = readFileSync(
      join(DUMPS_DIR, 'curated', 'nic-intel-82576-8086_10c9-sriov-msix.txt'),
    );
    const [dump] = parseDumpFile(text, 'nic-intel-82576-8086_10c9-sriov-msix.txt');
    const pf = functionFromDump(must(dump));
    const status = must(pf.sriovStatus());
    assert.equal(status.enabled, true, 'the dump was taken with VFs enabled');
    const vfs = createVirtualFunctions(pf, { pfAddress: must(dump).address });
    assert.equal(vfs.length, status.numVfs);
    const vf = must(vfs[0]);
    assert.equal(vf.deviceId, 0x10ca);
    assert.equal(vf.address.toString(), '0000:02:10.0', 'RID 0x100 + First VF Offset 0x180');
    assert.equal(vf.device.configRead(0x08, 4) >>> 8, 0x020000);
    assert.equal(vf.device.msixTableSize, pf.msixTableSize);
    assert.equal(vf.device.resetCapabilities().flr, true);
  });

  test('virtualFunctionAddress() stops at the last bus', () => {
    const last = PciAddress.parse('0000:ff:1f.0');
    assert.equal(
      virtualFunctionAddress(last, { firstVfOffset: 0x80, vfStride: 2, vfIndex: 0 }),
      undefined,
    );
    assert.equal(
      virtualFunctionAddress(PF_ADDRESS, {
        firstVfOffset: 0x180,
        vfStride: 2,
        vfIndex: 1,
      })?.toString(),
      '0000:04:10.2',
    );
  });
});
