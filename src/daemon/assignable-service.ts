// SPDX-License-Identifier: MIT
/**
 * The assignable-device operations: xl's `pci-assignable-add`, `-remove` and `-list`
 * (peers.md §1.1) over the host's PCI bus and the state database, and beyond them where
 * users asked (peers.md §7): refuse to take a device its driver is using, check that
 * the stub really took it and roll back when it did not, warn about IOMMU group peers
 * left in dom0 and about devices that cannot be reset, clear `driver_override` on the
 * way out (Qubes #5843), and fall back to the kernel's choice when the original driver
 * is unknown.
 *
 * The host is moved first and the database written after, in one transaction: a call
 * that returns success has both. A crash between the two leaves a device on the stub
 * without a record, which `reconcile` adopts at the next start (with its original
 * driver unknown) and reports as a repair.
 *
 * Every method is synchronous (sysfs and SQLite both are), so calls never interleave.
 */
import { PCI_COMMAND_MASTER, PCI_COMMAND_OFFSET } from '../abi/pci-regs.js';
import { PcibackError, isPcibackError } from '../errors.js';
import { PciAddress } from '../pci/address.js';
import type {
  HostPciFunctionInfo,
  PciHostPlatform,
  PciResetOutcome,
} from '../platform/pci-host.js';
import { iommuGroupPeers, iommuGroupWarning } from '../platform/linux/index.js';
import { SILENT_LOGGER, type Logger } from '../platform/types.js';
import {
  STATE_ERROR,
  type AssignableDb,
  type AssignableDevice,
  type DevicePolicy,
  type DeviceStatus,
  type OriginalDriver,
  type ResetRecord,
} from '../state/index.js';

/** Stable `code`s of the errors {@link AssignableService} throws (besides the host's and the database's). */
export const ASSIGNABLE_ERROR = {
  /** The BDF does not parse. */
  invalidAddress: 'ASSIGNABLE_INVALID_ADDRESS',
  /** The name breaks xl's rule (or ours: no comma, not address-like). */
  invalidName: 'ASSIGNABLE_INVALID_NAME',
  /**
   * The device's driver is using it (an interface up, a block device mounted or held, or
   * else bus mastering on) and `force` was not given.
   */
  inUse: 'ASSIGNABLE_IN_USE',
  /** The stub did not take the device; the original driver has it back. */
  stubRefused: 'ASSIGNABLE_STUB_REFUSED',
  /** The device is given to a guest. */
  attached: 'ASSIGNABLE_ATTACHED',
  /** Neither a recorded name nor a device on the host. */
  unknownDevice: 'ASSIGNABLE_UNKNOWN_DEVICE',
  /** The device left the stub but its original driver did not take it back. */
  rebindFailed: 'ASSIGNABLE_REBIND_FAILED',
} as const;

/** Most characters libxl accepts in a name (`pci-assignable-add -n`). */
export const ASSIGNABLE_NAME_MAX_LENGTH = 64;

/** Options of {@link AssignableService}. */
export interface AssignableServiceOptions {
  readonly host: PciHostPlatform;
  readonly db: AssignableDb;
  /** The stub driver devices are handed to (`pciback`, `vfio-pci`, `pci-stub`). */
  readonly stubDriver: string;
  readonly logger?: Logger;
  /**
   * The domain a device is given to, when the platform knows better than the
   * database (the simulator's live attachments); the database's attachments count too.
   */
  attachedTo?(address: PciAddress): number | undefined;
  /**
   * Take the device off the stub's own list of devices to claim (pciback's
   * `remove_slot`), so that a later probe does not hand it back to the stub. Called
   * after the device left the stub; platforms without such a list omit it.
   */
  forgetStubSlot?(address: PciAddress): void;
}

/** Parameters of {@link AssignableService.add}. */
export interface AddAssignableParams {
  /** The alias; absent or null removes an existing one, as xl does. */
  readonly name?: string | null | undefined;
  /** Take the device even while its driver is using it. */
  readonly force?: boolean | undefined;
}

