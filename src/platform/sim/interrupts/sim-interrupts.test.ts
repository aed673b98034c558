// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { PCI_CAP_ID, PCI_MSI_FLAGS_ENABLE, PCI_MSI_FLAGS_OFFSET } from '../../../abi/pci-regs.js';
import { buildCatalogDevice, type CatalogModel } from '../../../devices/index.js';
import { PciAddress } from '../../../pci/address.js';
import { findCapability } from '../../../pci/capabilities.js';
import { PORT_STATE } from '../xen/event-area.js';
import { ManualJiffiesClock, SimHypervisor } from '../xen/index.js';
import type { EvtchnPort } from '../../types.js';
import { SimHostPciDevice } from '../pci-core.js';
import { fireInterrupts } from './activity.js';
import type { PirqGuestData, PirqGuestMessage } from './pirq-guest.js';
import { SimInterrupts } from './sim-interrupts.js';

function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function machine() {
  const xen = new SimHypervisor({ clock: new ManualJiffiesClock(), maxDomains: 8 });
  const { domid } = xen.createDomain({ memoryPages: 8, name: 'guest' });
  const interrupts = new SimInterrupts(xen.eventArea);
  const guest = xen.guestHypercalls(domid, { spinIterations: 0 });
  const add = (model: CatalogModel, bdf: string, irq = 16) => {
    const address = PciAddress.parse(bdf);
    const fn = must(buildCatalogDevice(model, { irq, hooks: interrupts.catalogHooks(address) })[0]);
    const host = new SimHostPciDevice(fn.device, { address, irq });
    const msi = interrupts.attach(host);
    host.enableDevice();
    host.setMaster();
    return { address, host, msi };
  };
  return { xen, domid, interrupts, guest, add };
}

