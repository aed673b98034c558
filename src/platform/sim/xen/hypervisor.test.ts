// SPDX-License-Identifier: MIT
// Domain lifecycle and the guest-side event API, in one thread (Node allows Atomics.wait
// on the main thread; waits here are either satisfied at once or 0 ms).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPcibackError } from '../../../errors.js';
import {
  DOM0,
  XEN_EOI_FLAG,
  createXenbusEventCounters,
  evtchnPort,
  type DomId,
} from '../../types.js';
import { PORT_STATE } from './event-area.js';
import { SimHypervisor } from './hypervisor.js';
import { ManualJiffiesClock } from './jiffies.js';
import { XEN_PAGE_SIZE } from './xen-abi.js';

function newHost(maxDomains = 64): SimHypervisor {
  return new SimHypervisor({
    maxDomains,
    clock: new ManualJiffiesClock(),
    backend: { autoStart: false },
  });
}

test('createDomain() hands out domids round-robin and does not reuse a destroyed id at once', () => {
  const xen = newHost(4);
  const a = xen.createDomain({ memoryPages: 1 }).domid;
  const b = xen.createDomain({ memoryPages: 1 }).domid;
  assert.deepEqual([a, b], [1, 2]);
  xen.destroyDomain(a);
  assert.equal(xen.createDomain({ memoryPages: 1 }).domid, 3);
  assert.equal(xen.createDomain({ memoryPages: 1 }).domid, 1); // wrapped
  assert.throws(
    () => xen.createDomain({ memoryPages: 1 }),
    (e: unknown) => isPcibackError(e, 'DOMAIN_LIMIT'),
  );
  assert.deepEqual(
    xen.listDomains().map((d) => d.domid),
    [0, 2, 3, 1],
  );
});

test('createDomain() gives the guest its own memory and a grant table in shared buffers', () => {
  const xen = newHost();
  const { domid, init } = xen.createDomain({ memoryPages: 3, grantFrames: 2, reservedPages: 2 });
  assert.equal(init.domid, domid);
  assert.equal(init.memory.byteLength, 3 * XEN_PAGE_SIZE);
  assert.equal(init.grantTable.byteLength, 2 * XEN_PAGE_SIZE);
  assert.ok(init.events instanceof SharedArrayBuffer);
  const guest = xen.guestHypercalls(domid);
  assert.equal(guest.allocPage(), 2); // 0 and 1 reserved
  assert.throws(
    () => guest.allocPage(),
    (e: unknown) => isPcibackError(e, 'GUEST_OUT_OF_MEMORY'),
  );
  guest.freePage(2);
  assert.equal(guest.allocPage(), 2);
  assert.throws(() => guest.pageBytes(3), RangeError);
  assert.throws(() => xen.createDomain({ memoryPages: 0 }), RangeError);
  assert.throws(() => xen.createDomain({ memoryPages: 1, grantFrames: 0 }), RangeError);
});

test('destroyDomain() refuses dom0 and reports unknown domains', () => {
  const xen = newHost();
  assert.throws(() => xen.destroyDomain(DOM0), RangeError);
  assert.equal(xen.destroyDomain(9 as DomId), false);
});

