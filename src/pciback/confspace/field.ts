// SPDX-License-Identifier: MIT
/**
 * The field model of `conf_space.h` (spec §5.1): a field describes one register
 * relative to a base (0 for the header, the capability offset for capability fields)
 * with optional handlers; an entry binds a field to a device at a base offset and holds
 * the per-entry data its `init` produced.
 */
import type {
  ConfigAccessSize,
  ConfigReadResult,
  HostPciDevice,
  Logger,
} from '../../platform/types.js';
import type { DeniedWriteReason } from './audit.js';
import type { DevicePolicy } from './policy.js';

/**
 * What handlers may use besides the device: the policy switches, the per-device flags
 * of `xen_pcibk_dev_data` they update, the logger and the denied-write audit.
 */
export interface FieldContext {
  readonly dev: HostPciDevice;
  readonly policy: DevicePolicy;
  readonly logger: Logger;
  /** Global or per-device permissive mode is on (§5.4). */
  isPermissive(): boolean;
  /** `dev_data->enable_intx`: the guest has enabled decoding (§3.2). */
  enableIntx: boolean;
  /** `dev->msi_cap`: first MSI capability, found at creation (undefined: none). */
  readonly msiCapOffset: number | undefined;
  /** `dev->msix_cap`. */
  readonly msixCapOffset: number | undefined;
  /**
   * The answer of a read handler, without allocating: the returned object is one scratch
   * result per device, valid until the next handler call (the read loop consumes it at
   * once). Config reads are the backend's hottest path.
   */
  result(value: number, err: number): ConfigReadResult;
  /** Count a denied guest write in the audit. */
  deny(byteOffset: number, sizeBytes: ConfigAccessSize, reason: DeniedWriteReason): void;
}

/** Result of a field's `init`: the entry's data, or an error code that aborts the add. */
export type FieldInitResult<D> =
  { readonly ok: true; readonly data: D } | { readonly ok: false; readonly err: number };

/**
 * One register description (`struct config_field`). `D` is the type of the per-entry
 * data `init` returns; handlers receive the field's absolute offset.
 *
 * Deviation in form only: the C union of byte/word/dword handlers becomes one pair of
 * handlers whose values are the field's size (zero-extended).
 */
export interface ConfigField<D = unknown> {
  /** Short name for listings and logs (e.g. `command`, `bar`, `quirk`). */
  readonly name: string;
  /** Offset relative to the entry's base. */
  readonly byteOffset: number;
  readonly sizeBytes: ConfigAccessSize;
  /** Stored and listed (sysfs `quirks`), never used for filtering (§5.1). */
  readonly mask: number;
  /** Dynamically added (a quirk, `clean` in C): dropped when a guest releases the device. */
  readonly dynamic: boolean;
  init?(ctx: FieldContext, byteOffset: number): FieldInitResult<D>;
  reset?(ctx: FieldContext, byteOffset: number, data: D): void;
  release?(ctx: FieldContext, byteOffset: number, data: D): void;
  /**
   * The read handler returns the hardware bytes unchanged (`xen_pcibk_read_config_*`).
   * Merging such a field over the hardware value read for the request changes nothing,
   * so the read path skips it when it is naturally aligned (a misaligned raw read
   * fails, and that error must still be reported).
   */
  readonly readsRaw?: boolean;
  /** Returns the field-sized value and 0 or an error code; absent = reads as 0. */
  read?(ctx: FieldContext, byteOffset: number, data: D): ConfigReadResult;
  /** Gets the merged field-sized value; returns 0 or an error; absent = write ignored. */
  write?(ctx: FieldContext, byteOffset: number, value: number, data: D): number;
}

/** A field bound to a device (`struct config_field_entry`). */
export interface FieldEntry {
  readonly field: ConfigField;
  readonly baseOffset: number;
  /** Absolute offset: `baseOffset + field.byteOffset` (`OFFSET(entry)` in C). */
  readonly byteOffset: number;
  /** What `init` returned (undefined for fields without `init`). */
  readonly data: unknown;
  /** Position in the device's list; increases with every append, never reused. */
  readonly order: number;
}

/** A field as the sysfs `quirks` listing shows it (absolute offset, size, mask). */
export interface ConfigFieldInfo {
  readonly name: string;
  readonly byteOffset: number;
  readonly sizeBytes: ConfigAccessSize;
  readonly mask: number;
  readonly dynamic: boolean;
}
