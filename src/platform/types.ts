// SPDX-License-Identifier: MIT
/**
 * What the core receives from a platform (simulator, Linux sysfs, real Xen). The core
 * (`abi`, `pci`, `devices`, `pciback`, `pcifront`, `xenstore/protocol`, `toolstack`) only
 * sees these interfaces; `daemon/` and `cli/` choose an implementation.
 */
import type { PciAddress } from '../pci/address.js';
import type { PciResource } from '../pci/resource.js';

/** Access width of a configuration-space access. */
export type ConfigAccessSize = 1 | 2 | 4;

/** Result of a PCIBIOS-style config read: `err` is 0 or a negative errno. */
export interface ConfigReadResult {
  /** Zero-extended value; all-ones of the access size when the access failed. */
  readonly value: number;
  readonly err: number;
}

/** Linux power states settable through the PCI core (`pci_set_power_state`). */
export type PciPowerState = 0 | 1 | 2 | 3;

/**
 * One PCI function as a driver sees it through Linux's PCI core: config accessors,
 * the resource table and the core services pciback calls (spec §11 "PCI core" row).
 * Implemented by the simulator over simulated hardware and by the Linux platform
 * over sysfs.
 */
export interface HostPciDevice {
  readonly address: PciAddress;
  /** Vendor ID cached at enumeration (a VF reads 0xffff in hardware). */
  readonly vendorId: number;
  /** Device ID cached at enumeration. */
  readonly deviceId: number;
  /** Header type without the multi-function bit (0 or 1 for devices pciback takes). */
  readonly headerType: number;
  /** 256 for conventional PCI, 4096 for PCIe / PCI-X 2.0 devices. */
  readonly configSizeBytes: number;

  /**
   * Platform config read. Offsets beyond the config size or misaligned accesses
   * return `{ value: all-ones, err: -22 }` (EINVAL), like x86 Linux.
   */
  readConfig(byteOffset: number, sizeBytes: ConfigAccessSize): ConfigReadResult;
  /** Platform config write; returns 0 or a negative errno (-22 out of range). */
  writeConfig(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): number;

  /** Resource table: BARs 0..5 then the ROM at index 6 (`PCI_ROM_RESOURCE`). */
  resources(): readonly PciResource[];
  /** Current Linux IRQ number (`dev->irq`); the MSI IRQ while MSI is enabled. */
  irq(): number;

  /** True while the enable count is non-zero (`pci_is_enabled`). */
  isEnabled(): boolean;
  /**
   * `pci_enable_device`: increments the enable count; the first enable turns on I/O
   * and memory decode for the assigned resources and clears INTX_DISABLE when the
   * device has an interrupt pin and MSI/MSI-X are off. Returns 0 or a negative errno.
   */
  enableDevice(): number;
  /**
   * `pci_disable_device`: the last disable clears bus mastering; I/O and memory decode
   * stay on (spec §4.7, the XSA-120 follow-up).
   */
  disableDevice(): void;
  /** True when the kernel believes bus mastering is on (`dev->is_busmaster`). */
  isBusMaster(): boolean;
  /** `pci_set_master`: sets MASTER; raises a latency timer below 16 to 64 (x86). */
  setMaster(): void;
  /** `pci_clear_master`. */
  clearMaster(): void;
  /** `pci_set_mwi`: programs the cache line size and sets INVALIDATE; 0 or -errno. */
  setMwi(): number;
  /** `pci_clear_mwi`. */
  clearMwi(): void;
  /** `pci_intx`: clears (enable) or sets (disable) INTX_DISABLE. */
  intx(enable: boolean): void;
  /** `pci_set_power_state`; returns 0 or a negative errno. */
  setPowerState(state: PciPowerState): number;
}

/** Structured logger; pino's `Logger` satisfies it. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything (tests, quiet CLI commands). */
export const SILENT_LOGGER: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

// ---------------------------------------------------------------------------------------
// Xen hypervisor services: identities, grant tables, event channels, time
// (spec/pciback.md §11, spec/pciback-fixes.md P1). Implemented by `platform/sim/xen`
// today and by libxengnttab/libxenevtchn on a real dom0 later.
// ---------------------------------------------------------------------------------------

