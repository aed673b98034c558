// SPDX-License-Identifier: MIT
/**
 * The host's PCI bus through Linux sysfs (`/sys/bus/pci`): enumeration, driver moves
 * (`unbind`, `driver_override`, `bind`, `drivers_probe`) and resets (`reset_method`,
 * `reset`), the way xl and libvirt drive them (peers.md §1.1, §1.5, §5.1).
 *
 * Kernel behaviours this relies on (v6.x):
 * - `bind` answers ENODEV when the device does not match the driver (with
 *   `driver_override` set only that driver matches) and EBUSY when it already has one;
 *   an old kernel may accept the write and leave the device unbound when the probe
 *   declines, so the result is checked on the `driver` link.
 * - `reset` exists only when the kernel found a reset method; `reset_method` (5.15+)
 *   lists them and accepts one to use. A reset with a chosen method writes it, resets,
 *   and writes the previous list back. Without `reset_method` (older kernels) no method
 *   can be chosen and none is listed; `resettable` still says whether `reset` exists.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import {
  PCI_AF_CAP_FLR,
  PCI_AF_CAP_OFFSET,
  PCI_AF_CAP_TP,
  PCI_CAP_ID,
  PCI_EXP_DEVCAP_FLR,
  PCI_EXP_DEVCAP_OFFSET,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_OFFSET,
} from '../../abi/pci-regs.js';
import { PcibackError } from '../../errors.js';
import { PciAddress } from '../../pci/address.js';
import { findCapability } from '../../pci/capabilities.js';
import type { PciResource } from '../../pci/resource.js';
import type {
  HostPciConsumers,
  HostPciFunctionInfo,
  PciHostPlatform,
  PciResetMethod,
  PciResetOutcome,
} from '../pci-host.js';
import type { Logger } from '../types.js';
import { describeErrno } from './errno.js';
import { LinuxHostPciDevice } from './host-device.js';
import { pciModalias, type ModuleAliases } from './module-aliases.js';
import { STUB_DRIVER_MODULES, isStubDriverName } from './stub-driver.js';
import { NodeSysfsIo, ReadOnlySysfsIo, isSysfsError, joinRoot, type SysfsIo } from './sysfs-io.js';
import {
  baseName,
  isPciSlotName,
  parseDecimalAttribute,
  parseDriverOverride,
  parseHexAttribute,
  parseResetMethods,
  parseResourceFile,
  upstreamBridgeFromPath,
} from './sysfs-format.js';

const DEVICES_DIR = 'bus/pci/devices';
const DRIVERS_DIR = 'bus/pci/drivers';
const DRIVERS_PROBE = 'bus/pci/drivers_probe';

/** What Linux shows of a function, beyond the platform-neutral fields. */
export interface LinuxPciFunctionInfo extends HostPciFunctionInfo {
  /** `reset` exists: the kernel found at least one way to reset the function. */
  readonly resettable: boolean;
  /**
   * `reset_method` exists (Linux 5.15+). When false, `resetMethods` is empty even for
   * a resettable function: the kernel does not say which methods it would use.
   */
  readonly resetMethodsListed: boolean;
  /** The function's real directory relative to the sysfs root (`devices/pci0000:00/...`). */
  readonly sysfsPath: string;
}

/** Options of {@link LinuxPciHost}. */
export interface LinuxPciHostOptions {
  /** The sysfs mount (default `/sys`); ignored when `io` is given. */
  readonly root?: string;
  /** The sysfs access to use (a `FakeSysfs` in tests). */
  readonly io?: SysfsIo;
  /** Refuse every write (listing commands, looking at a real host from tests). */
  readonly readOnly?: boolean;
  readonly logger?: Logger;
  /** Blocks for `ms` (power-state delays of opened devices); a real sleep by default. */
  readonly sleepMs?: (ms: number) => void;
  /** Architecture quirks of opened devices; x86 by default. */
  readonly arch?: 'x86' | 'generic';
  /**
   * The kernel's module alias tables, for {@link LinuxPciHost.nativeDriver}
   * (`ModuleAliases.load()`); without them the native driver is unknown.
   */
  readonly moduleAliases?: ModuleAliases | undefined;
  /**
   * `/proc/self/mountinfo` (for {@link LinuxPciHost.consumers}); read from /proc by
   * default when the host opens sysfs itself, absent otherwise.
   */
  readonly mountinfo?: (() => string) | undefined;
}

