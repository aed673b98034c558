// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from '../../abi/pci-regs.js';
import { ConfigSpace } from '../../pci/config-space.js';
import { PciAddress } from '../../pci/address.js';
import { FakeSysfs, type FakeSysfsOptions } from './fake-sysfs.js';
import { isSysfsError } from './sysfs-io.js';
import { GPU, NIC, NIC1, PORT, STUCK, VF, machine } from './test-machine.js';

function withFake(run: (sysfs: FakeSysfs) => void, options: Partial<FakeSysfsOptions> = {}): void {
  const sysfs = FakeSysfs.create({
    functions: machine(),
    drivers: ['pciback', 'vfio-pci', 'pci-stub'],
    ...options,
  });
  try {
    run(sysfs);
  } finally {
    sysfs.dispose();
  }
}

const dev = (bdf: string, attribute: string): string => `bus/pci/devices/${bdf}/${attribute}`;
const drv = (name: string, attribute: string): string => `bus/pci/drivers/${name}/${attribute}`;

function assertErrno(fn: () => unknown, errno: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSysfsError(err), `expected a SysfsError, got ${String(err)}`);
    assert.equal(err.errno, errno);
    return true;
  });
}

test('FakeSysfs nests functions behind their bridges and links bus/pci/devices into the tree', () => {
  withFake((sysfs) => {
    const real = (path: string): string =>
      relative(realpathSync(sysfs.root), realpathSync(join(sysfs.root, path)));
    assert.equal(real(`bus/pci/devices/${NIC}`), `devices/pci0000:00/${PORT}/${NIC}`);
    assert.equal(
      real(`bus/pci/devices/${VF}`),
      `devices/pci0000:00/${PORT}/${VF}`,
      'a VF sits beside its PF',
    );
    assert.equal(real(`bus/pci/devices/${GPU}`), `devices/pci0000:00/${GPU}`);
    assert.ok(lstatSync(join(sysfs.root, `bus/pci/devices/${NIC}`)).isSymbolicLink());
    assert.equal(
      readlinkSync(join(sysfs.root, `bus/pci/devices/${GPU}`)),
      `../../../devices/pci0000:00/${GPU}`,
    );
    assert.equal(real(dev(NIC, 'driver')), 'bus/pci/drivers/igb');
    assert.equal(real(drv('igb', NIC)), `devices/pci0000:00/${PORT}/${NIC}`);
    assert.equal(real(dev(NIC, 'iommu_group')), 'kernel/iommu_groups/7');
    assert.equal(
      real(`kernel/iommu_groups/7/devices/${NIC1}`),
      `devices/pci0000:00/${PORT}/${NIC1}`,
    );
    assert.equal(real(dev(VF, 'physfn')), `devices/pci0000:00/${PORT}/${NIC}`);
    assert.equal(real(dev(NIC, 'virtfn0')), `devices/pci0000:00/${PORT}/${VF}`);
    assert.equal(sysfs.deviceDir(NIC), `devices/pci0000:00/${PORT}/${NIC}`);
  });
});

