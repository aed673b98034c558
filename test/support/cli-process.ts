// SPDX-License-Identifier: MIT
/**
 * The CLI as separate processes, for the integration tests that drive `pciback daemon`
 * the way an operator does: one-shot commands ({@link runCli}) and a long-running daemon
 * ({@link spawnDaemon}) whose output the test reads as it comes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { CLI_PATH } from './paths.js';

/** What a one-shot command did. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCli} and {@link spawnDaemon}. */
export interface CliProcessOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Run as this uid (and gid): the tests that check refusals to non-root users. */
  readonly uid?: number;
}

/** `pciback ARGS...` to completion (30 s at most); never rejects. */
export function runCli(args: readonly string[], options: CliProcessOptions = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_PATH, ...args],
      {
        timeout: 30_000,
        ...(options.env === undefined ? {} : { env: options.env }),
        ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A running `pciback daemon`. */
export interface SpawnedDaemon {
  readonly child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines of stderr so far. */
  logs(): { kind?: string; device?: string; msg?: string; level?: number }[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Poll `check` every 50 ms for up to `timeoutMs` (default 30 s: the machine may be busy). */
  until(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

/**
 * `pciback daemon ARGS...`, resolved once it printed "listening on" (20 s at most; the
 * daemon is killed and the error carries its output otherwise).
 */
export async function spawnDaemon(
  args: readonly string[],
  options: CliProcessOptions = {},
): Promise<SpawnedDaemon> {
  const child = spawn(process.execPath, [CLI_PATH, 'daemon', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
  const until = async (check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`The daemon exited while waiting for ${what}: ${stdout}${stderr}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; stdout: ${stdout}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    await until(() => stdout.includes('listening on'), 'the daemon to listen', 20_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    logs: () =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { kind?: string; device?: string; msg?: string }),
    until,
  };
}