/** What {@link AssignableService.add} did. */
export interface AddAssignableResult {
  readonly address: string;
  readonly name: string | null;
  readonly stubDriver: string;
  /** It was on the stub already (xl's "already assigned to pciback"). */
  readonly alreadyAssignable: boolean;
  readonly originalDriver: OriginalDriver;
  readonly reset: ResetRecord;
  /** Things the user should know; also logged. */
  readonly warnings: readonly string[];
}

/** Parameters of {@link AssignableService.remove}. */
export interface RemoveAssignableParams {
  /** Bind the original driver back (`-r`). */
  readonly rebind?: boolean | undefined;
}

/** What {@link AssignableService.remove} did. */
export interface RemoveAssignableResult {
  readonly address: string;
  readonly name: string | null;
  /** The database had a record of it (now deleted). */
  readonly recorded: boolean;
  /** It was bound to the stub (and was taken off it). */
  readonly wasOnStub: boolean;
  /** The driver it has now, or null. */
  readonly driver: string | null;
  readonly warnings: readonly string[];
}

/** Parameters of {@link AssignableService.list}. */
export interface ListAssignableParams {
  readonly verbose?: boolean | undefined;
}

/** Where an assignable device stands in the database. */
export type AssignableRowStatus = DeviceStatus | 'unrecorded';

/** One assignable device. */
export interface AssignableRow {
  readonly address: string;
  readonly name: string | null;
  /** Verbose only: null when the database has no record. */
  readonly originalDriver?: OriginalDriver | null;
  readonly reset?: ResetRecord | null;
  readonly status?: AssignableRowStatus;
  readonly policy?: DevicePolicy | null;
}

/** Options of {@link formatAssignableList}. */
export interface FormatAssignableListOptions {
  /** Print names (`-n`). */
  readonly names?: boolean;
  /** A table with the verbose fields (rows from `list({ verbose: true })`). */
  readonly verbose?: boolean;
}

/**
 * xl's `pci-assignable-list` output: `%04x:%02x:%02x.%01x %s` per device, the name
 * only with `names`, so without a name (or without `-n`) the line ends in a space.
 * With `verbose`, a table with a header line instead.
 *
 * @example
 * formatAssignableList([{ address: '0000:03:00.0', name: 'nic' }], { names: true });
 * // '0000:03:00.0 nic\n'
 */
export function formatAssignableList(
  rows: readonly AssignableRow[],
  options: FormatAssignableListOptions = {},
): string {
  if (options.verbose !== true) {
    return rows
      .map((row) => `${row.address} ${options.names === true ? (row.name ?? '') : ''}\n`)
      .join('');
  }
  const table = [
    ['Device', 'Name', 'Original driver', 'Status', 'Policy', 'Reset'],
    ...rows.map((row) => [
      row.address,
      row.name ?? '-',
      describeOriginal(row.originalDriver ?? null),
      row.status ?? 'unrecorded',
      describePolicy(row.policy ?? null),
      describeReset(row.reset ?? null),
    ]),
  ];
  const widths = table[0]?.map((_, column) =>
    Math.max(...table.map((line) => (line[column] ?? '').length)),
  );
  return table
    .map(
      (line) =>
        line
          .map((cell, column) =>
            column === line.length - 1 ? cell : cell.padEnd(widths?.[column] ?? 0),
          )
          .join('  ') + '\n',
    )
    .join('');
}

function describeOriginal(driver: OriginalDriver | null): string {
  if (driver === null) return '(unrecorded)';
  switch (driver.state) {
    case 'bound':
      return driver.name;
    case 'none':
      return '(none)';
    case 'unknown':
      return '(unknown)';
  }
}

function describePolicy(policy: DevicePolicy | null): string {
  if (policy === null) return '-';
  const set = [
    ...(policy.permissive ? ['permissive'] : []),
    ...(policy.allowInterruptControl ? ['allow_interrupt_control'] : []),
  ];
  return set.length === 0 ? '-' : set.join(',');
}

function describeReset(reset: ResetRecord | null): string {
  if (reset === null) return '(unknown)';
  switch (reset.state) {
    case 'unknown':
      return '(unknown)';
    case 'method':
      return reset.method;
    case 'not-resettable':
      return `not resettable: ${reset.reason}`;
  }
}

