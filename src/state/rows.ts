// SPDX-License-Identifier: MIT
/**
 * Rows of `pciback.sqlite` and their decoding into records. Every row is checked: the
 * file is outside our control once written (an admin may edit it with `sqlite3`), so a
 * bad row is a clear `STATE_CORRUPT` error naming the row, never a wrong record.
 */
import { z } from 'zod';
import { PcibackError } from '../errors.js';
import { PciAddress } from '../pci/address.js';
import { PCI_RESET_METHODS } from '../platform/pci-host.js';
import { RDM_POLICIES } from '../toolstack/index.js';
import {
  DEVICE_STATUSES,
  STATE_ERROR,
  type AssignableDevice,
  type Attachment,
  type EventRecord,
  type OriginalDriver,
  type Quirk,
  type ResetRecord,
} from './types.js';
import { describeIssues, quirkSchema } from './validate.js';

const flag = z.union([z.literal(0), z.literal(1)]);
const int = z.number().int();

const deviceRowSchema = z.object({
  address: z.string(),
  name: z.string().nullable(),
  original_driver_state: z.enum(['bound', 'none', 'unknown']),
  original_driver: z.string().nullable(),
  original_driver_path: z.string().nullable(),
  stub_driver: z.string(),
  seized_at_ms: int,
  status: z.enum(DEVICE_STATUSES),
  status_since_ms: int,
  observed_driver: z.string().nullable(),
  reset_state: z.enum(['unknown', 'method', 'not-resettable']),
  reset_method: z.enum(PCI_RESET_METHODS).nullable(),
  reset_reason: z.string().nullable(),
  reset_at_ms: int.nullable(),
  permissive: flag,
  allow_interrupt_control: flag,
});

/** A row of `assignable`. */
export type DeviceRow = z.infer<typeof deviceRowSchema>;

const quirkRowSchema = z.object({
  address: z.string(),
  reg: int,
  size: int,
  mask: int,
});

/** A row of `quirk`. */
export type QuirkRow = z.infer<typeof quirkRowSchema>;

const attachmentRowSchema = z.object({
  address: z.string(),
  domid: int,
  domain_name: z.string(),
  vdev: z.string().nullable(),
  permissive: flag,
  msitranslate: flag,
  power_mgmt: flag,
  rdm_policy: z.enum(RDM_POLICIES),
  attached_at_ms: int,
});

/** A row of `attachment`. */
export type AttachmentRow = z.infer<typeof attachmentRowSchema>;

const eventRowSchema = z.object({
  id: int,
  at_ms: int,
  kind: z.string(),
  address: z.string().nullable(),
  message: z.string(),
});

/** A row of `event`. */
export type EventRow = z.infer<typeof eventRowSchema>;

function corrupt(table: string, key: string, detail: string): PcibackError {
  return new PcibackError(
    STATE_ERROR.corrupt,
    `Cannot read state database row ${table} "${key}": ${detail}`,
  );
}

function rowKey(row: unknown, column: string): string {
  if (typeof row === 'object' && row !== null && column in row) {
    return String((row as Record<string, unknown>)[column]);
  }
  return '?';
}

function check<T>(schema: z.ZodType<T>, row: unknown, table: string, keyColumn: string): T {
  const result = schema.safeParse(row);
  if (!result.success) {
    throw corrupt(table, rowKey(row, keyColumn), describeIssues(result.error));
  }
  return result.data;
}

/** Parse a stored address, which must be in canonical `DDDD:BB:DD.F` form. */
export function decodeAddress(text: string, table: string): PciAddress {
  let address: PciAddress;
  try {
    address = PciAddress.parse(text);
  } catch (err) {
    throw corrupt(table, text, (err as Error).message);
  }
  if (address.toString() !== text) {
    throw corrupt(table, text, `the address is not in canonical form "${address.toString()}"`);
  }
  return address;
}

function decodeOriginalDriver(row: DeviceRow): OriginalDriver {
  switch (row.original_driver_state) {
    case 'bound':
      if (row.original_driver === null || row.original_driver_path === null) {
        throw corrupt('assignable', row.address, 'a bound original driver has no name or path');
      }
      return { state: 'bound', name: row.original_driver, driverPath: row.original_driver_path };
    case 'none':
      return { state: 'none' };
    case 'unknown':
      return { state: 'unknown' };
  }
}

function decodeReset(row: DeviceRow): ResetRecord {
  switch (row.reset_state) {
    case 'unknown':
      return { state: 'unknown' };
    case 'method':
      if (row.reset_method === null || row.reset_at_ms === null) {
        throw corrupt('assignable', row.address, 'a reset method has no name or time');
      }
      return { state: 'method', method: row.reset_method, atMs: row.reset_at_ms };
    case 'not-resettable':
      if (row.reset_reason === null || row.reset_at_ms === null) {
        throw corrupt('assignable', row.address, 'a reset failure has no reason or time');
      }
      return { state: 'not-resettable', reason: row.reset_reason, atMs: row.reset_at_ms };
  }
}

/** Check a raw `quirk` row and decode it. */
export function decodeQuirk(raw: unknown): Quirk {
  const row = check(quirkRowSchema, raw, 'quirk', 'address');
  const quirk = quirkSchema.safeParse({ reg: row.reg, size: row.size, mask: row.mask });
  if (!quirk.success) throw corrupt('quirk', row.address, describeIssues(quirk.error));
  return quirk.data;
}

/** Check a raw `assignable` row and decode it with its quirks. */
export function decodeDevice(raw: unknown, quirks: readonly Quirk[]): AssignableDevice {
  const row = check(deviceRowSchema, raw, 'assignable', 'address');
  return {
    address: decodeAddress(row.address, 'assignable'),
    name: row.name,
    originalDriver: decodeOriginalDriver(row),
    stubDriver: row.stub_driver,
    seizedAtMs: row.seized_at_ms,
    status: row.status,
    statusSinceMs: row.status_since_ms,
    observedDriver: row.status === 'rebound' ? row.observed_driver : null,
    reset: decodeReset(row),
    policy: {
      permissive: row.permissive === 1,
      allowInterruptControl: row.allow_interrupt_control === 1,
    },
    quirks,
  };
}

/** Check a raw `attachment` row and decode it. */
export function decodeAttachment(raw: unknown): Attachment {
  const row = check(attachmentRowSchema, raw, 'attachment', 'address');
  return {
    address: decodeAddress(row.address, 'attachment'),
    domid: row.domid,
    domainName: row.domain_name,
    vdev: row.vdev === null ? null : decodeAddress(row.vdev, 'attachment'),
    options: {
      permissive: row.permissive === 1,
      msitranslate: row.msitranslate === 1,
      power_mgmt: row.power_mgmt === 1,
      rdm_policy: row.rdm_policy,
    },
    attachedAtMs: row.attached_at_ms,
  };
}

/** Check a raw `event` row and decode it. */
export function decodeEvent(raw: unknown): EventRecord {
  const row = check(eventRowSchema, raw, 'event', 'id');
  return {
    id: row.id,
    atMs: row.at_ms,
    kind: row.kind,
    device: row.address === null ? null : decodeAddress(row.address, 'event'),
    message: row.message,
  };
}
