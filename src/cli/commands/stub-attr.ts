// SPDX-License-Identifier: MIT
/**
 * `pciback stub-attr NAME [VALUE]`: pciback's driver attributes (spec §6.5,
 * `/sys/bus/pci/drivers/pciback/NAME`) through `pciback daemon`: `slots`, `new_slot`,
 * `remove_slot`, `permissive`, `allow_interrupt_control`, `quirks`, `irq_handlers`,
 * `irq_handler_state`, and the driver core's `bind`/`unbind`. Our own stub's on the
 * simulator and with `--guests`; the kernel pciback's files on `--platform linux`.
 * Without VALUE it reads (the listing), with VALUE it writes, as `cat` and `echo > ...`
 * would.
 */
import { Argument } from 'commander';
import { ControlClient, defaultControlSocketPath } from '../../daemon/control/index.js';
import { STUB_ATTRIBUTES } from '../../daemon/control/protocol.js';
import { isPcibackError } from '../../errors.js';
import { UserError } from '../output.js';
import type { RegisterCommand } from './index.js';

/** Registers `stub-attr`. */
export const registerStubAttrCommand: RegisterCommand = (program) => {
  program
    .command('stub-attr')
    .description("read or write one of pciback's driver attributes (spec §6.5) on the daemon")
    .addArgument(new Argument('<name>', 'the attribute').choices(STUB_ATTRIBUTES))
    .argument('[value]', 'write this (e.g. a BDF, or DDDD:BB:SS.F-REG:SIZE:MASK for quirks)')
    .option('--control <path>', 'the daemon control socket (default: as pciback daemon)')
    .action(
      async (
        name: (typeof STUB_ATTRIBUTES)[number],
        value: string | undefined,
        flags: { control?: string },
      ) => {
        const path = flags.control ?? defaultControlSocketPath();
        let client: ControlClient;
        try {
          client = await ControlClient.connect(path, { timeoutMs: 10_000 });
        } catch (err) {
          throw new UserError(
            `Cannot reach a pciback daemon at "${path}": start "pciback daemon"`,
            {
              cause: err,
            },
          );
        }
        try {
          const { text } = await client.request('stub.attribute', {
            name,
            ...(value === undefined ? {} : { value }),
          });
          process.stdout.write(text);
        } catch (err) {
          if (isPcibackError(err)) throw new UserError(err.message, { cause: err });
          throw err;
        } finally {
          client.close();
        }
      },
    );
};
