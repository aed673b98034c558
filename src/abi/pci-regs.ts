// SPDX-License-Identifier: MIT
/**
 * PCI and PCIe configuration-space registers, from the PCI Local Bus 3.0, PCI-to-PCI
 * Bridge 1.2, PCI Power Management 1.2 and PCIe Base 6.0 specifications, with Linux's
 * names (`include/uapi/linux/pci_regs.h`) so the virtualizer reads like the original.
 *
 * Suffixes: `_OFFSET` is a byte offset (absolute in the header, relative to the
 * capability start for capability registers), `_SIZE` a size in bytes, `_MASK`/`_BIT`
 * values inside a register.
 */

/** Size of the conventional configuration space. */
export const PCI_CFG_SPACE_SIZE = 256;
/** Size of the PCIe extended configuration space (ECAM, 4 KiB per function). */
export const PCI_CFG_SPACE_EXP_SIZE = 4096;

// --- Common header (types 0 and 1) ---
export const PCI_VENDOR_ID_OFFSET = 0x00;
export const PCI_DEVICE_ID_OFFSET = 0x02;
export const PCI_COMMAND_OFFSET = 0x04;
export const PCI_STATUS_OFFSET = 0x06;
export const PCI_REVISION_ID_OFFSET = 0x08;
/** Programming interface, sub-class, base class: 3 bytes at 0x09..0x0b. */
export const PCI_CLASS_PROG_OFFSET = 0x09;
export const PCI_CLASS_DEVICE_OFFSET = 0x0a;
export const PCI_CACHE_LINE_SIZE_OFFSET = 0x0c;
export const PCI_LATENCY_TIMER_OFFSET = 0x0d;
export const PCI_HEADER_TYPE_OFFSET = 0x0e;
export const PCI_BIST_OFFSET = 0x0f;
export const PCI_BASE_ADDRESS_0_OFFSET = 0x10;
export const PCI_CAPABILITY_LIST_OFFSET = 0x34;
export const PCI_INTERRUPT_LINE_OFFSET = 0x3c;
export const PCI_INTERRUPT_PIN_OFFSET = 0x3d;

// --- Type 0 header ---
export const PCI_CARDBUS_CIS_OFFSET = 0x28;
export const PCI_SUBSYSTEM_VENDOR_ID_OFFSET = 0x2c;
export const PCI_SUBSYSTEM_ID_OFFSET = 0x2e;
export const PCI_ROM_ADDRESS_OFFSET = 0x30;
export const PCI_MIN_GNT_OFFSET = 0x3e;
export const PCI_MAX_LAT_OFFSET = 0x3f;
/** Number of BARs in a type-0 header. */
export const PCI_TYPE0_BAR_COUNT = 6;

// --- Type 1 header (PCI-to-PCI bridge) ---
export const PCI_PRIMARY_BUS_OFFSET = 0x18;
export const PCI_SECONDARY_BUS_OFFSET = 0x19;
export const PCI_SUBORDINATE_BUS_OFFSET = 0x1a;
export const PCI_SEC_LATENCY_TIMER_OFFSET = 0x1b;
export const PCI_IO_BASE_OFFSET = 0x1c;
export const PCI_IO_LIMIT_OFFSET = 0x1d;
export const PCI_SEC_STATUS_OFFSET = 0x1e;
export const PCI_MEMORY_BASE_OFFSET = 0x20;
export const PCI_MEMORY_LIMIT_OFFSET = 0x22;
export const PCI_PREF_MEMORY_BASE_OFFSET = 0x24;
export const PCI_PREF_MEMORY_LIMIT_OFFSET = 0x26;
export const PCI_PREF_BASE_UPPER32_OFFSET = 0x28;
export const PCI_PREF_LIMIT_UPPER32_OFFSET = 0x2c;
export const PCI_IO_BASE_UPPER16_OFFSET = 0x30;
export const PCI_IO_LIMIT_UPPER16_OFFSET = 0x32;
export const PCI_ROM_ADDRESS1_OFFSET = 0x38;
export const PCI_BRIDGE_CONTROL_OFFSET = 0x3e;
export const PCI_IO_RANGE_TYPE_MASK = 0x0f; // low nibble of I/O base/limit (RO)
export const PCI_IO_RANGE_TYPE_32 = 0x01; // the bridge decodes 32-bit I/O addresses
export const PCI_PREF_RANGE_TYPE_MASK = 0x0f; // low nibble of prefetchable base/limit (RO)
export const PCI_PREF_RANGE_TYPE_64 = 0x01; // the bridge decodes 64-bit prefetchable addresses
export const PCI_BRIDGE_CTL_PARITY = 0x0001; // parity error response on the secondary side
export const PCI_BRIDGE_CTL_SERR = 0x0002; // forward SERR# from the secondary side
export const PCI_BRIDGE_CTL_ISA = 0x0004; // ISA aliases of the I/O window are not forwarded
export const PCI_BRIDGE_CTL_VGA = 0x0008; // forward VGA memory and I/O ranges
export const PCI_BRIDGE_CTL_VGA_16 = 0x0010; // VGA I/O decode uses 16 address bits
export const PCI_BRIDGE_CTL_MASTER_ABORT = 0x0020; // report master aborts (hardwired 0 on PCIe)
export const PCI_BRIDGE_CTL_BUS_RESET = 0x0040; // hold the secondary bus in reset
export const PCI_BRIDGE_CTL_FAST_BACK = 0x0080; // fast back-to-back on secondary (0 on PCIe)
/** Number of BARs in a type-1 header. */
export const PCI_TYPE1_BAR_COUNT = 2;

