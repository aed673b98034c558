// SPDX-License-Identifier: MIT
/**
 * The Linux errnos sysfs answers with, by name (`ENODEV`), with their numbers and the
 * words `strerror` uses. Names are what Node puts in `err.code`, so the real filesystem
 * and the fake sysfs speak the same vocabulary.
 */

/** Linux errno numbers (`include/uapi/asm-generic/errno-base.h`, `errno.h`). */
export const LINUX_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  EROFS: 30,
  ENOSYS: 38,
  ENOTSUP: 95,
  ETIMEDOUT: 110,
} as const;

/** One errno name this module knows. */
export type LinuxErrnoName = keyof typeof LINUX_ERRNO;

/** True when `name` is an errno name of {@link LINUX_ERRNO}. */
export function isLinuxErrnoName(name: string): name is LinuxErrnoName {
  return Object.hasOwn(LINUX_ERRNO, name);
}

const DESCRIPTIONS: Readonly<Record<LinuxErrnoName, string>> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EIO: 'input/output error',
  ENXIO: 'no such device or address',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'out of memory',
  EACCES: 'permission denied',
  EBUSY: 'device or resource busy',
  EEXIST: 'already exists',
  ENODEV: 'no such device',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  ENOTTY: 'not supported by the device',
  ENOSPC: 'no space left',
  EROFS: 'read-only',
  ENOSYS: 'not implemented',
  ENOTSUP: 'operation not supported',
  ETIMEDOUT: 'timed out',
};

/**
 * The errno's number (positive), or EIO's for a name this module does not know
 * (a config accessor must still return some negative errno).
 */
export function errnoNumber(name: string): number {
  return isLinuxErrnoName(name) ? LINUX_ERRNO[name] : LINUX_ERRNO.EIO;
}

/** `strerror`-like words followed by the name: `permission denied (EACCES)`. */
export function describeErrno(name: string): string {
  return isLinuxErrnoName(name) ? `${DESCRIPTIONS[name]} (${name})` : `error ${name}`;
}
