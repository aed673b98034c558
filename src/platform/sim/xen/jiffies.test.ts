// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_HZ, ManualJiffiesClock, RealJiffiesClock } from './jiffies.js';

test('ManualJiffiesClock runs due timers in due order, each at its own jiffy', () => {
  const clock = new ManualJiffiesClock({ hz: 100 });
  const seen: string[] = [];
  clock.setTimer(5, () => seen.push(`b@${clock.nowJiffies()}`));
  clock.setTimer(2, () => {
    seen.push(`a@${clock.nowJiffies()}`);
    // A timer armed by a timer fires in the same advance if it falls inside it.
    clock.setTimer(1, () => seen.push(`c@${clock.nowJiffies()}`));
  });
  clock.setTimer(5, () => seen.push(`b2@${clock.nowJiffies()}`));
  clock.advance(4);
  assert.deepEqual(seen, ['a@2', 'c@3']);
  assert.equal(clock.nowJiffies(), 4);
  clock.advance(10);
  assert.deepEqual(seen, ['a@2', 'c@3', 'b@5', 'b2@5']);
  assert.equal(clock.nowJiffies(), 14);
  assert.equal(clock.pendingTimers, 0);
});

test('ManualJiffiesClock timers can be cancelled and bad arguments are refused', () => {
  const clock = new ManualJiffiesClock();
  assert.equal(clock.hz, DEFAULT_HZ);
  let fired = false;
  const cancel = clock.setTimer(1, () => {
    fired = true;
  });
  cancel();
  clock.advance(2);
  assert.equal(fired, false);
  assert.throws(() => {
    clock.advance(-1);
  }, RangeError);
  assert.throws(() => clock.setTimer(Number.NaN, () => {}), RangeError);
  assert.throws(() => new ManualJiffiesClock({ hz: 0 }), RangeError);
});

test('RealJiffiesClock derives jiffies from its millisecond source', () => {
  let ms = 1000;
  const clock = new RealJiffiesClock({ hz: 250, nowMs: () => ms });
  assert.equal(clock.nowJiffies(), 0);
  ms += 3.9;
  assert.equal(clock.nowJiffies(), 0);
  ms += 0.1;
  assert.equal(clock.nowJiffies(), 1);
  ms += 1000;
  assert.equal(clock.nowJiffies(), 251);
});

test('RealJiffiesClock fires a timer no earlier than its jiffy, asynchronously', async () => {
  const clock = new RealJiffiesClock({ hz: 1000 });
  const start = clock.nowJiffies();
  let sync = true;
  const firedAt = await new Promise<number>((resolve) => {
    clock.setTimer(3, () => {
      assert.equal(sync, false);
      resolve(clock.nowJiffies());
    });
    sync = false;
  });
  assert.ok(firedAt >= start + 3);
  let fired = false;
  const cancel = clock.setTimer(1, () => {
    fired = true;
  });
  cancel();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fired, false);
});
