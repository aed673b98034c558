// SPDX-License-Identifier: MIT
/**
 * The config-space virtualizer of one seized device (`conf_space.c`, spec §5): what a
 * guest reads is the hardware value with every intersecting field's value merged over
 * it; what it writes goes through the fields' handlers, and a write no field covers is
 * dropped unless permissive mode is on.
 */
import { PCI_CAP_ID, PCI_HEADER_TYPE_BRIDGE, PCI_HEADER_TYPE_NORMAL } from '../../abi/pci-regs.js';
import { XEN_PCI_ERR } from '../../abi/pciif.js';
import { findCapability, type ConfigReader } from '../../pci/capabilities.js';
import { PcibackError } from '../../errors.js';
import type {
  ConfigAccessSize,
  ConfigReadResult,
  HostPciDevice,
  Logger,
} from '../../platform/types.js';
import { SILENT_LOGGER } from '../../platform/types.js';
import { isValidRequest, mergeValue, rawRead, rawWrite, sizeMask } from './access.js';
import { DENIED_WRITE_REASON, DeniedWriteAudit, type DeniedWrite } from './audit.js';
import { CAPABILITY_TABLES, CAPLIST_HEADER_FIELDS } from './capability-fields.js';
import type { ConfigField, ConfigFieldInfo, FieldContext, FieldEntry } from './field.js';
import { FieldIndex } from './field-index.js';
import { HEADER_0_FIELDS, HEADER_1_FIELDS, HEADER_COMMON_FIELDS } from './header-fields.js';
import { pcibiosToXenErr } from '../../abi/pcibios.js';
import { defaultDevicePolicy, type DevicePolicy, type GlobalConfigPolicy } from './policy.js';
import { checkQuirkRegAndMask, checkQuirkSize, quirkField, type QuirkField } from './quirks.js';

/** Options of {@link VirtualConfigSpace.create}. */
export interface VirtualConfigSpaceOptions {
  /** The module-wide settings (shared by all devices, mutable). */
  readonly global: GlobalConfigPolicy;
  /** This device's flags (mutable); a fresh all-off policy when omitted. */
  readonly policy?: DevicePolicy;
  /** Where the one-shot dropped-write warning and MWI failures go. */
  readonly logger?: Logger;
  /**
   * Called after a guest write that completed with err 0 and changed `enable_intx`:
   * the point where the original's `do_one_op` calls `control_isr` (§4.3 step 5).
   */
  readonly onIntxChange?: (enabled: boolean) => void;
}

/** Stable codes of the `PcibackError`s {@link VirtualConfigSpace.create} throws. */
export const CONFSPACE_ERROR = {
  /** Header type other than 0 or 1 (the original answers -EINVAL). */
  unsupportedHeader: 'CONFSPACE_UNSUPPORTED_HEADER',
  /** A field's init handler failed, or two capabilities overlap (§5.1). */
  initFailed: 'CONFSPACE_INIT_FAILED',
  /** Use after {@link VirtualConfigSpace.release}. */
  released: 'CONFSPACE_RELEASED',
} as const;

const INT32_MIN = -0x80000000;

/** `op.offset`/`op.size` are `s32`; anything else is a caller bug, not guest input. */
function checkInt32(name: string, value: number): void {
  // `(x | 0) === x` holds exactly for int32 numbers (and is one instruction on the hot path).
  if ((value | 0) !== value) throwNotInt32(name, value);
}

function throwNotInt32(name: string, value: number): never {
  throw new RangeError(`Cannot access config space: ${name} "${String(value)}" is not an int32`);
}

/** Mutable state handlers see, one per device. */
class DeviceFieldContext implements FieldContext {
  readonly dev: HostPciDevice;
  readonly policy: DevicePolicy;
  readonly logger: Logger;
  readonly global: GlobalConfigPolicy;
  readonly audit = new DeniedWriteAudit();
  enableIntx = false;
  msiCapOffset: number | undefined;
  msixCapOffset: number | undefined;

