// SPDX-License-Identifier: MIT
/**
 * The machine file of `pciback sim --machine FILE` (DESIGN.md §4): pciback's options,
 * the host's PCI devices (a catalog model or a config dump) and the guest domains with
 * the devices attached to them and the program each runs. Validated with a schema;
 * every error names the path of the bad field.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { PciAddress } from '../pci/address.js';
import { parsePciSpec, type PciSpec } from '../toolstack/pci-spec.js';
import { parseHide } from '../pciback/stub/hide.js';
import { CATALOG_MODELS } from '../devices/catalog/index.js';
import { PcibackError } from '../errors.js';
import { GUEST_PROGRAMS, type GuestProgramName } from '../pcifront/programs/index.js';

/** The guest programs a domain can run: the registry of `pcifront/programs`. */
export const GUEST_PROGRAM_NAMES = Object.keys(GUEST_PROGRAMS) as [
  GuestProgramName,
  ...GuestProgramName[],
];

const bdf = z.string().superRefine((text, ctx) => {
  try {
    PciAddress.parse(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const hide = z.string().superRefine((text, ctx) => {
  try {
    parseHide(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const pciSpec = z.string().superRefine((text, ctx) => {
  try {
    parsePciSpec(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const catalogModel = z.enum(Object.keys(CATALOG_MODELS) as [string, ...string[]]);

const modelDevice = z.strictObject({
  bdf,
  model: catalogModel,
  /** Legacy IRQ firmware routed to the device. */
  irq: z.number().int().min(0).max(255).optional(),
});

const dumpDevice = z.strictObject({
  bdf,
  /** Path of an lspci text or binary dump, relative to the machine file. */
  dump: z.string().min(1),
  /** Which device of a multi-device dump (its address in the dump). */
  dumpBdf: bdf.optional(),
  /** BAR sizes overriding the dump's (region index 0..6 -> bytes). */
  barSizes: z.record(z.string().regex(/^[0-6]$/), z.number().int().positive()).optional(),
  irq: z.number().int().min(0).max(255).optional(),
});

const machineSchema = z.strictObject({
  pciback: z
    .strictObject({
      hide: hide.default(''),
      permissive: z.boolean().default(false),
      passthrough: z.boolean().default(false),
    })
    .default({ hide: '', permissive: false, passthrough: false }),
  devices: z.array(z.union([modelDevice, dumpDevice])).min(1),
  domains: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'use 1-64 letters, digits, _ . -'),
        pci: z.array(pciSpec).default([]),
        program: z.enum(GUEST_PROGRAM_NAMES).default('enumerate'),
        memoryPages: z.number().int().min(16).max(65536).default(256),
      }),
    )
    .default([]),
});

/**
 * A machine whose PCI bus is the host's (`pciback daemon --platform linux --guests`):
 * no simulated devices; `pciback.hide` and the domains name the host's functions.
 */
const hostBusMachineSchema = machineSchema.extend({
  devices: z
    .array(z.union([modelDevice, dumpDevice]))
    .max(0, 'the PCI bus is the host\'s: leave "devices" empty')
    .default([]),
});

/** Options of {@link parseMachine} and {@link loadMachineFile}. */
export interface ParseMachineOptions {
  /** The machine runs on the host's PCI bus: `devices` must be empty (or absent). */
  readonly hostBus?: boolean;
}

/** A validated machine. */
export type Machine = z.infer<typeof machineSchema>;
/** One device of a machine. */
export type MachineDevice = Machine['devices'][number];
/** One domain of a machine. */
export type MachineDomain = Machine['domains'][number];

/** A domain's PCI specs parsed (the schema has checked they parse). */
export function domainSpecs(domain: MachineDomain): PciSpec[] {
  return domain.pci.map((text) => parsePciSpec(text));
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : `${out === '' ? '' : '.'}${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

/**
 * Validate a parsed JSON document as a machine.
 * @throws PcibackError `MACHINE_INVALID` naming the path of the first bad field.
 */
export function parseMachine(
  document: unknown,
  source = 'machine',
  options: ParseMachineOptions = {},
): Machine {
  const result = (options.hostBus === true ? hostBusMachineSchema : machineSchema).safeParse(
    document,
  );
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue === undefined ? '(root)' : formatPath(issue.path);
    throw new PcibackError(
      'MACHINE_INVALID',
      `Invalid machine file "${source}": ${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const machine = result.data;
  const seen = new Set<string>();
  for (const [index, device] of machine.devices.entries()) {
    const key = PciAddress.parse(device.bdf).toString();
    if (seen.has(key)) {
      throw new PcibackError(
        'MACHINE_INVALID',
        `Invalid machine file "${source}": devices[${index}].bdf: "${key}" is used twice`,
      );
    }
    seen.add(key);
  }
  const names = new Set<string>();
  for (const [index, domain] of machine.domains.entries()) {
    if (names.has(domain.name)) {
      throw new PcibackError(
        'MACHINE_INVALID',
        `Invalid machine file "${source}": domains[${index}].name: "${domain.name}" is used twice`,
      );
    }
    names.add(domain.name);
  }
  return machine;
}

/** Read, parse and validate a machine file; dump paths become absolute. */
export function loadMachineFile(path: string, options: ParseMachineOptions = {}): Machine {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PcibackError(
      'MACHINE_UNREADABLE',
      `Cannot read machine file "${path}": ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw new PcibackError(
      'MACHINE_INVALID',
      `Invalid machine file "${path}": ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const machine = parseMachine(document, path, options);
  const base = dirname(resolve(path));
  return {
    ...machine,
    devices: machine.devices.map((d) => ('dump' in d ? { ...d, dump: resolve(base, d.dump) } : d)),
  };
}

/**
 * The built-in machine: catalog devices (a multi-function GPU among them) and two guests
 * with devices attached, enumerating what they see; a third guest exercises MSI-X.
 */
export const DEFAULT_MACHINE: Machine = parseMachine(
  {
    pciback: { hide: '(0000:01:00.0)(0000:02:00.0)(0000:03:00.0)(0000:04:00.*)' },
    devices: [
      { bdf: '0000:00:1c.0', model: 'root-port' },
      { bdf: '0000:01:00.0', model: 'nic-sriov', irq: 16 },
      { bdf: '0000:02:00.0', model: 'nvme', irq: 17 },
      { bdf: '0000:03:00.0', model: 'xhci', irq: 18 },
      { bdf: '0000:04:00.0', model: 'gpu', irq: 19 },
    ],
    domains: [
      { name: 'guest1', pci: ['0000:04:00.*', '0000:02:00.0'], program: 'enumerate' },
      { name: 'guest2', pci: ['0000:01:00.0', '0000:03:00.0'], program: 'enumerate' },
    ],
  },
  'built-in',
);
