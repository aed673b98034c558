// SPDX-License-Identifier: MIT
/**
 * pcifront's XenBus side against a real in-memory xenstored: the toolstack is the real
 * `attachPci`/`detachPci` on a privileged dom0 connection, the frontend runs on an
 * unprivileged guest connection (libxl's permissions apply), and a scripted backend on
 * another dom0 connection writes the keys and states pciback would (§7.2–§7.5b).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XENBUS_STATE } from '../abi/index.js';
import type { PciAddress } from '../pci/index.js';
import type { Logger } from '../platform/types.js';
import { attachPci, detachPci, parsePciSpec } from '../toolstack/index.js';
import {
  XsClient,
  createMemoryTransportPair,
  isXsError,
  type XsTransport,
} from '../xenstore/client/index.js';
import { XsServer } from '../xenstore/server/index.js';
import type { GuestPciRoot } from './enumerate.js';
import {
  PCIFRONT_MAX_DEVICES,
  PcifrontXenbus,
  type PcifrontGuestKernel,
  type PcifrontXenbusOptions,
} from './xenbus.js';

const D = 5;
const BE = `/local/domain/0/backend/pci/${D}/0`;
const FE = `/local/domain/${D}/device/pci/0`;
const ERROR_NODE = `/local/domain/${D}/error/device/pci/0/error`;
const GRANT = 77;
const PORT = 13;

// -------------------------------------------------------------------------------------
// Harness
// -------------------------------------------------------------------------------------

/** A client on its own connection to `server`; `sent` counts the messages it sent. */
function connect(
  server: XsServer,
  who: { domid: number; privileged: boolean },
): { client: XsClient; counter: { sent: number } } {
  const [clientEnd, serverEnd] = createMemoryTransportPair();
  const conn = server.connect(
    {
      send: (bytes) => {
        try {
          serverEnd.send(bytes);
        } catch {
          // The client side closed.
        }
      },
      close: () => {
        serverEnd.close();
      },
    },
    who,
  );
  serverEnd.onData((chunk) => {
    conn.receive(chunk);
  });
  serverEnd.onClose(() => {
    conn.close();
  });
  const counter = { sent: 0 };
  const counting: XsTransport = {
    send: (bytes) => {
      counter.sent++;
      clientEnd.send(bytes);
    },
    onData: (cb) => {
      clientEnd.onData(cb);
    },
    onClose: (cb) => {
      clientEnd.onClose(cb);
    },
    close: () => {
      clientEnd.close();
    },
  };
  return { client: new XsClient(counting, { timeoutMs: 5000 }), counter };
}

/** libxl's `libxl__domain_make`: the home read-only for the guest, `error` writable. */
async function makeDomain(dom0: XsClient, options: { errorDir: boolean }): Promise<void> {
  const home = `/local/domain/${D}`;
  await dom0.mkdir(home);
  await dom0.setPerms(home, [
    { letter: 'n', domid: 0 },
    { letter: 'r', domid: D },
  ]);
  await dom0.write(`${home}/name`, 'guest');
  await dom0.mkdir(`${home}/device`);
  await dom0.setPerms(`${home}/device`, [
    { letter: 'n', domid: 0 },
    { letter: 'r', domid: D },
  ]);
  if (options.errorDir) {
    await dom0.mkdir(`${home}/error`);
    await dom0.setPerms(`${home}/error`, [{ letter: 'n', domid: D }]);
  }
}

async function readOptional(xs: XsClient, path: string): Promise<string | undefined> {
  try {
    return await xs.readString(path);
  } catch (e) {
    if (isXsError(e, 'ENOENT')) return undefined;
    throw e;
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 4000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Let in-flight watch events and handlers run. */
async function settle(bus: PcifrontXenbus, rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    await bus.idle();
  }
}

interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
}

function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (_obj: object, msg?: string): void => {
      lines.push({ level, msg: msg ?? '' });
    };
  return {
    lines,
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  };
}

