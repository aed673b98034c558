// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPcibackError } from '../../errors.js';
import { PciAddress } from '../../pci/address.js';
import { FakeSysfs, type FakeSysfsOptions } from './fake-sysfs.js';
import { LinuxPciHost } from './linux-pci-host.js';
import { isSysfsError, type SysfsIo } from './sysfs-io.js';
import * as M from './test-machine.js';

const { machine } = M;

const NIC = PciAddress.parse(M.NIC);
const VF = PciAddress.parse(M.VF);
const PORT = PciAddress.parse(M.PORT);
const GPU = PciAddress.parse(M.GPU);
const STUCK = PciAddress.parse(M.STUCK);
const MISSING = PciAddress.parse('0000:09:00.0');

function withHost(
  run: (host: LinuxPciHost, sysfs: FakeSysfs) => void,
  options: Partial<FakeSysfsOptions> = {},
): void {
  const sysfs = FakeSysfs.create({
    functions: machine(),
    drivers: ['pciback', 'vfio-pci', 'pci-stub'],
    ...options,
  });
  try {
    run(new LinuxPciHost({ io: sysfs }), sysfs);
  } finally {
    sysfs.dispose();
  }
}

function assertPcibackError(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isPcibackError(err), `expected a PcibackError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

const targets = (sysfs: FakeSysfs): string[][] => sysfs.writeLog().map((w) => [w.target, w.text]);

test('list() enumerates every function in bus order with what sysfs says of it', () => {
  withHost((host) => {
    const list = host.list();
    assert.deepEqual(
      list.map((f) => f.address.toString()),
      [
        '0000:00:00.0',
        '0000:00:02.0',
        '0000:00:03.0',
        '0000:00:1c.0',
        '0000:03:00.0',
        '0000:03:00.1',
        '0000:03:10.0',
      ],
    );
    const nic = list.find((f) => f.address.equals(NIC));
    assert.ok(nic);
    assert.equal(nic.vendorId, 0x8086);
    assert.equal(nic.deviceId, 0x10c9);
    assert.equal(nic.subsystemVendorId, 0x8086);
    assert.equal(nic.subsystemDeviceId, 0xa03c);
    assert.equal(nic.classCode, 0x020000);
    assert.equal(nic.headerType, 0);
    assert.equal(nic.driver, 'igb');
    assert.equal(nic.driverOverride, null);
    assert.equal(nic.iommuGroup, 7);
    assert.equal(nic.upstreamBridge?.toString(), PORT.toString());
    assert.equal(nic.physfn, null);
    assert.deepEqual(nic.virtfns.map(String), [VF.toString()]);
    assert.deepEqual(nic.resetMethods, ['flr', 'pm']);
    assert.equal(nic.resettable, true);
    assert.equal(nic.resetMethodsListed, true);
    assert.equal(nic.irq, 16);
    assert.equal(nic.sysfsPath, `devices/pci0000:00/${PORT.toString()}/${NIC.toString()}`);
    const vf = host.info(VF);
    assert.ok(vf);
    assert.equal(vf.physfn?.toString(), NIC.toString());
    assert.equal(vf.upstreamBridge?.toString(), PORT.toString());
    assert.equal(vf.driver, null);
    const port = host.info(PORT);
    assert.ok(port);
    assert.equal(port.headerType, 1);
    assert.equal(port.upstreamBridge, null);
    assert.equal(port.iommuGroup, null);
    const stuck = host.info(STUCK);
    assert.ok(stuck);
    assert.equal(stuck.resettable, false);
    assert.deepEqual(stuck.resetMethods, []);
    assert.equal(host.info(MISSING), undefined);
  });
});

test('info() reports driver_override and an old kernel without reset_method', () => {
  withHost(
    (host) => {
      const nic = host.info(NIC);
      assert.ok(nic);
      assert.equal(nic.resettable, true);
      assert.equal(nic.resetMethodsListed, false);
      assert.deepEqual(nic.resetMethods, [], 'nothing derived when the kernel does not say');
      assert.equal(nic.driverOverride, null);
    },
    { kernel: { resetMethodFile: false, driverOverrideFile: false } },
  );
  withHost(
    (host) => {
      assert.equal(host.info(GPU)?.driverOverride, 'vfio-pci');
    },
    {
      functions: machine().map((s) =>
        s.address === M.GPU ? { ...s, driverOverride: 'vfio-pci' } : s,
      ),
    },
  );
});

test('list() and drivers() are empty on a tree without PCI, and list() skips foreign entries', () => {
  const root = mkdtempSync(join(tmpdir(), 'no-pci-'));
  try {
    const host = new LinuxPciHost({ root });
    assert.deepEqual(host.list(), []);
    assert.deepEqual(host.drivers(), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  withHost((host, sysfs) => {
    const io: SysfsIo = {
      root: sysfs.root,
      readText: (p) => sysfs.readText(p),
      readBytes: (p, o, l) => sysfs.readBytes(p, o, l),
      writeText: (p, t) => {
        sysfs.writeText(p, t);
      },
      writeBytes: (p, o, b) => sysfs.writeBytes(p, o, b),
      readlink: (p) => sysfs.readlink(p),
      readdir: (p) =>
        p === 'bus/pci/devices'
          ? [...sysfs.readdir(p), '10000:e0:06.0', 'README']
          : sysfs.readdir(p),
      exists: (p) => sysfs.exists(p),
      fileSizeBytes: (p) => sysfs.fileSizeBytes(p),
    };
    assert.equal(new LinuxPciHost({ io }).list().length, host.list().length);
  });
});

test('a sysfs read failure while enumerating is a HOST_IO error naming the function', () => {
  withHost((host, sysfs) => {
    sysfs.injectFault({ path: `bus/pci/devices/${GPU.toString()}/class`, errno: 'EIO' });
    assertPcibackError(
      () => host.list(),
      'HOST_IO',
      /^Cannot read PCI device "0000:00:02\.0": cannot read ".*class": input\/output error \(EIO\)$/,
    );
  });
});

test('resources() reads the resource file: BAR sizes and the ROM at index 6', () => {
  withHost((host) => {
    const nic = host.resources(NIC);
    assert.equal(nic.length, 7);
    assert.equal(nic[0]?.sizeBytes, 0x20000n);
    assert.equal(nic[1]?.flags, 0);
    assert.deepEqual(host.resources(VF)[0], {
      start: 0xd0000000n,
      sizeBytes: 0x4000n,
      flags: 0x40200,
    });
    assertPcibackError(() => host.resources(MISSING), 'NO_SUCH_DEVICE', /no such PCI device/);
  });
});

test('drivers() lists bus/pci/drivers in order and open() returns one device per function', () => {
  withHost((host) => {
    assert.deepEqual(host.drivers(), ['igb', 'pci-stub', 'pciback', 'pcieport', 'vfio-pci']);
    const a = host.open(NIC);
    assert.equal(host.open(NIC), a, 'the same enable count and bus master state');
    assert.equal(a.readConfig(0, 2).value, 0x8086);
    assertPcibackError(() => host.open(MISSING), 'NO_SUCH_DEVICE', /0000:09:00\.0/);
  });
});

test('unbind() writes the address to driver/unbind, and does nothing without a driver', () => {
  withHost((host, sysfs) => {
    host.unbind(NIC);
    assert.equal(sysfs.driverOf(NIC), null);
    assert.deepEqual(targets(sysfs), [['bus/pci/drivers/igb/unbind', NIC.toString()]]);
    host.unbind(NIC);
    assert.equal(sysfs.writeLog().length, 1);
    assertPcibackError(
      () => {
        host.unbind(MISSING);
      },
      'NO_SUCH_DEVICE',
      /^Cannot unbind "0000:09:00\.0": no such PCI device/,
    );
  });
});

test('setDriverOverride() sets and clears driver_override; bad names and old kernels are refused', () => {
  withHost((host, sysfs) => {
    host.setDriverOverride(GPU, 'vfio-pci');
    assert.equal(host.info(GPU)?.driverOverride, 'vfio-pci');
    host.setDriverOverride(GPU, null);
    assert.equal(sysfs.driverOverrideOf(GPU), null);
    assert.deepEqual(
      targets(sysfs).map(([, text]) => text),
      ['vfio-pci', '\n'],
    );
    assert.throws(() => {
      host.setDriverOverride(GPU, 'two words');
    }, RangeError);
    assert.throws(() => {
      host.setDriverOverride(GPU, '');
    }, RangeError);
    assertPcibackError(
      () => {
        host.setDriverOverride(MISSING, 'pciback');
      },
      'NO_SUCH_DEVICE',
      /no such PCI device/,
    );
  });
  withHost(
    (host) => {
      assertPcibackError(
        () => {
          host.setDriverOverride(GPU, 'pciback');
        },
        'HOST_IO',
        /no driver_override \(Linux 3\.16/,
      );
    },
    { kernel: { driverOverrideFile: false } },
  );
});

test('bind() writes drivers/<driver>/bind and checks the device got the driver', () => {
  withHost((host, sysfs) => {
    host.setDriverOverride(GPU, 'pci-stub');
    host.bind(GPU, 'pci-stub');
    assert.equal(host.info(GPU)?.driver, 'pci-stub');
    assert.deepEqual(targets(sysfs).at(-1), ['bus/pci/drivers/pci-stub/bind', GPU.toString()]);
    sysfs.clearWriteLog();
    host.bind(GPU, 'pci-stub');
    assert.deepEqual(sysfs.writeLog(), [], 'already bound there: nothing to do');
  });
});

test('bind() refuses an unknown address, an unknown driver and a device bound elsewhere', () => {
  withHost((host, sysfs) => {
    assertPcibackError(
      () => {
        host.bind(MISSING, 'pciback');
      },
      'NO_SUCH_DEVICE',
      /^Cannot bind "0000:09:00\.0" to driver "pciback": no such PCI device/,
    );
    assertPcibackError(
      () => {
        host.bind(GPU, 'nvme');
      },
      'NO_SUCH_DRIVER',
      /no such driver .*: load its module \("modprobe nvme"\)/,
    );
    assertPcibackError(
      () => {
        host.bind(NIC, 'pciback');
      },
      'DEVICE_BUSY',
      /it is bound to driver "igb": unbind it first/,
    );
    assert.deepEqual(sysfs.writeLog(), []);
    assert.throws(() => {
      host.bind(GPU, 'a/b');
    }, RangeError);
  });
  withHost(
    (host) => {
      assertPcibackError(
        () => {
          host.bind(GPU, 'pciback');
        },
        'NO_SUCH_DRIVER',
        /modprobe xen-pciback/,
      );
    },
    { drivers: [] },
  );
});

test('bind() explains a driver that does not match (ENODEV) and a probe that fails', () => {
  withHost((host, sysfs) => {
    assert.throws(
      () => {
        host.bind(GPU, 'pci-stub');
      },
      (err: unknown) => {
        assert.ok(isPcibackError(err, 'HOST_IO'));
        assert.match(
          err.message,
          /the driver does not accept it \(ENODEV\): its ID is not in the driver's table and its driver_override is not "pci-stub"/,
        );
        assert.ok(isSysfsError(err.cause, 'ENODEV'));
        return true;
      },
    );
    assertPcibackError(
      () => {
        host.bind(GPU, 'pciback');
      },
      'HOST_IO',
      /not on pciback's slot list/,
    );
    host.setDriverOverride(STUCK, 'vfio-pci');
    assertPcibackError(
      () => {
        host.bind(STUCK, 'vfio-pci');
      },
      'HOST_IO',
      /the driver's probe failed: cannot write .*invalid argument \(EINVAL\)/,
    );
    assert.equal(sysfs.driverOf(STUCK), null);
  });
});

test('bind() maps EBUSY from the kernel to DEVICE_BUSY and EACCES to PERMISSION_DENIED', () => {
  withHost((host, sysfs) => {
    host.setDriverOverride(GPU, 'pci-stub');
    const remove = sysfs.injectFault({ path: 'bus/pci/drivers/pci-stub/bind', errno: 'EBUSY' });
    assertPcibackError(
      () => {
        host.bind(GPU, 'pci-stub');
      },
      'DEVICE_BUSY',
      /another driver took it meanwhile/,
    );
    remove();
    sysfs.setUnprivileged(true);
    assertPcibackError(
      () => {
        host.bind(GPU, 'pci-stub');
      },
      'PERMISSION_DENIED',
      /permission denied \(EACCES\): run pciback as root/,
    );
    assertPcibackError(
      () => {
        host.unbind(NIC);
      },
      'PERMISSION_DENIED',
      /^Cannot unbind "0000:03:00\.0" from driver "igb": cannot write/,
    );
    assertPcibackError(
      () => {
        host.setDriverOverride(NIC, 'pciback');
      },
      'PERMISSION_DENIED',
      /run pciback as root/,
    );
    assertPcibackError(
      () => {
        host.probe(NIC);
      },
      'PERMISSION_DENIED',
      /run pciback as root/,
    );
  });
});

test('bind() notices a kernel that took the write but left the device unbound', () => {
  withHost((_host, sysfs) => {
    // An old kernel's bind_store returned success when the probe declined.
    const swallowing: SysfsIo = {
      root: sysfs.root,
      readText: (p) => sysfs.readText(p),
      readBytes: (p, o, l) => sysfs.readBytes(p, o, l),
      writeText: (p, t) => {
        if (!p.endsWith('/bind')) sysfs.writeText(p, t);
      },
      writeBytes: (p, o, b) => sysfs.writeBytes(p, o, b),
      readlink: (p) => sysfs.readlink(p),
      readdir: (p) => sysfs.readdir(p),
      exists: (p) => sysfs.exists(p),
      fileSizeBytes: (p) => sysfs.fileSizeBytes(p),
    };
    const host = new LinuxPciHost({ io: swallowing });
    assertPcibackError(
      () => {
        host.bind(GPU, 'pci-stub');
      },
      'HOST_IO',
      /took the request but the device has no driver: the driver's probe declined it/,
    );
  });
});

test('probe() writes drivers_probe, which honours driver_override', () => {
  withHost((host, sysfs) => {
    host.setDriverOverride(NIC, 'pciback');
    host.unbind(NIC);
    host.probe(NIC);
    assert.equal(host.info(NIC)?.driver, 'pciback');
    assert.deepEqual(targets(sysfs).at(-1), ['bus/pci/drivers_probe', NIC.toString()]);
    assertPcibackError(
      () => {
        host.probe(MISSING);
      },
      'NO_SUCH_DEVICE',
      /^Cannot probe drivers for "0000:09:00\.0"/,
    );
  });
});

test('reset() without a method uses the first that works and restores reset_method', () => {
  withHost((host, sysfs) => {
    assert.deepEqual(host.reset(NIC), { ok: true, method: 'flr' });
    assert.deepEqual(sysfs.resetLog(NIC), ['flr']);
    assert.deepEqual(sysfs.resetMethodsOf(NIC), ['flr', 'pm']);
    const dir = sysfs.deviceDir(NIC);
    assert.deepEqual(targets(sysfs), [
      [`${dir}/reset_method`, 'flr'],
      [`${dir}/reset`, '1'],
      [`${dir}/reset_method`, 'flr pm'],
    ]);
  });
});

test('reset() with a method uses it and restores the previous reset_method', () => {
  withHost((host, sysfs) => {
    assert.deepEqual(host.reset(NIC, 'pm'), { ok: true, method: 'pm' });
    assert.deepEqual(sysfs.resetLog(NIC), ['pm']);
    assert.deepEqual(sysfs.resetMethodsOf(NIC), ['flr', 'pm']);
  });
});

test('reset() falls through a method the kernel answers ENOTTY to, and reports when all fail', () => {
  withHost(
    (host, sysfs) => {
      assert.deepEqual(host.reset(NIC), { ok: true, method: 'pm' });
      assert.deepEqual(sysfs.resetMethodsOf(NIC), ['flr', 'pm']);
    },
    {
      functions: machine().map((s) =>
        s.address === M.NIC ? { ...s, resetErrors: { flr: 'ENOTTY' } } : s,
      ),
    },
  );
  withHost(
    (host, sysfs) => {
      const outcome = host.reset(NIC);
      assert.equal(outcome.ok, false);
      assert.match(
        outcome.reason,
        /^Cannot reset "0000:03:00\.0": flr: the kernel could not reset it with this method \(ENOTTY\); pm: the reset failed: input\/output error \(EIO\)$/,
      );
      assert.deepEqual(sysfs.resetMethodsOf(NIC), ['flr', 'pm'], 'restored after a failure too');
    },
    {
      functions: machine().map((s) =>
        s.address === M.NIC ? { ...s, resetErrors: { flr: 'ENOTTY', pm: 'EIO' } } : s,
      ),
    },
  );
});

test('reset() of a method the device lacks fails with the reason and leaves reset_method alone', () => {
  withHost((host, sysfs) => {
    const outcome = host.reset(GPU, 'flr');
    assert.deepEqual(outcome, {
      ok: false,
      reason:
        'Cannot reset "0000:00:02.0": flr: the device does not support it (the kernel offers: pm)',
    });
    assert.deepEqual(sysfs.resetMethodsOf(GPU), ['pm']);
    assert.deepEqual(sysfs.resetLog(GPU), []);
    assert.deepEqual(
      sysfs.writeLog().map((w) => w.errno),
      ['EINVAL'],
    );
  });
});

test('reset() of a function without a reset file is "not resettable" with the reason', () => {
  withHost((host, sysfs) => {
    const outcome = host.reset(STUCK);
    assert.equal(outcome.ok, false);
    assert.match(
      outcome.reason,
      /"0000:00:03\.0" is not resettable: the kernel found no reset method .*no "reset" file/,
    );
    assert.deepEqual(sysfs.writeLog(), []);
    assertPcibackError(
      () => host.reset(MISSING),
      'NO_SUCH_DEVICE',
      /^Cannot reset "0000:09:00\.0": no such PCI device/,
    );
  });
});

test('reset() with every method disabled says so', () => {
  withHost((host, sysfs) => {
    sysfs.writeText(`bus/pci/devices/${GPU.toString()}/reset_method`, '\n');
    const outcome = host.reset(GPU);
    assert.equal(outcome.ok, false);
    assert.match(outcome.reason, /every reset method is disabled/);
    assert.deepEqual(sysfs.resetLog(GPU), []);
    // A chosen method is still tried, and the empty list written back as a lone newline.
    assert.deepEqual(host.reset(GPU, 'pm'), { ok: true, method: 'pm' });
    assert.deepEqual(sysfs.resetMethodsOf(GPU), []);
    assert.equal(sysfs.writeLog().at(-1)?.text, '\n');
  });
});

test('reset() throws PERMISSION_DENIED without privileges, and HOST_IO when it cannot restore', () => {
  withHost(
    (host) => {
      assertPcibackError(
        () => host.reset(NIC, 'flr'),
        'PERMISSION_DENIED',
        /^Cannot reset "0000:03:00\.0": cannot write .*reset_method": permission denied/,
      );
    },
    { unprivileged: true },
  );
  withHost((host, sysfs) => {
    sysfs.injectFault({ path: /reset_method$/, errno: 'EIO', operations: ['write'], skip: 1 });
    assertPcibackError(
      () => host.reset(NIC, 'pm'),
      'HOST_IO',
      /^Cannot restore the reset methods of "0000:03:00\.0" to "flr pm" after a reset: cannot write/,
    );
    assert.deepEqual(sysfs.resetLog(NIC), ['pm'], 'the reset itself happened');
  });
});

test('reset() on a kernel without reset_method cannot choose, and guesses the method it used', () => {
  withHost(
    (host, sysfs) => {
      const chosen = host.reset(NIC, 'pm');
      assert.equal(chosen.ok, false);
      assert.match(chosen.reason, /no "reset_method" file to choose one \(Linux before 5\.15\)/);
      assert.deepEqual(host.reset(NIC), { ok: true, method: 'flr' });
      assert.deepEqual(host.reset(GPU), { ok: true, method: 'pm' });
      assert.deepEqual(sysfs.resetLog(NIC), ['flr']);
      assert.deepEqual(
        sysfs.writeLog().map((w) => w.target.split('/').at(-1)),
        ['reset', 'reset'],
      );
    },
    { kernel: { resetMethodFile: false } },
  );
});

test('a read-only host refuses every change with PERMISSION_DENIED and writes nothing', () => {
  withHost((_host, sysfs) => {
    const host = new LinuxPciHost({ io: sysfs, readOnly: true });
    assert.equal(host.list().length, 7);
    assertPcibackError(
      () => {
        host.unbind(NIC);
      },
      'PERMISSION_DENIED',
      /read-only \(EROFS\): this sysfs view was opened read-only/,
    );
    assertPcibackError(() => host.reset(NIC, 'flr'), 'PERMISSION_DENIED', /EROFS/);
    assert.equal(host.open(GPU).writeConfig(4, 2, 0), -30);
    assert.deepEqual(sysfs.writeLog(), []);
    assert.equal(sysfs.driverOf(NIC), 'igb');
  });
});

test('consumers(): interfaces that are up, block devices mounted or held; idle ones found but not busy', () => {
  const functions = machine().map((fn) =>
    fn.address === M.NIC
      ? {
          ...fn,
          consumers: {
            net: [
              { name: 'eth0', up: true },
              { name: 'eth1', up: false },
            ],
          },
        }
      : fn.address === M.GPU
        ? {
            ...fn,
            consumers: {
              block: [
                { name: 'nvme0n1', dev: '259:0', holders: ['dm-0'] },
                { name: 'nvme0n1p2', dev: '259:2', mountedOn: '/srv' },
                { name: 'nvme0n1p3', dev: '259:3' },
              ],
            },
          }
        : fn,
  );
  const sysfs = FakeSysfs.create({ functions, drivers: ['pciback'] });
  try {
    const host = new LinuxPciHost({ io: sysfs, mountinfo: () => sysfs.mountinfo() });
    assert.deepEqual(host.consumers(NIC), {
      found: ['network interface "eth0"', 'network interface "eth1"'],
      busy: ['network interface "eth0" is up'],
    });
    assert.deepEqual(host.consumers(GPU), {
      found: ['block device "nvme0n1"', 'block device "nvme0n1p2"', 'block device "nvme0n1p3"'],
      busy: [
        'block device "nvme0n1" is held by dm-0',
        'block device "nvme0n1p2" is mounted on /srv',
      ],
    });
    assert.deepEqual(host.consumers(PORT), { found: [], busy: [] });
    assert.equal(host.consumers(MISSING), undefined);
    // Without mountinfo, a mount cannot be seen; holders still can.
    assert.deepEqual(new LinuxPciHost({ io: sysfs }).consumers(GPU)?.busy, [
      'block device "nvme0n1" is held by dm-0',
    ]);
  } finally {
    sysfs.dispose();
  }
});
