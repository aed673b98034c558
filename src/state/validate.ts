// SPDX-License-Identifier: MIT
/**
 * Validation of the values that reach the database from outside (the CLI, xenstore, a
 * config file) and of the rows read back (the file may have been edited). zod schemas
 * plus one helper that turns issues into a `PcibackError` message.
 */
import { z } from 'zod';
import { PcibackError } from '../errors.js';
import { PciAddress } from '../pci/address.js';
import { PCI_RESET_METHODS } from '../platform/pci-host.js';
import { PCI_NAME_MAX_LENGTH, RDM_POLICIES } from '../toolstack/index.js';
import { STATE_ERROR, type StateErrorCode } from './types.js';

/** Largest config-space offset a quirk may name (spec/pciback.md §5.9: `reg <= 0xFFF`). */
export const QUIRK_REG_MAX = 0xfff;
/** First domid Xen reserves (`DOMID_FIRST_RESERVED`); guests are 1..0x7fef. */
export const DOMID_FIRST_RESERVED = 0x7ff0;
/** Longest event message kept. */
export const EVENT_MESSAGE_MAX_LENGTH = 4096;

function looksLikeAddress(text: string): boolean {
  try {
    PciAddress.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A device alias. xl's rule (peers.md §1.1): 1..64 characters, all `isgraph`. Two more
 * of ours: no comma (a PCI_SPEC_STRING could never name it: `name=` ends at a comma)
 * and not shaped like an address (xl resolves a name before an address, so such a name
 * would hide a device).
 */
export const deviceNameSchema = z
  .string()
  .min(1, 'a name cannot be empty')
  .max(PCI_NAME_MAX_LENGTH, `a name has at most ${PCI_NAME_MAX_LENGTH} characters`)
  .regex(/^[\x21-\x7e]+$/, 'a name has only printable ASCII characters and no spaces')
  .refine((name) => !name.includes(','), 'a name cannot contain a comma')
  .refine((name) => !looksLikeAddress(name), 'a name cannot look like a PCI address');

/** A Linux driver name, as in `/sys/bus/pci/drivers/<name>`. */
export const driverNameSchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,64}$/, 'a driver name has 1-64 printable characters and no spaces')
  .refine((name) => !name.includes('/') && name !== '.' && name !== '..', {
    message: 'a driver name cannot be a path',
  });

const driverPathSchema = z
  .string()
  .min(2)
  .max(4096)
  .regex(/^\/[^\0]*$/, 'a driver path is absolute');

export const originalDriverInputSchema = z.discriminatedUnion('state', [
  z.strictObject({
    state: z.literal('bound'),
    name: driverNameSchema,
    driverPath: driverPathSchema.optional(),
  }),
  z.strictObject({ state: z.literal('none') }),
  z.strictObject({ state: z.literal('unknown') }),
]);

export const policyPatchSchema = z.strictObject({
  permissive: z.boolean().optional(),
  allowInterruptControl: z.boolean().optional(),
});

export const quirkSchema = z
  .strictObject({
    reg: z
      .number()
      .int()
      .min(0)
      .max(QUIRK_REG_MAX, `reg is at most 0x${QUIRK_REG_MAX.toString(16)}`),
    size: z.union([z.literal(1), z.literal(2), z.literal(4)], { message: 'size is 1, 2 or 4' }),
    mask: z.number().int().min(0).max(0xffffffff, 'mask is at most 0xffffffff'),
  })
  .refine((q) => q.size === 4 || q.mask < 2 ** (8 * q.size), {
    message: 'mask does not fit in size bytes',
    path: ['mask'],
  });

export const domidSchema = z
  .number()
  .int('a domid is an integer')
  .min(1, 'a domid is at least 1 (dom0 cannot be a guest)')
  .max(DOMID_FIRST_RESERVED - 1, 'a domid is at most 0x7fef');

export const domainNameSchema = z
  .string()
  .min(1, 'a domain name cannot be empty')
  .max(256)
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\x00-\x1f\x7f]+$/, 'a domain name has no control characters');

export const attachmentOptionsInputSchema = z.strictObject({
  permissive: z.boolean().optional(),
  msitranslate: z.boolean().optional(),
  power_mgmt: z.boolean().optional(),
  rdm_policy: z.enum(RDM_POLICIES).optional(),
});

export const resetOutcomeSchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), method: z.enum(PCI_RESET_METHODS) }),
  z.strictObject({ ok: z.literal(false), reason: z.string().min(1).max(1024) }),
]);

export const eventKindSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,39}$/, 'a kind is kebab-case, at most 40 characters');

export const eventMessageSchema = z
  .string()
  .min(1, 'a message cannot be empty')
  .max(EVENT_MESSAGE_MAX_LENGTH, `a message has at most ${EVENT_MESSAGE_MAX_LENGTH} characters`);

/** Turn zod issues into one line: `name: a name cannot contain a comma; ...`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ` : '') + issue.message)
    .join('; ');
}

/**
 * Parse `value` or throw a `PcibackError` with `code` and the message
 * `<action>: <issues>`, e.g. `Cannot name device "0000:03:00.0": a name ...`.
 */
export function parseOrThrow<T>(
  schema: z.ZodType<T>,
  value: unknown,
  action: string,
  code: StateErrorCode = STATE_ERROR.invalid,
): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new PcibackError(code, `${action}: ${describeIssues(result.error)}`);
}
