// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_CAP_ID,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_ERR_UNC_COMP_TIME,
  PCI_ERR_UNC_MALF_TLP,
  PCI_ERR_UNC_MASK,
  PCI_ERR_UNCOR_MASK_OFFSET,
  PCI_ERR_UNCOR_STATUS_OFFSET,
  PCI_EXP_DEVSTA_FED,
  PCI_EXP_DEVSTA_NFED,
  PCI_EXP_DEVSTA_OFFSET,
  PCI_EXT_CAP_ID,
} from '../../abi/pci-regs.js';
import { PCI_CHANNEL_IO, PCI_ERS_RESULT, type PciChannelState } from '../../abi/pciif.js';
import { buildCatalogDevice, type CatalogModel } from '../../devices/catalog/index.js';
import { PciAddress } from '../../pci/address.js';
import { findCapability, findExtendedCapability } from '../../pci/capabilities.js';
import {
  ersResultName,
  injectAndRecover,
  mergeErsResult,
  type AerCoreFunction,
  type PciErrorHandlers,
} from './aer-core.js';
import { SimHostPciDevice } from './pci-core.js';

const R = PCI_ERS_RESULT;

function hostDevices(model: CatalogModel, bdf: string): SimHostPciDevice[] {
  const slot = PciAddress.parse(bdf);
  return buildCatalogDevice(model).map(
    ({ fn, device }) => new SimHostPciDevice(device, { address: slot.withFunction(fn), irq: 16 }),
  );
}

function nvme(): SimHostPciDevice {
  const [device] = hostDevices('nvme', '0000:02:00.0');
  assert.ok(device);
  return device;
}

/** A driver that votes from a script and records what it was asked. */
function driver(
  votes: { detected?: number; mmio?: number; slot?: number },
  seen: string[],
  name = 'drv',
): PciErrorHandlers {
  return {
    errorDetected: (state: PciChannelState) => {
      seen.push(`${name}:error_detected(${state})`);
      return votes.detected ?? R.CAN_RECOVER;
    },
    mmioEnabled: () => {
      seen.push(`${name}:mmio_enabled`);
      return votes.mmio ?? R.RECOVERED;
    },
    slotReset: () => {
      seen.push(`${name}:slot_reset`);
      return votes.slot ?? R.RECOVERED;
    },
    resume: () => {
      seen.push(`${name}:resume`);
    },
  };
}

function uncStatus(device: SimHostPciDevice): number {
  const aer = findExtendedCapability(device.hardware, PCI_EXT_CAP_ID.ERR);
  assert.ok(aer !== undefined);
  return device.readConfig(aer + PCI_ERR_UNCOR_STATUS_OFFSET, 4).value;
}

function devsta(device: SimHostPciDevice): number {
  const exp = findCapability(device.hardware, PCI_CAP_ID.EXP);
  assert.ok(exp !== undefined);
  return device.readConfig(exp + PCI_EXP_DEVSTA_OFFSET, 2).value;
}

test('mergeErsResult() folds votes as Linux merge_result', () => {
  assert.equal(mergeErsResult(R.CAN_RECOVER, R.NEED_RESET), R.NEED_RESET);
  assert.equal(mergeErsResult(R.RECOVERED, R.DISCONNECT), R.DISCONNECT);
  assert.equal(mergeErsResult(R.NEED_RESET, R.RECOVERED), R.NEED_RESET);
  assert.equal(mergeErsResult(R.DISCONNECT, R.NEED_RESET), R.NEED_RESET);
  assert.equal(mergeErsResult(R.DISCONNECT, R.RECOVERED), R.DISCONNECT);
  assert.equal(mergeErsResult(R.RECOVERED, R.NONE), R.RECOVERED);
  assert.equal(mergeErsResult(R.RECOVERED, R.NO_AER_DRIVER), R.NO_AER_DRIVER);
  assert.equal(ersResultName(R.CAN_RECOVER), 'CAN_RECOVER');
  assert.equal(ersResultName(42), 'unknown(42)');
});

