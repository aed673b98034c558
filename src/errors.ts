// SPDX-License-Identifier: MIT
/**
 * The one error class callers catch by condition. `code` is stable and machine-readable
 * (like undici's `UND_ERR_*`); the message follows STYLE.md (action first, quoted values,
 * detail after a colon).
 */
export class PcibackError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PcibackError';
    this.code = code;
  }
}

/** True when `err` is a `PcibackError` (optionally with the given code). */
export function isPcibackError(err: unknown, code?: string): err is PcibackError {
  return err instanceof PcibackError && (code === undefined || err.code === code);
}
