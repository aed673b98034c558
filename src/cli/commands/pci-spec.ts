// SPDX-License-Identifier: MIT
/**
 * `pciback pci-spec SPEC [--json]`: parse a PCI_SPEC_STRING (xl-pci-configuration(5),
 * peers.md §1.6) and show what it asks for, or say which part is wrong. Parses only;
 * nothing is attached.
 */
import {
  PciSpecError,
  formatBdf,
  formatPciSpec,
  parsePciSpec,
  pciSpecToJson,
  type PciSpec,
} from '../../toolstack/index.js';
import { UserError, printJson, printLines } from '../output.js';
import type { RegisterCommand } from './index.js';

/** Parse `text`, turning a {@link PciSpecError} into the CLI's one-line user error. */
export function checkPciSpec(text: string): PciSpec {
  try {
    return parsePciSpec(text);
  } catch (err) {
    if (err instanceof PciSpecError) throw new UserError(err.message, { cause: err });
    throw err;
  }
}

/**
 * One readable line: the device, the virtual slot, every setting, and the canonical
 * spec.
 *
 * @example
 * describePciSpec(parsePciSpec('36:00.0@14,seize=1'));
 * // 'device 0000:36:00.0, vslot 0x14 (vdevfn 0xa0), permissive=0 msitranslate=0 seize=1
 * //  power_mgmt=0 rdm_policy=strict; canonical "0000:36:00.0@14,seize=1"' (one line)
 */
export function describePciSpec(spec: PciSpec): string {
  const device =
    spec.bdf === null
      ? `device named ${JSON.stringify(spec.name)}`
      : `device ${formatBdf(spec.bdf)}${spec.bdf.func === '*' ? ' (every function)' : ''}`;
  const slot =
    spec.vdevfn === null
      ? 'vslot chosen by the toolstack'
      : `vslot 0x${(spec.vdevfn >> 3).toString(16).padStart(2, '0')} (vdevfn 0x${spec.vdevfn.toString(16)})`;
  const flags = (['permissive', 'msitranslate', 'seize', 'power_mgmt'] as const)
    .map((key) => `${key}=${spec[key] ? 1 : 0}`)
    .join(' ');
  return (
    `${device}, ${slot}, ${flags} rdm_policy=${spec.rdm_policy}; ` +
    `canonical ${JSON.stringify(formatPciSpec(spec))}`
  );
}

/** Registers `pciback pci-spec`. */
export const registerPciSpecCommand: RegisterCommand = (program) => {
  program
    .command('pci-spec')
    .description(
      'Parse a PCI_SPEC_STRING as xl pci-attach takes it, and show what it asks for or why it is wrong',
    )
    .argument('<spec>', 'the spec, e.g. "36:00.0@14,seize=1" or "name=gpu,permissive=1"')
    .option(
      '--json',
      'print {domain, bus, dev, func, vdevfn, permissive, seize, msitranslate, power_mgmt, rdm_policy, name}',
    )
    .action((text: string, options: { json?: boolean }) => {
      const spec = checkPciSpec(text);
      if (options.json === true) printJson(pciSpecToJson(spec));
      else printLines([describePciSpec(spec)]);
    });
};