test('a non-fatal error: error_detected(normal), mmio_enabled, resume, then the status is cleared', async () => {
  const device = nvme();
  const seen: string[] = [];
  const handlers = driver({}, seen);
  let statusDuringRecovery = 0;
  const result = await injectAndRecover({
    device,
    handlers: {
      ...handlers,
      errorDetected: (state) => {
        statusDuringRecovery = uncStatus(device);
        return handlers.errorDetected?.(state) ?? R.NONE;
      },
    },
  });
  assert.deepEqual(seen, [
    `drv:error_detected(${PCI_CHANNEL_IO.normal})`,
    'drv:mmio_enabled',
    'drv:resume',
  ]);
  assert.equal(result.uncorrectable, PCI_ERR_UNC_COMP_TIME);
  assert.equal(statusDuringRecovery & PCI_ERR_UNC_COMP_TIME, PCI_ERR_UNC_COMP_TIME);
  assert.deepEqual(
    result.calls.map((c) => [c.address, c.callback, c.result]),
    [
      ['0000:02:00.0', 'error_detected', R.CAN_RECOVER],
      ['0000:02:00.0', 'mmio_enabled', R.RECOVERED],
      ['0000:02:00.0', 'resume', null],
    ],
  );
  assert.equal(result.channelState, PCI_CHANNEL_IO.normal);
  assert.equal(result.recovered, true);
  assert.equal(result.statusName, 'RECOVERED');
  assert.deepEqual(result.linkReset, []);
  assert.equal(result.statusCleared, true);
  assert.equal(uncStatus(device) & PCI_ERR_UNC_COMP_TIME, 0);
  assert.equal(devsta(device) & PCI_EXP_DEVSTA_NFED, 0);
  assert.equal(device.hardware.resetCounts().bus, 0);
});

test('a non-fatal error voted NEED_RESET goes to slot_reset without a reset by the core', async () => {
  const device = nvme();
  const seen: string[] = [];
  const result = await injectAndRecover({
    device,
    handlers: driver({ detected: R.NEED_RESET }, seen),
  });
  assert.deepEqual(seen, ['drv:error_detected(1)', 'drv:slot_reset', 'drv:resume']);
  assert.equal(result.recovered, true);
  assert.equal(device.hardware.resetCounts().bus, 0);
});

test('a fatal error freezes the channel, resets the link, then slot_reset and resume; state is restored', async () => {
  const device = nvme();
  device.writeConfig(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY);
  const bar0 = device.readConfig(PCI_BASE_ADDRESS_0_OFFSET, 4).value;
  assert.notEqual(bar0 & ~0xf, 0);
  const seen: string[] = [];
  let resetsAtSlotReset = -1;
  const handlers = driver({ detected: R.NEED_RESET }, seen);
  const result = await injectAndRecover(
    {
      device,
      handlers: {
        ...handlers,
        slotReset: () => {
          resetsAtSlotReset = device.hardware.resetCounts().bus;
          return handlers.slotReset?.() ?? R.NONE;
        },
      },
    },
    { fatal: true },
  );
  assert.equal(result.uncorrectable, PCI_ERR_UNC_MALF_TLP);
  assert.equal(result.injected.isFatal, true);
  assert.equal(result.channelState, PCI_CHANNEL_IO.frozen);
  assert.deepEqual(seen, [
    `drv:error_detected(${PCI_CHANNEL_IO.frozen})`,
    'drv:slot_reset',
    'drv:resume',
  ]);
  assert.deepEqual(
    result.calls.map((c) => c.callback),
    ['error_detected', 'slot_reset', 'resume'],
  );
  assert.equal(resetsAtSlotReset, 1, 'the link was reset before slot_reset');
  assert.deepEqual(result.linkReset, ['0000:02:00.0']);
  assert.equal(result.recovered, true);
  // Restored around the reset; the fatal status bit and FED are cleared at the end.
  assert.equal(device.readConfig(PCI_BASE_ADDRESS_0_OFFSET, 4).value, bar0);
  assert.equal(
    device.readConfig(PCI_COMMAND_OFFSET, 2).value & PCI_COMMAND_MEMORY,
    PCI_COMMAND_MEMORY,
  );
  assert.equal(uncStatus(device) & PCI_ERR_UNC_MALF_TLP, 0);
  assert.equal(devsta(device) & PCI_EXP_DEVSTA_FED, 0);
});

test('a fatal error voted CAN_RECOVER goes to mmio_enabled after the link reset', async () => {
  const device = nvme();
  const seen: string[] = [];
  const result = await injectAndRecover({ device, handlers: driver({}, seen) }, { fatal: true });
  assert.deepEqual(seen, ['drv:error_detected(2)', 'drv:mmio_enabled', 'drv:resume']);
  assert.equal(device.hardware.resetCounts().bus, 1);
  assert.equal(result.recovered, true);
});

