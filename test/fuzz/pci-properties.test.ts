// SPDX-License-Identifier: MIT
// Properties of the PCI model: addresses and dumps round-trip, config writes touch only
// their bytes, and the capability walkers end on any bytes at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ConfigSpace,
  DumpSyntaxError,
  PciAddress,
  PciAddressError,
  formatLspciDump,
  parseLspciText,
  walkCapabilities,
  walkExtendedCapabilities,
  type ConfigAccessSize,
  type DeviceDump,
} from '../../src/pci/index.js';

/** Keep each property well under the ~2 s budget. */
const BUDGET = { interruptAfterTimeLimit: 1500, markInterruptAsFailure: false } as const;

const addressArb = fc
  .record({
    domain: fc.integer({ min: 0, max: 0xffff }),
    bus: fc.integer({ min: 0, max: 0xff }),
    device: fc.integer({ min: 0, max: 0x1f }),
    fn: fc.integer({ min: 0, max: 7 }),
  })
  .map(({ domain, bus, device, fn }) => new PciAddress(domain, bus, device, fn));

const sizeArb = fc.constantFrom(64, 256, 4096);

const imageArb = sizeArb.chain((size) => fc.uint8Array({ minLength: size, maxLength: size }));

// Any text without line breaks, including leading blanks, tabs and non-ASCII letters.
const descriptionArb = fc
  .string({ unit: 'grapheme', maxLength: 60 })
  .map((s) => s.replace(/[\r\n]/g, ' '));

const dumpArb: fc.Arbitrary<DeviceDump> = fc
  .record({
    address: addressArb,
    hasDomain: fc.boolean(),
    description: descriptionArb,
    config: imageArb,
  })
  .map(({ address, hasDomain, description, config }) => ({
    address,
    // A non-zero domain is always written, so it always reads back as present.
    hasDomain: hasDomain || address.domain !== 0,
    description,
    config,
    barSizes: new Map<number, bigint>(),
  }));

test('PciAddress.parse() inverts toString() and toShortString()', () => {
  fc.assert(
    fc.property(addressArb, (address) => {
      assert.deepEqual(PciAddress.parse(address.toString()), address);
      const short = PciAddress.parse(address.toShortString(), { defaultDomain: address.domain });
      assert.deepEqual(short, address);
      assert.equal(
        PciAddress.fromDevfn(address.domain, address.bus, address.devfn).key,
        address.key,
      );
    }),
    BUDGET,
  );
});

test('PciAddress.parse() throws only PciAddressError, whatever the text', () => {
  const textArb = fc.oneof(
    fc.string(),
    fc.stringMatching(/^[0-9a-fA-F]{0,6}:?[0-9a-fA-F]{0,4}:[0-9a-fA-F]{0,4}\.[0-9a-fA-F]{0,2}$/),
  );
  fc.assert(
    fc.property(textArb, (text) => {
      try {
        const address = PciAddress.parse(text);
        assert.ok(address.equals(PciAddress.parse(address.toString())));
      } catch (err) {
        assert.ok(err instanceof PciAddressError, `unexpected ${String(err)}`);
      }
    }),
    BUDGET,
  );
});

test('parseLspciText() reads formatLspciDump() output back to the same dumps', () => {
  fc.assert(
    fc.property(fc.array(dumpArb, { minLength: 1, maxLength: 3 }), (dumps) => {
      assert.deepEqual(parseLspciText(formatLspciDump(dumps)), dumps);
    }),
    { ...BUDGET, numRuns: 150 },
  );
});

test('formatLspciDump() with withDomain reads back with the domain shown or hidden', () => {
  fc.assert(
    fc.property(dumpArb, fc.boolean(), (dump, withDomain) => {
      const [back] = parseLspciText(formatLspciDump(dump, { withDomain }));
      assert.ok(back !== undefined);
      assert.ok(back.address.equals(dump.address));
      assert.equal(back.hasDomain, withDomain || dump.address.domain !== 0);
      assert.deepEqual(back.config, dump.config);
    }),
    { ...BUDGET, numRuns: 100 },
  );
});

test('parseLspciText() throws only DumpSyntaxError on scrambled dump text', () => {
  const lineArb = fc.oneof(
    fc.constant(''),
    fc.constantFrom(
      '00:00.0 Host bridge',
      '0000:03:00.1 NIC',
      '00:20.0 bad',
      '\tRegion 0: Memory at 0 [size=4K]',
    ),
    fc.stringMatching(/^[0-9a-f]{1,4}:( [0-9a-fg]{1,3}){0,17} ?$/),
    fc.string({ maxLength: 30 }),
  );
  fc.assert(
    fc.property(fc.array(lineArb, { maxLength: 20 }), (lines) => {
      try {
        for (const dump of parseLspciText(lines.join('\n'))) {
          assert.ok([64, 256, 4096].includes(dump.config.length));
        }
      } catch (err) {
        assert.ok(err instanceof DumpSyntaxError, `unexpected ${String(err)}`);
        assert.ok(err.line !== undefined && err.line >= 1 && err.line <= lines.length);
      }
    }),
    BUDGET,
  );
});