/** A Xen domain id (`domid_t`): 0 is dom0, ordinary guests are 1..0x7fef. */
export type DomId = number & { readonly __brand: 'DomId' };
/** A grant reference (`grant_ref_t`): an index into the granting domain's grant table. */
export type GrantRef = number & { readonly __brand: 'GrantRef' };
/** An event channel port (`evtchn_port_t`) in one domain's port space. */
export type EvtchnPort = number & { readonly __brand: 'EvtchnPort' };
/** A grant mapping handle (`grant_handle_t`): what `unmapGrantRef` takes back. */
export type GrantHandle = number & { readonly __brand: 'GrantHandle' };

/**
 * `DOMID_FIRST_RESERVED` (xen.h): ids from here up (DOMID_SELF, DOMID_IO, ...) never name
 * an ordinary domain.
 */
export const DOMID_FIRST_RESERVED = 0x7ff0;

/**
 * Brands `value` as a {@link DomId}.
 *
 * @throws {RangeError} when `value` is not an integer in 0..0x7fef.
 * @example
 * const backend = domId(0);
 */
export function domId(value: number): DomId {
  if (!Number.isInteger(value) || value < 0 || value >= DOMID_FIRST_RESERVED) {
    throw new RangeError(`Cannot use "${value}" as a domain id: it must be an integer in 0..32751`);
  }
  return value as DomId;
}

/** dom0: the control domain, where the toolstack and pciback run. */
export const DOM0: DomId = domId(0);

/**
 * Brands `value` as a {@link GrantRef}.
 *
 * @throws {RangeError} when `value` is not a uint32.
 */
export function grantRef(value: number): GrantRef {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Cannot use "${value}" as a grant reference: it must be a uint32`);
  }
  return value as GrantRef;
}

/**
 * Brands `value` as an {@link EvtchnPort}.
 *
 * @throws {RangeError} when `value` is not a uint32.
 */
export function evtchnPort(value: number): EvtchnPort {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Cannot use "${value}" as an event channel port: it must be a uint32`);
  }
  return value as EvtchnPort;
}

/**
 * `GNTST_*` (xen/include/public/grant_table.h, checked against Debian 12's libxen-dev
 * 4.17): status codes of grant table operations.
 */
export const GNTST = {
  /** `GNTST_okay`: normal return. */
  okay: 0,
  /** `GNTST_general_error`: entry not granted to the mapper, wrong type, r/o write-map, unstable. */
  general_error: -1,
  /** `GNTST_bad_domain`: the granting domain does not exist (or is dying). */
  bad_domain: -2,
  /** `GNTST_bad_gntref`: the reference is outside the granter's table. */
  bad_gntref: -3,
  /** `GNTST_bad_handle`: unmap of a handle that is not (or no longer) mapped. */
  bad_handle: -4,
  /** `GNTST_bad_virt_addr`: inappropriate virtual address to map. */
  bad_virt_addr: -5,
  /** `GNTST_bad_dev_addr`: inappropriate device address to unmap. */
  bad_dev_addr: -6,
  /** `GNTST_no_device_space`: out of space in the I/O MMU. */
  no_device_space: -7,
  /** `GNTST_permission_denied`: not enough privilege for the operation. */
  permission_denied: -8,
  /** `GNTST_bad_page`: the granted frame is not a page of the granting domain. */
  bad_page: -9,
  /** `GNTST_bad_copy_arg`: copy arguments cross a page boundary. */
  bad_copy_arg: -10,
  /** `GNTST_address_too_big`: transfer page address too large. */
  address_too_big: -11,
  /** `GNTST_eagain`: operation not done; try again. */
  eagain: -12,
  /** `GNTST_no_space`: out of space (handles etc.). */
  no_space: -13,
} as const;

/** One `GNTST_*` value. */
export type GntStatus = (typeof GNTST)[keyof typeof GNTST];

/** True when `value` is one of the `GNTST_*` codes. */
export function isGntStatus(value: unknown): value is GntStatus {
  return Number.isInteger(value) && (value as number) <= 0 && (value as number) >= -13;
}

/**
 * A foreign page mapped into the mapping domain (`gnttab_map_refs` / gntdev mmap).
 * The views stay usable after unmapping (JavaScript cannot revoke a view), so callers
 * must drop them at unmap, as a kernel drops its pointer.
 */
