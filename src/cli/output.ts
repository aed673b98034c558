// SPDX-License-Identifier: MIT
/** The CLI's only ways to print and to fail (DESIGN.md §4: exit 1 user error, 2 usage). */
import { PcibackError } from '../errors.js';

/** A user error: printed as one line, exit code 1. */
export class UserError extends PcibackError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USER_ERROR', message, options);
    this.name = 'UserError';
  }
}

/** Exit code for a user error (bad input, failed operation). */
export const EXIT_USER_ERROR = 1;
/** Exit code for a usage error (unknown option, missing argument). */
export const EXIT_USAGE = 2;

/** Print a JSON document to stdout, stable two-space formatting. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Print lines of text to stdout. */
export function printLines(lines: Iterable<string>): void {
  let out = '';
  for (const line of lines) out += line + '\n';
  process.stdout.write(out);
}
