// SPDX-License-Identifier: MIT
/**
 * `pciback daemon`: the long-running backend for the assignable-device operations (see
 * `daemon/daemon.ts`). Logs go to stderr as JSON lines (pino); the one line on stdout
 * says where it listens. SIGTERM and SIGINT stop it cleanly: the socket is removed, the
 * database closed, and the exit code is 0.
 */
import { Option } from 'commander';
import { pino } from 'pino';
import { startDaemon } from '../../daemon/daemon.js';
import { defaultControlSocketPath } from '../../daemon/control/index.js';
import { PLATFORM_NAMES } from '../../daemon/platform-session.js';
import type { Logger } from '../../platform/types.js';
import { defaultStateDir } from '../../state/index.js';
import { printLines, UserError } from '../output.js';
import { loadMachineFile } from '../../daemon/machine-file.js';
import { registerSimPlatform } from '../../daemon/sim-session.js';
import { registerLinuxGuestsPlatform } from '../../daemon/linux-guests-session.js';
import { isPcibackError } from '../../errors.js';
import { defaultXenstoredSocketPath } from './xenstored.js';
import type { RegisterCommand } from './index.js';

interface DaemonFlags {
  readonly platform: string;
  readonly stateDir?: string;
  readonly control?: string;
  readonly sysfsRoot?: string;
  readonly fakeSysfs?: string;
  readonly fakeSysfsState?: string;
  readonly stubDriver?: string;
  readonly logLevel: string;
  readonly machine?: string;
  readonly guests?: string;
  readonly xenstoreSocket?: string;
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** JSON lines on stderr, written synchronously so that nothing is lost when killed. */
function stderrLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}

const HELP_AFTER = `
Platforms:
  sim     the simulated host of --machine FILE (default: the built-in machine), its guests
          running and its xenstore served as with "pciback sim --keep-running", so
          attach/detach/list work beside assignable-add/-remove/-list
  linux   real PCI devices through sysfs: needs root when the sysfs root is /sys

Guests on the Linux bus: --platform linux --guests MACHINE.json
  boots the simulated hypervisor, xenstore (--xenstore-socket) and the guests of
  MACHINE.json on the Linux PCI bus (sysfs, or --fake-sysfs FILE): a machine file whose
  "devices" is empty and whose "pciback.hide" and domains' "pci" name sysfs addresses.
  The kernel's stub driver holds assignable devices (what hide= names is bound to it
  first, as xl pci-assignable-add does); pciback's userspace stub serves them to the
  guests: pciback attach|detach|list on the xenstore socket, assignable-add/-remove/-list,
  stub-attr and aer-inject on the control socket.

Fake host (tests and demos without hardware): --platform linux --fake-sysfs FILE
  FILE is JSON: a list of functions, or {"functions": [...], "drivers": [...]}.
  A function is an lspci/sysfs dump path (every device in it), or
    {"dump": "nic.txt", "address": "0000:03:00.0", "driver": "igb", "iommuGroup": 7,
     "command": "0x0002"}
    {"address": "0000:06:00.0", "driver": "e1000e",
     "simple": {"vendorId": "0x8086", "deviceId": "0x10d3", "classCode": "0x020000"}}
  "command" sets the command register ("0x0406": bus mastering on, the device is busy).
  Drivers default to ["pciback"]; paths are relative to FILE. With --fake-sysfs-state
  the fake's driver bindings are saved on every change and survive a restart.

Examples:
  pciback daemon --platform linux
  pciback daemon --platform linux --fake-sysfs host.json --fake-sysfs-state host-state.json
  pciback daemon --platform linux --fake-sysfs host.json --guests guests.json \
      --xenstore-socket /tmp/xs.sock
`;

/** Registers `pciback daemon`. */
export const registerDaemonCommand: RegisterCommand = (program) => {
  program
    .command('daemon')
    .description(
      'serve the assignable-device operations on a control socket (pciback assignable-* use it)',
    )
    .addOption(
      new Option('--platform <name>', 'the host platform').choices(PLATFORM_NAMES).default('sim'),
    )
    .option(
      '--state-dir <dir>',
      'state directory (default: $PCIBACK_STATE_DIR, else $XDG_STATE_HOME/pciback, else ~/.local/state/pciback)',
    )
    .option(
      '--control <path>',
      'control socket (default: $XDG_RUNTIME_DIR/pciback/control.sock, else <tmpdir>/pciback-<uid>/control.sock)',
    )
    .option('--sysfs-root <dir>', 'linux: the sysfs mount (default: /sys)')
    .option('--fake-sysfs <file>', 'linux: a fake host described by FILE (JSON), instead of sysfs')
    .option(
      '--fake-sysfs-state <file>',
      "linux with --fake-sysfs: keep the fake's driver bindings in FILE across restarts",
    )
    .option('--stub-driver <name>', 'pciback, vfio-pci or pci-stub (default: the first loaded)')
    .option('--machine <file>', 'sim: the machine file (default: the built-in machine)')
    .option(
      '--guests <file>',
      'linux: boot the simulated hypervisor and the guests of FILE (a machine file without devices) on the Linux bus',
    )
    .option(
      '--xenstore-socket <path>',
      "sim, linux with --guests: where to serve the simulator's xenstore (default: as pciback xenstored)",
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addHelpText('after', HELP_AFTER)
    .action(async (flags: DaemonFlags) => {
      const logger = stderrLogger(flags.logLevel);
      if (flags.guests !== undefined && flags.platform !== 'linux') {
        throw new UserError(
          'Cannot use --guests with --platform sim: give the machine with --machine',
        );
      }
      if (flags.platform === 'linux' && flags.guests !== undefined) {
        let machine;
        try {
          machine = loadMachineFile(flags.guests, { hostBus: true });
        } catch (err) {
          if (isPcibackError(err)) throw new UserError(err.message, { cause: err });
          throw err;
        }
        registerLinuxGuestsPlatform({
          machine,
          xenstoreSocket: flags.xenstoreSocket ?? defaultXenstoredSocketPath(),
          onLine: (line) => {
            logger.info({ guest: true }, line);
          },
        });
      }
      if (flags.platform === 'sim') {
        let machine;
        try {
          machine = flags.machine === undefined ? undefined : loadMachineFile(flags.machine);
        } catch (err) {
          if (isPcibackError(err)) throw new UserError(err.message, { cause: err });
          throw err;
        }
        registerSimPlatform({
          ...(machine === undefined ? {} : { machine }),
          xenstoreSocket: flags.xenstoreSocket ?? defaultXenstoredSocketPath(),
          onLine: (line) => {
            logger.info({ guest: true }, line);
          },
        });
      }
      const daemon = await startDaemon({
        platform: flags.platform,
        stateDir: flags.stateDir ?? defaultStateDir(process.env),
        controlPath: flags.control ?? defaultControlSocketPath(),
        logger,
        session: {
          stubDriver: flags.stubDriver,
          sysfsRoot: flags.sysfsRoot,
          fakeSysfs: flags.fakeSysfs,
          fakeSysfsState: flags.fakeSysfsState,
        },
      });
      printLines([
        `pciback daemon listening on ${daemon.controlPath} (platform ${daemon.platform}, stub driver "${daemon.stubDriver}", ${daemon.repairs.length} repair(s) at start)`,
      ]);
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          logger.info({ signal }, `Stopping on ${signal}`);
          resolve();
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      await daemon.close();
    });
};
