// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PciAddress, PciAddressError } from '../pci/index.js';
import {
  PCI_FUNC_WILDCARD,
  PCI_SPEC_DEFAULTS,
  PCI_SPEC_KEYS,
  PciSpecError,
  formatBdf,
  formatPciSpec,
  formatVdev,
  parsePciSpec,
  pciSpecToJson,
  type PciSpec,
  type PciSpecBdf,
  type PciSpecCommon,
  type PciSpecDefaults,
  type PciSpecErrorKind,
} from './index.js';

interface ExpectedError {
  readonly kind: PciSpecErrorKind;
  readonly position: number;
  readonly key?: string;
  readonly value?: string;
  readonly component?: string;
  readonly reason?: RegExp;
}

function assertSpecError(text: string, expected: ExpectedError): PciSpecError {
  let caught: unknown;
  try {
    parsePciSpec(text);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PciSpecError, `expected PciSpecError for ${JSON.stringify(text)}`);
  assert.ok(caught instanceof SyntaxError);
  assert.equal(caught.name, 'PciSpecError');
  assert.equal(caught.input, text);
  assert.equal(caught.kind, expected.kind, caught.message);
  assert.equal(caught.position, expected.position, caught.message);
  if (expected.key !== undefined) assert.equal(caught.key, expected.key, caught.message);
  if (expected.value !== undefined) assert.equal(caught.value, expected.value, caught.message);
  if (expected.component !== undefined) assert.equal(caught.component, expected.component);
  if (expected.reason !== undefined) assert.match(caught.reason, expected.reason);
  assert.equal(
    caught.message,
    `Cannot parse PCI spec ${JSON.stringify(text)} at position ${expected.position}: ${caught.reason}`,
  );
  assert.ok(!caught.message.includes('\n'), 'the message is one line');
  return caught;
}

function bdf(domain: number, bus: number, dev: number, func: number | '*'): PciSpecBdf {
  return { domain, bus, dev, func };
}

/** A spec with the built-in defaults and the given fields. */
function specOf(
  fields: Partial<PciSpecCommon> & ({ bdf: PciSpecBdf } | { name: string }),
): PciSpec {
  const { vdevfn = null, ...rest } = fields;
  const common = { ...PCI_SPEC_DEFAULTS, vdevfn, ...rest };
  return 'bdf' in fields
    ? { ...common, bdf: fields.bdf, name: null }
    : { ...common, bdf: null, name: fields.name };
}

// ---------------------------------------------------------------------------------------
// The man page's examples (peers.md §1.6)
// ---------------------------------------------------------------------------------------

test('parsePciSpec() refuses the three "equivalent" man-page examples alike: vslot 0x20 > 0x1f', () => {
  // xl refuses them too (peers.md §1.8): vdevfn = 0x20 << 3 does not fit a devfn.
  const errors = [
    assertSpecError('36:00.0@20,seize=1', { kind: 'invalid-value', position: 8, key: 'vslot' }),
    assertSpecError('36:00.0,vslot=20,seize=1', {
      kind: 'invalid-value',
      position: 14,
      key: 'vslot',
    }),
    assertSpecError('bdf=36:00.0,vslot=20,seize=1', {
      kind: 'invalid-value',
      position: 18,
      key: 'vslot',
    }),
  ];
  for (const err of errors) {
    assert.equal(err.value, '20');
    assert.match(err.reason, /0x20 is above the largest slot 0x1f/);
    assert.match(err.reason, /hexadecimal, so for slot 20 \(decimal\) write 14/);
  }
});

test('parsePciSpec() reads the three man-page forms alike with an in-range vslot', () => {
  const expected = specOf({ bdf: bdf(0, 0x36, 0, 0), vdevfn: 0x14 << 3, seize: true });
  for (const text of [
    '36:00.0@14,seize=1',
    '36:00.0,vslot=14,seize=1',
    'bdf=36:00.0,vslot=14,seize=1',
  ]) {
    assert.deepEqual(parsePciSpec(text), expected, text);
  }
});