test('FakeSysfs writes the attributes as the kernel prints them', () => {
  withFake((sysfs) => {
    assert.equal(sysfs.readText(dev(NIC, 'vendor')), '0x8086\n');
    assert.equal(sysfs.readText(dev(NIC, 'device')), '0x10c9\n');
    assert.equal(sysfs.readText(dev(NIC, 'subsystem_device')), '0xa03c\n');
    assert.equal(sysfs.readText(dev(NIC, 'class')), '0x020000\n');
    assert.equal(sysfs.readText(dev(NIC, 'irq')), '16\n');
    assert.equal(sysfs.readText(dev(NIC, 'enable')), '1\n', 'igb enabled it');
    assert.equal(sysfs.readText(dev(GPU, 'enable')), '0\n');
    assert.equal(sysfs.readText(dev(NIC, 'driver_override')), '(null)\n');
    assert.equal(sysfs.readText(dev(NIC, 'reset_method')), 'flr pm\n');
    assert.equal(sysfs.readText(dev(GPU, 'reset_method')), 'pm\n');
    assert.equal(sysfs.exists(dev(STUCK, 'reset')), false, 'no reset file without a method');
    assert.equal(sysfs.exists(dev(STUCK, 'reset_method')), false);
    assert.equal(sysfs.fileSizeBytes(dev(NIC, 'config')), 4096);
    assert.equal(sysfs.fileSizeBytes(dev(GPU, 'config')), 256);
    const lines = sysfs.readText(dev(NIC, 'resource')).trimEnd().split('\n');
    assert.equal(lines.length, 7);
    assert.match(
      lines[0] ?? '',
      /^0x00000000e00[0-9a-f]{5} 0x00000000e00[0-9a-f]{5} 0x0000000000040200$/,
    );
    assert.equal(sysfs.readText(dev(PORT, 'resource')).trimEnd().split('\n').length, 11);
    assert.equal(sysfs.readText(drv('pciback', 'slots')), '');
  });
});

test('FakeSysfs can look like an old kernel without reset_method and driver_override', () => {
  withFake(
    (sysfs) => {
      assert.equal(sysfs.exists(dev(NIC, 'reset')), true);
      assert.equal(sysfs.exists(dev(NIC, 'reset_method')), false);
      assert.equal(sysfs.exists(dev(NIC, 'driver_override')), false);
    },
    { kernel: { resetMethodFile: false, driverOverrideFile: false } },
  );
});

test('bind refuses an unknown address with ENODEV', () => {
  withFake((sysfs) => {
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), '0000:09:00.0');
    }, 'ENODEV');
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), '03:00.0');
    }, 'ENODEV');
  });
});

test('bind refuses a driver that does not match unless driver_override or new_id allows it', () => {
  withFake((sysfs) => {
    sysfs.writeText(dev(GPU, 'driver_override'), 'nouveau');
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), GPU);
    }, 'ENODEV');
    sysfs.writeText(dev(GPU, 'driver_override'), '\n');
    assert.equal(sysfs.readText(dev(GPU, 'driver_override')), '(null)\n');
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), GPU);
    }, 'ENODEV');
    sysfs.writeText(dev(GPU, 'driver_override'), 'pci-stub');
    sysfs.writeText(drv('pci-stub', 'bind'), `${GPU}\n`);
    assert.equal(sysfs.driverOf(GPU), 'pci-stub');
    assert.equal(
      readlinkSync(join(sysfs.root, dev(GPU, 'driver'))),
      '../../../bus/pci/drivers/pci-stub',
    );
  });
});

test('bind while bound fails with EBUSY and leaves the driver link', () => {
  withFake((sysfs) => {
    sysfs.writeText(dev(NIC, 'driver_override'), 'pci-stub');
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), NIC);
    }, 'EBUSY');
    assert.equal(sysfs.driverOf(NIC), 'igb');
  });
});

test('a driver probe can refuse: vfio-pci needs an IOMMU group, pciback a normal or bridge header', () => {
  withFake((sysfs) => {
    sysfs.writeText(dev(STUCK, 'driver_override'), 'vfio-pci');
    assertErrno(() => {
      sysfs.writeText(drv('vfio-pci', 'bind'), STUCK);
    }, 'EINVAL');
    sysfs.writeText(dev(GPU, 'driver_override'), 'vfio-pci');
    sysfs.writeText(drv('vfio-pci', 'bind'), GPU);
    assert.equal(sysfs.driverOf(GPU), 'vfio-pci');
  });
});