export interface GrantMapping {
  readonly handle: GrantHandle;
  /** The granting domain. */
  readonly domid: DomId;
  readonly ref: GrantRef;
  readonly readonly: boolean;
  /** The 4 KiB page. */
  readonly bytes: Uint8Array;
  /** The same page as 1024 int32 words, for `Atomics` on fields both sides flip (flags). */
  readonly words: Int32Array;
}

/** Result of a grant map: the mapping, or the `GNTST_*` status that refused it. */
export type GrantMapResult =
  | { readonly ok: true; readonly mapping: GrantMapping }
  | { readonly ok: false; readonly status: GntStatus };

/** The mapping side of grant tables (a backend's view of `GNTTABOP_map_grant_ref`). */
export interface GrantMapper {
  /**
   * Maps `(domid, ref)` into this domain. Never throws for bad input: a missing domain,
   * a ref out of range, an entry not granted to this domain, a write map of a
   * read-only grant, or a frame outside the granter's memory each give a status.
   */
  mapGrantRef(domid: DomId, ref: GrantRef, options?: { readonly?: boolean }): GrantMapResult;
  /** Unmaps one mapping; `GNTST.bad_handle` for an unknown or already unmapped handle. */
  unmapGrantRef(handle: GrantHandle): GntStatus;
}

/** `XEN_EOI_FLAG_*` (include/xen/events.h): flags of `xen_irq_lateeoi`. */
export const XEN_EOI_FLAG = {
  /** `XEN_EOI_FLAG_SPURIOUS`: the event found nothing to do; may delay the unmask. */
  SPURIOUS: 0x1,
} as const;

/**
 * Per xenbus device event statistics (`struct xenbus_device` fields shown in sysfs
 * `.../xenbus/`, spec-fixes P1). Owned by the xenbus device, shared by the channels
 * bound for it, and never reset while the device exists.
 */
export interface XenbusEventCounters {
  /** Interdomain channels currently bound for the device. */
  eventChannels: number;
  /** Events dispatched to the device's channels. */
  events: number;
  /** Spurious EOIs (delayed or not). */
  spuriousEvents: number;
  /** Sum of all EOI delays, in jiffies. */
  jiffiesEoiDelayed: number;
  /** Spurious EOIs tolerated before delaying; 0 means 1. Set to 1 at probe. */
  spuriousThreshold: number;
}

/** Fresh counters as `xenbus_dev_probe` leaves them (threshold 1). */
export function createXenbusEventCounters(): XenbusEventCounters {
  return {
    eventChannels: 0,
    events: 0,
    spuriousEvents: 0,
    jiffiesEoiDelayed: 0,
    spuriousThreshold: 1,
  };
}

/** A handler of events on a bound channel; runs on the backend's event loop. */
export type EventChannelHandler = (channel: BoundEventChannel) => void;

/** Options of {@link BackendEventChannels.bindInterdomain}. */
export interface BindInterdomainOptions {
  /**
   * Bind with late-EOI semantics (`bind_interdomain_evtchn_to_irqhandler_lateeoi`): the
   * channel stays masked after each event until `lateEoi()`.
   */
  lateEoi?: boolean;
  /** The xenbus device's counters (`dev` argument of the bind). */
  counters?: XenbusEventCounters;
}

/** Result of a bind: the channel, or a negative errno (-3 ESRCH, -22 EINVAL, -28 ENOSPC). */
export type EvtchnBindResult =
  | { readonly ok: true; readonly channel: BoundEventChannel }
  | { readonly ok: false; readonly errno: number };

/** A local port bound to a remote one, with its handler (a Linux evtchn IRQ). */
export interface BoundEventChannel {
  readonly localPort: EvtchnPort;
  readonly remoteDomid: DomId;
  readonly remotePort: EvtchnPort;
  /** True until `unbind()`. */
  readonly bound: boolean;
  /** True while the remote end is still connected to this port (not closed by the peer). */
  connected(): boolean;
  /** `notify_remote_via_irq`: a no-op once unbound or when the peer has closed. */
  notify(): void;
  /**
   * `xen_irq_lateeoi(irq, flags)` with {@link XEN_EOI_FLAG}: ends the event, unmasking
   * now or after a delay (spec-fixes P1). Ignored on a channel bound without late EOI,
   * once unbound, or while an EOI is already queued.
   */
  lateEoi(flags: number): void;
  /** `disable_irq`: adds the EXPLICIT mask reason. */
  mask(): void;
  /** `enable_irq`: removes the EXPLICIT mask reason; a pending event is then delivered. */
  unmask(): void;
  /** `unbind_from_irqhandler`: closes the port (the peer's end becomes unbound). */
  unbind(): void;
}