test('parsePciSpec() reads the xl.1 examples "01:05.1" and "01:05.2"', () => {
  assert.deepEqual(parsePciSpec('01:05.1'), specOf({ bdf: bdf(0, 1, 5, 1) }));
  assert.deepEqual(parsePciSpec('01:05.2'), specOf({ bdf: bdf(0, 1, 5, 2) }));
});

test('parsePciSpec() accepts the space after the comma of xl.cfg\'s "sbdf_A, rdm_policy=..."', () => {
  assert.deepEqual(
    parsePciSpec('0000:03:00.0, rdm_policy=relaxed'),
    specOf({ bdf: bdf(0, 3, 0, 0), rdm_policy: 'relaxed' }),
  );
  assert.deepEqual(
    parsePciSpec('03:00.0,\t seize=1,  permissive=1, '),
    specOf({ bdf: bdf(0, 3, 0, 0), seize: true, permissive: true }),
  );
});

// ---------------------------------------------------------------------------------------
// What is accepted
// ---------------------------------------------------------------------------------------

test('parsePciSpec() reads every key', () => {
  assert.deepEqual(
    parsePciSpec(
      'bdf=0001:ff:1f.7,vslot=1f,permissive=1,msitranslate=1,seize=1,power_mgmt=1,rdm_policy=relaxed',
    ),
    {
      bdf: bdf(1, 0xff, 0x1f, 7),
      vdevfn: 0xf8,
      permissive: true,
      seize: true,
      msitranslate: true,
      power_mgmt: true,
      rdm_policy: 'relaxed',
      name: null,
    },
  );
});

test('parsePciSpec() uses the built-in defaults: flags 0, rdm_policy strict, no vslot', () => {
  const spec = parsePciSpec('03:00.0');
  assert.deepEqual(spec, specOf({ bdf: bdf(0, 3, 0, 0) }));
  assert.equal(spec.vdevfn, null);
  assert.equal(spec.rdm_policy, 'strict');
});

test('parsePciSpec() reads a name-only spec with null address fields in its JSON', () => {
  const spec = parsePciSpec('name=gpu0,vslot=4,permissive=1');
  assert.deepEqual(spec, specOf({ name: 'gpu0', vdevfn: 0x20, permissive: true }));
  assert.equal(spec.bdf, null);
  assert.deepEqual(pciSpecToJson(spec), {
    domain: null,
    bus: null,
    dev: null,
    func: null,
    vdevfn: 0x20,
    permissive: true,
    seize: false,
    msitranslate: false,
    power_mgmt: false,
    rdm_policy: 'strict',
    name: 'gpu0',
  });
});

test('pciSpecToJson() writes the keys in the documented order', () => {
  assert.deepEqual(Object.keys(pciSpecToJson(parsePciSpec('03:00.*@2'))), [
    'domain',
    'bus',
    'dev',
    'func',
    'vdevfn',
    'permissive',
    'seize',
    'msitranslate',
    'power_mgmt',
    'rdm_policy',
    'name',
  ]);
  assert.equal(pciSpecToJson(parsePciSpec('03:00.*@2')).func, '*');
});

test('parsePciSpec() reads a "*" function as every function of the slot', () => {
  assert.deepEqual(parsePciSpec('03:00.*@4').bdf, bdf(0, 3, 0, PCI_FUNC_WILDCARD));
  assert.deepEqual(parsePciSpec('bdf=0002:03:1f.*').bdf, bdf(2, 3, 0x1f, '*'));
  // A wildcard without a vslot is libxl's attach-time error, not a grammar error.
  assert.equal(parsePciSpec('03:00.*').vdevfn, null);
});

