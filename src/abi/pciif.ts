// SPDX-License-Identifier: MIT
/**
 * The PV PCI protocol between pcifront and pciback: Xen's `xen/include/public/io/pciif.h`
 * (Linux copy: `include/xen/interface/io/pciif.h`), spec/pciback.md §1.
 *
 * Everything lives in one granted 4 KiB page whose first 572 bytes are
 * `struct xen_pci_sharedinfo`. All fields are little-endian with natural alignment and no
 * padding; the sizes and offsets here are pinned by tests against
 * `oracles/xen-abi.json`, which was printed by a program compiled against the real header.
 *
 * Names follow the C header so that `XEN_PCI_OP.conf_read` reads like
 * `XEN_PCI_OP_conf_read`.
 */

// ---------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------

/**
 * `XEN_PCI_MAGIC` (pciif.h): the protocol version string. The frontend writes it to the
 * xenstore key `magic`; the backend accepts only an exact match (spec §1.1).
 */
export const XEN_PCI_MAGIC = '7';

/**
 * `SH_INFO_MAX_VEC` (pciif.h): number of `msix_entries` in `struct xen_pci_op`, hence the
 * most MSI-X vectors one `enable_msix` request can ask for.
 */
export const SH_INFO_MAX_VEC = 128;

/**
 * Bit numbers in `xen_pci_sharedinfo.flags`: `_XEN_PCIF_active`, `_XEN_PCIB_AERHANDLER`,
 * `_XEN_PCIB_active` (pciif.h). Both sides flip these bits concurrently, so they are
 * never decoded into a snapshot: use `Atomics` on an `Int32Array` over the page, at word
 * {@link XEN_PCI_SHAREDINFO_FLAGS_WORD}.
 */
export const XEN_PCI_FLAG_NR = {
  /** `_XEN_PCIF_active`: set by the frontend when an op is posted, cleared by the backend when answered. */
  PCIF_active: 0,
  /** `_XEN_PCIB_AERHANDLER`: set by the frontend at allocation: the guest has a PV AER handler. */
  PCIB_AERHANDLER: 1,
  /** `_XEN_PCIB_active`: set by the backend when an AER request is posted, cleared by the frontend. */
  PCIB_active: 2,
} as const;

/** A bit number of `xen_pci_sharedinfo.flags`. */
export type XenPciFlagNr = (typeof XEN_PCI_FLAG_NR)[keyof typeof XEN_PCI_FLAG_NR];

/**
 * Masks of the same bits (`XEN_PCIF_active`, `XEN_PCIB_AERHANDLER`, `XEN_PCIB_active` in
 * pciif.h): `1 << XEN_PCI_FLAG_NR.x`.
 */
export const XEN_PCI_FLAG_MASK = {
  /** `XEN_PCIF_active` */
  PCIF_active: 1 << XEN_PCI_FLAG_NR.PCIF_active,
  /** `XEN_PCIB_AERHANDLER` */
  PCIB_AERHANDLER: 1 << XEN_PCI_FLAG_NR.PCIB_AERHANDLER,
  /** `XEN_PCIB_active` */
  PCIB_active: 1 << XEN_PCI_FLAG_NR.PCIB_active,
} as const;

/** A single-bit mask of `xen_pci_sharedinfo.flags`. */
export type XenPciFlagMask = (typeof XEN_PCI_FLAG_MASK)[keyof typeof XEN_PCI_FLAG_MASK];

/** True when `value` is one of the defined flag bit numbers. */
export function isXenPciFlagNr(value: unknown): value is XenPciFlagNr {
  return value === 0 || value === 1 || value === 2;
}

/**
 * `XEN_PCI_OP_*` (pciif.h): the `cmd` of an op. 0–5 go frontend to backend in `op`; 6–9
 * go backend to frontend in `aer_op`. `enable_multi_msi` (10) exists only in Xen's copy of
 * the header: Linux pciback answers it with `XEN_PCI_ERR_not_implemented`.
 */
