// SPDX-License-Identifier: MIT
/**
 * A sysfs PCI tree that reacts like the kernel, for tests of the Linux platform and of
 * anything built on it.
 *
 * `FakeSysfs.create` lays out a real directory tree in a temporary directory, shaped as
 * the kernel's: `devices/pci0000:00/0000:00:1c.0/0000:03:00.0/` nested behind the
 * bridges, `bus/pci/devices/<BDF>` links into it, `bus/pci/drivers/<name>/` with
 * `bind`, `unbind`, `new_id`, `remove_id` and a link per bound device, `drivers_probe`,
 * `kernel/iommu_groups/<n>/devices/`, and in each device directory `vendor`, `device`,
 * `subsystem_*`, `class`, `revision`, `irq`, `resource`, `config`, `enable`,
 * `driver_override`, `reset`, `reset_method`, a `resource<N>` file per memory BAR
 * (sparse, BAR-sized, read and written like memory: the kernel only mmaps them, the fake
 * also takes pread/pwrite at the same offsets) and the `driver`, `iommu_group`,
 * `physfn`/`virtfn<N>` links.
 *
 * A directory cannot react to writes, so the fake is itself the {@link SysfsIo}: reads
 * go to the files of the tree, and writes to the kernel's special files are done the way
 * the kernel does them (each rule cites its kernel function):
 * - `bind` (`bind_store`): ENODEV for an unknown device or a driver that does not match
 *   (`pci_match_device`: only the `driver_override` driver when one is set; dynamic IDs;
 *   the ID table), EBUSY when the device already has a driver, else the driver's probe
 *   error, else the `driver` link moves.
 * - `unbind` (`unbind_store`): ENODEV unless the device is bound to that driver.
 * - `drivers_probe`: ENODEV for an unknown device; otherwise the first matching driver
 *   whose probe accepts the device gets it (nothing when none does, still a success).
 * - `new_id` binds every unbound device the new ID matches (`new_id_store`), EEXIST when
 *   the driver already matches the ID; `remove_id` ENODEV when no dynamic ID matches.
 * - pciback's `new_slot`, `remove_slot` and `slots`.
 * - `driver_override`: set, or cleared by an empty write (reads `(null)`).
 * - `enable` (`enable_store`): EBUSY while a driver is bound, counts up and down, EIO on
 *   a disable at 0; the first enable turns on decode, the last disable clears MASTER.
 * - `reset` (`reset_store`): EINVAL unless `1`; ENOTTY when `reset_method` is empty;
 *   otherwise the methods are tried in order (a method a test made fail with ENOTTY
 *   passes to the next). `reset_method` (`reset_method_store`): a list of methods the
 *   device supports, `default`, or empty; EINVAL for a method it does not support.
 * - `config`: writes keep read-only bits and clear write-one-to-clear bits.
 * - Writes to read-only attributes fail with EACCES, reads of write-only ones too.
 *
 * Every write is logged ({@link FakeSysfs.writeLog}), failed ones with their errno.
 * Faults can be injected ({@link FakeSysfs.injectFault}), and the whole tree can act as
 * seen by a user without privileges (writes EACCES, `config` reads cut at 64 bytes).
 */
