// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PciAddress } from '../pci/address.js';
import { formatQuirkSpec, parseQuirkSpec } from './quirk.js';
import { stateError } from './test-support.js';
import { STATE_ERROR } from './types.js';

test('parseQuirkSpec() reads the sysfs quirks syntax, with or without the domain', () => {
  const a = parseQuirkSpec('0000:03:00.0-e0:2:ffff');
  assert.equal(a.address.toString(), '0000:03:00.0');
  assert.deepEqual(a.quirk, { reg: 0xe0, size: 2, mask: 0xffff });
  // The ABI document's own example (spec/pciback.md §5.9), surrounding whitespace as sysfs.
  const b = parseQuirkSpec(' 00:19.0-E0:2:FF\n');
  assert.equal(b.address.toString(), '0000:00:19.0');
  assert.deepEqual(b.quirk, { reg: 0xe0, size: 2, mask: 0xff });
});

test('parseQuirkSpec() names what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['0000:03:00.0', /expected DDDD:BB:SS.F-REG:SIZE:MASK in hex$/],
    ['0000:03:00.0-e0:2', /expected DDDD:BB:SS.F-REG:SIZE:MASK/],
    ['0000:03:00.0-e0:2:zz', /expected/],
    ['0000:03:20.0-e0:2:ff', /device 0x20 is out of range/],
    ['0000:03:00.0-1000:4:0', /reg is at most 0xfff$/],
    ['0000:03:00.0-e0:3:0', /size is 1, 2 or 4$/],
    ['0000:03:00.0-e0:1:100', /mask does not fit in size bytes$/],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseQuirkSpec(text),
      stateError(
        STATE_ERROR.invalid,
        new RegExp(`^Cannot parse quirk "${text.replace(/\./g, '\\.')}": .*${message.source}`),
      ),
      text,
    );
  }
});

test('formatQuirkSpec() writes what parseQuirkSpec() reads', () => {
  const address = PciAddress.parse('0001:0a:1f.7');
  for (const quirk of [
    { reg: 0, size: 1, mask: 0 },
    { reg: 0xfff, size: 4, mask: 0xffffffff },
    { reg: 0x3d, size: 2, mask: 0x8001 },
  ] as const) {
    const text = formatQuirkSpec(address, quirk);
    const parsed = parseQuirkSpec(text);
    assert.equal(parsed.address.toString(), '0001:0a:1f.7');
    assert.deepEqual(parsed.quirk, quirk);
  }
  assert.equal(
    formatQuirkSpec(address, { reg: 0xe0, size: 2, mask: 0xffff }),
    '0001:0a:1f.7-e0:2:ffff',
  );
});