test('pciback takes a function on its slot list, or behind a listed bridge, or by override', () => {
  withFake((sysfs) => {
    assertErrno(() => {
      sysfs.writeText(drv('pciback', 'bind'), GPU);
    }, 'ENODEV');
    sysfs.writeText(drv('pciback', 'new_slot'), GPU);
    sysfs.writeText(drv('pciback', 'new_slot'), GPU);
    assert.equal(sysfs.readText(drv('pciback', 'slots')), `${GPU}\n`, 'no duplicate entries');
    sysfs.writeText(drv('pciback', 'bind'), GPU);
    assert.equal(sysfs.driverOf(GPU), 'pciback');

    sysfs.writeText(drv('pciback', 'new_slot'), PORT);
    sysfs.writeText(drv('igb', 'unbind'), NIC1);
    sysfs.writeText(drv('pciback', 'bind'), NIC1);
    assert.equal(sysfs.driverOf(NIC1), 'pciback', 'its root port is on the list');

    sysfs.writeText(drv('pciback', 'remove_slot'), GPU);
    assertErrno(() => {
      sysfs.writeText(drv('pciback', 'remove_slot'), GPU);
    }, 'ENOENT');
    assertErrno(() => {
      sysfs.writeText(drv('pciback', 'new_slot'), 'nonsense');
    }, 'EINVAL');
    assert.deepEqual(sysfs.slots(), [PORT], 'a function taken through its bridge is not added');
  });
});

test("unbind removes the driver link and fails with ENODEV for another driver's device", () => {
  withFake((sysfs) => {
    assertErrno(() => {
      sysfs.writeText(drv('pciback', 'unbind'), NIC);
    }, 'ENODEV');
    assertErrno(() => {
      sysfs.writeText(drv('igb', 'unbind'), '0000:09:00.0');
    }, 'ENODEV');
    sysfs.writeText(dev(NIC, 'driver/unbind'), NIC);
    assert.equal(sysfs.driverOf(NIC), null);
    assert.equal(sysfs.exists(dev(NIC, 'driver')), false);
    assert.equal(sysfs.exists(drv('igb', NIC)), false);
    assert.equal(sysfs.enableCount(NIC), 0, "igb's remove disabled it");
    const log = sysfs.writeLog();
    assert.equal(
      log.at(-1)?.target,
      'bus/pci/drivers/igb/unbind',
      'the driver link resolves to the driver',
    );
  });
});

test('drivers_probe honours driver_override, else gives the function back to a matching driver', () => {
  withFake((sysfs) => {
    sysfs.writeText(drv('igb', 'unbind'), NIC);
    sysfs.writeText(dev(NIC, 'driver_override'), 'pciback');
    sysfs.writeText('bus/pci/drivers_probe', NIC);
    assert.equal(sysfs.driverOf(NIC), 'pciback');
    assert.deepEqual(sysfs.slots(), [NIC], 'pciback adds a function it took by override');

    sysfs.writeText(drv('pciback', 'unbind'), NIC);
    sysfs.writeText(dev(NIC, 'driver_override'), '');
    sysfs.writeText('bus/pci/drivers_probe', NIC);
    // pciback still lists it, and comes first in registration order.
    assert.equal(sysfs.driverOf(NIC), 'pciback');
    sysfs.writeText(drv('pciback', 'unbind'), NIC);
    sysfs.writeText(drv('pciback', 'remove_slot'), NIC);
    sysfs.writeText('bus/pci/drivers_probe', NIC);
    assert.equal(sysfs.driverOf(NIC), 'igb');

    sysfs.writeText('bus/pci/drivers_probe', GPU);
    assert.equal(sysfs.driverOf(GPU), null, 'no driver matches: still a success');
    assertErrno(() => {
      sysfs.writeText('bus/pci/drivers_probe', '0000:09:00.0');
    }, 'ENODEV');
  });
});

