// SPDX-License-Identifier: MIT
/**
 * Our layouts and constants in the exact shape of `oracles/xen-abi.json` (same keys, same
 * nesting, same key order), so `pciback abi --json` can be diffed against what a program
 * compiled with Xen's headers printed. Everything is built from the constants in this
 * folder; nothing is read from the oracle.
 *
 * The oracle's probe also prints a "libxenstore runtime defaults" block (socket paths);
 * the checked-in oracle file does not contain it, and it is not a wire format, so it is
 * not reported here either.
 */
import {
  SH_INFO_MAX_VEC,
  XEN_MSIX_ENTRY_ALIGN,
  XEN_MSIX_ENTRY_FIELD_SIZE,
  XEN_MSIX_ENTRY_OFFSET,
  XEN_MSIX_ENTRY_SIZE,
  XEN_PCIE_AER_OP_ALIGN,
  XEN_PCIE_AER_OP_FIELD_SIZE,
  XEN_PCIE_AER_OP_OFFSET,
  XEN_PCIE_AER_OP_SIZE,
  XEN_PCI_ERR,
  XEN_PCI_FLAG_MASK,
  XEN_PCI_FLAG_NR,
  XEN_PCI_MAGIC,
  XEN_PCI_OP,
  XEN_PCI_OP_ALIGN,
  XEN_PCI_OP_FIELD_SIZE,
  XEN_PCI_OP_OFFSET,
  XEN_PCI_OP_SIZE,
  XEN_PCI_SHAREDINFO_ALIGN,
  XEN_PCI_SHAREDINFO_FIELD_SIZE,
  XEN_PCI_SHAREDINFO_OFFSET,
  XEN_PCI_SHAREDINFO_SIZE,
} from './pciif.js';
import { XENBUS_STATE } from './xenbus-state.js';
import {
  XBT_NULL,
  XENSTORE_ABS_PATH_MAX,
  XENSTORE_CONNECTION,
  XENSTORE_DOMAIN_INTERFACE_ALIGN,
  XENSTORE_DOMAIN_INTERFACE_FIELD_SIZE,
  XENSTORE_DOMAIN_INTERFACE_OFFSET,
  XENSTORE_DOMAIN_INTERFACE_SIZE,
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
} from './xs-wire.js';

/** Where a field sits in its struct, as the probe prints it (`offsetof`, `sizeof`). */
export interface AbiFieldLayout {
  readonly offset: number;
  readonly size: number;
}

/** One entry of a section: a field layout, a number or a string constant. */
export type AbiReportValue = AbiFieldLayout | number | string;

/** One section of the report (a struct, an enum or a group of constants). */
export type AbiReportSection = Readonly<Record<string, AbiReportValue>>;

/** The whole report: section name to section, in the oracle's order. */
export type AbiReport = Readonly<Record<string, AbiReportSection>>;

function field(offset: number, size: number): AbiFieldLayout {
  return { offset, size };
}

function struct(
  sizeBytes: number,
  align: number,
  offsets: Readonly<Record<string, number>>,
  sizes: Readonly<Record<string, number>>,
): Record<string, AbiReportValue> {
  return { __sizeof__: sizeBytes, __alignof__: align, ...fields(offsets, sizes) };
}

function fields(
  offsets: Readonly<Record<string, number>>,
  sizes: Readonly<Record<string, number>>,
  prefix = '',
  base = 0,
): Record<string, AbiFieldLayout> {
  const out: Record<string, AbiFieldLayout> = {};
  for (const [name, offset] of Object.entries(offsets)) {
    const size = sizes[name];
    if (size === undefined) throw new TypeError(`Missing the size of field "${name}"`);
    out[prefix + name] = field(base + offset, size);
  }
  return out;
}

function prefixed(
  prefix: string,
  values: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(values)) out[prefix + name] = value;
  return out;
}

/**
 * Build the ABI report: every struct size, alignment, field offset and size, and every
 * constant, under the oracle's section and key names.
 *
 * @example
 * const report = abiReport();
 * report['struct xen_pci_op']?.['__sizeof__']; // 548
 */
