// SPDX-License-Identifier: MIT
/**
 * Puts one device behind the virtualizer for the single-device commands (`confspace`,
 * `guest-view`): a dump file or a catalog model becomes simulated hardware, the
 * simulator's PCI core presents it, and pciback's virtualizer sits in front.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { PciAddress } from '../pci/address.js';
import { parseDumpFile, type DeviceDump } from '../pci/dump.js';
import { functionFromDump } from '../devices/from-dump.js';
import { buildCatalogDevice, isCatalogModel, CATALOG_MODELS } from '../devices/catalog/index.js';
import type { SimulatedFunction } from '../devices/simulated-function.js';
import { SimHostPciDevice, firmwareIrq } from '../platform/sim/pci-core.js';
import {
  VirtualConfigSpace,
  parseQuirkFieldSpec,
  type QuirkFieldSpec,
} from '../pciback/confspace/index.js';
import { UserError } from './output.js';

/** The policy flags every single-device command takes. */
export interface PolicyFlags {
  readonly permissive?: boolean;
  readonly allowInterruptControl?: boolean;
  readonly quirk?: readonly QuirkFieldSpec[];
}

/** Options of the single-device commands. */
export interface DeviceFlags extends PolicyFlags {
  readonly device?: string;
  readonly model?: string;
  readonly bdf?: string;
}

/** A device ready for guest accesses. */
export interface DeviceUnderTest {
  readonly description: string;
  readonly address: PciAddress;
  readonly hasDomain: boolean;
  readonly host: SimHostPciDevice;
  readonly space: VirtualConfigSpace;
}

/** Add `--device/--model/--bdf` and the policy flags to a command. */
export function addDeviceOptions(command: Command): Command {
  return command
    .option('--device <file>', 'config dump: lspci -x/-xxx/-xxxx text or a 64/256/4096-byte binary')
    .option(
      '--model <name>',
      `a catalog device instead of a dump (${Object.keys(CATALOG_MODELS).join(', ')})`,
    )
    .option('--bdf <address>', 'which device of a multi-device dump or model ([DDDD:]BB:DD.F)')
    .option('--permissive', 'permissive mode: writes to unvirtualized registers reach hardware')
    .option('--allow-interrupt-control', 'let the guest toggle INTx disable, MSI and MSI-X enable')
    .option(
      '--quirk <reg:size:mask>',
      'add a pass-through field (hex, e.g. 0xe0:4:0xffffffff); repeatable',
      (text: string, previous: QuirkFieldSpec[] | undefined) => {
        try {
          return [...(previous ?? []), parseQuirkFieldSpec(text)];
        } catch (err) {
          throw new UserError(`Invalid --quirk "${text}": ${(err as Error).message}`, {
            cause: err,
          });
        }
      },
    );
}

function parseBdf(text: string): PciAddress {
  try {
    return PciAddress.parse(text);
  } catch (err) {
    throw new UserError(`Invalid --bdf "${text}": ${(err as Error).message}`, { cause: err });
  }
}

function pickDump(
  dumps: readonly DeviceDump[],
  file: string,
  bdf: PciAddress | undefined,
): DeviceDump {
  if (dumps.length === 0) throw new UserError(`Cannot use "${file}": it holds no device`);
  if (bdf === undefined) {
    const [only] = dumps;
    if (only !== undefined && dumps.length === 1) return only;
    const list = dumps.map((d) => d.address.toShortString()).join(', ');
    throw new UserError(
      `Cannot choose a device in "${file}": it holds ${dumps.length} (${list}); pass --bdf`,
    );
  }
  // A short --bdf matches whatever domain the dump uses.
  const match = dumps.find(
    (d) =>
      d.address.equals(bdf) ||
      (bdf.domain === 0 && d.address.toShortString() === bdf.toShortString()),
  );
  if (match === undefined) {
    throw new UserError(`Cannot find device "${bdf.toShortString()}" in "${file}"`);
  }
  return match;
}

function loadHardware(flags: DeviceFlags): {
  hardware: SimulatedFunction;
  address: PciAddress;
  hasDomain: boolean;
  description: string;
} {
  const bdf = flags.bdf === undefined ? undefined : parseBdf(flags.bdf);
  if ((flags.device === undefined) === (flags.model === undefined)) {
    throw new UserError(
      'Cannot choose a device: give exactly one of --device FILE or --model NAME',
    );
  }
  if (flags.model !== undefined) {
    if (!isCatalogModel(flags.model)) {
      throw new UserError(
        `Unknown model "${flags.model}": expected one of ${Object.keys(CATALOG_MODELS).join(', ')}`,
      );
    }
    const address = bdf ?? new PciAddress(0, 1, 0, 0);
    const functions = buildCatalogDevice(flags.model);
    const chosen = functions.find((f) => f.fn === address.fn);
    if (chosen === undefined) {
      throw new UserError(`Model "${flags.model}" has no function ${address.fn}`);
    }
    return {
      hardware: chosen.device,
      address,
      hasDomain: true,
      description: CATALOG_MODELS[flags.model],
    };
  }
  const file = flags.device ?? '';
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new UserError(`Cannot read device dump "${file}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  let dumps: DeviceDump[];
  try {
    dumps = parseDumpFile(bytes, file);
  } catch (err) {
    throw new UserError(`Cannot parse device dump "${file}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  const dump = pickDump(dumps, file, bdf);
  return {
    hardware: functionFromDump(dump),
    address: dump.address,
    hasDomain: dump.hasDomain,
    description: dump.description,
  };
}

/** Present `hardware` through the simulator's PCI core and virtualize it as pciback does at seize. */
export function seizeForGuest(
  hardware: SimulatedFunction,
  address: PciAddress,
  flags: PolicyFlags = {},
): { host: SimHostPciDevice; space: VirtualConfigSpace } {
  const host = new SimHostPciDevice(hardware, { address, irq: firmwareIrq(hardware) });
  let space: VirtualConfigSpace;
  try {
    space = VirtualConfigSpace.create(host, {
      global: { permissive: flags.permissive === true },
      policy: { permissive: false, allowInterruptControl: flags.allowInterruptControl === true },
    });
  } catch (err) {
    throw new UserError(`Cannot seize "${address.toString()}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  for (const quirk of flags.quirk ?? []) {
    space.addQuirkField(quirk.reg, quirk.sizeBytes, quirk.mask);
  }
  return { host, space };
}

/** Build the device the flags describe, seized and virtualized as pciback would. */
export function setUpDevice(flags: DeviceFlags): DeviceUnderTest {
  const { hardware, address, hasDomain, description } = loadHardware(flags);
  return { description, address, hasDomain, ...seizeForGuest(hardware, address, flags) };
}
