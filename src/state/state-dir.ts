// SPDX-License-Identifier: MIT
/**
 * Where pciback keeps its state, following the XDG Base Directory rules for state data
 * ("data that should persist between restarts but is not important enough for
 * $XDG_DATA_HOME": logs, history, what a device was bound to).
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** The environment variables {@link defaultStateDir} reads. */
export interface StateDirEnv {
  readonly PCIBACK_STATE_DIR?: string | undefined;
  readonly XDG_STATE_HOME?: string | undefined;
  readonly HOME?: string | undefined;
}

/**
 * The state directory: `$PCIBACK_STATE_DIR` (resolved against the working directory),
 * else `$XDG_STATE_HOME/pciback`, else `~/.local/state/pciback` (`$HOME`, or the
 * account's home directory when `HOME` is unset). Empty variables count as unset, and a
 * relative `XDG_STATE_HOME` is ignored, as the XDG specification asks.
 *
 * @example
 * defaultStateDir({ XDG_STATE_HOME: '/var/lib' }); // '/var/lib/pciback'
 * defaultStateDir(process.env);
 */
export function defaultStateDir(env: StateDirEnv): string {
  const explicit = env.PCIBACK_STATE_DIR;
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'pciback');
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
  return join(home, '.local', 'state', 'pciback');
}