/** A guest kernel recording its calls; each hook may be replaced to throw. */
class RecordingKernel implements PcifrontGuestKernel {
  readonly calls: string[] = [];
  readonly connects: GuestPciRoot[][] = [];
  readonly rescans: GuestPciRoot[][] = [];
  readonly removed: string[] = [];
  closedCount = 0;
  failConnect: Error | undefined;
  failRemove: Error | undefined;

  connect(roots: readonly GuestPciRoot[]): void {
    this.calls.push('connect');
    if (this.failConnect !== undefined) throw this.failConnect;
    this.connects.push([...roots]);
  }
  async removeDevice(vdev: PciAddress): Promise<void> {
    await Promise.resolve();
    this.calls.push(`remove ${vdev.toString()}`);
    if (this.failRemove !== undefined) throw this.failRemove;
    this.removed.push(vdev.toString());
  }
  rescan(roots: readonly GuestPciRoot[]): void {
    this.calls.push('rescan');
    this.rescans.push([...roots]);
  }
  closed(): void {
    this.calls.push('closed');
    this.closedCount++;
  }
}

interface BackendOptions {
  /** Publish `root_num`/`root-0` (default true). */
  readonly publishRoots?: boolean;
  /** Value of `root-0` (default `0000:00`). */
  readonly root0?: string;
}

/**
 * What pciback does in xenstore (§7.2–§7.5, vpci topology): probe → InitWait, export
 * each `dev-i` (`vdev-i`, `state-i`=3), publish the root, → Initialised; frontend 3 →
 * check its keys, → Connected; frontend 7 → export `state-i`=1 / release `state-i`=5,
 * → Reconfigured; frontend 4/5/6 → mirror. Its reactions run one at a time.
 */
class ScriptedBackend {
  readonly timeline: string[];
  readonly released: string[] = [];
  frontendKeys: { ref: string; port: string; magic: string } | undefined;
  readonly #xs: XsClient;
  readonly #options: BackendOptions;
  #nextSlot = 0;
  #queue: Promise<void> = Promise.resolve();

  constructor(xs: XsClient, timeline: string[], options: BackendOptions = {}) {
    this.#xs = xs;
    this.timeline = timeline;
    this.#options = options;
  }

  async setState(state: number): Promise<void> {
    await this.#xs.write(`${BE}/state`, String(state));
    this.timeline.push(`be:${state}`);
  }

