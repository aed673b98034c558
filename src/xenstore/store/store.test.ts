// SPDX-License-Identifier: MIT
// Spec/xenstore.md §12 test cases that concern the store, numbered as in the spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XenStore } from './store.js';
import { DOM0, bytes, errorOf, evs, fixture, fmt, guest, ok, perms } from './test-support.js';

const dec = (u: Uint8Array): string => new TextDecoder().decode(u);

test("§12 1: READ of / gives an empty value; the initial tree is C's", () => {
  const xs = new XenStore();
  assert.equal(ok(xs.read(DOM0, '/')).length, 0);
  assert.deepEqual(ok(xs.directory(DOM0, '/')), ['tool']);
  assert.deepEqual(ok(xs.directory(DOM0, '/tool')), ['xenstored']);
  assert.deepEqual(xs.check(), []);
});

test('§12 10, 13: invalid paths and @ names are EINVAL for node operations', () => {
  const xs = new XenStore();
  for (const p of ['/t/a.b', '/t/a b', '/t/a/', 'bad//path', '', '@foo']) {
    assert.equal(errorOf(xs.write(DOM0, p, bytes('v'))), 'EINVAL', p);
  }
  assert.equal(errorOf(xs.read(DOM0, '@introduceDomain')), 'EINVAL');
  assert.equal(errorOf(xs.directory(DOM0, '@releaseDomain')), 'EINVAL');
  assert.equal(errorOf(xs.rm(DOM0, '@releaseDomain')), 'EINVAL');
  assert.equal(errorOf(xs.getPerms(DOM0, '@other')), 'EINVAL');
  assert.equal(errorOf(xs.setPerms(DOM0, '@other', perms('n0'))), 'EINVAL');
});

test('§12 11, 12: relative paths from the socket go under /local/domain/0; length limits', () => {
  const xs = new XenStore();
  ok(xs.write(DOM0, 'relx', bytes('v')));
  assert.equal(dec(ok(xs.read(DOM0, '/local/domain/0/relx'))), 'v');
  ok(xs.write(DOM0, `/t/${'x'.repeat(2045)}`, bytes('')));
  assert.equal(errorOf(xs.write(DOM0, `/t/${'x'.repeat(2046)}`, bytes(''))), 'EINVAL');
  ok(xs.write(DOM0, `/local/domain/5/${'y'.repeat(2048)}`, bytes('')));
  assert.equal(errorOf(xs.rm(DOM0, `/t/${'x'.repeat(2046)}`)), 'EINVAL');
});

test('§12 14: a guest reads its missing node as ENOENT and writes relative paths at home', () => {
  const xs = fixture();
  assert.equal(errorOf(xs.read(guest(5), 'name')), 'ENOENT');
  ok(xs.write(guest(5), 'data/x', bytes('hello')));
  assert.equal(dec(ok(xs.read(DOM0, '/local/domain/5/data/x'))), 'hello');
  assert.deepEqual(fmt(ok(xs.getPerms(DOM0, '/local/domain/5/data/x'))), ['n5', 'r0']);
});

test('§12 15-19, 21: values are binary, MKDIR keeps values, order is insertion, RM rules', () => {
  const xs = new XenStore();
  ok(xs.write(DOM0, '/t/bin', bytes('a\0b\0')));
  assert.deepEqual([...ok(xs.read(DOM0, '/t/bin'))], [97, 0, 98, 0]);
  ok(xs.write(DOM0, '/t/mk', bytes('val')));
  assert.equal(xs.mkdir(DOM0, '/t/mk').ok, true);
  assert.equal(dec(ok(xs.read(DOM0, '/t/mk'))), 'val');
  ok(xs.mkdir(DOM0, '/t/deep/a/b/c'));
  assert.deepEqual(ok(xs.directory(DOM0, '/t/deep/a/b')), ['c']);
  for (const c of ['c', 'a', 'b']) ok(xs.write(DOM0, `/t/o/${c}`, bytes('')));
  assert.deepEqual(ok(xs.directory(DOM0, '/t/o')), ['c', 'a', 'b']);
  ok(xs.rm(DOM0, '/t/o/c'));
  ok(xs.write(DOM0, '/t/o/c', bytes('')));
  assert.deepEqual(ok(xs.directory(DOM0, '/t/o')), ['a', 'b', 'c']);
  ok(xs.rm(DOM0, '/t/deep/zz'));
  assert.equal(errorOf(xs.rm(DOM0, '/t/deep/zz/yy')), 'ENOENT');
  assert.equal(errorOf(xs.rm(DOM0, '/')), 'EINVAL');
  assert.deepEqual(ok(xs.directory(DOM0, '/t/bin')), []);
  assert.equal(errorOf(xs.directory(DOM0, '/t/none')), 'ENOENT');
  assert.deepEqual(xs.check(), []);
});