test('ConfigSpace.write() changes exactly the bytes it addresses', () => {
  const accessArb = fc
    .record({ image: imageArb, sizeBytes: fc.constantFrom<ConfigAccessSize>(1, 2, 4) })
    .chain(({ image, sizeBytes }) =>
      fc.record({
        image: fc.constant(image),
        sizeBytes: fc.constant(sizeBytes),
        byteOffset: fc
          .integer({ min: 0, max: image.length / sizeBytes - 1 })
          .map((i) => i * sizeBytes),
        value: fc.integer({ min: 0, max: 2 ** (8 * sizeBytes) - 1 }),
      }),
    );
  fc.assert(
    fc.property(accessArb, ({ image, sizeBytes, byteOffset, value }) => {
      const cs = new ConfigSpace(image);
      cs.write(byteOffset, sizeBytes, value);
      assert.equal(cs.read(byteOffset, sizeBytes), value);
      const after = cs.bytes();
      for (let i = 0; i < image.length; i++) {
        if (i < byteOffset || i >= byteOffset + sizeBytes) assert.equal(after[i], image[i]);
      }
    }),
    { ...BUDGET, numRuns: 200 },
  );
});

/**
 * Random images, and images whose every dword is a plausible list entry (pointers that
 * stay in range), so that walks get long and loop often.
 */
const walkableImageArb = fc.oneof(
  imageArb,
  fc
    .record({
      image: imageArb,
      headerType: fc.constantFrom(0, 1, 2, 0x80, 0x7f),
      stdNext: fc.array(
        fc.integer({ min: 0x0c, max: 0x3f }).map((n) => n * 4),
        { minLength: 48, maxLength: 48 },
      ),
      extNext: fc.array(
        fc.integer({ min: 0x3c, max: 0x3ff }).map((n) => n * 4),
        {
          minLength: 960,
          maxLength: 960,
        },
      ),
    })
    .map(({ image, headerType, stdNext, extNext }) => {
      const bytes = image.slice();
      const view = new DataView(bytes.buffer);
      view.setUint8(0x0e, headerType);
      view.setUint16(0x06, view.getUint16(0x06, true) | 0x10, true);
      if (bytes.length >= 256) {
        stdNext.forEach((next, i) => {
          view.setUint8(0x40 + 4 * i, i % 7 === 6 ? 0xff : i + 1); // sometimes an ID of 0xff
          view.setUint8(0x41 + 4 * i, next);
        });
      }
      if (bytes.length === 4096) {
        extNext.forEach((next, i) => {
          view.setUint32(0x100 + 4 * i, ((next << 20) | (1 << 16) | (i + 1)) >>> 0, true);
        });
      }
      return bytes;
    }),
);

test('the capability walkers end with bounded, in-range, distinct entries on any bytes', () => {
  fc.assert(
    fc.property(walkableImageArb, (bytes) => {
      const cs = new ConfigSpace(bytes);
      const caps = walkCapabilities(cs);
      assert.ok(caps.length <= 48);
      assert.equal(new Set(caps.map((c) => c.byteOffset)).size, caps.length);
      for (const cap of caps) {
        assert.ok(cap.byteOffset >= 0x40 && cap.byteOffset + 2 <= Math.min(bytes.length, 256));
        assert.equal(cap.byteOffset % 4, 0);
        assert.notEqual(cap.id, 0xff);
        assert.equal(cap.id, bytes[cap.byteOffset]);
      }
      const extCaps = walkExtendedCapabilities(cs);
      assert.ok(extCaps.length <= 480);
      if (bytes.length < 4096) assert.equal(extCaps.length, 0);
      assert.equal(new Set(extCaps.map((c) => c.byteOffset)).size, extCaps.length);
      for (const cap of extCaps) {
        assert.ok(cap.byteOffset >= 0x100 && cap.byteOffset + 4 <= bytes.length);
        assert.equal(cap.byteOffset % 4, 0);
        assert.equal(cap.id, cs.read32(cap.byteOffset) & 0xffff);
      }
    }),
    { ...BUDGET, numRuns: 200 },
  );
});
