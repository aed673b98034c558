// SPDX-License-Identifier: MIT
/**
 * `pciback attach DOMAIN SPEC`, `pciback detach DOMAIN BDF`, `pciback list DOMAIN`: xl's
 * `pci-attach`, `pci-detach` and `pci-list` (peers.md §1.3) against a xenstore daemon:
 * the one `pciback sim --keep-running` serves, `pciback xenstored`, or Xen's own.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { PcibackError } from '../../errors.js';
import {
  attachPci,
  detachPci,
  formatPciList,
  listPci,
  resolveDomain,
} from '../../toolstack/index.js';
import { XsClient, isXsError } from '../../xenstore/client/index.js';
import {
  XENSTORED_DEFAULT_SOCKET_PATH,
  connectXenstoreUnixSocket,
} from '../../xenstore/transport/unix-socket-client.js';
import { UserError, printLines } from '../output.js';
import { checkPciSpec } from './pci-spec.js';
import { defaultXenstoredSocketPath } from './xenstored.js';
import type { RegisterCommand } from './index.js';

interface XenstoreFlags {
  readonly socket?: string;
  readonly timeoutMs?: string;
}

/**
 * The daemon to talk to: `--socket`, else `$XENSTORED_PATH` (as libxenstore), else the
 * socket of a running `pciback sim --keep-running`/`pciback xenstored`, else Xen's own.
 */
export function chooseXenstoreSocket(flag: string | undefined): string {
  if (flag !== undefined && flag !== '') return flag;
  const env = process.env.XENSTORED_PATH;
  if (env !== undefined && env !== '') return env;
  const ours = defaultXenstoredSocketPath();
  return existsSync(ours) ? ours : XENSTORED_DEFAULT_SOCKET_PATH;
}

function parseTimeout(text: string | undefined): number {
  const ms = Number(text ?? 10_000);
  if (!Number.isInteger(ms) || ms <= 0) {
    throw new UserError(`Invalid --timeout-ms "${text ?? ''}": give a positive integer`);
  }
  return ms;
}

/** Run `work` with a client on the chosen daemon; turn xenstore errors into user errors. */
async function withXenstore<T>(
  flags: XenstoreFlags,
  work: (client: XsClient) => Promise<T>,
): Promise<T> {
  const path = chooseXenstoreSocket(flags.socket);
  let client: XsClient;
  try {
    client = new XsClient(await connectXenstoreUnixSocket(path));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new UserError(
      `Cannot reach xenstored at "${path}": ${why} (start "pciback sim --keep-running" or give --socket)`,
      { cause: err },
    );
  }
  try {
    return await work(client);
  } catch (err) {
    if (isXsError(err)) throw new UserError(err.message, { cause: err });
    if (err instanceof PcibackError) throw new UserError(err.message, { cause: err });
    throw err;
  } finally {
    client.close();
  }
}

function socketOptions(command: Command): Command {
  return command
    .option('--socket <path>', "xenstored socket (default: $XENSTORED_PATH, then ours, then Xen's)")
    .option('--timeout-ms <ms>', 'how long to wait for the backend to be Connected', '10000');
}

/** Registers `attach`, `detach` and `list`. */
export const registerXlPciCommands: RegisterCommand = (program) => {
  socketOptions(
    program
      .command('attach')
      .description('hot-plug a PCI device into a running guest (xl pci-attach)')
      .argument('<domain>', 'the guest: a name or a domid')
      .argument('<spec>', 'PCI_SPEC_STRING, e.g. "03:00.0", "03:00.0@08,permissive=1"'),
  ).action(async (domain: string, specText: string, flags: XenstoreFlags) => {
    const spec = checkPciSpec(specText);
    const timeoutMs = parseTimeout(flags.timeoutMs);
    await withXenstore(flags, async (client) => {
      const guest = await resolveDomain(client, domain);
      await attachPci(client, {
        domid: guest.domid,
        domainName: guest.name,
        spec,
        timeoutMs,
        confirm: true,
      });
    });
  });

  socketOptions(
    program
      .command('detach')
      .description('hot-unplug a PCI device from a guest (xl pci-detach)')
      .argument('<domain>', 'the guest: a name or a domid')
      .argument('<bdf>', 'the host device, [DDDD:]BB:DD.F'),
  ).action(async (domain: string, bdf: string, flags: XenstoreFlags) => {
    const timeoutMs = parseTimeout(flags.timeoutMs);
    await withXenstore(flags, async (client) => {
      const guest = await resolveDomain(client, domain);
      await detachPci(client, { domid: guest.domid, bdf, timeoutMs });
    });
  });

  socketOptions(
    program
      .command('list')
      .description("list a guest's PCI devices (xl pci-list)")
      .argument('<domain>', 'the guest: a name or a domid'),
  ).action(async (domain: string, flags: XenstoreFlags) => {
    const text = await withXenstore(flags, async (client) => {
      const guest = await resolveDomain(client, domain);
      return formatPciList(await listPci(client, guest.domid));
    });
    if (text !== '') printLines([text.replace(/\n$/, '')]);
  });
};