/** A domain's event channel service with handlers (dom0's `evtchn` + IRQ layer). */
export interface BackendEventChannels {
  readonly domid: DomId;
  /**
   * `EVTCHNOP_bind_interdomain` + IRQ binding: binds a new local port to the remote
   * domain's unbound port, which must have been allocated for this domain. Never throws
   * for bad ids: the errno says what was wrong.
   */
  bindInterdomain(
    remoteDomid: DomId,
    remotePort: EvtchnPort,
    handler: EventChannelHandler,
    options?: BindInterdomainOptions,
  ): EvtchnBindResult;
}

/**
 * What a guest kernel can do without the toolstack: its own memory, grants and event
 * channels (pcifront's hypercalls). Constructible inside a worker from plain
 * transferable data.
 */
export interface GuestHypercalls {
  readonly domid: DomId;
  /** Number of 4 KiB pages of guest memory. */
  readonly pageCount: number;
  /** Allocates a free page of guest memory (`alloc_page`). */
  allocPage(): number;
  /** Returns a page to the allocator. */
  freePage(pageIndex: number): void;
  /** The page as bytes. */
  pageBytes(pageIndex: number): Uint8Array;
  /** The page as int32 words (for `Atomics`). */
  pageWords(pageIndex: number): Int32Array;
  /** `gnttab_grant_foreign_access`: lets `domid` map the page; returns the new ref. */
  grantAccess(domid: DomId, pageIndex: number, options?: { readonly?: boolean }): GrantRef;
  /**
   * `gnttab_end_foreign_access_ref` + free: false (and nothing changes) while the
   * grantee still has the page mapped.
   */
  endForeignAccess(ref: GrantRef): boolean;
  /**
   * `EVTCHNOP_alloc_unbound`: a new local port that `remoteDomid` may bind. Synchronous:
   * the port table is guest memory shared with the hypervisor, as the hypercall is.
   */
  allocUnbound(remoteDomid: DomId): EvtchnPort;
  /** `EVTCHNOP_close` (also how a pirq binding is undone, as Linux's `shutdown_pirq` does). */
  closePort(port: EvtchnPort): void;
  /**
   * `EVTCHNOP_bind_pirq` (added with the simulator's interrupt plumbing): a new local
   * port that receives the domain's physical IRQ `pirq` (the number pcifront got back from
   * an MSI/MSI-X enable). Returns the port (> 0), or a negative errno: -22 (EINVAL) for a
   * bad pirq, -16 (EBUSY) when the pirq is already bound, -28 (ENOSPC) when no port is
   * free, -3 (ESRCH) when the domain is dying. Unbind with {@link closePort}.
   */
  bindPirq(pirq: number): number;
  /** `EVTCHNOP_send`: 0, or -22 (EINVAL) for a port that is not allocated. */
  notify(port: EvtchnPort): number;
  /**
   * `SCHEDOP_poll` on one port, then clear it: true when the port was (or became)
   * pending within `timeoutMs` (the pending bit is consumed), false on timeout or when
   * the domain is being destroyed.
   */
  waitForEvent(port: EvtchnPort, timeoutMs: number): boolean;
  /** `SCHEDOP_poll` without consuming: true when the port is pending (masked or not). */
  poll(port: EvtchnPort, timeoutMs: number): boolean;
  /**
   * Waits for an upcall and returns the pending unmasked ports, clearing their pending
   * bits (the guest's `xen_evtchn_do_upcall`); empty on timeout.
   */
  wait(timeoutMs: number): EvtchnPort[];
  /** Clears the port's pending bit (`clear_evtchn`). */
  clearPending(port: EvtchnPort): void;
  /** Masks the port (`mask_evtchn`). */
  mask(port: EvtchnPort): void;
  /** Unmasks the port; re-raises the upcall if it is pending (`unmask_evtchn`). */
  unmask(port: EvtchnPort): void;
}

