// SPDX-License-Identifier: MIT
/**
 * The PCI stub (`pci_stub.c`, spec §6.1–§6.5): which functions pciback seizes, their
 * initialisation, handing them to guests and taking them back safely, unbinding, and
 * the driver attributes of `/sys/bus/pci/drivers/pciback/`. Platform-neutral: the host
 * bus is a {@link PciHostPlatform}; the per-device state comes from a
 * {@link PciStubDeviceFactory}; the platform's driver core calls {@link PciStub.probe}
 * and {@link PciStub.remove} as it would a `pci_driver`'s callbacks, and
 * {@link PciStub.driverUnbinding} from its bus notifier.
 *
 * Choices and deviations (each for a reason):
 * - Devices are initialised when probed and go to the head of the device list, as after
 *   the original's late init; there is no queue of devices waiting for it (a userspace
 *   stub always starts after the PCI core). So driver data always exists for a listed
 *   device and the attributes' -ENXIO case cannot arise.
 * - The reset is the ladder of `reset-ladder.ts` (FLR, AF FLR, PM, bus with the sibling
 *   check) and its result is recorded per device; as on a PV dom0, a failure does not
 *   stop the seize or the release: it is logged and kept as "not resettable" with the
 *   reason.
 * - On release, MSI-X and MSI are turned off through the MSI layer *before* the reset
 *   too (the original does it only in `reset_device` afterwards, where Linux's restore
 *   has re-enabled them from its own records). A platform whose restore brings back the
 *   seize-time registers would otherwise leave the vectors mapped into the old guest.
 * - Permissive mode can also be scoped to one attachment (`claim(..., { permissive })`
 *   or {@link PciStub.setPermissive} with `scope: 'attachment'`): it ends at release
 *   unless it was also set device-wide. The device-wide flag is never cleared, as in
 *   the original.
 * - Unbinding a device removes its own quirk record (the original removes the first
 *   record with the same IDs, which is another device's when two are identical).
 * - `prepare_msix`/`release_msix` and the PVH GSI and reset hypercalls are not made:
 *   the platform interfaces have none (a PV dom0 needs none of the GSI ones).
 */
import type { PciAddress } from '../../pci/index.js';
import type { PciHostPlatform, PciResetMethod } from '../../platform/pci-host.js';
import {
  SILENT_LOGGER,
  type DeviceOwnerRegistry,
  type DomId,
  type Logger,
} from '../../platform/types.js';
import { parseQuirkSpec, type QuirkSpec } from '../confspace/index.js';
import type { PcibackDevice } from '../device/index.js';
import type { PciDeviceSource } from './device-pool.js';
import type { PciStubDeviceFactory, PciStubDeviceHandle } from './device-factory.js';
import { PCI_STUB_ERROR, PciStubError } from './errors.js';
import { parseHide, type HideSelector } from './hide.js';
import { resetWithLadder, type ResetRungSkip } from './reset-ladder.js';
import {
  PciStubSlots,
  describeSelector,
  pageLimited,
  parseSlotSelector,
  selectorAddress,
} from './slot-ids.js';

/** The stub driver's name in `/sys/bus/pci/drivers`. */
export const PCISTUB_DRIVER_NAME = 'pciback';

/** The reset the stub last did on a device (the shape the state database keeps). */
export type PciStubResetRecord =
  | { readonly state: 'unknown' }
  | {
      readonly state: 'method';
      readonly method: PciResetMethod;
      readonly atMs: number;
      readonly skipped: readonly ResetRungSkip[];
    }
  | {
      readonly state: 'not-resettable';
      readonly reason: string;
      readonly atMs: number;
      readonly skipped: readonly ResetRungSkip[];
    };

/** Whether a device is permissive, and for how long. */
export type PciStubPermissive =
  /** Not permissive (the module-wide switch may still apply). */
  | 'off'
  /** Set device-wide (sysfs `permissive`): until the device leaves the stub. */
  | 'device'
  /** Set for the current attachment: ends at release. */
  | 'attachment'
  /** Asked for the next attachment: becomes `attachment` when a guest claims the device. */
  | 'next-attachment';

