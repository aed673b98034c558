// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FULL_DEVICE_LAYOUT as L,
  fullTestDevice,
} from '../../../test/support/memory-host-device.js';
import { DENIED_WRITE_REASON, DeniedWriteAudit, OUT_OF_RANGE_OFFSET } from './audit.js';
import { VirtualConfigSpace } from './virtual-config-space.js';

test('DeniedWriteAudit counts per (reason, offset, size) and lists them sorted', () => {
  const audit = new DeniedWriteAudit();
  audit.record(0x40, 2, DENIED_WRITE_REASON.readOnlyField);
  audit.record(0x06, 2, DENIED_WRITE_REASON.uncovered);
  audit.record(0x06, 2, DENIED_WRITE_REASON.uncovered);
  audit.record(0x06, 1, DENIED_WRITE_REASON.uncovered);
  audit.record(0x40, 2, DENIED_WRITE_REASON.bist);
  assert.deepEqual(audit.list(), [
    { byteOffset: 0x06, sizeBytes: 1, reason: 'uncovered-register', count: 1 },
    { byteOffset: 0x06, sizeBytes: 2, reason: 'uncovered-register', count: 2 },
    { byteOffset: 0x40, sizeBytes: 2, reason: 'read-only-field', count: 1 },
    { byteOffset: 0x40, sizeBytes: 2, reason: 'bist-filtered', count: 1 },
  ]);
  assert.equal(audit.total(), 5);
  audit.clear();
  assert.deepEqual(audit.list(), []);
});

test('DeniedWriteAudit memory is bounded: offsets outside 0..0xfff share one counter', () => {
  const audit = new DeniedWriteAudit();
  for (let i = 0; i < 10_000; i++) {
    audit.record(4096 + i * 4, 4, DENIED_WRITE_REASON.uncovered);
    audit.record(-4 - i * 4, 4, DENIED_WRITE_REASON.uncovered);
  }
  assert.deepEqual(audit.list(), [
    { byteOffset: OUT_OF_RANGE_OFFSET, sizeBytes: 4, reason: 'uncovered-register', count: 20_000 },
  ]);
});

test('DeniedWriteAudit.list() returns snapshots the caller cannot use to change counts', () => {
  const audit = new DeniedWriteAudit();
  audit.record(0x10, 4, DENIED_WRITE_REASON.barWrite);
  const [first] = audit.list();
  assert.ok(first !== undefined && Object.isFrozen(first));
  audit.record(0x10, 4, DENIED_WRITE_REASON.barWrite);
  assert.equal(first.count, 1);
  assert.equal(audit.list()[0]?.count, 2);
});

const hex = (n: number): string => n.toString(16);

test('VirtualConfigSpace audits every kind of denied guest write', () => {
  const dev = fullTestDevice();
  const space = VirtualConfigSpace.create(dev, { global: { permissive: false } });
  space.write(0x06, 2, 0xffff); // uncovered
  space.write(0x3c, 1, 0x05); // interrupt line: read-only field
  space.write(0x10, 4, 0x12345670); // BAR relocation
  space.write(0x0f, 1, 0x01); // BIST other than start
  space.write(L.vpd + 2, 2, 0x8000); // VPD write
  space.write(L.pm + 4, 2, 0x0100); // PME_Enable
  space.write(L.pm + 4, 2, 0x0002); // D2: not supported -> refused
  space.write(L.msi + 2, 2, 0x0181); // MSI enable without allow_interrupt_control
  assert.deepEqual(
    space.deniedWrites().map((d) => `${hex(d.byteOffset)}/${d.sizeBytes} ${d.reason}`),
    [
      '6/2 uncovered-register',
      'f/1 bist-filtered',
      '10/4 bar-relocation',
      '3c/1 read-only-field',
      `${hex(L.pm + 4)}/2 pme-enable`,
      `${hex(L.pm + 4)}/2 power-state-refused`,
      `${hex(L.vpd + 2)}/2 vpd-write`,
      `${hex(L.msi + 2)}/2 interrupt-control`,
    ],
  );
  space.clearDeniedWrites();
  assert.deepEqual(space.deniedWrites(), []);
});
