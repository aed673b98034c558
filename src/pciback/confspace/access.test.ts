// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryHostDevice } from '../../../test/support/memory-host-device.js';
import { isValidRequest, mergeValue, rawRead, rawWrite, sizeMask } from './access.js';
import { PCIBIOS } from '../../abi/pcibios.js';

test('isValidRequest() accepts sizes 1/2/4 at offsets aligned with C remainder semantics', () => {
  assert.ok(isValidRequest(0, 4));
  assert.ok(isValidRequest(-4, 4)); // -4 % 4 == 0 in C
  assert.ok(isValidRequest(-3, 1));
  assert.ok(isValidRequest(4096, 4)); // no range check
  assert.ok(!isValidRequest(-2, 4));
  assert.ok(!isValidRequest(1, 2));
  assert.ok(!isValidRequest(0, 3));
  assert.ok(!isValidRequest(0, 0));
  assert.ok(!isValidRequest(8, 8));
});

test('sizeMask() is all-ones of the size', () => {
  assert.deepEqual([sizeMask(1), sizeMask(2), sizeMask(4)], [0xff, 0xffff, 0xffffffff]);
});

test('mergeValue() shifts left for positive and right for negative byte offsets', () => {
  assert.equal(mergeValue(0xaabbccdd, 0x11, 0xff, 1), 0xaabb11dd);
  assert.equal(mergeValue(0xaabbccdd, 0x1122, 0xffff, 2), 0x1122ccdd);
  assert.equal(mergeValue(0xaabbccdd, 0x11223344, 0xffffffff, -3), 0xaabbcc11);
  assert.equal(mergeValue(0x0000, 0x8086, 0xffff, 0), 0x8086);
  // Bits shifted past bit 31 are lost, as with a C u32.
  assert.equal(mergeValue(0, 0x11223344, 0xffffffff, 1), 0x22334400);
  assert.equal(mergeValue(0xffffffff, 0, 0xff, 3), 0x00ffffff);
});

test('rawRead()/rawWrite() refuse misaligned accesses like the PCI core, before the platform', () => {
  const dev = new MemoryHostDevice({ recordReads: true });
  assert.deepEqual(rawRead(dev, 0x41, 2), { value: 0, err: PCIBIOS.BAD_REGISTER_NUMBER });
  assert.deepEqual(rawRead(dev, 0x42, 4), { value: 0, err: PCIBIOS.BAD_REGISTER_NUMBER });
  assert.equal(rawWrite(dev, 0x43, 4, 1), PCIBIOS.BAD_REGISTER_NUMBER);
  assert.deepEqual(dev.calls, []);
  assert.deepEqual(rawRead(dev, 0x41, 1), { value: 0, err: 0 });
  assert.equal(rawWrite(dev, 0x40, 2, 0x12345678), 0);
  assert.equal(dev.peek(0x40, 4), 0x5678);
});