test('parsePciSpec() reads vslot as hex, with or without 0x, up to 0x1f', () => {
  assert.equal(parsePciSpec('03:00.0@0').vdevfn, 0);
  assert.equal(parsePciSpec('03:00.0@1F').vdevfn, 0xf8);
  assert.equal(parsePciSpec('03:00.0,vslot=0x1f').vdevfn, 0xf8);
  assert.equal(parsePciSpec('03:00.0,vslot=10').vdevfn, 0x10 << 3);
  assert.equal(parsePciSpec('03:00.0,vslot=0004').vdevfn, 0x20);
});

test('parsePciSpec() accepts upper-case hex and a domain in a BDF', () => {
  assert.deepEqual(parsePciSpec('ABCD:EF:1A.3').bdf, bdf(0xabcd, 0xef, 0x1a, 3));
});

test('parsePciSpec() accepts one trailing comma, as xl', () => {
  assert.deepEqual(parsePciSpec('03:00.0,'), parsePciSpec('03:00.0'));
  assert.deepEqual(parsePciSpec('03:00.0@4,'), parsePciSpec('03:00.0@4'));
  assert.deepEqual(parsePciSpec('name=x,seize=1,'), parsePciSpec('name=x,seize=1'));
});

test('parsePciSpec() accepts a name of 64 printable characters, "=" included', () => {
  const name = 'a'.repeat(62) + '=!';
  assert.equal(parsePciSpec(`name=${name}`).name, name);
});

test('parsePciSpec() applies the global defaults unless the spec sets the key', () => {
  const defaults: PciSpecDefaults = {
    permissive: true,
    seize: true,
    msitranslate: true,
    power_mgmt: true,
    rdm_policy: 'relaxed',
  };
  assert.deepEqual(parsePciSpec('03:00.0', { defaults }), {
    bdf: bdf(0, 3, 0, 0),
    vdevfn: null,
    ...defaults,
    name: null,
  });
  const overridden = parsePciSpec(
    '03:00.0,permissive=0,seize=0,msitranslate=0,power_mgmt=0,rdm_policy=strict',
    { defaults },
  );
  assert.deepEqual(overridden, specOf({ bdf: bdf(0, 3, 0, 0) }));
  assert.equal(parsePciSpec('name=a', { defaults: { seize: true } }).seize, true);
  assert.equal(parsePciSpec('name=a', { defaults: { seize: true } }).permissive, false);
});

test('parsePciSpec() refuses defaults of the wrong type with a TypeError', () => {
  const bad = { permissive: 1 } as unknown as Partial<PciSpecDefaults>;
  assert.throws(() => parsePciSpec('03:00.0', { defaults: bad }), TypeError);
  const badPolicy = { rdm_policy: 'loose' } as unknown as Partial<PciSpecDefaults>;
  assert.throws(() => parsePciSpec('03:00.0', { defaults: badPolicy }), /rdm_policy/);
});

// ---------------------------------------------------------------------------------------
// What is refused, and how the error names the part
// ---------------------------------------------------------------------------------------

test('parsePciSpec() refuses yes/no/true/false with advice instead of misreading them', () => {
  // xl's atoi() would read every one of these as 0.
  const err = assertSpecError('03:00.0,permissive=yes', {
    kind: 'invalid-value',
    position: 19,
    key: 'permissive',
    value: 'yes',
  });
  assert.match(err.reason, /not 0 or 1: write permissive=1 \(xl would read it as 0\)/);
  assertSpecError('03:00.0,seize=true', {
    kind: 'invalid-value',
    position: 14,
    key: 'seize',
    reason: /write seize=1/,
  });
  assertSpecError('03:00.0,msitranslate=no', {
    kind: 'invalid-value',
    position: 21,
    key: 'msitranslate',
    reason: /write msitranslate=0$/,
  });
  assertSpecError('03:00.0,power_mgmt=False', {
    kind: 'invalid-value',
    position: 19,
    key: 'power_mgmt',
    reason: /write power_mgmt=0$/,
  });
});