/**
 * Kernel time in jiffies (`get_jiffies_64`) with one-shot timers (delayed work). HZ is a
 * parameter; tests use a manual clock and drive time by hand.
 */
export interface JiffiesClock {
  /** Ticks per second. */
  readonly hz: number;
  /** Current jiffies (a non-decreasing integer). */
  nowJiffies(): number;
  /** Runs `callback` once, `delayJiffies` (>= 0) from now; returns a cancel function. */
  setTimer(delayJiffies: number, callback: () => void): () => void;
}

// ---------------------------------------------------------------------------------------
// Interrupts as pciback uses them: Linux's MSI layer with Xen's pirq mapping, shared
// INTx lines, and the device-owner registry (spec §4.5, §4.6, §11 "MSI layer",
// "Device-owner registry", "Hypercalls").
// ---------------------------------------------------------------------------------------

/** Result of enabling MSI-X: per requested entry its Linux IRQ, or a negative errno. */
export type MsixEnableResult =
  | { readonly ok: true; readonly irqs: readonly number[] }
  | { readonly ok: false; readonly errno: number };

/**
 * The MSI layer of one device (`pci_enable_msi`, `pci_enable_msix_exact`, ...). On Xen
 * each vector is also mapped as a pirq into the device's registered owner domain
 * (`xen_register_device_domain_owner`), which is what the guest receives.
 */
export interface HostMsiControl {
  /** `dev->msi_enabled` (from the hardware's MSI enable bit). */
  msiEnabled(): boolean;
  /** `dev->msix_enabled`. */
  msixEnabled(): boolean;
  /**
   * `pci_enable_msi` / `pci_alloc_irq_vectors(nvec, nvec, PCI_IRQ_MSI)`: allocates `nvec`
   * vectors (a power of two within Multiple Message Capable), programs and enables MSI,
   * and makes `irq()` the first vector's IRQ. Returns 0 or a negative errno (-22 bad
   * nvec, -28 ENOSPC more than the device can do; Linux's `pci_msi_vec_count` gives -22
   * for a device without an MSI capability too, which the simulator follows).
   */
  enableMsi(nvec: number): number;
  /** `pci_disable_msi`: disables MSI and gives `irq()` back its legacy value. */
  disableMsi(): void;
  /** The Linux IRQs of the enabled MSI vectors (empty when MSI is off). */
  msiIrqs(): readonly number[];
  /**
   * `pci_enable_msix_exact`: validates the entry indices (in range of the table, no
   * duplicates: -22) and enables MSI-X with one IRQ per entry.
   */
  enableMsix(entries: readonly number[]): MsixEnableResult;
  /** `pci_disable_msix`. */
  disableMsix(): void;
  /**
   * `xen_pirq_from_irq`: the pirq an IRQ is mapped to in the owner domain's pirq space;
   * 0 when the IRQ has none.
   */
  pirqOfIrq(irq: number): number;
}

/** A handler on a shared interrupt line; returns true when it claimed the interrupt. */
export type IrqHandler = () => boolean;

/** Linux's IRQ layer for legacy (INTx) lines: level-triggered and shareable. */
export interface HostIrqLines {
  /**
   * `request_irq(irq, handler, IRQF_SHARED, name, cookie)`: 0, or a negative errno
   * (-22 for IRQ 0 or an unknown line, -16 EBUSY when a non-shared handler holds it).
   */
  requestSharedIrq(irq: number, name: string, handler: IrqHandler): number;
  /** `free_irq` of the handler registered under `name`. */
  freeIrq(irq: number, name: string): void;
  /**
   * `xen_test_irq_shared` inverted to read naturally: true when the line is shared with
   * other domains (so dom0 must keep acknowledging it).
   */
  isSharedWithOtherDomains(irq: number): boolean;
}

/** `xen_register_device_domain_owner` and friends. */
export interface DeviceOwnerRegistry {
  /** 0, or -17 (EEXIST) when the device already has an owner. */
  register(address: PciAddress, domid: DomId): number;
  /** The owner, or undefined. */
  find(address: PciAddress): DomId | undefined;
  /** 0, or -2 (ENOENT) when the device had no owner. */
  unregister(address: PciAddress): number;
}