import {
  closeSync,
  existsSync,
  openSync,
  truncateSync,
  writeSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import {
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_CARDBUS,
  PCI_INTERRUPT_LINE_OFFSET,
  PCI_INTERRUPT_PIN_OFFSET,
  PCI_SECONDARY_BUS_OFFSET,
  PCI_STD_HEADER_SIZEOF,
} from '../../abi/pci-regs.js';
import { PciAddress } from '../../pci/address.js';
import { ConfigSpace } from '../../pci/config-space.js';
import { parseDumpFile, type DeviceDump } from '../../pci/dump.js';
import { IORESOURCE, type PciResource } from '../../pci/resource.js';
import { isPciResetMethod, type PciResetMethod } from '../pci-host.js';
import {
  applyConfigWrite,
  buildSimpleConfig,
  configWriteMasks,
  decodeResources,
  padConfig,
  probeResetMethods,
  type ConfigWriteMasks,
  type SimpleConfigSpec,
} from './fake-config.js';
import {
  FAKE_STUB_DRIVERS,
  driverMatches,
  parseDynamicId,
  removeIdMatches,
  type FakeDriverSpec,
  type FakePciId,
  type FakeProbeView,
} from './fake-drivers.js';
import {
  NodeSysfsIo,
  SysfsError,
  toSysfsError,
  type SysfsIo,
  type SysfsOperation,
} from './sysfs-io.js';
import { DRIVER_OVERRIDE_UNSET, formatHexAttribute, formatResourceLine } from './sysfs-format.js';

/**
 * A function's users in dom0, as the kernel shows them under its directory: network
 * interfaces (`net/<name>/flags`, IFF_UP when up) and block devices (`block/<name>` with
 * `dev` and `holders/`), whose mount points appear in the fake's {@link FakeSysfs.mountinfo}.
 */
export interface FakeConsumers {
  readonly net?: readonly { readonly name: string; readonly up: boolean }[];
  readonly block?: readonly {
    readonly name: string;
    /** `major:minor`. */
    readonly dev: string;
    readonly holders?: readonly string[];
    readonly mountedOn?: string;
  }[];
}

/** One PCI function of the fake tree. */
export interface FakePciFunctionSpec {
  readonly address: PciAddress | string;
  /** A config image (a dump: 64 bytes are padded to 256). Built from `simple` when absent. */
  readonly config?: Uint8Array;
  /** The function described by a few fields, when there is no `config`. */
  readonly simple?: SimpleConfigSpec;
  /** BAR sizes (index 0..5, 6 for the ROM), e.g. a dump's `[size=...]` lines. */
  readonly barSizes?: ReadonlyMap<number, bigint>;
  /** The resource table, instead of decoding the BARs (a VF's come from its PF). */
  readonly resources?: readonly PciResource[];
  /** Bound driver at the start (null: none). */
  readonly driver?: string | null;
  readonly driverOverride?: string | null;
  /** IOMMU group (null: no IOMMU, the default). */
  readonly iommuGroup?: number | null;
  /** `irq`; default: the interrupt line when the function has a pin, else 0. */
  readonly irq?: number;
  /** The kernel's enable count at the start; default 1 when bound to a driver that enables. */
  readonly enableCount?: number;
  /** Methods the kernel found (`reset_method`); default: probed from the config like the kernel. */
  readonly resetMethods?: readonly PciResetMethod[];
  /** Errno a method fails with when tried (ENOTTY lets the kernel try the next). */
  readonly resetErrors?: Readonly<Partial<Record<PciResetMethod, string>>>;
  /**
   * The bridge above (null: a root bus). Default: a VF sits beside its PF; others behind
   * the bridge whose secondary bus is the function's bus, else on the root bus.
   */
  readonly parent?: PciAddress | string | null;
  /** What dom0 uses the function for (network interfaces, block devices). */
  readonly consumers?: FakeConsumers;
  /** For an SR-IOV virtual function: its physical function (which gets a `virtfn<N>` link). */
  readonly physfn?: PciAddress | string;
}

/** Options of {@link FakeSysfs.create}. */
export interface FakeSysfsOptions {
  readonly functions: readonly FakePciFunctionSpec[];
  /**
   * Drivers in registration order (the order `drivers_probe` tries them). A name of a
   * stub (`pciback`, `vfio-pci`, `pci-stub`) gets its kernel behaviour; another name is a
   * driver whose ID table holds the IDs of the functions bound to it at the start.
   * Drivers named by functions and not listed are added after these.
   */
  readonly drivers?: readonly (string | FakeDriverSpec)[];
  /** Kernel features: `reset_method` (5.15+) and `driver_override` (3.16+); both on by default. */
  readonly kernel?: { readonly resetMethodFile?: boolean; readonly driverOverrideFile?: boolean };
  /** Act as seen by a user without CAP_SYS_ADMIN. */
  readonly unprivileged?: boolean;
  /** Where to create the temporary tree (default: the OS temporary directory). */
  readonly parentDir?: string;
}

/** One write the fake received. */
export interface FakeSysfsWrite {
  /** The path as the caller gave it. */
  readonly path: string;
  /** The file it reached, relative to the root, links resolved (the path when unresolved). */
  readonly target: string;
  readonly byteOffset: number;
  readonly data: Uint8Array;
  /** `data` as UTF-8. */
  readonly text: string;
  /** The errno the write failed with, or null. */
  readonly errno: string | null;
}

/** A fault to inject: operations on a matching path fail with `errno`. */
export interface FakeSysfsFault {
  /** The path as the caller gives it: equal, or matching the expression. */
  readonly path: string | RegExp;
  readonly errno: string;
  /** Which operations fail (default: all). */
  readonly operations?: readonly SysfsOperation[];
  /** How many times before the fault clears itself (default: every time). */
  readonly count?: number;
  /** How many matching operations succeed before the fault starts (default 0). */
  readonly skip?: number;
}

interface FunctionState {
  readonly address: PciAddress;
  readonly name: string;
  dir: string;
  readonly config: Uint8Array;
  readonly masks: ConfigWriteMasks;
  readonly resources: readonly PciResource[];
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemDeviceId: number;
  readonly classCode: number;
  readonly headerType: number;
  readonly revision: number;
  readonly irq: number;
  readonly iommuGroup: number | null;
  parent: FunctionState | null;
  physfn: FunctionState | null;
  readonly virtfns: FunctionState[];
  driver: DriverState | null;
  driverCountsEnable: boolean;
  override: string | null;
  enableCount: number;
  supportedResets: readonly PciResetMethod[];
  resetMethods: PciResetMethod[];
  readonly resetErrors: Readonly<Partial<Record<PciResetMethod, string>>>;
  readonly resets: PciResetMethod[];
  readonly spec: FakePciFunctionSpec;
}

interface DriverState {
  readonly name: string;
  readonly dir: string;
  readonly ids: FakePciId[];
  readonly dynamicIds: FakePciId[];
  readonly probe: ((device: FakeProbeView) => string | undefined) | undefined;
  readonly enablesDevice: boolean;
  readonly slots: PciAddress[] | null;
}

interface FaultState {
  readonly fault: FakeSysfsFault;
  skip: number;
  remaining: number;
}

const DRIVER_WRITE_ONLY = new Set([
  'bind',
  'unbind',
  'new_id',
  'remove_id',
  'new_slot',
  'remove_slot',
]);
const DEVICE_WRITE_ONLY = new Set(['reset']);
/** `resource0`..`resource5`: the BAR files (the ROM's is `rom`). */
const RESOURCE_FILE = /^resource[0-5]$/;
const MAX_BAR_FILES = 6;
/** Kernel's `PAGE_SIZE - 1` limit of `driver_override`. */
const DRIVER_OVERRIDE_MAX = 4095;

/**
 * The fake tree. Create with {@link FakeSysfs.create}, pass it as the `io` of a
 * `LinuxPciHost`, and {@link FakeSysfs.dispose} it at the end.
 *
 * @example
 * const sysfs = FakeSysfs.create({
 *   functions: [{ address: '0000:03:00.0', simple: { vendorId: 0x8086, deviceId: 0x10c9, classCode: 0x020000 }, driver: 'igb' }],
 *   drivers: ['pciback'],
 * });
 * const host = new LinuxPciHost({ io: sysfs });
 * host.unbind(PciAddress.parse('0000:03:00.0'));
 * sysfs.writeLog().map((w) => w.target); // ['bus/pci/drivers/igb/unbind']
 * sysfs.dispose();
 */
export class FakeSysfs implements SysfsIo {
  readonly root: string;
  readonly #realRoot: string;
  readonly #inner: NodeSysfsIo;
  readonly #functions: FunctionState[];
  readonly #byName = new Map<string, FunctionState>();
  readonly #byDir = new Map<string, FunctionState>();
  readonly #drivers: DriverState[] = [];
  readonly #driverByName = new Map<string, DriverState>();
  readonly #log: FakeSysfsWrite[] = [];
  readonly #faults: FaultState[] = [];
  readonly #resetMethodFile: boolean;
  readonly #driverOverrideFile: boolean;
  #unprivileged: boolean;
  #disposed = false;

  private constructor(root: string, options: FakeSysfsOptions) {
    this.root = root;
    this.#realRoot = realpathSync(root);
    this.#inner = new NodeSysfsIo(root, { isRoot: true });
    this.#resetMethodFile = options.kernel?.resetMethodFile ?? true;
    this.#driverOverrideFile = options.kernel?.driverOverrideFile ?? true;
    this.#unprivileged = options.unprivileged ?? false;
    this.#functions = buildFunctions(options.functions);
    for (const fn of this.#functions) this.#byName.set(fn.name, fn);
    linkTopology(this.#functions, this.#byName);
    for (const fn of this.#functions) this.#byDir.set(fn.dir, fn);
    this.#registerDrivers(options.drivers ?? []);
    this.#writeTree();
  }

  /**
   * Builds the tree in a new temporary directory.
   *
   * @throws {RangeError} for a duplicate address, a `parent` or `physfn` that is not in
   *   the tree, a parent loop, or a function with neither `config` nor `simple`.
   */
  static create(options: FakeSysfsOptions): FakeSysfs {
    const root = mkdtempSync(join(options.parentDir ?? tmpdir(), 'pciback-fake-sysfs-'));
    try {
      return new FakeSysfs(root, options);
    } catch (err) {
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** `/proc/self/mountinfo` of the fake host: its block devices' mount points. */
  mountinfo(): string {
    let id = 100;
    let out = '';
    for (const fn of this.#functions) {
      for (const block of fn.spec.consumers?.block ?? []) {
        if (block.mountedOn === undefined) continue;
        out += `${id++} 1 ${block.dev} / ${block.mountedOn} rw,relatime - ext4 /dev/${block.name} rw\n`;
      }
    }
    return out;
  }

  /** Removes the temporary tree. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    rmSync(this.root, { recursive: true, force: true });
  }

  // --- SysfsIo ---------------------------------------------------------------------------

  readText(path: string): string {
    this.#beforeRead('read', path);
    return this.#inner.readText(path);
  }

  readBytes(path: string, byteOffset: number, length: number): Uint8Array {
    this.#beforeRead('read', path);
    if (this.#unprivileged && basename(path) === 'config') {
      // pci_read_config: without CAP_SYS_ADMIN only the standard header is readable.
      length = Math.max(0, Math.min(length, PCI_STD_HEADER_SIZEOF - byteOffset));
    }
    return this.#inner.readBytes(path, byteOffset, length);
  }

  writeText(path: string, text: string): void {
    this.#write(path, 0, new TextEncoder().encode(text));
  }

  writeBytes(path: string, byteOffset: number, bytes: Uint8Array): number {
    return this.#write(path, byteOffset, bytes);
  }

  readlink(path: string): string {
    this.#checkFault('readlink', path);
    return this.#inner.readlink(path);
  }

  readdir(path: string): string[] {
    this.#checkFault('readdir', path);
    return this.#inner.readdir(path);
  }

  exists(path: string): boolean {
    return this.#inner.exists(path);
  }

  fileSizeBytes(path: string): number {
    this.#checkFault('stat', path);
    return this.#inner.fileSizeBytes(path);
  }

  // --- Test controls and inspection -------------------------------------------------------

  /** Every write so far, in order. */
  writeLog(): readonly FakeSysfsWrite[] {
    return [...this.#log];
  }

  /** Forgets the writes logged so far. */
  clearWriteLog(): void {
    this.#log.length = 0;
  }

  /** Makes matching operations fail; returns a function that removes the fault. */
  injectFault(fault: FakeSysfsFault): () => void {
    const state: FaultState = {
      fault,
      skip: fault.skip ?? 0,
      remaining: fault.count ?? Number.POSITIVE_INFINITY,
    };
    this.#faults.push(state);
    return () => {
      const at = this.#faults.indexOf(state);
      if (at >= 0) this.#faults.splice(at, 1);
    };
  }

  /** Switches between root (false) and a user without privileges (true). */
  setUnprivileged(unprivileged: boolean): void {
    this.#unprivileged = unprivileged;
  }

  /** The driver bound to the function, or null. */
  driverOf(address: PciAddress | string): string | null {
    return this.#function(address).driver?.name ?? null;
  }

  /** The function's `driver_override`, or null. */
  driverOverrideOf(address: PciAddress | string): string | null {
    return this.#function(address).override;
  }

  /** The kernel's enable count of the function. */
  enableCount(address: PciAddress | string): number {
    return this.#function(address).enableCount;
  }

  /** The methods that reset the function so far, in order. */
  resetLog(address: PciAddress | string): readonly PciResetMethod[] {
    return [...this.#function(address).resets];
  }

  /** The function's current `reset_method` list. */
  resetMethodsOf(address: PciAddress | string): readonly PciResetMethod[] {
    return [...this.#function(address).resetMethods];
  }

  /** A copy of the function's config space. */
  configBytes(address: PciAddress | string): Uint8Array {
    return this.#function(address).config.slice();
  }

  /**
   * The function itself sets `bits` in a config register (status bits the hardware
   * records, such as AER or Device Status errors), bypassing the write masks that keep
   * software from setting them.
   */
  setHardwareBits(
    address: PciAddress | string,
    byteOffset: number,
    sizeBytes: 1 | 2 | 4,
    bits: number,
  ): void {
    const fn = this.#function(address);
    if (byteOffset < 0 || byteOffset + sizeBytes > fn.config.length) {
      throw new RangeError(
        `Cannot set bits at ${byteOffset} of "${fn.name}": its config space has ${fn.config.length} bytes`,
      );
    }
    for (let i = 0; i < sizeBytes; i++) {
      fn.config[byteOffset + i] = ((fn.config[byteOffset + i] ?? 0) | (bits >>> (8 * i))) & 0xff;
    }
    this.#flushConfig(fn);
  }

  /** `length` bytes of memory BAR `bar` from `byteOffset` (its `resource<N>` file). */
  barBytes(
    address: PciAddress | string,
    bar: number,
    byteOffset: number,
    length: number,
  ): Uint8Array {
    const fn = this.#function(address);
    return this.#inner.readBytes(`${fn.dir}/resource${bar}`, byteOffset, length);
  }

  /** The real directory of the function, relative to the root. */
  deviceDir(address: PciAddress | string): string {
    return this.#function(address).dir;
  }

  /** pciback's slot list (`slots`), as `DDDD:BB:DD.F`. */
  slots(driver = 'pciback'): readonly string[] {
    return (this.#driver(driver).slots ?? []).map((a) => a.toString());
  }

  /** The driver's dynamic IDs (`new_id`). */
  dynamicIds(driver: string): readonly FakePciId[] {
    return [...this.#driver(driver).dynamicIds];
  }

  // --- Reads -----------------------------------------------------------------------------

  #beforeRead(operation: SysfsOperation, path: string): void {
    this.#checkFault(operation, path);
    const name = basename(path);
    if (!DRIVER_WRITE_ONLY.has(name) && !DEVICE_WRITE_ONLY.has(name) && name !== 'drivers_probe') {
      return;
    }
    const target = this.#resolve(path);
    const writeOnly =
      (target.kind === 'driver' && DRIVER_WRITE_ONLY.has(target.attribute)) ||
      (target.kind === 'device' && DEVICE_WRITE_ONLY.has(target.attribute)) ||
      target.kind === 'probe';
    // A write-only attribute has no show(): kernfs refuses to open it for reading.
    if (writeOnly) throw this.#error(operation, path, 'EACCES');
  }

  // --- Writes ----------------------------------------------------------------------------

  #write(path: string, byteOffset: number, data: Uint8Array): number {
    const copy = data.slice();
    let target = path;
    let errno: string | null = null;
    try {
      this.#checkFault('write', path);
      const resolved = this.#resolve(path);
      target = resolved.rel ?? path;
      if (resolved.kind === 'missing') throw this.#error('write', path, 'ENOENT');
      if (resolved.kind === 'directory') throw this.#error('write', path, 'EISDIR');
      // Every writable PCI attribute is root's (mode 0200 or 0644).
      if (this.#unprivileged) throw this.#error('write', path, 'EACCES');
      const text = new TextDecoder().decode(copy);
      switch (resolved.kind) {
        case 'probe':
          this.#kernelCall(path, this.#driversProbe(text));
          return copy.length;
        case 'driver':
          this.#kernelCall(path, this.#driverAttribute(resolved.driver, resolved.attribute, text));
          return copy.length;
        case 'device':
          return this.#deviceAttribute(
            path,
            resolved.fn,
            resolved.attribute,
            byteOffset,
            copy,
            text,
          );
        case 'other':
          throw this.#error('write', path, 'EACCES');
      }
    } catch (err) {
      if (err instanceof SysfsError) errno = err.errno;
      throw err;
    } finally {
      this.#log.push({
        path,
        target,
        byteOffset,
        data: copy,
        text: new TextDecoder().decode(copy),
        errno,
      });
    }
  }

  #kernelCall(path: string, errno: string | undefined): void {
    if (errno !== undefined) throw this.#error('write', path, errno);
  }

  #deviceAttribute(
    path: string,
    fn: FunctionState,
    attribute: string,
    byteOffset: number,
    data: Uint8Array,
    text: string,
  ): number {
    switch (attribute) {
      case 'config':
        return this.#writeConfig(fn, byteOffset, data);
      case 'enable':
        this.#kernelCall(path, this.#writeEnable(fn, text));
        return data.length;
      case 'driver_override':
        this.#kernelCall(path, this.#writeDriverOverride(fn, text));
        return data.length;
      case 'reset':
        this.#kernelCall(path, this.#writeReset(fn, text));
        return data.length;
      case 'reset_method':
        this.#kernelCall(path, this.#writeResetMethod(fn, text));
        return data.length;
      default:
        if (RESOURCE_FILE.test(attribute))
          return this.#writeResource(fn, attribute, byteOffset, data);
        throw this.#error('write', path, 'EACCES');
    }
  }

  /** `pci_write_config`: clipped to the config size, read-only bits kept. */
  #writeConfig(fn: FunctionState, byteOffset: number, data: Uint8Array): number {
    if (byteOffset >= fn.config.length) return 0;
    const count = Math.min(data.length, fn.config.length - byteOffset);
    applyConfigWrite(fn.config, fn.masks, { byteOffset, data: data.subarray(0, count) });
    this.#flushConfig(fn);
    return count;
  }

  /**
   * A write to a memory BAR's `resource<N>`: stored like memory (clipped to the BAR).
   * The kernel only mmaps memory BARs; the fake takes `pwrite` at the same offset.
   */
  #writeResource(
    fn: FunctionState,
    attribute: string,
    byteOffset: number,
    data: Uint8Array,
  ): number {
    const res = fn.resources[Number(attribute.slice('resource'.length))];
    if (res === undefined || BigInt(byteOffset) >= res.sizeBytes) return 0;
    const count = Math.min(data.length, Number(res.sizeBytes - BigInt(byteOffset)));
    const fd = openSync(join(this.root, fn.dir, attribute), 'r+');
    try {
      return writeSync(fd, data, 0, count, byteOffset);
    } finally {
      closeSync(fd);
    }
  }

  /** `enable_store`. */
  #writeEnable(fn: FunctionState, text: string): string | undefined {
    const value = parseKernelUlong(text);
    if (value === undefined) return 'EINVAL';
    if (fn.driver !== null) return 'EBUSY';
    if (value !== 0) {
      fn.enableCount++;
      if (fn.enableCount === 1) this.#setDecode(fn);
    } else {
      if (fn.enableCount === 0) return 'EIO';
      fn.enableCount--;
      if (fn.enableCount === 0) this.#clearMaster(fn);
    }
    this.#attribute(fn, 'enable', `${fn.enableCount}\n`);
    return undefined;
  }

  /** `driver_override_store` (`driver_set_override`). */
  #writeDriverOverride(fn: FunctionState, text: string): string | undefined {
    if (text.length >= DRIVER_OVERRIDE_MAX) return 'EINVAL';
    const newline = text.indexOf('\n');
    const value = newline >= 0 ? text.slice(0, newline) : text;
    fn.override = value === '' ? null : value;
    this.#attribute(fn, 'driver_override', `${fn.override ?? DRIVER_OVERRIDE_UNSET}\n`);
    return undefined;
  }

  /** `reset_store` / `pci_reset_function`. */
  #writeReset(fn: FunctionState, text: string): string | undefined {
    const value = parseKernelUlong(text);
    if (value !== 1) return 'EINVAL';
    for (const method of fn.resetMethods) {
      const errno = fn.resetErrors[method];
      if (errno === 'ENOTTY') continue;
      if (errno !== undefined) return errno;
      fn.resets.push(method);
      return undefined;
    }
    return 'ENOTTY';
  }

  /** `reset_method_store`. */
  #writeResetMethod(fn: FunctionState, text: string): string | undefined {
    const trimmed = stripNewline(text).trim();
    let next: PciResetMethod[];
    if (trimmed === '') next = [];
    else if (trimmed === 'default') next = [...fn.supportedResets];
    else {
      next = [];
      for (const name of trimmed.split(' ')) {
        if (name === '') continue;
        if (!isPciResetMethod(name) || !fn.supportedResets.includes(name)) return 'EINVAL';
        if (!next.includes(name)) next.push(name);
      }
    }
    fn.resetMethods = next;
    this.#attribute(fn, 'reset_method', formatResetMethods(next));
    return undefined;
  }

  #driverAttribute(driver: DriverState, attribute: string, text: string): string | undefined {
    switch (attribute) {
      case 'bind':
        return this.#bind(driver, text);
      case 'unbind':
        return this.#unbind(driver, text);
      case 'new_id':
        return this.#newId(driver, text);
      case 'remove_id':
        return this.#removeId(driver, text);
      case 'new_slot':
      case 'remove_slot':
        if (driver.slots === null) return 'EACCES';
        return attribute === 'new_slot'
          ? this.#newSlot(driver, text)
          : this.#removeSlot(driver, text);
      default:
        return 'EACCES';
    }
  }

  /** `bind_store` + `device_driver_attach`. */
  #bind(driver: DriverState, text: string): string | undefined {
    const fn = this.#byName.get(stripNewline(text));
    if (fn === undefined || !driverMatches(driver, this.#view(fn))) return 'ENODEV';
    if (fn.driver !== null) return 'EBUSY';
    return this.#probe(driver, fn);
  }

  /** `unbind_store`. */
  #unbind(driver: DriverState, text: string): string | undefined {
    const fn = this.#byName.get(stripNewline(text));
    if (fn?.driver !== driver) return 'ENODEV';
    this.#detach(fn);
    return undefined;
  }

  /** `drivers_probe_store` + `device_attach`. */
  #driversProbe(text: string): string | undefined {
    const fn = this.#byName.get(stripNewline(text));
    if (fn === undefined) return 'ENODEV';
    if (fn.driver === null) this.#attachFirst(fn);
    return undefined;
  }

  /** `new_id_store`. */
  #newId(driver: DriverState, text: string): string | undefined {
    const parsed = parseDynamicId(text);
    if (parsed === undefined) return 'EINVAL';
    if (parsed.fields !== 7) {
      const probeView: FakeProbeView = {
        address: new PciAddress(0, 0, 0, 0),
        vendorId: parsed.id.vendor ?? 0,
        deviceId: parsed.id.device ?? 0,
        subsystemVendorId: parsed.id.subvendor ?? 0xffff,
        subsystemDeviceId: parsed.id.subdevice ?? 0xffff,
        classCode: parsed.id.classCode ?? 0,
        headerType: 0,
        iommuGroup: null,
        driverOverride: null,
        path: [],
      };
      if (driverMatches(driver, probeView)) return 'EEXIST';
    }
    driver.dynamicIds.push(parsed.id);
    // driver_attach: every unbound device the driver now matches.
    for (const fn of this.#functions) {
      if (fn.driver === null && driverMatches(driver, this.#view(fn))) this.#probe(driver, fn);
    }
    return undefined;
  }

  /** `remove_id_store`. */
  #removeId(driver: DriverState, text: string): string | undefined {
    const parsed = parseDynamicId(text);
    if (parsed === undefined) return 'EINVAL';
    const at = driver.dynamicIds.findIndex((id) => removeIdMatches(id, parsed.id));
    if (at < 0) return 'ENODEV';
    driver.dynamicIds.splice(at, 1);
    return undefined;
  }

  /** pciback `new_slot` (exact addresses only). */
  #newSlot(driver: DriverState, text: string): string | undefined {
    const address = parseSlot(text);
    if (address === undefined) return 'EINVAL';
    const slots = driver.slots ?? [];
    if (!slots.some((a) => a.equals(address))) slots.push(address);
    this.#flushSlots(driver);
    return undefined;
  }

  /** pciback `remove_slot`. */
  #removeSlot(driver: DriverState, text: string): string | undefined {
    const address = parseSlot(text);
    if (address === undefined) return 'EINVAL';
    const slots = driver.slots ?? [];
    const at = slots.findIndex((a) => a.equals(address));
    if (at < 0) return 'ENOENT';
    slots.splice(at, 1);
    this.#flushSlots(driver);
    return undefined;
  }

  // --- Driver core -----------------------------------------------------------------------

  /** Tries each driver in registration order, as `__device_attach` does. */
  #attachFirst(fn: FunctionState): void {
    for (const driver of this.#drivers) {
      if (!driverMatches(driver, this.#view(fn))) continue;
      if (this.#probe(driver, fn) === undefined) return;
    }
  }

  /** The driver's probe, then the attach; an errno when the probe refuses. */
  #probe(driver: DriverState, fn: FunctionState): string | undefined {
    const view = this.#view(fn);
    // pcistub_probe: on the slot list (itself or a bridge above), or by driver_override,
    // in which case the function itself joins the list.
    const listed =
      driver.slots === null ||
      view.path.some((a) => driver.slots?.some((s) => s.equals(a)) === true);
    if (!listed && fn.override !== driver.name) return 'ENODEV';
    const errno = driver.probe?.(view);
    if (errno !== undefined) return errno;
    if (driver.slots !== null && !listed) {
      driver.slots.push(fn.address);
      this.#flushSlots(driver);
    }
    this.#attach(driver, fn);
    return undefined;
  }

  #attach(driver: DriverState, fn: FunctionState): void {
    fn.driver = driver;
    this.#symlink(`${fn.dir}/driver`, driver.dir);
    this.#symlink(`${driver.dir}/${fn.name}`, fn.dir);
    if (driver.enablesDevice) {
      fn.driverCountsEnable = true;
      fn.enableCount++;
      if (fn.enableCount === 1) this.#setDecode(fn);
      this.#attribute(fn, 'enable', `${fn.enableCount}\n`);
    }
  }

  #detach(fn: FunctionState): void {
    const driver = fn.driver;
    if (driver === null) return;
    fn.driver = null;
    unlinkSync(join(this.root, fn.dir, 'driver'));
    unlinkSync(join(this.root, driver.dir, fn.name));
    if (fn.driverCountsEnable) {
      fn.driverCountsEnable = false;
      fn.enableCount = Math.max(0, fn.enableCount - 1);
      if (fn.enableCount === 0) this.#clearMaster(fn);
      this.#attribute(fn, 'enable', `${fn.enableCount}\n`);
    }
  }

  #view(fn: FunctionState): FakeProbeView {
    const path: PciAddress[] = [];
    for (let at: FunctionState | null = fn; at !== null; at = at.parent) path.push(at.address);
    return {
      address: fn.address,
      vendorId: fn.vendorId,
      deviceId: fn.deviceId,
      subsystemVendorId: fn.subsystemVendorId,
      subsystemDeviceId: fn.subsystemDeviceId,
      classCode: fn.classCode,
      headerType: fn.headerType,
      iommuGroup: fn.iommuGroup,
      driverOverride: this.#driverOverrideFile ? fn.override : null,
      path,
    };
  }

  /** `pci_enable_device`'s decode: I/O and memory for the resources present. */
  #setDecode(fn: FunctionState): void {
    let decode = 0;
    for (const res of fn.resources) {
      if ((res.flags & IORESOURCE.IO) !== 0) decode |= PCI_COMMAND_IO;
      if ((res.flags & IORESOURCE.MEM) !== 0) decode |= PCI_COMMAND_MEMORY;
    }
    if (fn.headerType === PCI_HEADER_TYPE_BRIDGE) decode |= PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
    this.#updateCommand(fn, (command) => command | decode);
  }

  #clearMaster(fn: FunctionState): void {
    this.#updateCommand(fn, (command) => command & ~PCI_COMMAND_MASTER);
  }

  #updateCommand(fn: FunctionState, change: (command: number) => number): void {
    const view = new DataView(fn.config.buffer, fn.config.byteOffset, fn.config.byteLength);
    view.setUint16(
      PCI_COMMAND_OFFSET,
      change(view.getUint16(PCI_COMMAND_OFFSET, true)) & 0xffff,
      true,
    );
    this.#flushConfig(fn);
  }

  // --- Tree on disk ----------------------------------------------------------------------

  #registerDrivers(drivers: readonly (string | FakeDriverSpec)[]): void {
    const declaredByName = new Set<string>();
    const add = (spec: FakeDriverSpec, generic: boolean): void => {
      if (this.#driverByName.has(spec.name)) {
        throw new RangeError(`Cannot add fake driver "${spec.name}": it is listed twice`);
      }
      if (!/^[^\s/]+$/.test(spec.name)) {
        throw new RangeError(
          `Cannot add fake driver "${spec.name}": a driver name has no spaces or slashes`,
        );
      }
      const state: DriverState = {
        name: spec.name,
        dir: `bus/pci/drivers/${spec.name}`,
        ids: [...(spec.ids ?? [])],
        dynamicIds: [],
        probe: spec.probe,
        enablesDevice: spec.enablesDevice ?? true,
        slots: spec.slots === true ? [] : null,
      };
      if (generic) declaredByName.add(spec.name);
      this.#drivers.push(state);
      this.#driverByName.set(spec.name, state);
    };
    for (const entry of drivers) {
      if (typeof entry !== 'string') add(entry, false);
      else if (Object.hasOwn(FAKE_STUB_DRIVERS, entry)) {
        add(FAKE_STUB_DRIVERS[entry as keyof typeof FAKE_STUB_DRIVERS], false);
      } else add({ name: entry }, true);
    }
    for (const fn of this.#functions) {
      const name = fn.spec.driver ?? null;
      if (name === null) continue;
      if (!this.#driverByName.has(name)) {
        if (Object.hasOwn(FAKE_STUB_DRIVERS, name))
          add(FAKE_STUB_DRIVERS[name as keyof typeof FAKE_STUB_DRIVERS], false);
        else add({ name }, true);
      }
      const driver = this.#driver(name);
      // A real driver's table holds the IDs of the devices it drives.
      if (
        declaredByName.has(name) &&
        !driver.ids.some((id) => id.vendor === fn.vendorId && id.device === fn.deviceId)
      ) {
        driver.ids.push({ vendor: fn.vendorId, device: fn.deviceId });
      }
      if (driver.slots !== null && !driver.slots.some((a) => a.equals(fn.address))) {
        driver.slots.push(fn.address);
      }
    }
  }

  #writeTree(): void {
    for (const dir of [
      'bus/pci/devices',
      'bus/pci/drivers',
      'bus/pci/slots',
      'kernel/iommu_groups',
    ]) {
      mkdirSync(join(this.root, dir), { recursive: true });
    }
    writeFileSync(join(this.root, 'bus/pci/drivers_probe'), '');
    writeFileSync(join(this.root, 'bus/pci/drivers_autoprobe'), '1\n');
    for (const driver of this.#drivers) {
      mkdirSync(join(this.root, driver.dir), { recursive: true });
      for (const name of ['bind', 'unbind', 'new_id', 'remove_id', 'uevent']) {
        writeFileSync(join(this.root, driver.dir, name), '');
      }
      if (driver.slots !== null) {
        writeFileSync(join(this.root, driver.dir, 'new_slot'), '');
        writeFileSync(join(this.root, driver.dir, 'remove_slot'), '');
        this.#flushSlots(driver);
      }
    }
    // Parents first, so that every directory exists before its children.
    const ordered = [...this.#functions].sort((a, b) => depth(a) - depth(b));
    for (const fn of ordered) this.#writeFunction(fn);
    for (const fn of ordered) {
      this.#symlink(`bus/pci/devices/${fn.name}`, fn.dir);
      if (fn.iommuGroup !== null) {
        const group = `kernel/iommu_groups/${fn.iommuGroup}`;
        mkdirSync(join(this.root, group, 'devices'), { recursive: true });
        this.#symlink(`${group}/devices/${fn.name}`, fn.dir);
        this.#symlink(`${fn.dir}/iommu_group`, group);
      }
      if (fn.physfn !== null) this.#symlink(`${fn.dir}/physfn`, fn.physfn.dir);
      fn.virtfns.forEach((vf, index) => {
        this.#symlink(`${fn.dir}/virtfn${index}`, vf.dir);
      });
      const driverName = fn.spec.driver ?? null;
      if (driverName !== null) {
        const driver = this.#driver(driverName);
        fn.driver = driver;
        fn.driverCountsEnable = driver.enablesDevice;
        this.#symlink(`${fn.dir}/driver`, driver.dir);
        this.#symlink(`${driver.dir}/${fn.name}`, fn.dir);
      }
      fn.enableCount = fn.spec.enableCount ?? (fn.driverCountsEnable ? 1 : 0);
      this.#attribute(fn, 'enable', `${fn.enableCount}\n`);
    }
  }

  #writeFunction(fn: FunctionState): void {
    mkdirSync(join(this.root, fn.dir), { recursive: true });
    this.#attribute(fn, 'vendor', formatHexAttribute(fn.vendorId, 4));
    this.#attribute(fn, 'device', formatHexAttribute(fn.deviceId, 4));
    this.#attribute(fn, 'subsystem_vendor', formatHexAttribute(fn.subsystemVendorId, 4));
    this.#attribute(fn, 'subsystem_device', formatHexAttribute(fn.subsystemDeviceId, 4));
    this.#attribute(fn, 'class', formatHexAttribute(fn.classCode, 6));
    this.#attribute(fn, 'revision', formatHexAttribute(fn.revision, 2));
    this.#attribute(fn, 'irq', `${fn.irq}\n`);
    // Bridges list their four windows after the seven BARs/ROM (DEVICE_COUNT_RESOURCE).
    const lines =
      fn.headerType === PCI_HEADER_TYPE_BRIDGE || fn.headerType === PCI_HEADER_TYPE_CARDBUS
        ? 11
        : 7;
    const resourceText = Array.from({ length: lines }, (_, i) =>
      formatResourceLine(fn.resources[i] ?? { start: 0n, sizeBytes: 0n, flags: 0 }),
    ).join('');
    this.#attribute(fn, 'resource', resourceText);
    // A memory BAR's `resource<N>`: sparse, BAR-sized, reading and writing like memory.
    for (let index = 0; index < MAX_BAR_FILES; index++) {
      const res = fn.resources[index];
      if (res === undefined || (res.flags & IORESOURCE.MEM) === 0 || res.sizeBytes === 0n) continue;
      const file = join(this.root, fn.dir, `resource${index}`);
      writeFileSync(file, '');
      truncateSync(file, Number(res.sizeBytes));
    }
    this.#flushConfig(fn);
    for (const net of fn.spec.consumers?.net ?? []) {
      mkdirSync(join(this.root, fn.dir, 'net', net.name), { recursive: true });
      // IFF_UP is bit 0; 0x1002 is IFF_BROADCAST | IFF_MULTICAST.
      this.#attribute(fn, `net/${net.name}/flags`, net.up ? '0x1003\n' : '0x1002\n');
    }
    for (const block of fn.spec.consumers?.block ?? []) {
      const dir = `${fn.dir}/block/${block.name}`;
      mkdirSync(join(this.root, dir, 'holders'), { recursive: true });
      writeFileSync(join(this.root, dir, 'dev'), `${block.dev}\n`);
      for (const holder of block.holders ?? []) {
        writeFileSync(join(this.root, dir, 'holders', holder), '');
      }
      mkdirSync(join(this.root, 'class/block'), { recursive: true });
      this.#symlink(`${dir}/subsystem`, 'class/block');
    }
    if (this.#driverOverrideFile) {
      this.#attribute(fn, 'driver_override', `${fn.override ?? DRIVER_OVERRIDE_UNSET}\n`);
    }
    // Both reset attributes are hidden when the kernel found no method.
    if (fn.supportedResets.length > 0) {
      this.#attribute(fn, 'reset', '');
      if (this.#resetMethodFile)
        this.#attribute(fn, 'reset_method', formatResetMethods(fn.resetMethods));
    }
  }

  #attribute(fn: FunctionState, name: string, text: string): void {
    writeFileSync(join(this.root, fn.dir, name), text);
  }

  #flushConfig(fn: FunctionState): void {
    writeFileSync(join(this.root, fn.dir, 'config'), fn.config);
  }

  #flushSlots(driver: DriverState): void {
    // `%04x:%02x:%02x.%d`: the function in decimal, which for 0..7 is the same digit.
    const text = (driver.slots ?? []).map((a) => `${a.toString()}\n`).join('');
    writeFileSync(join(this.root, driver.dir, 'slots'), text);
  }

  /** A relative symbolic link `from` -> `to` (both relative to the root), like sysfs's. */
  #symlink(from: string, to: string): void {
    const link = join(this.root, from);
    symlinkSync(relative(dirname(link), join(this.root, to)), link);
  }

  // --- Paths, faults, errors ---------------------------------------------------------------

  #resolve(
    path: string,
  ):
    | { kind: 'missing' | 'directory' | 'other' | 'probe'; rel?: string }
    | { kind: 'driver'; rel: string; driver: DriverState; attribute: string }
    | { kind: 'device'; rel: string; fn: FunctionState; attribute: string } {
    const abs = join(this.root, path);
    let parent: string;
    try {
      parent = realpathSync(dirname(abs));
    } catch {
      return { kind: 'missing' };
    }
    const file = join(parent, basename(abs));
    const rel = relative(this.#realRoot, file);
    if (!existsSync(file)) return { kind: 'missing', rel };
    if (statSync(file).isDirectory()) return { kind: 'directory', rel };
    if (rel === 'bus/pci/drivers_probe') return { kind: 'probe', rel };
    const driverMatch = /^bus\/pci\/drivers\/([^/]+)\/([^/]+)$/.exec(rel);
    if (driverMatch !== null) {
      const driver = this.#driverByName.get(driverMatch[1] ?? '');
      if (driver !== undefined)
        return { kind: 'driver', rel, driver, attribute: driverMatch[2] ?? '' };
    }
    const fn = this.#byDir.get(dirname(rel));
    if (fn !== undefined) return { kind: 'device', rel, fn, attribute: basename(rel) };
    return { kind: 'other', rel };
  }

  #checkFault(operation: SysfsOperation, path: string): void {
    for (const state of this.#faults) {
      const { fault } = state;
      const matches = typeof fault.path === 'string' ? fault.path === path : fault.path.test(path);
      if (!matches || state.remaining <= 0) continue;
      if (fault.operations !== undefined && !fault.operations.includes(operation)) continue;
      if (state.skip > 0) {
        state.skip--;
        continue;
      }
      state.remaining--;
      throw this.#error(operation, path, fault.errno);
    }
  }

  #error(operation: SysfsOperation, path: string, errno: string): SysfsError {
    const err = toSysfsError(Object.assign(new Error(`${errno}: fake sysfs`), { code: errno }), {
      operation,
      path,
      root: this.root,
      isRoot: !this.#unprivileged,
    });
    if (!(err instanceof SysfsError)) throw new TypeError(`Invalid errno name "${errno}"`);
    return err;
  }

  #function(address: PciAddress | string): FunctionState {
    const name =
      typeof address === 'string' ? PciAddress.parse(address).toString() : address.toString();
    const fn = this.#byName.get(name);
    if (fn === undefined)
      throw new RangeError(`Cannot find fake PCI function "${name}": it is not in the tree`);
    return fn;
  }

  #driver(name: string): DriverState {
    const driver = this.#driverByName.get(name);
    if (driver === undefined)
      throw new RangeError(`Cannot find fake driver "${name}": it is not in the tree`);
    return driver;
  }
}

