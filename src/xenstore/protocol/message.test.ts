// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ORACLES_DIR } from '../../../test/support/paths.js';
import { XENSTORE_PAYLOAD_MAX, XS_TYPE, type XsTypeName } from '../../abi/index.js';
import {
  decodeXsMessage,
  encodeXsMessage,
  isOkReply,
  makeErrorReply,
  makeReply,
  parseDirectoryPartReply,
  parseErrorPayload,
  parseGetPermsReply,
  parsePathRequest,
  parseSetPermsRequest,
  parseTransactionEndRequest,
  parseTransactionStartReply,
  parseWatch,
  parseWriteRequest,
  type XsMessage,
} from './index.js';

/** Independent byte builder (not our encoder): header fields little-endian, then payload. */
function rawMessage(type: number, reqId: number, txId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + payload.length);
  const words = [type, reqId, txId, payload.length];
  words.forEach((w, i) => {
    for (let b = 0; b < 4; b++) out[i * 4 + b] = (w >>> (8 * b)) & 0xff;
  });
  out.set(payload, 16);
  return out;
}

const latin1 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

const arbMessage = fc.record({
  type: fc.oneof(fc.constantFrom(...Object.values(XS_TYPE)), fc.nat({ max: 0xffffffff })),
  reqId: fc.nat({ max: 0xffffffff }),
  txId: fc.nat({ max: 0xffffffff }),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.uint8Array({ minLength: XENSTORE_PAYLOAD_MAX - 8, maxLength: XENSTORE_PAYLOAD_MAX }),
    fc.uint8Array({ maxLength: XENSTORE_PAYLOAD_MAX }),
  ),
});

test('decodeXsMessage(encodeXsMessage(m)) returns m for any type, ids and payload up to the max', () => {
  fc.assert(
    fc.property(arbMessage, (m: XsMessage) => {
      const bytes = encodeXsMessage(m);
      assert.deepEqual(bytes, rawMessage(m.type, m.reqId, m.txId, m.payload));
      const r = decodeXsMessage(bytes);
      assert.ok(r.ok);
      assert.deepEqual(r.message, { ...m }); // fc.record objects have a null prototype
    }),
    { numRuns: 300 },
  );
});

test('encodeXsMessage() refuses a payload above XENSTORE_PAYLOAD_MAX', () => {
  const m = {
    type: XS_TYPE.WRITE,
    reqId: 1,
    txId: 0,
    payload: new Uint8Array(XENSTORE_PAYLOAD_MAX + 1),
  };
  assert.throws(() => encodeXsMessage(m), RangeError);
  assert.equal(encodeXsMessage(m, { maxPayload: 8192 }).length, 16 + XENSTORE_PAYLOAD_MAX + 1);
});

test('decodeXsMessage() reports short, truncated, trailing and oversized input', () => {
  const good = rawMessage(XS_TYPE.READ, 7, 0, latin1('/\0'));
  assert.equal(decodeXsMessage(good.subarray(0, 15)).ok, false);
  const t = decodeXsMessage(good.subarray(0, 17));
  assert.ok(!t.ok && t.reason === 'truncated');
  const tr = decodeXsMessage(new Uint8Array([...good, 0]));
  assert.ok(!tr.ok && tr.reason === 'trailing-bytes');
  const o = decodeXsMessage(
    rawMessage(XS_TYPE.WRITE, 1, 0, new Uint8Array(0)).map((b, i) => (i === 13 ? 0x13 : b)),
  );
  assert.ok(!o.ok && o.reason === 'oversized');
});

test('decodeXsMessage() never throws on random bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      decodeXsMessage(bytes);
    }),
  );
});

test('makeReply() echoes type, req_id and tx_id and turns an oversized payload into E2BIG', () => {
  const req = { type: XS_TYPE.DIRECTORY, reqId: 0xfffffffe, txId: 3, payload: latin1('/\0') };
  const ok = makeReply(req, latin1('a\0'));
  assert.deepEqual([ok.type, ok.reqId, ok.txId], [XS_TYPE.DIRECTORY, 0xfffffffe, 3]);
  const big = makeReply(req, new Uint8Array(18200));
  assert.deepEqual([big.type, big.reqId, big.txId], [XS_TYPE.ERROR, 0xfffffffe, 3]);
  assert.deepEqual(big.payload, latin1('E2BIG\0'));
  assert.deepEqual(makeErrorReply(req, 'ENOENT').payload, latin1('ENOENT\0'));
});

// ---------------------------------------------------------------------------------------
// Transcripts of the real daemons (oracles/xenstored/transcripts)
// ---------------------------------------------------------------------------------------

interface WireRecord {
  type: string | number;
  req_id: number;
  tx_id: number;
  len?: number;
  payload: string;
}
interface Exchange {
  request: WireRecord;
  replies: WireRecord[];
}