test('parsePciSpec() refuses booleans other than exactly 0 and 1', () => {
  for (const value of ['2', '01', '-1', '0x1', ' 1']) {
    assert.throws(() => parsePciSpec(`03:00.0,seize=${value}`), PciSpecError, value);
  }
  assertSpecError('03:00.0,seize=2', {
    kind: 'invalid-value',
    position: 14,
    key: 'seize',
    value: '2',
    reason: /^the value "2" of "seize" is not 0 or 1: write seize=1 or seize=0$/,
  });
});

test('parsePciSpec() refuses whitespace other than after a comma, giving its position', () => {
  assertSpecError(' 03:00.0', { kind: 'syntax', position: 0, reason: /at the start/ });
  assertSpecError('03:00.0 ,seize=1', {
    kind: 'syntax',
    position: 7,
    reason: /^unexpected whitespace after "03:00.0": spaces are allowed only right after a comma$/,
  });
  assertSpecError('03:00.0,seize =1', { kind: 'syntax', position: 13, reason: /in "seize =1"/ });
  assertSpecError('03:00.0,seize= 1', { kind: 'syntax', position: 14 });
  assertSpecError('03:00.0,seize=1 ', { kind: 'syntax', position: 15 });
  assertSpecError('03:00.0 @4', { kind: 'syntax', position: 7 });
  assertSpecError('03:00.0,\nseize=1', { kind: 'syntax', position: 8 });
});

test('parsePciSpec() names an unknown key, with a suggestion for case and dashes', () => {
  const err = assertSpecError('03:00.0,foo=1', {
    kind: 'unknown-key',
    position: 8,
    key: 'foo',
    value: '1',
  });
  assert.match(err.reason, /^unknown key "foo": the keys are bdf, vslot, .* and name$/);
  assertSpecError('03:00.0,Seize=1', {
    kind: 'unknown-key',
    position: 8,
    key: 'Seize',
    reason: /did you mean "seize"\?/,
  });
  assertSpecError('03:00.0, power-mgmt=1', {
    kind: 'unknown-key',
    position: 9,
    key: 'power-mgmt',
    reason: /did you mean "power_mgmt"\?/,
  });
});

test('parsePciSpec() refuses a key given twice, counting the positional BDF and @vslot', () => {
  assertSpecError('03:00.0,seize=1,seize=0', {
    kind: 'duplicate-key',
    position: 16,
    key: 'seize',
    value: '0',
    reason: /^"seize" is given twice: "seize=0" repeats "seize=1" at position 8$/,
  });
  assertSpecError('03:00.0,bdf=03:00.1', {
    kind: 'duplicate-key',
    position: 8,
    key: 'bdf',
    reason: /repeats the BDF "03:00.0" at position 0/,
  });
  assertSpecError('03:00.0@4,vslot=4', {
    kind: 'duplicate-key',
    position: 10,
    key: 'vslot',
    reason: /"vslot=4" repeats "@4" at position 7/,
  });
  assertSpecError('name=a,name=a', { kind: 'duplicate-key', position: 7, key: 'name' });
});

test('parsePciSpec() wants exactly one of bdf and name', () => {
  assertSpecError('name=gpu,bdf=03:00.0', {
    kind: 'device',
    position: 9,
    key: 'bdf',
    reason: /^give either a BDF or a name, not both: "bdf=03:00.0" comes after "name=gpu"/,
  });
  assertSpecError('03:00.0,name=gpu', { kind: 'device', position: 8, key: 'name' });
  assertSpecError('seize=1,vslot=3', { kind: 'device', position: 15, reason: /^no device/ });
  assertSpecError('', { kind: 'device', position: 0, reason: /empty/ });
});