// --- Type 2 header (CardBus bridge) ---
/** The capability pointer of a CardBus bridge (0x34 holds other registers there). */
export const PCI_CB_CAPABILITY_LIST_OFFSET = 0x14;

// --- Header type register ---
export const PCI_HEADER_TYPE_MASK = 0x7f;
/** Bit 7 of the header type: the device has more than one function. */
export const PCI_HEADER_TYPE_MULTIFUNCTION_BIT = 0x80;
export const PCI_HEADER_TYPE_NORMAL = 0;
export const PCI_HEADER_TYPE_BRIDGE = 1;
export const PCI_HEADER_TYPE_CARDBUS = 2;

// --- Command register bits ---
export const PCI_COMMAND_IO = 0x0001; // respond to I/O space accesses
export const PCI_COMMAND_MEMORY = 0x0002; // respond to memory space accesses
export const PCI_COMMAND_MASTER = 0x0004; // bus mastering (DMA, MSI writes)
export const PCI_COMMAND_SPECIAL = 0x0008; // special cycles
export const PCI_COMMAND_INVALIDATE = 0x0010; // memory write and invalidate
export const PCI_COMMAND_VGA_PALETTE = 0x0020; // VGA palette snooping
export const PCI_COMMAND_PARITY = 0x0040; // parity error response
export const PCI_COMMAND_WAIT = 0x0080; // address/data stepping (hardwired 0 on PCIe)
export const PCI_COMMAND_SERR = 0x0100; // SERR# driver enable
export const PCI_COMMAND_FAST_BACK = 0x0200; // fast back-to-back writes
export const PCI_COMMAND_INTX_DISABLE = 0x0400; // INTx emulation disable
/**
 * Command bits a guest may change in hardware in permissive mode, and that it always
 * sees from hardware (XSA-120 design, spec §5.6).
 */
export const PCI_COMMAND_GUEST_MASK =
  PCI_COMMAND_MASTER |
  PCI_COMMAND_SPECIAL |
  PCI_COMMAND_INVALIDATE |
  PCI_COMMAND_VGA_PALETTE |
  PCI_COMMAND_WAIT |
  PCI_COMMAND_FAST_BACK;

// --- Status register bits ---
export const PCI_STATUS_IMM_READY = 0x0001; // immediate readiness
export const PCI_STATUS_INTERRUPT = 0x0008; // INTx asserted (RO)
export const PCI_STATUS_CAP_LIST = 0x0010; // capability list present (RO)
export const PCI_STATUS_66MHZ = 0x0020;
export const PCI_STATUS_FAST_BACK = 0x0080;
export const PCI_STATUS_PARITY = 0x0100; // master data parity error (RW1C)
export const PCI_STATUS_DEVSEL_MASK = 0x0600;
export const PCI_STATUS_SIG_TARGET_ABORT = 0x0800; // RW1C
export const PCI_STATUS_REC_TARGET_ABORT = 0x1000; // RW1C
export const PCI_STATUS_REC_MASTER_ABORT = 0x2000; // RW1C
export const PCI_STATUS_SIG_SYSTEM_ERROR = 0x4000; // RW1C
export const PCI_STATUS_DETECTED_PARITY = 0x8000; // RW1C
/** The error bits of the status register, all write-one-to-clear. */
export const PCI_STATUS_RW1C_MASK = 0xf900;

