// SPDX-License-Identifier: MIT
// The late-EOI rules of spec/pciback-fixes.md P1 (XSA-332), driven with a manual clock
// and synchronous upcalls so every count is exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DOM0,
  XEN_EOI_FLAG,
  createXenbusEventCounters,
  evtchnPort,
  type BoundEventChannel,
  type DomId,
  type EventChannelHandler,
  type EvtchnPort,
  type XenbusEventCounters,
} from '../../types.js';
import type { SimBackendEventChannels } from './backend-event-channels.js';
import { SimHypervisor } from './hypervisor.js';
import { MASK_REASON, type IrqState } from './irq-info.js';
import { ManualJiffiesClock } from './jiffies.js';
import type { SimGuestHypercalls } from './guest-hypercalls.js';

interface Rig {
  xen: SimHypervisor;
  clock: ManualJiffiesClock;
  guest: SimGuestHypercalls;
  guestDomid: DomId;
}

function irq(evtchn: SimBackendEventChannels, port: EvtchnPort): IrqState {
  const state = evtchn.irqState(port);
  assert.ok(state, `no channel on port ${port}`);
  return state;
}

function rig(hz = 250): Rig {
  const clock = new ManualJiffiesClock({ hz });
  const xen = new SimHypervisor({ clock, backend: { autoStart: false } });
  const { domid } = xen.createDomain({ memoryPages: 4 });
  return { xen, clock, guest: xen.guestHypercalls(domid), guestDomid: domid };
}

function bind(
  r: Rig,
  handler: EventChannelHandler,
  counters: XenbusEventCounters,
  lateEoi = true,
): { channel: BoundEventChannel; guestPort: ReturnType<SimGuestHypercalls['allocUnbound']> } {
  const guestPort = r.guest.allocUnbound(DOM0);
  const result = r.xen
    .eventChannels()
    .bindInterdomain(r.guestDomid, guestPort, handler, { lateEoi, counters });
  assert.ok(result.ok);
  return { channel: result.channel, guestPort };
}

/**
 * N deliveries of a frontend that never has work: the first is the event Xen raises at
 * bind time, each further one is a notify. A delayed EOI is completed by advancing one
 * jiffy before the next upcall.
 */
function floodSpurious(
  n: number,
  threshold: number,
): { counters: XenbusEventCounters; handled: number } {
  const r = rig();
  const counters = createXenbusEventCounters();
  counters.spuriousThreshold = threshold;
  let handled = 0;
  const { guestPort } = bind(
    r,
    (ch) => {
      handled += 1;
      ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
    },
    counters,
  );
  const evtchn = r.xen.eventChannels();
  evtchn.processUpcall();
  for (let i = 1; i < n; i++) {
    assert.equal(r.guest.notify(guestPort), 0);
    r.clock.advance(1);
    evtchn.processUpcall();
  }
  r.xen.dispose();
  return { counters, handled };
}

test('N spurious deliveries with threshold 1 delay every second EOI by one jiffy', () => {
  for (const n of [1, 2, 3, 10, 101]) {
    const { counters, handled } = floodSpurious(n, 1);
    assert.equal(handled, n);
    assert.equal(counters.events, n);
    assert.equal(counters.spuriousEvents, n);
    assert.equal(counters.jiffiesEoiDelayed, Math.floor(n / 2), `n=${n}`);
  }
});

test('N spurious deliveries with threshold 4 delay every fifth EOI', () => {
  for (const n of [4, 5, 9, 10, 103]) {
    const { counters } = floodSpurious(n, 4);
    assert.equal(counters.events, n);
    assert.equal(counters.spuriousEvents, n);
    assert.equal(counters.jiffiesEoiDelayed, Math.floor(n / 5), `n=${n}`);
  }
});

test('A spurious threshold of 0 behaves as 1', () => {
  const { counters } = floodSpurious(20, 0);
  assert.equal(counters.jiffiesEoiDelayed, 10);
});

