// SPDX-License-Identifier: MIT
/**
 * Linux's PCIBIOS return codes (`include/linux/pci.h`) and the two mappings between them
 * and the protocol's `XEN_PCI_ERR_*`: pciback's on every config result before the guest
 * sees it (`xen_pcibios_err_to_errno` in `conf_space.c`, spec §4.9) and pcifront's on
 * every answer (`errno_to_pcibios_err`, spec §9). They are not inverses: pcifront maps
 * op_failed (-5) to BAD_REGISTER_NUMBER too.
 */
import { XEN_PCI_ERR } from './pciif.js';

/** `PCIBIOS_*` codes: positive, returned by the PCI core's config accessors. */
export const PCIBIOS = {
  SUCCESSFUL: 0x00,
  FUNC_NOT_SUPPORTED: 0x81,
  BAD_VENDOR_ID: 0x83,
  DEVICE_NOT_FOUND: 0x86,
  BAD_REGISTER_NUMBER: 0x87,
  SET_FAILED: 0x88,
  BUFFER_TOO_SMALL: 0x89,
} as const;

/**
 * Map a handler or platform result to what goes into `op.err`: the five PCIBIOS codes
 * of spec §4.9 become `XEN_PCI_ERR_*`; everything else (negative errnos, other PCIBIOS
 * codes such as 0x83 and 0x89) passes through unchanged, as in the original.
 */
export function pcibiosToXenErr(err: number): number {
  switch (err) {
    case PCIBIOS.SUCCESSFUL:
      return XEN_PCI_ERR.success;
    case PCIBIOS.DEVICE_NOT_FOUND:
      return XEN_PCI_ERR.dev_not_found;
    case PCIBIOS.BAD_REGISTER_NUMBER:
      return XEN_PCI_ERR.invalid_offset;
    case PCIBIOS.FUNC_NOT_SUPPORTED:
      return XEN_PCI_ERR.not_implemented;
    case PCIBIOS.SET_FAILED:
      return XEN_PCI_ERR.access_denied;
    default:
      return err;
  }
}

/**
 * pcifront's `errno_to_pcibios_err` (spec §9): 0 -> SUCCESSFUL, -1 -> DEVICE_NOT_FOUND,
 * -2 and -5 -> BAD_REGISTER_NUMBER, -4 -> FUNC_NOT_SUPPORTED, -3 -> SET_FAILED; any other
 * value is returned unchanged (a raw negative errno reaches the PCI core as is).
 */
export function xenErrToPcibios(err: number): number {
  switch (err) {
    case XEN_PCI_ERR.success:
      return PCIBIOS.SUCCESSFUL;
    case XEN_PCI_ERR.dev_not_found:
      return PCIBIOS.DEVICE_NOT_FOUND;
    case XEN_PCI_ERR.invalid_offset:
    case XEN_PCI_ERR.op_failed:
      return PCIBIOS.BAD_REGISTER_NUMBER;
    case XEN_PCI_ERR.not_implemented:
      return PCIBIOS.FUNC_NOT_SUPPORTED;
    case XEN_PCI_ERR.access_denied:
      return PCIBIOS.SET_FAILED;
    default:
      return err;
  }
}
