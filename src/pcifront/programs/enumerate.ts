// SPDX-License-Identifier: MIT
/** Guest program `enumerate`: scan the roots and print the lspci-like listing. */
import { formatDevice } from '../listing.js';
import { ProgramLog, scan } from './common.js';
import type { GuestProgramEnv, ProgramReport } from './types.js';

/**
 * Scans every published root through pciback and logs one listing block per function.
 *
 * @example
 * const report = await enumerateProgram(env);
 * report.data.devices; // GuestPciDevice[]
 */
export function enumerateProgram(env: GuestProgramEnv): Promise<ProgramReport> {
  const log = new ProgramLog(env);
  const result = scan(env);
  for (const device of result.devices) {
    for (const line of formatDevice(device).split('\n')) log.line(line);
  }
  const summary =
    result.error ??
    `enumerate: ${result.devices.length} function(s) on ${result.busesScanned.join(', ')}`;
  return Promise.resolve(
    log.report('enumerate', result.error === undefined, summary, {
      devices: result.devices,
      busesScanned: result.busesScanned,
      error: result.error ?? null,
    }),
  );
}