test('parsePciSpec() names the BDF component that is out of range, at its position', () => {
  assertSpecError('03:00.8', {
    kind: 'invalid-value',
    position: 6,
    key: 'bdf',
    value: '03:00.8',
    component: 'function',
    reason: /^the BDF "03:00.8" has function "8" out of range 0-0x7$/,
  });
  assertSpecError('0000:03:20.0', { kind: 'invalid-value', position: 8, component: 'device' });
  assertSpecError('0000:100:00.0', { kind: 'invalid-value', position: 5, component: 'bus' });
  assertSpecError('10000:00:00.0', { kind: 'invalid-value', position: 0, component: 'domain' });
  assertSpecError('seize=1,bdf=0:03:00.9', {
    kind: 'invalid-value',
    position: 20,
    key: 'bdf',
    component: 'function',
    reason: /^the value "0:03:00.9" of "bdf" has function/,
  });
});

test('parsePciSpec() keeps the PciAddressError of a bad BDF as the cause', () => {
  const err = assertSpecError('03:00.8', { kind: 'invalid-value', position: 6 });
  assert.ok(err.cause instanceof PciAddressError);
});

test('parsePciSpec() refuses a malformed BDF or a "*" outside the function', () => {
  assertSpecError('03-00.0', { kind: 'invalid-value', position: 0, component: 'format' });
  assertSpecError('0x03:00.0', { kind: 'invalid-value', position: 0, component: 'format' });
  assertSpecError('03:*.*', {
    kind: 'invalid-value',
    position: 3,
    reason: /only the function may be "\*"/,
  });
  assertSpecError('*', { kind: 'invalid-value', position: 0 });
  assertSpecError('gpu', { kind: 'invalid-value', position: 0, reason: /or key=value$/ });
});

test('parsePciSpec() explains an item without "="', () => {
  assertSpecError('seize', { kind: 'syntax', position: 0, key: 'seize', reason: /has no value/ });
  assertSpecError('03:00.0,seize', {
    kind: 'syntax',
    position: 8,
    reason: /^key "seize" has no value: write seize=1 or seize=0$/,
  });
  assertSpecError('name=a,03:00.0', {
    kind: 'syntax',
    position: 7,
    reason: /a BDF comes first, or write bdf=03:00.0$/,
  });
  assertSpecError('03:00.0,03:00.1', { kind: 'syntax', position: 8 });
  assertSpecError('03:00.0,=1', { kind: 'syntax', position: 8, reason: /missing key/ });
});

test('parsePciSpec() refuses empty items and values', () => {
  assertSpecError(',03:00.0', { kind: 'syntax', position: 0, reason: /starts with a comma/ });
  assertSpecError(',', { kind: 'syntax', position: 0 });
  assertSpecError('03:00.0,,seize=1', { kind: 'syntax', position: 8, reason: /empty item/ });
  assertSpecError('03:00.0,, ', { kind: 'syntax', position: 8 });
  assertSpecError('03:00.0,seize=', {
    kind: 'invalid-value',
    position: 14,
    key: 'seize',
    value: '',
  });
  assertSpecError('03:00.0,name=', { kind: 'invalid-value', position: 13, key: 'name' });
});

test('parsePciSpec() refuses a bad vslot, naming it', () => {
  assertSpecError('03:00.0@', {
    kind: 'invalid-value',
    position: 8,
    key: 'vslot',
    reason: /missing virtual slot after "@"/,
  });
  assertSpecError('@4', { kind: 'syntax', position: 0, reason: /must follow a BDF/ });
  assertSpecError('03:00.0,vslot=zz', {
    kind: 'invalid-value',
    position: 14,
    key: 'vslot',
    value: 'zz',
    reason: /not a hexadecimal number/,
  });
  assertSpecError('03:00.0,vslot=-1', { kind: 'invalid-value', position: 14, key: 'vslot' });
  const big = assertSpecError('03:00.0,vslot=ff', { kind: 'invalid-value', position: 14 });
  assert.match(big.reason, /0xff is above the largest slot 0x1f; vslot is hexadecimal$/);
  assertSpecError('03:00.0,vslot=123456789abcdef', {
    kind: 'invalid-value',
    position: 14,
    reason: /"123456789abcdef" is above/,
  });
  assertSpecError('03:00.0@4@5', { kind: 'invalid-value', position: 8, key: 'vslot' });
  assertSpecError('bdf=03:00.0@04', {
    kind: 'invalid-value',
    position: 11,
    key: 'bdf',
    reason: /write bdf=03:00.0,vslot=04$/,
  });
});

