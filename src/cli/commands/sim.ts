// SPDX-License-Identifier: MIT
/** `pciback sim`: boot the simulated host, run the guests, print what each saw. */
import type { Command } from 'commander';
import { DEFAULT_MACHINE, loadMachineFile } from '../../daemon/machine-file.js';
import { runSimMachine, type SimRunResult } from '../../daemon/sim-machine.js';
import { startLiveSim, type LiveSim } from '../../daemon/sim-live.js';
import type { Machine } from '../../daemon/machine-file.js';
import { defaultXenstoredSocketPath } from './xenstored.js';
import { printJson, printLines, UserError } from '../output.js';
import { isPcibackError } from '../../errors.js';

interface SimFlags {
  readonly machine?: string;
  readonly json?: boolean;
  readonly opTimeoutMs?: string;
  readonly keepRunning?: boolean;
  readonly socket?: string;
}

/** `--keep-running`: serve the store, print what happens, stop on SIGINT/SIGTERM. */
async function runLive(machine: Machine, flags: SimFlags, opTimeoutMs: number): Promise<void> {
  let live: LiveSim;
  try {
    live = await startLiveSim(machine, {
      socketPath: flags.socket ?? defaultXenstoredSocketPath(),
      opTimeoutMs,
      onLine: (line) => {
        printLines([line]);
      },
    });
  } catch (err) {
    if (isPcibackError(err)) throw new UserError(err.message, { cause: err });
    throw err;
  }
  printLines([
    `pciback-ts simulated host (topology: ${live.host.topology}) is running`,
    `xenstored socket: ${live.socketPath}`,
    `  XENSTORED_PATH=${live.socketPath} xenstore-ls -f /local/domain/0/backend/pci`,
    '  pciback list DOMAIN | pciback attach DOMAIN SPEC | pciback detach DOMAIN BDF',
    'Ctrl-C stops it.',
  ]);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await live.close();
}

function reportLines(result: SimRunResult): string[] {
  const lines = [`pciback-ts simulated host (topology: ${result.topology})`, ''];
  for (const guest of result.guests) {
    lines.push(
      `== ${guest.name} (domid ${guest.domid}, program ${guest.program}): ${guest.status}`,
    );
    for (const d of guest.devices) lines.push(`   attached ${d.real} as ${d.guest}`);
    if (guest.error !== undefined) lines.push(`   error: ${guest.error.split('\n')[0] ?? ''}`);
    const report = guest.report as { summary?: string; lines?: readonly string[] } | undefined;
    if (report?.summary !== undefined) lines.push(`   ${report.summary}`);
    for (const line of report?.lines ?? []) lines.push(`   | ${line}`);
    if (guest.channel !== undefined) {
      const e = guest.events;
      lines.push(
        `   backend: ${guest.channel.ops} ops in ${guest.channel.workerRuns} worker runs, ` +
          `${guest.channel.spuriousKicks} spurious kicks; events ${e?.events ?? 0}, ` +
          `spurious_events ${e?.spuriousEvents ?? 0}, jiffies_eoi_delayed ${e?.jiffiesEoiDelayed ?? 0}`,
      );
    }
    lines.push('');
  }
  lines.push('== devices');
  for (const d of result.devices) {
    if (!d.seized) {
      lines.push(`   ${d.address}  (not seized; driver ${d.driver ?? 'none'})`);
      continue;
    }
    const b = d.backend;
    const irq = d.interrupts as
      | {
          msi?: { raised?: number; delivered?: number };
          msix?: { raised?: number; delivered?: number };
        }
      | undefined;
    const ops = b === undefined ? 0 : Object.values(b.opsByCmd).reduce((s, n) => s + n, 0);
    lines.push(
      `   ${d.address}  ops ${ops}, denied writes ${b?.deniedWrites ?? 0}, ` +
        `MSI ${irq?.msi?.delivered ?? 0}/${irq?.msi?.raised ?? 0} delivered, ` +
        `MSI-X ${irq?.msix?.delivered ?? 0}/${irq?.msix?.raised ?? 0} delivered, INTx handled ${b?.handled ?? 0}`,
    );
  }
  return lines;
}

/** Register `sim`. */
export function registerSimCommand(program: Command): void {
  program
    .command('sim')
    .description('boot the simulated Xen host: devices, pciback, guests running pcifront programs')
    .option('--machine <file>', 'machine file (JSON); the built-in machine when omitted')
    .option('--json', 'print the run as a JSON document')
    .option('--op-timeout-ms <ms>', "pcifront's op timeout", '2000')
    .option(
      '--keep-running',
      'keep the guests running and serve xenstore on a socket for attach/detach/list (Ctrl-C stops)',
    )
    .option(
      '--socket <path>',
      'with --keep-running: the xenstored socket (default: as pciback xenstored)',
    )
    .action(async (flags: SimFlags) => {
      let machine = DEFAULT_MACHINE;
      try {
        if (flags.machine !== undefined) machine = loadMachineFile(flags.machine);
      } catch (err) {
        if (isPcibackError(err)) throw new UserError(err.message, { cause: err });
        throw err;
      }
      const opTimeoutMs = Number(flags.opTimeoutMs ?? 2000);
      if (!(opTimeoutMs > 0))
        throw new UserError(`Invalid --op-timeout-ms "${flags.opTimeoutMs ?? ''}"`);
      if (flags.keepRunning === true) {
        await runLive(machine, flags, opTimeoutMs);
        return;
      }
      let result: SimRunResult;
      try {
        result = await runSimMachine(machine, { opTimeoutMs });
      } catch (err) {
        if (isPcibackError(err)) throw new UserError(err.message, { cause: err });
        throw err;
      }
      if (flags.json === true) printJson(result);
      else printLines(reportLines(result));
    });
}