/** IFF_UP in a network interface's `flags`. */
const IFF_UP = 0x1;
/** How deep below a function's directory block devices are looked for (ahci: 5). */
const CONSUMER_SEARCH_DEPTH = 6;

/**
 * {@link PciHostPlatform} over Linux sysfs.
 *
 * @example
 * const host = new LinuxPciHost({ readOnly: true });
 * for (const fn of host.list()) console.log(fn.address.toString(), fn.driver);
 *
 * const nic = PciAddress.parse('0000:03:00.0');
 * host.setDriverOverride(nic, 'pciback');
 * host.unbind(nic);
 * host.probe(nic); // now bound to pciback
 */
export class LinuxPciHost implements PciHostPlatform {
  readonly kind = 'linux';
  /** The sysfs access in use. */
  readonly io: SysfsIo;
  readonly #logger: Logger | undefined;
  readonly #sleepMs: ((ms: number) => void) | undefined;
  readonly #arch: 'x86' | 'generic' | undefined;
  readonly #opened = new Map<number, LinuxHostPciDevice>();
  readonly #moduleAliases: ModuleAliases | undefined;
  readonly #mountinfo: (() => string) | undefined;

  constructor(options: LinuxPciHostOptions = {}) {
    this.#moduleAliases = options.moduleAliases;
    this.#mountinfo =
      options.mountinfo ??
      (options.io === undefined ? () => readFileSync('/proc/self/mountinfo', 'utf8') : undefined);
    const io = options.io ?? new NodeSysfsIo(options.root ?? '/sys');
    this.io = options.readOnly === true ? new ReadOnlySysfsIo(io) : io;
    this.#logger = options.logger;
    this.#sleepMs = options.sleepMs;
    this.#arch = options.arch;
  }

  // --- Enumeration -----------------------------------------------------------------------

  list(): LinuxPciFunctionInfo[] {
    if (!this.io.exists(DEVICES_DIR)) return [];
    let names: string[];
    try {
      names = this.io.readdir(DEVICES_DIR);
    } catch (err) {
      throw this.#wrap('Cannot list PCI devices', err);
    }
    const found: LinuxPciFunctionInfo[] = [];
    for (const name of names) {
      if (!isPciSlotName(name)) continue;
      const info = this.info(PciAddress.parse(name));
      // A function removed between readdir and reading it is simply gone.
      if (info !== undefined) found.push(info);
    }
    return found.sort((a, b) => a.address.compare(b.address));
  }

