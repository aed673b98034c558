// SPDX-License-Identifier: MIT
/**
 * Constants of Xen's public headers that the simulated hypervisor needs, checked against
 * Debian 12's libxen-dev 4.17 (`xen/grant_table.h`, `xen/event_channel.h`, `xen/xen.h`)
 * and Linux's `include/xen/events.h`.
 */

/** `XEN_PAGE_SIZE`: grants and guest memory work in 4 KiB frames. */
export const XEN_PAGE_SIZE = 4096;

/**
 * `struct grant_entry_v1 { uint16_t flags; domid_t domid; uint32_t frame; }`
 * (grant_table.h): byte offsets and size. `flags` and `domid` share the first
 * little-endian 32-bit word, which is what Xen `cmpxchg`es when it pins an entry.
 */
export const GRANT_ENTRY_V1 = {
  FLAGS_OFFSET: 0,
  DOMID_OFFSET: 2,
  FRAME_OFFSET: 4,
  SIZE: 8,
} as const;

/** Grant entries in one 4 KiB grant-table frame (v1). */
export const GRANT_ENTRIES_PER_FRAME = XEN_PAGE_SIZE / GRANT_ENTRY_V1.SIZE;

/**
 * `GNTTAB_NR_RESERVED_ENTRIES` (grant_table.h): refs 0..7 are for the toolstack
 * (`GNTTAB_RESERVED_CONSOLE` 0, `GNTTAB_RESERVED_XENSTORE` 1); a guest never allocates
 * them.
 */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;

/**
 * `GTF_*` (grant_table.h): bits of `grant_entry_v1.flags`. Type in bits 0-1; the guest
 * sets `readonly`, Xen sets `reading`/`writing` while the entry is mapped.
 */
export const GTF = {
  /** `GTF_invalid`: grants nothing. */
  invalid: 0,
  /** `GTF_permit_access`: `domid` may map `frame`. */
  permit_access: 1 << 0,
  /** `GTF_accept_transfer`: `domid` may transfer a page into this slot. */
  accept_transfer: 2 << 0,
  /** `GTF_transitive`: access through another grant (no mapping). */
  transitive: 3 << 0,
  /** `GTF_type_mask`. */
  type_mask: 3 << 0,
  /** `GTF_readonly`: read-only mappings only. */
  readonly: 1 << 2,
  /** `GTF_reading`: mapped (for reading at least) by `domid`. */
  reading: 1 << 3,
  /** `GTF_writing`: mapped writable by `domid`. */
  writing: 1 << 4,
  /** `GTF_sub_page`: copy-only access to a subrange; never mappable. */
  sub_page: 1 << 8,
} as const;

/**
 * `xen_max_grant_frames` default of Xen 4.17 (`opt_max_grant_frames` = 64): 32768 v1
 * entries per domain.
 */
export const DEFAULT_MAX_GRANT_FRAMES = 64;

/** Negative errnos the event-channel hypercalls return (Linux/Xen numbering). */
export const EVTCHN_ERRNO = {
  /** `-ESRCH`: no such domain. */
  ESRCH: -3,
  /** `-EINVAL`: bad port, or the remote port is not unbound for us. */
  EINVAL: -22,
  /** `-ENOSPC`: no free port. */
  ENOSPC: -28,
} as const;

/**
 * Ports per domain. Xen 4.17's default `max_event_channels` for a domU is 1023 (ports
 * 1..1023; port 0 is never allocated), well inside the 2-level ABI's 4096.
 */
export const DEFAULT_MAX_PORTS = 1024;

/** Most ports the packed port-table entry can name (12 bits, the 2-level ABI limit). */
export const MAX_PORTS_LIMIT = 4096;
