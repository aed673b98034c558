// SPDX-License-Identifier: MIT
/**
 * `pciback aer-inject BDF [--fatal]`: on the simulator served by `pciback daemon`,
 * inject an uncorrectable PCIe error into a device and let dom0's AER core recover it
 * through pciback and the owning guest's pcifront (spec §6.6). A guest that cannot
 * recover gets `aerState` = `aerfail` and the toolstack destroys it.
 */
import { ControlClient, defaultControlSocketPath } from '../../daemon/control/index.js';
import { isPcibackError } from '../../errors.js';
import { UserError, printJson, printLines } from '../output.js';
import type { RegisterCommand } from './index.js';

interface AerInjectFlags {
  readonly fatal?: boolean;
  readonly control?: string;
  readonly json?: boolean;
}

/** Registers `aer-inject`. */
export const registerAerInjectCommand: RegisterCommand = (program) => {
  program
    .command('aer-inject')
    .description('simulator: inject an uncorrectable PCIe error into a device and run AER recovery')
    .argument('<bdf>', 'the device, [DDDD:]BB:DD.F')
    .option('--fatal', 'a fatal error (link reset, slot_reset) instead of a non-fatal one')
    .option('--control <path>', 'the daemon control socket (default: as pciback daemon)')
    .option('--json', 'print the recovery as JSON')
    .action(async (bdf: string, flags: AerInjectFlags) => {
      const path = flags.control ?? defaultControlSocketPath();
      let client: ControlClient;
      try {
        client = await ControlClient.connect(path, { timeoutMs: 10_000 });
      } catch (err) {
        throw new UserError(
          `Cannot reach a pciback daemon at "${path}": start "pciback daemon --platform sim"`,
          { cause: err },
        );
      }
      try {
        const result = await client.request('aer.inject', { bdf, fatal: flags.fatal === true });
        if (flags.json === true) {
          printJson(result);
          return;
        }
        printLines([
          `${result.address}: ${result.fatal ? 'fatal' : 'non-fatal'} error, ${result.detected ? `recovery ${result.status}` : 'masked: nothing detected'}`,
          ...result.calls.map((c) => `  ${c}`),
          ...result.killedDomains.map(
            (d) => `  domain ${d}: aerState = aerfail, destroyed by the toolstack`,
          ),
        ]);
      } catch (err) {
        if (isPcibackError(err)) throw new UserError(err.message, { cause: err });
        throw err;
      } finally {
        client.close();
      }
    });
};
