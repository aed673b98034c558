// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PCI_CHANNEL_IO,
  PCI_ERS_RESULT,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_SHAREDINFO_FLAGS_WORD,
  XEN_PCI_SHAREDINFO_OFFSET,
  XEN_PCIE_AER_OP_OFFSET,
  decodePcieAerOp,
  type PcieAerOp,
} from '../../abi/pciif.js';
import { PciAddress } from '../../pci/address.js';
import { XsClient, XsError, isXsError } from '../../xenstore/client/index.js';
import { XsServer, connectInProcess } from '../../xenstore/server/index.js';
import { channelFixture, type ChannelFixture } from '../channel/channel-test-helpers.js';
import {
  AER_STATE_FAILED,
  PcibackAer,
  aerKillNodename,
  type AerCallbackName,
  type AerConnection,
  type AerDeviceLookup,
} from './index.js';

const KILL_PATH = `${aerKillNodename(5)}/aerState`;
const OTHER = new PciAddress(0, 9, 0, 0);

type Situation = 'not-seized' | 'not-assigned' | 'not-connected' | 'no-handler' | 'connected';

interface Setup {
  readonly fx: ChannelFixture;
  readonly aer: PcibackAer;
  readonly xs: XsClient;
  /** What the guest saw in `aer_op`, one entry per request. */
  readonly requests: PcieAerOp[];
  /** The AER wait timers the channel started. */
  readonly timers: { delayMs: number; fire: () => void }[];
}

/**
 * A pciback with one device (real 0000:03:00.0, guest 0000:00:00.0) in `situation`. When
 * connected, the fake guest answers each request with the next of `answers` (or not at
 * all once they run out).
 */
function setup(situation: Situation, answers: readonly number[] = []): Setup {
  const timers: { delayMs: number; fire: () => void }[] = [];
  const fx = channelFixture({
    channel: {
      aerTimeoutMs: 1000,
      setTimer: (delayMs, callback) => {
        let live = true;
        timers.push({
          delayMs,
          fire: () => {
            if (live) callback();
          },
        });
        return () => {
          live = false;
        };
      },
    },
  });
  if (situation !== 'no-handler') {
    Atomics.or(fx.mapping.words, XEN_PCI_SHAREDINFO_FLAGS_WORD, XEN_PCI_FLAG_MASK.PCIB_AERHANDLER);
  }
  const requests: PcieAerOp[] = [];
  const queue = [...answers];
  const view = new DataView(fx.mapping.bytes.buffer, fx.mapping.bytes.byteOffset, 4096);
  fx.evtchn.onNotify = () => {
    const flags = Atomics.load(fx.mapping.words, XEN_PCI_SHAREDINFO_FLAGS_WORD);
    if ((flags & XEN_PCI_FLAG_MASK.PCIB_active) === 0) return;
    requests.push(decodePcieAerOp(view, XEN_PCI_SHAREDINFO_OFFSET.aer_op));
    const answer = queue.shift();
    if (answer === undefined) return; // a guest that never answers
    // pcifront's AER worker runs later: result, clear XEN_PCIB_active, notify.
    queueMicrotask(() => {
      view.setInt32(XEN_PCI_SHAREDINFO_OFFSET.aer_op + XEN_PCIE_AER_OP_OFFSET.err, answer, true);
      Atomics.and(fx.mapping.words, XEN_PCI_SHAREDINFO_FLAGS_WORD, ~XEN_PCI_FLAG_MASK.PCIB_active);
      fx.kick();
    });
  };
  const connection: AerConnection = {
    frontendDomid: 5,
    channel: situation === 'not-connected' ? undefined : fx.chan,
  };
  const devices: AerDeviceLookup = {
    find(address) {
      if (situation === 'not-seized' || !address.equals(fx.dev.address)) return undefined;
      return {
        device: fx.dev,
        connection: situation === 'not-assigned' ? undefined : connection,
      };
    },
  };
  const server = new XsServer();
  const xs = new XsClient(connectInProcess(server));
  return { fx, aer: new PcibackAer({ devices, xs, logger: fx.logger }), xs, requests, timers };
}