test('parsePciSpec() refuses a bad rdm_policy, with a hint for case', () => {
  assertSpecError('03:00.0,rdm_policy=loose', {
    kind: 'invalid-value',
    position: 19,
    key: 'rdm_policy',
    value: 'loose',
    reason: /^the value "loose" of "rdm_policy" is not "strict" or "relaxed"$/,
  });
  assertSpecError('03:00.0,rdm_policy=Relaxed', {
    kind: 'invalid-value',
    position: 19,
    reason: /write rdm_policy=relaxed/,
  });
});

test('parsePciSpec() refuses a name libxl would refuse: too long or not isgraph', () => {
  assertSpecError(`name=${'a'.repeat(65)}`, {
    kind: 'invalid-value',
    position: 5 + 64,
    key: 'name',
    reason: /65 characters long, more than 64/,
  });
  assertSpecError('name=gpu\u00e9', { kind: 'invalid-value', position: 8, key: 'name' });
  assertSpecError('name=a\u0001b', { kind: 'invalid-value', position: 6 });
});

test('PciSpecError quotes the spec so the message stays on one line', () => {
  const err = assertSpecError('03:00.0,seize=1\n', { kind: 'syntax', position: 15 });
  assert.ok(err.message.startsWith('Cannot parse PCI spec "03:00.0,seize=1\\n" at position 15'));
});

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

test('formatPciSpec() writes the canonical form, only non-default keys by default', () => {
  assert.equal(
    formatPciSpec(parsePciSpec('3:0.0,permissive=1,vslot=4')),
    '0000:03:00.0@04,permissive=1',
  );
  assert.equal(
    formatPciSpec(
      parsePciSpec('rdm_policy=relaxed,seize=1,power_mgmt=1,bdf=1:2:3.*,msitranslate=1'),
    ),
    '0001:02:03.*,msitranslate=1,seize=1,power_mgmt=1,rdm_policy=relaxed',
  );
  assert.equal(formatPciSpec(parsePciSpec('vslot=1f,name=nic')), 'name=nic,vslot=1f');
});

test('formatPciSpec({ explicit: true }) writes every key', () => {
  assert.equal(
    formatPciSpec(parsePciSpec('name=gpu'), { explicit: true }),
    'name=gpu,permissive=0,msitranslate=0,seize=0,power_mgmt=0,rdm_policy=strict',
  );
});

test('formatPciSpec() refuses a spec object that no string could produce', () => {
  const base = specOf({ bdf: bdf(0, 3, 0, 0) });
  assert.throws(() => formatPciSpec(specOf({ bdf: bdf(0, 3, 0, 0), vdevfn: 0x100 })), RangeError);
  assert.throws(() => formatPciSpec(specOf({ bdf: bdf(0, 3, 0, 0), vdevfn: 9 })), RangeError);
  assert.throws(() => formatPciSpec(specOf({ bdf: bdf(0, 0x100, 0, 0) })), RangeError);
  assert.throws(() => formatPciSpec(specOf({ name: 'a,b' })), RangeError);
  assert.throws(() => formatPciSpec(specOf({ name: '' })), RangeError);
  const badFlag = { ...base, seize: 1 } as unknown as PciSpec;
  assert.throws(() => formatPciSpec(badFlag), TypeError);
  const both = { ...base, name: 'x' } as unknown as PciSpec;
  assert.throws(() => formatPciSpec(both), TypeError);
});

test('formatBdf() is libxl\'s %04x:%02x:%02x.%01x, with "*" for every function', () => {
  assert.equal(formatBdf(bdf(0, 3, 0, 1)), '0000:03:00.1');
  assert.equal(formatBdf(bdf(0xabcd, 0xff, 0x1f, 7)), 'abcd:ff:1f.7');
  assert.equal(formatBdf(bdf(0, 0x36, 0, '*')), '0000:36:00.*');
  assert.equal(formatBdf(PciAddress.parse('1:2:3.4')), '0001:02:03.4');
  assert.throws(() => formatBdf(bdf(0, 0, 0x20, 0)), RangeError);
});

