// SPDX-License-Identifier: MIT
/**
 * An `lspci -vnn`-like listing of what the guest enumerated. Small name tables only (no
 * PCI ID database): devices print as `Device VVVV:DDDD`, classes and capabilities by
 * their standard names.
 */
import {
  PCI_CAP_ID,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_EXP_FLAGS_TYPE_MASK,
  PCI_EXP_FLAGS_VERS_MASK,
  PCI_EXT_CAP_ID,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_PM_CAP_VER_MASK,
} from '../abi/pci-regs.js';
import type { GuestCapability, GuestExtCapability, GuestPciDevice } from './enumerate.js';

/** Sub-class names by `class >> 8` (base class and sub-class), as pci.ids spells them. */
const SUBCLASS_NAMES: ReadonlyMap<number, string> = new Map([
  [0x0000, 'Non-VGA unclassified device'],
  [0x0001, 'VGA compatible unclassified device'],
  [0x0100, 'SCSI storage controller'],
  [0x0101, 'IDE interface'],
  [0x0104, 'RAID bus controller'],
  [0x0106, 'SATA controller'],
  [0x0107, 'Serial Attached SCSI controller'],
  [0x0108, 'Non-Volatile memory controller'],
  [0x0180, 'Mass storage controller'],
  [0x0200, 'Ethernet controller'],
  [0x0280, 'Network controller'],
  [0x0300, 'VGA compatible controller'],
  [0x0302, '3D controller'],
  [0x0380, 'Display controller'],
  [0x0401, 'Multimedia audio controller'],
  [0x0403, 'Audio device'],
  [0x0600, 'Host bridge'],
  [0x0601, 'ISA bridge'],
  [0x0604, 'PCI bridge'],
  [0x0680, 'Bridge'],
  [0x0880, 'System peripheral'],
  [0x0c03, 'USB controller'],
  [0x0c05, 'SMBus'],
  [0x1180, 'Signal processing controller'],
]);

/** Base class names, for sub-classes not in the table above. */
const CLASS_NAMES: readonly string[] = [
  'Unclassified device',
  'Mass storage controller',
  'Network controller',
  'Display controller',
  'Multimedia controller',
  'Memory controller',
  'Bridge',
  'Communication controller',
  'Generic system peripheral',
  'Input device controller',
  'Docking station',
  'Processor',
  'Serial bus controller',
  'Wireless controller',
  'Intelligent controller',
  'Satellite communications controller',
  'Encryption controller',
  'Signal processing controller',
  'Processing accelerators',
];

/** Name of a 24-bit class code's class, e.g. `'Ethernet controller'` for 0x020000. */
export function className(classCode: number): string {
  const sub = (classCode >>> 8) & 0xffff;
  return SUBCLASS_NAMES.get(sub) ?? CLASS_NAMES[sub >>> 8] ?? `Class ${hex(sub, 4)}`;
}

const PCIE_TYPES: ReadonlyMap<number, string> = new Map([
  [0x0, 'Endpoint'],
  [0x1, 'Legacy Endpoint'],
  [0x4, 'Root Port'],
  [0x5, 'Upstream Port'],
  [0x6, 'Downstream Port'],
  [0x7, 'PCI-Express to PCI/PCI-X Bridge'],
  [0x8, 'PCI/PCI-X to PCI-Express Bridge'],
  [0x9, 'Root Complex Integrated Endpoint'],
  [0xa, 'Root Complex Event Collector'],
]);

const STD_CAP_NAMES: ReadonlyMap<number, string> = new Map([
  [PCI_CAP_ID.AGP, 'AGP'],
  [PCI_CAP_ID.VPD, 'Vital Product Data'],
  [PCI_CAP_ID.SLOTID, 'Slot ID'],
  [PCI_CAP_ID.CHSWP, 'CompactPCI hot-swap'],
  [PCI_CAP_ID.PCIX, 'PCI-X'],
  [PCI_CAP_ID.HT, 'HyperTransport'],
  [PCI_CAP_ID.VNDR, 'Vendor Specific Information'],
  [PCI_CAP_ID.DBG, 'Debug port'],
  [PCI_CAP_ID.SHPC, 'PCI Standard Hot-Plug Controller'],
  [PCI_CAP_ID.SSVID, 'Subsystem'],
  [PCI_CAP_ID.SECDEV, 'Secure device'],
  [PCI_CAP_ID.SATA, 'SATA HBA'],
  [PCI_CAP_ID.AF, 'PCI Advanced Features'],
  [PCI_CAP_ID.EA, 'Enhanced Allocation (EA)'],
]);

