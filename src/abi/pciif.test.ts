// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ORACLES_DIR } from '../../test/support/paths.js';
import {
  PCI_CHANNEL_IO,
  PCI_ERS_RESULT,
  SH_INFO_MAX_VEC,
  XEN_MSIX_ENTRY_ALIGN,
  XEN_MSIX_ENTRY_FIELD_SIZE,
  XEN_MSIX_ENTRY_OFFSET,
  XEN_MSIX_ENTRY_SIZE,
  XEN_PCIE_AER_OP_ALIGN,
  XEN_PCIE_AER_OP_FIELD_SIZE,
  XEN_PCIE_AER_OP_OFFSET,
  XEN_PCIE_AER_OP_SIZE,
  XEN_PCI_ERR,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_FLAG_NR,
  XEN_PCI_MAGIC,
  XEN_PCI_OP,
  XEN_PCI_OP_ALIGN,
  XEN_PCI_OP_FIELD_SIZE,
  XEN_PCI_OP_OFFSET,
  XEN_PCI_OP_SIZE,
  XEN_PCI_SHAREDINFO_ALIGN,
  XEN_PCI_SHAREDINFO_FIELD_SIZE,
  XEN_PCI_SHAREDINFO_FLAGS_WORD,
  XEN_PCI_SHAREDINFO_OFFSET,
  XEN_PCI_SHAREDINFO_SIZE,
  decodePciOp,
  decodePcieAerOp,
  encodePciOp,
  encodePcieAerOp,
  isPciChannelState,
  isPciErsResult,
  isXenPciErr,
  isXenPciFlagNr,
  isXenPciOpCmd,
  snapshotPciOp,
  snapshotPcieAerOp,
  writePciOpResult,
  xenPciErrName,
  xenPciOpName,
  type PciOp,
  type PcieAerOp,
} from './pciif.js';

type Section = Record<string, unknown>;
const oracle = JSON.parse(readFileSync(join(ORACLES_DIR, 'xen-abi.json'), 'utf8')) as Record<
  string,
  Section
>;

function section(name: string): Section {
  const s = oracle[name];
  assert.ok(s !== undefined, `the oracle has a section "${name}"`);
  return s;
}

function layout(sec: Section, key: string): { offset: number; size: number } {
  const v = sec[key];
  assert.ok(v !== undefined, `the oracle has a field "${key}"`);
  return v as { offset: number; size: number };
}

/** Checks size, alignment and every field both ways: nothing missing on either side. */
function assertStruct(
  sec: Section,
  sizeBytes: number,
  align: number,
  offsets: Readonly<Record<string, number>>,
  sizes: Readonly<Record<string, number>>,
): void {
  assert.equal(sizeBytes, sec.__sizeof__);
  assert.equal(align, sec.__alignof__);
  for (const [name, offset] of Object.entries(offsets)) {
    assert.deepEqual({ offset, size: sizes[name] }, layout(sec, name), `field ${name}`);
  }
  const oracleFields = Object.keys(sec).filter(
    (k) => !k.startsWith('__') && !k.includes('.') && !k.includes('['),
  );
  assert.deepEqual(oracleFields, Object.keys(offsets), 'same fields in the same order');
}

test('struct xen_msix_entry matches the oracle', () => {
  assertStruct(
    section('struct xen_msix_entry'),
    XEN_MSIX_ENTRY_SIZE,
    XEN_MSIX_ENTRY_ALIGN,
    XEN_MSIX_ENTRY_OFFSET,
    XEN_MSIX_ENTRY_FIELD_SIZE,
  );
});

test('struct xen_pci_op matches the oracle, including the first and last MSI-X entries', () => {
  const sec = section('struct xen_pci_op');
  assertStruct(sec, XEN_PCI_OP_SIZE, XEN_PCI_OP_ALIGN, XEN_PCI_OP_OFFSET, XEN_PCI_OP_FIELD_SIZE);
  assert.deepEqual(layout(sec, 'msix_entries[1]'), {
    offset: XEN_PCI_OP_OFFSET.msix_entries + XEN_MSIX_ENTRY_SIZE,
    size: XEN_MSIX_ENTRY_SIZE,
  });
  assert.deepEqual(layout(sec, 'msix_entries[SH_INFO_MAX_VEC - 1]'), {
    offset: XEN_PCI_OP_OFFSET.msix_entries + (SH_INFO_MAX_VEC - 1) * XEN_MSIX_ENTRY_SIZE,
    size: XEN_MSIX_ENTRY_SIZE,
  });
  assert.equal(XEN_PCI_OP_OFFSET.msix_entries + SH_INFO_MAX_VEC * XEN_MSIX_ENTRY_SIZE, 548);
});

