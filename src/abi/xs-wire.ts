// SPDX-License-Identifier: MIT
/**
 * The xenstore wire protocol: Xen's `xen/include/public/io/xs_wire.h` (message header,
 * message types, error names, limits, the domain ring page) plus the few client-library
 * constants of `xenstore.h` / `xenstore_lib.h` that appear on the wire or in the store
 * (permission bits, `XBT_NULL`). spec/xenstore.md §1, §7.6, §7.7, §9.
 *
 * Values are those of Xen 4.17 (Debian 12), pinned by tests against
 * `oracles/xen-abi.json`. Multi-byte fields are little-endian (host order on x86 and Arm).
 */

// ---------------------------------------------------------------------------------------
// Message header
// ---------------------------------------------------------------------------------------

/** `sizeof(struct xsd_sockmsg)`: the header in front of every message. */
export const XSD_SOCKMSG_SIZE = 16;
/** `_Alignof(struct xsd_sockmsg)`. */
export const XSD_SOCKMSG_ALIGN = 4;
/** Byte offsets in `struct xsd_sockmsg { uint32_t type, req_id, tx_id, len; }`. */
export const XSD_SOCKMSG_OFFSET = {
  /** `XS_*` message type. */
  type: 0,
  /** Chosen by the client, echoed in the reply. */
  req_id: 4,
  /** Transaction id, 0 outside a transaction. */
  tx_id: 8,
  /** Payload bytes after the header (at most {@link XENSTORE_PAYLOAD_MAX}). */
  len: 12,
} as const;
/** Byte sizes of the fields of `struct xsd_sockmsg`. */
export const XSD_SOCKMSG_FIELD_SIZE = { type: 4, req_id: 4, tx_id: 4, len: 4 } as const;

/** A decoded `struct xsd_sockmsg`. All four are u32, taken as found on the wire. */
export interface XsdSockmsg {
  /** Message type; may be any u32 (unknown types get ENOSYS). */
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  /** Payload length; a framer must check it against the limit before waiting for it. */
  readonly len: number;
}

const LE = true;

function checkView(view: DataView, byteOffset: number): void {
  if (
    !Number.isInteger(byteOffset) ||
    byteOffset < 0 ||
    byteOffset + XSD_SOCKMSG_SIZE > view.byteLength
  ) {
    throw new RangeError(
      `Cannot access struct xsd_sockmsg at byte ${byteOffset}: it needs ${XSD_SOCKMSG_SIZE} bytes and the view has ${view.byteLength}`,
    );
  }
}

function checkU32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Cannot encode ${field} ${value}: it must be a u32 (0-0xffffffff)`);
  }
  return value;
}

/**
 * Decode the 16-byte header at `byteOffset`. Nothing is validated: a framer decides what
 * an oversized `len` or an unknown `type` means.
 */
export function decodeXsdSockmsg(view: DataView, byteOffset: number): XsdSockmsg {
  checkView(view, byteOffset);
  return Object.freeze({
    type: view.getUint32(byteOffset + XSD_SOCKMSG_OFFSET.type, LE),
    reqId: view.getUint32(byteOffset + XSD_SOCKMSG_OFFSET.req_id, LE),
    txId: view.getUint32(byteOffset + XSD_SOCKMSG_OFFSET.tx_id, LE),
    len: view.getUint32(byteOffset + XSD_SOCKMSG_OFFSET.len, LE),
  });
}

/**
 * Encode the 16-byte header at `byteOffset`.
 *
 * @throws RangeError when a field is not a u32 or the view is too small. The payload
 *   limit is not checked here: the codec above decides whether to send E2BIG instead.
 */
export function encodeXsdSockmsg(view: DataView, byteOffset: number, header: XsdSockmsg): void {
  checkView(view, byteOffset);
  const type = checkU32(header.type, 'type');
  const reqId = checkU32(header.reqId, 'req_id');
  const txId = checkU32(header.txId, 'tx_id');
  const len = checkU32(header.len, 'len');
  view.setUint32(byteOffset + XSD_SOCKMSG_OFFSET.type, type, LE);
  view.setUint32(byteOffset + XSD_SOCKMSG_OFFSET.req_id, reqId, LE);
  view.setUint32(byteOffset + XSD_SOCKMSG_OFFSET.tx_id, txId, LE);
  view.setUint32(byteOffset + XSD_SOCKMSG_OFFSET.len, len, LE);
}

// ---------------------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------------------

/**
 * `enum xsd_sockmsg_type` (xs_wire.h), without the `XS_` prefix. 20 was `XS_RESTRICT`,
 * removed; unknown types are answered with ENOSYS (spec/xenstore.md §1.2).
 */
export const XS_TYPE = {
  CONTROL: 0,
  /** Old name of CONTROL: `#define XS_DEBUG XS_CONTROL`, so both are 0. */
  DEBUG: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  /** Server to client only. */
  WATCH_EVENT: 15,
  /** Server to client only. */
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;