test('§12 9: DIRECTORY of a listing over 4096 bytes is E2BIG; DIRECTORY_PART pages it', () => {
  const xs = new XenStore();
  const names = Array.from(
    { length: 700 },
    (_, i) => `n${String(i).padStart(4, '0')}${'z'.repeat(20)}`,
  );
  for (const n of names) ok(xs.mkdir(DOM0, `/big/${n}`));
  assert.equal(errorOf(xs.directory(DOM0, '/big')), 'E2BIG');
  // libxenstore's algorithm (§3.6).
  const got: string[] = [];
  let offset = 0;
  let gen: string | undefined;
  for (;;) {
    const chunk = ok(xs.directoryPart(DOM0, '/big', offset));
    assert.ok(chunk.length <= 4096);
    const g = chunk.slice(0, chunk.indexOf('\0'));
    gen ??= g;
    assert.equal(g, gen);
    const body = chunk.slice(g.length + 1);
    const done = body === '\0' || body.endsWith('\0\0');
    const list = done ? body.slice(0, -1) : body;
    const part = list.split('\0').slice(0, -1);
    got.push(...part);
    offset += list.length;
    if (done) break;
  }
  assert.deepEqual(got, names);
});

test('§12 20: DIRECTORY_PART offsets and generation', () => {
  const xs = new XenStore();
  ok(xs.write(DOM0, '/dp/alpha', bytes('')));
  ok(xs.write(DOM0, '/dp/beta', bytes('')));
  const r0 = ok(xs.directoryPart(DOM0, '/dp', 0));
  const g = r0.slice(0, r0.indexOf('\0'));
  assert.equal(r0, `${g}\0alpha\0beta\0\0`);
  assert.equal(ok(xs.directoryPart(DOM0, '/dp', 6)), `${g}\0beta\0\0`);
  assert.equal(ok(xs.directoryPart(DOM0, '/dp', 2)), `${g}\0pha\0beta\0\0`);
  assert.equal(ok(xs.directoryPart(DOM0, '/dp', 11)), `${g}\0\0`);
  ok(xs.write(DOM0, '/dp/alpha', bytes('val')));
  assert.equal(ok(xs.directoryPart(DOM0, '/dp', 11)), `${g}\0\0`);
  ok(xs.write(DOM0, '/dp/gamma', bytes('')));
  assert.notEqual(ok(xs.directoryPart(DOM0, '/dp', 0)).split('\0')[0], g);
});

