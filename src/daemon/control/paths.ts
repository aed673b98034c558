// SPDX-License-Identifier: MIT
/** Where the daemon's control socket lives by default. */
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** The environment variables {@link defaultControlSocketPath} reads. */
export interface ControlPathEnv {
  readonly XDG_RUNTIME_DIR?: string | undefined;
}

/**
 * `$XDG_RUNTIME_DIR/pciback/control.sock`, else `<tmpdir>/pciback-<uid>/control.sock`
 * (beside the simulator's xenstored socket, see `defaultXenstoredSocketPath`). An empty
 * or relative `XDG_RUNTIME_DIR` counts as unset, as the XDG specification asks.
 *
 * @example
 * defaultControlSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' });
 * // '/run/user/1000/pciback/control.sock'
 */
export function defaultControlSocketPath(env: ControlPathEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime.startsWith('/')) {
    return join(runtime, 'pciback', 'control.sock');
  }
  return join(tmpdir(), `pciback-${userInfo().uid}`, 'control.sock');
}