// --- BIST ---
export const PCI_BIST_CODE_MASK = 0x0f; // completion code
export const PCI_BIST_START = 0x40; // write 1 to start BIST
export const PCI_BIST_CAPABLE = 0x80; // device supports BIST

// --- Base address registers ---
export const PCI_BASE_ADDRESS_SPACE_IO = 0x01; // bit 0: I/O space BAR
export const PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x06;
export const PCI_BASE_ADDRESS_MEM_TYPE_32 = 0x00;
export const PCI_BASE_ADDRESS_MEM_TYPE_1M = 0x02; // below 1 MiB (legacy)
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;
export const PCI_BASE_ADDRESS_IO_MASK = 0xfffffffc;
export const PCI_ROM_ADDRESS_ENABLE = 0x01;
export const PCI_ROM_ADDRESS_MASK = 0xfffff800;

// --- Standard capability list ---
export const PCI_CAP_LIST_ID_OFFSET = 0; // capability ID
export const PCI_CAP_LIST_NEXT_OFFSET = 1; // next capability pointer
/** First byte a capability may live at (after the 64-byte header). */
export const PCI_STD_HEADER_SIZEOF = 0x40;

/** Standard capability IDs (PCI Code and ID Assignment spec). */
export const PCI_CAP_ID = {
  PM: 0x01,
  AGP: 0x02,
  VPD: 0x03,
  SLOTID: 0x04,
  MSI: 0x05,
  CHSWP: 0x06,
  PCIX: 0x07,
  HT: 0x08,
  VNDR: 0x09,
  DBG: 0x0a,
  CCRC: 0x0b,
  SHPC: 0x0c,
  SSVID: 0x0d,
  AGP3: 0x0e,
  SECDEV: 0x0f,
  EXP: 0x10,
  MSIX: 0x11,
  SATA: 0x12,
  AF: 0x13,
  EA: 0x14,
} as const;
export type PciCapId = (typeof PCI_CAP_ID)[keyof typeof PCI_CAP_ID];

/** Extended capability IDs (PCIe Base spec §7.6 onwards). */
export const PCI_EXT_CAP_ID = {
  ERR: 0x0001, // Advanced Error Reporting
  VC: 0x0002,
  DSN: 0x0003,
  PWR: 0x0004,
  RCLD: 0x0005,
  RCILC: 0x0006,
  RCEC: 0x0007,
  MFVC: 0x0008,
  VC9: 0x0009,
  RCRB: 0x000a,
  VNDR: 0x000b,
  CAC: 0x000c,
  ACS: 0x000d,
  ARI: 0x000e,
  ATS: 0x000f,
  SRIOV: 0x0010,
  MRIOV: 0x0011,
  MCAST: 0x0012,
  PRI: 0x0013,
  AMD_XXX: 0x0014,
  REBAR: 0x0015,
  DPA: 0x0016,
  TPH: 0x0017,
  LTR: 0x0018,
  SECPCI: 0x0019,
  PMUX: 0x001a,
  PASID: 0x001b,
  LNR: 0x001c,
  DPC: 0x001d,
  L1SS: 0x001e,
  PTM: 0x001f,
  DVSEC: 0x0023,
  DLF: 0x0025,
  PL_16GT: 0x0026,
  DOE: 0x002e,
} as const;
/** First byte of the extended configuration space. */
export const PCI_EXT_CAP_START_OFFSET = 0x100;
/** Extended capability header: ID bits 15:0, version 19:16, next pointer 31:20. */
export const PCI_EXT_CAP_ID_MASK = 0xffff;
export const PCI_EXT_CAP_VER_SHIFT = 16;
export const PCI_EXT_CAP_VER_MASK = 0xf;
export const PCI_EXT_CAP_NEXT_SHIFT = 20;
export const PCI_EXT_CAP_NEXT_MASK = 0xffc;

