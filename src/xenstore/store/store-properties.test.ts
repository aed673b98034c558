// SPDX-License-Identifier: MIT
// Random operation sequences keep the store's invariants (STYLE.md: op sequences keep
// invariants), time-boxed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { XenStore } from './store.js';
import type { XsCaller, XsNodeSnapshot } from './types.js';
import { DOM0, bytes, ok, perms } from './test-support.js';

const PATHS = ['/a', '/a/b', '/a/b/c', '/a/d', '/e', '/local/domain/5/x', '/local/domain/5/x/y'];
const CALLERS: XsCaller[] = [
  DOM0,
  { connectionId: 1, domid: 0, privileged: true },
  { connectionId: 105, domid: 5, privileged: false },
];

type Op =
  | { kind: 'write'; who: number; path: string; value: string; inTx: boolean }
  | { kind: 'mkdir' | 'rm' | 'read' | 'dir'; who: number; path: string; inTx: boolean }
  | { kind: 'perms'; who: number; path: string; letter: 'n' | 'r' | 'w' | 'b'; inTx: boolean }
  | { kind: 'start'; who: number }
  | { kind: 'end'; who: number; commit: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('write' as const),
    who: fc.nat(2),
    path: fc.constantFrom(...PATHS),
    value: fc.string({ maxLength: 4 }),
    inTx: fc.boolean(),
  }),
  fc.record({
    kind: fc.constantFrom('mkdir' as const, 'rm' as const, 'read' as const, 'dir' as const),
    who: fc.nat(2),
    path: fc.constantFrom(...PATHS),
    inTx: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('perms' as const),
    who: fc.nat(2),
    path: fc.constantFrom(...PATHS),
    letter: fc.constantFrom('n' as const, 'r' as const, 'w' as const, 'b' as const),
    inTx: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('start' as const), who: fc.nat(2) }),
  fc.record({ kind: fc.constant('end' as const), who: fc.nat(2), commit: fc.boolean() }),
);

function key(nodes: XsNodeSnapshot[]): string {
  return JSON.stringify(
    nodes.map((n) => [n.path, [...n.value], n.perms, n.children, n.generation]),
  );
}

function valueOf(xs: XenStore, path: string): string | undefined {
  const r = xs.read(DOM0, path);
  return r.ok ? new TextDecoder().decode(r.value) : undefined;
}

test('XenStore keeps its invariants and transaction guarantees over random op sequences', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const xs = new XenStore();
      ok(xs.introduceDomain(5));
      ok(xs.mkdir(DOM0, '/local/domain/5'));
      ok(xs.setPerms(DOM0, '/local/domain/5', perms('n5', 'r0')));
      const open = new Map<number, { id: number; writes: Map<string, string | null> }>();
      for (const op of ops) {
        const base = CALLERS[op.who];
        if (base === undefined) continue;
        const tx = open.get(op.who);
        const before = key(xs.dump());
        if (op.kind === 'start') {
          const r = xs.transactionStart(base);
          if (r.ok) open.set(op.who, { id: r.value, writes: new Map() });
          continue;
        }
        if (op.kind === 'end') {
          if (tx === undefined) continue;
          open.delete(op.who);
          const r = xs.transactionEnd({ ...base, txId: tx.id }, op.commit);
          if (!op.commit || !r.ok) {
            // Abort, EAGAIN, ENOMEM, ENOSPC: nothing applied, no events.
            assert.equal(key(xs.dump()), before);
            assert.equal(r.events.length, 0);
            if (op.commit && !r.ok) assert.ok(['EAGAIN', 'ENOMEM', 'ENOSPC'].includes(r.error));
          } else {
            for (const [p, v] of tx.writes) assert.equal(valueOf(xs, p), v ?? undefined, p);
          }
          assert.equal(xs.transactionEnd({ ...base, txId: tx.id }, true).ok, false);
        } else {
          const useTx = op.inTx && tx !== undefined;
          const caller: XsCaller = useTx ? { ...base, txId: tx.id } : base;
          let r;
          switch (op.kind) {
            case 'write':
              r = xs.write(caller, op.path, bytes(op.value));
              if (r.ok && useTx) tx.writes.set(op.path, op.value);
              break;
            case 'mkdir':
              r = xs.mkdir(caller, op.path);
              break;
            case 'rm':
              r = xs.rm(caller, op.path);
              if (r.ok && useTx) {
                for (const p of [...tx.writes.keys()]) {
                  if (p === op.path || p.startsWith(`${op.path}/`)) tx.writes.set(p, null);
                }
              }
              break;
            case 'read':
              r = xs.read(caller, op.path);
              break;
            case 'dir':
              r = xs.directory(caller, op.path);
              break;
            case 'perms':
              r = xs.setPerms(caller, op.path, perms(`${op.letter}${base.domid}`, 'r5'));
              break;
          }
          if (useTx) assert.equal(key(xs.dump()), before, 'a tx op changed the live store');
          if (!r.ok) assert.equal(r.events.length, 0);
        }
        assert.deepEqual(xs.check(), []);
      }
    }),
    { numRuns: 300, interruptAfterTimeLimit: 10_000 },
  );
});

test('Two transactions writing the same node: the second commit answers EAGAIN', () => {
  fc.assert(
    fc.property(fc.constantFrom(...PATHS.slice(0, 5)), fc.string(), fc.string(), (p, v1, v2) => {
      const xs = new XenStore();
      const a: XsCaller = { connectionId: 1, domid: 0, privileged: true };
      const b: XsCaller = { connectionId: 2, domid: 0, privileged: true };
      const ta = ok(xs.transactionStart(a));
      const tb = ok(xs.transactionStart(b));
      ok(xs.write({ ...a, txId: ta }, p, bytes(v1)));
      ok(xs.write({ ...b, txId: tb }, p, bytes(v2)));
      ok(xs.transactionEnd({ ...a, txId: ta }, true));
      const before = JSON.stringify(xs.dump().map((n) => [n.path, [...n.value]]));
      const r = xs.transactionEnd({ ...b, txId: tb }, true);
      assert.equal(r.ok ? 'OK' : r.error, 'EAGAIN');
      assert.equal(JSON.stringify(xs.dump().map((n) => [n.path, [...n.value]])), before);
      assert.equal(valueOf(xs, p), v1);
    }),
    { numRuns: 100 },
  );
});