function driverText(driver: string | null): string {
  return driver === null ? 'no driver' : `driver "${driver}"`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Checks a name against libxl's rule (1 to 64 printable characters, no space:
 * `isgraph`) and ours: no comma (it would end the value in a PCI_SPEC_STRING) and not
 * shaped like a PCI address (remove looks a name up before an address).
 *
 * @throws {PcibackError} `ASSIGNABLE_INVALID_NAME`.
 */
export function checkAssignableName(name: string, action: string): void {
  const fail = (why: string): never => {
    throw new PcibackError(
      ASSIGNABLE_ERROR.invalidName,
      `${action}: invalid name "${name}": ${why}`,
    );
  };
  if (name.length === 0) fail('it is empty');
  if (name.length > ASSIGNABLE_NAME_MAX_LENGTH)
    fail(`it has ${name.length} characters, at most ${ASSIGNABLE_NAME_MAX_LENGTH} are allowed`);
  if (!/^[\x21-\x7e]+$/.test(name)) fail('use printable ASCII characters without spaces');
  if (name.includes(',')) fail('a comma would end it in a PCI_SPEC_STRING');
  if (looksLikeAddress(name)) fail('it looks like a PCI address');
}

function looksLikeAddress(text: string): boolean {
  try {
    PciAddress.parse(text);
    return true;
  } catch {
    return false;
  }
}

function parseAddress(bdf: string, action: string): PciAddress {
  try {
    return PciAddress.parse(bdf);
  } catch (err) {
    throw new PcibackError(ASSIGNABLE_ERROR.invalidAddress, `${action}: ${errorText(err)}`, {
      cause: err,
    });
  }
}

/**
 * The assignable-device operations over one host and one database.
 *
 * @example
 * const service = new AssignableService({ host, db, stubDriver: 'pciback', logger });
 * service.add('03:00.0', { name: 'nic' }); // igb -> pciback, recorded
 * formatAssignableList(service.list(), { names: true }); // '0000:03:00.0 nic\n'
 * service.remove('nic', { rebind: true }); // pciback -> igb, forgotten
 */
export class AssignableService {
  readonly #host: PciHostPlatform;
  readonly #db: AssignableDb;
  readonly #stub: string;
  readonly #logger: Logger;
  readonly #attachedTo: ((address: PciAddress) => number | undefined) | undefined;
  readonly #forgetStubSlot: ((address: PciAddress) => void) | undefined;

  constructor(options: AssignableServiceOptions) {
    this.#host = options.host;
    this.#db = options.db;
    this.#stub = options.stubDriver;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#attachedTo = options.attachedTo?.bind(options);
    this.#forgetStubSlot = options.forgetStubSlot?.bind(options);
  }

  /** The stub driver in use. */
  get stubDriver(): string {
    return this.#stub;
  }