  constructor(
    dev: HostPciDevice,
    global: GlobalConfigPolicy,
    policy: DevicePolicy,
    logger: Logger,
  ) {
    this.dev = dev;
    this.global = global;
    this.policy = policy;
    this.logger = logger;
  }

  isPermissive(): boolean {
    return this.global.permissive || this.policy.permissive;
  }

  readonly #scratch: { value: number; err: number } = { value: 0, err: 0 };

  result(value: number, err: number): ConfigReadResult {
    this.#scratch.value = value;
    this.#scratch.err = err;
    return this.#scratch;
  }

  deny(byteOffset: number, sizeBytes: ConfigAccessSize, reason: DeniedWrite['reason']): void {
    this.audit.record(byteOffset, sizeBytes, reason);
  }
}

/** Hardware reads for the capability walk (errors read as all-ones, as in Linux). */
function hardwareReader(dev: HostPciDevice): ConfigReader {
  return {
    sizeBytes: dev.configSizeBytes,
    read8: (o) => rawRead(dev, o, 1).value,
    read16: (o) => rawRead(dev, o, 2).value,
    read32: (o) => rawRead(dev, o, 4).value,
  };
}

let indexOf: (space: VirtualConfigSpace) => FieldIndex;

/**
 * The ordered entry list and per-byte index of a space. For tests of this folder only
 * (not exported from `index.ts`).
 */
export function fieldIndexOf(space: VirtualConfigSpace): FieldIndex {
  return indexOf(space);
}

/** Result of adding one entry: added, silently refused as a duplicate, or failed init. */
type AddResult = 'added' | 'duplicate' | { readonly err: number };

/**
 * The guest's view of one device's configuration space.
 *
 * @example
 * const global = { permissive: false };
 * const space = VirtualConfigSpace.create(hostDevice, { global });
 * space.read(0x00, 4); // { value: 0x10c98086, err: 0 } (cached IDs)
 * space.write(0x04, 2, 0x0006); // enables memory decode and bus mastering via the PCI core
 * space.write(0x06, 2, 0xffff); // 0: dropped (status has no field), counted in deniedWrites()
 */
export class VirtualConfigSpace {
  readonly #ctx: DeviceFieldContext;
  readonly #index = new FieldIndex();
  readonly #onIntxChange: ((enabled: boolean) => void) | undefined;
  /** `warned_on_write`: the dropped-write warning is logged once per device. */
  #warnedOnWrite = false;
  #released = false;

  private constructor(
    ctx: DeviceFieldContext,
    onIntxChange: ((enabled: boolean) => void) | undefined,
  ) {
    this.#ctx = ctx;
    this.#onIntxChange = onIntxChange;
  }

  /**
   * Build the field list of a device at seize time (`xen_pcibk_config_init_dev`):
   * header_common, header_0 or header_1, then for each registered capability found by
   * the standard walk (first instance; VPD, PM, MSI, MSI-X) its header and fields.
   * Init handlers run now: the command field snapshots the hardware command register
   * and the PM control field clears PME_Enable in hardware.
   *
   * @throws PcibackError `CONFSPACE_UNSUPPORTED_HEADER` for header types other than
   *   0/1; `CONFSPACE_INIT_FAILED` when an init handler fails or capabilities overlap
   *   (the original's add loop stops with 1 there and the seize fails).
   */
  static create(dev: HostPciDevice, options: VirtualConfigSpaceOptions): VirtualConfigSpace {
    const ctx = new DeviceFieldContext(
      dev,
      options.global,
      options.policy ?? defaultDevicePolicy(),
      options.logger ?? SILENT_LOGGER,
    );
    const space = new VirtualConfigSpace(ctx, options.onIntxChange);
    const name = dev.address.toString();

    let headerFields: readonly ConfigField[];
    if (dev.headerType === PCI_HEADER_TYPE_NORMAL) headerFields = HEADER_0_FIELDS;
    else if (dev.headerType === PCI_HEADER_TYPE_BRIDGE) headerFields = HEADER_1_FIELDS;
    else {
      throw new PcibackError(
        CONFSPACE_ERROR.unsupportedHeader,
        `Cannot virtualize the config space of "${name}": unsupported header type ${dev.headerType}`,
      );
    }
    space.#addTable(HEADER_COMMON_FIELDS, 0);
    space.#addTable(headerFields, 0);

    const reader = hardwareReader(dev);
    ctx.msiCapOffset = findCapability(reader, PCI_CAP_ID.MSI);
    ctx.msixCapOffset = findCapability(reader, PCI_CAP_ID.MSIX);
    for (const table of CAPABILITY_TABLES) {
      const capOffset = findCapability(reader, table.capId);
      if (capOffset === undefined) continue;
      space.#addTable(CAPLIST_HEADER_FIELDS, capOffset);
      space.#addTable(table.fields, capOffset);
    }
    return space;
  }

