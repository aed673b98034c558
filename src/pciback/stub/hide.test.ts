// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PciAddress } from '../../pci/index.js';
import {
  HIDE_WILDCARD,
  HideSyntaxError,
  expandHideSelector,
  expandHideSelectors,
  formatHide,
  formatHideSelector,
  hideMatches,
  hideSelectorMatches,
  parseHide,
  type HideSelector,
} from './hide.js';

function sel(domain: number, bus: number, slot: number | '*', func: number | '*'): HideSelector {
  return { domain, bus, slot, func };
}

function parseError(text: string): HideSyntaxError {
  try {
    parseHide(text);
  } catch (err) {
    assert.ok(err instanceof HideSyntaxError, `"${text}" fails with a HideSyntaxError`);
    return err;
  }
  assert.fail(`"${text}" should not parse`);
}

// ---------------------------------------------------------------------------------------
// Accepted values
// ---------------------------------------------------------------------------------------

test('parseHide() accepts the six forms of spec §6.1', () => {
  assert.deepEqual(parseHide('(0000:03:00.0)'), [sel(0, 3, 0, 0)]);
  assert.deepEqual(parseHide('(0001:04:1f.*)'), [sel(1, 4, 0x1f, '*')]);
  assert.deepEqual(parseHide('(ffff:ff:*.*)'), [sel(0xffff, 0xff, '*', '*')]);
  assert.deepEqual(parseHide('(03:00.7)'), [sel(0, 3, 0, 7)]);
  assert.deepEqual(parseHide('(04:02.*)'), [sel(0, 4, 2, '*')]);
  assert.deepEqual(parseHide('(05:*.*)'), [sel(0, 5, '*', '*')]);
});

test('parseHide() returns an empty list for the empty value', () => {
  assert.deepEqual(parseHide(''), []);
});

test('parseHide() keeps the order of the groups, as in the spec example', () => {
  assert.deepEqual(parseHide('(0000:03:00.0)(04:00.*)'), [sel(0, 3, 0, 0), sel(0, 4, 0, '*')]);
});

test('parseHide() allows whitespace around groups and before numbers, like sscanf', () => {
  assert.deepEqual(parseHide('  (0000:03:00.0)\t (04:00.*)\n'), [
    sel(0, 3, 0, 0),
    sel(0, 4, 0, '*'),
  ]);
  assert.deepEqual(parseHide('( 0000: 03:\t00. 1)'), [sel(0, 3, 0, 1)]);
});

test('parseHide() reads hex in either case, with an optional 0x prefix, as %x does', () => {
  assert.deepEqual(parseHide('(0X00aB:Fe:1F.0x7)'), [sel(0xab, 0xfe, 0x1f, 7)]);
  assert.deepEqual(parseHide('(0000003:00.0)'), [sel(0, 3, 0, 0)]);
});

test('parseHide() keeps one copy of a repeated group, the first', () => {
  assert.deepEqual(parseHide('(0000:03:00.0)(03:00.0)(0000:03:00.*)(0:3:0.0)'), [
    sel(0, 3, 0, 0),
    sel(0, 3, 0, '*'),
  ]);
});

test('parseHide() returns frozen selectors', () => {
  const list = parseHide('(03:00.0)');
  assert.ok(Object.isFrozen(list) && Object.isFrozen(list[0]));
});

// ---------------------------------------------------------------------------------------
// Errors: position, reason, suggestion for typical mistakes
// ---------------------------------------------------------------------------------------

test('a dot instead of a colon is found after the bus and corrected (xcp-ng #320)', () => {
  const err = parseError('(0000:82.0.0)');
  assert.equal(err.kind, 'syntax');
  assert.equal(err.position, 8);
  assert.equal(err.reason, 'expected ":" after the bus but found "."');
  assert.equal(err.suggestion, 'Did you mean "(0000:82:00.0)"?');
  assert.equal(err.kernelMessage, 'Error parsing pci_devs_to_hide at "(0000:82.0.0)"');
  assert.equal(err.message, 'Cannot parse hide= value at position 8: ' + err.reason);
  assert.ok(err instanceof SyntaxError);
});

test('a missing opening parenthesis is reported at the address', () => {
  const err = parseError('0000:03:00.0');
  assert.equal(err.position, 0);
  assert.match(err.reason, /every address must be in parentheses/);
  assert.equal(err.suggestion, 'Did you mean "(0000:03:00.0)"?');
});