/** A message type defined by Xen 4.17. */
export type XsType = (typeof XS_TYPE)[keyof typeof XS_TYPE];
/** The name of a message type without `XS_`, e.g. `'READ'`. */
export type XsTypeName = keyof typeof XS_TYPE;

/** `XS_TYPE_COUNT`: one more than the largest type Xen 4.17 defines (27 in 4.21+). */
export const XS_TYPE_COUNT = 23;
/** `XS_INVALID`: guaranteed never to be a valid type. */
export const XS_INVALID = 0xffff;
/** `sizeof(enum xsd_sockmsg_type)`. */
export const XSD_SOCKMSG_TYPE_SIZE = 4;

/** True when `value` is a message type defined by Xen 4.17 (0–19, 21, 22). */
export function isXsType(value: unknown): value is XsType {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= 0 &&
    value < XS_TYPE_COUNT &&
    value !== 20
  );
}

const TYPE_NAMES = new Map<number, XsTypeName>();
for (const [name, value] of Object.entries(XS_TYPE) as [XsTypeName, XsType][]) {
  // CONTROL comes first and wins over its alias DEBUG.
  if (!TYPE_NAMES.has(value)) TYPE_NAMES.set(value, name);
}

/** The name of a message type (`'CONTROL'` for 0), or `undefined` for an unknown value. */
export function xsTypeName(type: number): XsTypeName | undefined {
  return TYPE_NAMES.get(type);
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/**
 * The error names a server may send, with their Linux errno, keyed by name in the order
 * of `xsd_errors[]` (xs_wire.h). An ERROR reply carries the name plus a NUL.
 */
export const XS_ERRNO = {
  EINVAL: 22,
  EACCES: 13,
  EEXIST: 17,
  EISDIR: 21,
  ENOENT: 2,
  ENOMEM: 12,
  ENOSPC: 28,
  EIO: 5,
  ENOTEMPTY: 39,
  ENOSYS: 38,
  EROFS: 30,
  EBUSY: 16,
  EAGAIN: 11,
  EISCONN: 106,
  E2BIG: 7,
  EPERM: 1,
} as const;

/** An error name of the `xsd_errors` table. */
export type XsErrorName = keyof typeof XS_ERRNO;

/** One entry of `struct xsd_errors { int errnum; const char *errstring; }`. */
export interface XsdError {
  readonly name: XsErrorName;
  readonly errnum: number;
}

/** `xsd_errors[]` in wire (index) order. */
export const XSD_ERRORS: readonly XsdError[] = Object.freeze(
  (Object.entries(XS_ERRNO) as [XsErrorName, number][]).map(([name, errnum]) =>
    Object.freeze({ name, errnum }),
  ),
);

/** True when `value` is a name of the `xsd_errors` table (O can also send `EQUOTA`: not in it). */
export function isXsErrorName(value: unknown): value is XsErrorName {
  return typeof value === 'string' && Object.hasOwn(XS_ERRNO, value);
}

/**
 * The table's name for a Linux errno, or `undefined` when it has none. (C xenstored sends
 * EINVAL for errnos missing from the table; that policy belongs to the caller.)
 */
export function xsErrorNameForErrno(errnum: number): XsErrorName | undefined {
  return XSD_ERRORS.find((e) => e.errnum === errnum)?.name;
}

// ---------------------------------------------------------------------------------------
// Payload constants and limits
// ---------------------------------------------------------------------------------------

/** `XS_WRITE_NONE` (unused by 4.17 daemons; removed upstream). */
export const XS_WRITE_NONE = 'NONE';
/** `XS_WRITE_CREATE` (unused). */
export const XS_WRITE_CREATE = 'CREATE';
/** `XS_WRITE_CREATE_EXCL` (unused). */
export const XS_WRITE_CREATE_EXCL = 'CREATE|EXCL';

/** `XS_WATCH_PATH`: index of the path in a split WATCH_EVENT payload. */
export const XS_WATCH_PATH = 0;
/** `XS_WATCH_TOKEN`: index of the token in a split WATCH_EVENT payload. */
export const XS_WATCH_TOKEN = 1;

/** `XENSTORE_PAYLOAD_MAX`: largest `len`, both directions. */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** `XENSTORE_ABS_PATH_MAX`: documented absolute path limit (spec/xenstore.md §2). */
export const XENSTORE_ABS_PATH_MAX = 3072;
/** `XENSTORE_REL_PATH_MAX`: documented relative path limit; C's default `path-max`. */
export const XENSTORE_REL_PATH_MAX = 2048;

// ---------------------------------------------------------------------------------------
// Domain ring page
// ---------------------------------------------------------------------------------------

/** `XENSTORE_RING_SIZE`: bytes per ring direction (a power of two). */
export const XENSTORE_RING_SIZE = 1024;

/**
 * `MASK_XENSTORE_IDX(idx)`: position in a ring of the free-running u32 index `idx`.
 */
export function xenstoreRingIndex(idx: number): number {
  return idx & (XENSTORE_RING_SIZE - 1);
}

/** `sizeof(struct xenstore_domain_interface)` in Xen 4.17 (4.21+ appends `evtchn_port`). */
export const XENSTORE_DOMAIN_INTERFACE_SIZE = 2076;
/** `_Alignof(struct xenstore_domain_interface)`. */
export const XENSTORE_DOMAIN_INTERFACE_ALIGN = 4;
/**
 * Byte offsets in `struct xenstore_domain_interface` (xs_wire.h): two data rings and the
 * u32 indexes, features, connection state and error word.
 */
export const XENSTORE_DOMAIN_INTERFACE_OFFSET = {
  /** Requests, guest to server. */
  req: 0,
  /** Replies and watch events, server to guest. */
  rsp: 1024,
  req_cons: 2048,
  req_prod: 2052,
  rsp_cons: 2056,
  rsp_prod: 2060,
  server_features: 2064,
  connection: 2068,
  error: 2072,
} as const;
/** Byte sizes of the fields of `struct xenstore_domain_interface`. */
export const XENSTORE_DOMAIN_INTERFACE_FIELD_SIZE = {
  req: XENSTORE_RING_SIZE,
  rsp: XENSTORE_RING_SIZE,
  req_cons: 4,
  req_prod: 4,
  rsp_cons: 4,
  rsp_prod: 4,
  server_features: 4,
  connection: 4,
  error: 4,
} as const;

/**
 * Indexes of the u32 fields in an `Int32Array`/`Uint32Array` laid over the page from its
 * first byte, for `Atomics.load`/`Atomics.store` (spec/xenstore.md §7.6).
 */
export const XENSTORE_DOMAIN_INTERFACE_WORD = {
  req_cons: XENSTORE_DOMAIN_INTERFACE_OFFSET.req_cons / 4,
  req_prod: XENSTORE_DOMAIN_INTERFACE_OFFSET.req_prod / 4,
  rsp_cons: XENSTORE_DOMAIN_INTERFACE_OFFSET.rsp_cons / 4,
  rsp_prod: XENSTORE_DOMAIN_INTERFACE_OFFSET.rsp_prod / 4,
  server_features: XENSTORE_DOMAIN_INTERFACE_OFFSET.server_features / 4,
  connection: XENSTORE_DOMAIN_INTERFACE_OFFSET.connection / 4,
  error: XENSTORE_DOMAIN_INTERFACE_OFFSET.error / 4,
} as const;

/**
 * `XENSTORE_SERVER_FEATURE_*` bits in `server_features`. The server sets them, never
 * clears them; the guest must not write the field.
 */
export const XENSTORE_SERVER_FEATURE = {
  /** The guest may ask for a reconnection through `connection`. */
  RECONNECTION: 1,
  /** The server reports why it gave up in `error`. */
  ERROR: 2,
} as const;

/** A defined server feature bit. */
export type XenstoreServerFeature =
  (typeof XENSTORE_SERVER_FEATURE)[keyof typeof XENSTORE_SERVER_FEATURE];

/** True when `value` is a defined server feature bit. */
export function isXenstoreServerFeature(value: unknown): value is XenstoreServerFeature {
  return value === 1 || value === 2;
}

/** Values of `connection` (`XENSTORE_CONNECTED`, `XENSTORE_RECONNECT`). */
export const XENSTORE_CONNECTION = {
  CONNECTED: 0,
  /** Written by the guest to ask for a reset; the server sets CONNECTED when done. */
  RECONNECT: 1,
} as const;

/** A `connection` value. */
export type XenstoreConnection = (typeof XENSTORE_CONNECTION)[keyof typeof XENSTORE_CONNECTION];

/** True when `value` is a defined `connection` value. */
export function isXenstoreConnection(value: unknown): value is XenstoreConnection {
  return value === 0 || value === 1;
}

/** Values of `error` (`XENSTORE_ERROR_*`): why the server stopped serving the ring. */
export const XENSTORE_ERROR = {
  NONE: 0,
  /** Problem with the event channel. */
  COMM: 1,
  /** Invalid ring index. */
  RINGIDX: 2,
  /** Protocol violation, e.g. `len` above the payload limit. */
  PROTO: 3,
} as const;

/** An `error` value. */
export type XenstoreError = (typeof XENSTORE_ERROR)[keyof typeof XENSTORE_ERROR];

/** True when `value` is a defined `error` value. */
export function isXenstoreError(value: unknown): value is XenstoreError {
  return value === 0 || value === 1 || value === 2 || value === 3;
}

// ---------------------------------------------------------------------------------------
// xenstore.h / xenstore_lib.h
// ---------------------------------------------------------------------------------------

/** `XBT_NULL`: the "no transaction" id (tx_id 0). */
export const XBT_NULL = 0;

/** `XS_OPEN_*` flags of `xs_open()` (xenstore.h). */
export const XS_OPEN = {
  READONLY: 1,
  SOCKETONLY: 2,
} as const;

/** An `xs_open()` flag. */
export type XsOpenFlag = (typeof XS_OPEN)[keyof typeof XS_OPEN];

/** True when `value` is an `XS_OPEN_*` flag. */
export function isXsOpenFlag(value: unknown): value is XsOpenFlag {
  return value === 1 || value === 2;
}

/** `XS_UNWATCH_FILTER` (xenstore.h): an `xs_open()` flag that filters stale watch events. */
export const XS_UNWATCH_FILTER = 4;

/**
 * `enum xs_perm_type` (xenstore_lib.h). On the wire a permission is a letter plus a
 * domid (`n` NONE, `r` READ, `w` WRITE, `b` READ|WRITE); OWNER marks the first entry;
 * IGNORE marks an entry naming a domain that no longer exists.
 */
export const XS_PERM = {
  NONE: 0,
  READ: 1,
  WRITE: 2,
  /** Internal: a missing node is not an error. */
  ENOENT_OK: 4,
  OWNER: 8,
  IGNORE: 16,
} as const;

/** An `xs_perm_type` bit. */
export type XsPermBit = (typeof XS_PERM)[keyof typeof XS_PERM];

/** True when `value` is one `xs_perm_type` value. */
export function isXsPermBit(value: unknown): value is XsPermBit {
  return typeof value === 'number' && Object.values(XS_PERM).includes(value as XsPermBit);
}

/** `sizeof(struct xs_permissions)`. */
export const XS_PERMISSIONS_SIZE = 8;
/** `_Alignof(struct xs_permissions)`. */
export const XS_PERMISSIONS_ALIGN = 4;
/** Byte offsets in `struct xs_permissions { unsigned int id; enum xs_perm_type perms; }`. */
export const XS_PERMISSIONS_OFFSET = { id: 0, perms: 4 } as const;
/** Byte sizes of the fields of `struct xs_permissions`. */
export const XS_PERMISSIONS_FIELD_SIZE = { id: 4, perms: 4 } as const;