test("formatVdev() is pciback's %04x:%02x:%02x.%02x, a two-digit function", () => {
  assert.equal(formatVdev(PciAddress.parse('0000:00:01.0')), '0000:00:01.00');
  assert.equal(formatVdev(PciAddress.parse('abcd:ff:1f.7')), 'abcd:ff:1f.07');
});

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

const arbBdf: fc.Arbitrary<PciSpecBdf> = fc.record(
  {
    domain: fc.oneof(fc.constant(0), fc.nat({ max: 0xffff })),
    bus: fc.nat({ max: 0xff }),
    dev: fc.nat({ max: 0x1f }),
    func: fc.oneof(fc.nat({ max: 7 }), fc.constant(PCI_FUNC_WILDCARD)),
  },
  { noNullPrototype: true },
);

const arbName = fc
  .array(fc.integer({ min: 0x21, max: 0x7e }), { minLength: 1, maxLength: 64 })
  .map((codes) => String.fromCharCode(...codes).replaceAll(',', '_'));

const arbDefaults: fc.Arbitrary<PciSpecDefaults> = fc.record(
  {
    permissive: fc.boolean(),
    seize: fc.boolean(),
    msitranslate: fc.boolean(),
    power_mgmt: fc.boolean(),
    rdm_policy: fc.constantFrom('strict' as const, 'relaxed' as const),
  },
  { noNullPrototype: true },
);

const arbSpec: fc.Arbitrary<PciSpec> = fc
  .tuple(fc.oneof(arbBdf, arbName), fc.option(fc.nat({ max: 0x1f }), { nil: null }), arbDefaults)
  .map(([device, vslot, flags]): PciSpec => {
    const common = { vdevfn: vslot === null ? null : vslot << 3, ...flags };
    return typeof device === 'string'
      ? { bdf: null, ...common, name: device }
      : { bdf: device, ...common, name: null };
  });

const hexCase = (text: string, upper: boolean): string =>
  upper ? text.toUpperCase() : text.toLowerCase();

test('parsePciSpec(formatPciSpec(x)) is x', () => {
  fc.assert(
    fc.property(arbSpec, (spec) => {
      assert.deepEqual(parsePciSpec(formatPciSpec(spec)), spec);
    }),
    { numRuns: 500 },
  );
});

test('parsePciSpec(formatPciSpec(x, { explicit: true })) is x whatever the defaults', () => {
  fc.assert(
    fc.property(arbSpec, arbDefaults, (spec, defaults) => {
      assert.deepEqual(parsePciSpec(formatPciSpec(spec, { explicit: true }), { defaults }), spec);
    }),
    { numRuns: 300 },
  );
});