async function aerState(xs: XsClient): Promise<string | undefined> {
  try {
    return await xs.readString(KILL_PATH);
  } catch (err) {
    if (isXsError(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Call one handler the way the AER core does. */
function call(s: Setup, callback: AerCallbackName, address = s.fx.dev.address): Promise<unknown> {
  switch (callback) {
    case 'error_detected':
      return s.aer.errorDetected(address, PCI_CHANNEL_IO.frozen);
    case 'mmio_enabled':
      return s.aer.mmioEnabled(address);
    case 'slot_reset':
      return s.aer.slotReset(address);
    case 'resume':
      return s.aer.resume(address);
  }
}

const CALLBACKS: readonly AerCallbackName[] = [
  'error_detected',
  'mmio_enabled',
  'slot_reset',
  'resume',
];
const DEFAULTS: Readonly<Record<AerCallbackName, unknown>> = {
  error_detected: PCI_ERS_RESULT.CAN_RECOVER,
  mmio_enabled: PCI_ERS_RESULT.RECOVERED,
  slot_reset: PCI_ERS_RESULT.RECOVERED,
  resume: undefined,
};

for (const situation of ['not-seized', 'not-assigned'] as const) {
  test(`every AER handler logs and returns its default for a device that is ${situation}`, async () => {
    for (const callback of CALLBACKS) {
      const s = setup(situation, [PCI_ERS_RESULT.NONE]);
      assert.equal(await call(s, callback), DEFAULTS[callback], callback);
      assert.equal(s.requests.length, 0, `${callback}: nothing posted`);
      assert.equal(await aerState(s.xs), undefined, `${callback}: nobody killed`);
      assert.deepEqual(s.aer.stats().kills, []);
      assert.match(s.fx.logger.at('error')[0]?.msg ?? '', /not found\/assigned/);
      s.xs.close();
    }
  });
}

test('every AER handler kills a guest that holds the device without a connection', async () => {
  for (const callback of CALLBACKS) {
    const s = setup('not-connected');
    assert.equal(await call(s, callback), DEFAULTS[callback], callback);
    assert.equal(await aerState(s.xs), AER_STATE_FAILED, `${callback}: aerState written`);
    assert.deepEqual(s.aer.stats().kills, [
      { device: '0000:03:00.0', frontendDomid: 5, callback, written: true },
    ]);
    assert.match(s.fx.logger.at('error')[0]?.msg ?? '', /not connected or owned by HVM/);
    s.xs.close();
  }
});

test('XEN_PCIB_AERHANDLER clear kills on error_detected and resume, and only logs on mmio_enabled and slot_reset', async () => {
  const killed: Record<string, boolean> = {};
  for (const callback of CALLBACKS) {
    const s = setup('no-handler', [PCI_ERS_RESULT.RECOVERED]);
    assert.equal(await call(s, callback), DEFAULTS[callback], callback);
    assert.equal(s.requests.length, 0, `${callback}: nothing posted`);
    killed[callback] = (await aerState(s.xs)) === AER_STATE_FAILED;
    if (!killed[callback]) {
      assert.match(s.fx.logger.at('error')[0]?.msg ?? '', /should have been killed/);
    }
    s.xs.close();
  }
  assert.deepEqual(killed, {
    error_detected: true,
    mmio_enabled: false,
    slot_reset: false,
    resume: true,
  });
});

test('a connected guest with an AER handler is asked with cmd 6/8/9/7 at its own address and its vote returned', async () => {
  const s = setup('connected', [
    PCI_ERS_RESULT.NEED_RESET,
    PCI_ERS_RESULT.CAN_RECOVER,
    PCI_ERS_RESULT.RECOVERED,
    PCI_ERS_RESULT.NONE,
  ]);
  assert.equal(
    await s.aer.errorDetected(s.fx.dev.address, PCI_CHANNEL_IO.frozen),
    PCI_ERS_RESULT.NEED_RESET,
  );
  assert.equal(await s.aer.mmioEnabled(s.fx.dev.address), PCI_ERS_RESULT.CAN_RECOVER);
  assert.equal(await s.aer.slotReset(s.fx.dev.address), PCI_ERS_RESULT.RECOVERED);
  // resume's answer (NONE here, as pcifront always answers) is ignored: no kill.
  await s.aer.resume(s.fx.dev.address);
  // The real device is 0000:03:00.0; the guest sees it at 0000:00:00.0 (vpci).
  const at = { domain: 0, bus: 0, devfn: 0 };
  assert.deepEqual(s.requests, [
    { cmd: 6, err: PCI_CHANNEL_IO.frozen, ...at },
    { cmd: 8, err: PCI_CHANNEL_IO.normal, ...at },
    { cmd: 9, err: PCI_CHANNEL_IO.normal, ...at },
    { cmd: 7, err: PCI_CHANNEL_IO.normal, ...at },
  ]);
  assert.equal(await aerState(s.xs), undefined);
  assert.equal(s.aer.stats().forwarded, 4);
  assert.deepEqual(s.aer.stats().calls, {
    error_detected: 1,
    mmio_enabled: 1,
    slot_reset: 1,
    resume: 1,
  });
  s.xs.close();
});

for (const vote of [PCI_ERS_RESULT.NONE, PCI_ERS_RESULT.DISCONNECT]) {
  test(`a guest answering ${vote === 1 ? 'NONE' : 'DISCONNECT'} is killed by error_detected, mmio_enabled and slot_reset`, async () => {
    for (const callback of ['error_detected', 'mmio_enabled', 'slot_reset'] as const) {
      const s = setup('connected', [vote]);
      assert.equal(await call(s, callback), vote, callback);
      assert.equal(s.requests.length, 1);
      assert.equal(await aerState(s.xs), AER_STATE_FAILED, `${callback}: aerState written`);
      assert.equal(s.aer.stats().kills[0]?.callback, callback);
      s.xs.close();
    }
  });
}

test('a guest that advertises a handler but never answers gets the default after the timeout and is not killed', async () => {
  const s = setup('connected', []);
  const pending = s.aer.errorDetected(s.fx.dev.address, PCI_CHANNEL_IO.normal);
  for (let i = 0; i < 10 && s.timers.length === 0; i++) await Promise.resolve();
  assert.equal(s.requests.length, 1);
  const timer = s.timers[0];
  assert.ok(timer);
  assert.equal(timer.delayMs, 1000);
  timer.fire();
  assert.equal(await pending, PCI_ERS_RESULT.CAN_RECOVER);
  assert.equal(s.fx.chan.stats().aerTimeouts, 1);
  assert.equal(await aerState(s.xs), undefined);
  s.xs.close();
});

test('AER handlers run one at a time, like pcistub_sem', async () => {
  const s = setup('connected', []);
  const first = s.aer.errorDetected(s.fx.dev.address, PCI_CHANNEL_IO.normal);
  const second = s.aer.mmioEnabled(s.fx.dev.address);
  for (let i = 0; i < 20; i++) await Promise.resolve();
  // The second handler has not posted while the first waits for the guest.
  assert.equal(s.requests.length, 1);
  assert.equal(s.aer.stats().calls.mmio_enabled, 0);
  s.timers[0]?.fire();
  assert.equal(await first, PCI_ERS_RESULT.CAN_RECOVER);
  for (let i = 0; i < 20 && s.timers.length < 2; i++) await Promise.resolve();
  assert.equal(s.requests.length, 2);
  assert.equal(s.requests[1]?.cmd, 8);
  s.timers[1]?.fire();
  assert.equal(await second, PCI_ERS_RESULT.RECOVERED);
  s.xs.close();
});

test('kill_domain_by_device retries its transaction on EAGAIN and writes aerState once committed', async () => {
  const server = new XsServer();
  const xs = new XsClient(connectInProcess(server));
  const rival = new XsClient(connectInProcess(server));
  let attempts = 0;
  const aer = new PcibackAer({
    devices: {
      find: (address) => ({
        device: { address },
        connection: { frontendDomid: 5, channel: undefined },
      }),
    },
    xs: {
      transaction: (body, options) =>
        xs.transaction(async (tx) => {
          const result = await body(tx);
          // The toolstack writes the same node before the first commit: EAGAIN.
          if (++attempts === 1) await rival.write(KILL_PATH, 'rival');
          return result;
        }, options),
    },
  });
  assert.equal(await aer.errorDetected(OTHER, PCI_CHANNEL_IO.frozen), PCI_ERS_RESULT.CAN_RECOVER);
  assert.equal(attempts, 2);
  assert.equal(await aerState(xs), AER_STATE_FAILED);
  assert.deepEqual(aer.stats().kills, [
    { device: '0000:09:00.0', frontendDomid: 5, callback: 'error_detected', written: true },
  ]);
  xs.close();
  rival.close();
});

test('kill_domain_by_device logs other xenstore errors and the handler still answers', async () => {
  const s = setup('not-connected');
  const failing = new PcibackAer({
    devices: {
      find: () => ({ device: s.fx.dev, connection: { frontendDomid: 5, channel: undefined } }),
    },
    xs: {
      transaction: () =>
        Promise.reject(
          new XsError('ECONNRESET', 'Cannot start a transaction: the connection is closed'),
        ),
    },
    logger: s.fx.logger,
  });
  assert.equal(await failing.slotReset(s.fx.dev.address), PCI_ERS_RESULT.RECOVERED);
  assert.deepEqual(failing.stats().kills, [
    { device: '0000:03:00.0', frontendDomid: 5, callback: 'slot_reset', written: false },
  ]);
  assert.ok(
    s.fx.logger.at('error').some((r) => (r.msg ?? '').includes('the xenstore transaction failed')),
  );

  // A write refused inside the transaction (an unprivileged connection) is logged too.
  const server = new XsServer();
  const guestConn = new XsClient(connectInProcess(server, { domid: 7, privileged: false }));
  const denied = new PcibackAer({
    devices: {
      find: () => ({ device: s.fx.dev, connection: { frontendDomid: 5, channel: undefined } }),
    },
    xs: guestConn,
    logger: s.fx.logger,
  });
  await denied.resume(s.fx.dev.address);
  assert.equal(denied.stats().kills[0]?.written, false);
  assert.ok(s.fx.logger.at('error').some((r) => (r.msg ?? '').startsWith('Cannot write')));
  guestConn.close();
  s.xs.close();
});

test('an AER handler never rejects: a throwing lookup answers the default', async () => {
  const s = setup('connected');
  const aer = new PcibackAer({
    devices: {
      find: () => {
        throw new Error('lookup broke');
      },
    },
    xs: s.xs,
    logger: s.fx.logger,
  });
  assert.equal(await aer.errorDetected(OTHER, PCI_CHANNEL_IO.normal), PCI_ERS_RESULT.CAN_RECOVER);
  assert.match(
    s.fx.logger.at('error')[0]?.msg ?? '',
    /Cannot handle AER error_detected.*lookup broke/,
  );
  // And the lock was released.
  assert.equal(await aer.mmioEnabled(OTHER), PCI_ERS_RESULT.RECOVERED);
  s.xs.close();
});

test('handlersFor() binds the four callbacks to one device', async () => {
  const s = setup('connected', [PCI_ERS_RESULT.CAN_RECOVER, PCI_ERS_RESULT.RECOVERED]);
  const handlers = s.aer.handlersFor(s.fx.dev.address);
  assert.equal(await handlers.errorDetected(PCI_CHANNEL_IO.normal), PCI_ERS_RESULT.CAN_RECOVER);
  assert.equal(await handlers.mmioEnabled(), PCI_ERS_RESULT.RECOVERED);
  assert.deepEqual(
    s.requests.map((r) => r.cmd),
    [6, 8],
  );
  s.xs.close();
});

test('PcibackAer refuses a negative killRetries', () => {
  assert.throws(
    () =>
      new PcibackAer({
        devices: { find: () => undefined },
        xs: { transaction: () => Promise.reject(new Error('unused')) },
        killRetries: -1,
      }),
    RangeError,
  );
});