test('A deferred spurious EOI keeps the channel masked until its jiffy, then unmasks through the non-spurious path', () => {
  const r = rig();
  const counters = createXenbusEventCounters();
  const { channel, guestPort } = bind(
    r,
    (ch) => {
      ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
    },
    counters,
  );
  const evtchn = r.xen.eventChannels();
  evtchn.processUpcall(); // spuriousCnt 1: unmasked at once
  assert.equal(irq(evtchn, channel.localPort).spuriousCnt, 1);
  assert.equal(irq(evtchn, channel.localPort).maskReasons, 0);
  r.guest.notify(guestPort);
  evtchn.processUpcall(); // spuriousCnt 2 > 1: deferred by 2^(2-1-1) = 1 jiffy
  const queued = irq(evtchn, channel.localPort);
  assert.equal(queued.spuriousCnt, 2);
  assert.equal(queued.eoiTime, 1);
  assert.equal(queued.eoiQueued, true);
  assert.equal(queued.maskReasons, MASK_REASON.EOI_PENDING);
  assert.equal(r.xen.eventArea.isMasked(DOM0, channel.localPort), true);
  assert.deepEqual(evtchn.queuedEois(), [channel.localPort]);
  // Notifications while masked are not delivered...
  r.guest.notify(guestPort);
  r.guest.notify(guestPort);
  assert.equal(evtchn.processUpcall(), 0);
  // ...until the timer completes the EOI: counter reset, unmasked, one delivery.
  r.clock.advance(1);
  const after = irq(evtchn, channel.localPort);
  assert.equal(after.spuriousCnt, 0);
  assert.equal(after.eoiTime, 0);
  assert.equal(after.isActive, false);
  assert.equal(after.maskReasons, 0);
  assert.deepEqual(evtchn.queuedEois(), []);
  assert.equal(evtchn.processUpcall(), 1);
  assert.equal(counters.events, 3);
  r.xen.dispose();
});

test('A non-spurious EOI resets the spurious counter and unmasks at once', () => {
  const r = rig();
  const counters = createXenbusEventCounters();
  let spurious = true;
  const { channel, guestPort } = bind(
    r,
    (ch) => {
      ch.lateEoi(spurious ? XEN_EOI_FLAG.SPURIOUS : 0);
    },
    counters,
  );
  const evtchn = r.xen.eventChannels();
  evtchn.processUpcall();
  assert.equal(irq(evtchn, channel.localPort).spuriousCnt, 1);
  spurious = false;
  r.guest.notify(guestPort);
  evtchn.processUpcall();
  const s = irq(evtchn, channel.localPort);
  assert.equal(s.spuriousCnt, 0);
  assert.equal(s.maskReasons, 0);
  assert.equal(s.isActive, false);
  assert.equal(s.eoiQueued, false);
  assert.equal(counters.spuriousEvents, 1);
  assert.equal(counters.jiffiesEoiDelayed, 0);
  r.xen.dispose();
});

test('Without an EOI the channel stays masked and active, and further events coalesce', () => {
  const r = rig();
  const counters = createXenbusEventCounters();
  let pendingEoi: BoundEventChannel | undefined;
  let handled = 0;
  const { channel, guestPort } = bind(
    r,
    (ch) => {
      handled += 1;
      pendingEoi = ch;
    },
    counters,
  );
  const evtchn = r.xen.eventChannels();
  evtchn.processUpcall();
  for (let i = 0; i < 5; i++) r.guest.notify(guestPort);
  assert.equal(evtchn.processUpcall(), 0);
  assert.equal(irq(evtchn, channel.localPort).isActive, true);
  pendingEoi?.lateEoi(0);
  assert.equal(evtchn.processUpcall(), 1);
  assert.equal(handled, 2);
  assert.equal(counters.events, 2);
  r.xen.dispose();
});

test('An EOI request is ignored while one is already queued', () => {
  const r = rig();
  const counters = createXenbusEventCounters();
  const { channel, guestPort } = bind(
    r,
    (ch) => {
      ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
    },
    counters,
  );
  const evtchn = r.xen.eventChannels();
  evtchn.processUpcall();
  r.guest.notify(guestPort);
  evtchn.processUpcall(); // queued
  channel.lateEoi(0);
  channel.lateEoi(XEN_EOI_FLAG.SPURIOUS);
  const s = irq(evtchn, channel.localPort);
  assert.equal(s.eoiQueued, true);
  assert.equal(s.spuriousCnt, 2);
  assert.equal(s.maskReasons, MASK_REASON.EOI_PENDING);
  assert.equal(counters.spuriousEvents, 2);
  r.xen.dispose();
});

