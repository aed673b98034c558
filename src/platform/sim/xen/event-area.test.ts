// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DOMAIN_STATE, EventArea, PORT_STATE } from './event-area.js';
import { EVTCHN_ERRNO } from './xen-abi.js';

function area(maxDomains = 4, maxPorts = 64): EventArea {
  const a = EventArea.create({ maxDomains, maxPorts });
  for (let d = 0; d < maxDomains; d++) a.setDomainState(d, DOMAIN_STATE.RUNNING);
  return a;
}

test('EventArea.create() refuses sizes the packed port entry cannot hold', () => {
  assert.throws(() => EventArea.create({ maxDomains: 4, maxPorts: 33 }), RangeError);
  assert.throws(() => EventArea.create({ maxDomains: 4, maxPorts: 8192 }), RangeError);
  assert.throws(() => EventArea.create({ maxDomains: 0, maxPorts: 64 }), RangeError);
});

test('EventArea.attach() refuses a buffer that is not an event area', () => {
  assert.throws(() => EventArea.attach(new SharedArrayBuffer(256)), TypeError);
  const a = area();
  const b = EventArea.attach(a.buffer);
  assert.equal(b.maxPorts, 64);
  assert.equal(b.maxDomains, 4);
});

test('allocUnbound() never hands out port 0 and reports exhaustion as -ENOSPC', () => {
  const a = area(2, 32);
  const ports = new Set<number>();
  for (let i = 0; i < 31; i++) ports.add(a.allocUnbound(1, 0, false));
  assert.equal(ports.size, 31);
  assert.ok(!ports.has(0));
  assert.equal(a.allocUnbound(1, 0, false), EVTCHN_ERRNO.ENOSPC);
  assert.deepEqual(a.portEntry(1, 5), { state: PORT_STATE.UNBOUND, remoteDomid: 0, remotePort: 0 });
});

test('allocUnbound() and bindInterdomain() refuse missing or dying domains with -ESRCH', () => {
  const a = area();
  a.setDomainState(2, DOMAIN_STATE.FREE);
  assert.equal(a.allocUnbound(2, 0, false), EVTCHN_ERRNO.ESRCH);
  assert.equal(a.allocUnbound(1, 99, false), EVTCHN_ERRNO.ESRCH);
  assert.equal(a.bindInterdomain(0, 2, 1, true), EVTCHN_ERRNO.ESRCH);
  assert.equal(a.bindInterdomain(0, 99, 1, true), EVTCHN_ERRNO.ESRCH);
  assert.equal(a.bindInterdomain(0, -1, 1, true), EVTCHN_ERRNO.ESRCH);
  a.setDomainState(2, DOMAIN_STATE.DYING);
  assert.equal(a.allocUnbound(2, 0, false), EVTCHN_ERRNO.ESRCH);
});

test('bindInterdomain() requires a port that is unbound for the binder', () => {
  const a = area();
  const forOther = a.allocUnbound(1, 2, false);
  assert.equal(a.bindInterdomain(0, 1, forOther, true), EVTCHN_ERRNO.EINVAL);
  assert.equal(a.bindInterdomain(0, 1, 0, true), EVTCHN_ERRNO.EINVAL);
  assert.equal(a.bindInterdomain(0, 1, 64, true), EVTCHN_ERRNO.EINVAL);
  assert.equal(a.bindInterdomain(0, 1, 1.5, true), EVTCHN_ERRNO.EINVAL);
  assert.equal(a.bindInterdomain(0, 1, 30, true), EVTCHN_ERRNO.EINVAL); // free port
  const guestPort = a.allocUnbound(1, 0, false);
  const local = a.bindInterdomain(0, 1, guestPort, true);
  assert.ok(local > 0);
  assert.deepEqual(a.portEntry(0, local), {
    state: PORT_STATE.INTERDOMAIN,
    remoteDomid: 1,
    remotePort: guestPort,
  });
  assert.deepEqual(a.portEntry(1, guestPort), {
    state: PORT_STATE.INTERDOMAIN,
    remoteDomid: 0,
    remotePort: local,
  });
  // Already bound: a second bind fails and leaks no local port.
  assert.equal(a.bindInterdomain(0, 1, guestPort, true), EVTCHN_ERRNO.EINVAL);
  assert.equal(a.portEntry(0, local + 1).state, PORT_STATE.FREE);
});

test('bindInterdomain() sets the new local port pending, as Xen does', () => {
  const a = area();
  const guestPort = a.allocUnbound(1, 0, false);
  const local = a.bindInterdomain(0, 1, guestPort, true);
  assert.equal(a.isPending(0, local), true);
  assert.equal(a.isMasked(0, local), true);
  assert.equal(a.upcallRaised(0), false); // masked: no upcall yet
  a.unmask(0, local);
  assert.equal(a.upcallRaised(0), true);
});

test('send() sets the peer pending, drops silently on an unbound port and refuses a free one', () => {
  const a = area();
  const guestPort = a.allocUnbound(1, 0, false);
  assert.equal(a.send(1, guestPort), 0); // unbound: dropped
  const local = a.bindInterdomain(0, 1, guestPort, false);
  a.clearPending(0, local);
  assert.equal(a.send(1, guestPort), 0);
  assert.equal(a.isPending(0, local), true);
  assert.equal(a.send(0, local), 0);
  assert.equal(a.isPending(1, guestPort), true);
  assert.equal(a.send(1, 40), EVTCHN_ERRNO.EINVAL);
  assert.equal(a.send(1, 0), EVTCHN_ERRNO.EINVAL);
  assert.equal(a.send(1, 9999), EVTCHN_ERRNO.EINVAL);
  assert.equal(a.send(77, 1), EVTCHN_ERRNO.EINVAL);
});