// --- Power Management capability (relative offsets) ---
export const PCI_PM_PMC_OFFSET = 2;
export const PCI_PM_CTRL_OFFSET = 4; // PMCSR
export const PCI_PM_PPB_EXTENSIONS_OFFSET = 6; // PMCSR_BSE
export const PCI_PM_DATA_REGISTER_OFFSET = 7;
export const PCI_PM_CAP_VER_MASK = 0x0007;
export const PCI_PM_CAP_D1 = 0x0200;
export const PCI_PM_CAP_D2 = 0x0400;
export const PCI_PM_CAP_PME_MASK = 0xf800; // PME support D0..D3cold
export const PCI_PM_CTRL_STATE_MASK = 0x0003; // power state D0..D3hot
export const PCI_PM_CTRL_NO_SOFT_RESET = 0x0008; // D3hot->D0 does not reset
export const PCI_PM_CTRL_PME_ENABLE = 0x0100;
export const PCI_PM_CTRL_DATA_SEL_MASK = 0x1e00;
export const PCI_PM_CTRL_DATA_SCALE_MASK = 0x6000;
export const PCI_PM_CTRL_PME_STATUS = 0x8000; // RW1C, sticky
export const PCI_D0 = 0;
export const PCI_D1 = 1;
export const PCI_D2 = 2;
export const PCI_D3HOT = 3;
/** Bytes of the PM capability. */
export const PCI_PM_SIZEOF = 8;

// --- VPD capability (relative offsets) ---
export const PCI_VPD_ADDR_OFFSET = 2;
export const PCI_VPD_ADDR_MASK = 0x7fff;
export const PCI_VPD_ADDR_F = 0x8000; // write: 1 = write request; read: completion flag
export const PCI_VPD_DATA_OFFSET = 4;
/** Bytes of the VPD capability. */
export const PCI_CAP_VPD_SIZEOF = 8;

// --- MSI capability (relative offsets) ---
export const PCI_MSI_FLAGS_OFFSET = 2;
export const PCI_MSI_FLAGS_ENABLE = 0x0001;
export const PCI_MSI_FLAGS_QMASK = 0x000e; // multiple message capable (log2)
export const PCI_MSI_FLAGS_QSIZE = 0x0070; // multiple message enable (log2)
export const PCI_MSI_FLAGS_64BIT = 0x0080;
export const PCI_MSI_FLAGS_MASKBIT = 0x0100; // per-vector masking capable
export const PCI_MSI_ADDRESS_LO_OFFSET = 4;
export const PCI_MSI_ADDRESS_HI_OFFSET = 8; // 64-bit only
export const PCI_MSI_DATA_32_OFFSET = 8;
export const PCI_MSI_DATA_64_OFFSET = 12;
export const PCI_MSI_MASK_32_OFFSET = 12;
export const PCI_MSI_MASK_64_OFFSET = 16;
export const PCI_MSI_PENDING_32_OFFSET = 16;
export const PCI_MSI_PENDING_64_OFFSET = 20;

// --- MSI-X capability (relative offsets) ---
export const PCI_MSIX_FLAGS_OFFSET = 2;
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff; // table size - 1
export const PCI_MSIX_FLAGS_MASKALL = 0x4000; // function mask
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
export const PCI_MSIX_TABLE_OFFSET = 4;
export const PCI_MSIX_PBA_OFFSET = 8;
export const PCI_MSIX_BIR_MASK = 0x7; // BAR indicator
export const PCI_MSIX_OFFSET_MASK = 0xfffffff8;
/** One MSI-X table entry: address lo, address hi, data, vector control. */
export const PCI_MSIX_ENTRY_SIZE = 16;
export const PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET = 0;
export const PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET = 4;
export const PCI_MSIX_ENTRY_DATA_OFFSET = 8;
export const PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET = 12;
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x1;
/** Bytes of the MSI-X capability. */
export const PCI_CAP_MSIX_SIZEOF = 12;

