// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PCI_ERS_RESULT, XEN_PCI_FLAG_MASK, XEN_PCI_OP, XEN_PCI_OP_OFFSET } from '../abi/pciif.js';
import { isPcibackError } from '../errors.js';
import { DOM0 } from '../platform/types.js';
import { PCIBIOS, xenErrToPcibios } from '../abi/pcibios.js';
import { Pcifront, type AerHandler } from './pcifront.js';
import { FakeGuestHypercalls, FakePciBackend, type FakeFunction } from './test-backend.js';

/** A 256-byte function whose dword at 0 is 0x10fb8086 and whose command has MEM. */
function tinyFunction(): FakeFunction & { regs: DataView } {
  const regs = new DataView(new ArrayBuffer(256));
  regs.setUint32(0, 0x10fb8086, true);
  regs.setUint16(4, 0x0002, true);
  return {
    regs,
    configRead(off, size) {
      return size === 1
        ? regs.getUint8(off)
        : size === 2
          ? regs.getUint16(off, true)
          : regs.getUint32(off, true);
    },
    configWrite(off, size, value) {
      if (size === 1) regs.setUint8(off, value);
      else if (size === 2) regs.setUint16(off, value, true);
      else regs.setUint32(off, value, true);
    },
  };
}

function setup(options: { aerHandler?: AerHandler } = {}): {
  hv: FakeGuestHypercalls;
  front: Pcifront;
  backend: FakePciBackend;
  fn: ReturnType<typeof tinyFunction>;
} {
  const hv = new FakeGuestHypercalls();
  const front = Pcifront.create(hv, { backendDomid: DOM0, clock: hv.clock, ...options });
  const backend = new FakePciBackend(hv, front.grantRef);
  const fn = tinyFunction();
  backend.add(0, 0, 0x08, fn);
  return { hv, front, backend, fn };
}

const DEV = { domain: 0, bus: 0, devfn: 0x08 };

test('Pcifront.create() zeroes the page, sets XEN_PCIB_AERHANDLER and grants it', () => {
  const hv = new FakeGuestHypercalls();
  hv.pageBytes(0).fill(0xaa);
  const front = Pcifront.create(hv, { backendDomid: DOM0, clock: hv.clock });
  assert.equal(front.flags(), XEN_PCI_FLAG_MASK.PCIB_AERHANDLER);
  assert.equal(hv.pageBytes(0)[100], 0);
  assert.equal(hv.grants.get(front.grantRef), 0);
  assert.equal(front.eventPort, 5);
});

test('Pcifront.doPciOp() copies the whole op in and the answer back', () => {
  const { front, backend } = setup();
  const reply = front.doPciOp({ cmd: XEN_PCI_OP.conf_read, ...DEV, offset: 0, size: 4, info: 7 });
  assert.equal(reply.timedOut, false);
  assert.equal(reply.err, 0);
  assert.equal(reply.value, 0x10fb8086);
  assert.equal(reply.info, 7);
  const seen = backend.seen[0];
  assert.ok(seen !== undefined);
  assert.deepEqual([seen.cmd, seen.devfn, seen.offset, seen.size, seen.info], [0, 0x08, 0, 4, 7]);
  assert.equal(front.flags() & XEN_PCI_FLAG_MASK.PCIF_active, 0);
});

test('Pcifront.doPciOp() against a dead backend times out after opTimeoutMs and clears the bit', () => {
  const { hv, front, backend } = setup();
  backend.mode = 'dead';
  const t0 = hv.now;
  const reply = front.doPciOp({ cmd: XEN_PCI_OP.conf_read, ...DEV, offset: 0, size: 4 });
  assert.equal(reply.timedOut, true);
  assert.equal(reply.err, -1);
  assert.equal(reply.value, 0, 'nothing is copied back: the request is returned');
  assert.ok(hv.now - t0 >= 2000 && hv.now - t0 < 2100, `waited ${hv.now - t0} ms`);
  assert.equal(front.flags() & XEN_PCI_FLAG_MASK.PCIF_active, 0);
  assert.equal(front.stats().timeouts, 1);
  // The next op works again once the backend is back.
  backend.mode = 'sync';
  assert.equal(front.readConfig(DEV, 0, 2).value, 0x8086);
});