/** One seized device in {@link PciStub.list}. */
export interface PciStubEntry {
  readonly address: PciAddress;
  readonly device: PcibackDevice;
  /** The domain whose connection claimed it, null when free. */
  readonly user: DomId | null;
  readonly permissive: PciStubPermissive;
  readonly allowInterruptControl: boolean;
  readonly reset: PciStubResetRecord;
}

/** Options of {@link PciStub.claim}. */
export interface PciStubClaimOptions {
  /** Permissive for this attachment only (cleared at release unless set device-wide). */
  readonly permissive?: boolean;
}

/** Options of {@link PciStub.setPermissive}. */
export interface PciStubPermissiveOptions {
  /**
   * `device` (default): sysfs `permissive`, never cleared. `attachment`: for the guest
   * that has the device now, or for the next one to claim it when it is free.
   */
  readonly scope?: 'device' | 'attachment';
}

/** Options of {@link PciStub}. */
export interface PciStubOptions {
  /** Builds the per-device state of a function being seized. */
  readonly factory: PciStubDeviceFactory;
  /** Xen's device-owner registry: unregistered when a device is released. */
  readonly owners: DeviceOwnerRegistry;
  /** `xen-pciback.hide=`: a value, or already parsed selectors. */
  readonly hide?: string | readonly HideSelector[];
  /** The driver name (default `pciback`). */
  readonly driverName?: string;
  readonly logger?: Logger;
  /**
   * Called when a device in use was unbound (§6.4): the guest's connection still lists
   * it but it is no longer the guest's; tell the toolstack.
   */
  readonly onForcedRelease?: (address: PciAddress, domid: DomId) => void;
  /** Clock of the reset records (default `Date.now`). */
  readonly nowMs?: () => number;
}

/** A quirk record (`xen_pcibk_config_quirk`): the IDs of a seized device. */
interface QuirkRecord {
  readonly address: PciAddress;
  readonly vendor: number;
  readonly device: number;
  readonly subvendor: number;
  readonly subdevice: number;
}

/** `pcistub_device` and the stub's per-device bookkeeping. */
interface Seized {
  readonly address: PciAddress;
  readonly handle: PciStubDeviceHandle;
  /** The seize-time state (`pci_saved_state`); `hasSaved` false when it could not be taken. */
  readonly saved: unknown;
  readonly hasSaved: boolean;
  user: DomId | null;
  permissiveDeviceWide: boolean;
  attachmentPermissive: 'none' | 'armed' | 'active';
  reset: PciStubResetRecord;
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

/**
 * The PCI stub.
 *
 * @example
 * const stub = new PciStub(host, { factory, owners, hide: '(0000:03:00.0)' });
 * simPci.registerDriver(stub.driverName, stub); // seizes 0000:03:00.0
 * simPci.onDriverUnbinding((a) => { stub.driverUnbinding(a); });
 * const dev = stub.claim(PciAddress.parse('0000:03:00.0'), domId(5));
 * stub.release(dev!); // reset, seize-time state restored, free again
 * stub.resetRecord(PciAddress.parse('0000:03:00.0')); // { state: 'method', method: 'flr', ... }
 */
export class PciStub implements PciDeviceSource {
  /** The driver name the platform binds seized functions to. */
  readonly driverName: string;
  readonly #host: PciHostPlatform;
  readonly #factory: PciStubDeviceFactory;
  readonly #owners: DeviceOwnerRegistry;
  readonly #logger: Logger;
  readonly #onForcedRelease: ((address: PciAddress, domid: DomId) => void) | undefined;
  readonly #nowMs: () => number;
  readonly #slots = new PciStubSlots();
  /** `pcistub_devices`, in list order (newest first). */
  #devices: Seized[] = [];
  /** `xen_pcibk_quirks`, in seize order. */
  #quirkRecords: QuirkRecord[] = [];

  /**
   * @throws {HideSyntaxError} when `hide` does not parse (the module would not load).
   */
  constructor(host: PciHostPlatform, options: PciStubOptions) {
    this.#host = host;
    this.#factory = options.factory;
    this.#owners = options.owners;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#onForcedRelease = options.onForcedRelease;
    this.#nowMs = options.nowMs ?? Date.now;
    this.driverName = options.driverName ?? PCISTUB_DRIVER_NAME;
    const hide = typeof options.hide === 'string' ? parseHide(options.hide) : options.hide;
    for (const selector of hide ?? []) this.#slots.add(selector);
  }