test('§12 22, 23: ACL entries and the ENOENT vs EACCES rule (§4.4)', () => {
  const xs = fixture();
  ok(xs.write(DOM0, '/p/a', bytes('x')));
  ok(xs.setPerms(DOM0, '/p/a', perms('n0', 'r5')));
  assert.deepEqual(fmt(ok(xs.getPerms(DOM0, '/p/a'))), ['n0', 'r5']);
  assert.equal(dec(ok(xs.read(guest(5), '/p/a'))), 'x');
  assert.equal(errorOf(xs.write(guest(5), '/p/a', bytes('y'))), 'EACCES');
  assert.equal(errorOf(xs.read(guest(6), '/p/a')), 'EACCES');
  assert.deepEqual(fmt(ok(xs.getPerms(guest(5), '/p/a'))), ['n0', 'r5']);
  assert.equal(errorOf(xs.read(guest(6), '/p/a/zz')), 'EACCES');
  assert.equal(errorOf(xs.read(guest(5), '/p/a/zz')), 'ENOENT');
  assert.equal(errorOf(xs.read(guest(5), '/tool/nonexist')), 'EACCES');
  // RM or WRITE of a missing node under an unwritable parent (§11 #13, #14).
  assert.equal(errorOf(xs.rm(guest(5), '/p/a/zz')), 'EACCES');
  assert.equal(errorOf(xs.write(guest(5), '/p/a/zz', bytes(''))), 'EACCES');
  assert.equal(errorOf(xs.mkdir(guest(5), '/p/a')), 'EACCES');
});

test('§12 24: a guest creating under n0 w5 becomes the owner of the new node', () => {
  const xs = fixture();
  ok(xs.mkdir(DOM0, '/p'));
  ok(xs.setPerms(DOM0, '/p', perms('n0', 'w5')));
  assert.equal(errorOf(xs.read(guest(5), '/p')), 'EACCES');
  ok(xs.write(guest(5), '/p/new5', bytes('c5')));
  assert.deepEqual(fmt(ok(xs.getPerms(DOM0, '/p/new5'))), ['n5', 'w5']);
  assert.equal(dec(ok(xs.read(guest(5), '/p/new5'))), 'c5');
  ok(xs.rm(guest(5), '/p/missing'));
});

test('§12 25: the owner letter is the default and an ACL entry can deny', () => {
  const xs = fixture();
  ok(xs.mkdir(DOM0, '/p/o'));
  ok(xs.setPerms(DOM0, '/p/o', perms('r0', 'n5')));
  ok(xs.read(guest(6), '/p/o'));
  assert.equal(errorOf(xs.read(guest(5), '/p/o')), 'EACCES');
  assert.equal(errorOf(xs.write(guest(6), '/p/o', bytes(''))), 'EACCES');
});

test('§12 26, 29: owner rules of SET_PERMS for guests (EPERM, EACCES, ENOSPC)', () => {
  const xs = fixture();
  ok(xs.mkdir(DOM0, '/p'));
  assert.equal(errorOf(xs.setPerms(guest(5), '/local/domain/5', perms('n6'))), 'EPERM');
  assert.equal(errorOf(xs.setPerms(guest(5), '/p', perms('n0', 'b5'))), 'EACCES');
  ok(xs.setPerms(guest(5), '/local/domain/5', perms('n5', 'r6')));
  ok(xs.read(guest(6), '/local/domain/5'));
  const six = perms('n5', 'r6', 'r0', 'w6', 'b0', 'r6');
  assert.equal(errorOf(xs.setPerms(guest(5), '/local/domain/5', six)), 'ENOSPC');
  ok(xs.setPerms(DOM0, '/local/domain/5', six));
});

test('§12 27, 28: malformed lists are EINVAL; the owner must exist, ACL ids need not', () => {
  const xs = fixture();
  ok(xs.mkdir(DOM0, '/p/o'));
  assert.equal(errorOf(xs.setPerms(DOM0, '/p/o', [])), 'EINVAL');
  assert.equal(errorOf(xs.setPerms(DOM0, '/p/o', [{ letter: 'x' as 'n', domid: 0 }])), 'EINVAL');
  assert.equal(errorOf(xs.setPerms(DOM0, '/p/o', [{ letter: 'r', domid: 1.5 }])), 'EINVAL');
  assert.equal(errorOf(xs.setPerms(DOM0, '/p/o', perms('n99'))), 'ENOENT');
  assert.equal(errorOf(xs.setPerms(DOM0, '/p/missing', perms('n0'))), 'ENOENT');
  ok(xs.setPerms(DOM0, '/p/o', perms('n0', 'r99')));
  assert.deepEqual(fmt(ok(xs.getPerms(DOM0, '/p/o'))), ['n0', 'r99']);
});