function loadTranscript(name: string): Exchange[] {
  const path = join(ORACLES_DIR, 'xenstored', 'transcripts', name);
  return JSON.parse(readFileSync(path, 'utf8')) as Exchange[];
}

function typeValue(t: string | number): number {
  return typeof t === 'number' ? t : XS_TYPE[t as XsTypeName];
}

for (const file of ['cxenstored-transcript.json', 'oxenstored-transcript.json']) {
  test(`every request and reply of ${file} decodes from raw bytes with the recorded fields`, () => {
    const exchanges = loadTranscript(file);
    assert.ok(exchanges.length >= 30);
    for (const ex of [...exchanges.map((e) => e.request), ...exchanges.flatMap((e) => e.replies)]) {
      const payload = latin1(ex.payload);
      const r = decodeXsMessage(rawMessage(typeValue(ex.type), ex.req_id, ex.tx_id, payload), {
        maxPayload: 8192,
      });
      assert.ok(r.ok, JSON.stringify(ex));
      assert.equal(r.message.type, typeValue(ex.type));
      assert.equal(r.message.reqId, ex.req_id);
      assert.equal(r.message.txId, ex.tx_id);
      assert.deepEqual(r.message.payload, payload);
      if (ex.len !== undefined) assert.equal(r.message.payload.length, ex.len);
    }
  });
}

test('cxenstored transcript payloads parse with the payload helpers', () => {
  const ex = loadTranscript('cxenstored-transcript.json');
  const req = (i: number): Uint8Array => latin1(ex[i]?.request.payload ?? '');
  const rep = (i: number, j = 0): Uint8Array => latin1(ex[i]?.replies[j]?.payload ?? '');
  const find = (type: string, payload: string): number =>
    ex.findIndex((e) => e.request.type === type && e.request.payload === payload);

  // WRITE '/probe/a\0hello' -> OK
  const w = parseWriteRequest(req(find('WRITE', '/probe/a\0hello')));
  assert.ok(w.ok);
  assert.equal(w.value.path, '/probe/a');
  assert.deepEqual(w.value.value, latin1('hello'));
  assert.ok(isOkReply(rep(find('WRITE', '/probe/a\0hello'))));
  // READ '/probe/a\0' -> 'hello' (raw, no NUL)
  const r = parsePathRequest(req(find('READ', '/probe/a\0')));
  assert.ok(r.ok && r.value === '/probe/a');
  assert.deepEqual(rep(find('READ', '/probe/a\0')), latin1('hello'));
  // READ '/probe/a' (no NUL) is malformed; C answered a stale ENOENT, we say EINVAL.
  const bad = parsePathRequest(req(find('READ', '/probe/a')));
  assert.ok(!bad.ok && bad.error === 'EINVAL');
  assert.equal(parseErrorPayload(rep(find('READ', '/probe/a'))).error, 'ENOENT');
  // DIRECTORY_PART '/probe\x000\0' -> '817\0a\0\0'
  const dp = parseDirectoryPartReply(rep(find('DIRECTORY_PART', '/probe\x000\0')));
  assert.ok(dp.ok);
  assert.deepEqual([dp.value.generation, dp.value.names, dp.value.end], ['817', ['a'], true]);
  // SET_PERMS '/probe/a\0n0\0r5\0', then GET_PERMS -> 'n0\0r5\0'
  const sp = parseSetPermsRequest(req(find('SET_PERMS', '/probe/a\0n0\0r5\0')));
  assert.ok(sp.ok);
  const gp = parseGetPermsReply(rep(find('GET_PERMS', '/probe/a\0') + 2));
  assert.ok(gp.ok);
  assert.deepEqual(gp.value, sp.value.perms);
  assert.deepEqual(gp.value, [
    { letter: 'n', domid: 0 },
    { letter: 'r', domid: 5 },
  ]);
  // SET_PERMS 'x0' -> EINVAL in both the daemon and the parser
  const x = parseSetPermsRequest(req(find('SET_PERMS', '/probe/a\0x0\0')));
  assert.ok(!x.ok && x.error === 'EINVAL');
  // WATCH -> OK then WATCH_EVENT '/probe\0tok1\0' with req_id 0
  const wi = find('WATCH', '/probe\0tok1\0');
  assert.deepEqual(parseWatch(req(wi)), { ok: true, value: { path: '/probe', token: 'tok1' } });
  assert.equal(ex[wi]?.replies[1]?.req_id, 0);
  assert.deepEqual(parseWatch(rep(wi, 1)), { ok: true, value: { path: '/probe', token: 'tok1' } });
  // TRANSACTION_START -> '1\0'; TRANSACTION_END 'T\0'
  assert.deepEqual(parseTransactionStartReply(rep(find('TRANSACTION_START', '\0'))), {
    ok: true,
    value: 1,
  });
  assert.deepEqual(parseTransactionEndRequest(req(find('TRANSACTION_END', 'T\0'))), {
    ok: true,
    value: true,
  });
});
