// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Logger } from '../platform/types.js';
import { XsClient } from '../xenstore/client/index.js';
import { XsServer, connectInProcess } from '../xenstore/server/index.js';
import { AER_STATE_FAILED, watchAerFailures, type WatchAerFailuresOptions } from './index.js';

/** A client of an in-memory daemon (the server's dispatcher behind a memory pipe). */
function connect(server: XsServer): XsClient {
  return new XsClient(connectInProcess(server), { timeoutMs: 2000 });
}

interface Call {
  readonly domid: number;
  readonly reason: string;
}

/** Records destroyDomain calls; `next()` waits for the next one (1 s at most). */
class Destroyer {
  readonly calls: Call[] = [];
  #waiters: ((c: Call) => void)[] = [];
  fail = false;

  readonly destroyDomain = (domid: number, reason: string): Promise<void> => {
    const call = { domid, reason };
    this.calls.push(call);
    for (const w of this.#waiters.splice(0)) w(call);
    return this.fail ? Promise.reject(new Error('xl destroy failed')) : Promise.resolve();
  };

  next(): Promise<Call> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no destroyDomain call within 1 s (calls so far: ${this.calls.length})`));
      }, 1000);
      this.#waiters.push((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }
}

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const push =
    (level: string) =>
    (_obj: object, msg?: string): void => {
      lines.push(`${level}: ${msg ?? ''}`);
    };
  return {
    lines,
    logger: { debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') },
  };
}

const be = (domid: number, backendDomid = 0): string =>
  `/local/domain/${backendDomid}/backend/pci/${domid}/0`;

/** A backend directory as attachPci leaves it, enough for the watch's checks. */
async function attached(xs: XsClient, domid: number, backendDomid = 0): Promise<void> {
  await xs.write(`${be(domid, backendDomid)}/frontend-id`, String(domid));
  await xs.write(`${be(domid, backendDomid)}/state`, '4');
  await xs.write(`${be(domid, backendDomid)}/num_devs`, '1');
}

/** pciback's `kill_domain_by_device`: aerState written in a transaction. */
async function killByDevice(xs: XsClient, domid: number, backendDomid = 0): Promise<void> {
  await xs.transaction(async (tx) => {
    await tx.write(`${be(domid, backendDomid)}/aerState`, AER_STATE_FAILED);
  });
}

function setup(options: Partial<WatchAerFailuresOptions> = {}) {
  const server = new XsServer();
  const toolstack = connect(server);
  const pciback = connect(server);
  const destroyer = new Destroyer();
  const { logger, lines } = recordingLogger();
  const watch = async () =>
    watchAerFailures(toolstack, {
      destroyDomain: destroyer.destroyDomain,
      logger,
      ...options,
    });
  const close = (): void => {
    toolstack.close();
    pciback.close();
  };
  return { toolstack, pciback, destroyer, lines, watch, close };
}

test('watchAerFailures() destroys the guest once when pciback writes aerState = aerfail', async () => {
  const { pciback, destroyer, watch, close } = setup();
  await attached(pciback, 5);
  const aer = await watch();
  const call = destroyer.next();
  await killByDevice(pciback, 5);
  const { domid, reason } = await call;
  assert.equal(domid, 5);
  assert.match(reason, /^Destroying domain 5: /);
  assert.ok(reason.includes('"/local/domain/0/backend/pci/5/0/aerState" = "aerfail"'), reason);

  // The same failure seen again (rewritten, other keys of the directory changing): no call.
  await pciback.write(`${be(5)}/aerState`, AER_STATE_FAILED);
  await pciback.write(`${be(5)}/state`, '5');
  await pciback.write(`${be(5)}/state-0`, '5');
  // A sentinel failure of another guest: checks run in event order, so when it is acted
  // on, everything before it was checked.
  await attached(pciback, 6);
  const sentinel = destroyer.next();
  await killByDevice(pciback, 6);
  assert.equal((await sentinel).domid, 6);
  assert.deepEqual(
    destroyer.calls.map((c) => c.domid),
    [5, 6],
  );
  await aer.close();
  close();
});

test('watchAerFailures() acts again on a new failure after the key was cleared or the directory recreated', async () => {
  const { pciback, destroyer, watch, close } = setup();
  await attached(pciback, 5);
  const aer = await watch();
  let call = destroyer.next();
  await killByDevice(pciback, 5);
  await call;
  await pciback.write(`${be(5)}/aerState`, 'ok');
  call = destroyer.next();
  await killByDevice(pciback, 5);
  assert.equal((await call).domid, 5);
  // The toolstack removes the whole backend tree (last detach / destroy), libxl re-creates it.
  await pciback.rm('/local/domain/0/backend/pci/5');
  await attached(pciback, 5);
  call = destroyer.next();
  await killByDevice(pciback, 5);
  assert.equal((await call).domid, 5);
  assert.equal(destroyer.calls.length, 3);
  await aer.close();
  close();
});

test('watchAerFailures() acts on a failure recorded before it started', async () => {
  const { pciback, destroyer, watch, close } = setup();
  await attached(pciback, 9);
  await killByDevice(pciback, 9);
  const call = destroyer.next();
  const aer = await watch();
  assert.equal((await call).domid, 9);
  await aer.close();
  close();
});

test('watchAerFailures() validates the domid from the path and the frontend-id', async () => {
  const { pciback, destroyer, lines, watch, close } = setup();
  const aer = await watch();
  const root = '/local/domain/0/backend/pci';
  // Not canonical decimal domids, a reserved one, and the backend domain itself.
  for (const entry of ['05', 'abc', '5x', '32752', '99999', '0']) {
    await pciback.write(`${root}/${entry}/0/frontend-id`, entry);
    await pciback.write(`${root}/${entry}/0/aerState`, AER_STATE_FAILED);
  }
  // frontend-id naming another domain, or missing.
  await pciback.write(`${be(7)}/frontend-id`, '8');
  await pciback.write(`${be(7)}/aerState`, AER_STATE_FAILED);
  await pciback.write(`${be(8)}/aerState`, AER_STATE_FAILED);
  // Not the device-0 directory pciback writes to.
  await pciback.write(`${root}/4/1/frontend-id`, '4');
  await pciback.write(`${root}/4/1/aerState`, AER_STATE_FAILED);
  // A value other than aerfail.
  await attached(pciback, 3);
  await pciback.write(`${be(3)}/aerState`, 'aerok');

  await attached(pciback, 6);
  const sentinel = destroyer.next();
  await killByDevice(pciback, 6);
  assert.equal((await sentinel).domid, 6);
  assert.deepEqual(
    destroyer.calls.map((c) => c.domid),
    [6],
  );
  assert.ok(
    lines.some((l) => l.includes('domain 0 is the backend domain itself')),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) =>
      l.includes(`Ignoring "${be(7)}/aerState": the directory's frontend-id is "8"`),
    ),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) =>
      l.includes(`Ignoring "${be(8)}/aerState": the directory's frontend-id is missing`),
    ),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => l.includes('"05" is not a domain id')),
    lines.join('\n'),
  );
  await aer.close();
  close();
});

