// SPDX-License-Identifier: MIT
// Guest grants and backend maps: the v1 entry layout, GTF flags while mapped, every
// GNTST error of a bad map, revocation by end of access and by domain destruction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPcibackError } from '../../../errors.js';
import {
  DOM0,
  GNTST,
  domId,
  grantRef,
  type DomId,
  type GrantHandle,
  type GrantMapResult,
  type GrantMapping,
  type GrantRef,
} from '../../types.js';
import { SimHypervisor } from './hypervisor.js';
import { ManualJiffiesClock } from './jiffies.js';
import { GNTTAB_NR_RESERVED_ENTRIES, GRANT_ENTRY_V1, GTF, XEN_PAGE_SIZE } from './xen-abi.js';

function host(): {
  xen: SimHypervisor;
  guest: ReturnType<SimHypervisor['guestHypercalls']>;
  domid: DomId;
} {
  const xen = new SimHypervisor({ clock: new ManualJiffiesClock(), backend: { autoStart: false } });
  const { domid } = xen.createDomain({ memoryPages: 8, grantFrames: 1 });
  return { xen, guest: xen.guestHypercalls(domid), domid };
}

function mapped(r: GrantMapResult): GrantMapping {
  assert.ok(r.ok, `map failed: ${r.ok ? '' : r.status}`);
  return r.mapping;
}

test('grantAccess() fills a grant_entry_v1 {u16 flags; u16 domid; u32 frame} and skips the reserved refs', () => {
  const { xen, guest, domid } = host();
  const page = guest.allocPage();
  const ref = guest.grantAccess(DOM0, page, { readonly: true });
  assert.equal(ref, GNTTAB_NR_RESERVED_ENTRIES);
  const table = xen.guestInit(domid)?.grantTable;
  assert.ok(table);
  const view = new DataView(table, ref * GRANT_ENTRY_V1.SIZE, GRANT_ENTRY_V1.SIZE);
  assert.equal(view.getUint16(GRANT_ENTRY_V1.FLAGS_OFFSET, true), GTF.permit_access | GTF.readonly);
  assert.equal(view.getUint16(GRANT_ENTRY_V1.DOMID_OFFSET, true), 0);
  assert.equal(view.getUint32(GRANT_ENTRY_V1.FRAME_OFFSET, true), page);
  const other = guest.grantAccess(domId(7), page);
  const view2 = new DataView(table, other * GRANT_ENTRY_V1.SIZE, GRANT_ENTRY_V1.SIZE);
  assert.equal(view2.getUint16(GRANT_ENTRY_V1.FLAGS_OFFSET, true), GTF.permit_access);
  assert.equal(view2.getUint16(GRANT_ENTRY_V1.DOMID_OFFSET, true), 7);
});

test('A mapped grant shares the guest page both ways and sets GTF_reading|GTF_writing until unmapped', () => {
  const { xen, guest, domid } = host();
  const page = guest.allocPage();
  const ref = guest.grantAccess(DOM0, page);
  const mapper = xen.grantMapper();
  const m = mapped(mapper.mapGrantRef(domid, ref));
  assert.equal(m.bytes.byteLength, XEN_PAGE_SIZE);
  assert.equal(m.words.length, XEN_PAGE_SIZE / 4);
  guest.pageBytes(page)[5] = 0xab;
  assert.equal(m.bytes[5], 0xab);
  Atomics.store(m.words, 1, 0x1234);
  assert.equal(Atomics.load(guest.pageWords(page), 1), 0x1234);
  assert.equal(guest.grantTable.flags(ref), GTF.permit_access | GTF.reading | GTF.writing);
  assert.equal(mapper.unmapGrantRef(m.handle), GNTST.okay);
  assert.equal(guest.grantTable.flags(ref), GTF.permit_access);
});

test('endForeignAccess() fails while the grant is mapped and succeeds after unmap', () => {
  const { xen, guest, domid } = host();
  const ref = guest.grantAccess(DOM0, guest.allocPage());
  const mapper = xen.grantMapper();
  const m = mapped(mapper.mapGrantRef(domid, ref));
  assert.equal(guest.endForeignAccess(ref), false);
  assert.equal(guest.grantTable.flags(ref) & GTF.permit_access, GTF.permit_access);
  mapper.unmapGrantRef(m.handle);
  assert.equal(guest.endForeignAccess(ref), true);
  assert.equal(guest.grantTable.flags(ref), 0);
  assert.throws(() => guest.endForeignAccess(ref), RangeError);
});

test('A revoked grant cannot be mapped and its ref is reused by the next grant', () => {
  const { xen, guest, domid } = host();
  const ref = guest.grantAccess(DOM0, guest.allocPage());
  assert.equal(guest.endForeignAccess(ref), true);
  const r = xen.grantMapper().mapGrantRef(domid, ref);
  assert.deepEqual(r, { ok: false, status: GNTST.general_error });
  assert.equal(guest.grantAccess(DOM0, guest.allocPage()), ref);
});