test('without restoreAfterReset the link reset leaves the function in its reset state, as on Linux', async () => {
  const device = nvme();
  device.writeConfig(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY);
  await injectAndRecover(
    { device, handlers: driver({ detected: R.NEED_RESET }, []) },
    { fatal: true, restoreAfterReset: false },
  );
  assert.equal(device.readConfig(PCI_COMMAND_OFFSET, 2).value & PCI_COMMAND_MEMORY, 0);
  assert.equal(device.readConfig(PCI_BASE_ADDRESS_0_OFFSET, 4).value & ~0xf, 0);
});

test('a function without a driver votes NO_AER_DRIVER: recovery fails and the status stays', async () => {
  const device = nvme();
  const result = await injectAndRecover({ device, handlers: undefined });
  assert.equal(result.status, R.NO_AER_DRIVER);
  assert.equal(result.recovered, false);
  assert.deepEqual(result.calls, []);
  assert.deepEqual(result.withoutHandler, ['0000:02:00.0']);
  assert.equal(result.statusCleared, false);
  assert.equal(uncStatus(device) & PCI_ERR_UNC_COMP_TIME, PCI_ERR_UNC_COMP_TIME);
});

test('a DISCONNECT vote fails the recovery before mmio_enabled and resume', async () => {
  const seen: string[] = [];
  const result = await injectAndRecover({
    device: nvme(),
    handlers: driver({ detected: R.DISCONNECT }, seen),
  });
  assert.deepEqual(seen, ['drv:error_detected(1)']);
  assert.equal(result.statusName, 'DISCONNECT');
  assert.equal(result.recovered, false);
});

test('every function below the bridge is called in address order, and one without a driver fails them all', async () => {
  const [vga, audio] = hostDevices('gpu', '0000:04:00.0');
  assert.ok(vga && audio);
  const seen: string[] = [];
  const both: AerCoreFunction[] = [
    { device: audio, handlers: driver({ mmio: R.RECOVERED }, seen, 'audio') },
    { device: vga, handlers: driver({}, seen, 'vga') },
  ];
  const ok = await injectAndRecover(both[1] as AerCoreFunction, { affected: both });
  assert.equal(ok.recovered, true);
  assert.deepEqual(seen, [
    'vga:error_detected(1)',
    'audio:error_detected(1)',
    'vga:mmio_enabled',
    'audio:mmio_enabled',
    'vga:resume',
    'audio:resume',
  ]);

  const seen2: string[] = [];
  const vgaDriver = { device: vga, handlers: driver({}, seen2, 'vga') };
  const orphan = await injectAndRecover(vgaDriver, {
    affected: [vgaDriver, { device: audio, handlers: undefined }],
  });
  assert.equal(orphan.status, R.NO_AER_DRIVER);
  assert.deepEqual(orphan.withoutHandler, ['0000:04:00.1']);
  assert.deepEqual(seen2, ['vga:error_detected(1)']);

  // The detecting function must be one of the functions below the bridge.
  await assert.rejects(
    injectAndRecover(
      { device: vga, handlers: undefined },
      { affected: [both[0] as AerCoreFunction] },
    ),
    RangeError,
  );
});

test('a masked error is not detected and nothing is called', async () => {
  const device = nvme();
  const aer = findExtendedCapability(device.hardware, PCI_EXT_CAP_ID.ERR);
  assert.ok(aer !== undefined);
  device.writeConfig(aer + PCI_ERR_UNCOR_MASK_OFFSET, 4, PCI_ERR_UNC_MASK);
  const seen: string[] = [];
  const result = await injectAndRecover({ device, handlers: driver({}, seen) });
  assert.equal(result.detected, false);
  assert.equal(result.recovered, false);
  assert.deepEqual(seen, []);
});

test('a throwing handler votes NONE, which merge_result ignores', async () => {
  const result = await injectAndRecover({
    device: nvme(),
    handlers: {
      errorDetected: () => {
        throw new Error('driver bug');
      },
    },
  });
  assert.deepEqual(result.calls, [
    { address: '0000:02:00.0', callback: 'error_detected', result: R.NONE },
  ]);
  // CAN_RECOVER stays, becomes RECOVERED with no mmio_enabled handler: recovered.
  assert.equal(result.recovered, true);
});