export const XEN_PCI_OP = {
  conf_read: 0,
  conf_write: 1,
  enable_msi: 2,
  disable_msi: 3,
  enable_msix: 4,
  disable_msix: 5,
  aer_detected: 6,
  aer_resume: 7,
  aer_mmio: 8,
  aer_slotreset: 9,
  enable_multi_msi: 10,
} as const;

/** A known `XEN_PCI_OP_*` value. */
export type XenPciOpCmd = (typeof XEN_PCI_OP)[keyof typeof XEN_PCI_OP];
/** The name of a `XEN_PCI_OP_*` value without its prefix, e.g. `'conf_read'`. */
export type XenPciOpName = keyof typeof XEN_PCI_OP;

const OP_NAMES: readonly XenPciOpName[] = Object.freeze(Object.keys(XEN_PCI_OP) as XenPciOpName[]);

/** True when `value` is a defined `XEN_PCI_OP_*` command (a guest may send any u32). */
export function isXenPciOpCmd(value: unknown): value is XenPciOpCmd {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 10;
}

/** The name of a command (`'conf_read'` for 0), or `undefined` for an unknown value. */
export function xenPciOpName(cmd: number): XenPciOpName | undefined {
  return isXenPciOpCmd(cmd) ? OP_NAMES[cmd] : undefined;
}

/**
 * `XEN_PCI_ERR_*` (pciif.h): result codes in `op.err`. Note that `err` is not limited to
 * these: several backend paths return raw negative Linux errnos (spec §1.1, §4.9).
 */
export const XEN_PCI_ERR = {
  success: 0,
  dev_not_found: -1,
  invalid_offset: -2,
  access_denied: -3,
  not_implemented: -4,
  /** "backend failed to complete the operation" */
  op_failed: -5,
} as const;

/** A defined `XEN_PCI_ERR_*` value. */
export type XenPciErr = (typeof XEN_PCI_ERR)[keyof typeof XEN_PCI_ERR];
/** The name of a `XEN_PCI_ERR_*` value without its prefix, e.g. `'access_denied'`. */
export type XenPciErrName = keyof typeof XEN_PCI_ERR;

/** True when `value` is one of the defined `XEN_PCI_ERR_*` codes. */
export function isXenPciErr(value: unknown): value is XenPciErr {
  return typeof value === 'number' && Number.isInteger(value) && value <= 0 && value >= -5;
}

/** The name of an error code (`'access_denied'` for -3), or `undefined`. */
export function xenPciErrName(err: number): XenPciErrName | undefined {
  if (!isXenPciErr(err)) return undefined;
  for (const [name, value] of Object.entries(XEN_PCI_ERR)) {
    if (value === err) return name as XenPciErrName;
  }
  return undefined;
}

/**
 * Linux `enum pci_channel_state` (`include/linux/pci.h`): what the backend puts in
 * `aer_op.err` when it asks the frontend about an error (`pci_channel_io_normal` ...).
 */
export const PCI_CHANNEL_IO = {
  normal: 1,
  frozen: 2,
  perm_failure: 3,
} as const;

/** A `pci_channel_state` value. */
export type PciChannelState = (typeof PCI_CHANNEL_IO)[keyof typeof PCI_CHANNEL_IO];

/** True when `value` is a `pci_channel_state` value. */
export function isPciChannelState(value: unknown): value is PciChannelState {
  return value === 1 || value === 2 || value === 3;
}

/**
 * Linux `enum pci_ers_result` (`include/linux/pci.h`): the frontend's answer in
 * `aer_op.err` (`PCI_ERS_RESULT_NONE` ...).
 */
export const PCI_ERS_RESULT = {
  NONE: 1,
  CAN_RECOVER: 2,
  NEED_RESET: 3,
  DISCONNECT: 4,
  RECOVERED: 5,
  NO_AER_DRIVER: 6,
} as const;

/** A `pci_ers_result` value. */
export type PciErsResult = (typeof PCI_ERS_RESULT)[keyof typeof PCI_ERS_RESULT];