test('The spurious counter stops growing once 2^n >= 4*HZ', () => {
  for (const [hz, saturated] of [
    [100, 9],
    [250, 10],
    [1000, 12],
  ] as const) {
    const r = rig(hz);
    const counters = createXenbusEventCounters();
    counters.spuriousThreshold = 1000; // never delays, so every EOI reaches the counter
    const { channel, guestPort } = bind(
      r,
      (ch) => {
        ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
      },
      counters,
    );
    const evtchn = r.xen.eventChannels();
    evtchn.processUpcall();
    for (let i = 0; i < 40; i++) {
      r.guest.notify(guestPort);
      evtchn.processUpcall();
    }
    assert.equal(irq(evtchn, channel.localPort).spuriousCnt, saturated, `HZ=${hz}`);
    assert.equal(counters.jiffiesEoiDelayed, 0);
    r.xen.dispose();
  }
});

test('Notifications sent while the channel is explicitly masked coalesce into one delivery after unmask', () => {
  const r = rig();
  const counters = createXenbusEventCounters();
  let handled = 0;
  const { channel, guestPort } = bind(
    r,
    (ch) => {
      handled += 1;
      ch.lateEoi(0);
    },
    counters,
  );
  const evtchn = r.xen.eventChannels();
  evtchn.processUpcall();
  channel.mask();
  for (let i = 0; i < 7; i++) r.guest.notify(guestPort);
  assert.equal(evtchn.processUpcall(), 0);
  assert.equal(r.xen.eventArea.upcallRaised(DOM0), false);
  channel.unmask();
  assert.equal(r.xen.eventArea.upcallRaised(DOM0), true);
  assert.equal(evtchn.processUpcall(), 1);
  assert.equal(handled, 2);
  assert.equal(evtchn.processUpcall(), 0);
  r.xen.dispose();
});

test('The epoch increments at the end of each upcall', () => {
  const r = rig();
  const evtchn = r.xen.eventChannels();
  const before = evtchn.epoch;
  evtchn.processUpcall();
  evtchn.processUpcall();
  assert.equal(evtchn.epoch, before + 2);
  r.xen.dispose();
});

/** Binds `count` late-EOI channels, all pending from their bind. */
function manyChannels(
  r: Rig,
  count: number,
  handler: (index: number, ch: BoundEventChannel) => void,
): BoundEventChannel[] {
  const channels: BoundEventChannel[] = [];
  for (let i = 0; i < count; i++) {
    const { channel } = bind(
      r,
      (ch) => {
        handler(i, ch);
      },
      createXenbusEventCounters(),
    );
    channels.push(channel);
  }
  return channels;
}

test('The loop guard defers EOIs of one long upcall once event_loop_timeout has passed', () => {
  const r = rig();
  let delivered = 0;
  const channels = manyChannels(r, 600, (_i, ch) => {
    delivered += 1;
    // Time passes inside the upcall, after the first check at event 256 set the deadline.
    if (delivered === 300) r.clock.advance(3);
    ch.lateEoi(0);
  });
  const evtchn = r.xen.eventChannels();
  const epoch = evtchn.epoch;
  assert.equal(evtchn.processUpcall(), 600);
  // The check at event 512 finds the deadline (256's now + 2) passed: events 512..600 are
  // deferred by event_eoi_delay even though their EOIs are not spurious.
  const queued = evtchn.queuedEois();
  assert.equal(queued.length, 600 - 511);
  const first = irq(evtchn, evtchnPort(queued[0] ?? 0));
  assert.equal(first.eoiTime, 3 + 10);
  assert.equal(first.irqEpoch, epoch);
  assert.equal(first.maskReasons, MASK_REASON.EOI_PENDING);
  const undeferred = channels.filter((c) => !irq(evtchn, c.localPort).eoiQueued);
  assert.equal(undeferred.length, 511);
  for (const c of undeferred) assert.equal(irq(evtchn, c.localPort).maskReasons, 0);
  r.clock.advance(9);
  assert.equal(evtchn.queuedEois().length, 89);
  r.clock.advance(1);
  assert.equal(evtchn.queuedEois().length, 0);
  for (const c of channels) {
    const s = irq(evtchn, c.localPort);
    assert.equal(s.maskReasons, 0);
    assert.equal(s.isActive, false);
    assert.equal(s.spuriousCnt, 0);
  }
  r.xen.dispose();
});

