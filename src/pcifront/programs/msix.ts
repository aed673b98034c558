// SPDX-License-Identifier: MIT
/** Guest program `msix`: enable a few MSI-X vectors on every function that has MSI-X. */
import { PCI_CAP_ID } from '../../abi/pci-regs.js';
import {
  ProgramLog,
  capabilityOf,
  enableDevice,
  msixTableSize,
  observeInterrupts,
  scan,
} from './common.js';
import type { GuestProgramEnv, ProgramReport } from './types.js';

/** Vectors the program asks for (fewer when the table is smaller). */
export const MSIX_PROGRAM_VECTORS = 4;

/** Per-device outcome of the `msix` program. */
export interface MsixOutcome {
  address: string;
  tableSize: number;
  requested: number;
  enabled: boolean;
  pirqs: number[];
  errno: number | null;
  interruptsObserved: number;
  disableErr: number;
}

/**
 * For each function with MSI-X: enable decode and mastering as a driver's
 * `pci_enable_device` would (pciback refuses MSI-X with memory decode off, XSA-157),
 * `enable_msix` for entries 0..n-1 (n = 4 or the table size), report the pirqs, wait
 * for interrupts when delivered, `disable_msix`.
 */
export function msixProgram(env: GuestProgramEnv): Promise<ProgramReport> {
  const log = new ProgramLog(env);
  const result = scan(env);
  if (result.error !== undefined) {
    return Promise.resolve(log.report('msix', false, result.error, { devices: [] }));
  }
  const outcomes: MsixOutcome[] = [];
  for (const device of result.devices) {
    if (capabilityOf(device, PCI_CAP_ID.MSIX) === undefined) continue;
    const tableSize = msixTableSize(device);
    const n = Math.min(MSIX_PROGRAM_VECTORS, tableSize);
    enableDevice(env, device);
    const entries = Array.from({ length: n }, (_, i) => i);
    const enabled = env.front.enableMsix(device, entries);
    let observed = 0;
    if (enabled.ok) {
      log.line(
        `${device.address}: MSI-X enabled, ${n} vector(s), pirqs ${enabled.pirqs.join(', ')}`,
      );
      const irq = observeInterrupts(env, enabled.pirqs, { count: n, timeoutMs: 500 });
      observed = irq.observed;
      log.line(`${device.address}: ${irq.text}`);
    } else {
      log.line(`${device.address}: enable_msix failed: ${enabled.reason} (errno ${enabled.errno})`);
    }
    const disabled = env.front.disableMsix(device);
    log.line(`${device.address}: disable_msix err ${disabled.err}, legacy pirq ${disabled.value}`);
    outcomes.push({
      address: device.address,
      tableSize,
      requested: n,
      enabled: enabled.ok,
      pirqs: enabled.ok ? [...enabled.pirqs] : [],
      errno: enabled.ok ? null : enabled.errno,
      interruptsObserved: observed,
      disableErr: disabled.err,
    });
  }
  const ok = outcomes.every((o) => o.enabled && o.disableErr === 0);
  const summary =
    outcomes.length === 0
      ? 'msix: no function with an MSI-X capability'
      : `msix: ${outcomes.filter((o) => o.enabled).length}/${outcomes.length} function(s) enabled`;
  return Promise.resolve(log.report('msix', ok, summary, { devices: outcomes }));
}
