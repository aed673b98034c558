// SPDX-License-Identifier: MIT
/**
 * One simulated PCI function: a config image with per-bit masks (RW, RW1C, sticky) and
 * power-on values, and the behaviour real hardware has behind it — BAR sizing, MSI and
 * MSI-X delivery, INTx, function resets, AER error recording, VPD, SR-IOV.
 *
 * This is the hardware, not pciback: it answers every access the way the device
 * would, and never throws on what a guest (or a driver) does. Bad config or MMIO
 * accesses read all-ones and writes are dropped.
 */
import {
  PCI_BASE_ADDRESS_0_OFFSET,
  PCI_CAP_ID,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_OFFSET,
  PCI_EXP_TYPE_RC_EC,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXT_CAP_ID,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_CARDBUS,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_NORMAL,
  PCI_HEADER_TYPE_OFFSET,
  PCI_INTERRUPT_PIN_OFFSET,
  PCI_ROM_ADDRESS1_OFFSET,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS_OFFSET,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_OFFSET,
  PCI_STD_HEADER_SIZEOF,
  PCI_TYPE0_BAR_COUNT,
  PCI_TYPE1_BAR_COUNT,
  PCI_CLASS_DEVICE_OFFSET,
} from '../abi/pci-regs.js';
import {
  walkCapabilities,
  walkExtendedCapabilities,
  type ConfigReader,
  type PciCapability,
  type PciExtCapability,
} from '../pci/capabilities.js';
import { PCI_ROM_RESOURCE } from '../pci/resource.js';
import { allOnes, isValidAccess, truncateValue, type ConfigWriteAccess } from './access.js';
import { installAcsMasks } from './acs.js';
import { AdvancedFeaturesFeature } from './af.js';
import { AerFeature } from './aer.js';
import { BarMemory } from './bar-memory.js';
import {
  applyBarLayout,
  applyRomLayout,
  barAddresses,
  describeBars,
  describeRom,
  readBar,
  type BarDescriptor,
  type BarLayout,
  type RomLayout,
} from './bars.js';
import { capabilityExtents, markDeviceSpecificWritable } from './capability-layout.js';
import { injectErrors, type InjectedErrors } from './error-injection.js';
import type { DeviceFeature, FunctionContext, ResetKind } from './feature.js';
import {
  RESET_COUNT_FIELD,
  sizesFromRecord,
  sizesToRecord,
  type ResetCounts,
  type SimulatedFunctionState,
} from './function-state.js';
import {
  BistFeature,
  BridgeControlFeature,
  adjustHeaderDefaults,
  installHeaderMasks,
} from './header.js';
import { fromHex, toHex } from './hex.js';
import type { AerErrorEvent, DeviceHooks } from './hooks.js';
import { MsiFeature } from './msi.js';
import { MsixFeature } from './msix.js';
import { PcieFeature } from './pcie.js';
import { PowerManagementFeature } from './pm.js';
import { RegisterFile } from './register-file.js';
import { SriovFeature, type SriovStatus } from './sriov.js';
import { VpdFeature } from './vpd.js';
import { buildVpdImage } from './vpd-image.js';

/** The VF relationship of an SR-IOV virtual function. */
export interface VirtualFunctionLink {
  /** The physical function whose SR-IOV capability defines this VF. */
  readonly pf: SimulatedFunction;
  /** 0-based VF number under the PF. */
  readonly vfIndex: number;
}

/** Construction options of a {@link SimulatedFunction}. */
export interface SimulatedFunctionOptions {
  /**
   * BAR sizes by slot (0..5; 6 = expansion ROM). Slots not listed are inferred from
   * the image (`inferBarSize`); a register that reads 0 and has no size is absent; a
   * size of 0 removes a BAR.
   */
  readonly barSizes?: ReadonlyMap<number, bigint>;
  /** Per-VF sizes of the SR-IOV VF BARs (slots 0..5), inferred like BARs otherwise. */
  readonly vfBarSizes?: ReadonlyMap<number, bigint>;
  /** Config image of this physical function's VFs (see `createVirtualFunctions`). */
  readonly vfTemplate?: Uint8Array;
  /** VPD ROM contents (a generic one is built when the image has a VPD capability). */
  readonly vpd?: Uint8Array;
  /** Side effects (interrupts, errors, SR-IOV changes). */
  readonly hooks?: DeviceHooks;
  /**
   * Power-on image. By default it is derived from `config`: RW and RW1C bits start at
   * 0 unless sticky, RO bits are as in the image, and the registers with other reset
   * values (interrupt line kept, PCIe Device Control 0x2810, ...) get those.
   */
  readonly defaults?: Uint8Array;
  /** Makes this function an SR-IOV VF of `pf`. */
  readonly virtualFunctionOf?: VirtualFunctionLink;
}