describe('MSI/MSI-X delivery to the guest', () => {
  test('an MSI-X message reaches the port the guest bound to its pirq; unbound ones are counted', () => {
    const m = machine();
    const nic = m.add('nvme', '0000:03:00.0');
    m.interrupts.owners.register(nic.address, m.domid);
    const r = nic.msi.enableMsix([0, 1]);
    assert.ok(r.ok);
    const pirq0 = nic.msi.pirqOfIrq(must(r.irqs[0]));
    const port = m.guest.bindPirq(pirq0);
    assert.ok(port > 0);
    assert.equal(m.xen.eventArea.portEntry(m.domid, port).state, PORT_STATE.PIRQ);

    assert.deepEqual(fireInterrupts(nic.host, { msix: [0] }), { sent: 1, held: 0, intxPulses: 0 });
    assert.deepEqual(m.guest.wait(0), [port]);
    fireInterrupts(nic.host, { msix: [1], count: 2 });
    assert.deepEqual(m.guest.wait(0), []);
    const stats = must(m.interrupts.deviceStats(nic.address));
    assert.deepEqual(stats.msix, { raised: 3, delivered: 1, undelivered: 2 });
    assert.deepEqual(stats.msi, { raised: 0, delivered: 0, undelivered: 0 });
  });

  test('multi-vector MSI: each vector reaches the port of its own pirq', () => {
    const m = machine();
    const dev = m.add('nvme', '0000:03:00.0');
    m.interrupts.owners.register(dev.address, m.domid);
    assert.equal(dev.msi.enableMsi(4), 0);
    const ports = dev.msi.msiIrqs().map((irq) => m.guest.bindPirq(dev.msi.pirqOfIrq(irq)));
    assert.ok(ports.every((p) => p > 0));
    fireInterrupts(dev.host, { msi: [2] });
    assert.deepEqual(m.guest.wait(0), [ports[2]]);
    fireInterrupts(dev.host, { msi: [0, 3] });
    assert.deepEqual(m.guest.wait(0), [ports[0], ports[3]]);
    assert.deepEqual(must(m.interrupts.deviceStats(dev.address)).msi, {
      raised: 3,
      delivered: 3,
      undelivered: 0,
    });
  });

  test('a masked port holds the event pending until the guest unmasks it', () => {
    const m = machine();
    const dev = m.add('gpu', '0000:01:00.0');
    m.interrupts.owners.register(dev.address, m.domid);
    assert.equal(dev.msi.enableMsi(1), 0);
    const port = m.guest.bindPirq(dev.msi.pirqOfIrq(dev.host.irq())) as EvtchnPort;
    m.guest.mask(port);
    fireInterrupts(dev.host, { msi: [0], count: 3 });
    assert.deepEqual(m.guest.wait(0), []);
    assert.equal(m.guest.poll(port, 0), true, 'pending while masked');
    m.guest.unmask(port);
    assert.deepEqual(m.guest.wait(0), [port], 'three coalesced into one event');
    assert.equal(must(m.interrupts.deviceStats(dev.address)).msi.delivered, 3);
  });

  test('closing the port unbinds the pirq: later messages are undelivered, a rebind works', () => {
    const m = machine();
    const dev = m.add('gpu', '0000:01:00.0');
    m.interrupts.owners.register(dev.address, m.domid);
    dev.msi.enableMsi(1);
    const pirq = dev.msi.pirqOfIrq(dev.host.irq());
    const port = m.guest.bindPirq(pirq) as EvtchnPort;
    fireInterrupts(dev.host, { msi: [0] });
    m.guest.closePort(port);
    fireInterrupts(dev.host, { msi: [0] });
    assert.deepEqual(must(m.interrupts.deviceStats(dev.address)).msi, {
      raised: 2,
      delivered: 1,
      undelivered: 1,
    });
    const again = m.guest.bindPirq(pirq);
    assert.ok(again > 0);
    fireInterrupts(dev.host, { msi: [0] });
    assert.deepEqual(m.guest.wait(0), [again]);
  });

  test('guest bindPirq(): EBUSY for a pirq already bound, EINVAL for a bad number', () => {
    const m = machine();
    const port = m.guest.bindPirq(0x100);
    assert.ok(port > 0);
    assert.equal(m.guest.bindPirq(0x100), -16);
    assert.equal(m.guest.bindPirq(0), -22);
    assert.equal(m.guest.bindPirq(-1), -22);
    assert.equal(m.guest.bindPirq(2 ** 28), -22);
    assert.equal(m.xen.eventArea.pirqOfPort(m.domid, port), 0x100);
    assert.equal(m.xen.eventArea.findPirqPort(m.domid, 0x100), port);
    assert.equal(m.guest.notify(port as EvtchnPort), -22, 'EVTCHNOP_send on a pirq port');
  });

  test('messages a guest cannot receive: another domain owns the pirq, or the domain died', () => {
    const m = machine();
    const other = m.xen.createDomain({ memoryPages: 4 }).domid;
    const dev = m.add('gpu', '0000:01:00.0');
    m.interrupts.owners.register(dev.address, other);
    dev.msi.enableMsi(1);
    const pirq = dev.msi.pirqOfIrq(dev.host.irq());
    // Same pirq number bound in the wrong domain: nothing arrives there.
    const port = m.guest.bindPirq(pirq);
    fireInterrupts(dev.host, { msi: [0] });
    assert.deepEqual(m.guest.wait(0), []);
    assert.ok(port > 0);
    const owner = m.xen.guestHypercalls(other, { spinIterations: 0 });
    const ownerPort = owner.bindPirq(pirq);
    fireInterrupts(dev.host, { msi: [0] });
    assert.deepEqual(owner.wait(0), [ownerPort]);
    m.xen.destroyDomain(other);
    fireInterrupts(dev.host, { msi: [0] });
    assert.deepEqual(must(m.interrupts.deviceStats(dev.address)).msi, {
      raised: 3,
      delivered: 1,
      undelivered: 2,
    });
  });

  test('a message with no IRQ behind it (MSI programmed by someone else) is undelivered', () => {
    const m = machine();
    const dev = m.add('gpu', '0000:01:00.0');
    // Enable bit set directly (what a permissive guest could do): stale address/data.
    assert.equal(dev.msi.enableMsi(1), 0);
    dev.msi.disableMsi();
    const hw = dev.host.hardware;
    const flagsAt = must(findCapability(hw, PCI_CAP_ID.MSI)) + PCI_MSI_FLAGS_OFFSET;
    hw.configWrite(flagsAt, 2, hw.configRead(flagsAt, 2) | PCI_MSI_FLAGS_ENABLE);
    fireInterrupts(dev.host, { msi: [0] });
    assert.deepEqual(must(m.interrupts.deviceStats(dev.address)).msi, {
      raised: 1,
      delivered: 0,
      undelivered: 1,
    });
    // disableMsi() converges even though this layer did not enable it.
    dev.msi.disableMsi();
    assert.equal(dev.msi.msiEnabled(), false);
  });

  test(
    'a guest worker blocked in waitForEvent() is woken by each MSI-X message',
    { timeout: 60_000 },
    async () => {
      const m = machine();
      const dev = m.add('nvme', '0000:03:00.0');
      m.interrupts.owners.register(dev.address, m.domid);
      const r = dev.msi.enableMsix([5]);
      assert.ok(r.ok);
      const data: PirqGuestData = {
        xen: must(m.xen.guestInit(m.domid)),
        pirq: dev.msi.pirqOfIrq(must(r.irqs[0])),
        rounds: 5,
        timeoutMs: 10_000,
      };
      const worker = new Worker(new URL('./pirq-guest.js', import.meta.url), { workerData: data });
      const inbox: PirqGuestMessage[] = [];
      let wake: (() => void) | undefined;
      worker.on('message', (msg: PirqGuestMessage) => {
        inbox.push(msg);
        wake?.();
      });
      const next = async (): Promise<PirqGuestMessage> => {
        while (inbox.length === 0) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 1000);
          });
        }
        return must(inbox.shift());
      };
      try {
        const bound = await next();
        assert.equal(bound.type, 'bound');
        for (let round = 0; round < 5; round++) {
          fireInterrupts(dev.host, { msix: [5] });
          assert.deepEqual(await next(), { type: 'event', round });
        }
        assert.deepEqual(await next(), { type: 'done' });
        assert.deepEqual(must(m.interrupts.deviceStats(dev.address)).msix, {
          raised: 5,
          delivered: 5,
          undelivered: 0,
        });
      } finally {
        await worker.terminate();
        m.xen.dispose();
      }
    },
  );
});

