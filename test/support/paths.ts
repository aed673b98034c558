// SPDX-License-Identifier: MIT
/** Where tests find the repository and the read-only `shared/` oracles. */
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** Root of the repository (tests run from `dist/test/...`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** `../shared` beside the checkout, as in CI; `PCIBACK_SHARED_DIR` overrides. */
export const SHARED_DIR = process.env.PCIBACK_SHARED_DIR ?? resolve(REPO_ROOT, '..', 'shared');

/** The oracles nobody on the project wrote. */
export const ORACLES_DIR = join(SHARED_DIR, 'oracles');

/** Config-space dumps of real devices. */
export const DUMPS_DIR = join(ORACLES_DIR, 'dumps');

/** The compiled CLI entry point. */
export const CLI_PATH = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
