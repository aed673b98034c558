// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ORACLES_DIR } from '../../test/support/paths.js';
import {
  XBT_NULL,
  XENSTORE_ABS_PATH_MAX,
  XENSTORE_CONNECTION,
  XENSTORE_DOMAIN_INTERFACE_ALIGN,
  XENSTORE_DOMAIN_INTERFACE_FIELD_SIZE,
  XENSTORE_DOMAIN_INTERFACE_OFFSET,
  XENSTORE_DOMAIN_INTERFACE_SIZE,
  XENSTORE_DOMAIN_INTERFACE_WORD,
  XENSTORE_ERROR,
  XENSTORE_PAYLOAD_MAX,
  XENSTORE_REL_PATH_MAX,
  XENSTORE_RING_SIZE,
  XENSTORE_SERVER_FEATURE,
  XSD_ERRORS,
  XSD_SOCKMSG_ALIGN,
  XSD_SOCKMSG_FIELD_SIZE,
  XSD_SOCKMSG_OFFSET,
  XSD_SOCKMSG_SIZE,
  XSD_SOCKMSG_TYPE_SIZE,
  XS_ERRNO,
  XS_INVALID,
  XS_OPEN,
  XS_PERM,
  XS_PERMISSIONS_ALIGN,
  XS_PERMISSIONS_FIELD_SIZE,
  XS_PERMISSIONS_OFFSET,
  XS_PERMISSIONS_SIZE,
  XS_TYPE,
  XS_TYPE_COUNT,
  XS_UNWATCH_FILTER,
  XS_WATCH_PATH,
  XS_WATCH_TOKEN,
  XS_WRITE_CREATE,
  XS_WRITE_CREATE_EXCL,
  XS_WRITE_NONE,
  decodeXsdSockmsg,
  encodeXsdSockmsg,
  isXenstoreConnection,
  isXenstoreError,
  isXenstoreServerFeature,
  isXsErrorName,
  isXsOpenFlag,
  isXsPermBit,
  isXsType,
  xenstoreRingIndex,
  xsErrorNameForErrno,
  xsTypeName,
} from './xs-wire.js';

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

function assertFields(
  sec: Section,
  offsets: Readonly<Record<string, number>>,
  sizes: Readonly<Record<string, number>>,
): void {
  for (const [name, offset] of Object.entries(offsets)) {
    assert.deepEqual(sec[name], { offset, size: sizes[name] }, `field ${name}`);
  }
  const oracleFields = Object.keys(sec).filter((k) => typeof sec[k] === 'object');
  assert.deepEqual(oracleFields, Object.keys(offsets), 'same fields in the same order');
}

test('struct xsd_sockmsg matches the oracle', () => {
  const sec = section('struct xsd_sockmsg');
  assert.equal(XSD_SOCKMSG_SIZE, sec.__sizeof__);
  assert.equal(XSD_SOCKMSG_ALIGN, sec.__alignof__);
  assertFields(sec, XSD_SOCKMSG_OFFSET, XSD_SOCKMSG_FIELD_SIZE);
});

test('message types match the oracle, CONTROL and DEBUG both 0', () => {
  const sec = section('enum xsd_sockmsg_type');
  assert.equal(XSD_SOCKMSG_TYPE_SIZE, sec.__sizeof__);
  for (const [name, value] of Object.entries(XS_TYPE)) assert.equal(value, sec[`XS_${name}`], name);
  const oracleTypes = Object.keys(sec).filter(
    (k) => k !== '__sizeof__' && k !== 'XS_TYPE_COUNT' && k !== 'XS_INVALID',
  );
  assert.deepEqual(
    oracleTypes,
    Object.keys(XS_TYPE).map((k) => `XS_${k}`),
  );
  assert.equal(XS_TYPE.CONTROL, XS_TYPE.DEBUG);
  assert.equal(XS_TYPE_COUNT, sec.XS_TYPE_COUNT);
  assert.equal(XS_INVALID, sec.XS_INVALID);
});