test('struct xen_pcie_aer_op matches the oracle', () => {
  assertStruct(
    section('struct xen_pcie_aer_op'),
    XEN_PCIE_AER_OP_SIZE,
    XEN_PCIE_AER_OP_ALIGN,
    XEN_PCIE_AER_OP_OFFSET,
    XEN_PCIE_AER_OP_FIELD_SIZE,
  );
});

test('struct xen_pci_sharedinfo matches the oracle, nested fields included', () => {
  const sec = section('struct xen_pci_sharedinfo');
  assertStruct(
    sec,
    XEN_PCI_SHAREDINFO_SIZE,
    XEN_PCI_SHAREDINFO_ALIGN,
    XEN_PCI_SHAREDINFO_OFFSET,
    XEN_PCI_SHAREDINFO_FIELD_SIZE,
  );
  for (const [name, offset] of Object.entries(XEN_PCI_OP_OFFSET)) {
    assert.deepEqual(layout(sec, `op.${name}`), {
      offset: XEN_PCI_SHAREDINFO_OFFSET.op + offset,
      size: XEN_PCI_OP_FIELD_SIZE[name as keyof typeof XEN_PCI_OP_FIELD_SIZE],
    });
  }
  for (const [name, offset] of Object.entries(XEN_PCIE_AER_OP_OFFSET)) {
    assert.deepEqual(layout(sec, `aer_op.${name}`), {
      offset: XEN_PCI_SHAREDINFO_OFFSET.aer_op + offset,
      size: XEN_PCIE_AER_OP_FIELD_SIZE[name as keyof typeof XEN_PCIE_AER_OP_FIELD_SIZE],
    });
  }
  assert.equal(XEN_PCI_SHAREDINFO_FLAGS_WORD * 4, layout(sec, 'flags').offset);
});

test('pciif constants match the oracle one by one', () => {
  const c = section('pciif constants');
  assert.equal(XEN_PCI_MAGIC, c.XEN_PCI_MAGIC);
  assert.equal(XEN_PCI_FLAG_NR.PCIF_active, c._XEN_PCIF_active);
  assert.equal(XEN_PCI_FLAG_MASK.PCIF_active, c.XEN_PCIF_active);
  assert.equal(XEN_PCI_FLAG_NR.PCIB_AERHANDLER, c._XEN_PCIB_AERHANDLER);
  assert.equal(XEN_PCI_FLAG_MASK.PCIB_AERHANDLER, c.XEN_PCIB_AERHANDLER);
  assert.equal(XEN_PCI_FLAG_NR.PCIB_active, c._XEN_PCIB_active);
  assert.equal(XEN_PCI_FLAG_MASK.PCIB_active, c.XEN_PCIB_active);
  assert.equal(SH_INFO_MAX_VEC, c.SH_INFO_MAX_VEC);
  const ops = Object.keys(c).filter((k) => k.startsWith('XEN_PCI_OP_'));
  assert.deepEqual(
    ops,
    Object.keys(XEN_PCI_OP).map((k) => `XEN_PCI_OP_${k}`),
  );
  for (const [name, value] of Object.entries(XEN_PCI_OP)) {
    assert.equal(value, c[`XEN_PCI_OP_${name}`], name);
  }
  const errs = Object.keys(c).filter((k) => k.startsWith('XEN_PCI_ERR_'));
  assert.deepEqual(
    errs,
    Object.keys(XEN_PCI_ERR).map((k) => `XEN_PCI_ERR_${k}`),
  );
  for (const [name, value] of Object.entries(XEN_PCI_ERR)) {
    assert.equal(value, c[`XEN_PCI_ERR_${name}`], name);
  }
});