test('§12 30: SET_TARGET gives the owner rights and ACL entries of the target', () => {
  const xs = fixture();
  ok(xs.write(DOM0, '/p/a', bytes('x')));
  ok(xs.setPerms(DOM0, '/p/a', perms('n0', 'r5')));
  ok(xs.write(guest(5), 'mine', bytes('m')));
  ok(xs.setTarget(6, 5));
  assert.equal(dec(ok(xs.read(guest(6), '/local/domain/5/mine'))), 'm');
  ok(xs.write(guest(6), '/local/domain/5/mine', bytes('n')));
  ok(xs.read(guest(6), '/p/a'));
  assert.equal(errorOf(xs.setPerms(guest(6), '/local/domain/5/mine', perms('n6'))), 'EPERM');
  ok(xs.write(guest(6), '/local/domain/5/bydm', bytes('')));
  assert.equal(fmt(ok(xs.getPerms(DOM0, '/local/domain/5/bydm')))[0], 'n6');
  assert.equal(errorOf(xs.setTarget(6, 9)), 'ENOENT');
});

test('§12 32, 33: WATCH answers with the initial event; duplicates are EEXIST', () => {
  const xs = new XenStore();
  const r = xs.watch(DOM0, '/w', 'tok');
  assert.deepEqual(ok(r), { connectionId: 0, path: '/w', token: 'tok' });
  assert.deepEqual(evs(r.events), ['0 /w tok']);
  assert.equal(errorOf(xs.watch(DOM0, '/w', 'tok')), 'EEXIST');
  ok(xs.watch(DOM0, '/w', 'tok2'));
  assert.equal(errorOf(xs.watch(DOM0, '', 't')), 'EINVAL');
  assert.equal(errorOf(xs.watch(DOM0, '/a b', 't')), 'EINVAL');
  assert.deepEqual(evs(xs.watch(DOM0, '/e', '').events), ['0 /e ']);
  // The initial event is sent for unreadable nodes too (§5.1).
  assert.deepEqual(evs(xs.watch(guest(5), '/tool', 'g').events), ['105 /tool g']);
});

test('§12 34: WRITE fires even for the same value; MKDIR of an existing node does not', () => {
  const xs = new XenStore();
  ok(xs.watch(DOM0, '/w', 'tok'));
  assert.deepEqual(evs(xs.write(DOM0, '/w/x', bytes('1')).events), ['0 /w/x tok']);
  assert.deepEqual(evs(xs.write(DOM0, '/w/x', bytes('1')).events), ['0 /w/x tok']);
  assert.deepEqual(evs(xs.mkdir(DOM0, '/w/x').events), []);
  assert.deepEqual(evs(xs.setPerms(DOM0, '/w/x', perms('n0')).events), ['0 /w/x tok']);
  assert.deepEqual(evs(xs.rm(DOM0, '/w/nothing').events), []);
});

test('§12 35: implicitly created ancestors fire nothing of their own', () => {
  const xs = new XenStore();
  for (const [p, t] of [
    ['/imp/b', 'b'],
    ['/imp/b/c', 'c'],
    ['/imp/b/c/d/e', 'e'],
  ] as const) {
    ok(xs.watch(DOM0, p, t));
  }
  assert.deepEqual(evs(xs.write(DOM0, '/imp/b/c/d', bytes('v')).events), [
    '0 /imp/b/c/d b',
    '0 /imp/b/c/d c',
  ]);
});

test('§12 36: RM fires on ancestors with P and on every watch below with its own path', () => {
  const xs = new XenStore();
  for (const [p, t] of [
    ['/r', 't0'],
    ['/r/a', 't1'],
    ['/r/a/b/c', 't2'],
    ['/r/a/b/c/d', 't3'],
  ] as const) {
    ok(xs.watch(DOM0, p, t));
  }
  ok(xs.write(DOM0, '/r/a/b/c', bytes('')));
  assert.deepEqual(evs(xs.rm(DOM0, '/r/a').events), [
    '0 /r/a t0',
    '0 /r/a t1',
    '0 /r/a/b/c t2',
    '0 /r/a/b/c/d t3',
  ]);
  assert.deepEqual(evs(xs.rm(DOM0, '/r/a').events), []);
  assert.deepEqual(xs.check(), []);
});

