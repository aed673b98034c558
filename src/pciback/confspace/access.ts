// SPDX-License-Identifier: MIT
/**
 * The arithmetic of `conf_space.c` (request validation, size masks, the shift-and-
 * replace merge) and the "raw" config accessors every field handler uses, which go
 * through the PCI core's alignment rule before reaching the platform.
 */
import type { ConfigAccessSize, ConfigReadResult, HostPciDevice } from '../../platform/types.js';
import { PCIBIOS } from '../../abi/pcibios.js';

/**
 * `valid_request`: size 1, 2 or 4 and `byteOffset % sizeBytes == 0` with C remainder
 * semantics (JS `%` has the same sign rule, so an aligned negative offset passes, and
 * there is deliberately no range check: spec §1.4).
 */
export function isValidRequest(
  byteOffset: number,
  sizeBytes: number,
): sizeBytes is ConfigAccessSize {
  return (sizeBytes === 1 || sizeBytes === 2 || sizeBytes === 4) && byteOffset % sizeBytes === 0;
}

/** `get_mask`: all-ones of `sizeBytes` bytes, as an unsigned 32-bit number. */
export function sizeMask(sizeBytes: ConfigAccessSize): number {
  return sizeBytes === 4 ? 0xffffffff : sizeBytes === 2 ? 0xffff : 0xff;
}

/**
 * `merge_value`: shift `newValue` and `newMask` left by `shiftBytes` bytes (right when
 * negative) and replace those bits of `value`. Bits shifted past bit 31 are lost, as
 * with the C `u32`. `|shiftBytes|` is at most 3 for intersecting ranges.
 */
export function mergeValue(
  value: number,
  newValue: number,
  newMask: number,
  shiftBytes: number,
): number {
  let mask: number;
  let bits: number;
  if (shiftBytes >= 0) {
    mask = newMask << (shiftBytes * 8);
    bits = newValue << (shiftBytes * 8);
  } else {
    mask = newMask >>> (-shiftBytes * 8);
    bits = newValue >>> (-shiftBytes * 8);
  }
  return ((value & ~mask) | (bits & mask)) >>> 0;
}

/** True when the PCI core refuses the access as misaligned (`PCI_word_BAD` etc.). */
function misaligned(byteOffset: number, sizeBytes: ConfigAccessSize): boolean {
  return (byteOffset & (sizeBytes - 1)) !== 0;
}

/**
 * `pci_read_config_{byte,word,dword}`: a misaligned access is refused by the PCI core
 * with PCIBIOS_BAD_REGISTER_NUMBER and leaves the value untouched (0 here), before the
 * platform is asked; otherwise the platform answers (all-ones on its errors). Only
 * quirk fields, which have no alignment check (spec §5.9), can be misaligned.
 */
export function rawRead(
  dev: HostPciDevice,
  byteOffset: number,
  sizeBytes: ConfigAccessSize,
): ConfigReadResult {
  if (misaligned(byteOffset, sizeBytes)) {
    return { value: 0, err: PCIBIOS.BAD_REGISTER_NUMBER };
  }
  const result = dev.readConfig(byteOffset, sizeBytes);
  const value = (result.value & sizeMask(sizeBytes)) >>> 0;
  // The platform already answers zero-extended values: reuse its result (hot path).
  return value === result.value ? result : { value, err: result.err };
}

/** `pci_write_config_{byte,word,dword}`: same alignment rule, then the platform. */
export function rawWrite(
  dev: HostPciDevice,
  byteOffset: number,
  sizeBytes: ConfigAccessSize,
  value: number,
): number {
  if (misaligned(byteOffset, sizeBytes)) return PCIBIOS.BAD_REGISTER_NUMBER;
  return dev.writeConfig(byteOffset, sizeBytes, (value & sizeMask(sizeBytes)) >>> 0);
}
