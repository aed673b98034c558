// SPDX-License-Identifier: MIT
/**
 * What the daemon (and the CLI acting without one) needs from a platform, as one
 * {@link PlatformSession}: the host's PCI bus, the stub driver, which domains exist and
 * which device each holds. Sessions come from factories registered by name
 * ({@link registerPlatform}): `linux` is built in (real sysfs, or a fake host described
 * by a JSON file); `sim` is registered by the simulator's integration.
 *
 * The fake host (`--fake-sysfs FILE`) is a `FakeSysfs` tree: a temporary directory the
 * daemon reacts to like the kernel does. With a state file (`--fake-sysfs-state FILE`)
 * its driver bindings survive a restart of the daemon as a real kernel's would: every
 * write to the tree saves them, and the next start applies them on top of FILE.
 */
import { mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { PcibackError } from '../errors.js';
import { PciAddress } from '../pci/index.js';
import { PCI_RESET_METHODS, type PciHostPlatform } from '../platform/pci-host.js';
import {
  FakeSysfs,
  LinuxPciHost,
  ModuleAliases,
  chooseStubDriver,
  fakeFunctionsFromDumpFile,
  isStubDriverName,
  isSysfsError,
  type FakeDriverSpec,
  type FakePciFunctionSpec,
  type FakePciId,
  type SimpleConfigSpec,
  SysfsIoWriteDecorator,
  type SysfsIo,
} from '../platform/linux/index.js';
import { SILENT_LOGGER, type Logger } from '../platform/types.js';
import type { AssignableDb } from '../state/index.js';
import { kernelStubAttribute } from './stub-attributes.js';
import type { AerInjectResult, StubAttribute } from './control/protocol.js';

/** The platforms `--platform` accepts. */
export const PLATFORM_NAMES = ['sim', 'linux'] as const;

/** One of {@link PLATFORM_NAMES}. */
export type PlatformName = (typeof PLATFORM_NAMES)[number];

/** True when `name` is one of {@link PLATFORM_NAMES}. */
export function isPlatformName(name: string): name is PlatformName {
  return (PLATFORM_NAMES as readonly string[]).includes(name);
}

/**
 * A platform opened for the assignable-device operations.
 *
 * @example
 * const session = await openPlatformSession('linux', { db, logger });
 * reconcile(db, session.host, { stubDriver: session.stubDriver, liveDomains: () => session.liveDomains() });
 * await session.close();
 */
export interface PlatformSession {
  readonly host: PciHostPlatform;
  /** The driver that holds assignable devices (`pciback`, `vfio-pci`, `pci-stub`). */
  readonly stubDriver: string;
  /** The domains that exist now. */
  liveDomains(): Iterable<number>;
  /** The domain a device is given to, or undefined. */
  attachedTo(address: PciAddress): number | undefined;
  /** Take a device off the stub's own claim list (pciback's `remove_slot`); see AssignableService. */
  forgetStubSlot?(address: PciAddress): void;
  /**
   * The stub's sysfs-like attribute `name` (spec §6.5): read when `value` is undefined
   * (the listing), else written ('' back). Absent where the stub driver has none
   * (vfio-pci, pci-stub).
   */
  stubAttribute?(name: StubAttribute, value: string | undefined): string;
  /** Simulator only: inject an uncorrectable error into a device and run AER recovery. */
  injectAerError?(address: PciAddress, options: { fatal: boolean }): Promise<AerInjectResult>;
  /** For `status`: the sysfs root in use (a fake tree's directory), when there is one. */
  readonly sysfsRoot?: string;
  /** For `status`: the fake host's description file. */
  readonly fakeSysfs?: string;
  /** Release what the session holds (a fake tree is deleted). */
  close(): Promise<void>;
}

/** What a factory gets. Options that do not apply to a platform are refused by it. */
export interface PlatformSessionOptions {
  /** The state database (a session may read attachments from it). */
  readonly db: AssignableDb;
  readonly logger?: Logger;
  /** The stub driver to use instead of the platform's first choice. */
  readonly stubDriver?: string | undefined;
  /** linux: the sysfs mount (default `/sys`). */
  readonly sysfsRoot?: string | undefined;
  /** linux: a fake host described by this JSON file instead of sysfs. */
  readonly fakeSysfs?: string | undefined;
  /** linux with `fakeSysfs`: where the fake keeps its driver bindings across runs. */
  readonly fakeSysfsState?: string | undefined;
  /** Only read the host (listing); no privileges needed. */
  readonly readOnly?: boolean | undefined;
  /** The caller's uid (default: the process's): writing the real `/sys` needs 0. */
  readonly uid?: number | undefined;
}

/** Opens a session of one platform. */
export type PlatformSessionFactory = (options: PlatformSessionOptions) => Promise<PlatformSession>;

const factories = new Map<string, PlatformSessionFactory>();

/**
 * Make `name` available to `--platform` (the simulator registers `sim`). Returns a
 * function that removes it again (tests).
 *
 * @example
 * registerPlatform('sim', async ({ db }) => simSession(machine, db));
 */
export function registerPlatform(name: string, factory: PlatformSessionFactory): () => void {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) {
    throw new RangeError(`Invalid platform name "${name}": use lowercase letters, digits and "-"`);
  }
  const previous = factories.get(name);
  factories.set(name, factory);
  return () => {
    if (factories.get(name) !== factory) return;
    if (previous === undefined) factories.delete(name);
    else factories.set(name, previous);
  };
}

