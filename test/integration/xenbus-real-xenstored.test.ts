// SPDX-License-Identifier: MIT
/**
 * The whole PCI passthrough control plane, with nothing scripted but the hypervisor's
 * resources, against `pciback xenstored`, Xen's real C xenstored and (as root) oxenstored:
 * our toolstack (`createDomainNodes`, `attachPci`, `listPci`, `detachPci`,
 * `destroyDomainNodes`), pciback's real XenBus backend (`XenbusBackend` over a stub pool
 * of real seized `PcibackDevice`s) and the guest's real pcifront XenBus driver
 * (`PcifrontXenbus`), each on its own Unix-socket connection to the daemon. One scenario,
 * the same assertions for every daemon: cold attach with the InitWait/Initialised/Connected
 * handshake, two hot attaches (7 → 8 → 4 each), three hot detaches (the frontend removes
 * the right `vdev`, the toolstack compacts the indexes, pciback resets the device and gives
 * it back to the pool), the last of which removes both trees, then domain destruction.
 *
 * What stands in for the hypervisor: the connector records the grant reference and event
 * port pciback read instead of mapping a page and binding a port, and the guest kernel
 * records what pcifront asks of it instead of scanning buses.
 */
import assert from 'node:assert/strict';
import { PCI_COMMAND_MEMORY, PCI_COMMAND_OFFSET } from '../../src/abi/pci-regs.js';
import { XENBUS_STATE } from '../../src/abi/index.js';
import { PciAddress } from '../../src/pci/index.js';
import { XenbusBackend, type ExportedDevice } from '../../src/pciback/xenbus/index.js';
import { PcifrontXenbus } from '../../src/pcifront/index.js';
import { DOM0 } from '../../src/platform/types.js';
import {
  attachPci,
  createDomainNodes,
  destroyDomainNodes,
  detachPci,
  formatPciList,
  listPci,
  parsePciSpec,
  pciBackendPath,
  pciFrontendPath,
} from '../../src/toolstack/index.js';
import { isXsError, XsClient } from '../../src/xenstore/client/index.js';
import { recordingLogger, type RecordingLogger } from '../support/memory-host-device.js';
import {
  connectXenstored,
  testOnEveryXenstored,
  type XenstoredHandle,
} from '../support/real-xenstored.js';
import {
  RecordingConnector,
  RecordingGuestKernel,
  seizedPool,
  StateTimeline,
  waitFor,
} from '../support/xenbus-peers.js';

const D = 5;
const BE = pciBackendPath(D);
const FE = pciFrontendPath(D);
const BE_ERROR = `/local/domain/0/error/backend/pci/${D}/0/error`;
const FE_ERROR = `/local/domain/${D}/error/device/pci/0/error`;
const STORE = { gfn: 0x1234, port: 17 };
/** What pcifront publishes: its page's grant reference and the port it allocated. */
const GRANT = 77;
const PORT = 13;
const SEIZED = ['0000:03:00.0', '0000:04:00.0', '0000:05:00.0'];
/** Every hot attach and detach: the toolstack's 7, then pcifront and pciback in turn. */
const RECONFIGURE = [
  'xl: be=7',
  'pcifront: fe=7',
  'pciback: be=8',
  'pcifront: fe=4',
  'pciback: be=4',
];

async function client(xsd: XenstoredHandle): Promise<XsClient> {
  return new XsClient(await connectXenstored(xsd.socketPath), { timeoutMs: 5000 });
}

async function read(xs: XsClient, path: string): Promise<string | undefined> {
  try {
    return await xs.readString(path);
  } catch (e) {
    if (isXsError(e, 'ENOENT')) return undefined;
    throw e;
  }
}

/** `key=value` of these backend keys (`<none>` when missing). */
async function backendKeys(xs: XsClient, keys: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const key of keys) out.push(`${key}=${(await read(xs, `${BE}/${key}`)) ?? '<none>'}`);
  return out;
}

function messages(logger: RecordingLogger, level: 'warn' | 'error'): string[] {
  return logger.at(level).map((r) => r.msg ?? '');
}

