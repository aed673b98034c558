// SPDX-License-Identifier: MIT
/**
 * XSA-332 (CVE-2020-27673), pciback part "xen/pciback: use lateeoi irq binding"
 * (pciback-fixes P1 test replacement, P5): a spurious EOI for events with nothing to do,
 * one draining worker, one non-spurious EOI after the last op.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XEN_PCI_OP } from '../../abi/pciif.js';
import { XEN_EOI_FLAG } from '../../platform/types.js';
import { opActive, postOp } from '../device/test-fakes.js';
import { channelFixture } from './channel-test-helpers.js';

const READ = { cmd: XEN_PCI_OP.conf_read, domain: 0, bus: 0, devfn: 0, offset: 0, size: 4 };

test('XSA-332: events with XEN_PCIF_active clear schedule no work and each gets a spurious EOI', () => {
  const fx = channelFixture();
  for (let i = 0; i < 100; i++) fx.kick();
  assert.equal(fx.jobs.length, 0);
  assert.deepEqual(fx.evtchn.eois, Array<number>(100).fill(XEN_EOI_FLAG.SPURIOUS));
  assert.equal(fx.chan.stats().spuriousKicks, 100);
  assert.equal(fx.chan.stats().ops, 0);
  assert.equal(fx.evtchn.notifies, 0);
});

test('XSA-332: K ops posted back-to-back are drained by one worker run, EOI(0) once after the last', () => {
  const fx = channelFixture();
  const K = 20;
  let posted = 1;
  const eoisAtNotify: number[] = [];
  fx.evtchn.onNotify = () => {
    eoisAtNotify.push(fx.evtchn.eois.length);
    // The frontend posts its next op as soon as it sees the answer.
    if (posted < K) {
      posted++;
      postOp(fx.mapping, { ...READ, offset: 4 * (posted - 1) });
    }
  };
  postOp(fx.mapping, READ);
  fx.kick();
  assert.equal(fx.jobs.length, 1);
  assert.equal(fx.runJobs(), 1);
  assert.equal(fx.chan.stats().ops, K);
  assert.equal(fx.chan.stats().workerRuns, 1);
  // The channel stayed masked (no EOI) until the last op was answered, then one EOI(0).
  assert.deepEqual(eoisAtNotify, Array<number>(K).fill(0));
  assert.deepEqual(fx.evtchn.eois, [0]);
  assert.equal(opActive(fx.mapping), false);
});

test('XSA-332: an event during an op does not start a second worker', () => {
  const late: { fx?: ReturnType<typeof channelFixture> } = {};
  let kicksDuringOp = 0;
  const fx = channelFixture({
    wrapTopology: (t) => ({
      get: (d, b, f) => {
        // The frontend kicks again while the backend works on the op.
        if (late.fx !== undefined && kicksDuringOp < 3) {
          kicksDuringOp++;
          late.fx.kick();
        }
        return t.get(d, b, f);
      },
      find: (dev) => t.find(dev),
    }),
  });
  late.fx = fx;
  postOp(fx.mapping, READ);
  fx.kick();
  assert.equal(fx.runJobs(), 1);
  assert.equal(kicksDuringOp, 1);
  assert.equal(fx.chan.stats().workerRuns, 1);
  assert.equal(fx.chan.stats().irqWhileEoiPending, 1);
  assert.equal(fx.chan.stats().ops, 1);
});

test('XSA-332: a worker that reaches its op budget yields without EOI and keeps the op claimed', () => {
  const fx = channelFixture({ channel: { maxOpsPerRun: 4 } });
  let remaining = 9;
  fx.evtchn.onNotify = () => {
    if (--remaining > 0) postOp(fx.mapping, READ);
  };
  postOp(fx.mapping, READ);
  fx.kick();
  fx.jobs.shift()?.();
  assert.equal(fx.chan.stats().ops, 4);
  assert.deepEqual(fx.evtchn.eois, []);
  // A kick now (the channel is masked in reality) must not start another worker.
  assert.equal(fx.jobs.length, 1);
  fx.runJobs();
  assert.equal(fx.chan.stats().ops, 9);
  // One run started by the event, continued twice after budget yields; one EOI.
  assert.equal(fx.chan.stats().workerRuns, 1);
  assert.equal(fx.chan.stats().budgetYields, 2);
  assert.deepEqual(fx.evtchn.eois, [0]);
});

test('XSA-332: after the worker, an event without a posted op is spurious again', () => {
  const fx = channelFixture();
  postOp(fx.mapping, READ);
  fx.kick();
  fx.runJobs();
  fx.kick();
  assert.deepEqual(fx.evtchn.eois, [0, XEN_EOI_FLAG.SPURIOUS]);
});