test('watchAerFailures() logs a failed destroyDomain and retries on the next change', async () => {
  const { pciback, destroyer, lines, watch, close } = setup();
  await attached(pciback, 5);
  const aer = await watch();
  destroyer.fail = true;
  let call = destroyer.next();
  await killByDevice(pciback, 5);
  await call;
  destroyer.fail = false;
  call = destroyer.next();
  await pciback.write(`${be(5)}/aerState`, AER_STATE_FAILED);
  assert.equal((await call).domid, 5);
  assert.equal(destroyer.calls.length, 2);
  assert.ok(
    lines.some((l) => l === 'error: Cannot destroy domain 5 after an AER failure'),
    lines.join('\n'),
  );
  await aer.close();
  close();
});

test('watchAerFailures() watches the given backend domain only, and close() stops it', async () => {
  const { toolstack, pciback, destroyer, watch, close } = setup({ backendDomid: 3 });
  const aer = await watch();
  await attached(pciback, 5, 0);
  await killByDevice(pciback, 5, 0); // dom0's tree: not watched
  await attached(pciback, 5, 3);
  const call = destroyer.next();
  await killByDevice(pciback, 5, 3);
  const { domid, reason } = await call;
  assert.equal(domid, 5);
  assert.ok(reason.includes('"/local/domain/3/backend/pci/5/0/aerState"'), reason);

  await aer.close();
  await aer.close(); // idempotent
  await attached(pciback, 6, 3);
  await killByDevice(pciback, 6, 3);
  // Any event for the closed watch would reach the toolstack before this reply.
  await toolstack.read('/local/domain/3/backend/pci/6/0/aerState');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(
    destroyer.calls.map((c) => c.domid),
    [5],
  );
  close();
});

test('watchAerFailures() refuses a backend domid that is not a domain id', async () => {
  const { watch, close } = setup({ backendDomid: 0x7ff0 });
  await assert.rejects(watch(), RangeError);
  close();
});