const EXT_CAP_NAMES: ReadonlyMap<number, string> = new Map([
  [PCI_EXT_CAP_ID.ERR, 'Advanced Error Reporting'],
  [PCI_EXT_CAP_ID.VC, 'Virtual Channel'],
  [PCI_EXT_CAP_ID.DSN, 'Device Serial Number'],
  [PCI_EXT_CAP_ID.PWR, 'Power Budgeting'],
  [PCI_EXT_CAP_ID.RCLD, 'Root Complex Link'],
  [PCI_EXT_CAP_ID.VNDR, 'Vendor Specific Information'],
  [PCI_EXT_CAP_ID.ACS, 'Access Control Services'],
  [PCI_EXT_CAP_ID.ARI, 'Alternative Routing-ID Interpretation (ARI)'],
  [PCI_EXT_CAP_ID.ATS, 'Address Translation Service (ATS)'],
  [PCI_EXT_CAP_ID.SRIOV, 'Single Root I/O Virtualization (SR-IOV)'],
  [PCI_EXT_CAP_ID.MCAST, 'Multicast'],
  [PCI_EXT_CAP_ID.PRI, 'Page Request Interface (PRI)'],
  [PCI_EXT_CAP_ID.REBAR, 'Physical Resizable BAR'],
  [PCI_EXT_CAP_ID.TPH, 'Transaction Processing Hints'],
  [PCI_EXT_CAP_ID.LTR, 'Latency Tolerance Reporting'],
  [PCI_EXT_CAP_ID.SECPCI, 'Secondary PCI Express'],
  [PCI_EXT_CAP_ID.PASID, 'Process Address Space ID (PASID)'],
  [PCI_EXT_CAP_ID.DPC, 'Downstream Port Containment'],
  [PCI_EXT_CAP_ID.L1SS, 'L1 PM Substates'],
  [PCI_EXT_CAP_ID.PTM, 'Precision Time Measurement'],
  [PCI_EXT_CAP_ID.DVSEC, 'Designated Vendor-Specific'],
  [PCI_EXT_CAP_ID.DLF, 'Data Link Feature'],
  [PCI_EXT_CAP_ID.PL_16GT, 'Physical Layer 16.0 GT/s'],
  [PCI_EXT_CAP_ID.DOE, 'Data Object Exchange'],
]);

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

function flag(on: boolean): string {
  return on ? '+' : '-';
}

/** lspci's size notation: bytes below 1K, then K, M, G, T. */
export function formatSize(sizeBytes: number): string {
  const units = ['', 'K', 'M', 'G', 'T'];
  let size = sizeBytes;
  let unit = 0;
  while (size >= 1024 && size % 1024 === 0 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size}${units[unit] ?? ''}`;
}

/** The text after `Capabilities: [xx] ` for a standard capability. */
export function describeCapability(cap: GuestCapability): string {
  const control = cap.header >>> 16;
  switch (cap.id) {
    case PCI_CAP_ID.PM:
      return `Power Management version ${control & PCI_PM_CAP_VER_MASK}`;
    case PCI_CAP_ID.MSI: {
      const enabled = 1 << ((control & PCI_MSI_FLAGS_QSIZE) >> 4);
      const capable = 1 << ((control & PCI_MSI_FLAGS_QMASK) >> 1);
      return (
        `MSI: Enable${flag((control & PCI_MSI_FLAGS_ENABLE) !== 0)} Count=${enabled}/${capable} ` +
        `Maskable${flag((control & PCI_MSI_FLAGS_MASKBIT) !== 0)} ` +
        `64bit${flag((control & PCI_MSI_FLAGS_64BIT) !== 0)}`
      );
    }
    case PCI_CAP_ID.MSIX:
      return (
        `MSI-X: Enable${flag((control & PCI_MSIX_FLAGS_ENABLE) !== 0)} ` +
        `Count=${(control & PCI_MSIX_FLAGS_QSIZE) + 1} ` +
        `Masked${flag((control & PCI_MSIX_FLAGS_MASKALL) !== 0)}`
      );
    case PCI_CAP_ID.EXP: {
      const type = (control & PCI_EXP_FLAGS_TYPE_MASK) >> 4;
      const name = PCIE_TYPES.get(type) ?? `Unknown type ${type}`;
      return `Express (v${control & PCI_EXP_FLAGS_VERS_MASK}) ${name}, MSI ${hex((control >> 9) & 0x1f, 2)}`;
    }
    default:
      return STD_CAP_NAMES.get(cap.id) ?? `#${hex(cap.id, 2)}`;
  }
}