// --- PCI Express capability (relative offsets) ---
export const PCI_EXP_FLAGS_OFFSET = 2;
export const PCI_EXP_FLAGS_VERS_MASK = 0x000f;
export const PCI_EXP_FLAGS_TYPE_MASK = 0x00f0;
export const PCI_EXP_TYPE_ENDPOINT = 0x0;
export const PCI_EXP_TYPE_LEG_END = 0x1;
export const PCI_EXP_TYPE_ROOT_PORT = 0x4;
export const PCI_EXP_TYPE_UPSTREAM = 0x5;
export const PCI_EXP_TYPE_DOWNSTREAM = 0x6;
export const PCI_EXP_TYPE_PCI_BRIDGE = 0x7;
export const PCI_EXP_TYPE_RC_END = 0x9;
export const PCI_EXP_TYPE_RC_EC = 0xa; // root complex event collector
export const PCI_EXP_FLAGS_SLOT = 0x0100; // slot implemented (ports only)
/** Bytes of a version-1 PCIe capability (through the root status register). */
export const PCI_EXP_CAP_V1_SIZE = 0x24;
/** Bytes of a version-2 PCIe capability (through slot status 2). */
export const PCI_EXP_CAP_V2_SIZE = 0x3c;
export const PCI_EXP_DEVCAP_OFFSET = 4;
export const PCI_EXP_DEVCAP_FLR = 0x10000000; // function level reset capable
export const PCI_EXP_DEVCTL_OFFSET = 8;
export const PCI_EXP_DEVCTL_CERE = 0x0001; // correctable error reporting enable
export const PCI_EXP_DEVCTL_NFERE = 0x0002;
export const PCI_EXP_DEVCTL_FERE = 0x0004;
export const PCI_EXP_DEVCTL_URRE = 0x0008;
export const PCI_EXP_DEVCTL_RELAX_EN = 0x0010; // relaxed ordering enable
export const PCI_EXP_DEVCTL_PAYLOAD_MASK = 0x00e0; // max payload size
export const PCI_EXP_DEVCTL_EXT_TAG = 0x0100; // extended tag field enable
export const PCI_EXP_DEVCTL_PHANTOM = 0x0200; // phantom functions enable
export const PCI_EXP_DEVCTL_AUX_PME = 0x0400; // aux power PM enable
export const PCI_EXP_DEVCTL_NOSNOOP_EN = 0x0800; // no snoop enable
export const PCI_EXP_DEVCTL_READRQ_MASK = 0x7000; // max read request size
/** DevCtl after a reset: 128-byte payload, 512-byte read requests, RO and no-snoop on. */
export const PCI_EXP_DEVCTL_RESET_VALUE = 0x2810;
export const PCI_EXP_DEVCTL_BCR_FLR = 0x8000; // initiate FLR (reads as 0)
export const PCI_EXP_DEVSTA_OFFSET = 10;
export const PCI_EXP_DEVSTA_CED = 0x0001; // correctable error detected (RW1C)
export const PCI_EXP_DEVSTA_NFED = 0x0002; // RW1C
export const PCI_EXP_DEVSTA_FED = 0x0004; // RW1C
export const PCI_EXP_DEVSTA_URD = 0x0008; // RW1C
export const PCI_EXP_DEVSTA_AUXPD = 0x0010;
export const PCI_EXP_DEVSTA_TRPND = 0x0020; // transactions pending
export const PCI_EXP_LNKCAP_OFFSET = 12;
export const PCI_EXP_LNKCTL_OFFSET = 16;
export const PCI_EXP_LNKSTA_OFFSET = 18;
export const PCI_EXP_LNKCTL_ASPM_MASK = 0x0003; // ASPM L0s/L1 control
export const PCI_EXP_LNKCTL_RCB = 0x0008; // read completion boundary
export const PCI_EXP_LNKCTL_LD = 0x0010; // link disable (ports)
export const PCI_EXP_LNKCTL_RL = 0x0020; // retrain link (ports, reads 0)
export const PCI_EXP_LNKCTL_CCC = 0x0040; // common clock configuration
export const PCI_EXP_LNKCTL_ES = 0x0080; // extended synch
export const PCI_EXP_LNKCTL_CLKREQ_EN = 0x0100; // clock power management enable
export const PCI_EXP_LNKCTL_HAWD = 0x0200; // hardware autonomous width disable
export const PCI_EXP_LNKCTL_LBMIE = 0x0400; // link bandwidth management interrupt enable
export const PCI_EXP_LNKCTL_LABIE = 0x0800; // link autonomous bandwidth interrupt enable
export const PCI_EXP_LNKSTA_LBMS = 0x4000; // link bandwidth management status (RW1C)
export const PCI_EXP_LNKSTA_LABS = 0x8000; // link autonomous bandwidth status (RW1C)
export const PCI_EXP_SLTCAP_OFFSET = 20;
export const PCI_EXP_SLTCTL_OFFSET = 24;
export const PCI_EXP_SLTSTA_OFFSET = 26;
export const PCI_EXP_SLTCTL_MASK = 0x1fff; // attention/power/hot-plug controls
export const PCI_EXP_SLTSTA_RW1C_MASK = 0x011f; // button, fault, MRL, presence, command, DLL changed
export const PCI_EXP_RTCTL_OFFSET = 28;
export const PCI_EXP_RTCTL_MASK = 0x001f; // system error on errors, PME interrupt, CRS visibility
export const PCI_EXP_RTCAP_OFFSET = 30;
export const PCI_EXP_RTSTA_OFFSET = 32;
export const PCI_EXP_RTSTA_PME = 0x00010000; // PME status (RW1C)
export const PCI_EXP_DEVCAP2_OFFSET = 36;
export const PCI_EXP_DEVCTL2_OFFSET = 40;
export const PCI_EXP_DEVSTA2_OFFSET = 42;
export const PCI_EXP_LNKCAP2_OFFSET = 44;
export const PCI_EXP_LNKCTL2_OFFSET = 48;
export const PCI_EXP_LNKSTA2_OFFSET = 50;
export const PCI_EXP_LNKSTA2_EQ_REQ = 0x0020; // link equalization request (RW1C)
export const PCI_EXP_SLTCAP2_OFFSET = 52;
export const PCI_EXP_SLTCTL2_OFFSET = 56;
export const PCI_EXP_SLTSTA2_OFFSET = 58;

