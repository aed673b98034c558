// SPDX-License-Identifier: MIT
/**
 * Access Control Services extended capability (PCIe 6.0 §7.7.8): each control bit
 * whose capability bit is set is RW (Linux's `pci_enable_acs` writes them); the
 * capability register and the egress control vector are RO.
 */
import { PCI_ACS_CAP_OFFSET, PCI_ACS_CTRL_MASK, PCI_ACS_CTRL_OFFSET } from '../abi/pci-regs.js';
import type { RegisterFile } from './register-file.js';

/** Installs the ACS control masks for the capability at `capOffset`. */
export function installAcsMasks(regs: RegisterFile, capOffset: number): void {
  const capability = regs.read(capOffset + PCI_ACS_CAP_OFFSET, 2);
  regs.setMask('writable', capOffset + PCI_ACS_CTRL_OFFSET, 2, capability & PCI_ACS_CTRL_MASK);
}