  // --- Id list (§6.1, §6.5 new_slot / remove_slot / slots) -------------------------------

  /**
   * `new_slot`: add the function(s) to the id list (wildcards allowed; idempotent).
   * Nothing is probed: bind or probe the device afterwards.
   *
   * @throws {PciStubError} `STUB_INVALID_ARGUMENT` (-EINVAL).
   */
  newSlot(text: string): void {
    this.#slots.add(parseSlotSelector(text));
  }

  /**
   * `remove_slot`: drop every matching id entry. Nothing is unbound.
   *
   * @throws {PciStubError} `STUB_INVALID_ARGUMENT` (-EINVAL), `NO_SUCH_SLOT` (-ENOENT).
   */
  removeSlot(text: string): void {
    const selector = parseSlotSelector(text);
    if (this.#slots.remove(selector) === 0) {
      throw new PciStubError(
        PCI_STUB_ERROR.noSuchSlot,
        `Cannot remove slot "${describeSelector(selector)}": it is not in the list`,
      );
    }
  }

  /** `slots`: one `DDDD:BB:SS.F` line per id entry, in insertion order. */
  slots(): string {
    return this.#slots.format();
  }

  /** The id list as addresses. */
  slotList(): readonly PciAddress[] {
    return this.#slots.list();
  }

  // --- Driver callbacks (§6.2, §6.4) -----------------------------------------------------

  /**
   * `pcistub_probe`: take the function when its address or an upstream bridge's is in
   * the id list, or its `driver_override` is this driver (then its address is added);
   * only header types 0 and 1; then seize and initialise it. False leaves it unbound.
   */
  probe(address: PciAddress): boolean {
    const name = address.toString();
    const info = this.#host.info(address);
    if (info === undefined) return false;
    // The driver core only offers unbound functions; a direct call must not steal one.
    if (info.driver !== null && info.driver !== this.driverName) return false;
    if (this.#find(address) !== undefined) {
      this.#logger.warn({ device: name }, `Cannot seize "${name}": it is already seized`);
      return false;
    }
    const listed = this.#matchesIdList(address);
    const overridden = info.driverOverride === this.driverName;
    if (!listed && !overridden) return false;
    if (info.headerType !== 0 && info.headerType !== 1) {
      this.#logger.error(
        { device: name, headerType: info.headerType },
        `Cannot seize "${name}": can't export pci devices that don't have a normal (0) or bridge (1) header type (it has ${info.headerType})`,
      );
      return false;
    }
    if (!listed) this.#slots.addAddress(address);
    this.#logger.info({ device: name }, `Seizing "${name}"`);
    const seized = this.#initDevice(address);
    if (seized === undefined) return false;
    this.#devices.unshift(seized);
    return true;
  }

  /**
   * `pcistub_remove` (unbind, hot removal): a device in use is released from its guest
   * first, with four warnings, and {@link PciStubOptions.onForcedRelease} is called; the
   * device is then reset, restored to its seize-time state and its backend state freed.
   */
  remove(address: PciAddress): void {
    this.#quirkRecords = this.#quirkRecords.filter((r) => !r.address.equals(address));
    const seized = this.#find(address);
    if (seized === undefined) return;
    const name = address.toString();
    const user = seized.user;
    if (user !== null) {
      const domid = this.#owners.find(address) ?? user;
      const warn = (msg: string): void => {
        this.#logger.warn({ device: name, domid }, msg);
      };
      warn(`****** removing device ${name} while still in-use by domain ${domid}! ******`);
      warn("****** driver domain may still access this device's i/o resources!");
      warn('****** shutdown driver domain before binding device');
      warn('****** to other drivers or domains');
      this.#put(seized);
    }
    this.#devices = this.#devices.filter((s) => s !== seized);
    this.#deviceRelease(seized);
    if (user !== null) this.#forcedRelease(address, user);
  }

