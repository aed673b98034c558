// SPDX-License-Identifier: MIT
// The stub as the XenBus backend's device source: libxl's attach and detach through a
// real xenstore daemon, a scripted pcifront, and the stub on the simulated machine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  PCI_CACHE_LINE_SIZE_OFFSET,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
} from '../../abi/pci-regs.js';
import { PciAddress } from '../../pci/index.js';
import { attachPci, detachPci, parsePciSpec } from '../../toolstack/index.js';
import { XsServer } from '../../xenstore/server/index.js';
import { XenbusBackend } from '../xenbus/index.js';
import {
  FakeConnector,
  ScriptedFrontend,
  connectClient,
  tick,
} from '../xenbus/xenbus-test-helpers.js';
import { GUEST, buildTestMachine } from './test-machine.js';

const NVME = PciAddress.parse('0000:00:02.0');

test('PciStub behind the real XenbusBackend: a cold attach claims the device, the detach resets and restores it', async () => {
  const m = buildTestMachine([{ bdf: '0000:00:02.0', model: 'nvme' }], { hide: '(00:02.0)' });
  const server = new XsServer();
  server.store.introduceDomain(GUEST);
  const toolstack = connectClient(server);
  const backendXs = connectClient(server);
  const frontendXs = connectClient(server, GUEST);
  const connector = new FakeConnector();
  const backend = new XenbusBackend({
    xs: backendXs,
    pool: m.stub,
    owners: m.interrupts.owners,
    connector: connector.connect,
    logger: m.logger,
  });
  const fe = new ScriptedFrontend(frontendXs, GUEST);
  const settle = async (): Promise<void> => {
    for (let round = 0; round < 50; round++) {
      await tick();
      await backend.whenIdle();
      await fe.whenIdle();
    }
  };
  try {
    const hw = m.hw('0000:00:02.0');
    const cacheLine = hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1);
    const flrsAtSeize = hw.resetCounts().flr;
    assert.equal(flrsAtSeize, 1, 'seizing reset it once');

    // Cold plug: the toolstack writes the device before the backend starts.
    await attachPci(toolstack, {
      domid: GUEST,
      domainName: 'guest',
      spec: parsePciSpec('00:02.0'),
      timeoutMs: 2000,
    });
    await fe.connect();
    await backend.start();
    await settle();
    assert.equal(m.stub.userOf(NVME), GUEST, 'the backend claimed it from the stub');
    assert.equal(m.interrupts.owners.find(NVME), GUEST);
    assert.deepEqual(backend.stats().devices[0]?.exported, [
      { real: '0000:00:02.0', guest: '0000:00:00.00' },
    ]);

    // The guest uses the device: decoding, bus mastering, a register of its own.
    const dev = m.stub.get(NVME);
    assert.ok(dev !== undefined);
    assert.equal(
      dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
      0,
    );
    assert.equal(dev.config.write(PCI_CACHE_LINE_SIZE_OFFSET, 1, 0x20), 0);
    assert.equal(hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1), 0x20);

    const detached = await detachPci(toolstack, { domid: GUEST, bdf: '00:02.0', timeoutMs: 2000 });
    assert.equal(detached.removedBackend, true);
    await settle();
    assert.equal(backend.device(GUEST), undefined);
    assert.equal(m.stub.userOf(NVME), null, 'released to the stub');
    assert.equal(hw.resetCounts().flr, flrsAtSeize + 1, 'reset on release (FLR)');
    assert.deepEqual(m.stub.resetRecord(NVME), {
      state: 'method',
      method: 'flr',
      atMs: 1000,
      skipped: [],
    });
    assert.equal(
      hw.configRead(PCI_CACHE_LINE_SIZE_OFFSET, 1),
      cacheLine,
      'seize-time state restored',
    );
    const command = hw.configRead(PCI_COMMAND_OFFSET, 2);
    assert.notEqual(command & PCI_COMMAND_MEMORY, 0, 'XSA-120 follow-up: decode not zeroed');
    assert.equal(command & PCI_COMMAND_MASTER, 0);
    assert.equal(m.interrupts.owners.find(NVME), undefined);
    assert.equal(m.stub.claim(NVME, GUEST), dev, 'assignable again');
    m.stub.release(dev);

    // `permissive=1` in the spec (opts-N) makes this attachment permissive, and only it.
    await attachPci(toolstack, {
      domid: GUEST,
      domainName: 'guest',
      spec: parsePciSpec('00:02.0,permissive=1'),
      timeoutMs: 2000,
    });
    // A new frontend device (libxl made fresh trees): a new guest connection.
    const frontendXs2 = connectClient(server, GUEST);
    const fe2 = new ScriptedFrontend(frontendXs2, GUEST);
    await fe2.connect();
    await settle();
    assert.equal(m.stub.userOf(NVME), GUEST);
    assert.equal(dev.config.policy.permissive, true, 'permissive while attached');
    await detachPci(toolstack, { domid: GUEST, bdf: '00:02.0', timeoutMs: 2000 });
    await settle();
    assert.equal(dev.config.policy.permissive, false, 'cleared on release');
    frontendXs2.close();
  } finally {
    await backend.close();
    toolstack.close();
    backendXs.close();
    frontendXs.close();
    m.close();
  }
});
