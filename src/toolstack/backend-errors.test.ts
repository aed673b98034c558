// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XsClient } from '../xenstore/client/index.js';
import { XsServer, connectInProcess } from '../xenstore/server/index.js';
import { BACKEND_ERROR_MAX_LENGTH, watchBackendErrors, type BackendErrorReport } from './index.js';

const ROOT = '/local/domain/0/error/backend/pci';

/** Collects reports; `next()` waits for the next one (1 s at most). */
class Collector {
  readonly reports: BackendErrorReport[] = [];
  #waiters: ((r: BackendErrorReport) => void)[] = [];

  readonly onError = (report: BackendErrorReport): void => {
    this.reports.push(report);
    for (const w of this.#waiters.splice(0)) w(report);
  };

  next(): Promise<BackendErrorReport> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no report within 1 s (${this.reports.length} so far)`));
      }, 1000);
      this.#waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }
}

async function settle(xs: XsClient): Promise<void> {
  // A round trip after the write: the watch event was queued before its answer.
  await xs.readString('/local').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 20));
}

test('reports a text present at start and each new one, once, with its errno', async () => {
  const server = new XsServer();
  const xs = new XsClient(connectInProcess(server), { timeoutMs: 2000 });
  await xs.write(`${ROOT}/5/0/error`, '22 Error reading number of devices');
  const c = new Collector();
  const watch = await watchBackendErrors(xs, { onError: c.onError });
  try {
    assert.deepEqual(await c.next(), {
      domid: 5,
      devid: 0,
      text: '22 Error reading number of devices',
      errno: 22,
    });
    await xs.write(`${ROOT}/7/0/error`, '19 Device 0000:03:00.0 was unbound');
    assert.deepEqual(await c.next(), {
      domid: 7,
      devid: 0,
      text: '19 Device 0000:03:00.0 was unbound',
      errno: 19,
    });
    // The same text again (a write of an unchanged value) is not a new report.
    await xs.write(`${ROOT}/7/0/error`, '19 Device 0000:03:00.0 was unbound');
    await settle(xs);
    assert.equal(c.reports.length, 2);
    // Removed then written again: a new report.
    await xs.rm(`${ROOT}/7`);
    await settle(xs);
    await xs.write(`${ROOT}/7/0/error`, '19 Device 0000:03:00.0 was unbound');
    assert.equal((await c.next()).domid, 7);
  } finally {
    await watch.close();
    xs.close();
  }
});

test('ignores nodes that are not <domid>/<devid>/error and bounds the text', async () => {
  const server = new XsServer();
  const xs = new XsClient(connectInProcess(server), { timeoutMs: 2000 });
  const c = new Collector();
  const watch = await watchBackendErrors(xs, { onError: c.onError });
  try {
    await xs.write(`${ROOT}/x/0/error`, '5 not a domain');
    await xs.write(`${ROOT}/05/0/error`, '5 not canonical');
    await xs.write(`${ROOT}/5/0/other`, 'not the error node');
    await settle(xs);
    assert.equal(c.reports.length, 0);
    await xs.write(`${ROOT}/5/0/error`, `no errno ${'x'.repeat(3000)}`);
    const report = await c.next();
    assert.equal(report.errno, null);
    assert.equal(report.text.length, BACKEND_ERROR_MAX_LENGTH);
  } finally {
    await watch.close();
    xs.close();
  }
});

test('a bad backend domain id is refused', async () => {
  const server = new XsServer();
  const xs = new XsClient(connectInProcess(server), { timeoutMs: 2000 });
  try {
    await assert.rejects(
      watchBackendErrors(xs, { backendDomid: 0x7ff0, onError: () => undefined }),
      RangeError,
    );
  } finally {
    xs.close();
  }
});
