// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PciAddress } from '../../pci/index.js';
import { PciStubError } from './errors.js';
import {
  PciStubSlots,
  SYSFS_PAGE_SIZE_BYTES,
  pageLimited,
  parseSlotSelector,
  selectorAddress,
} from './slot-ids.js';

function isEinval(err: unknown): boolean {
  return err instanceof PciStubError && err.code === 'STUB_INVALID_ARGUMENT' && err.errno === -22;
}

describe('parseSlotSelector() (str_to_slot, spec §6.5)', () => {
  test('accepts the six forms in hex, with whitespace around (a sysfs write ends in a newline)', () => {
    const cases: [string, object][] = [
      ['0000:03:00.0', { domain: 0, bus: 3, slot: 0, func: 0 }],
      ['0001:0a:1f.7\n', { domain: 1, bus: 0x0a, slot: 0x1f, func: 7 }],
      ['0000:03:00.*', { domain: 0, bus: 3, slot: 0, func: '*' }],
      ['0000:04:*.*', { domain: 0, bus: 4, slot: '*', func: '*' }],
      ['  03:1c.2  ', { domain: 0, bus: 3, slot: 0x1c, func: 2 }],
      ['ff:00.*', { domain: 0, bus: 0xff, slot: 0, func: '*' }],
      ['05:*.*', { domain: 0, bus: 5, slot: '*', func: '*' }],
    ];
    for (const [text, want] of cases) assert.deepEqual(parseSlotSelector(text), want, text);
  });

  test('refuses anything else with -EINVAL, saying what is wrong', () => {
    const bad = [
      '',
      '03:00',
      '0000:03:00.0 junk',
      '(03:00.0)',
      '03:00.0)(04:00.0',
      '0000:03:20.0',
      '03:00.8',
      '10000:03:00.0',
      '0000:03:*.1',
      '*:00.0',
      '03.00.0',
    ];
    for (const text of bad) {
      assert.throws(() => parseSlotSelector(text), isEinval, JSON.stringify(text));
    }
    assert.throws(
      () => parseSlotSelector('0000:03:20.0'),
      (e: unknown) => e instanceof PciStubError && /slot/.test(e.message),
    );
  });

  test('selectorAddress() names one function, never a wildcard', () => {
    assert.equal(selectorAddress(parseSlotSelector('03:00.1'))?.toString(), '0000:03:00.1');
    assert.equal(selectorAddress(parseSlotSelector('03:00.*')), undefined);
    assert.equal(selectorAddress(parseSlotSelector('03:*.*')), undefined);
  });
});

describe('PciStubSlots (pcistub_device_ids)', () => {
  test('add() expands wildcards in order and never adds a duplicate', () => {
    const ids = new PciStubSlots();
    ids.add(parseSlotSelector('0000:03:00.1'));
    ids.add(parseSlotSelector('0000:03:00.*'));
    ids.add(parseSlotSelector('0000:03:00.1'));
    assert.deepEqual(
      ids.list().map((a) => a.toString()),
      ['0000:03:00.1', '0000:03:00.0', ...[2, 3, 4, 5, 6, 7].map((f) => `0000:03:00.${f}`)],
    );
    ids.add(parseSlotSelector('04:*.*'));
    assert.equal(ids.list().length, 8 + 256);
    assert.ok(ids.matches(PciAddress.parse('0000:04:1f.7')));
    assert.ok(!ids.matches(PciAddress.parse('0001:04:1f.7')));
  });

  test('remove() drops every matching entry of the domain and bus, and counts them', () => {
    const ids = new PciStubSlots();
    ids.add(parseSlotSelector('03:00.*'));
    ids.add(parseSlotSelector('03:01.0'));
    ids.add(parseSlotSelector('0001:03:00.0'));
    assert.equal(ids.remove(parseSlotSelector('03:00.3')), 1);
    assert.equal(ids.remove(parseSlotSelector('03:00.3')), 0);
    assert.equal(ids.remove(parseSlotSelector('03:*.*')), 8);
    assert.deepEqual(
      ids.list().map((a) => a.toString()),
      ['0001:03:00.0'],
    );
    ids.add(parseSlotSelector('03:00.3'));
    assert.ok(ids.matches(PciAddress.parse('0000:03:00.3')), 'can be added again');
  });

  test('format() is one %04x:%02x:%02x.%d line per entry, cut at one page', () => {
    const ids = new PciStubSlots();
    assert.equal(ids.format(), '');
    ids.add(parseSlotSelector('0a:1f.7'));
    ids.add(parseSlotSelector('0000:03:00.0'));
    assert.equal(ids.format(), '0000:0a:1f.7\n0000:03:00.0\n');
    ids.add(parseSlotSelector('05:*.*'));
    ids.add(parseSlotSelector('06:*.*'));
    const text = ids.format();
    assert.equal(text.length, SYSFS_PAGE_SIZE_BYTES - 1, '514 lines of 13 do not fit');
    assert.ok(text.startsWith('0000:0a:1f.7\n0000:03:00.0\n0000:05:00.0\n'));
  });

  test('pageLimited() keeps short text and cuts long text at 4095 characters', () => {
    assert.equal(pageLimited('abc'), 'abc');
    assert.equal(pageLimited('x'.repeat(4095)).length, 4095);
    assert.equal(pageLimited('x'.repeat(5000)).length, 4095);
  });
});
