// SPDX-License-Identifier: MIT
/** Guest program `msi`: enable MSI on every function that has it, then disable it. */
import { PCI_CAP_ID } from '../../abi/pci-regs.js';
import { PCI_COMMAND_MASTER, PCI_COMMAND_OFFSET } from '../../abi/pci-regs.js';
import { ProgramLog, capabilityOf, observeInterrupts, scan } from './common.js';
import type { GuestProgramEnv, ProgramReport } from './types.js';

/** Per-device outcome of the `msi` program. */
export interface MsiOutcome {
  address: string;
  enabled: boolean;
  pirq: number | null;
  enableErr: number | null;
  interruptsObserved: number;
  disableErr: number;
  /** pirq of the legacy IRQ the backend reported after the disable. */
  legacyPirq: number;
}

/**
 * For each function with an MSI capability: set bus mastering (MSI messages are memory
 * writes), `enable_msi`, report the pirq, wait for a few interrupts when the platform
 * delivers them, `disable_msi`.
 */
export function msiProgram(env: GuestProgramEnv): Promise<ProgramReport> {
  const log = new ProgramLog(env);
  const result = scan(env);
  if (result.error !== undefined) {
    return Promise.resolve(log.report('msi', false, result.error, { devices: [] }));
  }
  const outcomes: MsiOutcome[] = [];
  for (const device of result.devices) {
    if (capabilityOf(device, PCI_CAP_ID.MSI) === undefined) continue;
    const command = env.front.readConfig(device, PCI_COMMAND_OFFSET, 2);
    if (command.pcibios === 0) {
      env.front.writeConfig(device, PCI_COMMAND_OFFSET, 2, command.value | PCI_COMMAND_MASTER);
    }
    const enabled = env.front.enableMsi(device);
    let observed = 0;
    if (enabled.ok) {
      log.line(`${device.address}: MSI enabled, pirq ${enabled.pirq}`);
      const irq = observeInterrupts(env, [enabled.pirq], { count: 3, timeoutMs: 500 });
      observed = irq.observed;
      log.line(`${device.address}: ${irq.text}`);
    } else {
      log.line(`${device.address}: enable_msi failed: ${enabled.reason} (errno ${enabled.errno})`);
    }
    const disabled = env.front.disableMsi(device);
    log.line(`${device.address}: disable_msi err ${disabled.err}, legacy pirq ${disabled.value}`);
    outcomes.push({
      address: device.address,
      enabled: enabled.ok,
      pirq: enabled.ok ? enabled.pirq : null,
      enableErr: enabled.ok ? 0 : (enabled.err ?? null),
      interruptsObserved: observed,
      disableErr: disabled.err,
      legacyPirq: disabled.value,
    });
  }
  const ok = outcomes.every((o) => o.enabled && o.disableErr === 0);
  const summary =
    outcomes.length === 0
      ? 'msi: no function with an MSI capability'
      : `msi: ${outcomes.filter((o) => o.enabled).length}/${outcomes.length} function(s) enabled`;
  return Promise.resolve(log.report('msi', ok, summary, { devices: outcomes }));
}