/** True when `value` is a `pci_ers_result` value (the frontend may answer anything). */
export function isPciErsResult(value: unknown): value is PciErsResult {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 6;
}

// ---------------------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------------------

/** `sizeof(struct xen_msix_entry)`. */
export const XEN_MSIX_ENTRY_SIZE = 4;
/** `_Alignof(struct xen_msix_entry)`. */
export const XEN_MSIX_ENTRY_ALIGN = 2;
/** Byte offsets in `struct xen_msix_entry { uint16_t vector; uint16_t entry; }`. */
export const XEN_MSIX_ENTRY_OFFSET = {
  /** OUT: the pirq given to the vector, truncated to 16 bits. IN: ignored. */
  vector: 0,
  /** IN: index in the device's MSI-X table. */
  entry: 2,
} as const;
/** Byte sizes of the fields of `struct xen_msix_entry`. */
export const XEN_MSIX_ENTRY_FIELD_SIZE = { vector: 2, entry: 2 } as const;

/** `sizeof(struct xen_pci_op)` (0x224). */
export const XEN_PCI_OP_SIZE = 548;
/** `_Alignof(struct xen_pci_op)`. */
export const XEN_PCI_OP_ALIGN = 4;
/**
 * Byte offsets in `struct xen_pci_op` (pciif.h): `uint32_t cmd; int32_t err; uint32_t
 * domain, bus, devfn; int32_t offset, size; uint32_t value, info; struct xen_msix_entry
 * msix_entries[SH_INFO_MAX_VEC];`.
 */
export const XEN_PCI_OP_OFFSET = {
  cmd: 0,
  err: 4,
  domain: 8,
  bus: 12,
  devfn: 16,
  offset: 20,
  size: 24,
  value: 28,
  info: 32,
  msix_entries: 36,
} as const;
/** Byte sizes of the fields of `struct xen_pci_op`. */
export const XEN_PCI_OP_FIELD_SIZE = {
  cmd: 4,
  err: 4,
  domain: 4,
  bus: 4,
  devfn: 4,
  offset: 4,
  size: 4,
  value: 4,
  info: 4,
  msix_entries: SH_INFO_MAX_VEC * XEN_MSIX_ENTRY_SIZE,
} as const;

/** `sizeof(struct xen_pcie_aer_op)`. */
export const XEN_PCIE_AER_OP_SIZE = 20;
/** `_Alignof(struct xen_pcie_aer_op)`. */
export const XEN_PCIE_AER_OP_ALIGN = 4;
/**
 * Byte offsets in `struct xen_pcie_aer_op` (pciif.h): `uint32_t cmd; int32_t err;
 * uint32_t domain, bus, devfn;`. The address is the one the guest sees.
 */
export const XEN_PCIE_AER_OP_OFFSET = {
  cmd: 0,
  err: 4,
  domain: 8,
  bus: 12,
  devfn: 16,
} as const;
/** Byte sizes of the fields of `struct xen_pcie_aer_op`. */
export const XEN_PCIE_AER_OP_FIELD_SIZE = {
  cmd: 4,
  err: 4,
  domain: 4,
  bus: 4,
  devfn: 4,
} as const;

/** `sizeof(struct xen_pci_sharedinfo)` (0x23c); the struct sits at offset 0 of the page. */
export const XEN_PCI_SHAREDINFO_SIZE = 572;
/** `_Alignof(struct xen_pci_sharedinfo)`. */
export const XEN_PCI_SHAREDINFO_ALIGN = 4;
/**
 * Byte offsets in `struct xen_pci_sharedinfo` (pciif.h): `uint32_t flags; struct
 * xen_pci_op op; struct xen_pcie_aer_op aer_op;`.
 */
export const XEN_PCI_SHAREDINFO_OFFSET = {
  flags: 0,
  op: 4,
  aer_op: 4 + XEN_PCI_OP_SIZE,
} as const;
/** Byte sizes of the fields of `struct xen_pci_sharedinfo`. */
export const XEN_PCI_SHAREDINFO_FIELD_SIZE = {
  flags: 4,
  op: XEN_PCI_OP_SIZE,
  aer_op: XEN_PCIE_AER_OP_SIZE,
} as const;