  info(address: PciAddress): LinuxPciFunctionInfo | undefined {
    const dir = deviceDir(address);
    if (!this.io.exists(dir)) return undefined;
    try {
      const hex = (name: string): number =>
        parseHexAttribute(this.io.readText(`${dir}/${name}`), name);
      const header = this.io.readBytes(`${dir}/config`, 0x0e, 1)[0];
      const sysfsPath = this.#realPath(address);
      const resetMethodsListed = this.io.exists(`${dir}/reset_method`);
      const resetMethods = resetMethodsListed
        ? parseResetMethods(this.io.readText(`${dir}/reset_method`)).methods
        : [];
      const overrideText = this.#optionalText(`${dir}/driver_override`);
      return Object.freeze({
        address,
        vendorId: hex('vendor'),
        deviceId: hex('device'),
        subsystemVendorId: hex('subsystem_vendor'),
        subsystemDeviceId: hex('subsystem_device'),
        classCode: hex('class'),
        headerType: (header ?? 0) & 0x7f,
        driver: this.#linkName(`${dir}/driver`),
        driverOverride: overrideText === undefined ? null : parseDriverOverride(overrideText),
        iommuGroup: this.#iommuGroup(dir),
        upstreamBridge: upstreamBridgeFromPath(sysfsPath),
        physfn: this.#linkAddress(`${dir}/physfn`),
        virtfns: this.#virtfns(dir),
        resetMethods: Object.freeze(resetMethods),
        irq: parseDecimalAttribute(this.io.readText(`${dir}/irq`), 'irq'),
        resettable: this.io.exists(`${dir}/reset`),
        resetMethodsListed,
        sysfsPath,
      });
    } catch (err) {
      if (isSysfsError(err, 'ENOENT', 'ENODEV') && !this.io.exists(dir)) return undefined;
      throw this.#wrap(`Cannot read PCI device "${address.toString()}"`, err);
    }
  }

  /**
   * The driver the function's `modalias` leads to: the matching modules' PCI drivers
   * (`module/<name>/drivers/pci:<driver>` when loaded, else the module's name), stub
   * modules left out. Null when nothing matches; undefined without alias tables, for an
   * absent function, or when several drivers match (the kernel's choice then depends on
   * load order).
   */
  nativeDriver(address: PciAddress): string | null | undefined {
    const aliases = this.#moduleAliases;
    const info = aliases === undefined ? undefined : this.info(address);
    if (aliases === undefined || info === undefined) return undefined;
    const modalias =
      this.#optionalText(`${deviceDir(address)}/modalias`)?.trim() || pciModalias(info);
    const stubModules = new Set(
      Object.values(STUB_DRIVER_MODULES).map((m) => m.replaceAll('-', '_')),
    );
    const drivers = new Set<string>();
    for (const module of aliases.modulesFor(modalias)) {
      if (stubModules.has(module)) continue;
      for (const driver of this.#moduleDrivers(module)) drivers.add(driver);
    }
    if (drivers.size > 1) {
      this.#logger?.debug(
        { device: address.toString(), drivers: [...drivers] },
        `Several drivers match "${address.toString()}"; its native driver is left unknown`,
      );
      return undefined;
    }
    return drivers.values().next().value ?? null;
  }

  /**
   * dom0's users of the function, from its sysfs directory: network interfaces (`net/*`,
   * busy while IFF_UP is set) and block devices below it (any directory whose
   * `subsystem` is the block class: disks and partitions, NVMe namespaces, SATA disks
   * under their host), busy while mounted (`mountinfo`) or held by another block device
   * (`holders/`, e.g. LVM or md). Undefined for an absent function.
   */
  consumers(address: PciAddress): HostPciConsumers | undefined {
    const dir = deviceDir(address);
    if (!this.io.exists(dir)) return undefined;
    const found: string[] = [];
    const busy: string[] = [];
    for (const name of this.#entries(`${dir}/net`)) {
      const what = `network interface "${name}"`;
      found.push(what);
      const flags = this.#optionalText(`${dir}/net/${name}/flags`);
      if (flags !== undefined && (Number.parseInt(flags.trim(), 16) & IFF_UP) !== 0) {
        busy.push(`${what} is up`);
      }
    }
    let mounts: Map<string, string> | undefined;
    for (const block of this.#blockDevices(dir, CONSUMER_SEARCH_DEPTH)) {
      const name = baseName(block);
      const what = `block device "${name}"`;
      found.push(what);
      const holders = this.#entries(`${block}/holders`);
      if (holders.length > 0) busy.push(`${what} is held by ${holders.join(', ')}`);
      const dev = this.#optionalText(`${block}/dev`)?.trim();
      mounts ??= this.#mounts();
      const on = dev === undefined ? undefined : mounts.get(dev);
      if (on !== undefined) busy.push(`${what} is mounted on ${on}`);
    }
    return { found, busy };
  }