// --- Advanced Features capability (relative offsets) ---
export const PCI_AF_CAP_OFFSET = 3;
export const PCI_AF_CAP_TP = 0x01; // transactions pending capable
export const PCI_AF_CAP_FLR = 0x02; // FLR capable
export const PCI_AF_CTRL_OFFSET = 4;
export const PCI_AF_CTRL_FLR = 0x01; // initiate FLR
export const PCI_AF_STATUS_OFFSET = 5;
export const PCI_AF_STATUS_TP = 0x01;
/** Bytes of the Advanced Features capability. */
export const PCI_CAP_AF_SIZEOF = 6;

// --- AER extended capability (relative offsets) ---
export const PCI_ERR_UNCOR_STATUS_OFFSET = 0x04; // RW1CS
export const PCI_ERR_UNCOR_MASK_OFFSET = 0x08; // RWS
export const PCI_ERR_UNCOR_SEVER_OFFSET = 0x0c; // RWS
export const PCI_ERR_COR_STATUS_OFFSET = 0x10; // RW1CS
export const PCI_ERR_COR_MASK_OFFSET = 0x14; // RWS
export const PCI_ERR_CAP_OFFSET = 0x18; // capabilities and control
export const PCI_ERR_HEADER_LOG_OFFSET = 0x1c; // 16 bytes, ROS
export const PCI_ERR_ROOT_COMMAND_OFFSET = 0x2c; // root ports only
export const PCI_ERR_ROOT_STATUS_OFFSET = 0x30;
export const PCI_ERR_ROOT_ERR_SRC_OFFSET = 0x34;
export const PCI_ERR_UNC_DLP = 0x00000010; // data link protocol error
export const PCI_ERR_UNC_POISON_TLP = 0x00001000;
export const PCI_ERR_UNC_COMP_TIME = 0x00004000;
export const PCI_ERR_UNC_COMP_ABORT = 0x00008000;
export const PCI_ERR_UNC_UNX_COMP = 0x00010000;
export const PCI_ERR_UNC_MALF_TLP = 0x00040000;
export const PCI_ERR_UNC_UNSUP = 0x00100000;
export const PCI_ERR_UNC_SURPDN = 0x00000020; // surprise down
export const PCI_ERR_UNC_FCP = 0x00002000; // flow control protocol
export const PCI_ERR_UNC_RX_OVER = 0x00020000; // receiver overflow
export const PCI_ERR_UNC_ECRC = 0x00080000;
export const PCI_ERR_UNC_ACSV = 0x00200000; // ACS violation
export const PCI_ERR_UNC_INTN = 0x00400000; // uncorrectable internal error
/** Uncorrectable error bits defined by PCIe 6.0 (bits 4, 5 and 12..26). */
export const PCI_ERR_UNC_MASK = 0x07fff030;
/** Severity register after a cold reset: DLP, SDES, FCP, RX_OVER, MALF_TLP, INTN fatal. */
export const PCI_ERR_UNC_SEVER_DEFAULT = 0x00462030;
export const PCI_ERR_COR_RCVR = 0x00000001; // receiver error
export const PCI_ERR_COR_BAD_TLP = 0x00000040;
export const PCI_ERR_COR_BAD_DLLP = 0x00000080;
export const PCI_ERR_COR_REP_ROLL = 0x00000100;
export const PCI_ERR_COR_REP_TIMER = 0x00001000;
export const PCI_ERR_COR_ADV_NFAT = 0x00002000; // advisory non-fatal
export const PCI_ERR_COR_INTERNAL = 0x00004000;
export const PCI_ERR_COR_LOG_OVER = 0x00008000; // header log overflow
/** Correctable error bits defined by PCIe 6.0. */
export const PCI_ERR_COR_MASK = 0x0000f1c1;
export const PCI_ERR_CAP_FEP_MASK = 0x0000001f; // first error pointer (ROS)
export const PCI_ERR_CAP_ECRC_GENC = 0x00000020; // ECRC generation capable
export const PCI_ERR_CAP_ECRC_GENE = 0x00000040; // ECRC generation enable
export const PCI_ERR_CAP_ECRC_CHKC = 0x00000080; // ECRC check capable
export const PCI_ERR_CAP_ECRC_CHKE = 0x00000100; // ECRC check enable
export const PCI_ERR_CAP_MHRC = 0x00000200; // multiple header recording capable
export const PCI_ERR_CAP_MHRE = 0x00000400; // multiple header recording enable
export const PCI_ERR_ROOT_CMD_MASK = 0x00000007; // correctable/non-fatal/fatal reporting enable
export const PCI_ERR_ROOT_STATUS_RW1C_MASK = 0x0000007f; // received/multiple/first-fatal bits
/** Bytes of an AER capability without the root port registers. */
export const PCI_ERR_ENDPOINT_SIZE = 0x2c;
/** Bytes of an AER capability with the root port registers. */
export const PCI_ERR_ROOT_SIZE = 0x38;