test('Pcifront.readConfig() maps errors as pcifront does (spec §9)', () => {
  const { front, backend } = setup();
  assert.deepEqual(
    [0, -1, -2, -3, -4, -5, -22].map(xenErrToPcibios),
    [0, 0x86, 0x87, 0x88, 0x81, 0x87, -22],
  );
  const absent = front.readConfig({ domain: 0, bus: 0, devfn: 0x10 }, 0, 4);
  assert.deepEqual([absent.pcibios, absent.value], [PCIBIOS.DEVICE_NOT_FOUND, 0xffffffff]);
  backend.override = () => ({ err: -19, value: 0x1234 });
  const nodev = front.readConfig(DEV, 0, 4);
  assert.deepEqual([nodev.pcibios, nodev.value], [PCIBIOS.SUCCESSFUL, 0]);
  backend.override = () => ({ err: 0, value: 0xdeadbeef });
  assert.equal(front.readConfig(DEV, 2, 2).value, 0xbeef, 'extra bits are truncated');
  backend.override = undefined;
  const before = backend.seen.length;
  const misaligned = front.readConfig(DEV, 3, 2);
  assert.equal(misaligned.pcibios, PCIBIOS.BAD_REGISTER_NUMBER);
  assert.equal(backend.seen.length, before, 'refused locally');
});

test('Pcifront.writeConfig() sends only the low bytes of the value', () => {
  const { front, backend, fn } = setup();
  assert.equal(front.writeConfig(DEV, 0x3c, 1, 0x1ab).pcibios, 0);
  assert.equal(backend.seen.at(-1)?.value, 0xab);
  assert.equal(fn.regs.getUint8(0x3c), 0xab);
});

test('Pcifront serves an AER request found after an op and answers the handler result', () => {
  const requests: string[] = [];
  const { front, backend } = setup({
    aerHandler: (r) => {
      requests.push(`${r.kind}:${r.channelState}:${r.devfn}`);
      return PCI_ERS_RESULT.NEED_RESET;
    },
  });
  backend.postAer({ cmd: XEN_PCI_OP.aer_detected, err: 2, domain: 0, bus: 0, devfn: 8 });
  front.readConfig(DEV, 0, 4);
  assert.deepEqual(requests, ['error_detected:2:8']);
  assert.equal(backend.aerAnswer(), PCI_ERS_RESULT.NEED_RESET);
  assert.equal(front.flags() & XEN_PCI_FLAG_MASK.PCIB_active, 0);
  // resume always answers NONE; an unknown command answers NONE.
  backend.postAer({ cmd: XEN_PCI_OP.aer_resume, err: 1, domain: 0, bus: 0, devfn: 8 });
  assert.equal(front.serviceAer(), 1);
  assert.equal(backend.aerAnswer(), PCI_ERS_RESULT.NONE);
  backend.postAer({ cmd: 42, err: 1, domain: 0, bus: 0, devfn: 8 });
  front.serviceAer();
  assert.equal(backend.aerAnswer(), PCI_ERS_RESULT.NONE);
  assert.equal(front.serviceAer(), 0, 'nothing pending');
});

test('Pcifront.serviceAer() answers NONE for a throwing or out-of-range handler', () => {
  let mode: 'throw' | 'junk' = 'throw';
  const { front, backend } = setup({
    aerHandler: () => {
      if (mode === 'throw') throw new Error('driver bug');
      return 99;
    },
  });
  backend.postAer({ cmd: XEN_PCI_OP.aer_slotreset, err: 2, domain: 0, bus: 0, devfn: 8 });
  front.serviceAer();
  assert.equal(backend.aerAnswer(), PCI_ERS_RESULT.NONE);
  mode = 'junk';
  backend.postAer({ cmd: XEN_PCI_OP.aer_mmio, err: 2, domain: 0, bus: 0, devfn: 8 });
  front.serviceAer();
  assert.equal(backend.aerAnswer(), PCI_ERS_RESULT.NONE);
});

test('an AER handler may issue config reads; an op inside whilePending is refused', () => {
  let vendor = 0;
  const holder: { front?: Pcifront } = {};
  const { front, backend } = setup({
    aerHandler: () => {
      vendor = holder.front?.readConfig(DEV, 0, 2).value ?? 0;
      return PCI_ERS_RESULT.RECOVERED;
    },
  });
  holder.front = front;
  backend.postAer({ cmd: XEN_PCI_OP.aer_detected, err: 1, domain: 0, bus: 0, devfn: 8 });
  front.serviceAer();
  assert.equal(vendor, 0x8086);
  assert.equal(backend.aerAnswer(), PCI_ERS_RESULT.RECOVERED);
  backend.mode = 'deferred';
  assert.throws(
    () =>
      front.doPciOp(
        { cmd: 0, ...DEV, offset: 0, size: 4 },
        { whilePending: () => front.doPciOp({ cmd: 0, ...DEV, offset: 0, size: 4 }) },
      ),
    (err: unknown) => isPcibackError(err, 'PCIFRONT_BUSY'),
  );
});