test('a missing closing parenthesis is reported at the end', () => {
  const err = parseError('(0000:03:00.0');
  assert.equal(err.position, 13);
  assert.equal(err.reason, 'the group has no closing ")"');
  assert.equal(err.suggestion, 'Did you mean "(0000:03:00.0)"?');
  const before = parseError('(0000:03:00.0(04:00.0)');
  assert.equal(before.position, 13);
  assert.equal(before.reason, 'expected ")" before the next "("');
  assert.equal(before.suggestion, 'Did you mean "(0000:03:00.0)(0000:04:00.0)"?');
});

test('a wildcard in the bus or domain names the component', () => {
  const bus = parseError('(0000:*:*.*)');
  assert.equal(bus.position, 6);
  assert.equal(bus.component, 'bus');
  assert.match(bus.reason, /^the bus cannot be "\*"/);
  assert.match(bus.suggestion ?? '', /\(DDDD:BB:\*\.\*\)/);
  const short = parseError('(*:*.*)');
  assert.equal(short.component, 'bus');
  assert.equal(short.position, 1);
  const domain = parseError('(*:03:00.0)');
  assert.equal(domain.component, 'domain');
});

test('a wildcard slot with a fixed function is refused and widened in the suggestion', () => {
  const err = parseError('(0000:03:*.0)');
  assert.equal(err.position, 11);
  assert.equal(err.component, 'func');
  assert.match(err.reason, /^a wildcard slot needs a wildcard function/);
  assert.equal(err.suggestion, 'Did you mean "(0000:03:*.*)"?');
});

test('out-of-range components are named, with the position of the number', () => {
  const cases: [string, number, string, string][] = [
    ['(10000:03:00.0)', 1, 'domain', '0-ffff'],
    ['(0000:100:00.0)', 6, 'bus', '0-ff'],
    ['(0000:03:20.0)', 9, 'slot', '0-1f'],
    ['(0000:03:00.8)', 12, 'func', '0-7'],
    ['(03: 0x20.0)', 5, 'slot', '0-1f'],
  ];
  for (const [text, position, component, limits] of cases) {
    const err = parseError(text);
    assert.equal(err.kind, 'range', text);
    assert.equal(err.position, position, text);
    assert.equal(err.component, component, text);
    assert.ok(err.reason.includes(limits), err.reason);
  }
  assert.equal(
    parseError('(0000:03:00.8)').reason,
    'the function "8" is out of range: it must be 0-7 (hex)',
  );
});

test('a slot written in decimal gets a hex suggestion', () => {
  const err = parseError('(0000:03:31.0)');
  assert.equal(err.suggestion, 'Numbers are hex: did you mean "(0000:03:1f.0)"?');
  // A domain is not guessed: an extra digit is likelier than decimal.
  assert.equal(parseError('(10000:03:00.0)').suggestion, undefined);
});

test('a missing function is reported at the closing parenthesis', () => {
  const err = parseError('(0000:03:00)');
  assert.equal(err.position, 11);
  assert.equal(err.component, 'func');
  assert.match(err.reason, /^the function is missing/);
  assert.equal(err.suggestion, 'Did you mean "(0000:03:00.0)"?');
  assert.equal(parseError('(03:00)').suggestion, 'Did you mean "(0000:03:00.0)"?');
});

test('separators between groups are refused at the separator', () => {
  const err = parseError('(0000:03:00.0),(0000:04:00.0)');
  assert.equal(err.position, 14);
  assert.equal(err.groupPosition, 14);
  assert.equal(err.rest, ',(0000:04:00.0)');
  assert.match(err.reason, /without separators/);
  assert.equal(err.suggestion, 'Did you mean "(0000:03:00.0)(0000:04:00.0)"?');
});

test('a space before ")" is refused, as sscanf does', () => {
  const err = parseError('(0000:03:00.0 )');
  assert.equal(err.position, 13);
  assert.match(err.reason, /no space is allowed before "\)"/);
  assert.equal(err.suggestion, 'Did you mean "(0000:03:00.0)"?');
  assert.match(parseError('(0000 :03:00.0)').reason, /spaces may only come before a number/);
});

test('a pasted parameter name, quotes or brackets are explained', () => {
  const name = parseError('xen-pciback.hide=(0000:03:00.0)');
  assert.match(name.reason, /without the parameter name/);
  assert.equal(name.suggestion, 'Did you mean "(0000:03:00.0)"?');
  const quotes = parseError('"(0000:03:00.0)"');
  assert.match(quotes.reason, /quotes are not part of the value/);
  assert.equal(quotes.suggestion, 'Did you mean "(0000:03:00.0)"?');
  const brackets = parseError('[0000:03:00.0]');
  assert.match(brackets.reason, /parentheses/);
  assert.equal(brackets.suggestion, 'Did you mean "(0000:03:00.0)"?');
});

