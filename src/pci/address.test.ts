// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PCI_BUS_MAX,
  PCI_DEVICE_MAX,
  PCI_DOMAIN_MAX,
  PCI_FUNCTION_MAX,
  PciAddress,
  PciAddressError,
  type PciAddressComponent,
} from './address.js';

function assertAddressError(fn: () => unknown, component: PciAddressComponent): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PciAddressError, `expected PciAddressError, got ${String(err)}`);
    assert.ok(err instanceof SyntaxError);
    assert.equal(err.component, component);
    assert.match(err.message, /^Invalid PCI address "/);
    return true;
  });
}

test('PciAddress.parse() reads the long form DDDD:BB:DD.F', () => {
  const a = PciAddress.parse('0001:03:1f.7');
  assert.deepEqual([a.domain, a.bus, a.device, a.fn], [1, 3, 0x1f, 7]);
});

test('PciAddress.parse() reads the short form BB:DD.F with domain 0', () => {
  const a = PciAddress.parse('2e:00.0');
  assert.deepEqual([a.domain, a.bus, a.device, a.fn], [0, 0x2e, 0, 0]);
});

test('PciAddress.parse() uses defaultDomain for the short form only', () => {
  assert.equal(PciAddress.parse('03:00.1', { defaultDomain: 2 }).domain, 2);
  assert.equal(PciAddress.parse('0005:03:00.1', { defaultDomain: 2 }).domain, 5);
});

test('PciAddress.parse() accepts upper-case hex and surrounding blanks', () => {
  assert.equal(PciAddress.parse(' 000A:FF:1F.7 \n').toString(), '000a:ff:1f.7');
});

test('PciAddress.toString() and toShortString() round-trip through parse()', () => {
  const a = new PciAddress(0xabcd, 0x12, 0x1a, 5);
  assert.equal(a.toString(), 'abcd:12:1a.5');
  assert.equal(a.toShortString(), '12:1a.5');
  assert.ok(PciAddress.parse(a.toString()).equals(a));
  assert.ok(PciAddress.parse(a.toShortString(), { defaultDomain: 0xabcd }).equals(a));
  assert.equal(JSON.stringify({ a }), '{"a":"abcd:12:1a.5"}');
});

test('PciAddress.parse() accepts every component at its limit', () => {
  const a = PciAddress.parse('ffff:ff:1f.7');
  assert.deepEqual(
    [a.domain, a.bus, a.device, a.fn],
    [PCI_DOMAIN_MAX, PCI_BUS_MAX, PCI_DEVICE_MAX, PCI_FUNCTION_MAX],
  );
});

test('PciAddress.parse() names the component that is out of range', () => {
  assertAddressError(() => PciAddress.parse('10000:00:00.0'), 'domain');
  assertAddressError(() => PciAddress.parse('0000:100:00.0'), 'bus');
  assertAddressError(() => PciAddress.parse('0000:00:20.0'), 'device');
  assertAddressError(() => PciAddress.parse('0000:00:00.8'), 'function');
  assertAddressError(() => PciAddress.parse('00:00.f'), 'function');
});

test('PciAddress.parse() rejects absurdly long components by name', () => {
  assertAddressError(() => PciAddress.parse('0000000000000:00:00.0'), 'domain');
  assertAddressError(() => PciAddress.parse('0000:0000000000001:00.0'), 'bus');
});

test('PciAddress.parse() reports a malformed string as a format error', () => {
  for (const text of [
    '',
    '0000:00:00',
    '00.0',
    '0000:00:00:0',
    'g0:00.0',
    '0000:00:00.0.1',
    '-1:00.0',
  ]) {
    assertAddressError(() => PciAddress.parse(text), 'format');
  }
});

test('the PciAddress constructor checks each component and names it', () => {
  assertAddressError(() => new PciAddress(-1, 0, 0, 0), 'domain');
  assertAddressError(() => new PciAddress(0, 256, 0, 0), 'bus');
  assertAddressError(() => new PciAddress(0, 0, 32, 0), 'device');
  assertAddressError(() => new PciAddress(0, 0, 0, 1.5), 'function');
  // The message spells the address in hex, the way addresses are always written.
  assert.throws(() => new PciAddress(0, 0x16, 0x20, 0), /"0:16:20\.0"/);
});

test('PciAddress.devfn packs device and function as (device << 3) | fn', () => {
  assert.equal(PciAddress.parse('00:1f.7').devfn, 0xff);
  assert.equal(PciAddress.parse('00:03.2').devfn, 0x1a);
  const a = PciAddress.fromDevfn(1, 2, 0x1a);
  assert.equal(a.toString(), '0001:02:03.2');
});

test('PciAddress.fromDevfn() rejects a devfn outside 0-0xff with RangeError', () => {
  assert.throws(() => PciAddress.fromDevfn(0, 0, 0x100), RangeError);
  assert.throws(() => PciAddress.fromDevfn(0, 0, -1), RangeError);
});

test('PciAddress.withFunction() keeps domain, bus and device', () => {
  const a = PciAddress.parse('0002:05:04.0').withFunction(3);
  assert.equal(a.toString(), '0002:05:04.3');
  assertAddressError(() => a.withFunction(8), 'function');
});

test('PciAddress.compare() orders by domain, then bus, then devfn', () => {
  const sorted = ['0001:00:00.0', '0000:01:00.0', '0000:00:01.0', '0000:00:00.1', '0000:00:00.0']
    .map((t) => PciAddress.parse(t))
    .sort((a, b) => a.compare(b))
    .map((a) => a.toString());
  assert.deepEqual(sorted, [
    '0000:00:00.0',
    '0000:00:00.1',
    '0000:00:01.0',
    '0000:01:00.0',
    '0001:00:00.0',
  ]);
  assert.equal(PciAddress.parse('03:00.0').compare(PciAddress.parse('0000:03:00.0')), 0);
});

test('PciAddress.equals() and key compare values, not identity', () => {
  const a = PciAddress.parse('0000:03:00.1');
  const b = PciAddress.parse('03:00.1');
  assert.notEqual(a, b);
  assert.ok(a.equals(b));
  assert.equal(a.key, b.key);
  assert.ok(!a.equals(a.withFunction(0)));
  assert.notEqual(PciAddress.parse('0001:00:00.0').key, PciAddress.parse('0000:01:00.0').key);
});