test("§12 37: a guest's relative watch gets relative paths and is the same as the absolute one", () => {
  const xs = fixture();
  assert.deepEqual(evs(xs.watch(guest(5), 'data', 'g').events), ['105 data g']);
  assert.deepEqual(evs(xs.write(guest(5), 'data/k', bytes('v')).events), ['105 data/k g']);
  assert.equal(errorOf(xs.watch(guest(5), '/local/domain/5/data', 'g')), 'EEXIST');
  ok(xs.unwatch(guest(5), '/local/domain/5/data', 'g'));
  assert.equal(errorOf(xs.unwatch(guest(5), 'data', 'g')), 'ENOENT');
  // dom0 relative watches are relative to /local/domain/0 (§5.8).
  ok(xs.watch(DOM0, 'relw', 'r'));
  assert.deepEqual(evs(xs.write(DOM0, 'relw/x', bytes('')).events), ['0 relw/x r']);
});

test('§12 38, 39: events are filtered by read access to the node or its parent', () => {
  const xs = fixture();
  ok(xs.watch(guest(5), '/', 'r'));
  assert.deepEqual(evs(xs.write(DOM0, '/local/domain/5/f', bytes('')).events), [
    '105 /local/domain/5/f r',
  ]);
  assert.deepEqual(evs(xs.write(DOM0, '/tool/q', bytes('')).events), []);
  ok(xs.write(DOM0, '/local/domain/5/data/k', bytes('')));
  assert.deepEqual(evs(xs.setPerms(DOM0, '/local/domain/5/data/k', perms('n0')).events), [
    '105 /local/domain/5/data/k r',
  ]);
  assert.deepEqual(evs(xs.write(DOM0, '/local/domain/5/data/k', bytes('2')).events), [
    '105 /local/domain/5/data/k r',
  ]);
  // Guest 6 watching / hears nothing of 5's home.
  ok(xs.watch(guest(6), '/', 'six'));
  assert.deepEqual(evs(xs.write(DOM0, '/local/domain/5/f', bytes('')).events), [
    '105 /local/domain/5/f r',
  ]);
});

test('§12 40: special watches fire on new introductions and releases only', () => {
  const xs = new XenStore();
  ok(xs.watch(DOM0, '@introduceDomain', 'ti'));
  ok(xs.watch(DOM0, '@releaseDomain', 'tr'));
  ok(xs.watch(DOM0, '@releaseDomain/5', 'never'));
  assert.deepEqual(evs(xs.introduceDomain(5).events), ['0 @introduceDomain ti']);
  assert.deepEqual(evs(xs.introduceDomain(5).events), []);
  assert.deepEqual(evs(xs.introduceDomain(0).events), []);
  assert.deepEqual(evs(xs.releaseDomain(5).events), ['0 @releaseDomain tr']);
});

test('§12 41: guests hear @releaseDomain only after SET_PERMS grants read on it', () => {
  const xs = fixture();
  ok(xs.introduceDomain(7));
  assert.deepEqual(evs(xs.watch(guest(5), '@releaseDomain', 'g').events), ['105 @releaseDomain g']);
  assert.deepEqual(evs(xs.releaseDomain(6).events), []);
  assert.equal(errorOf(xs.getPerms(guest(5), '@releaseDomain')), 'EACCES');
  ok(xs.setPerms(DOM0, '@releaseDomain', perms('n0', 'r5')));
  assert.deepEqual(fmt(ok(xs.getPerms(guest(5), '@releaseDomain'))), ['n0', 'r5']);
  assert.deepEqual(evs(xs.releaseDomain(7).events), ['105 @releaseDomain g']);
  assert.equal(errorOf(xs.setPerms(guest(5), '@releaseDomain', perms('n5'))), 'EACCES');
});