test('a colon instead of the dot before the function is found', () => {
  const err = parseError('(0000:03:00:0)');
  assert.equal(err.position, 11);
  assert.equal(err.reason, 'expected "." after the slot but found ":"');
  assert.equal(err.suggestion, 'Did you mean "(0000:03:00.0)"?');
});

test('too many parts, an empty group and junk have reasons but no guess', () => {
  const parts = parseError('(0000:03:00.0.1)');
  assert.match(parts.reason, /too many parts/);
  assert.equal(parts.suggestion, undefined);
  assert.equal(parseError('()').reason, 'the group is empty');
  const junk = parseError('(0000:03:00.0)x');
  assert.equal(junk.position, 14);
  assert.equal(junk.rest, 'x');
});

test('a value made only of whitespace is refused, as the kernel does', () => {
  const err = parseError('   ');
  assert.equal(err.groupPosition, 0);
  assert.equal(err.rest, '   ');
  assert.equal(err.suggestion, 'Leave the value empty to hide nothing.');
});

test('the kernel reports the group that failed, after the groups that parsed', () => {
  const err = parseError('(0000:03:00.0)  (04:00.9)(05:00.0)');
  assert.equal(err.groupPosition, 16);
  assert.equal(err.rest, '(04:00.9)(05:00.0)');
  assert.equal(err.kind, 'range');
});

// ---------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------

test('formatHideSelector() prints the forms hide-check lists', () => {
  assert.equal(formatHideSelector(sel(0, 3, 0, 0)), '0000:03:00.0');
  assert.equal(formatHideSelector(sel(0, 4, 0, '*')), '0000:04:00.*');
  assert.equal(formatHideSelector(sel(0xabcd, 5, '*', '*')), 'abcd:05:*.*');
});

test('expandHideSelector() lists 1, 8 or 256 functions, slots first', () => {
  assert.deepEqual(expandHideSelector(sel(0, 3, 1, 2)).map(String), ['0000:03:01.2']);
  const slot = expandHideSelector(sel(0, 4, 2, '*'));
  assert.equal(slot.length, 8);
  assert.equal(slot[7]?.toString(), '0000:04:02.7');
  const bus = expandHideSelector(sel(1, 5, '*', '*'));
  assert.equal(bus.length, 256);
  assert.equal(bus[0]?.toString(), '0001:05:00.0');
  assert.equal(bus[9]?.toString(), '0001:05:01.1');
  assert.equal(bus[255]?.toString(), '0001:05:1f.7');
});

test('expandHideSelector() refuses a selector parseHide() cannot produce', () => {
  assert.throws(() => expandHideSelector(sel(0, 0, '*', 0)), RangeError);
  assert.throws(() => expandHideSelector(sel(0, 0x100, 0, 0)), RangeError);
  assert.throws(() => expandHideSelector(sel(0, 0, 0, 8)), RangeError);
});

test('expandHideSelectors() keeps the first copy of each function, like the id list', () => {
  const list = expandHideSelectors(parseHide('(03:00.1)(03:00.*)'));
  assert.deepEqual(
    list.map(String),
    [1, 0, 2, 3, 4, 5, 6, 7].map((f) => `0000:03:00.${f}`),
  );
});

test('hideMatches() matches exact, slot-wide and bus-wide selectors', () => {
  const list = parseHide('(0000:03:00.0)(04:00.*)(0001:05:*.*)');
  assert.ok(hideMatches(list, PciAddress.parse('0000:03:00.0')));
  assert.ok(!hideMatches(list, PciAddress.parse('0000:03:00.1')));
  assert.ok(hideMatches(list, PciAddress.parse('0000:04:00.6')));
  assert.ok(!hideMatches(list, PciAddress.parse('0000:04:01.0')));
  assert.ok(hideMatches(list, PciAddress.parse('0001:05:1f.7')));
  assert.ok(!hideMatches(list, PciAddress.parse('0000:05:00.0')));
  assert.ok(!hideSelectorMatches(sel(0, 3, 0, 0), PciAddress.parse('0000:03:00.1')));
});

const arbSelector: fc.Arbitrary<HideSelector> = fc
  .record(
    {
      domain: fc.nat({ max: 0xffff }),
      bus: fc.nat({ max: 0xff }),
      slot: fc.oneof(fc.nat({ max: 0x1f }), fc.constant(HIDE_WILDCARD)),
      func: fc.oneof(fc.nat({ max: 7 }), fc.constant(HIDE_WILDCARD)),
    },
    { noNullPrototype: true },
  )
  .map((s) => (s.slot === HIDE_WILDCARD ? { ...s, func: HIDE_WILDCARD } : s));