/** The text after `Capabilities: [xxx vN] ` for an extended capability. */
export function describeExtendedCapability(cap: GuestExtCapability): string {
  return EXT_CAP_NAMES.get(cap.id) ?? `Extended Capability ID ${hex(cap.id, 4)}`;
}

const PINS = ['', 'A', 'B', 'C', 'D'];

/** The short address lspci prints: `BB:SS.F`, with the domain only when it is not 0. */
function shortAddress(d: GuestPciDevice): string {
  const tail = `${hex(d.bus, 2)}:${hex(d.devfn >> 3, 2)}.${d.devfn & 7}`;
  return d.domain === 0 ? tail : `${hex(d.domain, 4)}:${tail}`;
}

/**
 * Formats one device in an `lspci -vnn`-like way.
 *
 * @example
 * formatDevice(nic).split('\n')[0];
 * // '00:00.0 Ethernet controller [0200]: Device 8086:10fb (rev 01)'
 */
export function formatDevice(d: GuestPciDevice): string {
  const sub = d.classCode >>> 8;
  const progIf = d.classCode & 0xff;
  let head =
    `${shortAddress(d)} ${className(d.classCode)} [${hex(sub, 4)}]: ` +
    `Device ${hex(d.vendorId, 4)}:${hex(d.deviceId, 4)}`;
  if (d.revision !== 0) head += ` (rev ${hex(d.revision, 2)})`;
  if (progIf !== 0) head += ` (prog-if ${hex(progIf, 2)})`;
  const lines = [head];
  if (d.subsystemVendorId !== undefined && d.subsystemId !== undefined) {
    if (d.subsystemVendorId !== 0 || d.subsystemId !== 0) {
      lines.push(`\tSubsystem: Device ${hex(d.subsystemVendorId, 4)}:${hex(d.subsystemId, 4)}`);
    }
  }
  if (d.interruptPin !== 0) {
    const pin = PINS[d.interruptPin] ?? `?${d.interruptPin}`;
    lines.push(`\tInterrupt: pin ${pin} routed to IRQ ${d.interruptLine}`);
  }
  if (d.bridge !== undefined) {
    const b = d.bridge;
    lines.push(
      `\tBus: primary=${hex(b.primaryBus, 2)}, secondary=${hex(b.secondaryBus, 2)}, subordinate=${hex(b.subordinateBus, 2)}`,
    );
  }
  for (const bar of d.bars) {
    const at = bar.address === 0 ? '<unassigned>' : bar.address.toString(16);
    if (bar.kind === 'io') {
      const off = (d.command & PCI_COMMAND_IO) === 0 ? ' [disabled]' : '';
      lines.push(
        `\tRegion ${bar.index}: I/O ports at ${at}${off} [size=${formatSize(bar.sizeBytes)}]`,
      );
    } else {
      const width = bar.is64Bit ? '64-bit' : '32-bit';
      const pref = bar.prefetchable ? 'prefetchable' : 'non-prefetchable';
      const off = (d.command & PCI_COMMAND_MEMORY) === 0 ? ' [disabled]' : '';
      lines.push(
        `\tRegion ${bar.index}: Memory at ${at} (${width}, ${pref})${off} [size=${formatSize(bar.sizeBytes)}]`,
      );
    }
  }
  if (d.rom !== undefined) {
    const at = d.rom.address === 0 ? '<unassigned>' : d.rom.address.toString(16);
    const off = d.rom.enabled ? '' : ' [disabled]';
    lines.push(`\tExpansion ROM at ${at}${off} [size=${formatSize(d.rom.sizeBytes)}]`);
  }
  for (const cap of d.capabilities) {
    lines.push(`\tCapabilities: [${hex(cap.byteOffset, 2)}] ${describeCapability(cap)}`);
  }
  for (const cap of d.extendedCapabilities) {
    lines.push(
      `\tCapabilities: [${hex(cap.byteOffset, 3)} v${cap.version}] ${describeExtendedCapability(cap)}`,
    );
  }
  return lines.join('\n');
}

/** Formats every device, one blank line between devices (as `lspci -v`). */
export function formatListing(devices: readonly GuestPciDevice[]): string {
  return devices.map(formatDevice).join('\n\n') + (devices.length > 0 ? '\n' : '');
}