async function controlPlaneScenario(xsd: XenstoredHandle): Promise<void> {
  const logger = recordingLogger();
  const feLogger = recordingLogger();
  const { pool, owners, devices } = seizedPool(SEIZED, logger);
  const connector = new RecordingConnector();
  const xl = await client(xsd);
  const beXs = await client(xsd);
  // The guest: a guest's own connection is its xenstore ring, which needs a hypervisor, and
  // on the real daemons every Unix-socket connection is privileged dom0. So pcifront runs
  // over a dom0 socket connection with absolute paths. What a guest may read and write is
  // covered by our daemon's ring and permission tests and by src/pcifront/xenbus.test.ts.
  const feXs = await client(xsd);
  const timeline = new StateTimeline({ [`${BE}/state`]: 'be', [`${FE}/state`]: 'fe' });
  timeline.record(xl, 'xl');
  timeline.record(beXs, 'pciback');
  timeline.record(feXs, 'pcifront');
  const backend = new XenbusBackend({
    xs: beXs,
    pool,
    owners,
    connector: connector.connect,
    backendDomid: DOM0,
    topology: 'vpci',
    logger,
  });
  const kernel = new RecordingGuestKernel();
  const front = new PcifrontXenbus(feXs, {
    domid: D,
    endpoints: { grantRef: GRANT, eventPort: PORT, backendDomid: 0 },
    kernel,
    logger: feLogger,
  });

  let mark = 0;
  /**
   * Wait until the state writes since the last step are `expected` and both drivers are
   * idle, then check that nothing else was written meanwhile.
   */
  const expectStateWrites = async (what: string, expected: readonly string[]): Promise<void> => {
    const describe = (): string => JSON.stringify(timeline.since(mark));
    await waitFor(
      `${what}: ${expected.join(', ')}`,
      () => timeline.since(mark).length >= expected.length,
      {
        describe,
      },
    );
    for (let round = 0; round < 3; round++) {
      await backend.whenIdle();
      await front.idle();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(timeline.since(mark), expected, what);
    mark = timeline.entries.length;
  };
  const userOf = (address: string): number | null => pool.userOf(PciAddress.parse(address));
  const exported = (): readonly ExportedDevice[] | undefined => backend.device(D)?.stats().exported;
  const list = async (): Promise<string> => formatPciList(await listPci(xl, D));

  try {
    await backend.start();

    // Domain creation as libxl does it.
    // Every daemon knows domain 5 exists before INTRODUCE (C and O from run-xenstored.sh's
    // fake hypervisor, ours from --domains), so libxl's order works unchanged.
    await createDomainNodes(xl, { domid: D, name: 'guest', store: STORE });
    assert.equal(await xl.isDomainIntroduced(D), true);
    assert.equal(await xl.readString(`/local/domain/${D}/name`), 'guest');
    assert.equal(await list(), '');

    // Cold attach: pciback probes the new directory, exports 03:00.0 and waits for the
    // frontend in Initialised; nothing is connected yet.
    const cold = await attachPci(xl, {
      domid: D,
      domainName: 'guest',
      spec: parsePciSpec('03:00.0'),
    });
    assert.deepEqual([cold.index, cold.hotplug], [0, false]);
    await expectStateWrites('cold attach', [
      'xl: fe=1',
      'xl: be=1',
      'pciback: be=2',
      'pciback: be=3',
    ]);
    assert.deepEqual(await backendKeys(xl, ['vdev-0', 'state-0', 'root_num', 'root-0']), [
      'vdev-0=0000:00:00.00',
      'state-0=3',
      'root_num=1',
      'root-0=0000:00',
    ]);
    assert.deepEqual(connector.calls, [], 'the frontend has not published yet');
    assert.equal(backend.device(D)?.stats().stateName, 'Initialised');
    assert.equal(userOf('0000:03:00.0'), D);
    assert.equal(owners.find(PciAddress.parse('0000:03:00.0')), D);
    assert.equal(await list(), 'Vdev Device\n00.0 0000:03:00.0\n');

    // pcifront probes: publishes its grant and port, Initialised; pciback connects with
    // them, Connected; pcifront reads the roots, scans them and is Connected.
    assert.equal(await front.probe(), true);
    await expectStateWrites('frontend connect', [
      'pcifront: fe=3',
      'pciback: be=4',
      'pcifront: fe=4',
    ]);
    assert.deepEqual(
      [
        await xl.readString(`${FE}/pci-op-ref`),
        await xl.readString(`${FE}/event-channel`),
        await xl.readString(`${FE}/magic`),
      ],
      [String(GRANT), String(PORT), '7'],
    );
    assert.deepEqual(connector.calls, [{ domid: D, grantRef: GRANT, eventPort: PORT }]);
    assert.equal(front.state(), XENBUS_STATE.Connected);
    assert.deepEqual(kernel.calls, ['connect 0000:00']);
    const connected = backend.device(D)?.stats();
    assert.ok(connected !== undefined);
    assert.equal(connected.stateName, 'Connected');
    assert.equal(connected.frontendStateName, 'Connected');
    assert.notEqual(connected.channel, null);
    assert.deepEqual(connected.exported, [{ real: '0000:03:00.0', guest: '0000:00:00.00' }]);

    // Hot attach with requested slots: each is a full reconfiguration round.
    const hot1 = await attachPci(xl, {
      domid: D,
      domainName: 'guest',
      spec: parsePciSpec('04:00.0@0a'),
    });
    assert.deepEqual([hot1.index, hot1.hotplug], [1, true]);
    await expectStateWrites('hot attach of 04:00.0', RECONFIGURE);
    assert.deepEqual(kernel.calls.slice(1), ['rescan 0000:00']);
    const hot2 = await attachPci(xl, {
      domid: D,
      domainName: 'guest',
      spec: parsePciSpec('05:00.0@0c'),
    });
    assert.deepEqual([hot2.index, hot2.hotplug], [2, true]);
    await expectStateWrites('hot attach of 05:00.0', RECONFIGURE);
    assert.deepEqual(kernel.calls.slice(1), ['rescan 0000:00', 'rescan 0000:00']);
    assert.deepEqual(
      await backendKeys(xl, [
        'num_devs',
        'vdev-1',
        'vdevfn-1',
        'state-1',
        'vdev-2',
        'vdevfn-2',
        'state-2',
        'root_num',
      ]),
      [
        'num_devs=3',
        'vdev-1=0000:00:0a.00',
        'vdevfn-1=50',
        'state-1=3',
        'vdev-2=0000:00:0c.00',
        'vdevfn-2=60',
        'state-2=3',
        'root_num=1',
      ],
    );
    assert.deepEqual(exported(), [
      { real: '0000:03:00.0', guest: '0000:00:00.00' },
      { real: '0000:04:00.0', guest: '0000:00:0a.00' },
      { real: '0000:05:00.0', guest: '0000:00:0c.00' },
    ]);
    assert.deepEqual(SEIZED.map(userOf), [D, D, D]);
    assert.equal(connector.calls.length, 1, 'hot plug never reconnects');
    assert.equal(
      await list(),
      'Vdev Device\n00.0 0000:03:00.0\n0a.0 0000:04:00.0\n0c.0 0000:05:00.0\n',
    );

    // The guest turns on 04:00.0's memory decoding, so its reset on release shows.
    const dev04 = devices.get('0000:04:00.0');
    assert.ok(dev04 !== undefined);
    assert.equal(dev04.dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY), 0);
    assert.equal(dev04.host.isEnabled(), true);

    // Detach the middle device: pcifront removes its vdev, pciback releases it, the
    // toolstack moves index 2 down to 1.
    assert.deepEqual(await detachPci(xl, { domid: D, bdf: '04:00.0', timeoutMs: 5000 }), {
      index: 1,
      removedBackend: false,
    });
    await expectStateWrites('detach of 04:00.0', RECONFIGURE);
    assert.deepEqual(kernel.calls.slice(3), ['remove 0000:00:0a.0', 'rescan 0000:00']);
    assert.equal(userOf('0000:04:00.0'), null, 'back in the pool');
    assert.equal(owners.find(PciAddress.parse('0000:04:00.0')), undefined);
    assert.equal(dev04.host.isEnabled(), false, 'reset on release');
    assert.deepEqual(exported(), [
      { real: '0000:03:00.0', guest: '0000:00:00.00' },
      { real: '0000:05:00.0', guest: '0000:00:0c.00' },
    ]);
    assert.deepEqual(
      await backendKeys(xl, [
        'num_devs',
        'dev-1',
        'key-1',
        'vdev-1',
        'vdevfn-1',
        'state-1',
        'dev-2',
        'vdev-2',
        'state-2',
      ]),
      [
        'num_devs=2',
        'dev-1=0000:05:00.0',
        'key-1=0000:05:00.0',
        'vdev-1=0000:00:0c.00',
        'vdevfn-1=60',
        'state-1=3',
        'dev-2=<none>',
        'vdev-2=<none>',
        'state-2=<none>',
      ],
    );
    assert.equal(await read(xl, '/libxl/pci/0000-04-00-0/domid'), undefined);
    assert.equal(await list(), 'Vdev Device\n00.0 0000:03:00.0\n0c.0 0000:05:00.0\n');

    // Detach the first: 05:00.0 becomes index 0.
    assert.deepEqual(await detachPci(xl, { domid: D, bdf: '0000:03:00.0', timeoutMs: 5000 }), {
      index: 0,
      removedBackend: false,
    });
    await expectStateWrites('detach of 03:00.0', RECONFIGURE);
    assert.deepEqual(kernel.calls.slice(5), ['remove 0000:00:00.0', 'rescan 0000:00']);
    assert.deepEqual(SEIZED.map(userOf), [null, null, D]);
    assert.deepEqual(exported(), [{ real: '0000:05:00.0', guest: '0000:00:0c.00' }]);
    assert.deepEqual(await backendKeys(xl, ['num_devs', 'dev-0', 'vdev-0', 'state-0', 'dev-1']), [
      'num_devs=1',
      'dev-0=0000:05:00.0',
      'vdev-0=0000:00:0c.00',
      'state-0=3',
      'dev-1=<none>',
    ]);
    assert.equal(await list(), 'Vdev Device\n0c.0 0000:05:00.0\n');

    // The last detach: same round, then the toolstack removes both trees and pciback's
    // device goes away (no state left to write).
    assert.deepEqual(await detachPci(xl, { domid: D, bdf: '05:00.0', timeoutMs: 5000 }), {
      index: 0,
      removedBackend: true,
    });
    await waitFor('the backend device to go', () => backend.device(D) === undefined);
    await expectStateWrites('last detach', RECONFIGURE);
    assert.deepEqual(kernel.calls.slice(7), ['remove 0000:00:0c.0', 'rescan 0000:00']);
    assert.deepEqual(backend.stats().devices, []);
    assert.equal(connector.disconnects, 1);
    assert.deepEqual(SEIZED.map(userOf), [null, null, null]);
    assert.deepEqual(
      SEIZED.map((a) => owners.find(PciAddress.parse(a))),
      [undefined, undefined, undefined],
    );
    assert.equal(await read(xl, `/local/domain/0/backend/pci/${D}`), undefined);
    assert.equal(await read(xl, `/local/domain/${D}/device/pci`), undefined);
    assert.deepEqual(await listPci(xl, D), []);
    assert.equal(await list(), '');
    assert.equal(front.state(), XENBUS_STATE.Connected, 'pcifront is not told to close');

    // Nobody reported an error on the way.
    assert.equal(await read(xl, BE_ERROR), undefined);
    assert.equal(await read(xl, FE_ERROR), undefined);
    assert.equal(front.fatalError, undefined);

    await destroyDomainNodes(xl, D);
    assert.equal(await read(xl, `/local/domain/${D}`), undefined);
    assert.equal(await read(xl, `/vm/${D}`), undefined);
    assert.equal(await xl.isDomainIntroduced(D), false);
    await expectStateWrites('domain destruction', []);
    assert.deepEqual(messages(logger, 'error'), []);
    assert.deepEqual(messages(logger, 'warn'), []);
    assert.deepEqual(messages(feLogger, 'error'), []);
    assert.deepEqual(messages(feLogger, 'warn'), []);
  } finally {
    await front.close();
    await backend.close();
    for (const c of [xl, beXs, feXs]) c.close();
  }
}

// Domain 5 must exist for each daemon (C and O: the fake hypervisor; ours: --domains),
// or INTRODUCE and the perms naming it fail.
testOnEveryXenstored(
  'toolstack, pciback XenBus and pcifront XenBus attach and detach end to end through',
  [0, D],
  20_000,
  controlPlaneScenario,
);
