// SPDX-License-Identifier: MIT
/** `pciback guest-view`: the whole config space as the guest reads it, as lspci text. */
import type { Command } from 'commander';
import { addDeviceOptions, setUpDevice, type DeviceFlags } from '../device-setup.js';
import { formatLspciDump } from '../../pci/dump.js';
import type { VirtualConfigSpace } from '../../pciback/confspace/index.js';

/**
 * Read every dword the guest can see. A dword the virtualizer refuses reads as what
 * the guest would get back (the value is returned even with an error).
 */
export function readGuestImage(space: VirtualConfigSpace, sizeBytes: number): Uint8Array {
  const image = new Uint8Array(sizeBytes);
  const view = new DataView(image.buffer);
  for (let offset = 0; offset < sizeBytes; offset += 4) {
    view.setUint32(offset, space.read(offset, 4).value, true);
  }
  return image;
}

/** Register `guest-view`. */
export function registerGuestViewCommand(program: Command): void {
  const command = program
    .command('guest-view')
    .description(
      'print what a guest reads at every offset, in lspci -xxxx format (decode with lspci -vvv -F FILE)',
    );
  addDeviceOptions(command).action((flags: DeviceFlags) => {
    const dut = setUpDevice(flags);
    const config = readGuestImage(dut.space, dut.host.configSizeBytes);
    process.stdout.write(
      formatLspciDump({
        address: dut.address,
        hasDomain: dut.hasDomain,
        description: dut.description,
        config,
        barSizes: new Map(),
      }),
    );
  });
}