test('doPciOp({ whilePending }) lets a hostile guest rewrite the op before the backend snapshot', () => {
  const { front, backend } = setup();
  backend.mode = 'deferred';
  backend.deferTicks = 10;
  let calls = 0;
  const reply = front.doPciOp(
    { cmd: XEN_PCI_OP.conf_read, ...DEV, offset: 0, size: 4 },
    {
      whilePending: (view) => {
        calls += 1;
        view.setInt32(XEN_PCI_OP_OFFSET.size, 2, true);
      },
    },
  );
  assert.ok(calls > 0);
  assert.equal(backend.seen.at(-1)?.size, 2, 'the backend saw the rewritten size');
  assert.equal(reply.value, 0x8086);
});

test('MSI hooks check what comes back (spec §9)', () => {
  const { front, backend } = setup();
  const on = front.enableMsi(DEV);
  assert.deepEqual(on, { ok: true, pirq: 108, err: 0 });
  const again = front.enableMsi(DEV);
  assert.ok(!again.ok);
  assert.deepEqual([again.errno, again.err], [-22, -5]);
  assert.deepEqual(front.disableMsi(DEV), { ok: true, err: 0, value: 11 });
  backend.override = (op) => (op.cmd === XEN_PCI_OP.enable_msi ? { err: 0, value: 0 } : undefined);
  const zero = front.enableMsi(DEV);
  assert.ok(!zero.ok && zero.errno === -22 && zero.err === 0);
  backend.override = undefined;

  const sent = backend.seen.length;
  const tooMany = front.enableMsix(
    DEV,
    Array.from({ length: 129 }, (_, i) => i),
  );
  assert.ok(!tooMany.ok && tooMany.errno === -22 && tooMany.err === undefined);
  assert.equal(backend.seen.length, sent, 'nvec > 128 never reaches the backend');

  const msix = front.enableMsix(DEV, [0, 1, 2, 3]);
  assert.deepEqual(msix, { ok: true, pirqs: [200, 201, 202, 203], err: 0 });
  const request = backend.seen.at(-1);
  assert.ok(request !== undefined);
  assert.equal(request.value, 4);
  assert.deepEqual(request.msixEntries.slice(0, 2), [
    { vector: 0xffff, entry: 0 },
    { vector: 0xffff, entry: 1 },
  ]);
  const twice = front.enableMsix(DEV, [0]);
  assert.ok(!twice.ok && twice.errno === -114);
  assert.equal(front.disableMsix(DEV).err, 0);

  backend.override = (op) =>
    op.cmd === XEN_PCI_OP.enable_msix ? { err: 0, value: 0, msixVectors: [5, 0] } : undefined;
  const hole = front.enableMsix(DEV, [0, 1]);
  assert.ok(!hole.ok && hole.errno === -22, 'a zero vector fails the call');
  backend.override = (op) =>
    op.cmd === XEN_PCI_OP.enable_msix ? { err: 0, value: 0xffffffea } : undefined;
  const valued = front.enableMsix(DEV, [0]);
  assert.ok(!valued.ok && valued.errno === -22 && valued.err === 0);
});

test('enableMultiMsi() puts nvec in info only; Linux pciback answers not implemented', () => {
  const { front, backend } = setup();
  const r = front.enableMultiMsi(DEV, 4);
  const op = backend.seen.at(-1);
  assert.deepEqual([op?.cmd, op?.info, op?.value], [10, 4, 0]);
  assert.ok(!r.ok && r.err === -4 && r.errno === -22);
  const bad = front.enableMultiMsi(DEV, 3);
  assert.ok(!bad.ok && bad.err === undefined);
  backend.override = (o) => (o.cmd === 10 ? { err: 0, value: 64 } : undefined);
  assert.deepEqual(front.enableMultiMsi(DEV, 8), { ok: true, pirq: 64, err: 0 });
});

test('Pcifront.close() ends the grant and later ops throw', () => {
  const { front } = setup();
  assert.equal(front.close(), true);
  assert.throws(
    () => front.readConfig(DEV, 0, 4),
    (e: unknown) => isPcibackError(e, 'PCIFRONT_CLOSED'),
  );
});