test('§12 42: transaction writes fire once per node at commit, nothing on abort', () => {
  const xs = new XenStore();
  ok(xs.watch(DOM0, '/r', 't'));
  const tx = ok(xs.transactionStart(DOM0));
  const inTx = { ...DOM0, txId: tx };
  assert.deepEqual(evs(xs.write(inTx, '/r/t1', bytes('1')).events), []);
  assert.deepEqual(evs(xs.write(inTx, '/r/t1', bytes('2')).events), []);
  assert.deepEqual(evs(xs.write(inTx, '/r/t2', bytes('3')).events), []);
  assert.deepEqual(evs(xs.transactionEnd(inTx, true).events), ['0 /r/t1 t', '0 /r/t2 t']);
  const tx2 = ok(xs.transactionStart(DOM0));
  ok(xs.write({ ...DOM0, txId: tx2 }, '/r/t3', bytes('')));
  assert.deepEqual(evs(xs.transactionEnd({ ...DOM0, txId: tx2 }, false).events), []);
  assert.equal(errorOf(xs.read(DOM0, '/r/t3')), 'ENOENT');
});

test('§12 43: RESET_WATCHES drops watches and transactions', () => {
  const xs = new XenStore();
  ok(xs.watch(DOM0, '/w', 't'));
  const tx = ok(xs.transactionStart(DOM0));
  ok(xs.resetWatches(DOM0));
  assert.deepEqual(evs(xs.write(DOM0, '/w', bytes('')).events), []);
  assert.equal(errorOf(xs.read({ ...DOM0, txId: tx }, '/w')), 'ENOENT');
  assert.equal(ok(xs.transactionStart(DOM0)), tx + 1);
});

test('§12 44: a guest may hold 129 watches; the 130th is E2BIG', () => {
  const xs = fixture();
  for (let i = 0; i < 129; i++) ok(xs.watch(guest(5), `w${i}`, 't'));
  assert.equal(errorOf(xs.watch(guest(5), 'w129', 't')), 'E2BIG');
  ok(xs.watch(DOM0, '/x', 'dom0 is exempt'));
});

test('§12 45: transaction ids, EBUSY, unknown ids, bad END', () => {
  const xs = new XenStore();
  assert.equal(ok(xs.transactionStart(DOM0)), 1);
  assert.equal(ok(xs.transactionStart(DOM0)), 2);
  assert.equal(errorOf(xs.transactionStart({ ...DOM0, txId: 1 })), 'EBUSY');
  assert.equal(errorOf(xs.transactionStart({ ...DOM0, txId: 9 })), 'ENOENT');
  assert.equal(errorOf(xs.read({ ...DOM0, txId: 777 }, '/')), 'ENOENT');
  assert.equal(errorOf(xs.transactionEnd(DOM0, true)), 'ENOENT');
  // Another connection's id is unknown here.
  assert.equal(errorOf(xs.read({ ...guest(5), txId: 1 }, '/')), 'ENOENT');
  // Ids are per connection.
  assert.equal(ok(xs.transactionStart(guest(5))), 1);
});

function twoConns(): { xs: XenStore; a: (tx: number) => typeof DOM0; b: typeof DOM0 } {
  const xs = new XenStore();
  ok(xs.write(DOM0, '/tx/A', bytes('a')));
  ok(xs.write(DOM0, '/tx/B', bytes('b')));
  ok(xs.write(DOM0, '/tx/c', bytes('c')));
  ok(xs.write(DOM0, '/other/C', bytes('C')));
  return { xs, a: (tx) => ({ connectionId: 1, domid: 0, privileged: true, txId: tx }), b: DOM0 };
}

test('§12 46: a conflicting commit answers EAGAIN and applies nothing; the id is gone', () => {
  const { xs, a, b } = twoConns();
  const t = ok(xs.transactionStart(a(0)));
  ok(xs.read(a(t), '/tx/A'));
  ok(xs.write(b, '/tx/A', bytes('b wrote')));
  ok(xs.write(a(t), '/tx/B', bytes('a wrote')));
  assert.equal(errorOf(xs.transactionEnd(a(t), true)), 'EAGAIN');
  assert.equal(dec(ok(xs.read(b, '/tx/B'))), 'b');
  assert.equal(errorOf(xs.transactionEnd(a(t), true)), 'ENOENT');
});