/** The platforms that have a factory now. */
export function availablePlatforms(): string[] {
  return [...factories.keys()].sort();
}

/**
 * Open a session of platform `name`.
 *
 * @throws {PcibackError} `PLATFORM_UNAVAILABLE` when nothing registered it (`sim`
 *   before the simulator's integration lands), or the factory's own errors.
 */
export async function openPlatformSession(
  name: string,
  options: PlatformSessionOptions,
): Promise<PlatformSession> {
  return requireFactory(name)(options);
}

function requireFactory(name: string): PlatformSessionFactory {
  const factory = factories.get(name);
  if (factory === undefined) {
    const hint =
      name === 'sim'
        ? ': it is not available yet (the simulator does not serve assignable devices so far); use --platform linux, with --fake-sysfs FILE for a fake host'
        : `: expected one of ${availablePlatforms()
            .map((p) => `"${p}"`)
            .join(', ')}`;
    throw new PcibackError('PLATFORM_UNAVAILABLE', `Cannot use platform "${name}"${hint}`);
  }
  return factory;
}

/**
 * Checks before anything else is opened: the platform is available, and the linux
 * platform writing the real `/sys` runs as root.
 *
 * @throws {PcibackError} `PLATFORM_UNAVAILABLE`, `PERMISSION_DENIED`.
 */
export function preflightPlatform(name: string, options: Omit<PlatformSessionOptions, 'db'>): void {
  requireFactory(name);
  if (name !== 'linux' || options.fakeSysfs !== undefined || options.readOnly === true) return;
  checkSysfsWriteAccess(options.sysfsRoot ?? '/sys', options.uid);
}

/**
 * Refuse to write the real `/sys` without root. Another root (a copy, a test tree) is
 * allowed to anyone.
 *
 * @throws {PcibackError} `PERMISSION_DENIED`.
 * @example
 * checkSysfsWriteAccess('/sys', 1000); // throws: must run as root
 * checkSysfsWriteAccess('/tmp/fake-sys', 1000); // fine
 */
export function checkSysfsWriteAccess(sysfsRoot: string, uid = process.getuid?.() ?? 0): void {
  if (uid === 0) return;
  let real = resolve(sysfsRoot);
  try {
    real = realpathSync(real);
  } catch {
    // A root that does not exist is not /sys; LinuxPciHost reports it later.
  }
  if (real === '/sys') {
    throw new PcibackError(
      'PERMISSION_DENIED',
      `Cannot change PCI devices as user ${uid}: must run as root: it writes /sys/bus/pci (a fake host needs no privileges: --fake-sysfs FILE)`,
    );
  }
}

// --- linux -----------------------------------------------------------------------------------