/**
 * A function spec from a config dump (`parseDumpFile`): its address, image and BAR
 * sizes, with `overrides` on top.
 */
export function fakeFunctionFromDump(
  dump: DeviceDump,
  overrides: Partial<FakePciFunctionSpec> = {},
): FakePciFunctionSpec {
  return { address: dump.address, config: dump.config, barSizes: dump.barSizes, ...overrides };
}

/** Every device of a dump file (`lspci -xxx` text or a binary `config`) as function specs. */
export function fakeFunctionsFromDumpFile(path: string): FakePciFunctionSpec[] {
  const bytes = new Uint8Array(readFileSync(path));
  return parseDumpFile(bytes, basename(path)).map((dump) => fakeFunctionFromDump(dump));
}

// --- Building the model ---------------------------------------------------------------------

function buildFunctions(specs: readonly FakePciFunctionSpec[]): FunctionState[] {
  const functions: FunctionState[] = [];
  const seen = new Set<string>();
  let barBase = 0xe0000000n;
  for (const spec of specs) {
    const address =
      typeof spec.address === 'string' ? PciAddress.parse(spec.address) : spec.address;
    const name = address.toString();
    if (seen.has(name))
      throw new RangeError(`Cannot add fake PCI function "${name}": the address is used twice`);
    seen.add(name);
    let config: Uint8Array;
    if (spec.config !== undefined) config = padConfig(spec.config);
    else if (spec.simple !== undefined) config = buildSimpleConfig(spec.simple, barBase);
    else {
      throw new RangeError(
        `Cannot add fake PCI function "${name}": give its config or a simple description`,
      );
    }
    const cs = new ConfigSpace(config);
    const sizes = spec.barSizes ?? spec.simple?.barSizes ?? new Map<number, bigint>();
    const resources = Object.freeze([...(spec.resources ?? decodeResources(config, sizes))]);
    for (const res of resources) {
      const end = res.start + res.sizeBytes;
      if (
        res.flags !== 0 &&
        (res.flags & IORESOURCE.MEM) !== 0 &&
        end > barBase &&
        end < 0x100000000n
      ) {
        barBase = (end + 0xfffffn) & ~0xfffffn;
      }
    }
    const pin = cs.read8(PCI_INTERRUPT_PIN_OFFSET);
    const line = cs.read8(PCI_INTERRUPT_LINE_OFFSET);
    functions.push({
      address,
      name,
      dir: '',
      config,
      masks: configWriteMasks(config, resources),
      resources,
      vendorId: cs.vendorId,
      deviceId: cs.deviceId,
      subsystemVendorId: cs.subsystemVendorId ?? 0,
      subsystemDeviceId: cs.subsystemId ?? 0,
      classCode: cs.classCode,
      headerType: cs.headerType,
      revision: cs.revision,
      irq: spec.irq ?? (pin !== 0 && line !== 0xff ? line : 0),
      iommuGroup: spec.iommuGroup ?? null,
      parent: null,
      physfn: null,
      virtfns: [],
      driver: null,
      driverCountsEnable: false,
      override: spec.driverOverride ?? null,
      enableCount: 0,
      supportedResets: [],
      resetMethods: [],
      resetErrors: spec.resetErrors ?? {},
      resets: [],
      spec,
    });
  }
  return functions;
}