/**
 * Index of `flags` in an `Int32Array` laid over the shared page from its first byte: the
 * word to use with `Atomics.or`/`Atomics.and`/`Atomics.load` (Linux uses locked bit ops
 * on the same word).
 */
export const XEN_PCI_SHAREDINFO_FLAGS_WORD = XEN_PCI_SHAREDINFO_OFFSET.flags / 4;

// ---------------------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------------------

/** One decoded `struct xen_msix_entry`. */
export interface XenMsixEntry {
  /** u16: pirq returned by the backend (OUT). */
  readonly vector: number;
  /** u16: MSI-X table index asked for by the frontend (IN). */
  readonly entry: number;
}

/**
 * A decoded `struct xen_pci_op`. Every field is as found on the wire: nothing here is
 * validated, because it comes from the guest.
 */
export interface PciOp {
  /** u32: `XEN_PCI_OP_*`, or any other value a guest sends. */
  readonly cmd: number;
  /** s32: result code (OUT). */
  readonly err: number;
  /** u32: PCI segment as the guest sees it. */
  readonly domain: number;
  /** u32 */
  readonly bus: number;
  /** u32 */
  readonly devfn: number;
  /** s32: config-space offset; negative values are possible and must be handled. */
  readonly offset: number;
  /** s32: access size of config ops. */
  readonly size: number;
  /** u32: value read or to write, nvec, returned pirq. */
  readonly value: number;
  /** u32: extra information (nvec of `enable_multi_msi` in Xen's header). */
  readonly info: number;
  /** All {@link SH_INFO_MAX_VEC} entries. */
  readonly msixEntries: readonly XenMsixEntry[];
}

/** What {@link encodePciOp} accepts: a {@link PciOp}, with fewer MSI-X entries allowed. */
export interface PciOpInit {
  readonly cmd: number;
  readonly err?: number;
  readonly domain: number;
  readonly bus: number;
  readonly devfn: number;
  readonly offset?: number;
  readonly size?: number;
  readonly value?: number;
  readonly info?: number;
  /** Written from index 0; the remaining entries are zeroed. At most 128. */
  readonly msixEntries?: readonly XenMsixEntry[];
}

/** A decoded `struct xen_pcie_aer_op`. */
export interface PcieAerOp {
  /** u32: `XEN_PCI_OP_aer_*`. */
  readonly cmd: number;
  /** s32: `pci_channel_state` to the frontend, `pci_ers_result` back. */
  readonly err: number;
  /** u32 */
  readonly domain: number;
  /** u32 */
  readonly bus: number;
  /** u32 */
  readonly devfn: number;
}

/** The part of an op the backend writes back (XSA-155, spec §1.3). */
export interface PciOpResult {
  /** s32 */
  readonly err: number;
  /** u32 */
  readonly value: number;
  /**
   * For a successful `enable_msix` only: the pirqs of the first `n` entries, `n` being the
   * request's original `value` (not the result's: that was the XSA-155 follow-up bug).
   */
  readonly msixVectors?: readonly number[];
}

const LE = true;

function checkRange(view: DataView, byteOffset: number, size: number, what: string): void {
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset + size > view.byteLength) {
    throw new RangeError(
      `Cannot access ${what} at byte ${byteOffset}: it needs ${size} bytes and the view has ${view.byteLength}`,
    );
  }
}

