// SPDX-License-Identifier: MIT
// Properties of both backends under random add/release sequences: lookups stay inverse,
// guest addresses stay unique, vpci stays within 32 slots and keeps real slots together,
// passthrough publishes exactly the roots §8.2 asks for, and `get` never throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PciAddress } from '../../pci/index.js';
import { PassthroughTopology } from './passthrough.js';
import type { TestDevice } from './test-devices.js';
import { TOPOLOGY_ERROR, TopologyError, type Topology } from './types.js';
import { VPCI_SLOT_MAX, VpciTopology } from './vpci.js';

/** Keep each property well under the ~2 s budget. */
const BUDGET = { interruptAfterTimeLimit: 1500, markInterruptAsFailure: false } as const;

interface Spec {
  readonly domain: number;
  readonly bus: number;
  readonly device: number;
  readonly fn: number;
  readonly vf: boolean;
  readonly bridgeIndexes: readonly number[];
}

// Two segments x 4 buses x 8 slots = 64 real slots: enough to fill the 32 virtual ones.
const specArb: fc.Arbitrary<Spec> = fc.record({
  domain: fc.integer({ min: 0, max: 1 }),
  bus: fc.integer({ min: 0, max: 3 }),
  device: fc.integer({ min: 0, max: 7 }),
  fn: fc.integer({ min: 0, max: 7 }),
  vf: fc.boolean(),
  bridgeIndexes: fc.array(fc.nat(), { maxLength: 3 }),
});

const universeArb = fc
  .uniqueArray(specArb, {
    minLength: 1,
    maxLength: 120,
    size: 'large',
    selector: (s) => `${s.domain}:${s.bus}:${s.device}.${s.fn}`,
  })
  .map((specs) => {
    const addresses = specs.map((s) => new PciAddress(s.domain, s.bus, s.device, s.fn));
    return specs.map((s, i): TestDevice => {
      const bridges = s.bridgeIndexes
        .map((j) => addresses[j % addresses.length])
        .filter((a): a is PciAddress => a !== undefined && a !== addresses[i]);
      const address = addresses[i] ?? assert.fail('index out of range');
      return {
        name: address.toString(),
        address,
        classCode: 0x020000,
        isVirtualFn: s.vf,
        upstreamBridges: () => bridges,
      };
    });
  });

type Op = { readonly add: boolean; readonly index: number };
// Three adds for each release, so runs fill all 32 slots and reach -ENOMEM.
const opsArb = fc.array(
  fc.record({ add: fc.nat({ max: 3 }), index: fc.nat() }).map((o): Op => ({
    add: o.add > 0,
    index: o.index,
  })),
  { maxLength: 200, size: 'large' },
);

/** How many adds ran out of slots, so the vpci property can show it reached -ENOMEM. */
let noSpaceSeen = 0;

/** Run `ops` against `topo` beside a model set, checking the invariants after each op. */
function run(
  topo: Topology<TestDevice>,
  universe: readonly TestDevice[],
  ops: readonly Op[],
  check: (held: ReadonlySet<TestDevice>) => void,
): void {
  const held = new Set<TestDevice>();
  for (const op of ops) {
    const dev = universe[op.index % universe.length] ?? assert.fail('index out of range');
    if (op.add) {
      if (held.has(dev)) {
        assert.throws(
          () => topo.add(dev, 0, () => {}),
          (err) => err instanceof TopologyError && err.code === TOPOLOGY_ERROR.alreadyExported,
        );
      } else {
        let published: PciAddress | undefined;
        try {
          const guest = topo.add(dev, held.size, (_devid, g) => (published = g));
          assert.equal(published, guest);
          held.add(dev);
        } catch (err) {
          // Only vpci runs out of space, and only with every slot taken.
          assert.ok(err instanceof TopologyError && err.code === TOPOLOGY_ERROR.noSpace);
          assert.equal(topo.kind, 'vpci');
          assert.equal(published, undefined);
          assert.equal(usedSlots(topo, held).size, VPCI_SLOT_MAX);
          noSpaceSeen++;
        }
      }
    } else {
      assert.equal(topo.release(dev), held.delete(dev));
    }
    checkCommon(topo, universe, held);
    check(held);
  }
}

function groupBy<T, K>(items: Iterable<T>, keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  return groups;
}

function usedSlots(topo: Topology<TestDevice>, held: ReadonlySet<TestDevice>): Set<number> {
  return new Set([...held].map((d) => topo.find(d)?.device ?? -1));
}

