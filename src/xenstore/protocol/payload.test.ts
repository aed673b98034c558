// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as xs from './index.js';

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const einval = (r: xs.XsParseResult<unknown>, what: string): void => {
  assert.ok(!r.ok, `${what} should be rejected`);
  assert.equal(r.error, 'EINVAL', what);
};

test('parsePathRequest() rejects the malformed onearg payloads of spec §12 case 8', () => {
  for (const p of ['/probe/a', '', '/a\0junk', '/mk\0x', '/a\0\0'])
    einval(xs.parsePathRequest(b(p)), JSON.stringify(p));
  assert.deepEqual(xs.parsePathRequest(b('/tool\0')), { ok: true, value: '/tool' });
  assert.deepEqual(xs.encodePathRequest('/tool'), b('/tool\0'));
});

test('parseWriteRequest() keeps every byte after the first NUL as the value (spec §12 case 15)', () => {
  const r = xs.parseWriteRequest(b('/t/bin\0a\0b\0'));
  assert.ok(r.ok);
  assert.equal(r.value.path, '/t/bin');
  assert.deepEqual(r.value.value, b('a\0b\0'));
  const empty = xs.parseWriteRequest(b('/t/e\0'));
  assert.ok(empty.ok && empty.value.value.length === 0);
  einval(xs.parseWriteRequest(b('/t/nonul')), 'no NUL');
  assert.deepEqual(xs.encodeWriteRequest('/t/bin', b('a\0b\0')), b('/t/bin\0a\0b\0'));
  assert.deepEqual(xs.encodeWriteRequest('/probe/a', 'hello'), b('/probe/a\0hello'));
});

test('DIRECTORY and DIRECTORY_PART payloads follow spec §3.6 and §12 case 20', () => {
  assert.deepEqual(xs.parseDirectoryReply(b('c\0a\0b\0')), { ok: true, value: ['c', 'a', 'b'] });
  assert.deepEqual(xs.parseDirectoryReply(b('')), { ok: true, value: [] });
  einval(xs.parseDirectoryReply(b('a\0b')), 'unterminated name');
  assert.deepEqual(xs.parseDirectoryPartRequest(b('/dp\x000\0')), {
    ok: true,
    value: { path: '/dp', offset: 0 },
  });
  assert.deepEqual(xs.parseDirectoryPartRequest(b('/dp\x0011\0')), {
    ok: true,
    value: { path: '/dp', offset: 11 },
  });
  assert.deepEqual(xs.parseDirectoryPartRequest(b('/dp\0junk\0')), {
    ok: true,
    value: { path: '/dp', offset: 0 },
  });
  einval(xs.parseDirectoryPartRequest(b('/dp\0')), '"/dp\\0"');
  einval(xs.parseDirectoryPartRequest(b('/dp\x000\x001\0')), 'three strings');
  assert.deepEqual(xs.encodeDirectoryPartRequest('/dp', 6), b('/dp\x006\0'));
  const cases: [string, string[], boolean][] = [
    ['8\0alpha\0beta\0\0', ['alpha', 'beta'], true],
    ['8\0beta\0\0', ['beta'], true],
    ['8\0\0', [], true],
    ['8\0alpha\0', ['alpha'], false],
  ];
  for (const [wire, names, end] of cases) {
    const r = xs.parseDirectoryPartReply(b(wire));
    assert.ok(r.ok, wire);
    assert.deepEqual([r.value.generation, r.value.names, r.value.end], ['8', names, end], wire);
    const list = xs.encodeNulStrings(names);
    assert.deepEqual(xs.encodeDirectoryPartReply(8, { list, end }), b(wire));
  }
});