test('new_id binds every unbound matching function; EEXIST, EINVAL and remove_id ENODEV', () => {
  withFake((sysfs) => {
    sysfs.writeText(drv('igb', 'unbind'), NIC);
    sysfs.writeText(drv('igb', 'unbind'), NIC1);
    sysfs.writeText(drv('pci-stub', 'new_id'), '8086 10c9');
    assert.equal(sysfs.driverOf(NIC), 'pci-stub');
    assert.equal(sysfs.driverOf(NIC1), 'pci-stub');
    assert.deepEqual(sysfs.dynamicIds('pci-stub'), [{ vendor: 0x8086, device: 0x10c9 }]);
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'new_id'), '8086 10c9');
    }, 'EEXIST');
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'new_id'), '8086');
    }, 'EINVAL');
    assertErrno(() => {
      sysfs.writeText(drv('pciback', 'new_id'), '1234 5678');
    }, 'EEXIST');
    sysfs.writeText(drv('pci-stub', 'remove_id'), '8086 10c9');
    assert.deepEqual(sysfs.dynamicIds('pci-stub'), []);
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'remove_id'), '8086 10c9');
    }, 'ENODEV');
    assert.equal(sysfs.driverOf(NIC), 'pci-stub', 'remove_id does not unbind');
  });
});

test('enable counts, refuses while a driver is bound and turns decode on and MASTER off', () => {
  withFake((sysfs) => {
    const command = (): number => new ConfigSpace(sysfs.configBytes(GPU)).command;
    assertErrno(() => {
      sysfs.writeText(dev(NIC, 'enable'), '1');
    }, 'EBUSY');
    assertErrno(() => {
      sysfs.writeText(dev(GPU, 'enable'), '0');
    }, 'EIO');
    assertErrno(() => {
      sysfs.writeText(dev(GPU, 'enable'), 'yes');
    }, 'EINVAL');
    sysfs.writeText(dev(GPU, 'enable'), '1\n');
    sysfs.writeText(dev(GPU, 'enable'), '1');
    assert.equal(sysfs.readText(dev(GPU, 'enable')), '2\n');
    assert.equal(command() & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);
    sysfs.writeBytes(
      dev(GPU, 'config'),
      4,
      Uint8Array.of(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 0),
    );
    sysfs.writeText(dev(GPU, 'enable'), '0');
    assert.equal(command() & PCI_COMMAND_MASTER, PCI_COMMAND_MASTER);
    sysfs.writeText(dev(GPU, 'enable'), '0');
    assert.equal(sysfs.enableCount(GPU), 0);
    assert.equal(command() & PCI_COMMAND_MASTER, 0, 'the last disable clears MASTER');
    assert.equal(command() & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY, 'decode stays on');
  });
});

test('reset fails with ENOTTY when reset_method is empty, and uses the methods in order', () => {
  withFake(
    (sysfs) => {
      assertErrno(() => {
        sysfs.writeText(dev(NIC, 'reset'), '2');
      }, 'EINVAL');
      sysfs.writeText(dev(NIC, 'reset'), '1');
      assert.deepEqual(sysfs.resetLog(NIC), ['pm'], 'flr answers ENOTTY, pm is next');
      sysfs.writeText(dev(NIC, 'reset_method'), 'flr');
      assertErrno(() => {
        sysfs.writeText(dev(NIC, 'reset'), '1');
      }, 'ENOTTY');
      sysfs.writeText(dev(NIC, 'reset_method'), '\n');
      assert.equal(sysfs.readText(dev(NIC, 'reset_method')), '');
      assertErrno(() => {
        sysfs.writeText(dev(NIC, 'reset'), '1');
      }, 'ENOTTY');
      sysfs.writeText(dev(NIC, 'reset_method'), 'default');
      assert.deepEqual(sysfs.resetMethodsOf(NIC), ['flr', 'pm']);
      assert.deepEqual(sysfs.resetLog(NIC), ['pm']);
    },
    {
      functions: machine().map((spec) =>
        spec.address === NIC ? { ...spec, resetErrors: { flr: 'ENOTTY' } } : spec,
      ),
    },
  );
});

