// SPDX-License-Identifier: MIT
/**
 * Errors of the stub's attribute writes (`/sys/bus/pci/drivers/pciback/*`, spec §6.5):
 * each carries the Linux errno the sysfs write would fail with, so a sysfs-compatible
 * front end can answer exactly as the original does.
 */
import { PcibackError } from '../../errors.js';

/** Linux errnos the stub's attributes answer (negative, as the kernel returns them). */
export const STUB_ERRNO = {
  ENOENT: -2,
  ENODEV: -19,
  EINVAL: -22,
  EOPNOTSUPP: -95,
} as const;

/** Stable codes of {@link PciStubError}, each with the errno of its sysfs write. */
export const PCI_STUB_ERROR = {
  /** A BDF, quirk or size that does not parse or is out of range (`-EINVAL`). */
  invalidArgument: 'STUB_INVALID_ARGUMENT',
  /** No seized device at that address (`-ENODEV`; a wildcard never names one). */
  notSeized: 'NOT_SEIZED',
  /** `remove_slot` matched no id entry (`-ENOENT`). */
  noSuchSlot: 'NO_SUCH_SLOT',
  /** `irq_handler_state` found no seized device (`-ENOENT`). */
  noSuchDevice: 'STUB_NO_SUCH_DEVICE',
  /** The per-device state cannot do what was asked (see the message). */
  notSupported: 'STUB_NOT_SUPPORTED',
} as const;

/** One {@link PCI_STUB_ERROR} code. */
export type PciStubErrorCode = (typeof PCI_STUB_ERROR)[keyof typeof PCI_STUB_ERROR];

const ERRNO_OF: Readonly<Record<PciStubErrorCode, number>> = {
  STUB_INVALID_ARGUMENT: STUB_ERRNO.EINVAL,
  NOT_SEIZED: STUB_ERRNO.ENODEV,
  NO_SUCH_SLOT: STUB_ERRNO.ENOENT,
  STUB_NO_SUCH_DEVICE: STUB_ERRNO.ENOENT,
  STUB_NOT_SUPPORTED: STUB_ERRNO.EOPNOTSUPP,
};

/**
 * A refused stub attribute write.
 *
 * @example
 * try { stub.setPermissive('0000:09:00.0'); } catch (e) {
 *   if (e instanceof PciStubError) console.log(e.code, e.errno); // 'NOT_SEIZED' -19
 * }
 */
export class PciStubError extends PcibackError {
  override readonly code: PciStubErrorCode;
  /** The negative errno the sysfs write returns. */
  readonly errno: number;

  constructor(code: PciStubErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'PciStubError';
    this.code = code;
    this.errno = ERRNO_OF[code];
  }
}