  /** Entry names of a directory, none when it is absent or unreadable. */
  #entries(path: string): string[] {
    try {
      return this.io.exists(path) ? this.io.readdir(path).sort() : [];
    } catch {
      return [];
    }
  }

  /** Block device directories below `dir` (links are not followed). */
  #blockDevices(dir: string, depth: number): string[] {
    const out: string[] = [];
    for (const name of this.#entries(dir)) {
      const path = `${dir}/${name}`;
      // Links lead elsewhere (driver, subsystem, physfn, a child's way back up).
      if (this.#isLink(path)) continue;
      let subsystem: string | undefined;
      try {
        subsystem = this.io.readlink(`${path}/subsystem`);
      } catch {
        subsystem = undefined;
      }
      if (subsystem !== undefined && /(^|\/)block$/.test(subsystem)) out.push(path);
      if (depth > 1) out.push(...this.#blockDevices(path, depth - 1));
    }
    return out;
  }

  #isLink(path: string): boolean {
    try {
      this.io.readlink(path);
      return true;
    } catch {
      return false;
    }
  }

  /** `major:minor` to mount point, from mountinfo (empty when unknown). */
  #mounts(): Map<string, string> {
    const out = new Map<string, string>();
    let text: string;
    try {
      text = this.#mountinfo?.() ?? '';
    } catch {
      return out;
    }
    for (const line of text.split('\n')) {
      const fields = line.split(' ');
      const dev = fields[2];
      const on = fields[4];
      if (dev !== undefined && on !== undefined && !out.has(dev)) out.set(dev, on);
    }
    return out;
  }

  /** A module's PCI drivers when it is loaded, else its name (the usual driver name). */
  #moduleDrivers(module: string): string[] {
    const dir = `module/${module}/drivers`;
    let entries: string[] = [];
    try {
      if (this.io.exists(dir)) entries = this.io.readdir(dir);
    } catch {
      entries = [];
    }
    const pci = entries.filter((e) => e.startsWith('pci:')).map((e) => e.slice(4));
    return pci.length > 0 ? pci : [module];
  }

  open(address: PciAddress): LinuxHostPciDevice {
    const cached = this.#opened.get(address.key);
    if (cached !== undefined && this.io.exists(deviceDir(address))) return cached;
    const device = new LinuxHostPciDevice(this.io, address, {
      ...(this.#logger === undefined ? {} : { logger: this.#logger }),
      ...(this.#sleepMs === undefined ? {} : { sleepMs: this.#sleepMs }),
      ...(this.#arch === undefined ? {} : { arch: this.#arch }),
    });
    this.#opened.set(address.key, device);
    return device;
  }

  resources(address: PciAddress): readonly PciResource[] {
    const action = `Cannot read the resources of "${address.toString()}"`;
    this.#requireDevice(address, action);
    try {
      return Object.freeze(parseResourceFile(this.io.readText(`${deviceDir(address)}/resource`)));
    } catch (err) {
      throw this.#wrap(action, err);
    }
  }

  drivers(): readonly string[] {
    if (!this.io.exists(DRIVERS_DIR)) return [];
    try {
      return this.io.readdir(DRIVERS_DIR).sort();
    } catch (err) {
      throw this.#wrap('Cannot list PCI drivers', err);
    }
  }

  // --- Driver moves ------------------------------------------------------------------------

  unbind(address: PciAddress): void {
    const info = this.#requireDevice(address, `Cannot unbind "${address.toString()}"`);
    if (info.driver === null) return;
    const action = `Cannot unbind "${address.toString()}" from driver "${info.driver}"`;
    try {
      this.io.writeText(`${deviceDir(address)}/driver/unbind`, address.toString());
    } catch (err) {
      // ENODEV: it left the driver meanwhile; fine if it now has none.
      if (isSysfsError(err, 'ENODEV', 'ENOENT') && this.info(address)?.driver === null) return;
      throw this.#wrap(action, err);
    }
  }

  setDriverOverride(address: PciAddress, driver: string | null): void {
    if (driver !== null) checkDriverName(driver);
    const action =
      driver === null
        ? `Cannot clear the driver override of "${address.toString()}"`
        : `Cannot set the driver override of "${address.toString()}" to "${driver}"`;
    this.#requireDevice(address, action);
    const path = `${deviceDir(address)}/driver_override`;
    if (!this.io.exists(path)) {
      throw new PcibackError(
        'HOST_IO',
        `${action}: the kernel has no driver_override (Linux 3.16 or later is needed)`,
      );
    }
    try {
      // An empty write (a lone newline) clears the override.
      this.io.writeText(path, driver ?? '\n');
    } catch (err) {
      throw this.#wrap(action, err);
    }
  }

  bind(address: PciAddress, driver: string): void {
    checkDriverName(driver);
    const action = `Cannot bind "${address.toString()}" to driver "${driver}"`;
    const info = this.#requireDevice(address, action);
    if (!this.io.exists(`${DRIVERS_DIR}/${driver}`)) {
      const module = isStubDriverName(driver) ? STUB_DRIVER_MODULES[driver] : driver;
      throw new PcibackError(
        'NO_SUCH_DRIVER',
        `${action}: no such driver (no "${joinRoot(this.io.root, `${DRIVERS_DIR}/${driver}`)}"): load its module ("modprobe ${module}")`,
      );
    }
    if (info.driver === driver) return;
    if (info.driver !== null) {
      throw new PcibackError(
        'DEVICE_BUSY',
        `${action}: it is bound to driver "${info.driver}": unbind it first`,
      );
    }
    try {
      this.io.writeText(`${DRIVERS_DIR}/${driver}/bind`, address.toString());
    } catch (err) {
      throw this.#bindError(action, address, driver, err);
    }
    const now = this.info(address)?.driver ?? null;
    if (now !== driver) {
      throw new PcibackError(
        'HOST_IO',
        `${action}: the kernel took the request but the device has ${now === null ? 'no driver' : `driver "${now}"`}: the driver's probe declined it (see dmesg)`,
      );
    }
  }

  probe(address: PciAddress): void {
    const action = `Cannot probe drivers for "${address.toString()}"`;
    this.#requireDevice(address, action);
    try {
      this.io.writeText(DRIVERS_PROBE, address.toString());
    } catch (err) {
      if (isSysfsError(err, 'ENODEV') && !this.io.exists(deviceDir(address))) {
        throw new PcibackError('NO_SUCH_DEVICE', `${action}: the device is gone`, { cause: err });
      }
      throw this.#wrap(action, err);
    }
  }

  // --- Reset -------------------------------------------------------------------------------

  reset(address: PciAddress, method?: PciResetMethod): PciResetOutcome {
    const name = address.toString();
    const action = `Cannot reset "${name}"`;
    const info = this.#requireDevice(address, action);
    const dir = deviceDir(address);
    if (!info.resettable) {
      return {
        ok: false,
        reason: `"${name}" is not resettable: the kernel found no reset method for it (no FLR, PM reset or bus reset; there is no "reset" file)`,
      };
    }
    if (!info.resetMethodsListed) {
      if (method !== undefined) {
        return {
          ok: false,
          reason: `Cannot reset "${name}" with method "${method}": the kernel has no "reset_method" file to choose one (Linux before 5.15); reset without a method instead`,
        };
      }
      const failure = this.#writeReset(address, action);
      return failure === undefined
        ? { ok: true, method: this.#guessResetMethod(address) }
        : { ok: false, reason: failure };
    }
    const previous = this.io.readText(`${dir}/reset_method`).trim();
    const candidates = method === undefined ? [...info.resetMethods] : [method];
    if (candidates.length === 0) {
      return {
        ok: false,
        reason: `"${name}" is not resettable: every reset method is disabled ("reset_method" is empty)`,
      };
    }
    const failures: string[] = [];
    let outcome: PciResetOutcome | undefined;
    let changed = false;
    try {
      for (const candidate of candidates) {
        try {
          this.io.writeText(`${dir}/reset_method`, candidate);
          changed = true;
        } catch (err) {
          if (!isSysfsError(err, 'EINVAL')) throw this.#wrap(action, err);
          failures.push(
            `${candidate}: the device does not support it (the kernel offers: ${previous === '' ? 'none' : previous})`,
          );
          continue;
        }
        const failure = this.#writeReset(address, action);
        if (failure === undefined) {
          outcome = { ok: true, method: candidate };
          break;
        }
        failures.push(`${candidate}: ${failure}`);
      }
    } finally {
      if (changed) this.#restoreResetMethods(address, previous);
    }
    return outcome ?? { ok: false, reason: `Cannot reset "${name}": ${failures.join('; ')}` };
  }

  // --- Internals -------------------------------------------------------------------------------

  /** The info of an existing function, or NO_SUCH_DEVICE naming the action. */
  #requireDevice(address: PciAddress, action: string): LinuxPciFunctionInfo {
    const info = this.info(address);
    if (info === undefined) {
      throw new PcibackError(
        'NO_SUCH_DEVICE',
        `${action}: no such PCI device (no "${joinRoot(this.io.root, deviceDir(address))}")`,
      );
    }
    return info;
  }

  /** Writes `1` to `reset`: undefined on success, else why it failed (permission faults throw). */
  #writeReset(address: PciAddress, action: string): string | undefined {
    try {
      this.io.writeText(`${deviceDir(address)}/reset`, '1');
      return undefined;
    } catch (err) {
      if (!isSysfsError(err) || err.code === 'PERMISSION_DENIED') throw this.#wrap(action, err);
      if (err.errno === 'ENOENT' || err.errno === 'ENODEV') {
        if (!this.io.exists(deviceDir(address))) {
          throw new PcibackError('NO_SUCH_DEVICE', `${action}: the device is gone`, { cause: err });
        }
      }
      if (err.errno === 'ENOTTY') return 'the kernel could not reset it with this method (ENOTTY)';
      return `the reset failed: ${describeErrno(err.errno)}`;
    }
  }

  #restoreResetMethods(address: PciAddress, previous: string): void {
    try {
      // An empty write (a lone newline) is how the empty list is written back.
      this.io.writeText(`${deviceDir(address)}/reset_method`, previous === '' ? '\n' : previous);
    } catch (err) {
      throw this.#wrap(
        `Cannot restore the reset methods of "${address.toString()}" to "${previous}" after a reset`,
        err,
      );
    }
  }

  /**
   * What the kernel most likely used when it cannot say (no `reset_method`): its order
   * is FLR, AF FLR, PM, bus; device-specific quirks cannot be seen from here.
   */
  #guessResetMethod(address: PciAddress): PciResetMethod {
    const device = this.open(address);
    const reader = {
      sizeBytes: device.configSizeBytes,
      read8: (at: number) => device.readConfig(at, 1).value,
      read16: (at: number) => device.readConfig(at, 2).value,
      read32: (at: number) => device.readConfig(at, 4).value,
    };
    const exp = findCapability(reader, PCI_CAP_ID.EXP);
    if (
      exp !== undefined &&
      (reader.read32(exp + PCI_EXP_DEVCAP_OFFSET) & PCI_EXP_DEVCAP_FLR) !== 0
    ) {
      return 'flr';
    }
    const af = findCapability(reader, PCI_CAP_ID.AF);
    if (af !== undefined) {
      const cap = reader.read8(af + PCI_AF_CAP_OFFSET);
      if ((cap & PCI_AF_CAP_TP) !== 0 && (cap & PCI_AF_CAP_FLR) !== 0) return 'af_flr';
    }
    const pm = findCapability(reader, PCI_CAP_ID.PM);
    if (
      pm !== undefined &&
      (reader.read16(pm + PCI_PM_CTRL_OFFSET) & PCI_PM_CTRL_NO_SOFT_RESET) === 0
    ) {
      return 'pm';
    }
    return 'bus';
  }

  #bindError(action: string, address: PciAddress, driver: string, err: unknown): PcibackError {
    if (!isSysfsError(err)) return this.#wrap(action, err);
    switch (err.errno) {
      case 'EBUSY':
        return new PcibackError(
          'DEVICE_BUSY',
          `${action}: another driver took it meanwhile (${err.errno})`,
          { cause: err },
        );
      case 'ENODEV':
        if (!this.io.exists(deviceDir(address))) {
          return new PcibackError('NO_SUCH_DEVICE', `${action}: the device is gone`, {
            cause: err,
          });
        }
        return new PcibackError(
          'HOST_IO',
          `${action}: the driver does not accept it (${err.errno}): ` +
            (driver === 'pciback'
              ? 'it is not on pciback\'s slot list (new_slot) and its driver_override is not "pciback"'
              : `its ID is not in the driver's table and its driver_override is not "${driver}"`),
          { cause: err },
        );
      default:
        return this.#wrap(`${action}: the driver's probe failed`, err);
    }
  }

  #wrap(action: string, err: unknown): PcibackError {
    if (!isSysfsError(err)) {
      if (err instanceof PcibackError) return err;
      return new PcibackError(
        'HOST_IO',
        `${action}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    return new PcibackError(err.code, `${action}: ${lowerFirst(err.message)}`, {
      cause: err,
    });
  }

  #optionalText(path: string): string | undefined {
    try {
      return this.io.readText(path);
    } catch (err) {
      if (isSysfsError(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** The name a link points at, or null without the link. */
  #linkName(path: string): string | null {
    try {
      return baseName(this.io.readlink(path));
    } catch (err) {
      if (isSysfsError(err, 'ENOENT')) return null;
      throw err;
    }
  }

  #linkAddress(path: string): PciAddress | null {
    const name = this.#linkName(path);
    return name !== null && isPciSlotName(name) ? PciAddress.parse(name) : null;
  }

  #iommuGroup(dir: string): number | null {
    const name = this.#linkName(`${dir}/iommu_group`);
    return name !== null && /^\d+$/.test(name) ? Number.parseInt(name, 10) : null;
  }

  #virtfns(dir: string): readonly PciAddress[] {
    const entries = this.io
      .readdir(dir)
      .map((name) => /^virtfn(\d+)$/.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ index: Number.parseInt(m[1] ?? '0', 10), name: m[0] }))
      .sort((a, b) => a.index - b.index);
    const found: PciAddress[] = [];
    for (const entry of entries) {
      const address = this.#linkAddress(`${dir}/${entry.name}`);
      if (address !== null) found.push(address);
    }
    return Object.freeze(found);
  }

  /** The device's real directory relative to the root, from its `bus/pci/devices` link. */
  #realPath(address: PciAddress): string {
    const target = this.io.readlink(deviceDir(address));
    if (target.startsWith('/')) return posix.relative(this.io.root, target);
    return posix.normalize(posix.join(DEVICES_DIR, target));
  }
}

function deviceDir(address: PciAddress): string {
  return `${DEVICES_DIR}/${address.toString()}`;
}

/** A driver name as sysfs has it: non-empty, no whitespace or slash. */
function checkDriverName(driver: unknown): asserts driver is string {
  if (typeof driver !== 'string' || !/^[^\s/]{1,255}$/.test(driver)) {
    throw new RangeError(
      `Invalid driver name "${String(driver)}": expected a sysfs driver name without spaces or slashes`,
    );
  }
}

function lowerFirst(text: string): string {
  return text.length === 0 ? text : `${(text[0] ?? '').toLowerCase()}${text.slice(1)}`;
}
