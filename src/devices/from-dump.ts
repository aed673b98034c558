// SPDX-License-Identifier: MIT
/**
 * A simulated function built from a dump of a real device: the image as captured, with
 * write masks from its header type and the capabilities found in it (exactly as for
 * catalog devices) and the power-on values derived from it.
 *
 * BAR sizes, per slot: an explicit option wins, then the dump's `Region N ... [size=]`
 * lines, then inference from the BAR value — its natural alignment (lowest set address
 * bit), bounded by the next BAR above it, clamped to a sane range; 4 KiB for an
 * unassigned memory BAR and 32 bytes for an unassigned I/O BAR (`inferBarSize`,
 * `INFERRED_SIZE_LIMITS`). A 64-bit pair is one BAR at its lower slot; VF BARs of an
 * SR-IOV capability are inferred the same way.
 *
 * A dump's Region sizes are data, not code: lspci also prints regions Linux made up for
 * registers that are no BAR (legacy IDE ports of 1 byte, Enhanced Allocation entries
 * behind BARs that read 0). A Region size is therefore used only when the register is
 * not 0 and the size fits the BAR kind the register shows; otherwise it is ignored.
 */
import {
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_NORMAL,
  PCI_HEADER_TYPE_OFFSET,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS_OFFSET,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
} from '../abi/pci-regs.js';
import type { DeviceDump } from '../pci/dump.js';
import { PCI_ROM_RESOURCE } from '../pci/resource.js';
import { decodeBarType, isValidBarSize, isValidRomSize } from './bars.js';
import type { DeviceHooks } from './hooks.js';
import { readLe } from './register-file.js';
import { SimulatedFunction } from './simulated-function.js';

/** Options of {@link functionFromDump}. */
export interface FunctionFromDumpOptions {
  /** BAR sizes that override the dump's (slots 0..5, 6 = ROM; 0 removes a BAR). */
  readonly barSizes?: ReadonlyMap<number, bigint>;
  /** Per-VF sizes of SR-IOV VF BARs (slots 0..5). */
  readonly vfBarSizes?: ReadonlyMap<number, bigint>;
  /** VPD ROM behind a VPD capability (a generic one otherwise). */
  readonly vpd?: Uint8Array;
  readonly hooks?: DeviceHooks;
}

/**
 * Simulated hardware for a dumped device.
 *
 * @throws {RangeError} for a given (option) BAR size that the BAR's kind cannot have.
 *
 * @example
 * const [dump] = parseDumpFile(bytes, 'nic.txt');
 * const fn = functionFromDump(dump, { barSizes: new Map([[0, 0x20000n]]) });
 */
export function functionFromDump(
  dump: DeviceDump,
  options: FunctionFromDumpOptions = {},
): SimulatedFunction {
  const barSizes = usableRegionSizes(dump);
  for (const [index, size] of options.barSizes ?? []) barSizes.set(index, size);
  return new SimulatedFunction(dump.config, {
    barSizes,
    ...(options.vfBarSizes === undefined ? {} : { vfBarSizes: options.vfBarSizes }),
    ...(options.vpd === undefined ? {} : { vpd: options.vpd }),
    ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
  });
}

/** The dump's Region sizes that can belong to the BAR registers it shows. */
export function usableRegionSizes(dump: DeviceDump): Map<number, bigint> {
  const config = dump.config;
  const headerType = (config[PCI_HEADER_TYPE_OFFSET] ?? 0) & PCI_HEADER_TYPE_MASK;
  const [barCount, romOffset] =
    headerType === PCI_HEADER_TYPE_NORMAL
      ? [PCI_TYPE0_BAR_COUNT, PCI_ROM_ADDRESS_OFFSET]
      : headerType === PCI_HEADER_TYPE_BRIDGE
        ? [PCI_TYPE1_BAR_COUNT, PCI_ROM_ADDRESS1_OFFSET]
        : [0, undefined];
  const upperHalves = new Set<number>();
  for (let index = 0; index < barCount - 1; index++) {
    const value = readLe(config, {
      byteOffset: PCI_BASE_ADDRESS_0_OFFSET + 4 * index,
      sizeBytes: 4,
    });
    const is64 =
      (value & PCI_BASE_ADDRESS_SPACE_IO) === 0 &&
      (value & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
    if (value !== 0 && is64 && !upperHalves.has(index)) upperHalves.add(index + 1);
  }
  const usable = new Map<number, bigint>();
  for (const [index, size] of dump.barSizes) {
    if (index === PCI_ROM_RESOURCE) {
      if (romOffset === undefined) continue;
      const rom = readLe(config, { byteOffset: romOffset, sizeBytes: 4 });
      if ((rom & PCI_ROM_ADDRESS_MASK) !== 0 && isValidRomSize(size)) usable.set(index, size);
      continue;
    }
    if (index >= barCount || upperHalves.has(index)) continue;
    const value = readLe(config, {
      byteOffset: PCI_BASE_ADDRESS_0_OFFSET + 4 * index,
      sizeBytes: 4,
    });
    if (value === 0) continue;
    const { kind } = decodeBarType(value);
    const effective = kind === 'mem64' && index === barCount - 1 ? 'mem32' : kind;
    if (isValidBarSize(effective, size)) usable.set(index, size);
  }
  return usable;
}