/** Reset mechanisms a function advertises (what `pci_reset_function` could use). */
export interface ResetCapabilities {
  /** PCIe Device Capabilities FLR. */
  readonly flr: boolean;
  /** Advanced Features capability with FLR. */
  readonly afFlr: boolean;
  /** PM capability with No_Soft_Reset clear: D3hot->D0 resets the function. */
  readonly pmSoftReset: boolean;
}

/** The expansion ROM with its current register contents. */
export interface RomDescriptor extends RomLayout {
  readonly address: bigint;
  readonly enabled: boolean;
}

/** Masks and power-on value of a register, for tests and tools. */
export interface RegisterMasks {
  readonly writable: number;
  readonly rw1c: number;
  readonly sticky: number;
  readonly defaultValue: number;
}

const CONFIG_SIZES: readonly number[] = [
  PCI_STD_HEADER_SIZEOF,
  PCI_CFG_SPACE_SIZE,
  PCI_CFG_SPACE_EXP_SIZE,
];
/** Base class of display controllers (VGA palette snooping). */
const DISPLAY_CLASS = 0x03;

/**
 * A simulated PCI function.
 *
 * @example
 * const fn = new SimulatedFunction(image, {
 *   barSizes: new Map([[0, 0x4000n]]),
 *   hooks: { onMessage: (m) => console.log(m.address, m.data) },
 * });
 * fn.configWrite(0x10, 4, 0xffffffff);
 * fn.configRead(0x10, 4); // 0xffffc000 | type bits
 */
export class SimulatedFunction implements ConfigReader {
  /** Bytes of config space: 64, 256 or 4096. */
  readonly sizeBytes: number;
  /** Header layout without the multi-function bit. */
  readonly headerType: number;
  /** Set for an SR-IOV virtual function. */
  readonly virtualFunction: VirtualFunctionLink | undefined;

  readonly #regs: RegisterFile;
  readonly #hooks: DeviceHooks;
  readonly #ctx: FunctionContext;
  readonly #features: DeviceFeature[] = [];
  readonly #bars: readonly BarLayout[];
  readonly #barOffsets: { first: number; count: number };
  readonly #rom: RomLayout | undefined;
  readonly #romOffset: number | undefined;
  readonly #barSizes: Map<number, bigint>;
  readonly #vfBarSizes: ReadonlyMap<number, bigint>;
  readonly #vfTemplate: Uint8Array | undefined;
  readonly #memory = new BarMemory();
  readonly #pm: PowerManagementFeature | undefined;
  readonly #msi: MsiFeature | undefined;
  readonly #msix: MsixFeature | undefined;
  readonly #pcie: PcieFeature | undefined;
  readonly #af: AdvancedFeaturesFeature | undefined;
  readonly #aer: AerFeature | undefined;
  readonly #vpd: VpdFeature | undefined;
  readonly #sriov: SriovFeature | undefined;
  readonly #resetCounts = { flr: 0, afFlr: 0, pm: 0, bus: 0 };
  #pendingReset: ResetKind | undefined;
  #intxLine = false;
  #intxOutput = false;