// --- SR-IOV extended capability (relative offsets) ---
export const PCI_SRIOV_CAP_OFFSET = 0x04;
export const PCI_SRIOV_CAP_VFM = 0x01; // VF migration capable
export const PCI_SRIOV_CTRL_OFFSET = 0x08;
export const PCI_SRIOV_CTRL_VFE = 0x01; // VF enable
export const PCI_SRIOV_CTRL_MSE = 0x08; // VF memory space enable
export const PCI_SRIOV_CTRL_ARI = 0x10;
export const PCI_SRIOV_CTRL_VFM = 0x02; // VF migration enable
export const PCI_SRIOV_CTRL_INTR = 0x04; // VF migration interrupt enable
export const PCI_SRIOV_STATUS_VFM = 0x01; // VF migration status (RW1C)
export const PCI_SRIOV_STATUS_OFFSET = 0x0a;
export const PCI_SRIOV_INITIAL_VF_OFFSET = 0x0c;
export const PCI_SRIOV_TOTAL_VF_OFFSET = 0x0e;
export const PCI_SRIOV_NUM_VF_OFFSET = 0x10;
export const PCI_SRIOV_FUNC_LINK_OFFSET = 0x12;
export const PCI_SRIOV_VF_OFFSET_OFFSET = 0x14;
export const PCI_SRIOV_VF_STRIDE_OFFSET = 0x16;
export const PCI_SRIOV_VF_DID_OFFSET = 0x1a;
export const PCI_SRIOV_SUP_PGSIZE_OFFSET = 0x1c;
export const PCI_SRIOV_SYS_PGSIZE_OFFSET = 0x20;
export const PCI_SRIOV_BAR_OFFSET = 0x24; // VF BAR0..5
/** Bytes of the SR-IOV capability (through the VF migration state array offset). */
export const PCI_SRIOV_SIZE = 0x40;

// --- ACS extended capability (relative offsets) ---
export const PCI_ACS_CAP_OFFSET = 0x04; // 16-bit capability register
export const PCI_ACS_CTRL_OFFSET = 0x06; // 16-bit control: bit n enables capability bit n
/** Capability/control bits that have an enable bit (SV, TB, RR, CR, UF, EC, DT). */
export const PCI_ACS_CTRL_MASK = 0x007f;

// --- Vendor-specific capability ---
/** Offset of the length byte of a vendor-specific capability (ID 0x09). */
export const PCI_CAP_VNDR_LENGTH_OFFSET = 2;
