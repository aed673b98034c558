// SPDX-License-Identifier: MIT
/**
 * `pciback xenstored [--socket PATH]`: our xenstore daemon alone, on a Unix socket, for
 * dom0 tools (Debian's `xenstore-read/-write/-ls/-watch` with `XENSTORED_PATH=PATH`).
 * Runs until SIGTERM or SIGINT, then removes the socket.
 */
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { serveXenstoreUnixSocket } from '../../xenstore/transport/unix-socket.js';
import { printLines } from '../output.js';
import type { RegisterCommand } from './index.js';

interface XenstoredFlags {
  readonly socket?: string;
  readonly verbose?: boolean;
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
    .action(async (flags: XenstoredFlags) => {
      const path = flags.socket ?? defaultXenstoredSocketPath();
      const log =
        flags.verbose === true
          ? (line: string) => process.stderr.write(`${line}\n`)
          : (line: string) => {
              // Without --verbose only lost connections are reported.
              if (line.startsWith('Closing')) process.stderr.write(`${line}\n`);
            };
      const xsd = await serveXenstoreUnixSocket(path, { log });
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
