// SPDX-License-Identifier: MIT
/**
 * `pciback abi [--json]`: our wire layouts and constants. With `--json` the output has the
 * shape of `oracles/xen-abi.json`, so the two can be diffed mechanically.
 */
import { abiReport, type AbiFieldLayout, type AbiReportValue } from '../../abi/index.js';
import { printJson, printLines } from '../output.js';
import type { RegisterCommand } from './index.js';

function isField(value: AbiReportValue): value is AbiFieldLayout {
  return typeof value === 'object';
}

const INNER_STRUCTS: Readonly<Record<string, string>> = {
  'xenstore.h / xenstore_lib.h': 'struct xs_permissions',
};

/** The report as aligned text: one block per struct or group of constants. */
export function formatAbiTable(): string[] {
  const lines: string[] = [];
  for (const [title, section] of Object.entries(abiReport())) {
    const entries = Object.entries(section);
    const width = Math.max(24, ...entries.map(([name]) => name.length)) + 2;
    const fields = entries.filter((e): e is [string, AbiFieldLayout] => isField(e[1]));
    const scalars = entries.filter(
      (e): e is [string, number | string] => !isField(e[1]) && !e[0].startsWith('__'),
    );
    const size = section.__sizeof__;
    const align = section.__alignof__;
    let sizes = '';
    if (typeof size === 'number') {
      sizes = `size ${size}`;
      if (typeof align === 'number') sizes += `, align ${align}`;
    }
    // A section that mixes constants with a struct names the struct on its own line.
    const inner = INNER_STRUCTS[title];
    if (lines.length > 0) lines.push('');
    lines.push(inner === undefined && sizes !== '' ? `${title}: ${sizes}` : title);
    if (inner !== undefined && sizes !== '') lines.push(`  ${inner}: ${sizes}`);
    if (fields.length > 0) {
      lines.push(`  ${'field'.padEnd(width)}${'offset'.padStart(8)}${'size'.padStart(8)}`);
      for (const [name, f] of fields) {
        lines.push(
          `  ${name.padEnd(width)}${String(f.offset).padStart(8)}${String(f.size).padStart(8)}`,
        );
      }
    }
    if (scalars.length > 0 && fields.length > 0) lines.push('');
    for (const [name, value] of scalars) {
      const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
      lines.push(`  ${name.padEnd(width)}${shown}`);
    }
  }
  return lines;
}

/** Registers `pciback abi`. */
export const registerAbiCommand: RegisterCommand = (program) => {
  program
    .command('abi')
    .description(
      'Print the wire layouts and constants of pciif.h, xs_wire.h and xenbus.h as this program uses them',
    )
    .option('--json', 'print JSON in the shape of oracles/xen-abi.json (for diffing)')
    .action((options: { json?: boolean }) => {
      if (options.json === true) printJson(abiReport());
      else printLines(formatAbiTable());
    });
};
