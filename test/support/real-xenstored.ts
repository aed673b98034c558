// SPDX-License-Identifier: MIT
/**
 * xenstore daemons for integration tests and benchmarks, all with one shape
 * ({@link XenstoredHandle}) so a scenario can run against each:
 *
 * - {@link startRealXenstored}: Xen's own C `xenstored` or OCaml `oxenstored` (Debian
 *   xen-utils-4.17), run without a hypervisor by `oracles/xenstored/run-xenstored.sh`
 *   from the cache `scripts/setup-test-deps.sh` fills (`.cache/xen-utils`).
 * - {@link startOurXenstored}: `pciback xenstored --socket PATH`, as its own process.
 *
 * Every daemon started here is stopped on {@link XenstoredHandle.stop} and, as a last
 * resort, killed when the test process exits, so a failing test leaves none behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { test } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { XsTransport } from '../../src/xenstore/client/index.js';
import { connectXenstoreUnixSocket } from '../../src/xenstore/transport/unix-socket-client.js';
import { CLI_PATH, ORACLES_DIR, REPO_ROOT } from './paths.js';

/** A running xenstore daemon serving a Unix socket (privileged dom0 connections). */
export interface XenstoredHandle {
  /** Short label for test names and reports: `pciback`, `C xenstored`, `oxenstored`. */
  readonly name: string;
  /** The daemon's socket (`XENSTORED_PATH`). */
  readonly socketPath: string;
  /** Kill the daemon, wait until it is gone and remove its work directory. Idempotent. */
  stop(): Promise<void>;
}

/** Which real daemon: `c` = C xenstored, `o` = OCaml oxenstored. */
export type RealXenstoredKind = 'c' | 'o';

/** Where `get-xen-utils.sh` extracted the daemons: `$XEN_UTILS`, else `.cache/xen-utils`. */
export const XEN_UTILS_DIR = process.env.XEN_UTILS ?? join(REPO_ROOT, '.cache', 'xen-utils');

const RUN_XENSTORED = join(ORACLES_DIR, 'xenstored', 'run-xenstored.sh');
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;