test('§12 47: a change to an unrelated node does not conflict', () => {
  const { xs, a, b } = twoConns();
  const t = ok(xs.transactionStart(a(0)));
  ok(xs.read(a(t), '/tx/A'));
  ok(xs.write(b, '/other/C', bytes('x')));
  ok(xs.write(a(t), '/tx/B', bytes('a wrote')));
  ok(xs.transactionEnd(a(t), true));
  assert.equal(dec(ok(xs.read(b, '/tx/B'))), 'a wrote');
});

test('§12 48, 49: read-only and sibling-creating transactions conflict (C semantics)', () => {
  const { xs, a, b } = twoConns();
  const t = ok(xs.transactionStart(a(0)));
  ok(xs.read(a(t), '/tx/A'));
  ok(xs.write(b, '/tx/A', bytes('z')));
  assert.equal(errorOf(xs.transactionEnd(a(t), true)), 'EAGAIN');
  const t2 = ok(xs.transactionStart(a(0)));
  assert.equal(t2, t + 1);
  ok(xs.write(a(t2), '/tx/new1', bytes('')));
  ok(xs.write(b, '/tx/new2', bytes('')));
  assert.equal(errorOf(xs.transactionEnd(a(t2), true)), 'EAGAIN');
  assert.equal(errorOf(xs.read(b, '/tx/new1')), 'ENOENT');
  // Reading a missing node that someone else then creates also conflicts.
  const t3 = ok(xs.transactionStart(a(0)));
  assert.equal(errorOf(xs.read(a(t3), '/tx/later')), 'ENOENT');
  ok(xs.write(b, '/tx/later', bytes('')));
  assert.equal(errorOf(xs.transactionEnd(a(t3), true)), 'EAGAIN');
});

test('§12 50: DIRECTORY conflicts with a new child but not with a child value change', () => {
  const { xs, a, b } = twoConns();
  const t = ok(xs.transactionStart(a(0)));
  ok(xs.directory(a(t), '/tx'));
  ok(xs.write(b, '/tx/new3', bytes('')));
  assert.equal(errorOf(xs.transactionEnd(a(t), true)), 'EAGAIN');
  const t2 = ok(xs.transactionStart(a(0)));
  ok(xs.directory(a(t2), '/tx'));
  ok(xs.write(b, '/tx/c', bytes('changed')));
  ok(xs.transactionEnd(a(t2), true));
});

test('§12 51, 52: ordinary errors keep the tx usable; RM inside is private until commit', () => {
  const { xs, a, b } = twoConns();
  const t = ok(xs.transactionStart(a(0)));
  assert.equal(errorOf(xs.write(a(t), '/tx/a b', bytes('x'))), 'EINVAL');
  assert.equal(errorOf(xs.read(a(t), '/tx/missing')), 'ENOENT');
  ok(xs.rm(a(t), '/tx/c'));
  assert.equal(errorOf(xs.read(a(t), '/tx/c')), 'ENOENT');
  assert.equal(dec(ok(xs.read(b, '/tx/c'))), 'c');
  ok(xs.transactionEnd(a(t), true));
  assert.equal(errorOf(xs.read(b, '/tx/c')), 'ENOENT');
  assert.deepEqual(xs.check(), []);
});

test('§12 53: a guest may hold 11 transactions; the 12th is ENOSPC', () => {
  const xs = fixture();
  for (let i = 0; i < 11; i++) ok(xs.transactionStart(guest(5)));
  assert.equal(errorOf(xs.transactionStart(guest(5))), 'ENOSPC');
});

