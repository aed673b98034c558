// SPDX-License-Identifier: MIT
/**
 * `pciback xenstored [--socket PATH]`: our xenstore daemon alone, on a Unix socket, for
 * dom0 tools (Debian's `xenstore-read/-write/-ls/-watch` with `XENSTORED_PATH=PATH`).
 * Runs until SIGTERM or SIGINT, then removes the socket.
 */
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { serveXenstoreUnixSocket } from '../../xenstore/transport/unix-socket.js';
import { printLines, UserError } from '../output.js';
import { XsServer } from '../../xenstore/server/index.js';
import { XenStore } from '../../xenstore/store/index.js';
import type { RegisterCommand } from './index.js';

interface XenstoredFlags {
  readonly socket?: string;
  readonly verbose?: boolean;
  readonly domains?: string;
}

/**
 * `--domains 1,5,7-9`: the guest domains the daemon treats as existing, as C xenstored
 * would learn from the hypervisor (permissions may name them before INTRODUCE).
 */
export function parseDomainList(text: string): Set<number> {
  const ids = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    const first = Number(m?.[1]);
    const last = m?.[2] === undefined ? first : Number(m[2]);
    if (m === null || !(first >= 1 && last >= first && last < 0x7ff0)) {
      throw new UserError(
        `Invalid --domains "${text}" at "${part}": give domids 1..32751 or ranges like 5-8, separated by commas`,
      );
    }
    if (last - first > 4096)
      throw new UserError(`Invalid --domains range "${part}": at most 4096 ids`);
    for (let d = first; d <= last; d++) ids.add(d);
  }
  return ids;
}

/**
 * The default socket: `$XDG_RUNTIME_DIR/pciback/xenstored.sock`, else
 * `<tmpdir>/pciback-<uid>/xenstored.sock` (never the real xenstored's /var/run path).
 */
export function defaultXenstoredSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime !== '') return join(runtime, 'pciback', 'xenstored.sock');
  return join(tmpdir(), `pciback-${userInfo().uid}`, 'xenstored.sock');
}

/** Registers `pciback xenstored`. */
export const registerXenstoredCommand: RegisterCommand = (program) => {
  program
    .command('xenstored')
    .description('run the xenstore daemon on a Unix socket (reach it with XENSTORED_PATH)')
    .option('--socket <path>', 'socket path (default: $XDG_RUNTIME_DIR/pciback/xenstored.sock)')
    .option('--verbose', 'log connection errors and CONTROL print to stderr')
    .option('--domains <list>', 'guest domids that exist (e.g. 1,5-8), as the hypervisor would say')
    .action(async (flags: XenstoredFlags) => {
      const path = flags.socket ?? defaultXenstoredSocketPath();
      const log =
        flags.verbose === true
          ? (line: string) => process.stderr.write(`${line}\n`)
          : (line: string) => {
              // Without --verbose only lost connections are reported.
              if (line.startsWith('Closing')) process.stderr.write(`${line}\n`);
            };
      const domains =
        flags.domains === undefined ? new Set<number>() : parseDomainList(flags.domains);
      const server = new XsServer({
        store: new XenStore({ domainExists: (d) => domains.has(d) }),
        log,
      });
      const xsd = await serveXenstoreUnixSocket(path, { server, log });
      printLines([`xenstored listening on ${xsd.path}`]);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          resolve();
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      await xsd.close();
    });
};
