// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Logger } from '../../types.js';
import { MSI_ADDRESS, SimIrqLayer } from './irq-layer.js';

function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

/** Lets queued microtasks and immediates run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function recordingLogger(): Logger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const log =
    (level: string) =>
    (_obj: object, msg?: string): void => {
      lines.push({ level, msg: msg ?? '' });
    };
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

describe('SimIrqLayer legacy lines', () => {
  test('handlers run after the assertion, on the event loop, not inside the caller', async () => {
    const irqs = new SimIrqLayer();
    irqs.connectIntx(16, 'dev-a');
    let calls = 0;
    irqs.requestSharedIrq(16, 'h', () => {
      calls++;
      return true;
    });
    irqs.setIntxLevel(16, 'dev-a', true);
    assert.equal(calls, 0);
    await Promise.resolve();
    assert.equal(calls, 1);
    // Staying asserted raises no further interrupt; a new edge does.
    irqs.setIntxLevel(16, 'dev-a', true);
    await settle();
    assert.equal(calls, 1);
    irqs.setIntxLevel(16, 'dev-a', false);
    irqs.setIntxLevel(16, 'dev-a', true);
    await settle();
    assert.equal(calls, 2);
    assert.deepEqual(irqs.lineStats(16), {
      irq: 16,
      count: 2,
      unhandled: 0,
      disabled: false,
      asserted: true,
      shared: false,
      handlers: ['h'],
      devices: ['dev-a'],
    });
  });

  test('two devices share a line; every handler runs and one claim makes it handled', async () => {
    const irqs = new SimIrqLayer();
    irqs.connectIntx(17, 'dev-a');
    irqs.connectIntx(17, 'dev-b');
    const seen: string[] = [];
    irqs.requestSharedIrq(17, 'driver-a', () => {
      seen.push('a');
      return false;
    });
    irqs.requestSharedIrq(17, 'driver-b', () => {
      seen.push('b');
      return true;
    });
    irqs.setIntxLevel(17, 'dev-b', true);
    irqs.setIntxLevel(17, 'dev-a', true);
    await settle();
    assert.deepEqual(seen, ['a', 'b', 'a', 'b']);
    const stats = must(irqs.lineStats(17));
    assert.equal(stats.count, 2);
    assert.equal(stats.unhandled, 0);
    assert.equal(stats.shared, true);
    assert.equal(irqs.isSharedWithOtherDomains(17), true);
  });

  test('isSharedWithOtherDomains() follows the per-line flag over the wiring default', () => {
    const irqs = new SimIrqLayer();
    irqs.connectIntx(18, 'dev-a');
    assert.equal(irqs.isSharedWithOtherDomains(18), false);
    irqs.setShared(18, true);
    assert.equal(irqs.isSharedWithOtherDomains(18), true);
    irqs.connectIntx(18, 'dev-b');
    irqs.setShared(18, false);
    assert.equal(irqs.isSharedWithOtherDomains(18), false);
    irqs.setShared(18, undefined);
    assert.equal(irqs.isSharedWithOtherDomains(18), true);
    assert.equal(irqs.isSharedWithOtherDomains(64), false);
    assert.equal(irqs.isSharedWithOtherDomains(9999), false);
  });

  test('requestSharedIrq() refuses IRQ 0, unknown lines and lines held exclusively', () => {
    const irqs = new SimIrqLayer();
    const h = (): boolean => true;
    assert.equal(irqs.requestSharedIrq(0, 'x', h), -22);
    assert.equal(irqs.requestSharedIrq(48, 'x', h), -22);
    assert.equal(irqs.requestSharedIrq(64, 'x', h), -22);
    assert.equal(irqs.requestIrq(20, 'exclusive', h, { shared: false }), 0);
    assert.equal(irqs.requestSharedIrq(20, 'x', h), -16);
    irqs.freeIrq(20, 'exclusive');
    assert.equal(irqs.requestSharedIrq(20, 'x', h), 0);
    assert.equal(irqs.requestIrq(20, 'exclusive', h, { shared: false }), -16);
  });

  test('freeIrq() removes one handler by name and tolerates unknown names', async () => {
    const logger = recordingLogger();
    const irqs = new SimIrqLayer({ logger });
    let a = 0;
    let b = 0;
    irqs.requestSharedIrq(5, 'a', () => ++a > 0);
    irqs.requestSharedIrq(5, 'b', () => ++b > 0);
    irqs.freeIrq(5, 'a');
    irqs.freeIrq(5, 'nope');
    irqs.raise(5);
    await settle();
    assert.deepEqual([a, b], [0, 1]);
    assert.equal(logger.lines.filter((l) => l.level === 'warn').length, 1);
  });

  test('a device asserting a line without any handler counts as unhandled', async () => {
    const irqs = new SimIrqLayer();
    irqs.connectIntx(19, 'dev-a');
    irqs.setIntxLevel(19, 'dev-a', true);
    await settle();
    assert.equal(irqs.lineStats(19)?.count, 1);
    assert.equal(irqs.lineStats(19)?.unhandled, 1);
  });

  test('a handler that throws is logged and counted as not handled', async () => {
    const logger = recordingLogger();
    const irqs = new SimIrqLayer({ logger });
    irqs.requestSharedIrq(7, 'bad', () => {
      throw new Error('boom');
    });
    irqs.raise(7, 3);
    await settle();
    assert.equal(irqs.lineStats(7)?.unhandled, 3);
    assert.equal(logger.lines.filter((l) => l.level === 'error').length, 3);
  });

  test('levels of a source not wired to the line are ignored', async () => {
    const irqs = new SimIrqLayer();
    irqs.setIntxLevel(21, 'ghost', true);
    await settle();
    assert.equal(irqs.lineStats(21)?.count, 0);
  });
});

describe('SimIrqLayer "nobody cared"', () => {
  test('Linux numbers: a line is disabled after more than 99,900 of 100,000 go unhandled', async () => {
    const logger = recordingLogger();
    const irqs = new SimIrqLayer({ logger });
    let n = 0;
    // Claims exactly 99 of every 100,000: 99,901 unhandled.
    irqs.requestSharedIrq(10, 'rarely', () => n++ < 99);
    irqs.raise(10, 100_000);
    for (let turn = 0; turn < 100 && irqs.lineStats(10)?.count !== 100_000; turn++) await settle();
    const stats = must(irqs.lineStats(10));
    assert.equal(stats.disabled, true);
    assert.equal(stats.unhandled, 99_901);
    const cared = logger.lines.filter((l) => l.msg.includes('irq 10: nobody cared'));
    assert.equal(cared.length, 1);
  });

  test('exactly the threshold unhandled keeps the line; the window then restarts', async () => {
    const irqs = new SimIrqLayer({ nobodyCaredWindow: 100, nobodyCaredThreshold: 90 });
    let n = 0;
    irqs.requestSharedIrq(11, 'h', () => n++ % 10 === 0); // 10 of 100 handled: 90 unhandled
    irqs.raise(11, 300);
    await settle();
    assert.equal(irqs.lineStats(11)?.disabled, false);
    assert.equal(irqs.lineStats(11)?.count, 300);
    assert.equal(irqs.lineStats(11)?.unhandled, 270);
  });

  test('a disabled line takes no more interrupts, logs once, and a new first handler re-enables it', async () => {
    const logger = recordingLogger();
    const irqs = new SimIrqLayer({ logger, nobodyCaredWindow: 100, nobodyCaredThreshold: 90 });
    irqs.connectIntx(12, 'dev-a');
    irqs.raise(12, 250);
    await settle();
    let stats = must(irqs.lineStats(12));
    assert.equal(stats.disabled, true);
    assert.equal(stats.count, 100);
    irqs.setIntxLevel(12, 'dev-a', true);
    irqs.raise(12, 5);
    await settle();
    assert.equal(irqs.lineStats(12)?.count, 100);
    assert.equal(logger.lines.filter((l) => l.msg.includes('nobody cared')).length, 1);
    let claims = 0;
    assert.equal(
      irqs.requestSharedIrq(12, 'late driver', () => ++claims > 0),
      0,
    );
    irqs.raise(12, 5);
    await settle();
    stats = must(irqs.lineStats(12));
    assert.equal(stats.disabled, false);
    assert.equal(stats.count, 105);
    assert.equal(claims, 5);
  });

  test('a long burst is handled in turns that let the event loop run in between', async () => {
    const irqs = new SimIrqLayer({ maxInterruptsPerTurn: 100 });
    const seen = { handled: 0 };
    irqs.requestSharedIrq(13, 'h', () => ++seen.handled > 0);
    irqs.raise(13, 1000);
    await Promise.resolve();
    assert.equal(seen.handled, 100);
    for (let turn = 0; turn < 100 && (irqs.lineStats(13)?.count ?? 0) < 1000; turn++) {
      await settle();
    }
    assert.equal(irqs.lineStats(13)?.count, 1000);
  });
});

describe('SimIrqLayer MSI IRQs', () => {
  test('a block has consecutive data aligned to its size; MSI-X vectors get their own', () => {
    const irqs = new SimIrqLayer();
    const one = irqs.allocateMsi(1, 'block');
    const four = irqs.allocateMsi(4, 'block');
    assert.ok(typeof one !== 'number' && typeof four !== 'number');
    assert.deepEqual(one.irqs, [64]);
    assert.deepEqual(four.irqs, [65, 66, 67, 68]);
    const base = four.messages[0]?.data ?? -1;
    assert.equal(base % 4, 0);
    assert.deepEqual(
      four.messages.map((m) => m.data),
      [base, base + 1, base + 2, base + 3],
    );
    assert.ok(four.messages.every((m) => m.address === MSI_ADDRESS));
    assert.equal(irqs.irqOfMessage(MSI_ADDRESS, base + 2), 67);
    assert.equal(irqs.irqOfMessage(MSI_ADDRESS + 4n, base + 2), undefined);
    assert.equal(irqs.allocateMsi(3, 'block'), -22);
    irqs.freeMsi(four.irqs);
    assert.equal(irqs.irqOfMessage(MSI_ADDRESS, base + 2), undefined);
    assert.equal(irqs.isMsiIrq(65), false);
    const x = irqs.allocateMsi(2, 'separate');
    assert.ok(typeof x !== 'number');
    assert.deepEqual(x.irqs, [65, 66]);
    assert.notEqual(x.messages[0]?.data, x.messages[1]?.data);
  });

  test('allocateMsi() answers ENOSPC when IRQ numbers run out', () => {
    const irqs = new SimIrqLayer({ firstMsiIrq: 64, maxIrqs: 66 });
    assert.notEqual(typeof irqs.allocateMsi(2, 'separate'), 'number');
    assert.equal(irqs.allocateMsi(1, 'separate'), -28);
  });
});