test('Linux AER enums have the values of include/linux/pci.h', () => {
  // Not in the oracle (they are Linux's, not Xen's): values from spec/pciback.md §1.2.
  assert.deepEqual(PCI_CHANNEL_IO, { normal: 1, frozen: 2, perm_failure: 3 });
  assert.deepEqual(Object.values(PCI_ERS_RESULT), [1, 2, 3, 4, 5, 6]);
  assert.equal(PCI_ERS_RESULT.NO_AER_DRIVER, 6);
  assert.equal(PCI_ERS_RESULT.RECOVERED, 5);
});

test('the guards accept exactly the defined values', () => {
  for (const v of Object.values(XEN_PCI_OP)) assert.ok(isXenPciOpCmd(v));
  for (const v of [-1, 11, 0.5, '0', null, 0xffffffff]) assert.ok(!isXenPciOpCmd(v));
  for (const v of Object.values(XEN_PCI_ERR)) assert.ok(isXenPciErr(v));
  for (const v of [1, -6, -22, -0.5]) assert.ok(!isXenPciErr(v));
  for (const v of Object.values(XEN_PCI_FLAG_NR)) assert.ok(isXenPciFlagNr(v));
  assert.ok(!isXenPciFlagNr(3));
  for (const v of Object.values(PCI_CHANNEL_IO)) assert.ok(isPciChannelState(v));
  assert.ok(!isPciChannelState(0) && !isPciChannelState(4));
  for (const v of Object.values(PCI_ERS_RESULT)) assert.ok(isPciErsResult(v));
  assert.ok(!isPciErsResult(0) && !isPciErsResult(7));
});

test('xenPciOpName() and xenPciErrName() invert the tables', () => {
  for (const [name, value] of Object.entries(XEN_PCI_OP)) assert.equal(xenPciOpName(value), name);
  for (const [name, value] of Object.entries(XEN_PCI_ERR)) {
    assert.equal(xenPciErrName(value), name);
  }
  assert.equal(xenPciOpName(11), undefined);
  assert.equal(xenPciErrName(-22), undefined);
});

// An independent byte builder: it writes an op using the oracle's offsets, not ours.
function oracleOpBytes(fields: Record<string, number>, entries: [number, number][]): Uint8Array {
  const sec = section('struct xen_pci_op');
  const bytes = new Uint8Array(
    layout(sec, 'msix_entries').offset + layout(sec, 'msix_entries').size,
  );
  const view = new DataView(bytes.buffer);
  const signed = new Set(['err', 'offset', 'size']);
  for (const [name, value] of Object.entries(fields)) {
    const { offset } = layout(sec, name);
    if (signed.has(name)) view.setInt32(offset, value, true);
    else view.setUint32(offset, value, true);
  }
  const base = layout(sec, 'msix_entries').offset;
  const stride = layout(sec, 'msix_entries[1]').offset - base;
  entries.forEach(([vector, entry], i) => {
    view.setUint16(base + i * stride, vector, true);
    view.setUint16(base + i * stride + 2, entry, true);
  });
  return bytes;
}

test('decodePciOp() reads an op laid out by the oracle offsets, little-endian', () => {
  const bytes = oracleOpBytes(
    {
      cmd: XEN_PCI_OP.enable_msix,
      err: -5,
      domain: 0x12345678,
      bus: 0xfffffffe,
      devfn: 0x19,
      offset: -4,
      size: 4,
      value: 0x80000001,
      info: 7,
    },
    [
      [0xffff, 3],
      [0x1234, 0xabcd],
    ],
  );
  bytes[547] = 0xbe; // high byte of the last entry's `entry`
  const op = decodePciOp(new DataView(bytes.buffer), 0);
  assert.equal(op.cmd, 4);
  assert.equal(op.err, -5);
  assert.equal(op.domain, 0x12345678);
  assert.equal(op.bus, 0xfffffffe);
  assert.equal(op.devfn, 0x19);
  assert.equal(op.offset, -4);
  assert.equal(op.size, 4);
  assert.equal(op.value, 0x80000001);
  assert.equal(op.info, 7);
  assert.equal(op.msixEntries.length, 128);
  assert.deepEqual(op.msixEntries[0], { vector: 0xffff, entry: 3 });
  assert.deepEqual(op.msixEntries[1], { vector: 0x1234, entry: 0xabcd });
  assert.deepEqual(op.msixEntries[127], { vector: 0, entry: 0xbe00 });
  assert.ok(Object.isFrozen(op) && Object.isFrozen(op.msixEntries));
});