test('§12 54: a node-size failure inside a tx makes the commit ENOMEM with nothing applied', () => {
  const xs = fixture();
  const t = ok(xs.transactionStart(guest(5)));
  let i = 0;
  for (;;) {
    const r = xs.write(guest(5, t), `n/${'c'.repeat(40)}${i++}`, bytes(''));
    if (!r.ok) {
      assert.equal(r.error, 'ENOSPC');
      break;
    }
  }
  assert.equal(errorOf(xs.transactionEnd(guest(5, t), true)), 'ENOMEM');
  assert.equal(errorOf(xs.read(DOM0, '/local/domain/5/n')), 'ENOENT');
});

test('§8: node size for guests is 24 + 8 per perm + value (< 2048); dom0 is exempt', () => {
  const xs = fixture();
  ok(xs.write(guest(5), 'v', new Uint8Array(2007)));
  assert.equal(errorOf(xs.write(guest(5), 'v', new Uint8Array(2008))), 'ENOSPC');
  ok(xs.write(DOM0, '/local/domain/5/v', new Uint8Array(4000)));
});

test('§8: the per-domain node quota counts owned nodes (ENOSPC)', () => {
  const xs = new XenStore({ quotas: { nodes: 5 } });
  ok(xs.introduceDomain(5));
  ok(xs.mkdir(DOM0, '/local/domain/5'));
  ok(xs.setPerms(DOM0, '/local/domain/5', perms('n5')));
  // The home itself is owned by 5: four more fit.
  for (let i = 0; i < 4; i++) ok(xs.write(guest(5), `k${i}`, bytes('')));
  assert.equal(errorOf(xs.write(guest(5), 'k4', bytes(''))), 'ENOSPC');
  ok(xs.rm(guest(5), 'k0'));
  ok(xs.write(guest(5), 'k4', bytes('')));
});

test('§12 56, 58: RELEASE deletes owned nodes with events and forgets the domain', () => {
  const xs = fixture();
  ok(xs.write(DOM0, '/shared/x', bytes('')));
  ok(xs.setPerms(DOM0, '/shared/x', perms('n6')));
  ok(xs.write(DOM0, '/acl', bytes('')));
  ok(xs.setPerms(DOM0, '/acl', perms('n0', 'r6', 'b5')));
  ok(xs.watch(DOM0, '/local/domain/6', 'h'));
  ok(xs.watch(DOM0, '/shared', 's'));
  ok(xs.watch(guest(6), '/local/domain/6', 'gone'));
  assert.equal(xs.isDomainIntroduced(6), true);
  assert.deepEqual(evs(xs.releaseDomain(6).events), ['0 /local/domain/6 h', '0 /shared/x s']);
  assert.equal(xs.isDomainIntroduced(6), false);
  assert.equal(errorOf(xs.read(DOM0, '/local/domain/6')), 'ENOENT');
  assert.deepEqual(fmt(ok(xs.getPerms(DOM0, '/acl'))), ['n0', 'r6', 'b5']);
  assert.equal(errorOf(xs.releaseDomain(6)), 'ENOENT');
  assert.equal(errorOf(xs.releaseDomain(0)), 'EINVAL');
  assert.equal(errorOf(xs.resumeDomain(6)), 'ENOENT');
  // A new domain 6 does not inherit the old ACL entry on /acl (§4.1).
  ok(xs.introduceDomain(6));
  assert.equal(errorOf(xs.read(guest(6), '/acl')), 'EACCES');
  assert.equal(xs.isDomainIntroduced(32752), true);
  assert.equal(xs.getDomainPath(7), '/local/domain/7');
  assert.deepEqual(xs.check(), []);
});

test('§5.6: a shutdown fires @releaseDomain once until RESUME', () => {
  const xs = fixture();
  ok(xs.watch(DOM0, '@releaseDomain', 'r'));
  assert.equal(xs.domainShutdown(5).length, 1);
  assert.equal(xs.domainShutdown(5).length, 0);
  ok(xs.resumeDomain(5));
  assert.equal(xs.domainShutdown(5).length, 1);
  assert.equal(xs.domainDestroyed(5).length, 1);
  assert.equal(xs.isDomainIntroduced(5), false);
});