test('Destroying a guest closes its ports: the backend end becomes unbound and notify() is a no-op', () => {
  const xen = newHost();
  const { domid } = xen.createDomain({ memoryPages: 2 });
  const guest = xen.guestHypercalls(domid);
  const port = guest.allocUnbound(DOM0);
  const counters = createXenbusEventCounters();
  const r = xen.eventChannels().bindInterdomain(
    domid,
    port,
    (ch) => {
      ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
    },
    {
      lateEoi: true,
      counters,
    },
  );
  assert.ok(r.ok);
  assert.equal(r.channel.connected(), true);
  xen.destroyDomain(domid);
  assert.equal(r.channel.connected(), false);
  assert.equal(r.channel.bound, true); // the backend still owns its port until it unbinds
  r.channel.notify();
  assert.equal(xen.eventArea.portEntry(DOM0, r.channel.localPort).state, PORT_STATE.UNBOUND);
  // The dead guest's hypercalls do nothing and its waits return at once (the bound is
  // only there to fail a regression that would sit out the 60 s timeout).
  assert.equal(guest.dying, true);
  const t0 = performance.now();
  assert.equal(guest.waitForEvent(port, 60_000), false);
  assert.deepEqual(guest.wait(60_000), []);
  assert.equal(guest.poll(port, 60_000), false);
  assert.ok(performance.now() - t0 < 30_000);
  assert.equal(guest.notify(port), -22);
  r.channel.unbind();
  assert.equal(counters.eventChannels, 0);
  assert.equal(xen.eventArea.portEntry(DOM0, r.channel.localPort).state, PORT_STATE.FREE);
});

test('A guest sees dom0 notifications through poll(), waitForEvent() and wait()', () => {
  const xen = newHost();
  const { domid } = xen.createDomain({ memoryPages: 2 });
  const guest = xen.guestHypercalls(domid);
  const port = guest.allocUnbound(DOM0);
  const r = xen.eventChannels().bindInterdomain(domid, port, () => {});
  assert.ok(r.ok);
  assert.equal(guest.poll(port, 0), false);
  r.channel.notify();
  assert.equal(guest.poll(port, 0), true);
  assert.equal(guest.poll(port, 0), true); // poll does not consume
  assert.equal(guest.waitForEvent(port, 0), true);
  assert.equal(guest.waitForEvent(port, 0), false); // waitForEvent does
  r.channel.notify();
  assert.deepEqual(guest.wait(0), [port]);
  assert.deepEqual(guest.wait(0), []);
  // Masked: wait() does not report it, poll() still does (SCHEDOP_poll ignores masks).
  guest.mask(port);
  r.channel.notify();
  assert.deepEqual(guest.wait(0), []);
  assert.equal(guest.poll(port, 0), true);
  guest.unmask(port);
  assert.deepEqual(guest.wait(0), [port]);
  assert.equal(guest.poll(evtchnPort(0), 0), false);
  assert.equal(guest.poll(evtchnPort(5000), 0), false);
});

test('A paused guest does not take events until it is unpaused', () => {
  const xen = newHost();
  const { domid } = xen.createDomain({ memoryPages: 2 });
  const guest = xen.guestHypercalls(domid);
  const port = guest.allocUnbound(DOM0);
  const r = xen.eventChannels().bindInterdomain(domid, port, () => {});
  assert.ok(r.ok);
  assert.equal(xen.pauseDomain(domid), true);
  assert.equal(xen.listDomains().find((d) => d.domid === domid)?.state, 'paused');
  r.channel.notify();
  assert.equal(guest.poll(port, 0), false);
  assert.deepEqual(guest.wait(0), []);
  assert.equal(xen.unpauseDomain(domid), true);
  assert.deepEqual(guest.wait(0), [port]);
  assert.equal(xen.pauseDomain(77 as DomId), false);
});

test('A guest created paused gets the events sent meanwhile once unpaused', () => {
  const xen = newHost();
  const { domid } = xen.createDomain({ memoryPages: 2, paused: true });
  const guest = xen.guestHypercalls(domid);
  const port = guest.allocUnbound(DOM0);
  const r = xen.eventChannels().bindInterdomain(domid, port, () => {});
  assert.ok(r.ok);
  r.channel.notify();
  assert.equal(guest.waitForEvent(port, 0), false);
  xen.unpauseDomain(domid);
  assert.equal(guest.waitForEvent(port, 0), true);
});