/** Process groups (real daemons) and children (ours) still running, killed at exit. */
const liveGroups = new Set<number>();
const liveChildren = new Set<ChildProcess>();
const liveWorkDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of liveGroups) killQuietly(-pgid, 'SIGKILL');
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const dir of liveWorkDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function killQuietly(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * True while `pid` runs. A zombie counts as gone: run-xenstored.sh has exited, so the
 * daemon's parent is init, which reaps it; we cannot wait() for a grandchild.
 */
function isRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // "pid (comm) S ...": the state follows the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/**
 * Why {@link startRealXenstored} cannot run `kind` here, or `undefined` when it can.
 *
 * @example
 * test('...', { skip: realXenstoredUnavailable('c') ?? false }, async () => { ... });
 */
export function realXenstoredUnavailable(kind: RealXenstoredKind): string | undefined {
  if (process.platform !== 'linux') return 'Xen xenstored runs on Linux only';
  if (!existsSync(RUN_XENSTORED)) {
    return `Xen's xenstored is unavailable: "${RUN_XENSTORED}" is missing (set PCIBACK_SHARED_DIR to the shared/ directory)`;
  }
  const bin = join(
    XEN_UTILS_DIR,
    'root',
    'usr',
    'lib',
    'xen-4.17',
    'bin',
    kind === 'c' ? 'xenstored' : 'oxenstored',
  );
  if (!existsSync(bin) || !existsSync(join(XEN_UTILS_DIR, 'fakexen.so'))) {
    return `Xen's ${kind === 'c' ? 'C xenstored' : 'oxenstored'} is not prepared in "${XEN_UTILS_DIR}": run scripts/setup-test-deps.sh`;
  }
  if (kind === 'o' && process.getuid?.() !== 0) {
    return 'oxenstored needs root: run-xenstored.sh gives it a private /run with unshare -m';
  }
  return undefined;
}

/** Options of {@link startRealXenstored}. */
export interface StartRealXenstoredOptions {
  /**
   * Keep the C daemon's `-T` trace (default true). The benchmark turns it off: the trace
   * file becomes a link to /dev/null, so the daemon does not pay for file appends.
   */
  readonly trace?: boolean;
}

/**
 * Start Xen's real xenstored (`c`) or oxenstored (`o`) on a private socket. `domids` are
 * the domains the fake hypervisor reports as existing; each non-zero one gets a ring
 * page file, so it can be INTRODUCEd (use a distinct port per domain).
 *
 * @throws {Error} when the daemon is unavailable ({@link realXenstoredUnavailable}) or its
 *   socket does not appear; the message carries the daemon's log.
 * @example
 * const xsd = await startRealXenstored('c', [0, 5]);
 * try { ... XENSTORED_PATH=xsd.socketPath ... } finally { await xsd.stop(); }
 */
export async function startRealXenstored(
  kind: RealXenstoredKind,
  domids: number[],
  options: StartRealXenstoredOptions = {},
): Promise<XenstoredHandle> {
  const why = realXenstoredUnavailable(kind);
  if (why !== undefined) throw new Error(`Cannot start Xen's xenstored: ${why}`);
  for (const d of domids) {
    if (!Number.isInteger(d) || d < 0 || d >= 0x7ff0) {
      throw new RangeError(`Cannot start Xen's xenstored with domain ${d}: not a domain id`);
    }
  }
  installExitHook();
  const work = mkdtempSync(join(tmpdir(), `pciback-${kind}xsd-`));
  liveWorkDirs.add(work);
  mkdirSync(join(work, 'fx'), { recursive: true });
  for (const d of domids) {
    if (d !== 0) writeFileSync(join(work, 'fx', `ring-${d}`), new Uint8Array(4096));
  }
  if (options.trace === false) {
    mkdirSync(join(work, 'log'), { recursive: true });
    symlinkSync('/dev/null', join(work, 'log', 'trace'));
  }
  const domidList = [...new Set([0, ...domids])].join(',');
  const run = spawnSync('bash', [RUN_XENSTORED, kind, work, domidList], {
    env: { ...process.env, XEN_UTILS: XEN_UTILS_DIR },
    encoding: 'utf8',
    timeout: START_TIMEOUT_MS,
  });
  const pidText = existsSync(join(work, 'daemon.pid'))
    ? readFileSync(join(work, 'daemon.pid'), 'utf8').trim()
    : '';
  const pid = Number.parseInt(pidText, 10);
  const name = kind === 'c' ? 'C xenstored' : 'oxenstored';
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (Number.isInteger(pid) && pid > 0) {
      // setsid made the daemon a group leader: its group holds it and anything it forked.
      killQuietly(-pid, 'SIGTERM');
      const deadline = Date.now() + STOP_GRACE_MS;
      while (isRunning(pid) && Date.now() < deadline) await delay(20);
      if (isRunning(pid)) killQuietly(-pid, 'SIGKILL');
      while (isRunning(pid)) await delay(20);
      liveGroups.delete(pid);
    }
    rmSync(work, { recursive: true, force: true });
    liveWorkDirs.delete(work);
  };
  if (Number.isInteger(pid) && pid > 0) liveGroups.add(pid);
  const socketPath = run.stdout.trim().split('\n').pop() ?? '';
  // run-xenstored.sh waits up to 5 s for the socket, then prints its path regardless.
  if (run.status !== 0 || socketPath === '' || !existsSync(socketPath) || !isRunning(pid)) {
    const logPath = join(work, 'log', 'stdout');
    const log = existsSync(logPath) ? readFileSync(logPath, 'utf8').trim() : '';
    await stop();
    throw new Error(
      `Cannot start Xen's ${name}: run-xenstored.sh exited ${String(run.status)}, ` +
        `socket "${socketPath}" ${existsSync(socketPath) ? 'exists' : 'missing'}` +
        (run.stderr.trim() === '' ? '' : `, stderr: ${run.stderr.trim()}`) +
        (log === '' ? '' : `, daemon log: ${log}`),
    );
  }
  return { name, socketPath, stop };
}

