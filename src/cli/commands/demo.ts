// SPDX-License-Identifier: MIT
/**
 * `pciback demo`: the config-space engine at work on the catalog devices — what a guest
 * reads, how BAR sizing answers, what the XSA-120 defence keeps in hardware and which
 * writes were refused.
 */
import type { Command } from 'commander';
import { PciAddress } from '../../pci/address.js';
import {
  buildCatalogDevice,
  CATALOG_MODELS,
  type CatalogModel,
} from '../../devices/catalog/index.js';
import { walkCapabilities } from '../../pci/capabilities.js';
import {
  PCI_COMMAND_OFFSET,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
} from '../../abi/pci-regs.js';
import { seizeForGuest } from '../device-setup.js';
import { formatHex } from '../ops-script.js';
import { printJson, printLines } from '../output.js';

/** What the demo found on one function. */
export interface DemoReport {
  readonly address: string;
  readonly model: string;
  readonly ids: string;
  readonly classCode: string;
  readonly bars: readonly { readonly index: number; readonly sizeMask: string }[];
  readonly capabilities: readonly string[];
  readonly xsa120: { readonly guestCommand: string; readonly hardwareCommand: string };
  readonly deniedWrites: number;
}

const MODEL_BUS: Readonly<Record<CatalogModel, number>> = {
  'nic-sriov': 1,
  nvme: 2,
  xhci: 3,
  gpu: 4,
  'root-port': 0,
};

/** Run the demo over every catalog model and function. */
export function runDemo(): DemoReport[] {
  const reports: DemoReport[] = [];
  for (const model of Object.keys(CATALOG_MODELS) as CatalogModel[]) {
    for (const { fn, device } of buildCatalogDevice(model)) {
      const address = new PciAddress(0, MODEL_BUS[model], model === 'root-port' ? 0x1c : 0, fn);
      const { host, space } = seizeForGuest(device, address);
      const ids = space.read(0x00, 4).value;
      const classCode = space.read(0x08, 4).value >>> 8;
      const barCount = host.headerType === 1 ? PCI_TYPE1_BAR_COUNT : PCI_TYPE0_BAR_COUNT;
      const bars = [];
      for (let index = 0; index < barCount; index++) {
        const offset = 0x10 + 4 * index;
        const original = space.read(offset, 4).value;
        space.write(offset, 4, 0xffffffff); // sizing, as every guest OS does
        const sizeMask = space.read(offset, 4).value;
        space.write(offset, 4, original); // restore
        if (sizeMask !== 0) bars.push({ index, sizeMask: formatHex(sizeMask, 4) });
      }
      // XSA-120: the guest enables decode and bus mastering, then writes 0.
      space.write(PCI_COMMAND_OFFSET, 2, 0x0007);
      space.write(PCI_COMMAND_OFFSET, 2, 0x0000);
      const guestCommand = space.read(PCI_COMMAND_OFFSET, 2).value;
      const hardwareCommand = host.readConfig(PCI_COMMAND_OFFSET, 2).value;
      // A hostile write to the status register and the extended space.
      space.write(0x06, 2, 0xffff);
      space.write(0x100, 4, 0);
      reports.push({
        address: address.toString(),
        model,
        ids: `${(ids & 0xffff).toString(16).padStart(4, '0')}:${(ids >>> 16).toString(16).padStart(4, '0')}`,
        classCode: classCode.toString(16).padStart(6, '0'),
        bars,
        capabilities: walkCapabilities(device).map(
          (c) => `0x${c.id.toString(16).padStart(2, '0')}@0x${c.byteOffset.toString(16)}`,
        ),
        xsa120: {
          guestCommand: formatHex(guestCommand, 2),
          hardwareCommand: formatHex(hardwareCommand, 2),
        },
        deniedWrites: space.deniedWrites().reduce((sum, d) => sum + d.count, 0),
      });
    }
  }
  return reports;
}

/** Register `demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'show the config-space engine on the catalog devices (IDs, BAR sizing, XSA-120, audit)',
    )
    .option('--json', 'print the findings as JSON')
    .action((flags: { json?: boolean }) => {
      const reports = runDemo();
      if (flags.json === true) {
        printJson(reports);
        return;
      }
      const lines = ['pciback-ts: the config-space engine on the catalog devices', ''];
      for (const r of reports) {
        lines.push(`${r.address}  ${r.ids}  class ${r.classCode}  (${r.model})`);
        lines.push(
          `  BAR sizing: ${r.bars.map((b) => `BAR${b.index}=${b.sizeMask}`).join(' ') || 'none'}`,
        );
        lines.push(`  capabilities: ${r.capabilities.join(' ') || 'none'}`);
        lines.push(
          `  XSA-120: guest wrote 0x0007 then 0x0000 -> guest reads ${r.xsa120.guestCommand}, hardware keeps ${r.xsa120.hardwareCommand}`,
        );
        lines.push(`  denied guest writes: ${r.deniedWrites}`);
      }
      printLines(lines);
    });
}