/** Parents, VF links, directories and the reset methods that depend on the topology. */
function linkTopology(
  functions: FunctionState[],
  byName: ReadonlyMap<string, FunctionState>,
): void {
  const lookup = (ref: PciAddress | string, what: string, of: FunctionState): FunctionState => {
    const name = typeof ref === 'string' ? PciAddress.parse(ref).toString() : ref.toString();
    const found = byName.get(name);
    if (found === undefined) {
      throw new RangeError(
        `Cannot place fake PCI function "${of.name}": its ${what} "${name}" is not in the tree`,
      );
    }
    return found;
  };
  for (const fn of functions) {
    if (fn.spec.physfn !== undefined) {
      fn.physfn = lookup(fn.spec.physfn, 'physfn', fn);
      fn.physfn.virtfns.push(fn);
    }
  }
  for (const fn of functions) {
    if (fn.spec.parent !== undefined) {
      fn.parent = fn.spec.parent === null ? null : lookup(fn.spec.parent, 'parent', fn);
    } else if (fn.physfn === null) {
      // The kernel puts a function behind the bridge whose secondary bus it is on.
      fn.parent =
        functions.find(
          (bridge) =>
            bridge !== fn &&
            (bridge.headerType === PCI_HEADER_TYPE_BRIDGE ||
              bridge.headerType === PCI_HEADER_TYPE_CARDBUS) &&
            bridge.address.domain === fn.address.domain &&
            bridge.config[PCI_SECONDARY_BUS_OFFSET] === fn.address.bus &&
            bridge.address.bus < fn.address.bus,
        ) ?? null;
    }
  }
  // A VF sits beside its PF (resolved after the PF's own parent is known).
  for (const fn of functions) {
    if (fn.physfn !== null && fn.spec.parent === undefined) fn.parent = fn.physfn.parent;
  }
  for (const fn of functions) {
    const seen = new Set<FunctionState>();
    for (let at: FunctionState | null = fn; at !== null; at = at.parent) {
      if (seen.has(at))
        throw new RangeError(
          `Cannot place fake PCI function "${fn.name}": its parents form a loop`,
        );
      seen.add(at);
    }
  }
  for (const fn of functions) fn.dir = directoryOf(fn);
  for (const fn of functions) {
    const hasSiblings = functions.some(
      (other) => other !== fn && other.parent === fn.parent && other.address.bus === fn.address.bus,
    );
    fn.supportedResets =
      fn.spec.resetMethods ??
      probeResetMethods(fn.config, { onRootBus: fn.parent === null, hasSiblings });
    fn.resetMethods = [...fn.supportedResets];
  }
}

