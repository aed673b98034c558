// SPDX-License-Identifier: MIT
/**
 * `pciback daemon`: open the state database, open the platform, reconcile the database
 * with the host (each repair logged), and serve the assignable-device operations on the
 * control socket until stopped. The CLI command (`cli/commands/daemon.ts`) adds the
 * signals and the logger.
 */
import { resolve } from 'node:path';
import { SILENT_LOGGER, type Logger } from '../platform/types.js';
import { AssignableDb, reconcile, type Repair } from '../state/index.js';
import { PciAddress } from '../pci/address.js';
import { PcibackError } from '../errors.js';
import { AssignableService } from './assignable-service.js';
import {
  CONTROL_METHODS,
  serveControlSocket,
  type ControlServer,
  type DaemonStatus,
} from './control/index.js';
import {
  openPlatformSession,
  preflightPlatform,
  type PlatformSession,
  type PlatformSessionOptions,
} from './platform-session.js';

/** Options of {@link startDaemon}. */
export interface DaemonOptions {
  /** A registered platform (`linux`, `sim`). */
  readonly platform: string;
  readonly stateDir: string;
  readonly controlPath: string;
  readonly logger?: Logger;
  /** Passed to the platform's factory (sysfs root, fake host, stub driver...). */
  readonly session?: Omit<PlatformSessionOptions, 'db' | 'logger' | 'readOnly'>;
  /** The clock of `status` (ms since the epoch); `Date.now` by default. */
  readonly nowMs?: () => number;
}

/** A running daemon. */
export interface RunningDaemon {
  readonly platform: string;
  readonly controlPath: string;
  readonly stubDriver: string;
  /** What reconcile repaired at start. */
  readonly repairs: readonly Repair[];
  readonly service: AssignableService;
  /** What `status` answers. */
  status(): DaemonStatus;
  /** Stop serving, close the platform and the database. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start a daemon: database, platform session, reconcile, control socket.
 *
 * @throws {PcibackError} when any of them cannot be opened (`PLATFORM_UNAVAILABLE`,
 *   `PERMISSION_DENIED`, `STATE_*`, `CONTROL_SOCKET_IN_USE`, ...); what was opened
 *   is closed again.
 * @example
 * const daemon = await startDaemon({
 *   platform: 'linux',
 *   stateDir: defaultStateDir(process.env),
 *   controlPath: defaultControlSocketPath(),
 *   logger,
 * });
 * process.once('SIGTERM', () => void daemon.close());
 */
export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const logger = options.logger ?? SILENT_LOGGER;
  const nowMs = options.nowMs ?? Date.now;
  const stateDir = resolve(options.stateDir);
  const controlPath = resolve(options.controlPath);
  const sessionOptions = options.session ?? {};
  preflightPlatform(options.platform, sessionOptions);

  const db = AssignableDb.open(stateDir);
  let session: PlatformSession | undefined;
  let server: ControlServer | undefined;
  try {
    session = await openPlatformSession(options.platform, { ...sessionOptions, db, logger });
    const opened = session;
    const repairs = reconcile(db, opened.host, {
      stubDriver: opened.stubDriver,
      liveDomains: () => opened.liveDomains(),
      logger,
    });
    const service = new AssignableService({
      host: opened.host,
      db,
      stubDriver: opened.stubDriver,
      logger,
      attachedTo: (address) => opened.attachedTo(address),
      ...(opened.forgetStubSlot === undefined
        ? {}
        : { forgetStubSlot: (address) => opened.forgetStubSlot?.(address) }),
    });
    const startedAtMs = nowMs();
    const status = (): DaemonStatus => ({
      pid: process.pid,
      platform: options.platform,
      stubDriver: opened.stubDriver,
      stateDir,
      databasePath: db.path,
      controlPath,
      sysfsRoot: opened.sysfsRoot ?? null,
      fakeSysfs: opened.fakeSysfs ?? null,
      startedAtMs,
      uptimeMs: nowMs() - startedAtMs,
      repairs: repairs.map((r) => ({
        kind: r.kind,
        device: r.device.toString(),
        ...(r.domid === undefined ? {} : { domid: r.domid }),
        message: r.message,
      })),
      assignable: service.list().length,
      methods: CONTROL_METHODS,
    });
    server = await serveControlSocket(controlPath, {
      logger,
      handlers: {
        'assignable.add': (p) => service.add(p.bdf, { name: p.name, force: p.force }),
        'assignable.remove': (p) => service.remove(p.ref, { rebind: p.rebind }),
        'assignable.list': (p) => service.list({ verbose: p.verbose }),
        'stub.attribute': (p) => {
          if (opened.stubAttribute === undefined) {
            throw new PcibackError(
              'NOT_SUPPORTED',
              `Cannot use "${p.name}": stub driver "${opened.stubDriver}" has no pciback attributes`,
            );
          }
          return { text: opened.stubAttribute(p.name, p.value) };
        },
        'aer.inject': (p) => {
          if (opened.injectAerError === undefined) {
            throw new PcibackError(
              'NOT_SUPPORTED',
              `Cannot inject an AER error on platform "${options.platform}": only the simulator can`,
            );
          }
          return opened.injectAerError(PciAddress.parse(p.bdf), { fatal: p.fatal === true });
        },
        status,
      },
    });
    const serving = server;
    logger.info(
      { platform: options.platform, stubDriver: opened.stubDriver, controlPath, stateDir },
      `Serving the control socket "${controlPath}" (platform ${options.platform}, stub driver "${opened.stubDriver}")`,
    );
    let closing: Promise<void> | undefined;
    return {
      platform: options.platform,
      controlPath,
      stubDriver: opened.stubDriver,
      repairs,
      service,
      status,
      close() {
        closing ??= (async () => {
          try {
            await serving.close();
          } finally {
            try {
              await opened.close();
            } finally {
              db.close();
              logger.info({ controlPath }, 'Stopped');
            }
          }
        })();
        return closing;
      },
    };
  } catch (err) {
    await server?.close().catch(() => undefined);
    await session?.close().catch(() => undefined);
    db.close();
    throw err;
  }
}