test('every way of writing a spec (positional, @vslot, keys in any order, blanks) means the same', () => {
  fc.assert(
    fc.property(
      arbSpec,
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      fc.array(fc.constantFrom('', ' ', '\t', '  '), { minLength: 8, maxLength: 8 }),
      fc.boolean(),
      fc.array(fc.integer(), { minLength: 8, maxLength: 8 }),
      (spec, positional, atVslot, shortBdf, upper, blanks, trailing, order) => {
        const items: string[] = [];
        let first: string | null = null;
        if (spec.bdf !== null) {
          const full = formatBdf(spec.bdf);
          const bdfText = hexCase(shortBdf && spec.bdf.domain === 0 ? full.slice(5) : full, upper);
          if (positional) {
            first = bdfText;
            if (spec.vdevfn !== null && atVslot) first += `@${(spec.vdevfn >> 3).toString(16)}`;
          } else {
            items.push(`bdf=${bdfText}`);
          }
        } else {
          items.push(`name=${spec.name}`);
        }
        if (spec.vdevfn !== null && !(first?.includes('@') ?? false)) {
          items.push(`vslot=${hexCase((spec.vdevfn >> 3).toString(16), upper)}`);
        }
        for (const key of ['permissive', 'msitranslate', 'seize', 'power_mgmt'] as const) {
          items.push(`${key}=${spec[key] ? 1 : 0}`);
        }
        items.push(`rdm_policy=${spec.rdm_policy}`);
        // Keys in any order: sort by a random rank per item.
        const shuffled = items
          .map((item, i) => ({ item, rank: order[i] ?? 0 }))
          .sort((a, b) => a.rank - b.rank)
          .map(({ item }) => item);
        const all = first === null ? shuffled : [first, ...shuffled];
        const text =
          all.map((item, i) => (i === 0 ? item : (blanks[i % 8] ?? '') + item)).join(',') +
          (trailing ? ',' : '');
        assert.deepEqual(parsePciSpec(text), spec, text);
      },
    ),
    { numRuns: 500 },
  );
});

test('parsePciSpec() of arbitrary text returns a spec or throws a PciSpecError, nothing else', () => {
  const piece = fc.constantFrom(
    ...PCI_SPEC_KEYS,
    '=',
    ',',
    ', ',
    ' ',
    '@',
    ':',
    '.',
    '*',
    '0',
    '1',
    '1f',
    '20',
    '03:00.0',
    'yes',
    'strict',
    'relaxed',
    'x',
    '\n',
  );
  const soup = fc.array(piece, { maxLength: 12 }).map((p) => p.join(''));
  // Near misses of the grammar: known and unknown keys, good and bad values.
  const value = fc.constantFrom(
    '0',
    '1',
    'yes',
    '4',
    '1f',
    '20',
    'strict',
    'relaxed',
    '03:00.*',
    '',
  );
  const item = fc.oneof(
    fc.tuple(fc.constantFrom(...PCI_SPEC_KEYS, 'Seize', 'foo'), value).map(([k, v]) => `${k}=${v}`),
    fc.constantFrom('name=gpu', 'bdf=1:2.3', 'seize', ''),
  );
  const structured = fc
    .tuple(
      fc.constantFrom('', '03:00.0', '0001:ff:1f.*@1f', '03:00.8', ' 03:00.0', '03:00.0@'),
      fc.array(fc.tuple(fc.constantFrom(',', ', ', ' ,', ',,'), item), { maxLength: 5 }),
      fc.constantFrom('', ',', ' '),
    )
    .map(([head, rest, tail]) => {
      const tailItems = rest.map(([sep, it]) => sep + it).join('');
      return (head === '' ? tailItems.replace(/^[ ,]+/, '') : head + tailItems) + tail;
    });
  fc.assert(
    fc.property(fc.oneof(soup, structured), (text) => {
      let spec: PciSpec;
      try {
        spec = parsePciSpec(text);
      } catch (err) {
        assert.ok(err instanceof PciSpecError, String(err));
        assert.ok(err.position >= 0 && err.position <= text.length);
        return;
      }
      // Whatever parses has a canonical form that parses to the same spec.
      assert.deepEqual(parsePciSpec(formatPciSpec(spec)), spec);
    }),
    { numRuns: 2000 },
  );
});

test('formatBdf() of a PciAddress is its toString() and parses back', () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 0xffff }),
      fc.nat({ max: 0xff }),
      fc.nat({ max: 0xff }),
      (domain, bus, devfn) => {
        const address = PciAddress.fromDevfn(domain, bus, devfn);
        const text = formatBdf(address);
        assert.equal(text, address.toString());
        assert.match(text, /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
        assert.equal(formatBdf({ domain, bus, dev: address.device, func: address.fn }), text);
        assert.match(formatVdev(address), /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.0[0-7]$/);
        assert.ok(PciAddress.parse(text).equals(address));
      },
    ),
  );
});