function checkCommon(
  topo: Topology<TestDevice>,
  universe: readonly TestDevice[],
  held: ReadonlySet<TestDevice>,
): void {
  assert.equal(topo.size, held.size);
  const listed = topo.devices();
  assert.equal(listed.length, held.size);
  assert.ok(
    listed.every((d) => held.has(d)),
    'devices() lists the held devices',
  );
  const guestKeys = new Set<number>();
  // Messages are built only on failure: this runs for every device after every op.
  for (const d of universe) {
    const g = topo.find(d);
    if (!held.has(d)) {
      if (g !== undefined) assert.fail(`${d.name} is not held but found at ${g.toString()}`);
      continue;
    }
    if (g === undefined) assert.fail(`${d.name} is held but not found`);
    if (topo.get(g.domain, g.bus, g.devfn) !== d) assert.fail(`get(find(${d.name})) !== it`);
    if (guestKeys.has(g.key)) assert.fail(`guest address ${g.toString()} is used twice`);
    guestKeys.add(g.key);
  }
}

test('VpciTopology keeps get(find(d)) === d, unique addresses, <= 32 slots and real slots together', () => {
  fc.assert(
    fc.property(universeArb, opsArb, (universe, ops) => {
      const topo = new VpciTopology<TestDevice>();
      run(topo, universe, ops, (held) => {
        const slotOf = new Map<TestDevice, number>();
        for (const d of held) {
          const g = topo.find(d) ?? assert.fail('held');
          assert.equal(g.domain, 0);
          assert.equal(g.bus, 0);
          assert.equal(g.fn, d.address.fn); // the virtual function is the real one
          slotOf.set(d, g.device);
        }
        const isVf0 = (d: TestDevice) => d.isVirtualFn && d.address.fn === 0;
        const realSlot = (d: TestDevice) => d.address.key >>> 3;
        // Each virtual slot holds functions of one real slot; a VF at function 0 is alone.
        const bySlot = groupBy(held, (d) => slotOf.get(d) ?? -1);
        assert.ok(bySlot.size <= VPCI_SLOT_MAX);
        for (const [slot, devs] of bySlot) {
          if (new Set(devs.map(realSlot)).size !== 1) assert.fail(`slot ${slot} mixes real slots`);
          if (devs.length > 1 && devs.some(isVf0)) assert.fail(`a VF-0 shares slot ${slot}`);
        }
        // The other functions of one real slot share one virtual slot.
        const byReal = groupBy(
          [...held].filter((d) => !isVf0(d)),
          realSlot,
        );
        for (const devs of byReal.values()) {
          if (new Set(devs.map((d) => slotOf.get(d))).size !== 1) {
            assert.fail(`${devs.map((d) => d.name).join(', ')} are split across slots`);
          }
        }
      });
    }),
    { ...BUDGET, numRuns: 300 },
  );
  assert.ok(noSpaceSeen > 0, 'some runs filled all 32 slots');
});

test('PassthroughTopology keeps real addresses and publishes each uncovered root once', () => {
  fc.assert(
    fc.property(universeArb, opsArb, (universe, ops) => {
      const topo = new PassthroughTopology<TestDevice>();
      run(topo, universe, ops, (held) => {
        for (const d of held) assert.ok(topo.find(d)?.equals(d.address));
        const heldKeys = new Set([...held].map((d) => d.address.key));
        const expected = new Set(
          [...held]
            .filter((d) => !d.upstreamBridges().some((b) => heldKeys.has(b.key)))
            .map((d) => `${d.address.domain}:${d.address.bus}`),
        );
        const roots: string[] = [];
        topo.publishRoots((domain, bus) => roots.push(`${domain}:${bus}`));
        assert.equal(roots.length, new Set(roots).size, 'no root twice');
        assert.deepEqual(new Set(roots), expected);
      });
    }),
    { ...BUDGET, numRuns: 300 },
  );
});

test('Topology.get() never throws and finds nothing unheld for any values a guest sends', () => {
  const value = fc.oneof(
    fc.nat({ max: 0xffffffff }),
    fc.integer({ min: 0, max: 0x1ff }),
    fc.constant(0),
    fc.double(),
  );
  const vpci = new VpciTopology<TestDevice>();
  const pt = new PassthroughTopology<TestDevice>();
  const dev: TestDevice = {
    name: '0000:03:00.1',
    address: PciAddress.parse('0000:03:00.1'),
    classCode: 0x020000,
    isVirtualFn: false,
    upstreamBridges: () => [],
  };
  vpci.add(dev, 0, () => {});
  pt.add(dev, 0, () => {});
  fc.assert(
    fc.property(value, value, value, (domain, bus, devfn) => {
      const v = vpci.get(domain, bus, devfn);
      const p = pt.get(domain, bus, devfn);
      assert.equal(
        v,
        domain === 0 &&
          bus === 0 &&
          (devfn & 0xff) === 0x01 &&
          Number.isInteger(devfn) &&
          devfn >= 0 &&
          devfn <= 0xffffffff
          ? dev
          : undefined,
      );
      assert.equal(p, domain === 0 && bus === 3 && devfn === 1 ? dev : undefined);
    }),
    { ...BUDGET, numRuns: 2000 },
  );
});
