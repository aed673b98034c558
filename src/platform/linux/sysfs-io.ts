// SPDX-License-Identifier: MIT
/**
 * The few file operations the Linux platform needs from sysfs, behind an interface so
 * that tests can put a fake kernel behind it (`FakeSysfs`) and the CLI can open the
 * real one read-only.
 *
 * Paths are relative to the sysfs root and use `/` (`bus/pci/devices/0000:03:00.0/vendor`).
 * Every failure is a {@link SysfsError} carrying the errno name the kernel answered
 * with, so callers can tell "the driver refused the device" (ENODEV on `bind`) from "the
 * device is bound" (EBUSY) without parsing messages.
 */
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
  writeSync,
  constants as fsConstants,
} from 'node:fs';
import { join } from 'node:path';
import { PcibackError } from '../../errors.js';
import { describeErrno } from './errno.js';

/** What was being done when a sysfs access failed. */
export type SysfsOperation = 'read' | 'write' | 'readlink' | 'readdir' | 'stat';

/**
 * File access to a sysfs tree. Synchronous: sysfs attributes are tiny and the kernel
 * answers them without blocking on I/O.
 */
export interface SysfsIo {
  /** The directory the paths are relative to (for messages), e.g. `/sys`. */
  readonly root: string;
  /** The whole attribute as UTF-8 text (trailing newline included). */
  readText(path: string): string;
  /**
   * Up to `length` bytes from `byteOffset`. Shorter at the end of the file, or where
   * the kernel serves less (an unprivileged read of `config` stops after 64 bytes).
   */
  readBytes(path: string, byteOffset: number, length: number): Uint8Array;
  /** Writes `text` in one `write()` call, as the kernel expects for an attribute. */
  writeText(path: string, text: string): void;
  /** Writes `bytes` at `byteOffset` in one `pwrite()`; returns the bytes the kernel took. */
  writeBytes(path: string, byteOffset: number, bytes: Uint8Array): number;
  /** The target of a symbolic link, as stored (usually relative). */
  readlink(path: string): string;
  /** Entry names of a directory (unsorted). */
  readdir(path: string): string[];
  /** True when the path exists (a link counts only when its target exists). */
  exists(path: string): boolean;
  /** Size of a file as `stat` reports it (a `config` file: 256 or 4096). */
  fileSizeBytes(path: string): number;
}

/** Options of {@link SysfsError}. */
export interface SysfsErrorOptions {
  /** Errno name (`EACCES`, `ENODEV`, ...). */
  readonly errno: string;
  readonly operation: SysfsOperation;
  /** Path relative to `root`. */
  readonly path: string;
  /** The sysfs root, for the message. */
  readonly root: string;
  /** Replaces the generic hint after the errno. */
  readonly hint?: string;
  readonly cause?: unknown;
}

/**
 * A failed sysfs access. `code` is `PERMISSION_DENIED` for EACCES, EPERM and EROFS, else
 * `HOST_IO`; the PCI host wraps it in an error that names the device and the action.
 */
export class SysfsError extends PcibackError {
  /** Errno name the kernel (or the fake) answered with. */
  readonly errno: string;
  readonly operation: SysfsOperation;
  /** Path relative to the sysfs root. */
  readonly path: string;

