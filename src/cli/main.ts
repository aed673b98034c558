#!/usr/bin/env node
// SPDX-License-Identifier: MIT
/** Entry point of the `pciback` command. */
import { runCli } from './program.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`pciback: internal error: ${detail}\n`);
    process.exitCode = 70;
  },
);