describe('INTx through the device hooks', () => {
  test('two devices on one line: pciback-like handler claims for one, the line stays healthy', async () => {
    const m = machine();
    const a = m.add('gpu', '0000:01:00.0', 16);
    const b = m.add('xhci', '0000:02:00.0', 16);
    assert.equal(m.interrupts.irqs.isSharedWithOtherDomains(16), true);
    let claimed = 0;
    // The device driver of b claims only when b's interrupt status is set.
    m.interrupts.irqs.requestSharedIrq(16, 'xhci', () => {
      const status = b.host.readConfig(0x06, 2).value;
      if ((status & 0x08) === 0) return false;
      claimed++;
      return true;
    });
    b.host.hardware.setIntx(true);
    assert.equal(claimed, 0, 'not from inside the hardware call');
    await settle();
    assert.equal(claimed, 1);
    b.host.hardware.setIntx(false);
    fireInterrupts(a.host, { intx: true, count: 3 });
    await settle();
    const line = must(m.interrupts.irqs.lineStats(16));
    assert.equal(line.count, 4);
    assert.equal(line.unhandled, 3);
    assert.equal(line.disabled, false);
    assert.deepEqual(line.devices, ['0000:01:00.0', '0000:02:00.0']);
    assert.equal(must(m.interrupts.deviceStats(a.address)).intxAssertions, 3);
  });

  test('nobody cared: a device whose interrupts nobody claims gets its line disabled', async () => {
    const xen = new SimHypervisor({ clock: new ManualJiffiesClock(), maxDomains: 4 });
    const interrupts = new SimInterrupts(xen.eventArea, {
      irqLayer: { nobodyCaredWindow: 1000, nobodyCaredThreshold: 999 },
    });
    const address = PciAddress.parse('0000:01:00.0');
    const fn = must(
      buildCatalogDevice('gpu', { irq: 20, hooks: interrupts.catalogHooks(address) })[0],
    );
    const host = new SimHostPciDevice(fn.device, { address, irq: 20 });
    interrupts.attach(host);
    host.enableDevice();
    fireInterrupts(host, { intx: true, count: 1500 });
    await settle();
    const line = must(interrupts.irqs.lineStats(20));
    assert.equal(line.disabled, true);
    assert.equal(line.count, 1000);
    assert.equal(line.unhandled, 1000);
  });

  test('INTx is silent while MSI is on, and a level reported before attach applies at attach', async () => {
    const m = machine();
    const dev = m.add('gpu', '0000:01:00.0', 17);
    dev.msi.enableMsi(1);
    fireInterrupts(dev.host, { intx: true, count: 2 });
    await settle();
    assert.equal(must(m.interrupts.irqs.lineStats(17)).count, 0);

    const address = PciAddress.parse('0000:05:00.0');
    const fn = must(
      buildCatalogDevice('gpu', { irq: 18, hooks: m.interrupts.catalogHooks(address) })[0],
    );
    const host = new SimHostPciDevice(fn.device, { address, irq: 18 });
    fn.device.setIntx(true);
    m.interrupts.attach(host);
    await settle();
    assert.equal(must(m.interrupts.irqs.lineStats(18)).count, 1);
    m.interrupts.detach(address);
    assert.deepEqual(must(m.interrupts.irqs.lineStats(18)).devices, []);
    assert.equal(m.interrupts.msiControl(address), undefined);
  });
});