test('isXsType() accepts the 4.17 types only and xsTypeName() names CONTROL, not DEBUG', () => {
  for (const v of Object.values(XS_TYPE)) assert.ok(isXsType(v));
  for (const v of [20, 23, XS_INVALID, -1, 1.5, '2']) assert.ok(!isXsType(v), String(v));
  assert.equal(xsTypeName(0), 'CONTROL');
  assert.equal(xsTypeName(22), 'DIRECTORY_PART');
  assert.equal(xsTypeName(20), undefined);
  for (const [name, value] of Object.entries(XS_TYPE)) {
    if (name !== 'DEBUG') assert.equal(xsTypeName(value), name);
  }
});

test('the error table has the oracle names, errnos and wire order', () => {
  const sec = section('xsd_errors (index order = wire order; errnum = Linux errno)');
  assert.deepEqual(
    XSD_ERRORS.map((e) => e.name),
    Object.keys(sec),
  );
  for (const e of XSD_ERRORS) assert.equal(e.errnum, sec[e.name], e.name);
  assert.deepEqual(Object.keys(XS_ERRNO), Object.keys(sec));
  assert.equal(XSD_ERRORS[0]?.name, 'EINVAL');
  assert.ok(Object.isFrozen(XSD_ERRORS) && Object.isFrozen(XSD_ERRORS[0]));
});

test('error lookups go both ways and reject names outside the table', () => {
  for (const e of XSD_ERRORS) {
    assert.equal(xsErrorNameForErrno(e.errnum), e.name);
    assert.ok(isXsErrorName(e.name));
  }
  assert.equal(xsErrorNameForErrno(999), undefined);
  assert.ok(!isXsErrorName('EQUOTA'));
  assert.ok(!isXsErrorName('toString'));
});

test('xs_wire constants match the oracle', () => {
  const c = section('xs_wire constants');
  assert.equal(XS_WRITE_NONE, c.XS_WRITE_NONE);
  assert.equal(XS_WRITE_CREATE, c.XS_WRITE_CREATE);
  assert.equal(XS_WRITE_CREATE_EXCL, c.XS_WRITE_CREATE_EXCL);
  assert.equal(XS_WATCH_PATH, c.XS_WATCH_PATH);
  assert.equal(XS_WATCH_TOKEN, c.XS_WATCH_TOKEN);
  assert.equal(XENSTORE_RING_SIZE, c.XENSTORE_RING_SIZE);
  assert.equal(XENSTORE_PAYLOAD_MAX, c.XENSTORE_PAYLOAD_MAX);
  assert.equal(XENSTORE_ABS_PATH_MAX, c.XENSTORE_ABS_PATH_MAX);
  assert.equal(XENSTORE_REL_PATH_MAX, c.XENSTORE_REL_PATH_MAX);
  for (const [k, v] of Object.entries(XENSTORE_SERVER_FEATURE)) {
    assert.equal(v, c[`XENSTORE_SERVER_FEATURE_${k}`], k);
  }
  assert.equal(XENSTORE_CONNECTION.CONNECTED, c.XENSTORE_CONNECTED);
  assert.equal(XENSTORE_CONNECTION.RECONNECT, c.XENSTORE_RECONNECT);
  for (const [k, v] of Object.entries(XENSTORE_ERROR)) {
    assert.equal(v, c[`XENSTORE_ERROR_${k}`], k);
  }
});

test('struct xenstore_domain_interface matches the oracle', () => {
  const sec = section('struct xenstore_domain_interface');
  assert.equal(XENSTORE_DOMAIN_INTERFACE_SIZE, sec.__sizeof__);
  assert.equal(XENSTORE_DOMAIN_INTERFACE_ALIGN, sec.__alignof__);
  assertFields(sec, XENSTORE_DOMAIN_INTERFACE_OFFSET, XENSTORE_DOMAIN_INTERFACE_FIELD_SIZE);
  for (const [k, word] of Object.entries(XENSTORE_DOMAIN_INTERFACE_WORD)) {
    assert.equal(
      word * 4,
      XENSTORE_DOMAIN_INTERFACE_OFFSET[k as keyof typeof XENSTORE_DOMAIN_INTERFACE_OFFSET],
    );
  }
});

