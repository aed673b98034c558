// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPcibackError } from '../errors.js';
import { PciAddress } from '../pci/index.js';
import { FakeSysfs, LinuxPciHost } from '../platform/linux/index.js';
import { DEFAULT_MACHINE } from './machine-file.js';
import { SimHost } from './sim-host.js';
import { kernelStubAttribute, ownStubAttribute } from './stub-attributes.js';

const NVME = PciAddress.parse('0000:02:00.0');
const NIC = PciAddress.parse('0000:03:00.0');

function refusedWith(code: string, message: RegExp): (err: unknown) => boolean {
  return (err) => isPcibackError(err, code) && message.test(err.message);
}

test("ownStubAttribute: pciback's attributes on our stub, with sysfs access rules", async (t) => {
  const host = await SimHost.start(DEFAULT_MACHINE);
  t.after(() => host.close());
  const attr = (name: Parameters<typeof ownStubAttribute>[2], value?: string): string =>
    ownStubAttribute(host.pci, host.stub, name, value);

  // hide='(0000:04:00.*)' is one entry per function, as pcistub_device_id_add makes them.
  assert.match(attr('slots'), /^0000:01:00\.0\n0000:02:00\.0\n0000:03:00\.0\n0000:04:00\.0\n/);
  assert.throws(
    () => attr('new_slot'),
    refusedWith('STUB_WRITE_ONLY', /"new_slot": it is write-only/),
  );
  assert.throws(
    () => attr('slots', 'x'),
    refusedWith('STUB_READ_ONLY', /"slots": it is read-only/),
  );

  assert.equal(attr('permissive'), '');
  assert.equal(attr('permissive', '0000:02:00.0'), '');
  assert.equal(attr('permissive'), '0000:02:00.0\n');
  assert.equal(attr('quirks', '0000:02:00.0-ffc:4:ffffffff'), '');
  // §6.5's listing (one page at most): each device, then its fields; the quirk is one.
  assert.match(attr('quirks'), /^01:00\.0\n\t8086:10fb:8086:000c\n\t\t00000000:2:00000000\n/);
  assert.ok(
    host.stub
      .get(NVME)
      ?.config.fields()
      .some((f) => f.byteOffset === 0xffc && f.sizeBytes === 4 && f.mask >>> 0 === 0xffffffff),
  );
  assert.match(attr('irq_handlers'), /0000:02:00\.0/);

  // The driver core's bind/unbind: a full BDF, and unbind only what the stub holds.
  assert.throws(() => attr('bind', '2:0.0'), refusedWith('STUB_INVALID_ARGUMENT', /full address/));
  assert.equal(attr('unbind', '0000:02:00.0'), '');
  assert.equal(host.stub.get(NVME), undefined);
  assert.equal(host.pci.info(NVME)?.driver, null);
  assert.throws(
    () => attr('unbind', '0000:02:00.0'),
    refusedWith('NO_SUCH_DEVICE', /not bound to it/),
  );
  assert.equal(attr('bind', '0000:02:00.0'), '');
  assert.equal(host.pci.info(NVME)?.driver, 'pciback');
  assert.notEqual(host.stub.get(NVME), undefined);
});

test("kernelStubAttribute: the kernel pciback's files under the sysfs root, its errors named", (t) => {
  const sysfs = FakeSysfs.create({
    functions: [
      {
        address: '0000:03:00.0',
        simple: { vendorId: 0x8086, deviceId: 0x10c9, classCode: 0x020000 },
        driver: 'igb',
      },
    ],
    drivers: ['pciback'],
  });
  t.after(() => {
    sysfs.dispose();
  });
  const host = new LinuxPciHost({ io: sysfs });
  const attr = (name: Parameters<typeof kernelStubAttribute>[2], value?: string): string =>
    kernelStubAttribute(host, sysfs, name, value);

  assert.equal(attr('new_slot', '0000:03:00.0'), '');
  assert.deepEqual(sysfs.slots(), ['0000:03:00.0']);
  assert.throws(() => attr('remove_slot'), refusedWith('STUB_WRITE_ONLY', /write-only/));
  assert.throws(() => attr('bind', '0000:03:00.0'), refusedWith('DEVICE_BUSY', /igb/));
  host.unbind(NIC);
  assert.equal(attr('bind', '0000:03:00.0'), '');
  assert.equal(host.info(NIC)?.driver, 'pciback');
  assert.equal(attr('unbind', '0000:03:00.0'), '');
  assert.equal(host.info(NIC)?.driver, null);
  // A file the (fake) kernel does not have: the sysfs error, named.
  assert.throws(() => attr('permissive'), refusedWith('HOST_IO', /pciback's "permissive"/));
});
