// SPDX-License-Identifier: MIT
/**
 * `pciback assignable-add [-n NAME] [--force] BDF`, `pciback assignable-remove [-r]
 * BDF|NAME`, `pciback assignable-list [-n] [--verbose]`: xl's `pci-assignable-*`
 * (peers.md §1.1, same output), carried out by a running `pciback daemon` through its
 * control socket, or, with `--platform linux` and no daemon, directly on sysfs.
 *
 * Which one: `--control PATH` always means that daemon. Otherwise the daemon on the
 * default socket is used when it answers; when none does, `--platform linux` acts
 * directly (root needed when the sysfs root is /sys) and the default platform, sim,
 * fails (only a daemon serves the simulator).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { isPcibackError } from '../../errors.js';
import {
  AssignableService,
  formatAssignableList,
  type AddAssignableParams,
  type AddAssignableResult,
  type AssignableRow,
  type ListAssignableParams,
  type RemoveAssignableParams,
  type RemoveAssignableResult,
} from '../../daemon/assignable-service.js';
import {
  CONTROL_DEFAULT_TIMEOUT_MS,
  ControlClient,
  defaultControlSocketPath,
} from '../../daemon/control/index.js';
import {
  PLATFORM_NAMES,
  checkSysfsWriteAccess,
  openPlatformSession,
} from '../../daemon/platform-session.js';
import { SILENT_LOGGER, type Logger } from '../../platform/types.js';
import { AssignableDb, defaultStateDir, reconcile } from '../../state/index.js';
import { UserError, printJson } from '../output.js';
import type { RegisterCommand } from './index.js';

interface CommonFlags {
  readonly platform?: string;
  readonly control?: string;
  readonly stateDir?: string;
  readonly sysfsRoot?: string;
  readonly fakeSysfs?: string;
  readonly fakeSysfsState?: string;
  readonly timeoutMs?: string;
  readonly json?: boolean;
}

interface AddFlags extends CommonFlags {
  readonly name?: string;
  readonly force?: boolean;
}

interface RemoveFlags extends CommonFlags {
  readonly rebind?: boolean;
}

interface ListFlags extends CommonFlags {
  readonly names?: boolean;
  readonly verbose?: boolean;
}

/** The three operations, wherever they run. */
interface AssignableOps {
  add(bdf: string, params: AddAssignableParams): Promise<AddAssignableResult>;
  remove(ref: string, params: RemoveAssignableParams): Promise<RemoveAssignableResult>;
  list(params: ListAssignableParams): Promise<AssignableRow[]>;
}

function parseTimeout(text: string | undefined): number {
  const ms = Number(text ?? CONTROL_DEFAULT_TIMEOUT_MS);
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new UserError(`Invalid --timeout-ms "${text ?? ''}": give a positive integer`);
  }
  return ms;
}

function warn(lines: readonly string[]): void {
  for (const line of lines) process.stderr.write(`pciback: warning: ${line}\n`);
}

/** Warnings on stderr, as xl prints libxl's. */
const stderrWarnings: Logger = {
  ...SILENT_LOGGER,
  warn: (_obj, msg) => {
    if (msg !== undefined) warn([msg]);
  },
};

/** The daemon at `path`, checked against what the flags ask for. */
async function remoteOps(client: ControlClient, flags: CommonFlags): Promise<AssignableOps> {
  const status = await client.request('status', {});
  const mismatch = (what: string, want: string, have: string | null): UserError =>
    new UserError(
      `Cannot use the pciback daemon at "${client.path}" with ${what} "${want}": it serves ${have === null ? 'none' : `"${have}"`}`,
    );
  if (flags.platform !== undefined && flags.platform !== status.platform) {
    throw mismatch('--platform', flags.platform, status.platform);
  }
  if (flags.stateDir !== undefined && resolve(flags.stateDir) !== status.stateDir) {
    throw mismatch('--state-dir', resolve(flags.stateDir), status.stateDir);
  }
  if (flags.sysfsRoot !== undefined && resolve(flags.sysfsRoot) !== status.sysfsRoot) {
    throw mismatch('--sysfs-root', resolve(flags.sysfsRoot), status.sysfsRoot);
  }
  if (flags.fakeSysfs !== undefined && resolve(flags.fakeSysfs) !== status.fakeSysfs) {
    throw mismatch('--fake-sysfs', resolve(flags.fakeSysfs), status.fakeSysfs);
  }
  return {
    add: (bdf, params) => client.request('assignable.add', { bdf, ...params }),
    remove: (ref, params) => client.request('assignable.remove', { ref, ...params }),
    list: (params) => client.request('assignable.list', params),
  };
}