test('reset_method refuses a method the function does not support with EINVAL', () => {
  withFake((sysfs) => {
    assertErrno(() => {
      sysfs.writeText(dev(GPU, 'reset_method'), 'flr');
    }, 'EINVAL');
    assertErrno(() => {
      sysfs.writeText(dev(GPU, 'reset_method'), 'pm warp');
    }, 'EINVAL');
    assert.deepEqual(sysfs.resetMethodsOf(GPU), ['pm'], 'unchanged after a refused write');
    sysfs.writeText(dev(GPU, 'reset'), '1');
    assert.deepEqual(sysfs.resetLog(GPU), ['pm']);
    assertErrno(() => {
      sysfs.writeText(dev(STUCK, 'reset'), '1');
    }, 'ENOENT');
  });
});

test('config writes keep read-only bits and stop at the end of the config space', () => {
  withFake((sysfs) => {
    const before = sysfs.configBytes(GPU);
    assert.equal(sysfs.writeBytes(dev(GPU, 'config'), 0, Uint8Array.of(0, 0, 0, 0)), 4);
    assert.deepEqual(sysfs.configBytes(GPU).subarray(0, 4), before.subarray(0, 4));
    sysfs.writeBytes(dev(GPU, 'config'), 0x10, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    assert.equal(new ConfigSpace(sysfs.configBytes(GPU)).bar(0), 0xff000000, '16 MiB BAR sizes');
    assert.equal(sysfs.writeBytes(dev(GPU, 'config'), 254, Uint8Array.of(1, 2, 3, 4)), 2);
    assert.equal(sysfs.writeBytes(dev(GPU, 'config'), 256, Uint8Array.of(1)), 0);
    assert.deepEqual([...sysfs.readBytes(dev(GPU, 'config'), 0x10, 4)], [0, 0, 0, 0xff]);
  });
});

test('read-only attributes refuse writes and write-only ones refuse reads, with EACCES', () => {
  withFake((sysfs) => {
    assertErrno(() => {
      sysfs.writeText(dev(NIC, 'vendor'), '0x1234');
    }, 'EACCES');
    assertErrno(() => {
      sysfs.writeText(drv('pciback', 'slots'), NIC);
    }, 'EACCES');
    assertErrno(() => sysfs.readText(drv('pciback', 'bind')), 'EACCES');
    assertErrno(() => sysfs.readText('bus/pci/drivers_probe'), 'EACCES');
    assertErrno(() => sysfs.readText(dev(NIC, 'reset')), 'EACCES');
    assertErrno(() => {
      sysfs.writeText(dev(NIC, 'no_such_attribute'), '1');
    }, 'ENOENT');
    assertErrno(() => {
      sysfs.writeText('bus/pci/drivers/nvme/bind', NIC);
    }, 'ENOENT');
    assertErrno(() => {
      sysfs.writeText(`bus/pci/devices/${NIC}`, '1');
    }, 'EISDIR');
    assert.equal(sysfs.readText(dev(NIC, 'vendor')), '0x8086\n');
  });
});

test('FakeSysfs logs every write in order, failed ones with their errno', () => {
  withFake((sysfs) => {
    sysfs.writeText(dev(GPU, 'driver_override'), 'pci-stub');
    assert.throws(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), '0000:09:00.0');
    });
    const log = sysfs.writeLog();
    assert.deepEqual(
      log.map((w) => [w.path, w.target, w.text, w.errno]),
      [
        [
          dev(GPU, 'driver_override'),
          `devices/pci0000:00/${GPU}/driver_override`,
          'pci-stub',
          null,
        ],
        [drv('pci-stub', 'bind'), 'bus/pci/drivers/pci-stub/bind', '0000:09:00.0', 'ENODEV'],
      ],
    );
    sysfs.clearWriteLog();
    assert.deepEqual(sysfs.writeLog(), []);
  });
});