  /** Add a built-in table; a duplicate or an init error fails the whole creation. */
  #addTable(fields: readonly ConfigField[], baseOffset: number): void {
    for (const field of fields) {
      const result = this.#addField(field, baseOffset);
      if (result === 'added') continue;
      const name = this.#ctx.dev.address.toString();
      const at = `0x${(baseOffset + field.byteOffset).toString(16)}`;
      throw new PcibackError(
        CONFSPACE_ERROR.initFailed,
        result === 'duplicate'
          ? `Cannot virtualize the config space of "${name}": field "${field.name}" at ${at} overlaps another (overlapping capabilities)`
          : `Cannot virtualize the config space of "${name}": init of field "${field.name}" at ${at} failed with error ${result.err}`,
      );
    }
  }

  /** `xen_pcibk_config_add_field_offset`: refuse duplicates silently, run init, append. */
  #addField(field: ConfigField, baseOffset: number): AddResult {
    const byteOffset = baseOffset + field.byteOffset;
    if (this.#index.hasEntryAt(byteOffset)) return 'duplicate';
    let data: unknown = undefined;
    if (field.init !== undefined) {
      const init = field.init(this.#ctx, byteOffset);
      if (!init.ok) return { err: init.err };
      data = init.data;
    }
    this.#index.append(field, baseOffset, data);
    return 'added';
  }

  /** The device's flags (mutable: set `permissive`/`allowInterruptControl` on it). */
  get policy(): DevicePolicy {
    return this.#ctx.policy;
  }

  /** The device behind the virtualizer. */
  get device(): HostPciDevice {
    return this.#ctx.dev;
  }

  /** `enable_intx`: the guest has turned decoding on through the command register. */
  get intxEnabled(): boolean {
    return this.#ctx.enableIntx;
  }

  /** Clear `enable_intx`, as `control_isr(dev, reset=true)` does (§4.6 step 2). */
  clearIntxEnabled(): void {
    this.#ctx.enableIntx = false;
  }

  /**
   * A guest config read (`xen_pcibk_config_read`, §5.2). Never throws for any int32
   * offset and size; `value` is always returned, also with an error.
   *
   * @returns `value` (u32; for an invalid request 0) and `err` (0, `XEN_PCI_ERR_*` or
   *   a raw negative errno from the platform, e.g. -22 outside the config space).
   */
  read(byteOffset: number, sizeBytes: number): ConfigReadResult {
    checkInt32('offset', byteOffset);
    checkInt32('size', sizeBytes);
    if (this.#released) this.#checkAlive();
    if (!isValidRequest(byteOffset, sizeBytes)) {
      return { value: 0, err: XEN_PCI_ERR.invalid_offset };
    }
    const plan = this.#index.readPlan(byteOffset, sizeBytes);
    let value = 0;
    let err = 0;
    const entries = plan.entries;
    if (plan.readHardware) {
      // Already validated as aligned, so straight to the platform (`rawRead` re-checks).
      const hw = this.#ctx.dev.readConfig(byteOffset, sizeBytes);
      // No field changes this access: the platform's answer is the guest's (its values
      // are zero-extended to the access size by contract, and success maps to success).
      if (entries.length === 0 && hw.err === 0) return hw;
      value = hw.value;
      err = hw.err;
    }
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as FieldEntry;
      const fieldMask = sizeMask(entry.field.sizeBytes);
      const result = this.#readEntry(entry);
      // The hardware result is overwritten by every field read, as in C.
      err = result.err;
      if (err !== 0) break;
      value = mergeValue(value, result.value & fieldMask, fieldMask, entry.byteOffset - byteOffset);
    }
    // Field bytes past the end of the request are discarded (spec §5.2, §1.4: the value
    // is the access size zero-extended). C's u32 merge keeps them (a byte read at 0x00
    // puts the whole vendor ID on the wire); a Linux guest truncates them anyway.
    return { value: (value & sizeMask(sizeBytes)) >>> 0, err: pcibiosToXenErr(err) };
  }

  /**
   * A guest config write (`xen_pcibk_config_write`, §5.3). Never throws for any int32
   * offset and size; only the low `sizeBytes` bytes of `value` are used.
   *
   * @returns 0, `XEN_PCI_ERR_*` or a raw negative errno. A dropped write returns 0.
   */
  write(byteOffset: number, sizeBytes: number, value: number): number {
    checkInt32('offset', byteOffset);
    checkInt32('size', sizeBytes);
    if (!Number.isInteger(value) || value < INT32_MIN || value > 0xffffffff) {
      throw new RangeError(
        `Cannot write config space: value "${String(value)}" is not a 32-bit integer`,
      );
    }
    this.#checkAlive();
    if (!isValidRequest(byteOffset, sizeBytes)) return XEN_PCI_ERR.invalid_offset;
    const ctx = this.#ctx;
    const intxBefore = ctx.enableIntx;
    const requestMask = sizeMask(sizeBytes);
    let err = 0;
    let handled = false;
    for (const entry of this.#index.intersecting(byteOffset, sizeBytes)) {
      const { field } = entry;
      const fieldMask = sizeMask(field.sizeBytes);
      // The field's own view (not the merged read) is what the request is merged into.
      const cur = this.#readEntry(entry);
      if (cur.err !== 0) {
        err = cur.err;
        break;
      }
      const curValue = cur.value & fieldMask;
      const merged =
        mergeValue(curValue, value >>> 0, requestMask, byteOffset - entry.byteOffset) & fieldMask;
      if (field.write !== undefined) {
        err = field.write(ctx, entry.byteOffset, merged >>> 0, entry.data);
      } else {
        err = 0;
        if (merged !== curValue) {
          ctx.deny(entry.byteOffset, field.sizeBytes, DENIED_WRITE_REASON.readOnlyField);
        }
      }
      // Set even if not every byte of the request was covered: the rest is not written.
      handled = true;
    }
    if (!handled && err === 0) {
      if (ctx.isPermissive()) {
        err = rawWrite(ctx.dev, byteOffset, sizeBytes, value);
      } else {
        ctx.deny(byteOffset, sizeBytes, DENIED_WRITE_REASON.uncovered);
        this.#warnDroppedWrite(byteOffset, sizeBytes);
      }
    }
    const mapped = pcibiosToXenErr(err);
    if (mapped === 0 && ctx.enableIntx !== intxBefore) this.#onIntxChange?.(ctx.enableIntx);
    return mapped;
  }

  #readEntry(entry: FieldEntry): ConfigReadResult {
    const { field } = entry;
    // A field without a read handler reads as 0 (success).
    if (field.read === undefined) return this.#ctx.result(0, 0);
    return field.read(this.#ctx, entry.byteOffset, entry.data);
  }

  #warnDroppedWrite(byteOffset: number, sizeBytes: number): void {
    if (this.#warnedOnWrite) return;
    this.#warnedOnWrite = true;
    const name = this.#ctx.dev.address.toString();
    const at = byteOffset < 0 ? `-0x${(-byteOffset).toString(16)}` : `0x${byteOffset.toString(16)}`;
    this.#ctx.logger.warn(
      { device: name, byteOffset, sizeBytes },
      `Dropped a guest write to read-only config register ${at} (size ${sizeBytes}) of "${name}": ` +
        'this may be harmless; if the device misbehaves, see the permissive setting and report ' +
        'the device (lspci -vvv) to xen-devel',
    );
  }

  /**
   * Add a pass-through field through the sysfs `quirks` path (§5.9). Permissive mode is
   * not required and there is no alignment check. A field already starting at `reg`
   * makes this a silent no-op (the original's sysfs write still succeeds).
   *
   * @throws RangeError for `reg > 0xfff`, a mask wider than the size, or a size other
   *   than 1, 2 or 4 (the stub answers -EINVAL).
   */
  addQuirkField(reg: number, sizeBytes: number, mask: number): void {
    this.#checkAlive();
    checkQuirkRegAndMask({ reg, sizeBytes, mask });
    checkQuirkSize(sizeBytes);
    this.#addField(quirkField(reg, sizeBytes, mask), 0);
  }

  /** The quirk fields currently in the list, in list order. */
  quirkFields(): readonly QuirkField[] {
    return this.#index.entries
      .filter((e) => e.field.dynamic)
      .map((e) =>
        Object.freeze({
          byteOffset: e.byteOffset,
          sizeBytes: e.field.sizeBytes,
          mask: e.field.mask,
        }),
      );
  }

  /** Every field in list order (what sysfs `quirks` lists under each device). */
  fields(): readonly ConfigFieldInfo[] {
    return this.#index.entries.map((e) =>
      Object.freeze({
        name: e.field.name,
        byteOffset: e.byteOffset,
        sizeBytes: e.field.sizeBytes,
        mask: e.field.mask,
        dynamic: e.field.dynamic,
      }),
    );
  }

  /**
   * Guest release (§5.11, `put_pci_dev` step 6): run every reset handler (BARs leave
   * sizing mode) and drop the quirk fields. The command register's virtual value is
   * deliberately kept. `allowInterruptControl` is the stub's to clear (§6.3 step 7).
   */
  resetForNextGuest(): void {
    this.#checkAlive();
    for (const entry of this.#index.entries) {
      entry.field.reset?.(this.#ctx, entry.byteOffset, entry.data);
    }
    this.#index.removeWhere((e) => e.field.dynamic);
  }

  /**
   * Device release (`xen_pcibk_config_free_dev`): run release handlers and drop every
   * field. Any later use throws `CONFSPACE_RELEASED`. Idempotent.
   */
  release(): void {
    if (this.#released) return;
    for (const entry of this.#index.entries) {
      entry.field.release?.(this.#ctx, entry.byteOffset, entry.data);
    }
    this.#index.removeWhere(() => true);
    this.#released = true;
  }

  /** Denied guest writes, counted per (reason, offset, size). */
  deniedWrites(): readonly DeniedWrite[] {
    return this.#ctx.audit.list();
  }

  /** Forget the denied-write counters (e.g. when a new guest gets the device). */
  clearDeniedWrites(): void {
    this.#ctx.audit.clear();
  }

  static {
    indexOf = (space) => space.#index;
  }

  #checkAlive(): void {
    if (this.#released) {
      throw new PcibackError(
        CONFSPACE_ERROR.released,
        `Cannot use the config space of "${this.#ctx.dev.address.toString()}": it was released`,
      );
    }
  }
}