function directoryOf(fn: FunctionState): string {
  if (fn.parent !== null) return `${directoryOf(fn.parent)}/${fn.name}`;
  const domain = fn.address.domain.toString(16).padStart(4, '0');
  const bus = fn.address.bus.toString(16).padStart(2, '0');
  return `devices/pci${domain}:${bus}/${fn.name}`;
}

function depth(fn: FunctionState): number {
  let n = 0;
  for (let at = fn.parent; at !== null; at = at.parent) n++;
  return n;
}

function formatResetMethods(methods: readonly PciResetMethod[]): string {
  return methods.length === 0 ? '' : `${methods.join(' ')}\n`;
}

function stripNewline(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** `kstrtoul(buf, 0, ...)`: decimal, 0x hex or 0 octal, one trailing newline allowed. */
function parseKernelUlong(text: string): number | undefined {
  const body = stripNewline(text);
  if (/^0x[0-9a-fA-F]+$/.test(body)) return Number.parseInt(body.slice(2), 16);
  if (/^0[0-7]*$/.test(body)) return Number.parseInt(body, 8);
  if (/^[1-9][0-9]*$/.test(body)) return Number.parseInt(body, 10);
  return undefined;
}

/** pciback's `str_to_slot` for one function: `DDDD:BB:DD.F` or `BB:DD.F`. */
function parseSlot(text: string): PciAddress | undefined {
  try {
    return PciAddress.parse(text.trim());
  } catch {
    return undefined;
  }
}