  /**
   * Builds the function from a config image (copied).
   *
   * @throws {RangeError} for an image that is not 64, 256 or 4096 bytes, invalid BAR
   *   sizes, or a VF whose header is not type 0.
   */
  constructor(config: Uint8Array, options: SimulatedFunctionOptions = {}) {
    if (!CONFIG_SIZES.includes(config.length)) {
      throw new RangeError(
        `Cannot build a function from a ${config.length}-byte config image: it must be 64, 256 or 4096 bytes`,
      );
    }
    this.sizeBytes = config.length;
    this.#regs = new RegisterFile(config);
    this.#hooks = options.hooks ?? {};
    this.virtualFunction = options.virtualFunctionOf;
    this.headerType = (config[PCI_HEADER_TYPE_OFFSET] ?? 0) & PCI_HEADER_TYPE_MASK;
    if (this.virtualFunction !== undefined && this.headerType !== PCI_HEADER_TYPE_NORMAL) {
      throw new RangeError(
        `Cannot build a virtual function with header type ${this.headerType}: VFs have a type-0 header`,
      );
    }
    this.#vfBarSizes = options.vfBarSizes ?? new Map();
    this.#vfTemplate = options.vfTemplate?.slice();
    this.#ctx = {
      regs: this.#regs,
      hooks: this.#hooks,
      requestReset: (kind) => {
        this.#pendingReset ??= kind;
      },
      busMasterEnabled: () => (this.#regs.read(PCI_COMMAND_OFFSET, 2) & PCI_COMMAND_MASTER) !== 0,
      powerState: () => this.#pm?.powerState() ?? 0,
    };

    // Capabilities are found in the image as given, before any mask exists.
    const caps = walkCapabilities(this);
    const extCaps = walkExtendedCapabilities(this);
    const first = (id: number): PciCapability | undefined => caps.find((c) => c.id === id);
    const firstExt = (id: number): PciExtCapability | undefined => extCaps.find((c) => c.id === id);

    // BARs and ROM. Inferred sizes are bounded by the other BARs' addresses, so
    // everything is decoded from the image before any register is normalised.
    const sizes = options.barSizes ?? new Map<number, bigint>();
    const read32 = (byteOffset: number): number => this.#regs.read(byteOffset, 4);
    this.#barOffsets = {
      first: PCI_BASE_ADDRESS_0_OFFSET,
      count: barCountOf(this.headerType, this.virtualFunction !== undefined),
    };
    this.#romOffset = romOffsetOf(this.headerType);
    const romOffset = this.#romOffset;
    const romValue = romOffset === undefined ? 0 : read32(romOffset);
    const romAddress = BigInt((romValue & PCI_ROM_ADDRESS_MASK) >>> 0);
    const bars = describeBars(read32, {
      firstBarOffset: this.#barOffsets.first,
      barCount: this.#barOffsets.count,
      sizes,
      otherMemory: romAddress === 0n ? [] : [romAddress],
    });
    // A VF has no expansion ROM: its ROM BAR is RO 0 (PCIe 6.0 §9.3.4.1.10).
    this.#rom =
      romOffset === undefined || this.virtualFunction !== undefined
        ? undefined
        : describeRom(romValue, {
            size: sizes.get(PCI_ROM_RESOURCE),
            otherMemory: barAddresses(read32, {
              firstBarOffset: this.#barOffsets.first,
              barCount: this.#barOffsets.count,
            }),
          });
    this.#bars = bars;
    applyBarLayout(this.#regs, {
      firstBarOffset: this.#barOffsets.first,
      barCount: barCountOf(this.headerType, false),
      bars,
    });
    if (romOffset !== undefined) applyRomLayout(this.#regs, { romOffset, rom: this.#rom });
    this.#barSizes = new Map();
    for (let index = 0; index < this.#barOffsets.count; index++) {
      this.#barSizes.set(index, bars.find((b) => b.index === index)?.sizeBytes ?? 0n);
    }
    if (this.#romOffset !== undefined && this.virtualFunction === undefined) {
      this.#barSizes.set(PCI_ROM_RESOURCE, this.#rom?.sizeBytes ?? 0n);
    }

    // Header.
    const pcieCap = first(PCI_CAP_ID.EXP);
    installHeaderMasks(this.#ctx, {
      headerType: this.headerType,
      isPcie: pcieCap !== undefined,
      hasIoBar: bars.some((b) => b.kind === 'io'),
      isVirtualFunction: this.virtualFunction !== undefined,
      isDisplay: this.#regs.read(PCI_CLASS_DEVICE_OFFSET + 1, 1) === DISPLAY_CLASS,
    });
    this.#features.push(new BistFeature(this.#ctx));
    if (this.headerType === PCI_HEADER_TYPE_BRIDGE) {
      this.#features.push(new BridgeControlFeature(this.#ctx));
    }
    if (this.headerType !== PCI_HEADER_TYPE_CARDBUS) {
      markDeviceSpecificWritable(this.#regs, capabilityExtents(this.#regs, caps));
    }

    // Standard capabilities (the first of each ID gets behaviour, as Linux uses it).
    const pmCap = first(PCI_CAP_ID.PM);
    this.#pm = pmCap && this.#add(new PowerManagementFeature(this.#ctx, pmCap.byteOffset));
    const msiCap = first(PCI_CAP_ID.MSI);
    this.#msi = msiCap && this.#add(new MsiFeature(this.#ctx, msiCap.byteOffset));
    const msixCap = first(PCI_CAP_ID.MSIX);
    this.#msix = msixCap && this.#add(new MsixFeature(this.#ctx, msixCap.byteOffset));
    this.#pcie = pcieCap && this.#add(new PcieFeature(this.#ctx, pcieCap.byteOffset));
    const afCap = first(PCI_CAP_ID.AF);
    this.#af = afCap && this.#add(new AdvancedFeaturesFeature(this.#ctx, afCap.byteOffset));
    const vpdCap = first(PCI_CAP_ID.VPD);
    this.#vpd =
      vpdCap &&
      this.#add(
        new VpdFeature(this.#ctx, vpdCap.byteOffset, {
          rom: options.vpd ?? buildVpdImage({ identifier: 'Simulated PCI device' }),
        }),
      );

    // Extended capabilities.
    const aerCap = firstExt(PCI_EXT_CAP_ID.ERR);
    const portType = this.#pcie?.portType;
    this.#aer =
      aerCap &&
      new AerFeature(this.#ctx, aerCap.byteOffset, {
        rootRegisters: portType === PCI_EXP_TYPE_ROOT_PORT || portType === PCI_EXP_TYPE_RC_EC,
      });
    const sriovCap =
      this.virtualFunction === undefined ? firstExt(PCI_EXT_CAP_ID.SRIOV) : undefined;
    this.#sriov =
      sriovCap &&
      this.#add(new SriovFeature(this.#ctx, sriovCap.byteOffset, { vfBarSizes: this.#vfBarSizes }));
    for (const cap of extCaps)
      if (cap.id === PCI_EXT_CAP_ID.ACS) installAcsMasks(this.#regs, cap.byteOffset);

    if (options.defaults !== undefined) {
      this.#regs.loadDefaults(options.defaults);
    } else {
      this.#regs.deriveDefaults();
      adjustHeaderDefaults(this.#ctx);
      for (const feature of this.#features) feature.adjustDefaults?.();
    }
    this.#intxLine = (this.#regs.read(PCI_STATUS_OFFSET, 2) & PCI_STATUS_INTERRUPT) !== 0;
    this.#intxOutput = this.#computeIntxOutput();
  }

  /**
   * Rebuilds a function saved by {@link state}.
   *
   * @throws {TypeError} when the state is a VF and no `pf` is given.
   * @throws {SyntaxError} for malformed state.
   */
  static fromState(
    state: SimulatedFunctionState,
    options: { hooks?: DeviceHooks; pf?: SimulatedFunction } = {},
  ): SimulatedFunction {
    // State comes from storage: check the version even though the type says 1.
    const { version } = state as { readonly version: unknown };
    if (version !== 1) {
      throw new SyntaxError(
        `Cannot restore a simulated function from state version ${String(version)}`,
      );
    }
    let link: VirtualFunctionLink | undefined;
    if (state.virtualFunction !== undefined) {
      if (options.pf === undefined) {
        throw new TypeError(
          'Cannot restore a virtual function without its physical function: pass "pf"',
        );
      }
      link = { pf: options.pf, vfIndex: state.virtualFunction.vfIndex };
    }
    const device = new SimulatedFunction(fromHex(state.config), {
      barSizes: sizesFromRecord(state.barSizes),
      vfBarSizes: sizesFromRecord(state.vfBarSizes),
      defaults: fromHex(state.defaults),
      ...(state.vfTemplate === undefined ? {} : { vfTemplate: fromHex(state.vfTemplate) }),
      ...(state.vpdRom === undefined ? {} : { vpd: fromHex(state.vpdRom) }),
      ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
      ...(link === undefined ? {} : { virtualFunctionOf: link }),
    });
    device.#restoreRuntime(state);
    return device;
  }

  /** Plain serializable state; `fromState(state())` gives an equivalent function. */
  state(): SimulatedFunctionState {
    const image = this.#regs.image();
    const msix = this.#msix?.snapshot();
    const vpd = this.#vpd?.rom();
    return {
      version: 1,
      config: toHex(image.current),
      defaults: toHex(image.defaults),
      barSizes: sizesToRecord(this.#barSizes),
      vfBarSizes: sizesToRecord(
        new Map(this.#sriov?.vfBarLayout.map((bar) => [bar.index, bar.sizeBytes]) ?? []),
      ),
      ...(this.#vfTemplate === undefined ? {} : { vfTemplate: toHex(this.#vfTemplate) }),
      ...(vpd === undefined ? {} : { vpdRom: toHex(vpd) }),
      ...(this.virtualFunction === undefined
        ? {}
        : { virtualFunction: { vfIndex: this.virtualFunction.vfIndex } }),
      ...(msix === undefined
        ? {}
        : { msix: { table: toHex(msix.entries), pba: toHex(msix.pending) } }),
      msiPending: this.#msi?.pending() ?? 0,
      intxAsserted: this.#intxLine,
      resetCounts: this.resetCounts(),
      barMemory: this.#memory.pages(),
    };
  }

  // --- Config space -------------------------------------------------------------

  /**
   * A config read as the hardware answers it. Misaligned, out-of-range or
   * wrong-sized accesses read all-ones.
   */
  configRead(byteOffset: number, sizeBytes: number): number {
    if (!isValidAccess({ byteOffset, sizeBytes }, this.sizeBytes)) return allOnes(sizeBytes);
    return this.#regs.read(byteOffset, sizeBytes);
  }

  /**
   * A config write as the hardware takes it: the masked-write rule, then the side
   * effects (FLR, PM reset, VPD requests, interrupt delivery...). Misaligned,
   * out-of-range or wrong-sized writes are dropped.
   */
  configWrite(byteOffset: number, sizeBytes: number, value: number): void {
    if (!isValidAccess({ byteOffset, sizeBytes }, this.sizeBytes)) return;
    const access: ConfigWriteAccess = {
      byteOffset,
      sizeBytes,
      value: truncateValue(value, sizeBytes),
    };
    this.#regs.write(byteOffset, sizeBytes, access.value);
    for (const feature of this.#features) feature.afterConfigWrite?.(access);
    const reset = this.#pendingReset;
    this.#pendingReset = undefined;
    if (reset !== undefined) this.reset(reset);
    else this.#updateInterrupts();
  }

  /** `ConfigReader`: a byte (all-ones when out of range). */
  read8(byteOffset: number): number {
    return this.configRead(byteOffset, 1);
  }

  /** `ConfigReader`: a word. */
  read16(byteOffset: number): number {
    return this.configRead(byteOffset, 2);
  }

  /** `ConfigReader`: a dword. */
  read32(byteOffset: number): number {
    return this.configRead(byteOffset, 4);
  }

  /** Masks and power-on value of `sizeBytes` (1..4) bytes at `byteOffset`. */
  registerMasks(byteOffset: number, sizeBytes: number): RegisterMasks {
    if (!isValidAccess({ byteOffset, sizeBytes }, this.sizeBytes)) {
      throw new RangeError(
        `Invalid register ${sizeBytes} bytes at 0x${byteOffset.toString(16)}: outside the ${this.sizeBytes}-byte config space or misaligned`,
      );
    }
    return {
      writable: this.#regs.mask('writable', byteOffset, sizeBytes),
      rw1c: this.#regs.mask('rw1c', byteOffset, sizeBytes),
      sticky: this.#regs.mask('sticky', byteOffset, sizeBytes),
      defaultValue: this.#regs.defaultValue(byteOffset, sizeBytes),
    };
  }

  // --- BARs and MMIO ------------------------------------------------------------

  /** Implemented BARs with their current addresses (a VF's come from its PF). */
  bars(): BarDescriptor[] {
    const link = this.virtualFunction;
    if (link === undefined) {
      return this.#bars.map((bar) =>
        readBar(this.#regs, { firstBarOffset: this.#barOffsets.first, bar }),
      );
    }
    const sriov = link.pf.sriovStatus();
    return (sriov?.vfBars ?? []).map((bar) => ({
      ...bar,
      address: bar.address + BigInt(link.vfIndex) * bar.sizeBytes,
    }));
  }

  /** The expansion ROM, if the function has one. */
  rom(): RomDescriptor | undefined {
    if (this.#rom === undefined || this.#romOffset === undefined) return undefined;
    const value = this.#regs.read(this.#romOffset, 4);
    return {
      sizeBytes: this.#rom.sizeBytes,
      address: BigInt((value & PCI_ROM_ADDRESS_MASK) >>> 0),
      enabled: (value & PCI_ROM_ADDRESS_ENABLE) !== 0,
    };
  }

  /**
   * Reads BAR memory (`sizeBytes` 1, 2 or 4 at an aligned `byteOffset` inside the BAR).
   * All-ones when the BAR does not exist, the access is bad, or the function does not
   * decode it: memory (or I/O) decode off in the command register — for a VF, VF MSE
   * off in its PF — or the function not in D0.
   */
  mmioRead(barIndex: number, byteOffset: number, sizeBytes: number): number {
    const bar = this.#decodingBar(barIndex, byteOffset, sizeBytes);
    if (bar === undefined) return allOnes(sizeBytes);
    const region = this.#msix?.regionAt(barIndex, byteOffset, sizeBytes);
    if (region !== undefined && this.#msix !== undefined) {
      return this.#msix.read(region, byteOffset, sizeBytes);
    }
    return this.#memory.read(barIndex, byteOffset, sizeBytes);
  }

  /** Writes BAR memory; dropped whenever {@link mmioRead} would read all-ones. */
  mmioWrite(barIndex: number, byteOffset: number, sizeBytes: number, value: number): void {
    const bar = this.#decodingBar(barIndex, byteOffset, sizeBytes);
    if (bar === undefined) return;
    const data = truncateValue(value, sizeBytes);
    const region = this.#msix?.regionAt(barIndex, byteOffset, sizeBytes);
    if (region !== undefined && this.#msix !== undefined) {
      this.#msix.write(region, byteOffset, sizeBytes, data);
      this.#updateInterrupts();
      return;
    }
    this.#memory.write(barIndex, byteOffset, sizeBytes, data);
  }

  // --- Resets -------------------------------------------------------------------

  /** The reset mechanisms the function advertises. */
  resetCapabilities(): ResetCapabilities {
    return {
      flr: this.#pcie?.flrCapable() ?? false,
      afFlr: this.#af?.flrCapable() ?? false,
      pmSoftReset: this.#pm?.softResetOnD0() ?? false,
    };
  }

  /** True when the AF capability also has Transactions Pending (Linux requires it). */
  afTransactionsPendingCapable(): boolean {
    return this.#af?.transactionsPendingCapable() ?? false;
  }

  /** Resets performed so far, by kind. */
  resetCounts(): ResetCounts {
    return { ...this.#resetCounts };
  }

  /**
   * A Function Level Reset (what a written BCR_FLR does when the function is capable;
   * here it is performed whatever the capability says).
   */
  functionLevelReset(): void {
    this.reset('flr');
  }

  /**
   * Resets the function: every register returns to its power-on value except sticky
   * bits, BARs lose their addresses, MSI/MSI-X are disabled, MSI-X entries masked,
   * pending interrupts and BAR memory cleared, INTx deasserted. The VPD ROM stays.
   */
  reset(kind: ResetKind): void {
    this.#regs.reset();
    this.#memory.clear();
    this.#intxLine = false;
    this.#resetCounts[RESET_COUNT_FIELD[kind]]++;
    for (const feature of this.#features) feature.afterReset?.();
    this.#updateInterrupts();
  }

  // --- Interrupts ---------------------------------------------------------------

  /** True when the image has an MSI capability. */
  get hasMsi(): boolean {
    return this.#msi !== undefined;
  }

  /** True when the image has an MSI-X capability. */
  get hasMsix(): boolean {
    return this.#msix !== undefined;
  }

  /** MSI Enable is set. */
  msiEnabled(): boolean {
    return this.#msi?.enabled() ?? false;
  }

  /** MSI-X Enable is set. */
  msixEnabled(): boolean {
    return this.#msix?.enabled() ?? false;
  }

  /** Pending MSI vectors (bit n = vector n). */
  msiPending(): number {
    return this.#msi?.pending() ?? 0;
  }

  /** Number of MSI-X table entries (0 without MSI-X). */
  get msixTableSize(): number {
    return this.#msix?.tableSize ?? 0;
  }

  /** Where the MSI-X table and PBA are, if the function has MSI-X. */
  msixLayout(): { table: MsixFeature['table']; pba: MsixFeature['pba'] } | undefined {
    return this.#msix === undefined ? undefined : { table: this.#msix.table, pba: this.#msix.pba };
  }

  /**
   * Raises MSI vector `vector`. Sent through `onMessage` (data = base data with the
   * vector in the low bits) when MSI is enabled, the vector is enabled and unmasked,
   * bus mastering is on and the function is in D0; otherwise it becomes pending and is
   * sent when that changes. Returns true when sent now.
   */
  signalMsi(vector: number): boolean {
    return this.#msi?.signal(vector) ?? false;
  }

  /**
   * Raises MSI-X table entry `entry`: sent when MSI-X is enabled and neither the
   * function nor the entry is masked (and bus mastering is on, D0); else its PBA bit
   * is set and the message goes out on unmask. Ignored while MSI-X is disabled.
   */
  signalMsix(entry: number): boolean {
    return this.#msix?.signal(entry) ?? false;
  }

  /**
   * Drives the function's legacy interrupt. The status Interrupt bit follows it; the
   * INTx output (reported through `onIntx` on every change) is active only while
   * INTX_DISABLE is clear and MSI/MSI-X are off. No effect when Interrupt Pin is 0.
   */
  setIntx(asserted: boolean): void {
    if (this.interruptPin === 0) return;
    this.#intxLine = asserted;
    this.#regs.setBits(PCI_STATUS_OFFSET, 2, PCI_STATUS_INTERRUPT, asserted);
    this.#updateInterrupts();
  }

  /** The INTx output level (after INTX_DISABLE and MSI/MSI-X). */
  intxOutput(): boolean {
    return this.#intxOutput;
  }

  /** Interrupt Pin register (0 = none, 1..4 = INTA#..INTD#). */
  get interruptPin(): number {
    return this.sizeBytes >= PCI_STD_HEADER_SIZEOF
      ? this.#regs.read(PCI_INTERRUPT_PIN_OFFSET, 1)
      : 0;
  }

  // --- Errors, power, SR-IOV ------------------------------------------------------

  /**
   * The function detects errors (`PCI_ERR_UNC_*` / `PCI_ERR_COR_*` bits): AER status
   * (masked bits too), First Error Pointer and header log, Device Status and PCI
   * status are updated, and `onError` reports what was not masked.
   */
  injectAerError(errors: InjectedErrors): AerErrorEvent {
    return injectErrors({ ctx: this.#ctx, pcie: this.#pcie, aer: this.#aer }, errors);
  }

  /** True when the function has a PCI Express capability. */
  get isPcie(): boolean {
    return this.#pcie !== undefined;
  }

  /** PCIe device/port type (`PCI_EXP_TYPE_*`), if PCIe. */
  get pcieType(): number | undefined {
    return this.#pcie?.portType;
  }

  /** True when the function has a PM capability. */
  get hasPowerManagement(): boolean {
    return this.#pm !== undefined;
  }

  /** Current PM state (0 = D0 .. 3 = D3hot); D0 without a PM capability. */
  powerState(): number {
    return this.#pm?.powerState() ?? 0;
  }

  /** True when PMC advertises `state` (D0 and D3hot always; D1/D2 when flagged). */
  supportsPowerState(state: number): boolean {
    return this.#pm?.supports(state) ?? state === 0;
  }

  /** The SR-IOV capability decoded, for a physical function that has one. */
  sriovStatus(): SriovStatus | undefined {
    return this.#sriov?.status();
  }

  /** Config image of this PF's VFs, when the hardware defines one. */
  vfTemplate(): Uint8Array | undefined {
    return this.#vfTemplate?.slice();
  }

  // --- Internals ------------------------------------------------------------------

  #add<T extends DeviceFeature>(feature: T): T {
    this.#features.push(feature);
    return feature;
  }

  #decodingBar(barIndex: number, byteOffset: number, sizeBytes: number): BarDescriptor | undefined {
    const bar = this.bars().find((b) => b.index === barIndex);
    if (bar === undefined) return undefined;
    const limit =
      bar.sizeBytes > BigInt(Number.MAX_SAFE_INTEGER)
        ? Number.MAX_SAFE_INTEGER
        : Number(bar.sizeBytes);
    if (!isValidAccess({ byteOffset, sizeBytes }, limit)) return undefined;
    if (this.powerState() !== 0) return undefined;
    const link = this.virtualFunction;
    if (link !== undefined) {
      const sriov = link.pf.sriovStatus();
      return sriov?.enabled === true && sriov.memorySpaceEnabled && link.vfIndex < sriov.numVfs
        ? bar
        : undefined;
    }
    const command = this.#regs.read(PCI_COMMAND_OFFSET, 2);
    const decodeBit = bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    return (command & decodeBit) !== 0 ? bar : undefined;
  }

  #computeIntxOutput(): boolean {
    const command =
      this.sizeBytes >= PCI_STD_HEADER_SIZEOF ? this.#regs.read(PCI_COMMAND_OFFSET, 2) : 0;
    return (
      this.#intxLine &&
      this.interruptPin !== 0 &&
      (command & PCI_COMMAND_INTX_DISABLE) === 0 &&
      !this.msiEnabled() &&
      !this.msixEnabled()
    );
  }

  #updateInterrupts(): void {
    this.#msi?.flush();
    this.#msix?.flush();
    const output = this.#computeIntxOutput();
    if (output === this.#intxOutput) return;
    this.#intxOutput = output;
    this.#hooks.onIntx?.(output);
  }

  #restoreRuntime(state: SimulatedFunctionState): void {
    if (state.msix !== undefined && this.#msix !== undefined) {
      this.#msix.load(fromHex(state.msix.table), fromHex(state.msix.pba));
    }
    this.#msi?.loadPending(state.msiPending);
    this.#intxLine = state.intxAsserted;
    this.#intxOutput = this.#computeIntxOutput();
    Object.assign(this.#resetCounts, state.resetCounts);
    this.#memory.load(state.barMemory);
  }
}

function barCountOf(headerType: number, isVirtualFunction: boolean): number {
  if (isVirtualFunction) return 0;
  if (headerType === PCI_HEADER_TYPE_NORMAL) return PCI_TYPE0_BAR_COUNT;
  if (headerType === PCI_HEADER_TYPE_BRIDGE) return PCI_TYPE1_BAR_COUNT;
  if (headerType === PCI_HEADER_TYPE_CARDBUS) return 1;
  return 0;
}

function romOffsetOf(headerType: number): number | undefined {
  if (headerType === PCI_HEADER_TYPE_NORMAL) return PCI_ROM_ADDRESS_OFFSET;
  if (headerType === PCI_HEADER_TYPE_BRIDGE) return PCI_ROM_ADDRESS1_OFFSET;
  return undefined;
}