test('SET_PERMS and GET_PERMS payloads follow spec §4.1 and §12 cases 22 and 27', () => {
  for (const p of [
    '/p/o\0x0\0',
    '/p/o\0',
    '/p/o\0\0',
    '/p/o\0b\0',
    '/p/o\0r5x\0',
    '/p/o',
    '/p/o\0r-\0',
    '/p/o\0r 5 \0',
  ]) {
    einval(xs.parseSetPermsRequest(b(p)), JSON.stringify(p));
  }
  const hex = xs.parseSetPermsRequest(b('/p/o\0n0\0r0x5\0'));
  assert.ok(hex.ok);
  assert.deepEqual(xs.encodeGetPermsReply(hex.value.perms), b('n0\0r5\0'));
  const oct = xs.parseSetPermsRequest(b('/p/o\0b010\0'));
  assert.ok(oct.ok && oct.value.perms[0]?.domid === 8);
  const dropped = xs.parseSetPermsRequest(b('/p/o\0n0\0r5'));
  assert.ok(dropped.ok);
  assert.deepEqual(xs.encodeGetPermsReply(dropped.value.perms), b('n0\0'));
  const set = { letter: 'n', domid: 0 } as const;
  assert.deepEqual(
    xs.encodeSetPermsRequest('/p/a', [set, { letter: 'r', domid: 5 }]),
    b('/p/a\0n0\0r5\0'),
  );
  einval(xs.parseGetPermsReply(b('n0\0r5')), 'unterminated entry');
  einval(xs.parseGetPermsReply(b('')), 'empty');
  assert.throws(() => xs.formatPermission({ letter: 'x' as 'n', domid: 0 }), RangeError);
});

test('WATCH payloads need exactly two strings (spec §12 case 33)', () => {
  assert.deepEqual(xs.parseWatch(b('/w\0tok\0')), {
    ok: true,
    value: { path: '/w', token: 'tok' },
  });
  assert.deepEqual(xs.parseWatch(b('/e\0\0')), { ok: true, value: { path: '/e', token: '' } });
  assert.deepEqual(xs.parseWatch(b('\0t\0')), { ok: true, value: { path: '', token: 't' } }); // path check is the store's
  einval(xs.parseWatch(b('/w\0')), 'one string');
  einval(xs.parseWatch(b('/w\0t\x001\0')), 'three strings');
  einval(xs.parseWatch(b('/w\0t\0junk')), 'trailing bytes');
  assert.deepEqual(xs.encodeWatch('/probe', 'tok1'), b('/probe\0tok1\0'));
});

test('transaction payloads follow spec §6.1, §11 #24 and §12 case 45', () => {
  assert.deepEqual(xs.encodeTransactionStartRequest(), b('\0'));
  assert.deepEqual(xs.encodeTransactionStartReply(1), b('1\0'));
  assert.deepEqual(xs.parseTransactionStartReply(b('4294967295\0')), {
    ok: true,
    value: 0xffffffff,
  });
  einval(xs.parseTransactionStartReply(b('0\0')), 'id 0');
  einval(xs.parseTransactionStartReply(b('1')), 'no NUL');
  assert.deepEqual(xs.parseTransactionEndRequest(b('T\0')), { ok: true, value: true });
  assert.deepEqual(xs.parseTransactionEndRequest(b('F\0')), { ok: true, value: false });
  assert.deepEqual(xs.parseTransactionEndRequest(b('T')), { ok: true, value: true });
  for (const p of ['X\0', 'Tx\0', 'T\0junk', '', '\0'])
    einval(xs.parseTransactionEndRequest(b(p)), JSON.stringify(p));
  assert.deepEqual(xs.encodeTransactionEndRequest(false), b('F\0'));
});