test('an unprivileged FakeSysfs answers EACCES to writes and serves 64 bytes of config', () => {
  withFake(
    (sysfs) => {
      assert.throws(
        () => {
          sysfs.writeText(drv('pci-stub', 'bind'), GPU);
        },
        (err: unknown) =>
          isSysfsError(err, 'EACCES') &&
          err.code === 'PERMISSION_DENIED' &&
          /run pciback as root/.test(err.message),
      );
      assert.equal(sysfs.readBytes(dev(NIC, 'config'), 0, 256).length, 64);
      assert.equal(sysfs.readBytes(dev(NIC, 'config'), 0x40, 4).length, 0);
      assert.equal(sysfs.writeLog()[0]?.errno, 'EACCES');
      sysfs.setUnprivileged(false);
      assert.equal(sysfs.readBytes(dev(NIC, 'config'), 0, 256).length, 256);
    },
    { unprivileged: true },
  );
});

test('injected faults hit matching operations, can skip, count down and be removed', () => {
  withFake((sysfs) => {
    const remove = sysfs.injectFault({
      path: /\/vendor$/,
      errno: 'EIO',
      operations: ['read'],
      count: 2,
      skip: 1,
    });
    assert.equal(sysfs.readText(dev(NIC, 'vendor')), '0x8086\n');
    assertErrno(() => sysfs.readText(dev(NIC, 'vendor')), 'EIO');
    assertErrno(() => sysfs.readText(dev(GPU, 'vendor')), 'EIO');
    assert.equal(sysfs.readText(dev(NIC, 'vendor')), '0x8086\n');
    remove();
    const removeWrite = sysfs.injectFault({ path: drv('pci-stub', 'bind'), errno: 'EACCES' });
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), GPU);
    }, 'EACCES');
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), GPU);
    }, 'EACCES');
    removeWrite();
    assertErrno(() => {
      sysfs.writeText(drv('pci-stub', 'bind'), GPU);
    }, 'ENODEV');
  });
});

test('FakeSysfs.create() refuses duplicate addresses, unknown parents, loops and missing configs', () => {
  const simple = { vendorId: 1, deviceId: 2, classCode: 0 };
  assert.throws(
    () =>
      FakeSysfs.create({
        functions: [
          { address: NIC, simple },
          { address: NIC, simple },
        ],
      }),
    { name: 'RangeError', message: /used twice/ },
  );
  assert.throws(() => FakeSysfs.create({ functions: [{ address: NIC, simple, parent: PORT }] }), {
    name: 'RangeError',
    message: /parent "0000:00:1c.0" is not in the tree/,
  });
  assert.throws(
    () => FakeSysfs.create({ functions: [{ address: NIC, simple, physfn: GPU }] }),
    /physfn "0000:00:02.0" is not in the tree/,
  );
  assert.throws(
    () =>
      FakeSysfs.create({
        functions: [
          { address: NIC, simple, parent: GPU },
          { address: GPU, simple, parent: NIC },
        ],
      }),
    /loop/,
  );
  assert.throws(() => FakeSysfs.create({ functions: [{ address: NIC }] }), /give its config/);
});

test('FakeSysfs inspection helpers name unknown functions and drivers', () => {
  withFake((sysfs) => {
    assert.throws(() => sysfs.driverOf('0000:09:00.0'), /not in the tree/);
    assert.throws(() => sysfs.slots('nvme'), /fake driver "nvme"/);
    assert.equal(sysfs.driverOf(PciAddress.parse(NIC)), 'igb');
    assert.equal(sysfs.driverOverrideOf(NIC), null);
  });
});

test('FakeSysfs.dispose() removes the tree', () => {
  const sysfs = FakeSysfs.create({ functions: machine() });
  const root = sysfs.root;
  assert.equal(readFileSync(join(root, dev(NIC, 'vendor')), 'utf8'), '0x8086\n');
  sysfs.dispose();
  sysfs.dispose();
  assert.throws(() => lstatSync(root), { code: 'ENOENT' });
});
