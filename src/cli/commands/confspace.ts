// SPDX-License-Identifier: MIT
/** `pciback confspace`: run config ops against one device behind the virtualizer. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { addDeviceOptions, setUpDevice, type DeviceFlags } from '../device-setup.js';
import { formatHex, formatOffset, parseOpsScript, type ScriptOp } from '../ops-script.js';
import { printJson, printLines, UserError } from '../output.js';
import type { DeviceUnderTest } from '../device-setup.js';
import type { ConfigAccessSize } from '../../platform/types.js';

interface ConfspaceFlags extends DeviceFlags {
  readonly ops?: string;
  readonly json?: boolean;
}

/** One op's outcome, the `--json` element. */
export interface OpOutcome {
  readonly op: ScriptOp['op'];
  readonly offset: number;
  readonly size: number;
  readonly value?: number;
  readonly result: 'ok' | 'err';
  readonly err: number;
}

function isAccessSize(size: number): size is ConfigAccessSize {
  return size === 1 || size === 2 || size === 4;
}

/** Run one op the way the backend would (guest ops) or the host would (`hw-read`). */
export function runOp(dut: DeviceUnderTest, op: ScriptOp): OpOutcome {
  const base = { op: op.op, offset: op.offset, size: op.size };
  switch (op.op) {
    case 'read': {
      const { value, err } = dut.space.read(op.offset, op.size);
      return { ...base, value, result: err === 0 ? 'ok' : 'err', err };
    }
    case 'write': {
      const err = dut.space.write(op.offset, op.size, op.value);
      return { ...base, value: op.value, result: err === 0 ? 'ok' : 'err', err };
    }
    case 'hw-read': {
      // The platform accessor judges the size and range; an invalid size is refused
      // as Linux's accessors would refuse it (PCIBIOS_BAD_REGISTER_NUMBER -> -2).
      if (!isAccessSize(op.size)) return { ...base, value: 0, result: 'err', err: -2 };
      const { value, err } = dut.host.readConfig(op.offset, op.size);
      return { ...base, value, result: err === 0 ? 'ok' : 'err', err };
    }
  }
}

/** The text line of an outcome: `read 0x10 4 -> 0xfebf0000 ok`. */
export function formatOutcome(o: OpOutcome): string {
  const status = o.result === 'ok' ? 'ok' : `err ${o.err}`;
  const head = `${o.op} ${formatOffset(o.offset)} ${o.size}`;
  if (o.op === 'write') return `${head} ${formatHex(o.value ?? 0, o.size)} -> ${status}`;
  return `${head} -> ${formatHex(o.value ?? 0, o.size)} ${status}`;
}

function readOps(source: string): string {
  try {
    return readFileSync(source === '-' ? 0 : source, 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read ops "${source}": ${(err as Error).message}`, { cause: err });
  }
}

/** Register `confspace`. */
export function registerConfspaceCommand(program: Command): void {
  const command = program
    .command('confspace')
    .description(
      'run config-space ops (read/write/hw-read) against one device behind the pciback virtualizer',
    )
    .option(
      '--ops <file>',
      'ops file, or - for stdin (lines: read OFF SIZE | write OFF SIZE VALUE | hw-read OFF SIZE)',
      '-',
    )
    .option('--json', 'print an array of {op, offset, size, value, result, err}');
  addDeviceOptions(command).action((flags: ConfspaceFlags) => {
    const dut = setUpDevice(flags);
    let ops: ScriptOp[];
    try {
      ops = parseOpsScript(readOps(flags.ops ?? '-'));
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError((err as Error).message, { cause: err });
    }
    const outcomes = ops.map((op) => runOp(dut, op));
    if (flags.json === true) printJson(outcomes);
    else printLines(outcomes.map(formatOutcome));
  });
}
