// SPDX-License-Identifier: MIT
/**
 * Whole xenstore messages: the 16-byte `struct xsd_sockmsg` header of
 * `src/abi/xs-wire.ts` followed by `len` payload bytes (spec/xenstore.md §1.1, §1.3).
 */
import {
  XENSTORE_PAYLOAD_MAX,
  XSD_SOCKMSG_SIZE,
  XS_TYPE,
  decodeXsdSockmsg,
  encodeXsdSockmsg,
  type XsErrorName,
} from '../../abi/index.js';
import { utf8Encode } from './strings.js';

/** One message, either direction. `type` may be any u32 (unknown types get ENOSYS). */
export interface XsMessage {
  /** `XS_TYPE` value, or any other u32 as received. */
  readonly type: number;
  /** Chosen by the client; echoed in the reply; 0 on WATCH_EVENT. */
  readonly reqId: number;
  /** Transaction id, 0 (`XBT_NULL`) outside a transaction. */
  readonly txId: number;
  /** The `len` bytes after the header. */
  readonly payload: Uint8Array;
}

/** Why {@link decodeXsMessage} rejected a byte sequence. */
export type XsDecodeFailure = 'short-header' | 'oversized' | 'truncated' | 'trailing-bytes';

/** Result of {@link decodeXsMessage}. */
export type XsDecodeResult =
  | { readonly ok: true; readonly message: XsMessage }
  | { readonly ok: false; readonly reason: XsDecodeFailure; readonly detail: string };

/**
 * Encode a message as header plus payload.
 *
 * @throws RangeError when a header field is not a u32 or the payload is longer than
 *   `maxPayload` (default XENSTORE_PAYLOAD_MAX). A server should use {@link makeReply},
 *   which answers E2BIG instead; a client should fail the request locally with E2BIG.
 * @example
 * encodeXsMessage({ type: XS_TYPE.READ, reqId: 7, txId: 0, payload: utf8Encode('/\0') })
 */
export function encodeXsMessage(
  message: XsMessage,
  options: { readonly maxPayload?: number } = {},
): Uint8Array {
  const max = options.maxPayload ?? XENSTORE_PAYLOAD_MAX;
  const len = message.payload.length;
  if (len > max) {
    throw new RangeError(
      `Cannot encode xenstore message type ${message.type} req_id ${message.reqId}: payload is ${len} bytes, the limit is ${max}`,
    );
  }
  const out = new Uint8Array(XSD_SOCKMSG_SIZE + len);
  encodeXsdSockmsg(new DataView(out.buffer, out.byteOffset, out.byteLength), 0, {
    type: message.type,
    reqId: message.reqId,
    txId: message.txId,
    len,
  });
  out.set(message.payload, XSD_SOCKMSG_SIZE);
  return out;
}

/**
 * Decode exactly one whole message (header plus `len` bytes, nothing more). The payload
 * is copied. Never throws: a short, truncated, oversized or overlong input is reported.
 */
export function decodeXsMessage(
  bytes: Uint8Array,
  options: { readonly maxPayload?: number } = {},
): XsDecodeResult {
  const max = options.maxPayload ?? XENSTORE_PAYLOAD_MAX;
  if (bytes.length < XSD_SOCKMSG_SIZE) {
    return {
      ok: false,
      reason: 'short-header',
      detail: `${bytes.length} bytes, the header needs ${XSD_SOCKMSG_SIZE}`,
    };
  }
  const h = decodeXsdSockmsg(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0);
  if (h.len > max) {
    return { ok: false, reason: 'oversized', detail: `header len ${h.len} is above ${max}` };
  }
  const have = bytes.length - XSD_SOCKMSG_SIZE;
  if (have < h.len) {
    return {
      ok: false,
      reason: 'truncated',
      detail: `header len ${h.len}, ${have} payload bytes present`,
    };
  }
  if (have > h.len) {
    return {
      ok: false,
      reason: 'trailing-bytes',
      detail: `header len ${h.len}, ${have} payload bytes present`,
    };
  }
  return {
    ok: true,
    message: { type: h.type, reqId: h.reqId, txId: h.txId, payload: bytes.slice(XSD_SOCKMSG_SIZE) },
  };
}

/**
 * A fresh `OK\0` payload, the success reply of most requests. (A typed array with
 * elements cannot be frozen, so no shared constant is handed out.)
 */
export function okPayload(): Uint8Array {
  return Uint8Array.of(0x4f, 0x4b, 0);
}

/**
 * The reply to `request` with `payload`: same type, req_id and tx_id (§1.3). A payload
 * longer than XENSTORE_PAYLOAD_MAX becomes `ERROR "E2BIG\0"` (§1.4, C behaviour).
 */
export function makeReply(request: XsMessage, payload: Uint8Array): XsMessage {
  if (payload.length > XENSTORE_PAYLOAD_MAX) return makeErrorReply(request, 'E2BIG');
  return { type: request.type, reqId: request.reqId, txId: request.txId, payload };
}

/** The error reply to `request`: type ERROR, ids echoed, payload `<name>\0` (§9.1). */
export function makeErrorReply(request: XsMessage, name: XsErrorName): XsMessage {
  return {
    type: XS_TYPE.ERROR,
    reqId: request.reqId,
    txId: request.txId,
    payload: utf8Encode(`${name}\0`),
  };
}