test('xenstore.h and xenstore_lib.h values match the oracle', () => {
  const sec = section('xenstore.h / xenstore_lib.h');
  assert.equal(XBT_NULL, sec.XBT_NULL);
  assert.equal(XS_OPEN.READONLY, sec.XS_OPEN_READONLY);
  assert.equal(XS_OPEN.SOCKETONLY, sec.XS_OPEN_SOCKETONLY);
  assert.equal(XS_UNWATCH_FILTER, sec.XS_UNWATCH_FILTER);
  const perms = Object.keys(sec).filter((k) => k.startsWith('XS_PERM_'));
  assert.deepEqual(
    perms,
    Object.keys(XS_PERM).map((k) => `XS_PERM_${k}`),
  );
  for (const [k, v] of Object.entries(XS_PERM)) assert.equal(v, sec[`XS_PERM_${k}`], k);
  assert.equal(XS_PERMISSIONS_SIZE, sec.__sizeof__);
  assert.equal(XS_PERMISSIONS_ALIGN, sec.__alignof__);
  assertFields(sec, XS_PERMISSIONS_OFFSET, XS_PERMISSIONS_FIELD_SIZE);
});

test('the small guards accept exactly the defined values', () => {
  assert.ok(isXenstoreServerFeature(1) && isXenstoreServerFeature(2));
  assert.ok(!isXenstoreServerFeature(3) && !isXenstoreServerFeature(4));
  assert.ok(isXenstoreConnection(0) && isXenstoreConnection(1) && !isXenstoreConnection(2));
  for (const v of Object.values(XENSTORE_ERROR)) assert.ok(isXenstoreError(v));
  assert.ok(!isXenstoreError(4));
  assert.ok(isXsOpenFlag(1) && isXsOpenFlag(2) && !isXsOpenFlag(4));
  for (const v of Object.values(XS_PERM)) assert.ok(isXsPermBit(v));
  assert.ok(!isXsPermBit(3) && !isXsPermBit(32));
});

test('xenstoreRingIndex() wraps free-running u32 indexes into the ring', () => {
  assert.equal(xenstoreRingIndex(0), 0);
  assert.equal(xenstoreRingIndex(1023), 1023);
  assert.equal(xenstoreRingIndex(1024), 0);
  assert.equal(xenstoreRingIndex(0xffffffff), 1023);
  assert.equal(xenstoreRingIndex(5000), 5000 - 4 * 1024);
});

test('encodeXsdSockmsg() writes four little-endian u32s in header order', () => {
  const bytes = new Uint8Array(XSD_SOCKMSG_SIZE);
  encodeXsdSockmsg(new DataView(bytes.buffer), 0, {
    type: XS_TYPE.READ,
    reqId: 0xfffffffe,
    txId: 0x01020304,
    len: 4096,
  });
  assert.deepEqual([...bytes], [2, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 4, 3, 2, 1, 0, 0x10, 0, 0]);
});

test('decodeXsdSockmsg(encodeXsdSockmsg(h)) is h, at any offset', () => {
  const u32 = fc.nat({ max: 0xffffffff });
  fc.assert(
    fc.property(
      fc.record({ type: u32, reqId: u32, txId: u32, len: u32 }, { noNullPrototype: true }),
      fc.nat({ max: 32 }),
      (h, at) => {
        const view = new DataView(new ArrayBuffer(at + XSD_SOCKMSG_SIZE));
        encodeXsdSockmsg(view, at, h);
        assert.deepEqual(decodeXsdSockmsg(view, at), h);
      },
    ),
  );
});

test('the header codec rejects short views and values that are not u32', () => {
  const view = new DataView(new ArrayBuffer(20));
  assert.throws(() => decodeXsdSockmsg(view, 5), RangeError);
  assert.throws(() => {
    encodeXsdSockmsg(view, 0, { type: -1, reqId: 0, txId: 0, len: 0 });
  }, RangeError);
  assert.throws(() => {
    encodeXsdSockmsg(view, 0, { type: 0, reqId: 0, txId: 0, len: 2 ** 32 });
  }, RangeError);
});
