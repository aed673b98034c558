// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
} from '../../abi/pci-regs.js';
import {
  buildConfigImage,
  FULL_DEVICE_LAYOUT,
  fullTestDevice,
  MemoryHostDevice,
  recordingLogger,
} from '../../../test/support/memory-host-device.js';
import { FAKE_IRQ_SHARED_CHECK_INTERVAL, PcibackDevice } from './backend-device.js';
import { RateLimiter } from './rate-limit.js';
import { deviceFixture, FakeIrqLines, FakeMsi } from './test-fakes.js';

const IRQ = FULL_DEVICE_LAYOUT.irq;

function enableDecode(fx: ReturnType<typeof deviceFixture>): void {
  assert.equal(fx.dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO), 0);
  fx.dev.controlIsr(false);
}

test('PcibackDevice names its IRQ handler xen-pciback[DDDD:BB:DD.F] and is a topology device', () => {
  const fx = deviceFixture();
  assert.equal(fx.dev.irqName, 'xen-pciback[0000:03:00.0]');
  assert.equal(fx.dev.isVirtualFn, false);
  assert.equal(fx.dev.address.toString(), '0000:03:00.0');
  assert.deepEqual(fx.dev.upstreamBridges(), []);
});

test('controlIsr() installs a shared handler on the legacy IRQ when decoding is enabled', () => {
  const fx = deviceFixture();
  enableDecode(fx);
  assert.deepEqual(fx.irqLines.requests, [{ irq: IRQ, name: 'xen-pciback[0000:03:00.0]' }]);
  assert.equal(fx.dev.isrOn, true);
  assert.equal(fx.dev.ackIntr, true);
  assert.equal(fx.dev.irq, IRQ);
  // A repeated call does not register the handler twice.
  fx.dev.controlIsr(false);
  assert.equal(fx.irqLines.requests.length, 1);
});

test('controlIsr() leaves state unchanged when the platform refuses the IRQ', () => {
  const fx = deviceFixture();
  fx.irqLines.requestResult = -16;
  enableDecode(fx);
  assert.equal(fx.dev.isrOn, false);
  assert.equal(fx.dev.ackIntr, false);
  assert.equal(fx.logger.at('error').length, 1);
});

test('controlIsr() never requests IRQ 0 (SR-IOV VF)', () => {
  const fx = deviceFixture({ irq: 0, physfn: fullTestDevice() });
  assert.equal(fx.dev.isVirtualFn, true);
  enableDecode(fx);
  assert.deepEqual(fx.irqLines.requests, []);
  assert.equal(fx.dev.isrOn, false);
});

test('controlIsr() does nothing for a bridge', () => {
  const host = new MemoryHostDevice({ config: buildConfigImage({ headerType: 1 }), irq: 10 });
  const irqLines = new FakeIrqLines();
  const dev = PcibackDevice.create(
    { host, msi: new FakeMsi(host), irqLines },
    { global: { permissive: false } },
  );
  dev.config.write(PCI_COMMAND_OFFSET, 2, PCI_COMMAND_MEMORY);
  dev.controlIsr(false);
  assert.deepEqual(irqLines.requests, []);
});

test('controlIsr(true) clears enable_intx and ack_intr and frees the handler', () => {
  const fx = deviceFixture();
  enableDecode(fx);
  fx.dev.controlIsr(true);
  assert.equal(fx.dev.enableIntx, false);
  assert.equal(fx.dev.isrOn, false);
  assert.equal(fx.dev.ackIntr, false);
  assert.equal(fx.dev.irq, 0);
  assert.deepEqual(fx.irqLines.frees, [{ irq: IRQ, name: 'xen-pciback[0000:03:00.0]' }]);
});

test('the fake handler claims interrupts only while isr_on and ack_intr', () => {
  const fx = deviceFixture();
  assert.equal(fx.irqLines.fire(IRQ), false);
  enableDecode(fx);
  assert.equal(fx.irqLines.fire(IRQ), true);
  assert.equal(fx.dev.handled, 1);
  fx.dev.setAckIntr(false);
  assert.equal(fx.irqLines.fire(IRQ), false);
  assert.equal(fx.dev.handled, 1);
});