  /**
   * Make a device assignable: move it from its driver to the stub and record where it
   * came from (`pci-assignable-add [-n NAME] BDF`).
   *
   * @throws {PcibackError} `ASSIGNABLE_INVALID_ADDRESS`, `ASSIGNABLE_INVALID_NAME`,
   *   `NO_SUCH_DEVICE`, `STATE_DUPLICATE_NAME`, `ASSIGNABLE_IN_USE`,
   *   `ASSIGNABLE_STUB_REFUSED`, or the host's and the database's own errors (after the
   *   device was given back to its driver).
   */
  add(bdf: string, params: AddAssignableParams = {}): AddAssignableResult {
    const address = parseAddress(bdf, `Cannot make device "${bdf}" assignable`);
    const action = `Cannot make device "${address.toString()}" assignable`;
    const name = params.name ?? null;
    if (name !== null) checkAssignableName(name, action);
    const info = this.#host.info(address);
    if (info === undefined) {
      throw new PcibackError(
        'NO_SUCH_DEVICE',
        `${action}: no such PCI device on the ${this.#host.kind} host`,
      );
    }
    if (name !== null) {
      const holder = this.#db.getAssignable(name);
      if (holder !== undefined && !holder.address.equals(address)) {
        throw new PcibackError(
          STATE_ERROR.duplicateName,
          `${action}: the name "${name}" is used by device "${holder.address.toString()}"`,
        );
      }
    }
    const record = this.#db.getAssignable(address);
    if (info.driver === this.#stub) return this.#keepOnStub(address, info, record, name);

    const warnings: string[] = [];
    if (info.driver !== null) {
      const why = this.#inUse(address);
      if (why !== undefined) {
        if (params.force !== true) {
          throw new PcibackError(
            ASSIGNABLE_ERROR.inUse,
            `${action}: driver "${info.driver}" is using it (${why}): stop what uses it, or give --force`,
          );
        }
        warnings.push(
          `Taking device "${address.toString()}" from driver "${info.driver}" while it is in use (${why}): forced`,
        );
      }
    }

    // xl's driver_path: the driver it leaves now; without one, an older record's.
    let originalDriver: OriginalDriver;
    if (info.driver !== null) {
      originalDriver = {
        state: 'bound',
        name: info.driver,
        driverPath: `/sys/bus/pci/drivers/${info.driver}`,
      };
    } else if (record !== undefined && record.originalDriver.state === 'bound') {
      originalDriver = record.originalDriver;
    } else {
      originalDriver = { state: 'none' };
      warnings.push(
        `Device "${address.toString()}" has no driver: it will not be rebound when it is removed`,
      );
    }

    this.#moveToStub(address, info, action);

    const after = this.#host.info(address) ?? info;
    if (after.iommuGroup !== null) {
      try {
        // Peers on the stub are assignable too: only those a dom0 driver may use count.
        const peers = iommuGroupPeers(this.#host, address).filter((p) => p.driver !== this.#stub);
        const warning = iommuGroupWarning(after, peers);
        if (warning !== undefined) warnings.push(warning);
      } catch (err) {
        // The device is on the stub by now: a failed check must not leave it unrecorded.
        warnings.push(
          `Cannot check the other members of IOMMU group ${after.iommuGroup}: ${errorText(err)}`,
        );
      }
    }
    const reset = this.#resetOutcome(after);
    if (reset !== undefined && !reset.ok) {
      warnings.push(
        `Device "${address.toString()}" cannot be reset: ${reset.reason}; a guest may see what the previous user left in it`,
      );
    }

    let stored: AssignableDevice;
    try {
      stored = this.#db.transaction(() => {
        // A record of a device that had left the stub (rebound, missing) is replaced:
        // its original driver is now the one it left, as xl overwrites driver_path.
        if (record !== undefined) this.#db.removeAssignable(address);
        const added = this.#db.addAssignable(address, {
          originalDriver,
          stubDriver: this.#stub,
          name,
          ...(record === undefined ? {} : { policy: record.policy, quirks: record.quirks }),
        });
        return reset === undefined ? added : this.#db.recordReset(address, reset);
      });
    } catch (err) {
      const back = this.#rollback(address, info);
      throw new PcibackError(
        isPcibackError(err) ? err.code : 'STATE_IO',
        `${errorText(err)} (${back})`,
        { cause: err },
      );
    }
    this.#warnAll(address, warnings);
    this.#logger.info(
      { device: address.toString(), from: info.driver, stub: this.#stub, name },
      `Device "${address.toString()}" is assignable (was on ${driverText(info.driver)})`,
    );
    return {
      address: address.toString(),
      name: stored.name,
      stubDriver: this.#stub,
      alreadyAssignable: false,
      originalDriver: stored.originalDriver,
      reset: stored.reset,
      warnings,
    };
  }

  /**
   * Give a device back to dom0 (`pci-assignable-remove [-r] BDF|NAME`): `ref` is looked
   * up as a name first, then as a BDF (xl's order). Works for a device on the stub that
   * the database does not know, as xl allows.
   *
   * @throws {PcibackError} `ASSIGNABLE_UNKNOWN_DEVICE`, `ASSIGNABLE_ATTACHED`,
   *   `ASSIGNABLE_REBIND_FAILED` (the record is kept so a retry can rebind), or the
   *   host's and the database's own errors.
   */
  remove(ref: string, params: RemoveAssignableParams = {}): RemoveAssignableResult {
    const rebind = params.rebind === true;
    const byName = this.#db.getAssignable(ref);
    let address: PciAddress;
    if (byName !== undefined) address = byName.address;
    else {
      try {
        address = PciAddress.parse(ref);
      } catch {
        throw new PcibackError(
          ASSIGNABLE_ERROR.unknownDevice,
          `Cannot remove "${ref}" from the assignable devices: no device has that name, and it is not a PCI address`,
        );
      }
    }
    const bdf = address.toString();
    const action = `Cannot remove device "${bdf}" from the assignable devices`;
    const record = byName ?? this.#db.getAssignable(address);
    const owner = this.#owner(address);
    if (owner !== undefined) {
      throw new PcibackError(
        ASSIGNABLE_ERROR.attached,
        `${action}: it is attached to ${owner}: detach it first`,
      );
    }
    const info = this.#host.info(address);
    const warnings: string[] = [];
    if (info === undefined) {
      if (record === undefined) {
        throw new PcibackError(
          ASSIGNABLE_ERROR.unknownDevice,
          `${action}: there is no such PCI device on the ${this.#host.kind} host and no record of it`,
        );
      }
      if (rebind) {
        throw new PcibackError(
          ASSIGNABLE_ERROR.rebindFailed,
          `${action}: it is not on the host, so it cannot be rebound; its record is kept (remove it without -r to forget it)`,
        );
      }
      this.#db.removeAssignable(address);
      warnings.push(`Device "${bdf}" is not on the host: only its record was deleted`);
      this.#warnAll(address, warnings);
      return {
        address: bdf,
        name: record.name,
        recorded: true,
        wasOnStub: false,
        driver: null,
        warnings,
      };
    }
    if (info.driver === null && record === undefined && info.driverOverride !== this.#stub) {
      throw new PcibackError(
        ASSIGNABLE_ERROR.unknownDevice,
        `${action}: it is not assignable (it has no driver and no record)`,
      );
    }
    if (info.driver !== null && info.driver !== this.#stub && record === undefined) {
      throw new PcibackError(
        ASSIGNABLE_ERROR.unknownDevice,
        `${action}: it is not assignable (it is on driver "${info.driver}", not on stub "${this.#stub}", and has no record)`,
      );
    }

    const wasOnStub = info.driver === this.#stub;
    if (wasOnStub) this.#host.unbind(address);
    else if (info.driver !== null) {
      warnings.push(
        `Device "${bdf}" is not on stub "${this.#stub}" but on driver "${info.driver}": it is left there`,
      );
    }
    this.#forgetStubSlot?.(address);
    // Our add set it; left in place it would steer the next probe back to the stub.
    if (info.driverOverride === this.#stub) this.#host.setDriverOverride(address, null);

    const original = record?.originalDriver ?? ({ state: 'unknown' } as const);
    let driver = this.#host.info(address)?.driver ?? null;
    if (rebind && driver === null) {
      try {
        driver = this.#rebind(address, original, warnings);
      } catch (err) {
        // Keep the record: it is the only place the original driver is remembered.
        if (record !== undefined) {
          this.#db.setStatus(address, 'rebound', { observedDriver: null });
        }
        throw new PcibackError(
          ASSIGNABLE_ERROR.rebindFailed,
          `${action}: it left stub "${this.#stub}" but ${errorText(err)}` +
            (record === undefined
              ? ''
              : '; its record is kept, so "assignable-remove -r" can try again'),
          { cause: err },
        );
      }
    } else if (!rebind && original.state === 'bound' && driver === null) {
      this.#logger.info(
        { device: bdf },
        `Device "${bdf}" has no driver now; "assignable-remove -r" would have bound "${original.name}"`,
      );
    }
    if (record !== undefined) this.#db.removeAssignable(address);
    this.#warnAll(address, warnings);
    this.#logger.info(
      { device: bdf, driver, rebind },
      `Device "${bdf}" is no longer assignable (now on ${driverText(driver)})`,
    );
    return {
      address: bdf,
      name: record?.name ?? null,
      recorded: record !== undefined,
      wasOnStub,
      driver,
      warnings,
    };
  }

  /**
   * The assignable devices: bound to the stub and not given to a guest, by address.
   * With `verbose`, what the database knows of each.
   */
  list(params: ListAssignableParams = {}): AssignableRow[] {
    const rows: AssignableRow[] = [];
    for (const info of this.#host.list()) {
      if (info.driver !== this.#stub || this.#owner(info.address) !== undefined) continue;
      const record = this.#db.getAssignable(info.address);
      const address = info.address.toString();
      const name = record?.name ?? null;
      if (params.verbose !== true) {
        rows.push({ address, name });
        continue;
      }
      rows.push({
        address,
        name,
        originalDriver: record?.originalDriver ?? null,
        reset: record?.reset ?? null,
        status: record?.status ?? 'unrecorded',
        policy: record?.policy ?? null,
      });
    }
    return rows;
  }

  // --- Internals -------------------------------------------------------------------------

  /** xl's "already assigned to pciback": record it if needed and set (or clear) the name. */
  #keepOnStub(
    address: PciAddress,
    info: HostPciFunctionInfo,
    record: AssignableDevice | undefined,
    name: string | null,
  ): AddAssignableResult {
    const bdf = address.toString();
    const warnings = [`Device "${bdf}" is already assignable (it is on stub "${this.#stub}")`];
    const reset = this.#resetOutcome(info);
    const stored = this.#db.transaction(() => {
      if (record === undefined) {
        const added = this.#db.addAssignable(address, {
          originalDriver: { state: 'unknown' },
          stubDriver: this.#stub,
          name,
        });
        return reset === undefined ? added : this.#db.recordReset(address, reset);
      }
      let current = record;
      if (current.status !== 'seized') current = this.#db.setStatus(address, 'seized');
      if (current.name !== name) current = this.#db.setName(address, name);
      return current;
    });
    if (record === undefined) {
      warnings.push(
        `Device "${bdf}" had no record: its original driver is unknown, so removing it cannot rebind one`,
      );
    }
    this.#warnAll(address, warnings);
    return {
      address: bdf,
      name: stored.name,
      stubDriver: this.#stub,
      alreadyAssignable: true,
      originalDriver: stored.originalDriver,
      reset: stored.reset,
      warnings,
    };
  }

  /**
   * Why the device's driver is using it, or undefined when it is not. dom0's users come
   * first (the platform's `consumers`: an interface that is up, a mounted or held block
   * device); when the platform saw users and none is busy, the device is idle even with
   * bus mastering on (drivers leave it on while their interface is down). Without users
   * to look at, bus mastering decides.
   */
  #inUse(address: PciAddress): string | undefined {
    const consumers = this.#host.consumers?.(address);
    if (consumers !== undefined && consumers.busy.length > 0) return consumers.busy.join('; ');
    if (consumers !== undefined && consumers.found.length > 0) return undefined;
    const dma = this.#busMastering(address);
    if (dma === false) return undefined;
    return dma === true
      ? 'bus mastering is on in its command register, so it can DMA right now'
      : `its command register cannot be read (${dma.reason}), so it may be doing DMA`;
  }

  /**
   * True when bus mastering is on: we call a device "in use" by its driver when it can
   * DMA right now (the driver enabled mastering), the one state in which taking it away
   * can corrupt memory or hang the driver. A driver bound but idle leaves it off (Linux
   * clears it when the last user disables the device). `{ reason }` when unreadable.
   */
  #busMastering(address: PciAddress): boolean | { reason: string } {
    try {
      const read = this.#host.open(address).readConfig(PCI_COMMAND_OFFSET, 2);
      if (read.err !== 0) return { reason: `error ${read.err}` };
      return (read.value & PCI_COMMAND_MASTER) !== 0;
    } catch (err) {
      return { reason: errorText(err) };
    }
  }

  /**
   * `driver_override` + unbind + `drivers_probe` (libvirt's order: the override is in
   * place before the device is free, so nothing else can grab it), then a check that
   * the stub took it; any failure puts the device back where it was.
   */
  #moveToStub(address: PciAddress, info: HostPciFunctionInfo, action: string): void {
    try {
      this.#host.setDriverOverride(address, this.#stub);
      this.#host.unbind(address);
      this.#host.probe(address);
    } catch (err) {
      const back = this.#rollback(address, info);
      throw new PcibackError(
        isPcibackError(err) ? err.code : 'HOST_IO',
        `${action}: ${errorText(err)} (${back})`,
        { cause: err },
      );
    }
    const now = this.#host.info(address)?.driver ?? null;
    if (now !== this.#stub) {
      const back = this.#rollback(address, info);
      throw new PcibackError(
        ASSIGNABLE_ERROR.stubRefused,
        `${action}: stub driver "${this.#stub}" did not take it (it has ${driverText(now)} after the probe: the stub's probe declined it, see dmesg); ${back}`,
      );
    }
  }

  /** Put a device back on the driver and override it had; says what happened. */
  #rollback(address: PciAddress, before: HostPciFunctionInfo): string {
    const steps: string[] = [];
    try {
      const now = this.#host.info(address);
      if (now === undefined) return 'the device is gone, nothing to roll back';
      if (now.driver !== before.driver && now.driver !== null) this.#host.unbind(address);
      if (now.driver === this.#stub) this.#forgetStubSlot?.(address);
      if (now.driverOverride !== before.driverOverride) {
        this.#host.setDriverOverride(address, before.driverOverride);
      }
      if (before.driver !== null && this.#host.info(address)?.driver !== before.driver) {
        this.#host.bind(address, before.driver);
      }
      const back = this.#host.info(address)?.driver ?? null;
      steps.push(
        back === before.driver
          ? `rolled back: it is on ${driverText(back)} again`
          : `rolled back, but it is on ${driverText(back)}, not ${driverText(before.driver)}`,
      );
    } catch (err) {
      steps.push(`the rollback failed: ${errorText(err)}`);
    }
    const text = steps.join('; ');
    this.#logger.warn({ device: address.toString() }, `Device "${address.toString()}": ${text}`);
    return text;
  }

  /** Bind the original driver back; returns the driver it has after. */
  #rebind(address: PciAddress, original: OriginalDriver, warnings: string[]): string | null {
    const bdf = address.toString();
    switch (original.state) {
      case 'bound':
        this.#host.bind(address, original.name);
        return this.#host.info(address)?.driver ?? null;
      case 'none':
        warnings.push(
          `Device "${bdf}" had no driver before it was made assignable: it is left without one`,
        );
        return null;
      case 'unknown': {
        // libvirt's way when nothing was recorded: let the kernel choose its driver.
        this.#host.probe(address);
        const driver = this.#host.info(address)?.driver ?? null;
        warnings.push(
          `Device "${bdf}" has no recorded original driver: the kernel chose ${driverText(driver)}`,
        );
        return driver;
      }
    }
  }

  /**
   * The reset the host would use: the kernel's first `reset_method`, or why there is
   * none. Undefined when the host cannot say (Linux before 5.15 lists no methods but
   * may still reset).
   */
  #resetOutcome(info: HostPciFunctionInfo): PciResetOutcome | undefined {
    const first = info.resetMethods[0];
    if (first !== undefined) return { ok: true, method: first };
    if ('resettable' in info && info.resettable === true) return undefined;
    return {
      ok: false,
      reason: 'the kernel found no reset method for it (no FLR, PM reset or bus reset)',
    };
  }

  /** Who holds the device: `domain 5 ("web")`, or undefined. */
  #owner(address: PciAddress): string | undefined {
    const attachment = this.#db.getAttachment(address);
    const domid = this.#attachedTo?.(address) ?? attachment?.domid;
    if (domid === undefined) return undefined;
    return attachment?.domid === domid
      ? `domain ${domid} ("${attachment.domainName}")`
      : `domain ${domid}`;
  }

  #warnAll(address: PciAddress, warnings: readonly string[]): void {
    for (const warning of warnings) this.#logger.warn({ device: address.toString() }, warning);
  }
}