function checkU32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Cannot encode ${field} ${value}: it must be a u32 (0-0xffffffff)`);
  }
  return value;
}

function checkS32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new RangeError(`Cannot encode ${field} ${value}: it must be an s32`);
  }
  return value;
}

function checkU16(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new RangeError(`Cannot encode ${field} ${value}: it must be a u16 (0-0xffff)`);
  }
  return value;
}

/**
 * Decode a `struct xen_pci_op` at `byteOffset` of `view` into a frozen plain object (the
 * object and its `msixEntries` array are frozen; the entries are readonly by type only).
 *
 * Do not call this on the shared page itself: the guest can change it between two field
 * reads. The backend uses {@link snapshotPciOp}.
 */
export function decodePciOp(view: DataView, byteOffset: number): PciOp {
  checkRange(view, byteOffset, XEN_PCI_OP_SIZE, 'struct xen_pci_op');
  const o = XEN_PCI_OP_OFFSET;
  return Object.freeze({
    cmd: view.getUint32(byteOffset + o.cmd, LE),
    err: view.getInt32(byteOffset + o.err, LE),
    domain: view.getUint32(byteOffset + o.domain, LE),
    bus: view.getUint32(byteOffset + o.bus, LE),
    devfn: view.getUint32(byteOffset + o.devfn, LE),
    offset: view.getInt32(byteOffset + o.offset, LE),
    size: view.getInt32(byteOffset + o.size, LE),
    value: view.getUint32(byteOffset + o.value, LE),
    info: view.getUint32(byteOffset + o.info, LE),
    msixEntries: decodeMsixEntries(view, byteOffset + o.msix_entries),
  });
}

/** One all-zero entry, shared by {@link ZERO_MSIX_ENTRIES}. */
const ZERO_MSIX_ENTRY: XenMsixEntry = Object.freeze({ vector: 0, entry: 0 });

/**
 * The entries of an op whose `msix_entries` are all zero: every op but `enable_msix`
 * (Linux's pcifront builds the others with `struct xen_pci_op op = {...}`). Frozen and
 * shared, so decoding such an op allocates no entry objects.
 */
const ZERO_MSIX_ENTRIES: readonly XenMsixEntry[] = Object.freeze(
  new Array<XenMsixEntry>(SH_INFO_MAX_VEC).fill(ZERO_MSIX_ENTRY),
);

/** The frozen array of {@link SH_INFO_MAX_VEC} entries at `byteOffset` (range checked). */
function decodeMsixEntries(view: DataView, byteOffset: number): readonly XenMsixEntry[] {
  // Building 128 objects costs microseconds on the path of every config read, on both
  // sides; a scan of the 128 words is a fraction of that, and the common all-zero case
  // then shares one frozen array (equal by value to what the loop below would build).
  const end = byteOffset + SH_INFO_MAX_VEC * XEN_MSIX_ENTRY_SIZE;
  let at = byteOffset;
  while (at < end && view.getUint32(at, LE) === 0) at += XEN_MSIX_ENTRY_SIZE;
  if (at === end) return ZERO_MSIX_ENTRIES;
  const entries = new Array<XenMsixEntry>(SH_INFO_MAX_VEC);
  at = byteOffset;
  for (let i = 0; i < SH_INFO_MAX_VEC; i++, at += XEN_MSIX_ENTRY_SIZE) {
    // The entries are readonly by type but not frozen one by one: 128 Object.freeze calls
    // cost about 6 us per op on Node 20, ten times the rest of the decode. The array is.
    entries[i] = {
      vector: view.getUint16(at + XEN_MSIX_ENTRY_OFFSET.vector, LE),
      entry: view.getUint16(at + XEN_MSIX_ENTRY_OFFSET.entry, LE),
    };
  }
  return Object.freeze(entries);
}

/**
 * Encode a whole `struct xen_pci_op` (all 548 bytes) at `byteOffset`, as the frontend
 * does before it sets `XEN_PCIF_active`. Omitted fields and MSI-X entries are written as 0.
 *
 * @throws RangeError when a field does not fit its C type or the view is too small.
 */
export function encodePciOp(view: DataView, byteOffset: number, op: PciOpInit): void {
  checkRange(view, byteOffset, XEN_PCI_OP_SIZE, 'struct xen_pci_op');
  const entries = op.msixEntries ?? [];
  if (entries.length > SH_INFO_MAX_VEC) {
    throw new RangeError(
      `Cannot encode ${entries.length} MSI-X entries: struct xen_pci_op holds ${SH_INFO_MAX_VEC}`,
    );
  }
  const o = XEN_PCI_OP_OFFSET;
  // Check everything before the first write so a bad argument leaves the view untouched.
  const cmd = checkU32(op.cmd, 'cmd');
  const err = checkS32(op.err ?? 0, 'err');
  const domain = checkU32(op.domain, 'domain');
  const bus = checkU32(op.bus, 'bus');
  const devfn = checkU32(op.devfn, 'devfn');
  const offset = checkS32(op.offset ?? 0, 'offset');
  const size = checkS32(op.size ?? 0, 'size');
  const value = checkU32(op.value ?? 0, 'value');
  const info = checkU32(op.info ?? 0, 'info');
  entries.forEach((e, i) => {
    checkU16(e.vector, `msix_entries[${i}].vector`);
    checkU16(e.entry, `msix_entries[${i}].entry`);
  });
  view.setUint32(byteOffset + o.cmd, cmd, LE);
  view.setInt32(byteOffset + o.err, err, LE);
  view.setUint32(byteOffset + o.domain, domain, LE);
  view.setUint32(byteOffset + o.bus, bus, LE);
  view.setUint32(byteOffset + o.devfn, devfn, LE);
  view.setInt32(byteOffset + o.offset, offset, LE);
  view.setInt32(byteOffset + o.size, size, LE);
  view.setUint32(byteOffset + o.value, value, LE);
  view.setUint32(byteOffset + o.info, info, LE);
  let at = byteOffset + o.msix_entries;
  for (let i = 0; i < SH_INFO_MAX_VEC; i++, at += XEN_MSIX_ENTRY_SIZE) {
    const e = entries[i];
    view.setUint16(at + XEN_MSIX_ENTRY_OFFSET.vector, e?.vector ?? 0, LE);
    view.setUint16(at + XEN_MSIX_ENTRY_OFFSET.entry, e?.entry ?? 0, LE);
  }
}

/**
 * Take the backend's private copy of the op in the shared page and decode it.
 *
 * XSA-155 (CVE-2015-8550): the guest can rewrite the shared page at any moment, so
 * reading a field twice (once to check, once to use) lets it change `cmd` or the MSI-X
 * count in between. The 548 bytes are therefore copied exactly once, with
 * `Uint8Array.prototype.slice` (a copy into a fresh, unshared buffer), and every field is
 * decoded from that copy. Nothing later reads the op from the page again.
 *
 * @param page the mapped shared page (may be backed by a SharedArrayBuffer)
 * @param pageOffset byte offset of `op` in `page`, normally
 *   `XEN_PCI_SHAREDINFO_OFFSET.op` (4)
 * @throws RangeError when the op does not fit in `page` (a programming error)
 *
 * @example
 * const op = snapshotPciOp(page, XEN_PCI_SHAREDINFO_OFFSET.op);
 * if (op.cmd === XEN_PCI_OP.conf_read) { ... }
 */
export function snapshotPciOp(page: Uint8Array, pageOffset: number): PciOp {
  if (
    !Number.isInteger(pageOffset) ||
    pageOffset < 0 ||
    pageOffset + XEN_PCI_OP_SIZE > page.length
  ) {
    throw new RangeError(
      `Cannot snapshot struct xen_pci_op at byte ${pageOffset}: the page has ${page.length} bytes`,
    );
  }
  const copy = page.slice(pageOffset, pageOffset + XEN_PCI_OP_SIZE);
  return decodePciOp(new DataView(copy.buffer, copy.byteOffset, copy.byteLength), 0);
}

/**
 * Write the backend's answer into the op at `byteOffset` (normally on the shared page):
 * `err`, `value`, and for a successful `enable_msix` the `vector` of the first
 * `msixVectors.length` entries. It never writes `cmd`, the address, `offset`, `size`,
 * `info` or any `entry` (spec §1.3, the write-back rule of the XSA-155 fix).
 *
 * @throws RangeError when a value does not fit its field or more than 128 vectors are given.
 */
export function writePciOpResult(view: DataView, byteOffset: number, result: PciOpResult): void {
  checkRange(view, byteOffset, XEN_PCI_OP_SIZE, 'struct xen_pci_op');
  const err = checkS32(result.err, 'err');
  const value = checkU32(result.value, 'value');
  const vectors = result.msixVectors ?? [];
  if (vectors.length > SH_INFO_MAX_VEC) {
    throw new RangeError(
      `Cannot write ${vectors.length} MSI-X vectors: struct xen_pci_op holds ${SH_INFO_MAX_VEC}`,
    );
  }
  vectors.forEach((v, i) => checkU16(v, `msix_entries[${i}].vector`));
  view.setInt32(byteOffset + XEN_PCI_OP_OFFSET.err, err, LE);
  view.setUint32(byteOffset + XEN_PCI_OP_OFFSET.value, value, LE);
  let at = byteOffset + XEN_PCI_OP_OFFSET.msix_entries + XEN_MSIX_ENTRY_OFFSET.vector;
  for (const v of vectors) {
    view.setUint16(at, v, LE);
    at += XEN_MSIX_ENTRY_SIZE;
  }
}

/** Decode a `struct xen_pcie_aer_op` at `byteOffset` into a frozen plain object. */
export function decodePcieAerOp(view: DataView, byteOffset: number): PcieAerOp {
  checkRange(view, byteOffset, XEN_PCIE_AER_OP_SIZE, 'struct xen_pcie_aer_op');
  const o = XEN_PCIE_AER_OP_OFFSET;
  return Object.freeze({
    cmd: view.getUint32(byteOffset + o.cmd, LE),
    err: view.getInt32(byteOffset + o.err, LE),
    domain: view.getUint32(byteOffset + o.domain, LE),
    bus: view.getUint32(byteOffset + o.bus, LE),
    devfn: view.getUint32(byteOffset + o.devfn, LE),
  });
}

/**
 * Encode a `struct xen_pcie_aer_op` at `byteOffset` (the backend posting an AER request).
 *
 * @throws RangeError when a field does not fit its C type or the view is too small.
 */
export function encodePcieAerOp(view: DataView, byteOffset: number, op: PcieAerOp): void {
  checkRange(view, byteOffset, XEN_PCIE_AER_OP_SIZE, 'struct xen_pcie_aer_op');
  const o = XEN_PCIE_AER_OP_OFFSET;
  const cmd = checkU32(op.cmd, 'cmd');
  const err = checkS32(op.err, 'err');
  const domain = checkU32(op.domain, 'domain');
  const bus = checkU32(op.bus, 'bus');
  const devfn = checkU32(op.devfn, 'devfn');
  view.setUint32(byteOffset + o.cmd, cmd, LE);
  view.setInt32(byteOffset + o.err, err, LE);
  view.setUint32(byteOffset + o.domain, domain, LE);
  view.setUint32(byteOffset + o.bus, bus, LE);
  view.setUint32(byteOffset + o.devfn, devfn, LE);
}

/**
 * Copy the `aer_op` out of the shared page once and decode it (the frontend owns the page
 * too, so the same single-fetch rule as {@link snapshotPciOp} applies).
 *
 * @param pageOffset normally `XEN_PCI_SHAREDINFO_OFFSET.aer_op` (552)
 */
export function snapshotPcieAerOp(page: Uint8Array, pageOffset: number): PcieAerOp {
  if (
    !Number.isInteger(pageOffset) ||
    pageOffset < 0 ||
    pageOffset + XEN_PCIE_AER_OP_SIZE > page.length
  ) {
    throw new RangeError(
      `Cannot snapshot struct xen_pcie_aer_op at byte ${pageOffset}: the page has ${page.length} bytes`,
    );
  }
  const copy = page.slice(pageOffset, pageOffset + XEN_PCIE_AER_OP_SIZE);
  return decodePcieAerOp(new DataView(copy.buffer, copy.byteOffset, copy.byteLength), 0);
}