/** Without a daemon: the same service in this process, on the linux platform. */
async function directOps<T>(
  flags: CommonFlags,
  writes: boolean,
  work: (ops: AssignableOps) => Promise<T>,
): Promise<T> {
  if (writes && flags.fakeSysfs === undefined) checkSysfsWriteAccess(flags.sysfsRoot ?? '/sys');
  const db = AssignableDb.open(flags.stateDir ?? defaultStateDir(process.env));
  try {
    const session = await openPlatformSession('linux', {
      db,
      sysfsRoot: flags.sysfsRoot,
      fakeSysfs: flags.fakeSysfs,
      fakeSysfsState: flags.fakeSysfsState,
      readOnly: !writes,
      logger: SILENT_LOGGER,
    });
    try {
      // What the daemon does at start, so the database is true before it is used.
      reconcile(db, session.host, {
        stubDriver: session.stubDriver,
        liveDomains: () => session.liveDomains(),
        logger: stderrWarnings,
      });
      const service = new AssignableService({
        host: session.host,
        db,
        stubDriver: session.stubDriver,
        attachedTo: (address) => session.attachedTo(address),
        ...(session.forgetStubSlot === undefined
          ? {}
          : { forgetStubSlot: (address) => session.forgetStubSlot?.(address) }),
      });
      return await work({
        add: (bdf, params) => Promise.resolve(service.add(bdf, params)),
        remove: (ref, params) => Promise.resolve(service.remove(ref, params)),
        list: (params) => Promise.resolve(service.list(params)),
      });
    } finally {
      await session.close();
    }
  } finally {
    db.close();
  }
}

/** Run `work` against the daemon or directly (see the file comment); errors become user errors. */
async function withAssignable<T>(
  flags: CommonFlags,
  writes: boolean,
  work: (ops: AssignableOps) => Promise<T>,
): Promise<T> {
  const timeoutMs = parseTimeout(flags.timeoutMs);
  const path = flags.control ?? defaultControlSocketPath();
  try {
    let client: ControlClient | undefined;
    if (flags.control !== undefined || existsSync(path)) {
      try {
        client = await ControlClient.connect(path, { timeoutMs });
      } catch (err) {
        // An explicit socket must answer; the default one is only tried.
        if (flags.control !== undefined) throw err;
      }
    }
    if (client !== undefined) {
      try {
        return await work(await remoteOps(client, flags));
      } finally {
        client.close();
      }
    }
    if (flags.platform !== 'linux') {
      const why = existsSync(path) ? 'nothing answers there' : 'no such socket';
      throw new UserError(
        `Cannot reach a pciback daemon at "${path}" (${why}): start "pciback daemon" (the ${flags.platform ?? 'sim'} platform is served only by a daemon), or give --platform linux to act on sysfs directly`,
      );
    }
    return await directOps(flags, writes, work);
  } catch (err) {
    if (err instanceof UserError) throw err;
    if (isPcibackError(err)) throw new UserError(err.message, { cause: err });
    throw err;
  }
}

function commonOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--platform <name>',
        'the host platform (default: the daemon\'s; without a daemon "linux" acts on sysfs directly)',
      ).choices(PLATFORM_NAMES),
    )
    .option(
      '--control <path>',
      "the daemon's control socket (default: $XDG_RUNTIME_DIR/pciback/control.sock)",
    )
    .option(
      '--state-dir <dir>',
      "state directory without a daemon (with one: must be the daemon's)",
    )
    .option('--sysfs-root <dir>', 'linux without a daemon: the sysfs mount (default: /sys)')
    .option(
      '--fake-sysfs <file>',
      'linux without a daemon: a fake host (see "pciback daemon --help")',
    )
    .option('--fake-sysfs-state <file>', "linux without a daemon: the fake host's saved bindings")
    .option(
      '--timeout-ms <ms>',
      'how long to wait for the daemon',
      String(CONTROL_DEFAULT_TIMEOUT_MS),
    )
    .option('--json', 'print the result as JSON');
}

/** Registers `assignable-add`, `assignable-remove` and `assignable-list`. */
export const registerAssignableCommands: RegisterCommand = (program) => {
  commonOptions(
    program
      .command('assignable-add')
      .description('make a device assignable: move it to the stub driver (xl pci-assignable-add)')
      .argument('<bdf>', 'the device, [DDDD:]BB:DD.F')
      .option('-n, --name <name>', 'an alias (1-64 printable characters, no spaces)')
      .option(
        '--force',
        'take the device even while dom0 uses it (an interface up, a disk mounted or held; without those to look at: bus mastering on)',
      ),
  ).action(async (bdf: string, flags: AddFlags) => {
    const result = await withAssignable(flags, true, (ops) =>
      ops.add(bdf, { name: flags.name ?? null, force: flags.force === true }),
    );
    warn(result.warnings);
    if (flags.json === true) printJson(result);
  });

  commonOptions(
    program
      .command('assignable-remove')
      .description('give an assignable device back to dom0 (xl pci-assignable-remove)')
      .argument('<device>', 'a name given with -n, or the device, [DDDD:]BB:DD.F')
      .option('-r, --rebind', 'bind the driver it had before it was made assignable'),
  ).action(async (ref: string, flags: RemoveFlags) => {
    const result = await withAssignable(flags, true, (ops) =>
      ops.remove(ref, { rebind: flags.rebind === true }),
    );
    warn(result.warnings);
    if (flags.json === true) printJson(result);
  });

  commonOptions(
    program
      .command('assignable-list')
      .description('list the assignable devices (xl pci-assignable-list)')
      .option('-n, --names', 'show the names given with assignable-add -n')
      .option('--verbose', 'also the original driver, status, policy and reset method'),
  ).action(async (flags: ListFlags) => {
    const rows = await withAssignable(flags, false, (ops) =>
      ops.list({ verbose: flags.verbose === true || flags.json === true }),
    );
    if (flags.json === true) {
      printJson(rows);
      return;
    }
    process.stdout.write(
      formatAssignableList(rows, { names: flags.names === true, verbose: flags.verbose === true }),
    );
  });
};