const PCIBACK_SLOTS = 'bus/pci/drivers/pciback/slots';
const PCIBACK_REMOVE_SLOT = 'bus/pci/drivers/pciback/remove_slot';

/** A Linux PCI bus opened for a session, with the fake host behind it when there is one. */
export interface OpenedLinuxHost {
  readonly host: LinuxPciHost;
  /** Dispose of it when the session closes. */
  readonly fake: FakeHost | undefined;
}

/**
 * The Linux bus of a session: a fake host (`fakeSysfs`) or sysfs at `sysfsRoot` (root
 * needed to write the real `/sys`). On a real sysfs, the running kernel's module alias
 * tables tell the native driver of a device adopted from the stub.
 *
 * @throws {PcibackError} `PLATFORM_OPTIONS` for conflicting options, `PERMISSION_DENIED`,
 *   `FAKE_HOST_INVALID`.
 */
export function openLinuxPciHost(options: PlatformSessionOptions): OpenedLinuxHost {
  const logger = options.logger ?? SILENT_LOGGER;
  const readOnly = options.readOnly === true;
  if (options.fakeSysfs !== undefined && options.sysfsRoot !== undefined) {
    throw new PcibackError(
      'PLATFORM_OPTIONS',
      'Cannot open the linux platform: give --sysfs-root or --fake-sysfs, not both',
    );
  }
  if (options.fakeSysfsState !== undefined && options.fakeSysfs === undefined) {
    throw new PcibackError(
      'PLATFORM_OPTIONS',
      'Cannot open the linux platform: --fake-sysfs-state needs --fake-sysfs',
    );
  }
  if (options.fakeSysfs !== undefined) {
    const fake = loadFakeHost(options.fakeSysfs, {
      ...(options.fakeSysfsState === undefined ? {} : { statePath: options.fakeSysfsState }),
      logger,
    });
    const { moduleAliases, sysfs } = fake;
    const mountinfo = (): string => sysfs.mountinfo();
    const host = new LinuxPciHost({ io: fake.io, readOnly, logger, moduleAliases, mountinfo });
    return { host, fake };
  }
  const root = options.sysfsRoot ?? '/sys';
  if (!readOnly) checkSysfsWriteAccess(root, options.uid);
  const moduleAliases = ModuleAliases.load();
  return { host: new LinuxPciHost({ root, readOnly, logger, moduleAliases }), fake: undefined };
}

/**
 * The `linux` platform: `LinuxPciHost` on `sysfsRoot` (default `/sys`) or on a fake
 * host, with `chooseStubDriver`. Sysfs cannot tell which Xen domains exist, so the
 * domains the database's attachments name are taken as live: reconcile never releases
 * an attachment it cannot check.
 */