test('encodePciOp() writes the same bytes as the independent builder', () => {
  const fields = {
    cmd: 1,
    err: 0,
    domain: 0,
    bus: 3,
    devfn: 8,
    offset: 0x10,
    size: 4,
    value: 0xfebf0000,
    info: 0,
  };
  const bytes = new Uint8Array(XEN_PCI_OP_SIZE);
  encodePciOp(new DataView(bytes.buffer), 0, {
    ...fields,
    msixEntries: [{ vector: 1, entry: 2 }],
  });
  assert.deepEqual(bytes, oracleOpBytes(fields, [[1, 2]]));
});

const u32 = fc.nat({ max: 0xffffffff });
const s32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const u16 = fc.nat({ max: 0xffff });
const arbPciOp: fc.Arbitrary<PciOp> = fc.record(
  {
    cmd: u32,
    err: s32,
    domain: u32,
    bus: u32,
    devfn: u32,
    offset: s32,
    size: s32,
    value: u32,
    info: u32,
    msixEntries: fc.array(fc.record({ vector: u16, entry: u16 }, { noNullPrototype: true }), {
      minLength: SH_INFO_MAX_VEC,
      maxLength: SH_INFO_MAX_VEC,
    }),
  },
  { noNullPrototype: true },
);
const arbAerOp: fc.Arbitrary<PcieAerOp> = fc.record(
  {
    cmd: u32,
    err: s32,
    domain: u32,
    bus: u32,
    devfn: u32,
  },
  { noNullPrototype: true },
);

test('decodePciOp(encodePciOp(op)) is op, at any offset in a larger buffer', () => {
  fc.assert(
    fc.property(arbPciOp, fc.nat({ max: 64 }), (op, at) => {
      const view = new DataView(new ArrayBuffer(at + XEN_PCI_OP_SIZE + 3));
      encodePciOp(view, at, op);
      assert.deepEqual(decodePciOp(view, at), op);
    }),
    { numRuns: 200 },
  );
});

test('decodePcieAerOp(encodePcieAerOp(op)) is op', () => {
  fc.assert(
    fc.property(arbAerOp, fc.nat({ max: 16 }), (op, at) => {
      const view = new DataView(new ArrayBuffer(at + XEN_PCIE_AER_OP_SIZE));
      encodePcieAerOp(view, at, op);
      assert.deepEqual(decodePcieAerOp(view, at), op);
    }),
  );
});

test('encodePciOp() zeroes the entries it is not given and rejects values that do not fit', () => {
  const bytes = new Uint8Array(XEN_PCI_OP_SIZE).fill(0xaa);
  const view = new DataView(bytes.buffer);
  encodePciOp(view, 0, { cmd: 0, domain: 0, bus: 0, devfn: 0 });
  assert.ok(bytes.every((b) => b === 0));
  assert.throws(() => {
    encodePciOp(view, 0, { cmd: -1, domain: 0, bus: 0, devfn: 0 });
  }, RangeError);
  assert.throws(() => {
    encodePciOp(view, 0, { cmd: 0, domain: 0, bus: 0, devfn: 0, offset: 2 ** 31 });
  }, RangeError);
  assert.throws(() => {
    encodePciOp(view, 0, {
      cmd: 0,
      domain: 0,
      bus: 0,
      devfn: 0,
      msixEntries: new Array(129).fill({ vector: 0, entry: 0 }),
    });
  }, RangeError);
  assert.throws(() => {
    encodePciOp(view, 1, { cmd: 0, domain: 0, bus: 0, devfn: 0 });
  }, RangeError);
  // A rejected argument leaves the bytes alone.
  bytes.fill(0x55);
  assert.throws(() => {
    encodePciOp(view, 0, { cmd: 0, domain: 0, bus: 0, devfn: 0, value: 1.5 });
  });
  assert.ok(bytes.every((b) => b === 0x55));
});

test('decodePciOp() rejects a view too small for the op', () => {
  assert.throws(() => decodePciOp(new DataView(new ArrayBuffer(547)), 0), RangeError);
  assert.throws(() => decodePcieAerOp(new DataView(new ArrayBuffer(24)), 5), RangeError);
});