test('A loop-guard mark does not defer an EOI issued after the upcall ended (epoch moved on)', () => {
  const r = rig();
  const late: BoundEventChannel[] = [];
  let delivered = 0;
  manyChannels(r, 520, (_i, ch) => {
    delivered += 1;
    if (delivered === 300) r.clock.advance(3);
    if (delivered >= 512) late.push(ch);
    else ch.lateEoi(0);
  });
  const evtchn = r.xen.eventChannels();
  evtchn.processUpcall();
  assert.equal(late.length, 520 - 511);
  for (const ch of late) ch.lateEoi(0);
  assert.deepEqual(evtchn.queuedEois(), []);
  for (const ch of late) {
    const s = irq(evtchn, ch.localPort);
    assert.equal(s.eoiTime, 0);
    assert.equal(s.maskReasons, 0);
  }
  r.xen.dispose();
});

test('Fewer than 512 events in one upcall never trip the loop guard', () => {
  const r = rig();
  manyChannels(r, 511, (_i, ch) => {
    r.clock.advance(1);
    ch.lateEoi(0);
  });
  const evtchn = r.xen.eventChannels();
  assert.equal(evtchn.processUpcall(), 511);
  assert.deepEqual(evtchn.queuedEois(), []);
  r.xen.dispose();
});

test('The delayed-EOI list stays ordered by eoiTime and the timer follows its head', () => {
  const r = rig();
  const counters = createXenbusEventCounters();
  const evtchn = r.xen.eventChannels();
  const a = bind(
    r,
    (ch) => {
      ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
    },
    counters,
  );
  const b = bind(
    r,
    (ch) => {
      ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
    },
    counters,
  );
  evtchn.processUpcall(); // both: spuriousCnt 1, unmasked
  r.guest.notify(b.guestPort);
  evtchn.processUpcall(); // b queued for jiffy 1
  r.guest.notify(a.guestPort);
  evtchn.processUpcall(); // a queued for jiffy 1 too, after b
  assert.deepEqual(evtchn.queuedEois(), [b.channel.localPort, a.channel.localPort]);
  assert.equal(r.clock.pendingTimers, 1);
  r.clock.advance(1);
  assert.deepEqual(evtchn.queuedEois(), []);
  assert.equal(r.clock.pendingTimers, 0);
  r.xen.dispose();
});

test('unbind() takes the channel off the delayed list, counts it out and ignores later EOIs', () => {
  const r = rig();
  const counters = createXenbusEventCounters();
  const { channel, guestPort } = bind(
    r,
    (ch) => {
      ch.lateEoi(XEN_EOI_FLAG.SPURIOUS);
    },
    counters,
  );
  const evtchn = r.xen.eventChannels();
  assert.equal(counters.eventChannels, 1);
  evtchn.processUpcall();
  r.guest.notify(guestPort);
  evtchn.processUpcall();
  assert.deepEqual(evtchn.queuedEois(), [channel.localPort]);
  channel.unbind();
  assert.equal(channel.bound, false);
  assert.equal(counters.eventChannels, 0);
  assert.deepEqual(evtchn.queuedEois(), []);
  channel.lateEoi(XEN_EOI_FLAG.SPURIOUS);
  assert.equal(counters.spuriousEvents, 2);
  // Counters survive the unbind (they belong to the xenbus device).
  assert.equal(counters.events, 2);
  r.clock.advance(5);
  assert.equal(evtchn.processUpcall(), 0);
  r.xen.dispose();
});

test('A channel bound without late EOI is unmasked at ack and ignores lateEoi()', () => {
  const r = rig();
  const counters = createXenbusEventCounters();
  let handled = 0;
  const { channel, guestPort } = bind(
    r,
    () => {
      handled += 1;
    },
    counters,
    false,
  );
  const evtchn = r.xen.eventChannels();
  evtchn.processUpcall();
  r.guest.notify(guestPort);
  evtchn.processUpcall();
  assert.equal(handled, 2);
  assert.equal(counters.events, 2);
  channel.lateEoi(XEN_EOI_FLAG.SPURIOUS);
  assert.equal(counters.spuriousEvents, 0);
  const s = irq(evtchn, channel.localPort);
  assert.equal(s.maskReasons, 0);
  assert.equal(s.isActive, false);
  r.xen.dispose();
});