  #forcedRelease(address: PciAddress, domid: DomId): void {
    if (this.#onForcedRelease === undefined) return;
    try {
      this.#onForcedRelease(address, domid);
    } catch (err) {
      const name = address.toString();
      this.#logger.error(
        { device: name, domid, err },
        `The forced-release hook failed for "${name}"`,
      );
    }
  }

  /**
   * The device left the stub driver without the stub being asked (a change made behind
   * the daemon's back, seen afterwards): its state is dropped **without touching the
   * hardware**, which another driver may own by now. A guest using it loses it as with
   * {@link remove} ({@link PciStubOptions.onForcedRelease} is called), with a warning
   * that the device was neither reset nor restored.
   */
  forget(address: PciAddress): void {
    const seized = this.#find(address);
    if (seized === undefined) return;
    const name = address.toString();
    const user = seized.user;
    this.#quirkRecords = this.#quirkRecords.filter((r) => !r.address.equals(address));
    this.#devices = this.#devices.filter((s) => s !== seized);
    this.#owners.unregister(address);
    seized.user = null;
    seized.handle.device.config.release();
    this.#logger.warn(
      { device: name, domid: user },
      `"${name}" left ${this.driverName} outside pciback-ts` +
        (user === null ? '' : ` while domain ${user} used it`) +
        ': forgotten without a reset or restore (another driver may own it now)',
    );
    if (user !== null) this.#forcedRelease(address, user);
  }

  /**
   * The bus notifier (§6.4): `address`'s driver is about to unbind. When it is a PF,
   * every seized VF of it that no guest uses is unbound from the stub, so the PF's
   * driver can disable SR-IOV. VFs in use stay.
   */
  driverUnbinding(address: PciAddress): void {
    const idle = this.#devices.filter(
      (s) => s.user === null && !s.address.equals(address) && this.#isVfOf(s, address),
    );
    for (const vf of idle) {
      try {
        this.#host.unbind(vf.address);
      } catch (err) {
        this.#logger.error(
          { device: vf.address.toString(), err },
          `Cannot unbind VF "${vf.address.toString()}" from the stub`,
        );
      }
    }
  }

  // --- Get / put (§6.3) ------------------------------------------------------------------

  /**
   * `pcistub_get_pci_dev_by_slot`: the seized device at `address` if no connection uses
   * it, now used by `domid`; undefined when not seized or in use.
   */
  claim(
    address: PciAddress,
    domid: DomId,
    options: PciStubClaimOptions = {},
  ): PcibackDevice | undefined {
    const seized = this.#find(address);
    if (seized === undefined || seized.user !== null) return undefined;
    seized.user = domid;
    if (options.permissive === true || seized.attachmentPermissive === 'armed') {
      this.#activateAttachmentPermissive(seized);
    }
    return seized.handle.device;
  }

  /**
   * `pcistub_put_pci_dev`: reset (ladder), restore the seize-time state, `reset_device`,
   * field reset handlers, quirk fields dropped, `allow_interrupt_control` and an
   * attachment's permissive cleared, owner unregistered, free. The command register is
   * never written with 0 (XSA-120 follow-up). A device the stub does not hold, or that
   * no connection uses, is logged and left alone.
   */
  release(dev: PcibackDevice): void {
    const seized = this.#devices.find((s) => s.handle.device === dev);
    const name = dev.address.toString();
    if (seized === undefined) {
      this.#logger.warn({ device: name }, `Cannot release "${name}": it is not seized by the stub`);
      return;
    }
    if (seized.user === null) {
      this.#logger.warn({ device: name }, `Cannot release "${name}": no connection uses it`);
      return;
    }
    this.#put(seized);
  }

  /** The seized device at `address`, used or not. */
  get(address: PciAddress): PcibackDevice | undefined {
    return this.#find(address)?.handle.device;
  }

  /** The domain using the device at `address`, null when free or not seized. */
  userOf(address: PciAddress): DomId | null {
    return this.#find(address)?.user ?? null;
  }

  /** The last reset of a seized device, undefined when not seized. */
  resetRecord(address: PciAddress): PciStubResetRecord | undefined {
    return this.#find(address)?.reset;
  }

  /** Number of seized devices. */
  get size(): number {
    return this.#devices.length;
  }

  /** Every seized device in address order. */
  list(): PciStubEntry[] {
    return [...this.#devices]
      .sort((a, b) => a.address.compare(b.address))
      .map((s) => ({
        address: s.address,
        device: s.handle.device,
        user: s.user,
        permissive: this.#permissiveOf(s),
        allowInterruptControl: s.handle.device.config.policy.allowInterruptControl,
        reset: s.reset,
      }));
  }

  // --- Policy attributes (§6.5) ------------------------------------------------------------

  /**
   * `permissive` write: device-wide (never cleared) by default; with
   * `scope: 'attachment'`, only until the current (or next) guest releases it.
   *
   * @throws {PciStubError} `STUB_INVALID_ARGUMENT` (-EINVAL), `NOT_SEIZED` (-ENODEV).
   */
  setPermissive(text: string, options: PciStubPermissiveOptions = {}): void {
    const seized = this.#lookup(text, 'permissive');
    if (options.scope === 'attachment') {
      if (seized.permissiveDeviceWide) return;
      if (seized.user === null) seized.attachmentPermissive = 'armed';
      else this.#activateAttachmentPermissive(seized);
      return;
    }
    seized.permissiveDeviceWide = true;
    this.#enablePermissive(seized);
  }

  /** `permissive` read: the devices in permissive mode now, one `pci_name` per line. */
  permissive(): string {
    return this.#listNames((s) => s.handle.device.config.policy.permissive);
  }

  /**
   * `allow_interrupt_control` write (cleared when the device is released from a guest).
   *
   * @throws {PciStubError} `STUB_INVALID_ARGUMENT` (-EINVAL), `NOT_SEIZED` (-ENODEV).
   */
  setAllowInterruptControl(text: string): void {
    this.#lookup(
      text,
      'allow_interrupt_control',
    ).handle.device.config.policy.allowInterruptControl = true;
  }

  /** `allow_interrupt_control` read: the devices with the flag, one per line. */
  allowInterruptControl(): string {
    return this.#listNames((s) => s.handle.device.config.policy.allowInterruptControl);
  }

  /** `irq_handlers`: `<pci_name>:<on|off>:<ack|not ack>ing:<handled>` per device. */
  irqHandlers(): string {
    return pageLimited(
      this.#devices
        .map((s) => {
          const dev = s.handle.device;
          return `${s.address.toString()}:${dev.isrOn ? 'on' : 'off'}:${dev.ackIntr ? 'ack' : 'not ack'}ing:${dev.handled}\n`;
        })
        .join(''),
    );
  }

  /**
   * `irq_handler_state` write: flip `isr_on` (the flag only: no IRQ is requested or
   * freed); when it becomes on, `ack_intr` is set too.
   *
   * @throws {PciStubError} `STUB_INVALID_ARGUMENT` (-EINVAL), `STUB_NO_SUCH_DEVICE`
   *   (-ENOENT).
   */
  irqHandlerState(text: string): void {
    const selector = parseSlotSelector(text);
    const address = selectorAddress(selector);
    const seized = address === undefined ? undefined : this.#find(address);
    if (seized === undefined) {
      throw new PciStubError(
        PCI_STUB_ERROR.noSuchDevice,
        `Cannot toggle the fake IRQ handler of "${describeSelector(selector)}": no such seized device`,
      );
    }
    const dev = seized.handle.device;
    const before = dev.isrOn;
    const after = dev.toggleIsrOn();
    this.#logger.debug(
      { device: seized.address.toString(), before, after },
      `Fake IRQ handler of "${seized.address.toString()}": ${before ? 1 : 0}->${after ? 1 : 0}`,
    );
  }

  /**
   * `quirks` write, `DDDD:BB:SS.F-REG:SIZE:MASK` or `BB:SS.F-REG:SIZE:MASK` (hex): make
   * the register guest read/write pass-through until the device is released (§5.9).
   *
   * @throws {PciStubError} `STUB_INVALID_ARGUMENT` (-EINVAL) for the syntax, a register
   *   above 0xfff, a mask wider than the size or a size other than 1, 2, 4;
   *   `NOT_SEIZED` (-ENODEV).
   */
  addQuirk(text: string): void {
    let spec: QuirkSpec;
    try {
      spec = parseQuirkSpec(text);
    } catch (err) {
      if (!(err instanceof SyntaxError) && !(err instanceof RangeError)) throw err;
      throw new PciStubError(PCI_STUB_ERROR.invalidArgument, err.message, { cause: err });
    }
    const seized = this.#find(spec.address);
    if (seized === undefined) {
      throw new PciStubError(
        PCI_STUB_ERROR.notSeized,
        `Cannot add a quirk to "${spec.address.toString()}": it is not seized by the stub`,
      );
    }
    try {
      seized.handle.device.config.addQuirkField(spec.reg, spec.sizeBytes, spec.mask);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw new PciStubError(PCI_STUB_ERROR.invalidArgument, err.message, { cause: err });
    }
  }

  /**
   * `quirks` read: per quirk record `BB:SS.F` and its IDs, then every config field of
   * that device as `absolute offset:size:mask`.
   */
  quirks(): string {
    let out = '';
    for (const record of this.#quirkRecords) {
      const { address } = record;
      out +=
        `${hex(address.bus, 2)}:${hex(address.device, 2)}.${address.fn.toString(16)}\n` +
        `\t${hex(record.vendor, 4)}:${hex(record.device, 4)}:${hex(record.subvendor, 4)}:${hex(record.subdevice, 4)}\n`;
      const seized = this.#find(address);
      for (const field of seized?.handle.device.config.fields() ?? []) {
        out += `\t\t${hex(field.byteOffset, 8)}:${field.sizeBytes.toString(16)}:${hex(field.mask >>> 0, 8)}\n`;
      }
    }
    return pageLimited(out);
  }

  // --- Internals ---------------------------------------------------------------------------

  #find(address: PciAddress): Seized | undefined {
    return this.#devices.find((s) => s.address.equals(address));
  }

  /** Own address, or any upstream bridge's, in the id list. */
  #matchesIdList(address: PciAddress): boolean {
    const seen = new Set<number>();
    let current: PciAddress | null = address;
    while (current !== null && !seen.has(current.key)) {
      if (this.#slots.matches(current)) return true;
      seen.add(current.key);
      current = this.#host.info(current)?.upstreamBridge ?? null;
    }
    return false;
  }

  #isVfOf(seized: Seized, pf: PciAddress): boolean {
    const physfn =
      this.#host.info(seized.address)?.physfn ??
      seized.handle.device.backend.physfn?.address ??
      null;
    return physfn?.equals(pf) === true;
  }

  /** A single seized device named by a BDF attribute write (wildcards never match). */
  #lookup(text: string, attribute: string): Seized {
    const selector = parseSlotSelector(text);
    const address = selectorAddress(selector);
    const seized = address === undefined ? undefined : this.#find(address);
    if (seized === undefined) {
      throw new PciStubError(
        PCI_STUB_ERROR.notSeized,
        `Cannot set ${attribute} on "${describeSelector(selector)}": it is not a device seized by the stub`,
      );
    }
    return seized;
  }

  #listNames(predicate: (s: Seized) => boolean): string {
    return pageLimited(
      this.#devices
        .filter(predicate)
        .map((s) => `${s.address.toString()}\n`)
        .join(''),
    );
  }

  #permissiveOf(seized: Seized): PciStubPermissive {
    if (seized.permissiveDeviceWide) return 'device';
    if (seized.attachmentPermissive === 'active') return 'attachment';
    if (seized.attachmentPermissive === 'armed') return 'next-attachment';
    return 'off';
  }

  #enablePermissive(seized: Seized): void {
    const policy = seized.handle.device.config.policy;
    if (policy.permissive) return;
    policy.permissive = true;
    const name = seized.address.toString();
    this.#logger.warn({ device: name }, 'enabling permissive mode configuration space accesses!');
    this.#logger.warn({ device: name }, 'permissive mode is potentially unsafe!');
  }

  #activateAttachmentPermissive(seized: Seized): void {
    if (seized.permissiveDeviceWide) {
      seized.attachmentPermissive = 'none';
      return;
    }
    seized.attachmentPermissive = 'active';
    this.#enablePermissive(seized);
  }

  /** `pcistub_init_device` (§6.2 steps 1–9); undefined when the seize fails. */
  #initDevice(address: PciAddress): Seized | undefined {
    const name = address.toString();
    let handle: PciStubDeviceHandle | undefined;
    try {
      handle = this.#factory(address);
    } catch (err) {
      this.#logger.error(
        { device: name, err },
        `Cannot seize "${name}": ${err instanceof Error ? err.message : String(err)}`,
      );
      return undefined;
    }
    if (handle === undefined) {
      this.#logger.error({ device: name }, `Cannot seize "${name}": the platform cannot open it`);
      return undefined;
    }
    const dev = handle.device;
    // Step 4: pci_enable_device (IRQ routing is settled now).
    const err = dev.backend.host.enableDevice();
    if (err !== 0) {
      this.#logger.error(
        { device: name, err },
        `Cannot seize "${name}": enabling it failed with error ${err}`,
      );
      dev.config.release();
      return undefined;
    }
    // Step 6: keep the seize-time state, reset, put the state back.
    let saved: unknown = undefined;
    let hasSaved = false;
    try {
      saved = handle.saveState();
      hasSaved = true;
    } catch (cause) {
      this.#logger.error({ device: name, err: cause }, 'Could not store PCI conf saved state!');
    }
    const seized: Seized = {
      address,
      handle,
      saved,
      hasSaved,
      user: null,
      permissiveDeviceWide: dev.config.policy.permissive,
      attachmentPermissive: 'none',
      reset: { state: 'unknown' },
    };
    if (hasSaved) {
      this.#resetState(seized);
      this.#restore(seized);
    }
    // Step 8: reset_device leaves it disabled; step 9 ("assigned") has no equivalent.
    dev.resetDevice();
    const info = this.#host.info(address);
    this.#quirkRecords.push({
      address,
      vendor: info?.vendorId ?? dev.backend.host.vendorId,
      device: info?.deviceId ?? dev.backend.host.deviceId,
      subvendor: info?.subsystemVendorId ?? 0,
      subdevice: info?.subsystemDeviceId ?? 0,
    });
    return seized;
  }

  /** `pcistub_reset_device_state` through the ladder, recorded. */
  #resetState(seized: Seized): void {
    const name = seized.address.toString();
    const outcome = resetWithLadder(this.#host, seized.address, {
      stubDriver: this.driverName,
      userOf: (a) => this.userOf(a),
    });
    const atMs = this.#nowMs();
    if (outcome.ok) {
      seized.reset = { state: 'method', method: outcome.method, atMs, skipped: outcome.skipped };
      this.#logger.debug({ device: name, method: outcome.method }, `Reset "${name}"`);
      return;
    }
    seized.reset = {
      state: 'not-resettable',
      reason: outcome.reason,
      atMs,
      skipped: outcome.skipped,
    };
    this.#logger.warn({ device: name, reason: outcome.reason }, outcome.reason);
  }

  #restore(seized: Seized): void {
    if (!seized.hasSaved) {
      this.#logger.warn({ device: seized.address.toString() }, 'Could not reload PCI state');
      return;
    }
    try {
      seized.handle.restoreState(seized.saved);
    } catch (err) {
      this.#logger.error({ device: seized.address.toString(), err }, 'Could not reload PCI state');
    }
  }

  /** `pcistub_put_pci_dev` steps 3–9. */
  #put(seized: Seized): void {
    const dev = seized.handle.device;
    const { host, msi } = dev.backend;
    if (host.headerType === 0) {
      // See the module comment: quiesce MSI through the MSI layer before the reset.
      if (msi.msixEnabled()) msi.disableMsix();
      if (msi.msiEnabled()) msi.disableMsi();
    }
    this.#resetState(seized);
    this.#restore(seized);
    dev.resetDevice();
    dev.config.resetForNextGuest();
    dev.config.policy.allowInterruptControl = false;
    if (seized.attachmentPermissive === 'active' && !seized.permissiveDeviceWide) {
      dev.config.policy.permissive = false;
    }
    seized.attachmentPermissive = 'none';
    this.#owners.unregister(seized.address);
    seized.user = null;
  }

  /** `pcistub_device_release`: the device leaves the stub. */
  #deviceRelease(seized: Seized): void {
    const dev = seized.handle.device;
    this.#owners.unregister(seized.address);
    this.#resetState(seized);
    this.#restore(seized);
    dev.resetDevice();
    dev.config.release();
  }
}