test('the fake handler asks every 1000 interrupts and stops acking a line not shared', () => {
  const fx = deviceFixture();
  enableDecode(fx);
  for (let i = 0; i < FAKE_IRQ_SHARED_CHECK_INTERVAL - 1; i++) fx.irqLines.fire(IRQ);
  assert.equal(fx.irqLines.sharedQueries, 0);
  fx.irqLines.fire(IRQ);
  assert.equal(fx.irqLines.sharedQueries, 1);
  assert.equal(fx.dev.ackIntr, true);
  fx.irqLines.shared = false;
  for (let i = 0; i < FAKE_IRQ_SHARED_CHECK_INTERVAL; i++) fx.irqLines.fire(IRQ);
  assert.equal(fx.irqLines.sharedQueries, 2);
  assert.equal(fx.dev.ackIntr, false);
  assert.equal(fx.dev.handled, 2 * FAKE_IRQ_SHARED_CHECK_INTERVAL);
  assert.equal(fx.irqLines.fire(IRQ), false);
  assert.equal(fx.dev.stats().handled, 2000);
});

test('resetDevice() never writes 0 to the command register (XSA-120 addendum)', () => {
  const fx = deviceFixture();
  enableDecode(fx);
  fx.dev.config.write(
    PCI_COMMAND_OFFSET,
    2,
    PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_MASTER,
  );
  fx.msi.enableMsi(1);
  fx.host.clearCalls();
  fx.dev.resetDevice();
  const commandWrites = fx.host
    .callsOf('writeConfig')
    .filter(
      (c) => c.byteOffset <= PCI_COMMAND_OFFSET && c.byteOffset + c.sizeBytes > PCI_COMMAND_OFFSET,
    );
  assert.deepEqual(commandWrites, []);
  const cmd = fx.host.peek(PCI_COMMAND_OFFSET, 2);
  assert.equal(cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_IO), PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
  assert.equal(cmd & PCI_COMMAND_MASTER, 0);
  assert.equal(fx.host.isEnabled(), false);
  assert.equal(fx.msi.msiEnabled(), false);
  assert.equal(fx.dev.isrOn, false);
  assert.deepEqual(fx.host.callsOf('disableDevice').length, 1);
});

test('resetDevice() turns MSI-X off too', () => {
  const fx = deviceFixture();
  fx.msi.enableMsix([0]);
  fx.dev.resetDevice();
  assert.equal(fx.msi.msixEnabled(), false);
});

test('resetDevice() on a bridge clears only INVALIDATE', () => {
  const host = new MemoryHostDevice({
    config: buildConfigImage({
      headerType: 1,
      command: PCI_COMMAND_INVALIDATE | PCI_COMMAND_MEMORY,
    }),
  });
  const dev = PcibackDevice.create(
    { host, msi: new FakeMsi(host), irqLines: new FakeIrqLines() },
    { global: { permissive: false } },
  );
  dev.resetDevice();
  assert.equal(host.peek(PCI_COMMAND_OFFSET, 2), PCI_COMMAND_MEMORY);
});

test('stats() counts denied writes from the confspace audit', () => {
  const fx = deviceFixture();
  fx.dev.config.write(0x44, 4, 0x12345678);
  fx.dev.config.write(0x44, 4, 0x12345678);
  assert.equal(fx.dev.stats().deniedWrites >= 1, true);
});

test('RateLimiter allows a burst per interval and reports what it suppressed', () => {
  let now = 0;
  const limiter = new RateLimiter({ intervalMs: 1000, burst: 3, nowMs: () => now });
  const logger = recordingLogger();
  for (let i = 0; i < 10; i++) limiter.warn(logger, {}, 'failed');
  assert.equal(logger.records.length, 3);
  now = 1000;
  limiter.warn(logger, {}, 'failed');
  assert.deepEqual(
    logger.records.slice(3).map((r) => r.msg),
    ['7 callbacks suppressed', 'failed'],
  );
  assert.equal(limiter.suppressed, 7);
  assert.throws(() => new RateLimiter({ burst: 0 }), RangeError);
});