  async probe(): Promise<void> {
    await this.setState(XENBUS_STATE.InitWait);
    await this.#export();
    if (this.#options.publishRoots !== false) {
      await this.#xs.write(`${BE}/root-0`, this.#options.root0 ?? '0000:00');
      await this.#xs.write(`${BE}/root_num`, '1');
    }
    await this.setState(XENBUS_STATE.Initialised);
    await this.#xs.watch(`${FE}/state`, 'scripted-backend', () => {
      this.#queue = this.#queue.then(() => this.#frontendChanged()).catch(() => undefined);
    });
  }

  async idle(): Promise<void> {
    await this.#queue;
  }

  async #export(): Promise<void> {
    const num = Number(await this.#xs.readString(`${BE}/num_devs`));
    for (let i = 0; i < num; i++) {
      const state = await readOptional(this.#xs, `${BE}/state-${i}`);
      if (state === '1') {
        const slot = (this.#nextSlot++).toString(16).padStart(2, '0');
        // pciback's "%04x:%02x:%02x.%02x": the function has two digits.
        await this.#xs.write(`${BE}/vdev-${i}`, `0000:00:${slot}.00`);
        await this.#xs.write(`${BE}/state-${i}`, '3');
      } else if (state === '5') {
        this.released.push((await readOptional(this.#xs, `${BE}/vdev-${i}`)) ?? '?');
      }
    }
  }

  async #frontendChanged(): Promise<void> {
    const fe = await readOptional(this.#xs, `${FE}/state`);
    const be = await readOptional(this.#xs, `${BE}/state`);
    if (fe === '3' && be === '3') {
      this.frontendKeys = {
        ref: await this.#xs.readString(`${FE}/pci-op-ref`),
        port: await this.#xs.readString(`${FE}/event-channel`),
        magic: await this.#xs.readString(`${FE}/magic`),
      };
      await this.setState(XENBUS_STATE.Connected);
    } else if (fe === '7' && be === '7') {
      await this.#export();
      await this.setState(XENBUS_STATE.Reconfigured);
    } else if ((fe === '4' || fe === '5' || fe === '6') && be !== fe) {
      await this.setState(Number(fe));
    }
  }
}

interface Harness {
  readonly server: XsServer;
  readonly dom0: XsClient;
  readonly guest: XsClient;
  readonly guestCounter: { sent: number };
  readonly backend: ScriptedBackend;
  readonly kernel: RecordingKernel;
  readonly lines: LogLine[];
  readonly timeline: string[];
  readonly feStates: number[];
  readonly bus: PcifrontXenbus;
  close(): Promise<void>;
}

async function setup(
  options: {
    devices?: readonly string[];
    backend?: BackendOptions;
    errorDir?: boolean;
    xenbus?: Partial<PcifrontXenbusOptions>;
  } = {},
): Promise<Harness> {
  const server = new XsServer();
  server.store.introduceDomain(D);
  const dom0 = connect(server, { domid: 0, privileged: true }).client;
  const beClient = connect(server, { domid: 0, privileged: true }).client;
  const { client: guest, counter: guestCounter } = connect(server, {
    domid: D,
    privileged: false,
  });
  await makeDomain(dom0, { errorDir: options.errorDir ?? true });
  const devices = options.devices ?? ['03:00.0'];
  for (const [i, bdf] of devices.entries()) {
    await attachPci(dom0, {
      domid: D,
      domainName: 'guest',
      spec: parsePciSpec(bdf),
      starting: i > 0,
    });
  }
  const timeline: string[] = [];
  const feStates: number[] = [];
  const backend = new ScriptedBackend(beClient, timeline, options.backend);
  const kernel = new RecordingKernel();
  const { logger, lines } = recordingLogger();
  const bus = new PcifrontXenbus(guest, {
    domid: D,
    endpoints: { grantRef: GRANT, eventPort: PORT, backendDomid: 0 },
    kernel,
    logger,
    onStateChange: (s) => {
      feStates.push(s);
      timeline.push(`fe:${s}`);
    },
    ...options.xenbus,
  });
  return {
    server,
    dom0,
    guest,
    guestCounter,
    backend,
    kernel,
    lines,
    timeline,
    feStates,
    bus,
    close: async () => {
      await bus.close();
      await backend.idle();
      dom0.close();
      beClient.close();
      guest.close();
    },
  };
}

/** Cold plug to Connected (backend first, as §7.5b). */
async function connected(options: Parameters<typeof setup>[0] = {}): Promise<Harness> {
  const h = await setup(options);
  await h.backend.probe();
  assert.equal(await h.bus.probe(), true);
  await waitFor('frontend Connected', () => h.bus.state() === XENBUS_STATE.Connected);
  await waitFor('backend Connected', async () => (await h.dom0.readString(`${BE}/state`)) === '4');
  return h;
}

// -------------------------------------------------------------------------------------
// Cold plug
// -------------------------------------------------------------------------------------

test('PcifrontXenbus cold plug: publishes its keys, connects after the backend is Connected', async () => {
  const h = await connected();
  try {
    assert.deepEqual(h.backend.frontendKeys, {
      ref: String(GRANT),
      port: String(PORT),
      magic: '7',
    });
    assert.equal(await h.dom0.readString(`${FE}/state`), '4');
    assert.deepEqual(h.kernel.connects, [[{ domain: 0, bus: 0 }]]);
    assert.deepEqual(h.feStates, [XENBUS_STATE.Initialised, XENBUS_STATE.Connected]);
    assert.ok(h.timeline.indexOf('be:4') < h.timeline.indexOf('fe:4'), h.timeline.join(' '));
    assert.equal(h.bus.backendPath, BE);
    assert.equal(h.bus.backendId, 0);
    assert.equal(h.bus.fatalError, undefined);
    assert.equal(await readOptional(h.dom0, ERROR_NODE), undefined);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus cold plug with the frontend first: waits in Initialised for the backend', async () => {
  const h = await setup();
  try {
    assert.equal(await h.bus.probe(), true);
    await settle(h.bus);
    // The backend is still Initialising (1): nothing to do.
    assert.equal(h.bus.state(), XENBUS_STATE.Initialised);
    assert.deepEqual(h.kernel.calls, []);
    await h.backend.probe();
    await waitFor('frontend Connected', () => h.bus.state() === XENBUS_STATE.Connected);
    assert.deepEqual(h.kernel.connects, [[{ domain: 0, bus: 0 }]]);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus without root_num logs "No PCI Roots found, trying 0000:00" and scans 0000:00', async () => {
  const h = await connected({ backend: { publishRoots: false } });
  try {
    assert.deepEqual(h.kernel.connects, [[{ domain: 0, bus: 0 }]]);
    assert.ok(
      h.lines.some((l) => l.level === 'info' && l.msg === 'No PCI Roots found, trying 0000:00'),
    );
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus with a root-k that is not "%x:%x" reports a fatal error and never connects', async () => {
  const h = await setup({ backend: { root0: 'zz' } });
  try {
    await h.backend.probe();
    assert.equal(await h.bus.probe(), true);
    await waitFor('frontend Closing', () => h.bus.state() === XENBUS_STATE.Closing);
    const text = await h.dom0.readString(ERROR_NODE);
    assert.match(text, /^22 Error reading PCI root 0: Invalid PCI root "zz"/);
    assert.equal(await h.dom0.readString(`${FE}/state`), '5');
    assert.deepEqual(h.bus.fatalError?.errno, 22);
    assert.deepEqual(h.kernel.calls, []);
    // The backend mirrors Closing; the frontend, already >= Closing, only warns.
    await waitFor('backend Closing', async () => (await h.dom0.readString(`${BE}/state`)) === '5');
    await settle(h.bus);
    assert.equal(h.bus.state(), XENBUS_STATE.Closing);
    assert.equal(h.kernel.closedCount, 0);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus writes the error node only inside its own home; a refused write still closes', async () => {
  // No /local/domain/<D>/error: the guest may not create nodes in its read-only home.
  const h = await setup({ errorDir: false, backend: { root0: '0000' } });
  try {
    await h.backend.probe();
    assert.equal(await h.bus.probe(), true);
    await waitFor('frontend Closing', () => h.bus.state() === XENBUS_STATE.Closing);
    assert.equal(await readOptional(h.dom0, ERROR_NODE), undefined);
    assert.ok(
      h.lines.some((l) => l.level === 'error' && /Cannot write the error node.*EACCES/.test(l.msg)),
    );
    assert.equal(await h.dom0.readString(`${FE}/state`), '5');
  } finally {
    await h.close();
  }
});

// -------------------------------------------------------------------------------------
// Hot plug
// -------------------------------------------------------------------------------------

test('PcifrontXenbus hot attach: Reconfiguring (7), rescan after Reconfigured (8), Connected', async () => {
  const h = await connected();
  try {
    await attachPci(h.dom0, { domid: D, domainName: 'guest', spec: parsePciSpec('04:00.0') });
    await waitFor('frontend Connected again', () => h.feStates.length === 4);
    await waitFor(
      'backend Connected again',
      async () => (await h.dom0.readString(`${BE}/state`)) === '4',
    );
    assert.deepEqual(h.feStates, [3, 4, 7, 4]);
    assert.ok(h.timeline.indexOf('be:8') < h.timeline.lastIndexOf('fe:4'));
    assert.deepEqual(h.kernel.calls, ['connect', 'rescan']);
    assert.deepEqual(h.kernel.rescans, [[{ domain: 0, bus: 0 }]]);
    assert.equal(await h.dom0.readString(`${BE}/vdev-1`), '0000:00:01.00');
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus hot detach removes the vdev of the index in state 5, reading indexes afresh', async () => {
  const h = await connected({ devices: ['03:00.0', '04:00.0', '05:00.0'] });
  try {
    // 03:00.0 is index 0 at 00:00.0; the toolstack renumbers 1 → 0 and 2 → 1 afterwards.
    await detachPci(h.dom0, { domid: D, bdf: '0000:03:00.0' });
    assert.deepEqual(h.kernel.removed, ['0000:00:00.0']);
    assert.deepEqual(h.backend.released, ['0000:00:00.00']);
    assert.equal(await h.dom0.readString(`${BE}/num_devs`), '2');
    assert.equal(await h.dom0.readString(`${BE}/vdev-1`), '0000:00:02.00');
    // 05:00.0 is now index 1: a stale index would name 00:01.0.
    await detachPci(h.dom0, { domid: D, bdf: '0000:05:00.0' });
    assert.deepEqual(h.kernel.removed, ['0000:00:00.0', '0000:00:02.0']);
    assert.deepEqual(h.kernel.calls, [
      'connect',
      'remove 0000:00:00.0',
      'rescan',
      'remove 0000:00:02.0',
      'rescan',
    ]);
    assert.deepEqual(h.feStates, [3, 4, 7, 4, 7, 4]);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus backend Reconfiguring while Initialised: switches to 7, then rescans at 8', async () => {
  const h = await setup();
  try {
    // A backend that went to Reconfiguring before the frontend connected (it missed 4).
    await h.dom0.transaction(async (tx) => {
      await tx.write(`${BE}/vdev-0`, '0000:00:00.00');
      await tx.write(`${BE}/state-0`, '3');
      await tx.write(`${BE}/root-0`, '0000:00');
      await tx.write(`${BE}/root_num`, '1');
      await tx.write(`${BE}/state`, '7');
    });
    assert.equal(await h.bus.probe(), true);
    await waitFor('frontend Reconfiguring', () => h.bus.state() === XENBUS_STATE.Reconfiguring);
    assert.deepEqual(h.kernel.calls, []);
    await h.dom0.write(`${BE}/state`, '8');
    await waitFor('frontend Connected', () => h.bus.state() === XENBUS_STATE.Connected);
    assert.deepEqual(h.kernel.calls, ['rescan']);
    assert.deepEqual(h.kernel.rescans, [[{ domain: 0, bus: 0 }]]);
    assert.deepEqual(h.feStates, [3, 7, 4]);
  } finally {
    await h.close();
  }
});

// -------------------------------------------------------------------------------------
// Backend going away (P7)
// -------------------------------------------------------------------------------------

test('PcifrontXenbus backend Closing: "backend going away!", roots removed, straight to Closed, no reconnect', async () => {
  const h = await connected();
  const written: string[] = [];
  await h.dom0.watch(`${FE}/state`, 'spy', () => {
    void readOptional(h.dom0, `${FE}/state`).then((v) => written.push(v ?? '-'));
  });
  try {
    await h.backend.setState(XENBUS_STATE.Closing);
    await waitFor('frontend Closed', () => h.bus.state() === XENBUS_STATE.Closed);
    assert.equal(h.kernel.closedCount, 1);
    assert.equal(await h.dom0.readString(`${FE}/state`), '6');
    const goingAway = (): number => h.lines.filter((l) => l.msg === 'backend going away!').length;
    assert.equal(goingAway(), 1);
    // Closed while already Closed: ignored, no second warning.
    await h.backend.setState(XENBUS_STATE.Closed);
    await settle(h.bus);
    assert.equal(goingAway(), 1);
    // Nothing brings it back: not Connected, not Initialising, not Reconfigured.
    for (const s of [1, 2, 3, 4, 7, 8]) {
      await h.dom0.write(`${BE}/state`, String(s));
      await settle(h.bus, 2);
    }
    assert.equal(h.bus.state(), XENBUS_STATE.Closed);
    assert.equal(await h.dom0.readString(`${FE}/state`), '6');
    assert.deepEqual(h.kernel.calls, ['connect', 'closed']);
    assert.deepEqual(h.feStates, [3, 4, 6]);
    assert.ok(!written.includes('5') && !written.includes('1'), written.join(','));
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus backend Closed without Closing: removes the roots and closes once', async () => {
  const h = await connected();
  try {
    await h.backend.setState(XENBUS_STATE.Closed);
    await waitFor('frontend Closed', () => h.bus.state() === XENBUS_STATE.Closed);
    assert.deepEqual(h.kernel.calls, ['connect', 'closed']);
    assert.deepEqual(h.feStates, [3, 4, 6]);
  } finally {
    await h.close();
  }
});

// -------------------------------------------------------------------------------------
// Hostile and broken values
// -------------------------------------------------------------------------------------

test('PcifrontXenbus refuses a garbage vdev-i with a fatal error and removes nothing', async () => {
  const h = await connected();
  try {
    await h.dom0.transaction(async (tx) => {
      await tx.write(`${BE}/state-0`, '5');
      await tx.write(`${BE}/vdev-0`, '0000:00:zz.0; rm -rf /');
      await tx.write(`${BE}/state`, '7');
    });
    await waitFor('frontend Closing', () => h.bus.state() === XENBUS_STATE.Closing);
    assert.match(
      await h.dom0.readString(ERROR_NODE),
      /^22 Error reading PCI device 0: Invalid vdev /,
    );
    assert.deepEqual(h.kernel.removed, []);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus refuses a vdev-i out of range (slot 0x20)', async () => {
  const h = await connected();
  try {
    await h.dom0.transaction(async (tx) => {
      await tx.write(`${BE}/state-0`, '5');
      await tx.write(`${BE}/vdev-0`, '0000:00:20.0');
      await tx.write(`${BE}/state`, '7');
    });
    await waitFor('frontend Closing', () => h.bus.state() === XENBUS_STATE.Closing);
    assert.match(
      await h.dom0.readString(ERROR_NODE),
      /^22 Error reading PCI device 0: .*device 0x20/,
    );
    assert.deepEqual(h.kernel.removed, []);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus refuses a huge num_devs at once: a clear error and bounded work', async () => {
  const h = await connected();
  try {
    const before = h.guestCounter.sent;
    await h.dom0.transaction(async (tx) => {
      await tx.write(`${BE}/num_devs`, '4294967295');
      await tx.write(`${BE}/state`, '7');
    });
    await waitFor('frontend Closing', () => h.bus.state() === XENBUS_STATE.Closing);
    await settle(h.bus);
    assert.match(
      await h.dom0.readString(ERROR_NODE),
      new RegExp(
        `^22 Error reading number of PCI devices: Invalid num_devs 4294967295: it is above the limit of ${PCIFRONT_MAX_DEVICES}`,
      ),
    );
    // A few reads and the error/state writes, not one read per index.
    assert.ok(h.guestCounter.sent - before < 20, `${h.guestCounter.sent - before} requests`);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus refuses a huge or negative root_num', async () => {
  for (const value of ['99999', '-1', '1e3']) {
    const h = await setup();
    try {
      await h.backend.probe();
      await h.dom0.write(`${BE}/root_num`, value);
      assert.equal(await h.bus.probe(), true);
      await waitFor('frontend Closing', () => h.bus.state() === XENBUS_STATE.Closing);
      assert.match(
        await h.dom0.readString(ERROR_NODE),
        /^22 Error reading number of PCI roots: Invalid root_num/,
      );
      assert.deepEqual(h.kernel.calls, []);
    } finally {
      await h.close();
    }
  }
});

test('PcifrontXenbus treats an unparsable backend state as Unknown and does nothing', async () => {
  const h = await setup();
  try {
    await h.backend.probe();
    await h.dom0.write(`${BE}/state`, '4 and more');
    assert.equal(await h.bus.probe(), true);
    await settle(h.bus);
    assert.equal(h.bus.state(), XENBUS_STATE.Initialised);
    assert.deepEqual(h.kernel.calls, []);
  } finally {
    await h.close();
  }
});

// -------------------------------------------------------------------------------------
// Guest kernel callbacks
// -------------------------------------------------------------------------------------

test('PcifrontXenbus: a throwing connect is a fatal scan error carrying its errno', async () => {
  const h = await setup();
  h.kernel.failConnect = Object.assign(new Error('out of bus numbers'), { errno: -12 });
  try {
    await h.backend.probe();
    assert.equal(await h.bus.probe(), true);
    await waitFor('frontend Closing', () => h.bus.state() === XENBUS_STATE.Closing);
    assert.equal(
      await h.dom0.readString(ERROR_NODE),
      '12 Error scanning PCI root 0000:00: out of bus numbers',
    );
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus: a throwing removeDevice is logged and the reconfiguration goes on', async () => {
  const h = await connected({ devices: ['03:00.0', '04:00.0'] });
  h.kernel.failRemove = new Error('driver busy');
  try {
    await detachPci(h.dom0, { domid: D, bdf: '0000:03:00.0' });
    assert.deepEqual(h.feStates, [3, 4, 7, 4]);
    assert.deepEqual(h.kernel.calls, ['connect', 'remove 0000:00:00.0', 'rescan']);
    assert.ok(h.lines.some((l) => l.level === 'error' && /driver busy/.test(l.msg)));
  } finally {
    await h.close();
  }
});

// -------------------------------------------------------------------------------------
// Probe checks and close
// -------------------------------------------------------------------------------------

test('PcifrontXenbus.probe() leaves a device that is not Initialising (1) alone', async () => {
  const h = await setup();
  try {
    await h.dom0.write(`${FE}/state`, '6');
    assert.equal(await h.bus.probe(), false);
    assert.deepEqual(await h.dom0.directory(FE), ['backend', 'backend-id', 'state']);
    assert.equal(await h.dom0.readString(`${FE}/state`), '6');
    await assert.rejects(h.bus.probe(), { code: 'PCIFRONT_XENBUS_PROBED' });
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus.probe() refuses a backend-id other than the domain the page was granted to', async () => {
  const h = await setup({
    xenbus: { endpoints: { grantRef: GRANT, eventPort: PORT, backendDomid: 3 } },
  });
  try {
    assert.equal(await h.bus.probe(), false);
    assert.match(
      await h.dom0.readString(ERROR_NODE),
      /^22 reading other end details from device\/pci\/0: backend-id is 0 but the page was granted to domain 3$/,
    );
    assert.equal(await h.dom0.readString(`${FE}/state`), '5');
    assert.equal(await readOptional(h.dom0, `${FE}/pci-op-ref`), undefined);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus.probe() refuses a backend path outside the backend domain', async () => {
  const h = await setup();
  try {
    await h.dom0.write(`${FE}/backend`, `/local/domain/${D}/device/pci/0`);
    assert.equal(await h.bus.probe(), false);
    assert.match(await h.dom0.readString(ERROR_NODE), /is not a path under "\/local\/domain\/0\/"/);
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus.close() stops watching: later backend states change nothing', async () => {
  const h = await setup();
  try {
    await h.backend.probe();
    await h.dom0.write(`${BE}/state`, '2');
    assert.equal(await h.bus.probe(), true);
    await h.bus.close();
    await h.dom0.write(`${BE}/state`, '4');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(h.bus.state(), XENBUS_STATE.Initialised);
    assert.deepEqual(h.kernel.calls, []);
    await assert.rejects(h.bus.probe(), { code: 'PCIFRONT_XENBUS_CLOSED' });
  } finally {
    await h.close();
  }
});

test('PcifrontXenbus constructor checks its arguments', async () => {
  const h = await setup();
  const kernel = new RecordingKernel();
  const endpoints = { grantRef: 1, eventPort: 1 };
  try {
    assert.throws(() => new PcifrontXenbus(h.guest, { domid: 0, endpoints, kernel }), RangeError);
    assert.throws(
      () => new PcifrontXenbus(h.guest, { domid: D, devid: -1, endpoints, kernel }),
      RangeError,
    );
    assert.throws(
      () =>
        new PcifrontXenbus(h.guest, {
          domid: D,
          endpoints: { grantRef: 2 ** 32, eventPort: 1 },
          kernel,
        }),
      RangeError,
    );
  } finally {
    await h.close();
  }
});