test('parseHide(formatHide(list)) is the list without repeats', () => {
  fc.assert(
    fc.property(fc.array(arbSelector, { maxLength: 6 }), (list) => {
      const unique = list.filter(
        (s, i) => list.findIndex((t) => formatHideSelector(t) === formatHideSelector(s)) === i,
      );
      assert.deepEqual(parseHide(formatHide(list)), unique);
    }),
  );
});

test('hideMatches() agrees with expandHideSelectors() for every address', () => {
  fc.assert(
    fc.property(
      fc.array(arbSelector, { maxLength: 4 }),
      fc.nat({ max: 0xffff }),
      fc.nat({ max: 0xff }),
      fc.nat({ max: 0xff }),
      (list, domain, bus, devfn) => {
        // Bias the address towards the selectors so that matches happen.
        const first = list[0];
        const addr = PciAddress.fromDevfn(first?.domain ?? domain, first?.bus ?? bus, devfn);
        const expanded = expandHideSelectors(list).some((a) => a.equals(addr));
        assert.equal(hideMatches(list, addr), expanded);
      },
    ),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------
// Differential test against a model of the kernel's own parser
// ---------------------------------------------------------------------------------------

// A model of lib/vsprintf.c vsscanf for the directives pcistub_init uses: whitespace,
// literals, %x (skips spaces, needs a hex digit, strips 0x, wraps to 32 bits, stored in an
// int) and %n. Written from the kernel source, independently of hide.ts.
function isspace(c: string | undefined): boolean {
  return c !== undefined && ' \t\n\v\f\r'.includes(c);
}
function isxdigit(c: string | undefined): boolean {
  return c !== undefined && /[0-9a-fA-F]/.test(c);
}
function ksscanf(str: string, fmt: string): { vals: number[]; n: number | undefined } {
  let s = 0;
  let f = 0;
  let n: number | undefined;
  const vals: number[] = [];
  while (f < fmt.length) {
    if (isspace(fmt[f])) {
      while (isspace(fmt[f])) f++;
      while (isspace(str[s])) s++;
    }
    if (f < fmt.length && fmt[f] !== '%') {
      if (fmt[f++] !== str[s++]) break;
      continue;
    }
    if (f >= fmt.length) break;
    f++;
    const conv = fmt[f++];
    if (conv === 'n') {
      n = s;
      continue;
    }
    if (s >= str.length) break;
    while (isspace(str[s])) s++;
    if (!isxdigit(str[s])) break;
    if (str[s] === '0' && (str[s + 1] === 'x' || str[s + 1] === 'X')) s += 2;
    let v = 0n;
    while (isxdigit(str[s])) {
      v = (v * 16n + BigInt(Number.parseInt(str[s] as string, 16))) & 0xffffffffffffffffn;
      s++;
    }
    vals.push(Number(BigInt.asIntN(32, v)));
  }
  return { vals, n };
}

type KernelResult =
  { ok: [number, number, number][] } | { parseErrorAt: number } | { einval: true };

function kernelIdAdd(
  ids: [number, number, number][],
  domain: number,
  bus: number,
  slot: number,
  func: number,
): boolean {
  if (slot < 0) {
    for (let s = 0; s < 32; s++) if (!kernelIdAdd(ids, domain, bus, s, func)) return false;
    return true;
  }
  if (func < 0) {
    for (let f = 0; f < 8; f++) if (!kernelIdAdd(ids, domain, bus, slot, f)) return false;
    return true;
  }
  const devfn = ((slot & 0x1f) << 3) | (func & 7);
  if (domain < 0 || domain > 0xffff || bus < 0 || bus > 0xff) return false;
  if (devfn >> 3 !== slot || (devfn & 7) !== func) return false;
  if (!ids.some(([d, b, df]) => d === domain && b === bus && df === devfn)) {
    ids.push([domain, bus, devfn]);
  }
  return true;
}

function kernelHide(str: string): KernelResult {
  const ids: [number, number, number][] = [];
  if (str.length === 0) return { ok: ids };
  let pos = 0;
  do {
    const rest = str.slice(pos);
    let domain = 0;
    let bus = 0;
    let slot = 0;
    let func = 0;
    let parsed = 0;
    const take = (r: { vals: number[]; n: number | undefined }, into: (v: number[]) => void) => {
      into(r.vals);
      if (r.n !== undefined) parsed = r.n;
      return r.vals.length;
    };
    const err = take(ksscanf(rest, ' (%x:%x:%x.%x) %n'), (v) => {
      [domain = domain, bus = bus, slot = slot, func = func] = v;
    });
    if (err === 3) {
      func = -1;
      take(ksscanf(rest, ' (%x:%x:%x.*) %n'), (v) => {
        [domain = domain, bus = bus, slot = slot] = v;
      });
    } else if (err === 2) {
      slot = func = -1;
      take(ksscanf(rest, ' (%x:%x:*.*) %n'), (v) => {
        [domain = domain, bus = bus] = v;
      });
    }
    if (parsed === 0) {
      domain = 0;
      const err2 = take(ksscanf(rest, ' (%x:%x.%x) %n'), (v) => {
        [bus = bus, slot = slot, func = func] = v;
      });
      if (err2 === 2) {
        func = -1;
        take(ksscanf(rest, ' (%x:%x.*) %n'), (v) => {
          [bus = bus, slot = slot] = v;
        });
      } else if (err2 === 1) {
        slot = func = -1;
        take(ksscanf(rest, ' (%x:*.*) %n'), (v) => {
          [bus = bus] = v;
        });
      }
    }
    if (parsed <= 0) return { parseErrorAt: pos };
    if (!kernelIdAdd(ids, domain, bus, slot, func)) return { einval: true };
    pos += parsed;
  } while (pos < str.length);
  return { ok: ids };
}

function ours(str: string): KernelResult {
  try {
    const list = expandHideSelectors(parseHide(str));
    return { ok: list.map((a) => [a.domain, a.bus, a.devfn]) };
  } catch (err) {
    assert.ok(err instanceof HideSyntaxError);
    return err.kind === 'range' ? { einval: true } : { parseErrorAt: err.groupPosition };
  }
}

const TOKENS = [
  '(',
  '(',
  ')',
  ')',
  ':',
  ':',
  '.',
  '.',
  '*',
  '*',
  ' ',
  '\t',
  ',',
  '0',
  '1',
  '3',
  '7',
  '8',
  'a',
  'F',
  '1f',
  '20',
  '0000',
  'ff',
  '0x1f',
  '0X3',
  'g',
];
const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 24 }).map((t) => t.join(''));
const num = fc.constantFrom(
  '0',
  '00',
  '3',
  '7',
  '8',
  '1f',
  '20',
  'ff',
  '100',
  '0000',
  'ffff',
  '10000',
  ' 4',
  '0x2',
  '1 ',
  '\t0',
);
const group = fc
  .tuple(
    fc.constantFrom(
      '(D:B:S.F)',
      '(D:B:S.*)',
      '(D:B:*.*)',
      '(B:S.F)',
      '(B:S.*)',
      '(B:*.*)',
      '(D:B:*.F)',
      '(B:S)',
      '(B: *.*)',
      '(D:B:S. *)',
    ),
    num,
    num,
    num,
    num,
    fc.constantFrom('', ' ', '  ', ','),
  )
  .map(
    ([form, d, b, s, f, sep]) =>
      form.replace('D', d).replace('B', b).replace('S', s).replace('F', f) + sep,
  );
const structured = fc.array(group, { maxLength: 4 }).map((g) => g.join(''));

test('parseHide() accepts and refuses exactly what the kernel does (model of pcistub_init)', () => {
  fc.assert(
    fc.property(fc.oneof(soup, structured), (str) => {
      // Documented deviation: %x wraps long numbers to 32 bits; we call them out of range.
      fc.pre(!/[0-9a-fA-F]{8,}/.test(str));
      assert.deepEqual(ours(str), kernelHide(str), JSON.stringify(str));
    }),
    { numRuns: 2000 },
  );
});

test('the kernel model itself rejects what the spec says it rejects', () => {
  // Guards the differential test against a model that accepts everything.
  assert.deepEqual(kernelHide('(0000:82.0.0)'), { parseErrorAt: 0 });
  assert.deepEqual(kernelHide('(0000:03:20.0)'), { einval: true });
  assert.deepEqual(kernelHide('(03:00.*)'), {
    ok: [0, 1, 2, 3, 4, 5, 6, 7].map((f) => [0, 3, f]),
  });
});

test('parseHide() throws only HideSyntaxError, and every "did you mean" parses', () => {
  fc.assert(
    fc.property(fc.oneof(soup, structured, fc.string({ maxLength: 30 })), (str) => {
      try {
        parseHide(str);
      } catch (err) {
        assert.ok(err instanceof HideSyntaxError, String(err));
        assert.ok(err.position >= err.groupPosition && err.position <= str.length);
        const guess = /did you mean "(.*)"\?$/.exec(err.suggestion ?? '')?.[1];
        if (guess !== undefined) assert.doesNotThrow(() => parseHide(guess), guess);
      }
    }),
    { numRuns: 1000 },
  );
});