test('bindInterdomain() reports bad remote domains and ports as errnos, never throws', () => {
  const xen = newHost();
  const { domid } = xen.createDomain({ memoryPages: 1 });
  const ec = xen.eventChannels();
  assert.deepEqual(
    ec.bindInterdomain(50 as DomId, evtchnPort(1), () => {}),
    { ok: false, errno: -3 },
  );
  // Port 1 is the guest's xenstore port (unbound for dom0); port 9 was never allocated.
  assert.deepEqual(
    ec.bindInterdomain(domid, evtchnPort(9), () => {}),
    { ok: false, errno: -22 },
  );
  assert.deepEqual(
    ec.bindInterdomain(domid, evtchnPort(0xffffffff), () => {}),
    { ok: false, errno: -22 },
  );
  const toolstackPort = xen.allocUnbound(domid, DOM0);
  assert.equal(ec.bindInterdomain(domid, toolstackPort, () => {}).ok, true);
  assert.throws(
    () => xen.allocUnbound(60 as DomId, DOM0),
    (e: unknown) => isPcibackError(e, 'EVTCHN_ALLOC_FAILED'),
  );
});

test('A throwing handler is logged and does not stop delivery to other channels', () => {
  const errors: object[] = [];
  const xen = new SimHypervisor({
    clock: new ManualJiffiesClock(),
    backend: { autoStart: false },
    logger: { debug() {}, info() {}, warn() {}, error: (o) => errors.push(o) },
  });
  const { domid } = xen.createDomain({ memoryPages: 1 });
  const guest = xen.guestHypercalls(domid);
  let reached = 0;
  const ec = xen.eventChannels();
  assert.ok(
    ec.bindInterdomain(domid, guest.allocUnbound(DOM0), () => {
      throw new Error('bug');
    }).ok,
  );
  assert.ok(
    ec.bindInterdomain(domid, guest.allocUnbound(DOM0), () => {
      reached += 1;
    }).ok,
  );
  assert.equal(ec.processUpcall(), 2);
  assert.equal(reached, 1);
  assert.equal(errors.length, 1);
});

test('Upcall scans resume after the last delivered port, so a busy low port cannot starve others', () => {
  const xen = newHost();
  const { domid } = xen.createDomain({ memoryPages: 1 });
  const guest = xen.guestHypercalls(domid);
  const ec = xen.eventChannels();
  const order: number[] = [];
  const ports = [0, 1, 2].map(() => guest.allocUnbound(DOM0));
  const bound = ports.map((p, i) => {
    const r = ec.bindInterdomain(domid, p, () => order.push(i), { lateEoi: false });
    assert.ok(r.ok);
    return r.channel;
  });
  ec.processUpcall();
  assert.deepEqual(order, [0, 1, 2]);
  order.length = 0;
  // After channel 1's event the next scan starts just past its port: channel 2 comes
  // before channel 0 although its port number is higher.
  guest.notify(ports[1] ?? evtchnPort(0));
  ec.processUpcall();
  order.length = 0;
  guest.notify(ports[0] ?? evtchnPort(0));
  guest.notify(ports[2] ?? evtchnPort(0));
  ec.processUpcall();
  assert.deepEqual(order, [2, 0]);
  assert.equal(bound.length, 3);
});

test('The wait loop delivers events on the event loop and stop() ends it', async () => {
  const xen = new SimHypervisor({
    clock: new ManualJiffiesClock(),
    backend: { waitTimeoutMs: 50 },
  });
  const { domid } = xen.createDomain({ memoryPages: 1 });
  const guest = xen.guestHypercalls(domid);
  const port = guest.allocUnbound(DOM0);
  let handled = 0;
  let wake: (() => void) | undefined;
  const r = xen.eventChannels().bindInterdomain(domid, port, () => {
    handled += 1;
    wake?.();
  });
  assert.ok(r.ok);
  assert.equal(xen.eventChannels().running, true);
  const delivered = async (): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        reject(new Error('no delivery within 10 s'));
      }, 10_000);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  };
  await delivered(); // the bind-time event
  guest.notify(port);
  await delivered();
  assert.equal(handled, 2);
  xen.dispose();
  assert.equal(xen.eventChannels().running, false);
});
