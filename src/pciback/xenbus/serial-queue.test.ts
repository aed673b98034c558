// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerialQueue } from './serial-queue.js';

test('SerialQueue.run() runs jobs one at a time in queue order', async () => {
  const q = new SerialQueue(() => undefined);
  const events: string[] = [];
  let running = 0;
  const job = (name: string) => async () => {
    running++;
    assert.equal(running, 1, 'never two at once');
    events.push(`start ${name}`);
    await new Promise((resolve) => setImmediate(resolve));
    events.push(`end ${name}`);
    running--;
    return name;
  };
  const results = await Promise.all([
    q.run('a', job('a')),
    q.run('b', job('b')),
    q.run('c', job('c')),
  ]);
  assert.deepEqual(results, ['a', 'b', 'c']);
  assert.deepEqual(events, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  assert.equal(q.pending, 0);
});

test('SerialQueue reports a failing job and carries on', async () => {
  const errors: [unknown, string][] = [];
  const q = new SerialQueue((err, label) => errors.push([err, label]));
  const failed = q.run('bad', (): number => {
    throw new Error('boom');
  });
  const rejected = q.run('worse', (): Promise<number> => Promise.reject(new Error('bang')));
  const ok = q.run('good', () => 42);
  assert.equal(await failed, undefined);
  assert.equal(await rejected, undefined);
  assert.equal(await ok, 42);
  assert.deepEqual(
    errors.map(([e, l]) => `${l}: ${(e as Error).message}`),
    ['bad: boom', 'worse: bang'],
  );
});

test('SerialQueue.whenIdle() waits for jobs queued by running jobs', async () => {
  const q = new SerialQueue(() => {
    throw new Error('a failing error handler is contained');
  });
  const done: string[] = [];
  void q.run('outer', async () => {
    await new Promise((resolve) => setImmediate(resolve));
    void q.run('inner', () => {
      done.push('inner');
      throw new Error('x');
    });
    done.push('outer');
  });
  await q.whenIdle();
  assert.deepEqual(done, ['outer', 'inner']);
  assert.equal(q.pending, 0);
});