export function abiReport(): AbiReport {
  const sharedinfo: Record<string, AbiReportValue> = {
    __sizeof__: XEN_PCI_SHAREDINFO_SIZE,
    __alignof__: XEN_PCI_SHAREDINFO_ALIGN,
    flags: field(XEN_PCI_SHAREDINFO_OFFSET.flags, XEN_PCI_SHAREDINFO_FIELD_SIZE.flags),
    op: field(XEN_PCI_SHAREDINFO_OFFSET.op, XEN_PCI_SHAREDINFO_FIELD_SIZE.op),
    ...fields(XEN_PCI_OP_OFFSET, XEN_PCI_OP_FIELD_SIZE, 'op.', XEN_PCI_SHAREDINFO_OFFSET.op),
    aer_op: field(XEN_PCI_SHAREDINFO_OFFSET.aer_op, XEN_PCI_SHAREDINFO_FIELD_SIZE.aer_op),
    ...fields(
      XEN_PCIE_AER_OP_OFFSET,
      XEN_PCIE_AER_OP_FIELD_SIZE,
      'aer_op.',
      XEN_PCI_SHAREDINFO_OFFSET.aer_op,
    ),
  };

  const msixEntry = (index: number): AbiFieldLayout =>
    field(XEN_PCI_OP_OFFSET.msix_entries + index * XEN_MSIX_ENTRY_SIZE, XEN_MSIX_ENTRY_SIZE);

  const pciifConstants: Record<string, number | string> = {
    XEN_PCI_MAGIC,
    _XEN_PCIF_active: XEN_PCI_FLAG_NR.PCIF_active,
    XEN_PCIF_active: XEN_PCI_FLAG_MASK.PCIF_active,
    _XEN_PCIB_AERHANDLER: XEN_PCI_FLAG_NR.PCIB_AERHANDLER,
    XEN_PCIB_AERHANDLER: XEN_PCI_FLAG_MASK.PCIB_AERHANDLER,
    _XEN_PCIB_active: XEN_PCI_FLAG_NR.PCIB_active,
    XEN_PCIB_active: XEN_PCI_FLAG_MASK.PCIB_active,
    ...prefixed('XEN_PCI_OP_', XEN_PCI_OP),
    ...prefixed('XEN_PCI_ERR_', XEN_PCI_ERR),
    SH_INFO_MAX_VEC,
  };

  const errors: Record<string, number> = {};
  for (const e of XSD_ERRORS) errors[e.name] = e.errnum;

  return {
    'struct xen_msix_entry': struct(
      XEN_MSIX_ENTRY_SIZE,
      XEN_MSIX_ENTRY_ALIGN,
      XEN_MSIX_ENTRY_OFFSET,
      XEN_MSIX_ENTRY_FIELD_SIZE,
    ),
    'struct xen_pci_op': {
      ...struct(XEN_PCI_OP_SIZE, XEN_PCI_OP_ALIGN, XEN_PCI_OP_OFFSET, XEN_PCI_OP_FIELD_SIZE),
      'msix_entries[1]': msixEntry(1),
      'msix_entries[SH_INFO_MAX_VEC - 1]': msixEntry(SH_INFO_MAX_VEC - 1),
    },
    'struct xen_pcie_aer_op': struct(
      XEN_PCIE_AER_OP_SIZE,
      XEN_PCIE_AER_OP_ALIGN,
      XEN_PCIE_AER_OP_OFFSET,
      XEN_PCIE_AER_OP_FIELD_SIZE,
    ),
    'struct xen_pci_sharedinfo': sharedinfo,
    'pciif constants': pciifConstants,
    'struct xsd_sockmsg': struct(
      XSD_SOCKMSG_SIZE,
      XSD_SOCKMSG_ALIGN,
      XSD_SOCKMSG_OFFSET,
      XSD_SOCKMSG_FIELD_SIZE,
    ),
    'enum xsd_sockmsg_type': {
      __sizeof__: XSD_SOCKMSG_TYPE_SIZE,
      ...prefixed('XS_', XS_TYPE),
      XS_TYPE_COUNT,
      XS_INVALID,
    },
    'xsd_errors (index order = wire order; errnum = Linux errno)': errors,
    'xs_wire constants': {
      XS_WRITE_NONE,
      XS_WRITE_CREATE,
      XS_WRITE_CREATE_EXCL,
      XS_WATCH_PATH,
      XS_WATCH_TOKEN,
      XENSTORE_RING_SIZE,
      XENSTORE_PAYLOAD_MAX,
      XENSTORE_ABS_PATH_MAX,
      XENSTORE_REL_PATH_MAX,
      ...prefixed('XENSTORE_SERVER_FEATURE_', XENSTORE_SERVER_FEATURE),
      ...prefixed('XENSTORE_', XENSTORE_CONNECTION),
      ...prefixed('XENSTORE_ERROR_', XENSTORE_ERROR),
    },
    'struct xenstore_domain_interface': struct(
      XENSTORE_DOMAIN_INTERFACE_SIZE,
      XENSTORE_DOMAIN_INTERFACE_ALIGN,
      XENSTORE_DOMAIN_INTERFACE_OFFSET,
      XENSTORE_DOMAIN_INTERFACE_FIELD_SIZE,
    ),
    'enum xenbus_state': prefixed('XenbusState', XENBUS_STATE),
    'xenstore.h / xenstore_lib.h': {
      XBT_NULL,
      ...prefixed('XS_OPEN_', XS_OPEN),
      XS_UNWATCH_FILTER,
      ...prefixed('XS_PERM_', XS_PERM),
      ...struct(
        XS_PERMISSIONS_SIZE,
        XS_PERMISSIONS_ALIGN,
        XS_PERMISSIONS_OFFSET,
        XS_PERMISSIONS_FIELD_SIZE,
      ),
    },
  };
}