test('mapGrantRef() answers every bad request with its GNTST code', () => {
  const { xen, guest, domid } = host();
  const mapper = xen.grantMapper();
  const page = guest.allocPage();
  const toOther = guest.grantAccess(domId(3), page);
  const readonly = guest.grantAccess(DOM0, page, { readonly: true });
  const status = (d: number, ref: number, opts?: { readonly?: boolean }): number => {
    const r = mapper.mapGrantRef(d as DomId, ref as GrantRef, opts);
    return r.ok ? GNTST.okay : r.status;
  };
  assert.equal(status(42, 8), GNTST.bad_domain);
  assert.equal(status(-1, 8), GNTST.bad_domain);
  assert.equal(status(Number.NaN, 8), GNTST.bad_domain);
  assert.equal(status(domid, 512), GNTST.bad_gntref); // one frame = 512 entries
  assert.equal(status(domid, -1), GNTST.bad_gntref);
  assert.equal(status(domid, 2 ** 40), GNTST.bad_gntref);
  assert.equal(status(domid, 8.5), GNTST.bad_gntref);
  assert.equal(status(domid, 300), GNTST.general_error); // never granted
  assert.equal(status(domid, 0), GNTST.general_error); // reserved, empty
  assert.equal(status(domid, toOther), GNTST.general_error); // granted to domain 3
  assert.equal(status(domid, readonly), GNTST.general_error); // write map of a r/o grant
  const ro = mapper.mapGrantRef(domid, readonly, { readonly: true });
  assert.ok(ro.ok);
  assert.equal(guest.grantTable.flags(readonly), GTF.permit_access | GTF.readonly | GTF.reading);
  assert.equal(mapper.unmapGrantRef(ro.mapping.handle), GNTST.okay);
  assert.equal(mapper.unmapGrantRef(ro.mapping.handle), GNTST.bad_handle);
  assert.equal(mapper.unmapGrantRef(12345 as GrantHandle), GNTST.bad_handle);
});

test('A grant whose frame lies outside guest memory is refused with GNTST_bad_page and left unmapped', () => {
  const { xen, guest, domid } = host();
  const init = xen.guestInit(domid);
  assert.ok(init);
  // A guest can write any frame number into its own entry.
  const ref = guest.grantAccess(DOM0, guest.allocPage());
  new Int32Array(init.grantTable)[ref * 2 + 1] = 8;
  const r = xen.grantMapper().mapGrantRef(domid, ref);
  assert.deepEqual(r, { ok: false, status: GNTST.bad_page });
  assert.equal(guest.grantTable.flags(ref), GTF.permit_access);
});

test('A sub-page or transitive grant is never mappable', () => {
  const { xen, guest, domid } = host();
  const init = xen.guestInit(domid);
  assert.ok(init);
  const words = new Int32Array(init.grantTable);
  const ref = guest.grantAccess(DOM0, guest.allocPage());
  Atomics.or(words, ref * 2, GTF.sub_page);
  assert.deepEqual(xen.grantMapper().mapGrantRef(domid, ref), {
    ok: false,
    status: GNTST.general_error,
  });
  Atomics.store(words, ref * 2, GTF.transitive);
  assert.deepEqual(xen.grantMapper().mapGrantRef(domid, ref), {
    ok: false,
    status: GNTST.general_error,
  });
});

test('Mapping a ref twice pins it twice, as Xen does; flags clear with the last unmap', () => {
  const { xen, guest, domid } = host();
  const ref = guest.grantAccess(DOM0, guest.allocPage());
  const mapper = xen.grantMapper();
  const ro = mapped(mapper.mapGrantRef(domid, ref, { readonly: true }));
  const rw = mapped(mapper.mapGrantRef(domid, ref));
  assert.notEqual(ro.handle, rw.handle);
  assert.equal(guest.grantTable.flags(ref), GTF.permit_access | GTF.reading | GTF.writing);
  mapper.unmapGrantRef(rw.handle);
  assert.equal(guest.grantTable.flags(ref), GTF.permit_access | GTF.reading);
  assert.equal(guest.endForeignAccess(ref), false);
  mapper.unmapGrantRef(ro.handle);
  assert.equal(guest.endForeignAccess(ref), true);
});

test('Another domain cannot map a grant pinned for dom0 even by rewriting nothing', () => {
  const { xen, guest, domid } = host();
  const other = xen.createDomain({ memoryPages: 1 }).domid;
  const ref = guest.grantAccess(DOM0, guest.allocPage());
  mapped(xen.grantMapper().mapGrantRef(domid, ref));
  assert.deepEqual(xen.grantMapper(other).mapGrantRef(domid, ref), {
    ok: false,
    status: GNTST.general_error,
  });
});