  constructor(options: SysfsErrorOptions) {
    const where = joinRoot(options.root, options.path);
    const hint = options.hint === undefined ? '' : `: ${options.hint}`;
    super(
      sysfsErrorCode(options.errno),
      `Cannot ${VERBS[options.operation]} "${where}": ${describeErrno(options.errno)}${hint}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'SysfsError';
    this.errno = options.errno;
    this.operation = options.operation;
    this.path = options.path;
  }
}

const VERBS: Readonly<Record<SysfsOperation, string>> = {
  read: 'read',
  write: 'write',
  readlink: 'read link',
  readdir: 'list',
  stat: 'stat',
};

/** The `PcibackError` code for an errno: permission problems, or a host I/O fault. */
export function sysfsErrorCode(errno: string): 'PERMISSION_DENIED' | 'HOST_IO' {
  return errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS'
    ? 'PERMISSION_DENIED'
    : 'HOST_IO';
}

/** True when `err` is a {@link SysfsError}, optionally with one of the errno names. */
export function isSysfsError(err: unknown, ...errnos: string[]): err is SysfsError {
  return err instanceof SysfsError && (errnos.length === 0 || errnos.includes(err.errno));
}

/** `root` + `/` + `path`, for messages. */
export function joinRoot(root: string, path: string): string {
  return root.endsWith('/') ? `${root}${path}` : `${root}/${path}`;
}

/** Options of {@link NodeSysfsIo}. */
export interface NodeSysfsIoOptions {
  /**
   * Whether the process runs as root, for the hint of a permission error (default:
   * `process.getuid() === 0`).
   */
  readonly isRoot?: boolean;
}

/**
 * {@link SysfsIo} over `node:fs`, rooted at a directory (`/sys` on a real host, a
 * temporary tree in tests).
 *
 * @example
 * const io = new NodeSysfsIo('/sys');
 * io.readText('bus/pci/devices/0000:00:00.0/vendor'); // '0x8086\n'
 */
export class NodeSysfsIo implements SysfsIo {
  readonly root: string;
  readonly #isRoot: boolean;

  constructor(root: string, options: NodeSysfsIoOptions = {}) {
    if (typeof root !== 'string' || root === '') {
      throw new TypeError('Cannot open a sysfs tree: the root directory must be a non-empty path');
    }
    this.root = root;
    this.#isRoot = options.isRoot ?? process.getuid?.() === 0;
  }

  readText(path: string): string {
    return this.#run('read', path, () => readFileSync(this.#abs(path), 'utf8'));
  }

  readBytes(path: string, byteOffset: number, length: number): Uint8Array {
    checkRange(byteOffset, length);
    return this.#run('read', path, () => {
      const fd = openSync(this.#abs(path), fsConstants.O_RDONLY);
      try {
        const buffer = new Uint8Array(length);
        let done = 0;
        // A regular file may return less than asked; sysfs answers in one go.
        while (done < length) {
          const n = readSync(fd, buffer, done, length - done, byteOffset + done);
          if (n === 0) break;
          done += n;
        }
        return buffer.subarray(0, done);
      } finally {
        closeSync(fd);
      }
    });
  }

  writeText(path: string, text: string): void {
    this.#run('write', path, () => {
      // O_WRONLY without O_CREAT/O_TRUNC: a write-only attribute (bind, unbind) refuses
      // O_RDWR, and sysfs has nothing to create or truncate.
      const fd = openSync(this.#abs(path), fsConstants.O_WRONLY);
      try {
        writeSync(fd, new TextEncoder().encode(text));
      } finally {
        closeSync(fd);
      }
    });
  }

  writeBytes(path: string, byteOffset: number, bytes: Uint8Array): number {
    checkRange(byteOffset, bytes.length);
    return this.#run('write', path, () => {
      const fd = openSync(this.#abs(path), fsConstants.O_WRONLY);
      try {
        return writeSync(fd, bytes, 0, bytes.length, byteOffset);
      } finally {
        closeSync(fd);
      }
    });
  }

  readlink(path: string): string {
    return this.#run('readlink', path, () => readlinkSync(this.#abs(path), 'utf8'));
  }

  readdir(path: string): string[] {
    return this.#run('readdir', path, () => readdirSync(this.#abs(path), 'utf8'));
  }

  exists(path: string): boolean {
    return existsSync(this.#abs(path));
  }

  fileSizeBytes(path: string): number {
    return this.#run('stat', path, () => statSync(this.#abs(path)).size);
  }

  #abs(path: string): string {
    return join(this.root, path);
  }

  #run<T>(operation: SysfsOperation, path: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toSysfsError(err, { operation, path, root: this.root, isRoot: this.#isRoot });
    }
  }
}

/**
 * Turns a Node filesystem error into a {@link SysfsError} (other errors pass through
 * unchanged). Permission errors get a hint: as a normal user, to run as root; as root,
 * that the kernel itself refuses (a read-only attribute, or lockdown).
 */
export function toSysfsError(
  err: unknown,
  context: { operation: SysfsOperation; path: string; root: string; isRoot: boolean },
): unknown {
  if (err instanceof SysfsError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) return err;
  let hint: string | undefined;
  if (code === 'EACCES' || code === 'EPERM') {
    hint = context.isRoot
      ? 'the kernel refuses it even to root (a read-only attribute, or kernel lockdown)'
      : 'run pciback as root (changing PCI drivers and config space needs CAP_SYS_ADMIN)';
  }
  return new SysfsError({
    errno: code,
    operation: context.operation,
    path: context.path,
    root: context.root,
    ...(hint === undefined ? {} : { hint }),
    cause: err,
  });
}

/**
 * A {@link SysfsIo} over another one whose reads pass through unchanged; subclasses say
 * what a write does (refuse it, or follow it with a save).
 */
export abstract class SysfsIoWriteDecorator implements SysfsIo {
  protected readonly inner: SysfsIo;

  constructor(inner: SysfsIo) {
    this.inner = inner;
  }

  get root(): string {
    return this.inner.root;
  }

  readText(path: string): string {
    return this.inner.readText(path);
  }

  readBytes(path: string, byteOffset: number, length: number): Uint8Array {
    return this.inner.readBytes(path, byteOffset, length);
  }

  abstract writeText(path: string, text: string): void;

  abstract writeBytes(path: string, byteOffset: number, bytes: Uint8Array): number;

  readlink(path: string): string {
    return this.inner.readlink(path);
  }

  readdir(path: string): string[] {
    return this.inner.readdir(path);
  }

  exists(path: string): boolean {
    return this.inner.exists(path);
  }

  fileSizeBytes(path: string): number {
    return this.inner.fileSizeBytes(path);
  }
}

/**
 * A {@link SysfsIo} that refuses every write (EROFS) and passes reads through: for
 * listing commands and for tests that look at the real `/sys`.
 *
 * @example
 * const io = new ReadOnlySysfsIo(new NodeSysfsIo('/sys'));
 */
export class ReadOnlySysfsIo extends SysfsIoWriteDecorator {
  writeText(path: string, _text: string): void {
    throw this.#refuse(path);
  }

  writeBytes(path: string, _byteOffset: number, _bytes: Uint8Array): number {
    throw this.#refuse(path);
  }

  #refuse(path: string): SysfsError {
    return new SysfsError({
      errno: 'EROFS',
      operation: 'write',
      path,
      root: this.inner.root,
      hint: 'this sysfs view was opened read-only',
    });
  }
}

function checkRange(byteOffset: number, length: number): void {
  if (!Number.isSafeInteger(byteOffset) || byteOffset < 0) {
    throw new RangeError(
      `Invalid sysfs file offset ${String(byteOffset)}: expected an integer >= 0`,
    );
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`Invalid sysfs access length ${String(length)}: expected an integer >= 0`);
  }
}