test('XSA-155: snapshotPciOp() is unaffected by later writes to the shared page', () => {
  const page = new Uint8Array(new SharedArrayBuffer(4096));
  const view = new DataView(page.buffer);
  const at = XEN_PCI_SHAREDINFO_OFFSET.op;
  encodePciOp(view, at, {
    cmd: XEN_PCI_OP.enable_msix,
    domain: 0,
    bus: 0,
    devfn: 0,
    value: 2,
    msixEntries: [
      { vector: 0, entry: 0 },
      { vector: 0, entry: 1 },
    ],
  });
  const op = snapshotPciOp(page, at);
  // The guest rewrites everything after the backend took its copy.
  page.fill(0xff, at, at + XEN_PCI_OP_SIZE);
  assert.equal(op.cmd, XEN_PCI_OP.enable_msix);
  assert.equal(op.value, 2);
  assert.deepEqual(op.msixEntries[1], { vector: 0, entry: 1 });
  assert.deepEqual(op.msixEntries[127], { vector: 0, entry: 0 });
  assert.ok(Object.isFrozen(op));
  // And the page really changed: a new snapshot sees the guest's bytes.
  assert.equal(snapshotPciOp(page, at).cmd, 0xffffffff);
});

test('snapshotPcieAerOp() copies the aer_op once', () => {
  const page = new Uint8Array(new SharedArrayBuffer(4096));
  const view = new DataView(page.buffer);
  const at = XEN_PCI_SHAREDINFO_OFFSET.aer_op;
  encodePcieAerOp(view, at, {
    cmd: XEN_PCI_OP.aer_detected,
    err: PCI_CHANNEL_IO.frozen,
    domain: 0,
    bus: 0,
    devfn: 0x08,
  });
  const op = snapshotPcieAerOp(page, at);
  page.fill(0, at, at + XEN_PCIE_AER_OP_SIZE);
  assert.deepEqual(op, { cmd: 6, err: 2, domain: 0, bus: 0, devfn: 8 });
});

test('snapshotPciOp() rejects an op that does not fit in the page', () => {
  const page = new Uint8Array(600);
  assert.throws(() => snapshotPciOp(page, 53), RangeError);
  assert.throws(() => snapshotPciOp(page, -1), RangeError);
  assert.doesNotThrow(() => snapshotPciOp(page, 52));
  assert.throws(() => snapshotPcieAerOp(page, 581), RangeError);
});

test('writePciOpResult() changes only err, value and the first n vectors', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: XEN_PCI_OP_SIZE, maxLength: XEN_PCI_OP_SIZE }),
      s32,
      u32,
      fc.array(u16, { maxLength: SH_INFO_MAX_VEC }),
      (before, err, value, vectors) => {
        const bytes = before.slice();
        const view = new DataView(bytes.buffer);
        writePciOpResult(view, 0, { err, value, msixVectors: vectors });
        const after = decodePciOp(view, 0);
        const orig = decodePciOp(new DataView(before.buffer), 0);
        assert.equal(after.err, err);
        assert.equal(after.value, value);
        assert.equal(after.cmd, orig.cmd);
        assert.equal(after.offset, orig.offset);
        assert.equal(after.size, orig.size);
        assert.equal(after.info, orig.info);
        assert.equal(after.devfn, orig.devfn);
        after.msixEntries.forEach((e, i) => {
          assert.equal(e.entry, orig.msixEntries[i]?.entry, `entry ${i} is never written`);
          const expected = i < vectors.length ? vectors[i] : orig.msixEntries[i]?.vector;
          assert.equal(e.vector, expected, `vector ${i}`);
        });
      },
    ),
    { numRuns: 100 },
  );
});

test('flag masks are the bits named by the flag numbers', () => {
  for (const key of Object.keys(XEN_PCI_FLAG_NR) as (keyof typeof XEN_PCI_FLAG_NR)[]) {
    assert.equal(XEN_PCI_FLAG_MASK[key], 1 << XEN_PCI_FLAG_NR[key]);
  }
  // Atomics on an Int32Array over the page reach the flags word at byte 0.
  const page = new Int32Array(new SharedArrayBuffer(4096));
  Atomics.or(page, XEN_PCI_SHAREDINFO_FLAGS_WORD, XEN_PCI_FLAG_MASK.PCIF_active);
  assert.equal(new Uint8Array(page.buffer)[XEN_PCI_SHAREDINFO_OFFSET.flags], 1);
});