test('Notifications to a masked port coalesce into one pending bit and raise no upcall until unmask', () => {
  const a = area();
  const guestPort = a.allocUnbound(1, 0, false);
  const local = a.bindInterdomain(0, 1, guestPort, true);
  a.clearPending(0, local);
  for (let i = 0; i < 10; i++) a.send(1, guestPort);
  assert.equal(a.upcallRaised(0), false);
  assert.equal(a.deliverableBits(0, local >>> 5), 0);
  a.unmask(0, local);
  assert.equal(a.upcallRaised(0), true);
  assert.equal(a.takeUpcall(0), true);
  assert.equal(a.takeUpcall(0), false);
  assert.equal(a.deliverableBits(0, local >>> 5), 1 << (local & 31));
});

test('A notify to a port that is already pending raises no second upcall', () => {
  const a = area();
  const guestPort = a.allocUnbound(1, 0, false);
  const local = a.bindInterdomain(0, 1, guestPort, false);
  assert.equal(a.takeUpcall(0), true); // the bind-time event
  a.send(1, guestPort); // still pending: coalesced
  assert.equal(a.upcallRaised(0), false);
  a.clearPending(0, local);
  a.send(1, guestPort);
  assert.equal(a.upcallRaised(0), true);
});

test('Closing one end leaves the peer unbound for the closer; closing both ends frees both', () => {
  const a = area();
  const guestPort = a.allocUnbound(1, 0, false);
  const local = a.bindInterdomain(0, 1, guestPort, false);
  a.closePort(1, guestPort);
  assert.equal(a.portEntry(1, guestPort).state, PORT_STATE.FREE);
  assert.deepEqual(a.portEntry(0, local), {
    state: PORT_STATE.UNBOUND,
    remoteDomid: 1,
    remotePort: 0,
  });
  assert.equal(a.send(0, local), 0); // dropped
  a.closePort(0, local);
  assert.equal(a.portEntry(0, local).state, PORT_STATE.FREE);
  // Closing again, or closing nonsense, is harmless.
  a.closePort(0, local);
  a.closePort(0, 0);
  a.closePort(99, 1);
});

test('A stale close cannot unbind a port that was re-bound to someone else', () => {
  const a = area();
  const g1 = a.allocUnbound(1, 0, false);
  const local = a.bindInterdomain(0, 1, g1, false);
  a.closePort(0, local); // g1 now unbound for dom0
  const g2 = a.allocUnbound(2, 0, false);
  const local2 = a.bindInterdomain(0, 2, g2, false);
  assert.equal(local2, local); // the freed port is reused
  // Domain 1 closing g1 must not touch dom0's port, which now belongs to domain 2.
  a.closePort(1, g1);
  assert.deepEqual(a.portEntry(0, local), {
    state: PORT_STATE.INTERDOMAIN,
    remoteDomid: 2,
    remotePort: g2,
  });
});

test('wakeDomain() releases a thread blocked on the poll sequence', () => {
  const a = area();
  const seq = Atomics.load(a.words, a.pollSeqIndex(1));
  a.wakeDomain(1);
  assert.equal(Atomics.wait(a.words, a.pollSeqIndex(1), seq, 0), 'not-equal');
});

test('Random sequences of alloc, bind, close and send keep every interdomain pair symmetric', () => {
  const D = 3;
  const P = 32;
  const op = fc.oneof(
    fc.record({ kind: fc.constant('alloc' as const), d: fc.nat(D - 1), r: fc.nat(D - 1) }),
    fc.record({
      kind: fc.constant('bind' as const),
      d: fc.nat(D - 1),
      r: fc.nat(D - 1),
      p: fc.nat(P),
    }),
    fc.record({ kind: fc.constant('close' as const), d: fc.nat(D - 1), p: fc.nat(P) }),
    fc.record({ kind: fc.constant('send' as const), d: fc.nat(D - 1), p: fc.nat(P) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const a = area(D, P);
      for (const o of ops) {
        switch (o.kind) {
          case 'alloc':
            a.allocUnbound(o.d, o.r, false);
            break;
          case 'bind':
            a.bindInterdomain(o.d, o.r, o.p, false);
            break;
          case 'close':
            a.closePort(o.d, o.p);
            break;
          case 'send':
            a.send(o.d, o.p);
            break;
          default: {
            const never: never = o;
            throw new Error(String(never));
          }
        }
      }
      for (let d = 0; d < D; d++) {
        for (let p = 1; p < P; p++) {
          const e = a.portEntry(d, p);
          assert.notEqual(e.state, PORT_STATE.RESERVED);
          if (e.state === PORT_STATE.INTERDOMAIN) {
            assert.deepEqual(a.portEntry(e.remoteDomid, e.remotePort), {
              state: PORT_STATE.INTERDOMAIN,
              remoteDomid: d,
              remotePort: p,
            });
          }
        }
      }
    }),
    { numRuns: 300 },
  );
});