/**
 * Start `pciback xenstored --socket PATH` as its own process (as on a real host, and so it
 * gets its own core in benchmarks). Needs the build (`dist/`).
 *
 * @throws {Error} when the daemon does not report listening within 10 s.
 */
export async function startOurXenstored(domids: readonly number[] = []): Promise<XenstoredHandle> {
  installExitHook();
  const work = mkdtempSync(join(tmpdir(), 'pciback-ourxsd-'));
  liveWorkDirs.add(work);
  const socketPath = join(work, 'socket');
  const domains = domids.filter((d) => d !== 0);
  const args = [CLI_PATH, 'xenstored', '--socket', socketPath];
  if (domains.length > 0) args.push('--domains', domains.join(','));
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  let output = '';
  let exited = child.exitCode !== null;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      liveChildren.delete(child);
      resolve();
    });
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exitedPromise;
      clearTimeout(timer);
    }
    rmSync(work, { recursive: true, force: true });
    liveWorkDirs.delete(work);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no "listening" line within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      const onData = (chunk: Buffer): void => {
        if (output.length < 65536) output += chunk.toString('utf8');
        if (output.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      // Bounded: afterwards only lost connections are reported there.
      child.stderr.on('data', (chunk: Buffer) => {
        if (output.length < 65536) output += chunk.toString('utf8');
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`it exited with code ${String(code)}`));
      });
    });
  } catch (e) {
    await stop();
    throw new Error(
      `Cannot start pciback xenstored: ${(e as Error).message}; output: ${output.trim()}`,
      { cause: e },
    );
  }
  // Both pipes keep flowing (their 'data' listeners), so the daemon never blocks on them.
  // Unreferenced: a test that forgets stop() still lets the process exit, and the exit
  // hook then kills the daemon.
  child.unref();
  for (const stream of [child.stdout, child.stderr] as unknown as { unref?: () => void }[]) {
    stream.unref?.();
  }
  return { name: 'pciback', socketPath, stop };
}

/**
 * {@link connectXenstoreUnixSocket} (which retries EAGAIN). Xen's C
 * xenstored listens with a backlog of 1: a non-blocking connect (Node's) fails with EAGAIN
 * while an earlier connection waits to be accepted, where libxenstore's blocking
 * connect() would wait.
 */
export async function connectXenstored(
  socketPath: string,
  options: { readonly timeoutMs?: number } = {},
): Promise<XsTransport> {
  // The client retries C's EAGAIN (backlog 1) itself until the timeout.
  return connectXenstoreUnixSocket(socketPath, { connectTimeoutMs: options.timeoutMs ?? 5000 });
}

/** The daemons a scenario runs against: ours, Xen's C xenstored, Xen's oxenstored. */
export const XENSTORED_KINDS = [
  { kind: 'ours', label: 'pciback xenstored' },
  { kind: 'c', label: "Xen's C xenstored" },
  { kind: 'o', label: "Xen's oxenstored" },
] as const;

/**
 * One `node:test` test per daemon of {@link XENSTORED_KINDS}, titled `<title> <label>`:
 * each starts its daemon (knowing `domids`), runs `scenario` and always stops it. A real
 * daemon that cannot run here is skipped with the reason.
 */
export function testOnEveryXenstored(
  title: string,
  domids: readonly number[],
  timeoutMs: number,
  scenario: (xsd: XenstoredHandle) => Promise<void>,
): void {
  for (const { kind, label } of XENSTORED_KINDS) {
    const skip = kind === 'ours' ? false : (realXenstoredUnavailable(kind) ?? false);
    test(`${title} ${label}`, { skip, timeout: timeoutMs }, async () => {
      const xsd =
        kind === 'ours'
          ? await startOurXenstored(domids)
          : await startRealXenstored(kind, [...domids]);
      try {
        await scenario(xsd);
      } finally {
        await xsd.stop();
      }
    });
  }
}