export const openLinuxSession: PlatformSessionFactory = (options) => {
  let opened: OpenedLinuxHost;
  try {
    opened = openLinuxPciHost(options);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
  const { host, fake } = opened;
  try {
    const stubDriver = chooseStubDriver(host, options.stubDriver);
    const { db } = options;
    const session: PlatformSession = {
      host,
      stubDriver,
      sysfsRoot: host.io.root,
      ...(options.fakeSysfs === undefined ? {} : { fakeSysfs: resolve(options.fakeSysfs) }),
      liveDomains: () => new Set(db.listAttachments().map((a) => a.domid)),
      attachedTo: (address) => db.getAttachment(address)?.domid,
      ...(stubDriver === 'pciback'
        ? {
            forgetStubSlot: (address: PciAddress) => {
              forgetPcibackSlot(host.io, address);
            },
            stubAttribute: (name: StubAttribute, value: string | undefined) =>
              kernelStubAttribute(host, host.io, name, value),
          }
        : {}),
      close: () => {
        fake?.dispose();
        return Promise.resolve();
      },
    };
    return Promise.resolve(session);
  } catch (err) {
    fake?.dispose();
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
};

registerPlatform('linux', openLinuxSession);

/**
 * pciback's `remove_slot` for a device on its `slots` list, as xl does on remove: a
 * device pciback took through `driver_override` joins the list (pcistub_probe), and a
 * listed device goes back to pciback on the next probe.
 */
export function forgetPcibackSlot(io: SysfsIo, address: PciAddress): void {
  if (!io.exists(PCIBACK_SLOTS)) return;
  const listed = io
    .readText(PCIBACK_SLOTS)
    .split('\n')
    .some((line) => {
      try {
        return line.trim() !== '' && PciAddress.parse(line).equals(address);
      } catch {
        return false;
      }
    });
  if (!listed) return;
  try {
    io.writeText(PCIBACK_REMOVE_SLOT, address.toString());
  } catch (err) {
    if (isSysfsError(err, 'ENOENT')) return;
    throw new PcibackError(
      isSysfsError(err) ? err.code : 'HOST_IO',
      `Cannot take "${address.toString()}" off pciback's slot list: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

// --- The fake host -----------------------------------------------------------------------------

const number16 = z.union([
  z.number().int().min(0).max(0xffff),
  z
    .string()
    .regex(/^0x[0-9a-fA-F]{1,4}$/, 'expected a number or "0x" and hex digits')
    .transform((text) => Number.parseInt(text, 16)),
]);
const number24 = z.union([
  z.number().int().min(0).max(0xffffff),
  z
    .string()
    .regex(/^0x[0-9a-fA-F]{1,6}$/, 'expected a number or "0x" and hex digits')
    .transform((text) => Number.parseInt(text, 16)),
]);
const bdfText = z.string().superRefine((text, ctx) => {
  try {
    PciAddress.parse(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
const driverName = z.string().regex(/^[^\s/]{1,255}$/, 'a driver name has no spaces or slashes');

const functionCommon = {
  /** Bound driver at the start (overridden by the state file). */
  driver: driverName.nullable().optional(),
  driverOverride: driverName.nullable().optional(),
  iommuGroup: z.number().int().min(0).nullable().optional(),
  irq: z.number().int().min(0).max(0xffff).optional(),
  parent: bdfText.nullable().optional(),
  physfn: bdfText.optional(),
  resetMethods: z.array(z.enum(PCI_RESET_METHODS)).optional(),
  /** The command register at the start (`0x0406`: memory decode and bus mastering). */
  command: number16.optional(),
  /** dom0's users: network interfaces and block devices (mounted ones in mountinfo). */
  consumers: z
    .strictObject({
      net: z
        .array(z.strictObject({ name: z.string().regex(/^[\w.-]{1,15}$/), up: z.boolean() }))
        .max(64)
        .optional(),
      block: z
        .array(
          z.strictObject({
            name: z.string().regex(/^[\w.-]{1,32}$/),
            dev: z.string().regex(/^\d{1,4}:\d{1,7}$/),
            holders: z
              .array(z.string().regex(/^[\w.-]{1,32}$/))
              .max(16)
              .optional(),
            mountedOn: z
              .string()
              .regex(/^\/\S{0,255}$/)
              .optional(),
          }),
        )
        .max(64)
        .optional(),
    })
    .optional(),
};

const dumpFunction = z.strictObject({
  /** An lspci text or binary dump, relative to the file. */
  dump: z.string().min(1),
  /** Which device of a dump holding several (its address in the dump). */
  dumpBdf: bdfText.optional(),
  /** Where it sits on the fake host (default: its address in the dump). */
  address: bdfText.optional(),
  ...functionCommon,
});

const simpleFunction = z.strictObject({
  address: bdfText,
  simple: z.strictObject({
    vendorId: number16,
    deviceId: number16,
    classCode: number24,
    headerType: z.number().int().min(0).max(2).optional(),
    revision: z.number().int().min(0).max(0xff).optional(),
    subsystemVendorId: number16.optional(),
    subsystemDeviceId: number16.optional(),
    interruptPin: z.number().int().min(0).max(4).optional(),
    irq: z.number().int().min(0).max(0xff).optional(),
    /** BAR index ("0".."5") to size in bytes. */
    barSizes: z.record(z.string().regex(/^[0-5]$/), z.number().int().min(16)).optional(),
    secondaryBus: z.number().int().min(0).max(0xff).optional(),
    subordinateBus: z.number().int().min(0).max(0xff).optional(),
    pm: z.strictObject({ noSoftReset: z.boolean().optional() }).optional(),
    pcie: z.strictObject({ flr: z.boolean().optional() }).optional(),
  }),
  ...functionCommon,
});

const functionEntry = z.union([
  /** A dump path: every device in it, at its own address, without a driver. */
  z.string().min(1),
  dumpFunction,
  simpleFunction,
]);

const pciId = z.strictObject({
  vendor: number16.optional(),
  device: number16.optional(),
  subvendor: number16.optional(),
  subdevice: number16.optional(),
  classCode: number24.optional(),
  classMask: number24.optional(),
});

const driverEntry = z.union([
  driverName,
  z.strictObject({ name: driverName, ids: z.array(pciId).optional() }),
]);

const fakeHostSchema = z.preprocess(
  // A bare list is the functions alone.
  (document) => (Array.isArray(document) ? { functions: document } : document),
  z.strictObject({
    functions: z.array(functionEntry).min(1),
    /** Drivers in probe order; default `["pciback"]`. Functions' drivers are added after. */
    drivers: z.array(driverEntry).optional(),
    kernel: z
      .strictObject({
        resetMethodFile: z.boolean().optional(),
        driverOverrideFile: z.boolean().optional(),
      })
      .optional(),
  }),
);

const fakeStateSchema = z.strictObject({
  version: z.literal(1),
  functions: z.record(
    z.string(),
    z.strictObject({ driver: driverName.nullable(), driverOverride: driverName.nullable() }),
  ),
});

/** The saved driver bindings of a fake host. */
export type FakeHostState = z.infer<typeof fakeStateSchema>;

/** Options of {@link loadFakeHost}. */
export interface LoadFakeHostOptions {
  /** Where the bindings are kept across runs (read at load when present, written on every change). */
  readonly statePath?: string;
  /** Where the temporary tree goes (default: beside the state file, else the OS temp dir). */
  readonly parentDir?: string;
  readonly logger?: Logger;
}

/** A loaded fake host. */
export interface FakeHost {
  /** The tree (for tests: its write log, driver lookups). */
  readonly sysfs: FakeSysfs;
  /** The tree as a `LinuxPciHost` should use it: writes save the state file. */
  readonly io: SysfsIo;
  /**
   * The fake kernel's module alias tables: each driver's ID table as depmod would write
   * it, so a device adopted from the stub gets the driver it came from.
   */
  readonly moduleAliases: ModuleAliases;
  /** Delete the tree (the state file stays). */
  dispose(): void;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : `${out === '' ? '' : '.'}${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PcibackError(
      'FAKE_HOST_INVALID',
      `Cannot read ${what} "${path}": ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PcibackError(
      'FAKE_HOST_INVALID',
      `Invalid ${what} "${path}": ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * The issue to report: for a union that matched no branch, the branch that got
 * furthest, so the message names the field that is wrong rather than "invalid input"
 * at the entry.
 */
function reportedIssue(issue: z.core.$ZodIssue): { path: PropertyKey[]; message: string } {
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // Deeper is better; at the same depth a value of the right type with a wrong
    // content ("zz" for a hex string) says more than "expected number".
    const score = (candidate: z.core.$ZodIssue): number =>
      candidate.path.length * 2 + (candidate.code === 'invalid_type' ? 0 : 1);
    let best: z.core.$ZodIssue | undefined;
    for (const branch of issue.errors) {
      const first = branch[0];
      if (first !== undefined && (best === undefined || score(first) > score(best))) {
        best = first;
      }
    }
    if (best !== undefined) {
      const inner = reportedIssue(best);
      return { path: [...issue.path, ...inner.path], message: inner.message };
    }
  }
  return { path: issue.path, message: issue.message };
}

function parseWith<T extends z.ZodType>(
  schema: T,
  document: unknown,
  what: string,
  path: string,
): z.output<T> {
  const result = schema.safeParse(document);
  if (!result.success) {
    const first = result.error.issues[0];
    const issue = first === undefined ? undefined : reportedIssue(first);
    throw new PcibackError(
      'FAKE_HOST_INVALID',
      `Invalid ${what} "${path}": ${issue === undefined ? '(root)' : formatPath(issue.path)}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return result.data;
}

interface BuiltFunction {
  readonly spec: FakePciFunctionSpec;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly command: number | undefined;
}

/** `T` without `undefined` in its optional fields (zod's output has it, our specs do not). */
type Defined<T> = { [K in keyof T]: Exclude<T[K], undefined> };

function defined<T extends object>(value: T): Defined<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, field]) => field !== undefined),
  ) as Defined<T>;
}

function barSizeMap(record: Readonly<Record<string, number>> | undefined): Map<number, bigint> {
  return new Map(Object.entries(record ?? {}).map(([k, v]) => [Number(k), BigInt(v)]));
}

function idsOf(config: Uint8Array): { vendorId: number; deviceId: number } {
  const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
  return { vendorId: view.getUint16(0, true), deviceId: view.getUint16(2, true) };
}

/** The common fields of an entry, as `FakePciFunctionSpec` fields. */
function commonSpec(
  entry: z.output<typeof dumpFunction> | z.output<typeof simpleFunction>,
): Partial<FakePciFunctionSpec> {
  const { driver, driverOverride, iommuGroup, irq, parent, physfn, resetMethods } = entry;
  const consumers =
    entry.consumers === undefined
      ? undefined
      : {
          ...(entry.consumers.net === undefined ? {} : { net: entry.consumers.net }),
          ...(entry.consumers.block === undefined
            ? {}
            : { block: entry.consumers.block.map((b) => defined(b)) }),
        };
  return defined({
    driver,
    driverOverride,
    iommuGroup,
    irq,
    parent,
    physfn,
    resetMethods,
    consumers,
  });
}

function buildFunctions(
  entries: readonly z.output<typeof functionEntry>[],
  base: string,
  source: string,
): BuiltFunction[] {
  const built: BuiltFunction[] = [];
  entries.forEach((entry, index) => {
    const where = `Invalid fake host "${source}": functions[${index}]`;
    const dumps = (file: string): FakePciFunctionSpec[] => {
      try {
        return fakeFunctionsFromDumpFile(resolve(base, file));
      } catch (err) {
        throw new PcibackError('FAKE_HOST_INVALID', `${where}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    };
    if (typeof entry === 'string') {
      for (const spec of dumps(entry)) {
        built.push({ spec, ...idsOf(spec.config ?? new Uint8Array(4)), command: undefined });
      }
      return;
    }
    if ('dump' in entry) {
      const all = dumps(entry.dump);
      let chosen: FakePciFunctionSpec | undefined;
      if (entry.dumpBdf !== undefined) {
        const want = PciAddress.parse(entry.dumpBdf);
        chosen = all.find((s) => PciAddress.parse(s.address.toString()).equals(want));
        if (chosen === undefined) {
          throw new PcibackError(
            'FAKE_HOST_INVALID',
            `${where}.dumpBdf: "${entry.dumpBdf}" is not in dump "${entry.dump}"`,
          );
        }
      } else if (all.length === 1) chosen = all[0];
      else {
        throw new PcibackError(
          'FAKE_HOST_INVALID',
          `${where}: dump "${entry.dump}" holds ${all.length} devices: give dumpBdf`,
        );
      }
      if (chosen === undefined) return;
      built.push({
        spec: {
          ...chosen,
          ...(entry.address === undefined ? {} : { address: entry.address }),
          ...commonSpec(entry),
        },
        ...idsOf(chosen.config ?? new Uint8Array(4)),
        command: entry.command,
      });
      return;
    }
    const { barSizes, pm, pcie, ...simple } = entry.simple;
    const simpleSpec: SimpleConfigSpec = {
      ...defined(simple),
      ...(pm === undefined ? {} : { pm: defined(pm) }),
      ...(pcie === undefined ? {} : { pcie: defined(pcie) }),
      barSizes: barSizeMap(barSizes),
    };
    built.push({
      spec: { address: entry.address, simple: simpleSpec, ...commonSpec(entry) },
      vendorId: simple.vendorId,
      deviceId: simple.deviceId,
      command: entry.command,
    });
  });
  return built;
}

/**
 * The drivers of the tree: the file's list (default `["pciback"]`) in order, then each
 * driver a function is bound to in the file. A driver that is not a stub matches the
 * IDs of the functions the *file* binds to it, whatever the state file says now, so a
 * device can go back to its original driver after a restart.
 */
/** A fake driver's ID as depmod writes it (`file2alias.c` `do_pci_entry`). */
function aliasOfId(id: FakePciId): string {
  const field = (value: number | undefined, digits: number): string =>
    value === undefined || value === 0xffffffff
      ? '*'
      : value.toString(16).toUpperCase().padStart(digits, '0');
  const mask = id.classMask ?? 0;
  const classByte = (shift: number): string =>
    ((mask >>> shift) & 0xff) === 0xff ? field(((id.classCode ?? 0) >>> shift) & 0xff, 2) : '*';
  return (
    `pci:v${field(id.vendor, 8)}d${field(id.device, 8)}` +
    `sv${field(id.subvendor, 8)}sd${field(id.subdevice, 8)}` +
    `bc${classByte(16)}sc${classByte(8)}i${classByte(0)}`
  );
}

/** The fake kernel's `modules.alias`: every ID of every (non-stub) driver. */
function fakeModuleAliases(drivers: readonly (string | FakeDriverSpec)[]): ModuleAliases {
  return new ModuleAliases(
    drivers.flatMap((driver) =>
      typeof driver === 'string'
        ? []
        : (driver.ids ?? []).map((id) => ({ pattern: aliasOfId(id), module: driver.name })),
    ),
  );
}

function buildDrivers(
  declared: readonly z.output<typeof driverEntry>[],
  functions: readonly BuiltFunction[],
): (string | FakeDriverSpec)[] {
  const homeIds = new Map<string, FakePciId[]>();
  for (const fn of functions) {
    const name = fn.spec.driver;
    if (name === undefined || name === null || isStubDriverName(name)) continue;
    const ids = homeIds.get(name) ?? [];
    if (!ids.some((id) => id.vendor === fn.vendorId && id.device === fn.deviceId)) {
      ids.push({ vendor: fn.vendorId, device: fn.deviceId });
    }
    homeIds.set(name, ids);
  }
  const out: (string | FakeDriverSpec)[] = [];
  const seen = new Set<string>();
  for (const entry of declared) {
    const name = typeof entry === 'string' ? entry : entry.name;
    if (seen.has(name)) continue;
    seen.add(name);
    if (isStubDriverName(name)) {
      out.push(name);
      continue;
    }
    const ids: FakePciId[] = [
      ...(typeof entry === 'string' ? [] : (entry.ids ?? []).map(toFakeId)),
      ...(homeIds.get(name) ?? []),
    ];
    out.push({ name, ids });
  }
  for (const [name, ids] of homeIds) {
    if (!seen.has(name)) out.push({ name, ids });
  }
  return out;
}

function toFakeId(id: z.output<typeof pciId>): FakePciId {
  return defined(id);
}

/**
 * Build a fake host from its description file: a JSON list of functions, or
 * `{ "functions": [...], "drivers": [...], "kernel": {...} }`. A function is a dump
 * path (every device in it, at its own address), `{ "dump": PATH, "dumpBdf"?,
 * "address"?, ... }` or `{ "address": BDF, "simple": { "vendorId", "deviceId",
 * "classCode", ... }, ... }`, with `driver`, `driverOverride`, `iommuGroup`, `parent`,
 * `physfn`, `irq`, `resetMethods` and `command` (the command register: `"0x0406"`
 * means bus mastering is on, the device is busy). Paths are relative to the file.
 *
 * @throws {PcibackError} `FAKE_HOST_INVALID` naming the path of the bad field.
 * @example
 * // host.json: { "functions": [{ "address": "0000:03:00.0", "driver": "igb",
 * //   "simple": { "vendorId": "0x8086", "deviceId": "0x10c9", "classCode": "0x020000" } }] }
 * const fake = loadFakeHost('host.json', { statePath: 'host-state.json' });
 * const host = new LinuxPciHost({ io: fake.io });
 */
export function loadFakeHost(path: string, options: LoadFakeHostOptions = {}): FakeHost {
  const logger = options.logger ?? SILENT_LOGGER;
  const description = parseWith(fakeHostSchema, readJson(path, 'fake host'), 'fake host', path);
  const functions = buildFunctions(description.functions, dirname(resolve(path)), path);
  const drivers = buildDrivers(description.drivers ?? ['pciback'], functions);

  const statePath = options.statePath === undefined ? undefined : resolve(options.statePath);
  let specs = functions.map((fn) => fn.spec);
  if (statePath !== undefined) {
    mkdirSync(dirname(statePath), { recursive: true });
    const state = readFakeState(statePath);
    if (state !== undefined) {
      const known = new Set(specs.map((s) => PciAddress.parse(s.address.toString()).toString()));
      for (const bdf of Object.keys(state.functions)) {
        if (!known.has(bdf)) {
          logger.warn(
            { device: bdf },
            `Fake host state names "${bdf}", which is not in "${path}": ignored`,
          );
        }
      }
      specs = specs.map((spec) => {
        const saved = state.functions[PciAddress.parse(spec.address.toString()).toString()];
        return saved === undefined
          ? spec
          : { ...spec, driver: saved.driver, driverOverride: saved.driverOverride };
      });
    }
  }

  let sysfs: FakeSysfs;
  try {
    sysfs = FakeSysfs.create({
      functions: specs,
      drivers,
      ...(description.kernel === undefined ? {} : { kernel: defined(description.kernel) }),
      parentDir: options.parentDir ?? (statePath === undefined ? tmpdir() : dirname(statePath)),
    });
  } catch (err) {
    throw new PcibackError(
      'FAKE_HOST_INVALID',
      `Invalid fake host "${path}": ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  try {
    for (const fn of functions) {
      if (fn.command === undefined) continue;
      const bdf = PciAddress.parse(fn.spec.address.toString()).toString();
      sysfs.writeBytes(
        `bus/pci/devices/${bdf}/config`,
        4,
        new Uint8Array([fn.command & 0xff, fn.command >>> 8]),
      );
    }
    sysfs.clearWriteLog();
  } catch (err) {
    sysfs.dispose();
    throw err;
  }
  const addresses = specs.map((s) => PciAddress.parse(s.address.toString()).toString());
  const save =
    statePath === undefined
      ? () => undefined
      : () => {
          writeFakeState(statePath, {
            version: 1,
            functions: Object.fromEntries(
              addresses.map((bdf) => [
                bdf,
                { driver: sysfs.driverOf(bdf), driverOverride: sysfs.driverOverrideOf(bdf) },
              ]),
            ),
          });
        };
  save();
  return {
    sysfs,
    io: new SavingSysfsIo(sysfs, save),
    moduleAliases: fakeModuleAliases(drivers),
    dispose: () => {
      sysfs.dispose();
    },
  };
}

/** The saved bindings, or undefined when there is no state file yet. */
export function readFakeState(path: string): FakeHostState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PcibackError(
      'FAKE_HOST_INVALID',
      `Cannot read fake host state "${path}": ${(err as Error).message}`,
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
      'FAKE_HOST_INVALID',
      `Invalid fake host state "${path}": ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return parseWith(fakeStateSchema, document, 'fake host state', path);
}

/** Replace the state file in one rename, so a crash leaves the old or the new one. */
export function writeFakeState(path: string, state: FakeHostState): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, path);
}

/** The fake tree with every write followed by a save of the bindings, as a kernel keeps them. */
class SavingSysfsIo extends SysfsIoWriteDecorator {
  readonly #save: () => void;

  constructor(inner: FakeSysfs, save: () => void) {
    super(inner);
    this.#save = save;
  }

  writeText(path: string, text: string): void {
    try {
      this.inner.writeText(path, text);
    } finally {
      this.#save();
    }
  }

  writeBytes(path: string, byteOffset: number, bytes: Uint8Array): number {
    try {
      return this.inner.writeBytes(path, byteOffset, bytes);
    } finally {
      this.#save();
    }
  }
}