test('Destroying the granter revokes its grants but leaves mapped pages valid until unmapped', () => {
  const { xen, guest, domid } = host();
  const page = guest.allocPage();
  const ref = guest.grantAccess(DOM0, page);
  const spare = guest.grantAccess(DOM0, guest.allocPage());
  const mapper = xen.grantMapper();
  const m = mapped(mapper.mapGrantRef(domid, ref));
  guest.pageBytes(page)[0] = 0x5a;
  assert.equal(xen.destroyDomain(domid), true);
  assert.equal(m.bytes[0], 0x5a);
  m.bytes[1] = 0xa5; // still our page
  assert.deepEqual(mapper.mapGrantRef(domid, spare), { ok: false, status: GNTST.bad_domain });
  assert.equal(mapper.unmapGrantRef(m.handle), GNTST.okay);
  assert.equal(mapper.mappedCount, 0);
});

test('Destroying a mapping domain releases its mappings and clears the granter flags', () => {
  const { xen, guest, domid } = host();
  const backend = xen.createDomain({ memoryPages: 1 }).domid;
  const ref = guest.grantAccess(backend, guest.allocPage());
  mapped(xen.grantMapper(backend).mapGrantRef(domid, ref));
  assert.equal(guest.endForeignAccess(ref), false);
  xen.destroyDomain(backend);
  assert.equal(guest.endForeignAccess(ref), true);
});

test('grantAccess() reports exhaustion with GNTTAB_EXHAUSTED and refuses bad pages and domids', () => {
  const { guest } = host();
  const page = guest.allocPage();
  for (let i = GNTTAB_NR_RESERVED_ENTRIES; i < 512; i++) guest.grantAccess(DOM0, page);
  assert.throws(
    () => guest.grantAccess(DOM0, page),
    (e: unknown) => isPcibackError(e, 'GNTTAB_EXHAUSTED'),
  );
  assert.throws(() => guest.grantAccess(DOM0, 8), RangeError);
  assert.throws(() => guest.grantAccess(0x7ff0 as DomId, page), RangeError);
  assert.throws(() => guest.endForeignAccess(grantRef(3)), RangeError);
});

test('Random grant, map, unmap and end-access sequences keep GTF flags equal to the pins', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('grant' as const), readonly: fc.boolean() }),
    fc.record({ kind: fc.constant('map' as const), i: fc.nat(7), readonly: fc.boolean() }),
    fc.record({ kind: fc.constant('unmap' as const), i: fc.nat(15) }),
    fc.record({ kind: fc.constant('end' as const), i: fc.nat(7) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const { xen, guest, domid } = host();
      const mapper = xen.grantMapper();
      const refs: GrantRef[] = [];
      const readonlyGrant = new Map<number, boolean>();
      const handles: { handle: GrantHandle; ref: number; readonly: boolean }[] = [];
      const page = guest.allocPage();
      for (const o of ops) {
        if (o.kind === 'grant') {
          const ref = guest.grantAccess(DOM0, page, { readonly: o.readonly });
          refs.push(ref);
          readonlyGrant.set(ref, o.readonly);
        } else if (o.kind === 'map') {
          const ref = refs[o.i % Math.max(1, refs.length)];
          if (ref === undefined) continue;
          const r = mapper.mapGrantRef(domid, ref, { readonly: o.readonly });
          const allowed =
            guest.grantTable.inUse(ref) && (o.readonly || readonlyGrant.get(ref) === false);
          assert.equal(r.ok, allowed);
          if (r.ok) handles.push({ handle: r.mapping.handle, ref, readonly: o.readonly });
        } else if (o.kind === 'unmap') {
          const h = handles.splice(o.i % Math.max(1, handles.length), 1)[0];
          if (h !== undefined) assert.equal(mapper.unmapGrantRef(h.handle), GNTST.okay);
        } else {
          const ref = refs[o.i % Math.max(1, refs.length)];
          if (ref === undefined || !guest.grantTable.inUse(ref)) continue;
          const pinned = handles.some((h) => h.ref === ref);
          assert.equal(guest.endForeignAccess(ref), !pinned);
        }
      }
      for (const ref of new Set(refs)) {
        if (!guest.grantTable.inUse(ref)) continue;
        const pins = handles.filter((h) => h.ref === ref);
        const flags = guest.grantTable.flags(ref);
        assert.equal((flags & GTF.reading) !== 0, pins.length > 0);
        assert.equal(
          (flags & GTF.writing) !== 0,
          pins.some((h) => !h.readonly),
        );
      }
    }),
    { numRuns: 200 },
  );
});