test('domain payloads follow spec §7 and §12 cases 55 to 57', () => {
  assert.deepEqual(xs.parseDomidRequest(b('7\0')), { ok: true, value: 7 });
  einval(xs.parseDomidRequest(b('7')), 'GET_DOMAIN_PATH "7"');
  assert.deepEqual(xs.parseDomidRequest(b('-1\0')), { ok: true, value: 4294967295 });
  assert.deepEqual(xs.parseDomidRequest(b('abc\0')), { ok: true, value: 0 });
  assert.deepEqual(xs.encodeGetDomainPathReply(7), b('/local/domain/7\0'));
  assert.deepEqual(xs.parseStringReply(b('/local/domain/7\0')), {
    ok: true,
    value: '/local/domain/7',
  });
  assert.deepEqual(xs.parseStrictDomidRequest(b('32752\0')), { ok: true, value: 32752 });
  einval(xs.parseStrictDomidRequest(b('abc\0')), 'IS_DOMAIN_INTRODUCED "abc"');
  assert.deepEqual(xs.parseBoolReply(b('T\0')), { ok: true, value: true });
  einval(xs.parseBoolReply(b('T')), 'T without NUL');
  einval(xs.parseIntroduceRequest(b('8\x001008\x000\0')), 'port 0');
  einval(xs.parseIntroduceRequest(b('8\x001008\0')), 'two strings');
  const intro = { domid: 5, gfn: 1008, port: 3 };
  assert.deepEqual(xs.parseIntroduceRequest(xs.encodeIntroduceRequest(intro)), {
    ok: true,
    value: intro,
  });
  assert.deepEqual(xs.parseSetTargetRequest(b('6\x00 5\0')), {
    ok: true,
    value: { domid: 6, target: 5 },
  });
  einval(xs.parseSetTargetRequest(b('6\0')), 'one string');
});

test('ERROR, OK and CONTROL payloads follow spec §9.1 and §10', () => {
  assert.deepEqual(xs.encodeErrorPayload('ENOENT'), b('ENOENT\0'));
  assert.deepEqual(xs.parseErrorPayload(b('EAGAIN\0')), { name: 'EAGAIN', error: 'EAGAIN' });
  assert.deepEqual(xs.parseErrorPayload(b('EQUOTA\0')), { name: 'EQUOTA', error: 'EINVAL' });
  assert.equal(xs.parseErrorPayload(b('ENOENT')).error, 'EINVAL');
  assert.ok(xs.isOkReply(xs.okPayload()));
  assert.ok(!xs.isOkReply(b('OK')));
  assert.deepEqual(xs.parseControlRequest(b('print\0hello\0')), {
    ok: true,
    value: { command: 'print', args: ['hello'] },
  });
  einval(xs.parseControlRequest(b('\0')), 'empty command');
  einval(xs.parseControlRequest(b('help')), 'unterminated');
});

test('every payload parser returns a result, never throws, on random bytes', () => {
  const parsers: ((p: Uint8Array) => unknown)[] = [
    xs.parsePathRequest,
    xs.parseWriteRequest,
    xs.parseDirectoryReply,
    xs.parseDirectoryPartRequest,
    xs.parseDirectoryPartReply,
    xs.parseGetPermsReply,
    xs.parseSetPermsRequest,
    xs.parseWatch,
    xs.parseTransactionStartReply,
    xs.parseTransactionEndRequest,
    xs.parseIntroduceRequest,
    xs.parseDomidRequest,
    xs.parseStrictDomidRequest,
    xs.parseSetTargetRequest,
    xs.parseStringReply,
    xs.parseBoolReply,
    xs.parseErrorPayload,
    xs.parseControlRequest,
  ];
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc
      .array(fc.constantFrom(0, 0x30, 0x35, 0x2d, 0x78, 0x72, 0x54, 0x2f, 0x20), { maxLength: 32 })
      .map((a) => Uint8Array.from(a)),
  );
  fc.assert(
    fc.property(bytes, (p) => {
      for (const parse of parsers) parse(p);
    }),
    { numRuns: 1000 },
  );
});

test('permission lists round-trip through encode and parse', () => {
  const perm = fc.record({
    letter: fc.constantFrom('n', 'r', 'w', 'b'),
    domid: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  });
  fc.assert(
    fc.property(fc.array(perm, { minLength: 1, maxLength: 8 }), (perms) => {
      const r = xs.parseGetPermsReply(xs.encodeGetPermsReply(perms));
      assert.ok(r.ok);
      assert.deepEqual(
        r.value,
        perms.map((p) => ({ ...p })),
      );
    }),
  );
});
