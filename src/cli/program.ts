// SPDX-License-Identifier: MIT
/** The `pciback` command tree; `main.ts` runs it, tests drive it in-process. */
import { Command, CommanderError } from 'commander';
import { isPcibackError } from '../errors.js';
import { EXIT_USAGE, EXIT_USER_ERROR } from './output.js';
import { commands } from './commands/index.js';

/** Build the command tree; exported so tests can drive it in-process. */
export function buildProgram(): Command {
  const program = new Command('pciback')
    .description(
      'Xen PCI passthrough backend (xen-pciback) in userspace, with a simulated Xen host',
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of commands) register(program);
  program.commands.forEach((c) => c.exitOverride());
  return program;
}

/** Run the CLI with `argv` (without node and script) and return the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version arrive here with exit code 0.
      if (err.exitCode === 0) return 0;
      return EXIT_USAGE;
    }
    if (isPcibackError(err) || err instanceof SyntaxError || err instanceof RangeError) {
      process.stderr.write(`pciback: ${err.message}\n`);
      return EXIT_USER_ERROR;
    }
    throw err;
  }
}
