// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPcibackError } from '../../errors.js';
import {
  NodeSysfsIo,
  ReadOnlySysfsIo,
  SysfsError,
  isSysfsError,
  toSysfsError,
  type SysfsIo,
} from './sysfs-io.js';

function withTree(fn: (root: string, io: NodeSysfsIo) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'sysfs-io-test-'));
  try {
    mkdirSync(join(root, 'bus/pci/devices'), { recursive: true });
    mkdirSync(join(root, 'devices/pci0000:00/0000:00:01.0'), { recursive: true });
    writeFileSync(join(root, 'devices/pci0000:00/0000:00:01.0/vendor'), '0x1af4\n');
    writeFileSync(
      join(root, 'devices/pci0000:00/0000:00:01.0/config'),
      Uint8Array.from({ length: 256 }, (_, i) => i),
    );
    writeFileSync(join(root, 'devices/pci0000:00/0000:00:01.0/bind'), '');
    symlinkSync(
      '../../../devices/pci0000:00/0000:00:01.0',
      join(root, 'bus/pci/devices/0000:00:01.0'),
    );
    symlinkSync('../nowhere', join(root, 'bus/pci/devices/dangling'));
    fn(root, new NodeSysfsIo(root, { isRoot: false }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('NodeSysfsIo reads attributes through links, as text and as bytes at an offset', () => {
  withTree((_root, io) => {
    assert.equal(io.readText('bus/pci/devices/0000:00:01.0/vendor'), '0x1af4\n');
    assert.deepEqual(
      [...io.readBytes('bus/pci/devices/0000:00:01.0/config', 0x10, 4)],
      [0x10, 0x11, 0x12, 0x13],
    );
    assert.equal(io.fileSizeBytes('bus/pci/devices/0000:00:01.0/config'), 256);
  });
});

test('NodeSysfsIo.readBytes() returns a short array at the end of the file', () => {
  withTree((_root, io) => {
    const tail = io.readBytes('bus/pci/devices/0000:00:01.0/config', 254, 4);
    assert.deepEqual([...tail], [254, 255]);
    assert.equal(io.readBytes('bus/pci/devices/0000:00:01.0/config', 300, 4).length, 0);
  });
});

test('NodeSysfsIo writes text in place and bytes at an offset', () => {
  withTree((root, io) => {
    io.writeText('bus/pci/devices/0000:00:01.0/bind', '0000:00:01.0');
    assert.equal(
      readFileSync(join(root, 'devices/pci0000:00/0000:00:01.0/bind'), 'utf8'),
      '0000:00:01.0',
    );
    const written = io.writeBytes(
      'bus/pci/devices/0000:00:01.0/config',
      4,
      Uint8Array.of(0xaa, 0xbb),
    );
    assert.equal(written, 2);
    const config = readFileSync(join(root, 'devices/pci0000:00/0000:00:01.0/config'));
    assert.deepEqual([...config.subarray(3, 7)], [3, 0xaa, 0xbb, 6]);
  });
});

test('NodeSysfsIo lists directories, reads links and tells dangling links from files', () => {
  withTree((_root, io) => {
    assert.deepEqual(io.readdir('bus/pci/devices').sort(), ['0000:00:01.0', 'dangling']);
    assert.equal(
      io.readlink('bus/pci/devices/0000:00:01.0'),
      '../../../devices/pci0000:00/0000:00:01.0',
    );
    assert.equal(io.exists('bus/pci/devices/0000:00:01.0/vendor'), true);
    assert.equal(io.exists('bus/pci/devices/dangling'), false);
    assert.equal(io.exists('bus/pci/devices/0000:00:02.0'), false);
  });
});

test('NodeSysfsIo turns a missing file into a SysfsError naming the full path and ENOENT', () => {
  withTree((root, io) => {
    assert.throws(
      () => io.readText('bus/pci/devices/0000:00:02.0/vendor'),
      (err: unknown) => {
        assert.ok(err instanceof SysfsError);
        assert.equal(err.errno, 'ENOENT');
        assert.equal(err.code, 'HOST_IO');
        assert.equal(err.operation, 'read');
        assert.equal(err.path, 'bus/pci/devices/0000:00:02.0/vendor');
        assert.match(
          err.message,
          /^Cannot read ".*0000:00:02\.0\/vendor": no such file or directory \(ENOENT\)$/,
        );
        assert.ok(err.message.includes(root));
        assert.ok(err.cause instanceof Error);
        return true;
      },
    );
    assert.throws(
      () => io.readlink('bus/pci/devices/0000:00:01.0/vendor'),
      (err: unknown) => isSysfsError(err, 'EINVAL'),
    );
    assert.throws(
      () => {
        io.writeText('bus/pci/devices/0000:00:01.0', 'x');
      },
      (err: unknown) => isSysfsError(err, 'EISDIR'),
    );
  });
});

test('toSysfsError() maps EACCES and EPERM to PERMISSION_DENIED with a hint that fits the user', () => {
  const context = {
    operation: 'write' as const,
    path: 'bus/pci/drivers/pciback/bind',
    root: '/sys',
  };
  for (const code of ['EACCES', 'EPERM']) {
    const asUser = toSysfsError(Object.assign(new Error(code), { code }), {
      ...context,
      isRoot: false,
    });
    assert.ok(asUser instanceof SysfsError);
    assert.ok(isPcibackError(asUser, 'PERMISSION_DENIED'));
    assert.match(
      asUser.message,
      /^Cannot write "\/sys\/bus\/pci\/drivers\/pciback\/bind": .*: run pciback as root/,
    );
    const asRoot = toSysfsError(Object.assign(new Error(code), { code }), {
      ...context,
      isRoot: true,
    });
    assert.ok(asRoot instanceof SysfsError);
    assert.match(asRoot.message, /even to root/);
  }
  const busy = toSysfsError(Object.assign(new Error('EBUSY'), { code: 'EBUSY' }), {
    ...context,
    isRoot: true,
  });
  assert.ok(busy instanceof SysfsError);
  assert.equal(busy.code, 'HOST_IO');
  assert.equal(
    busy.message,
    'Cannot write "/sys/bus/pci/drivers/pciback/bind": device or resource busy (EBUSY)',
  );
});

test('toSysfsError() passes errors without an errno through unchanged', () => {
  const plain = new TypeError('not an fs error');
  assert.equal(
    toSysfsError(plain, { operation: 'read', path: 'x', root: '/sys', isRoot: true }),
    plain,
  );
});

test('ReadOnlySysfsIo passes reads and refuses every write with EROFS', () => {
  withTree((root, io) => {
    const ro: SysfsIo = new ReadOnlySysfsIo(io);
    assert.equal(ro.root, root);
    assert.equal(ro.readText('bus/pci/devices/0000:00:01.0/vendor'), '0x1af4\n');
    assert.equal(ro.readBytes('bus/pci/devices/0000:00:01.0/config', 0, 2).length, 2);
    assert.deepEqual(ro.readdir('bus/pci/devices').sort(), ['0000:00:01.0', 'dangling']);
    assert.equal(ro.exists('bus/pci/devices/0000:00:01.0'), true);
    assert.equal(ro.fileSizeBytes('bus/pci/devices/0000:00:01.0/config'), 256);
    assert.equal(
      ro.readlink('bus/pci/devices/0000:00:01.0'),
      '../../../devices/pci0000:00/0000:00:01.0',
    );
    assert.throws(
      () => {
        ro.writeText('bus/pci/devices/0000:00:01.0/bind', '0000:00:01.0');
      },
      (err: unknown) =>
        isSysfsError(err, 'EROFS') &&
        err.code === 'PERMISSION_DENIED' &&
        /read-only/.test(err.message),
    );
    assert.throws(
      () => ro.writeBytes('bus/pci/devices/0000:00:01.0/config', 0, Uint8Array.of(0)),
      (err: unknown) => isSysfsError(err, 'EROFS'),
    );
    assert.equal(readFileSync(join(root, 'devices/pci0000:00/0000:00:01.0/bind'), 'utf8'), '');
    assert.equal(readFileSync(join(root, 'devices/pci0000:00/0000:00:01.0/config'))[0], 0);
  });
});

test('NodeSysfsIo rejects an empty root and negative offsets', () => {
  assert.throws(() => new NodeSysfsIo(''), TypeError);
  withTree((_root, io) => {
    assert.throws(() => io.readBytes('bus/pci/devices/0000:00:01.0/config', -1, 4), RangeError);
    assert.throws(
      () => io.writeBytes('bus/pci/devices/0000:00:01.0/config', 1.5, Uint8Array.of(1)),
      RangeError,
    );
  });
});
