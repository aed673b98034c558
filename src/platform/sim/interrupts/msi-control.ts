// SPDX-License-Identifier: MIT
/**
 * Linux's MSI layer for one device under the simulated hypervisor, with Xen's pirq mapping
 * (drivers/pci/msi/msi.c + arch/x86/pci/xen.c `xen_initdom_setup_msi_irqs`): allocate
 * IRQs, program the function's MSI capability or MSI-X table as Linux does (through the
 * config accessors and MMIO), map each IRQ to a pirq in the device's owner domain.
 *
 * The device is an {@link MsiDevice}: a simulated function, or a real (or fake-sysfs)
 * function of the Linux platform reached through sysfs. On real Xen the hypervisor
 * programs MSI when dom0 maps the pirq; the simulated hypervisor doing it through config
 * and BAR accesses is faithful to what ends up in the device. Interrupt *delivery* only
 * exists for simulated hardware (its messages come back through `SimInterrupts` hooks);
 * a sysfs function never raises one here: enable, disable and the pirq mapping are real,
 * the messages are not.
 *
 * Choices and deviations (documented because pciback's behaviour depends on them):
 * - A device without a registered owner has its vectors mapped into dom0, as
 *   `xen_find_device_domain_owner` failing makes Linux use `DOMID_SELF`.
 * - Linux leaves vectors masked until each IRQ is started (`request_irq`); a passed-
 *   through device's IRQs are started by Xen when the guest binds the pirq. The
 *   simulator unmasks the enabled vectors at enable time instead, so an interrupt
 *   raised before the guest binds its pirq counts as undelivered rather than pending.
 * - `enableMsix` writes the table through BAR MMIO. With memory decode off (pciback
 *   checks MEMORY first, spec §4.5) the writes are dropped as by the hardware, the
 *   enable still succeeds, and the entries keep what they held (masked after a reset),
 *   so the function's messages stay in its PBA.
 * - `nvec` of `enableMsi` must be a power of two (Linux would round up).
 * - The enable state is read from the hardware bits. A record left by MSI that the
 *   hardware lost (a reset) is released at the next enable; `disableMsi` clears a set
 *   enable bit even when this layer did not set it, so "if enabled, disable" converges.
 */
import {
  PCI_CAP_ID,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA_OFFSET,
  PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET,
  PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_OFFSET,
  PCI_MSI_ADDRESS_HI_OFFSET,
  PCI_MSI_ADDRESS_LO_OFFSET,
  PCI_MSI_DATA_32_OFFSET,
  PCI_MSI_DATA_64_OFFSET,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_OFFSET,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32_OFFSET,
  PCI_MSI_MASK_64_OFFSET,
} from '../../../abi/pci-regs.js';
import { findCapability } from '../../../pci/capabilities.js';
import type {
  ConfigAccessSize,
  ConfigReadResult,
  DeviceOwnerRegistry,
  DomId,
  HostMsiControl,
  Logger,
  MsixEnableResult,
} from '../../types.js';
import { DOM0, SILENT_LOGGER } from '../../types.js';
import type { PciAddress } from '../../../pci/address.js';
import { msixTableOf } from '../../../pci/config-state.js';
import type { ConfigReader } from '../../../pci/capabilities.js';
import type { MsiAllocation, SimIrqLayer } from './irq-layer.js';
import type { SimPirqSpace } from './pirq-space.js';

/** `-EINVAL`. */
const EINVAL = -22;
/** `-ENOSPC`. */
const ENOSPC = -28;
/** Most MSI vectors a function can have (Multiple Message Capable is log2, max 5). */
const MSI_MAX_VECTORS = 32;

/**
 * The function as the MSI layer reaches it: config space, BAR memory for the MSI-X
 * table, and the PCI core's `dev->irq`. The simulator's `SimHostPciDevice` is one (config
 * cycles and MMIO of simulated hardware); the Linux platform's stub device is another
 * (the sysfs `config` file and the BAR's `resource<N>` file). Everything else (which
 * capabilities, where the MSI-X table is, whether MSI is on) is read from config space.
 */
export interface MsiDevice {
  readonly address: PciAddress;
  readonly configSizeBytes: number;
  readConfig(byteOffset: number, sizeBytes: ConfigAccessSize): ConfigReadResult;
  writeConfig(byteOffset: number, sizeBytes: ConfigAccessSize, value: number): number;
  /** `pci_intx`. */
  intx(enable: boolean): void;
  /** `dev->irq` becomes the MSI IRQ (`undefined`: back to the legacy IRQ). */
  setMsiIrq(irq: number | undefined): void;
  /** The power state (0 = D0). */
  powerState(): number;
  /** One dword write to BAR memory; dropped when the BAR is not decoded. */
  writeBarDword(bar: number, byteOffset: number, value: number): void;
}

/** What a {@link SimMsiControl} uses of the simulated host. */
export interface SimMsiEnvironment {
  /** dom0's IRQ layer (IRQ numbers and messages). */
  readonly irqs: SimIrqLayer;
  /** Xen's pirq mappings. */
  readonly pirqs: SimPirqSpace;
  /** Which domain the device's vectors are mapped into. */
  readonly owners: DeviceOwnerRegistry;
  readonly logger?: Logger;
}

interface Enabled {
  readonly kind: 'msi' | 'msix';
  readonly irqs: readonly number[];
  /** MSI-X table entries, in request order (empty for MSI). */
  readonly entries: readonly number[];
  readonly domid: DomId;
}

/**
 * The MSI layer of one simulated device.
 *
 * @example
 * const msi = new SimMsiControl(host, { irqs, pirqs, owners });
 * owners.register(host.address, guest);
 * msi.enableMsi(1); // 0; host.irq() is now the MSI IRQ
 * msi.pirqOfIrq(host.irq()); // 0x100, a pirq of the guest
 */
export class SimMsiControl implements HostMsiControl {
  /** The device. */
  readonly device: MsiDevice;
  readonly #reader: ConfigReader;
  readonly #irqs: SimIrqLayer;
  readonly #pirqs: SimPirqSpace;
  readonly #owners: DeviceOwnerRegistry;
  readonly #logger: Logger;
  #enabled: Enabled | undefined;

  constructor(device: MsiDevice, env: SimMsiEnvironment) {
    this.device = device;
    this.#reader = {
      sizeBytes: device.configSizeBytes,
      read8: (at) => device.readConfig(at, 1).value,
      read16: (at) => device.readConfig(at, 2).value,
      read32: (at) => device.readConfig(at, 4).value,
    };
    this.#irqs = env.irqs;
    this.#pirqs = env.pirqs;
    this.#owners = env.owners;
    this.#logger = env.logger ?? SILENT_LOGGER;
  }

  /** {@inheritDoc HostMsiControl.msiEnabled} */
  msiEnabled(): boolean {
    return this.#flagBit(PCI_CAP_ID.MSI, PCI_MSI_FLAGS_OFFSET, PCI_MSI_FLAGS_ENABLE);
  }

  /** {@inheritDoc HostMsiControl.msixEnabled} */
  msixEnabled(): boolean {
    return this.#flagBit(PCI_CAP_ID.MSIX, PCI_MSIX_FLAGS_OFFSET, PCI_MSIX_FLAGS_ENABLE);
  }

  /** {@inheritDoc HostMsiControl.msiIrqs} */
  msiIrqs(): readonly number[] {
    const e = this.#enabled;
    return e?.kind === 'msi' && this.msiEnabled() ? e.irqs : [];
  }

  /** The IRQs of the enabled MSI-X entries, in request order (empty when MSI-X is off). */
  msixIrqs(): readonly number[] {
    const e = this.#enabled;
    return e?.kind === 'msix' && this.msixEnabled() ? e.irqs : [];
  }

  /** The domain the enabled vectors are mapped into, if any are. */
  mappedDomain(): DomId | undefined {
    return this.#enabled?.domid;
  }

  /**
   * {@inheritDoc HostMsiControl.enableMsi}
   *
   * Checks in Linux's order: bad `nvec` (not a power of two in 1..32) -22; function not
   * in D0 -22; MSI-X or MSI already enabled -22; no MSI capability -22; more vectors than
   * Multiple Message Capable -28; then IRQ allocation (-28) and pirq mapping (-28, or -3
   * when the owner domain is gone).
   */
  enableMsi(nvec: number): number {
    if (
      !Number.isInteger(nvec) ||
      nvec < 1 ||
      nvec > MSI_MAX_VECTORS ||
      (nvec & (nvec - 1)) !== 0
    ) {
      return EINVAL;
    }
    if (this.device.powerState() !== 0) return EINVAL;
    this.#releaseStale();
    if (this.msixEnabled() || this.msiEnabled()) return EINVAL;
    const cap = findCapability(this.#reader, PCI_CAP_ID.MSI);
    if (cap === undefined) return EINVAL;
    const flagsAt = cap + PCI_MSI_FLAGS_OFFSET;
    const flags = this.#read(flagsAt, 2);
    const capable = 1 << Math.min((flags & PCI_MSI_FLAGS_QMASK) >> 1, 5);
    if (nvec > capable) return ENOSPC;

    const mapped = this.#allocateAndMap(nvec, 'block');
    if (typeof mapped === 'number') return mapped;
    const { allocation, domid } = mapped;
    const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    const maskable = (flags & PCI_MSI_FLAGS_MASKBIT) !== 0;
    const maskAt = cap + (is64 ? PCI_MSI_MASK_64_OFFSET : PCI_MSI_MASK_32_OFFSET);
    const capableMask = capable >= 32 ? 0xffffffff : (1 << capable) - 1;
    const message = allocation.messages[0] ?? { address: 0n, data: 0 };

    // msi_capability_init: disable, mask every vector, write the message and Multiple
    // Message Enable (__pci_write_msi_msg), INTx off, enable; the IRQ startup then unmasks.
    this.#write(flagsAt, 2, flags & ~PCI_MSI_FLAGS_ENABLE);
    if (maskable) this.#write(maskAt, 4, capableMask);
    this.#write(cap + PCI_MSI_ADDRESS_LO_OFFSET, 4, Number(message.address & 0xffffffffn));
    if (is64) {
      this.#write(cap + PCI_MSI_ADDRESS_HI_OFFSET, 4, Number(message.address >> 32n));
    }
    this.#write(cap + (is64 ? PCI_MSI_DATA_64_OFFSET : PCI_MSI_DATA_32_OFFSET), 2, message.data);
    const qsize = (31 - Math.clz32(nvec)) << 4;
    const programmed = (flags & ~(PCI_MSI_FLAGS_QSIZE | PCI_MSI_FLAGS_ENABLE)) | qsize;
    this.#write(flagsAt, 2, programmed);
    this.device.intx(false);
    this.#write(flagsAt, 2, programmed | PCI_MSI_FLAGS_ENABLE);
    if (maskable) this.#write(maskAt, 4, capableMask & ~((nvec >= 32 ? 0 : 1 << nvec) - 1));

    this.#enabled = { kind: 'msi', irqs: allocation.irqs, entries: [], domid };
    this.device.setMsiIrq(allocation.irqs[0]);
    this.#logger.debug(
      { device: this.device.address.toString(), irqs: allocation.irqs, domid },
      'MSI enabled',
    );
    return 0;
  }

  /** {@inheritDoc HostMsiControl.disableMsi} */
  disableMsi(): void {
    const cap = findCapability(this.#reader, PCI_CAP_ID.MSI);
    if (cap !== undefined) {
      const flagsAt = cap + PCI_MSI_FLAGS_OFFSET;
      const flags = this.#read(flagsAt, 2);
      if ((flags & PCI_MSI_FLAGS_ENABLE) !== 0 || this.#enabled?.kind === 'msi') {
        // pci_msi_shutdown: disable, INTx back on, leave the vectors unmasked.
        this.#write(flagsAt, 2, flags & ~PCI_MSI_FLAGS_ENABLE);
        this.device.intx(true);
        if ((flags & PCI_MSI_FLAGS_MASKBIT) !== 0) {
          const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
          this.#write(cap + (is64 ? PCI_MSI_MASK_64_OFFSET : PCI_MSI_MASK_32_OFFSET), 4, 0);
        }
      }
    }
    if (this.#enabled?.kind === 'msi') this.#release();
  }

  /**
   * {@inheritDoc HostMsiControl.enableMsix}
   *
   * Errors (Linux's `__pci_enable_msix_range` order): no entries or function not in D0
   * -22; no MSI-X capability -22; an entry outside the table or a duplicate -22; MSI or
   * MSI-X already enabled -22; IRQ allocation or pirq mapping -28 (-3 owner gone).
   */
  enableMsix(entries: readonly number[]): MsixEnableResult {
    const fail = (errno: number): MsixEnableResult => ({ ok: false, errno });
    const device = this.device;
    if (entries.length < 1 || device.powerState() !== 0) return fail(EINVAL);
    const cap = findCapability(this.#reader, PCI_CAP_ID.MSIX);
    const layout = msixTableOf(this.#reader);
    if (cap === undefined || layout === undefined) return fail(EINVAL);
    const tableSize = layout.entries;
    const seen = new Set<number>();
    for (const entry of entries) {
      if (!Number.isInteger(entry) || entry < 0 || entry >= tableSize || seen.has(entry)) {
        return fail(EINVAL);
      }
      seen.add(entry);
    }
    this.#releaseStale();
    if (this.msiEnabled() || this.msixEnabled()) return fail(EINVAL);

    const mapped = this.#allocateAndMap(entries.length, 'separate');
    if (typeof mapped === 'number') return fail(mapped);
    const { allocation, domid } = mapped;
    const flagsAt = cap + PCI_MSIX_FLAGS_OFFSET;
    const flags = this.#read(flagsAt, 2);
    const { bar, byteOffset } = layout;
    const entryAt = (entry: number, field: number): number =>
      byteOffset + entry * PCI_MSIX_ENTRY_SIZE + field;

    // msix_capability_init: enable with the function masked, mask every entry, write the
    // messages, (IRQ startup) unmask the used entries, INTx off, clear the function mask.
    this.#write(flagsAt, 2, flags | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    for (let entry = 0; entry < tableSize; entry++) {
      device.writeBarDword(
        bar,
        entryAt(entry, PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET),
        PCI_MSIX_ENTRY_CTRL_MASKBIT,
      );
    }
    entries.forEach((entry, i) => {
      const message = allocation.messages[i] ?? { address: 0n, data: 0 };
      device.writeBarDword(
        bar,
        entryAt(entry, PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET),
        Number(message.address & 0xffffffffn),
      );
      device.writeBarDword(
        bar,
        entryAt(entry, PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET),
        Number(message.address >> 32n),
      );
      device.writeBarDword(bar, entryAt(entry, PCI_MSIX_ENTRY_DATA_OFFSET), message.data);
      device.writeBarDword(bar, entryAt(entry, PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET), 0);
    });
    this.device.intx(false);
    this.#write(flagsAt, 2, (flags | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL);

    this.#enabled = { kind: 'msix', irqs: allocation.irqs, entries: [...entries], domid };
    this.#logger.debug(
      { device: this.device.address.toString(), entries, irqs: allocation.irqs, domid },
      'MSI-X enabled',
    );
    return { ok: true, irqs: allocation.irqs };
  }

  /** {@inheritDoc HostMsiControl.disableMsix} */
  disableMsix(): void {
    const cap = findCapability(this.#reader, PCI_CAP_ID.MSIX);
    const layout = msixTableOf(this.#reader);
    if (cap !== undefined && layout !== undefined) {
      const flagsAt = cap + PCI_MSIX_FLAGS_OFFSET;
      const flags = this.#read(flagsAt, 2);
      if ((flags & PCI_MSIX_FLAGS_ENABLE) !== 0 || this.#enabled?.kind === 'msix') {
        // pci_msix_shutdown: mask the used entries, disable, INTx back on.
        const used = this.#enabled?.kind === 'msix' ? this.#enabled.entries : [];
        for (const entry of used) {
          this.device.writeBarDword(
            layout.bar,
            layout.byteOffset + entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET,
            PCI_MSIX_ENTRY_CTRL_MASKBIT,
          );
        }
        this.#write(flagsAt, 2, flags & ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL));
        this.device.intx(true);
      }
    }
    if (this.#enabled?.kind === 'msix') this.#release();
  }

  /**
   * {@inheritDoc HostMsiControl.pirqOfIrq}
   *
   * An MSI IRQ answers its pirq in the owner domain. A legacy line answers its own
   * number: dom0's GSI pirqs equal the GSI, and the toolstack maps a passed-through
   * device's GSI into the guest with the same number. Anything else is 0.
   */
  pirqOfIrq(irq: number): number {
    const mapping = this.#pirqs.lookup(irq);
    if (mapping !== undefined) return mapping.pirq;
    return this.#irqs.isLegacyLine(irq) ? irq : 0;
  }

  /**
   * Releases everything (device removed from the host): disables MSI/MSI-X if this
   * layer enabled them.
   */
  dispose(): void {
    if (this.#enabled?.kind === 'msi') this.disableMsi();
    else if (this.#enabled?.kind === 'msix') this.disableMsix();
  }

  #allocateAndMap(
    count: number,
    layout: 'block' | 'separate',
  ): { allocation: MsiAllocation; domid: DomId } | number {
    const allocation = this.#irqs.allocateMsi(count, layout);
    if (typeof allocation === 'number') return allocation;
    const domid = this.#owners.find(this.device.address) ?? DOM0;
    for (const irq of allocation.irqs) {
      const pirq = this.#pirqs.map(domid, irq);
      if (pirq < 0) {
        for (const done of allocation.irqs) this.#pirqs.unmap(done);
        this.#irqs.freeMsi(allocation.irqs);
        this.#logger.warn(
          { device: this.device.address.toString(), domid, errno: pirq },
          `Cannot map MSI IRQ ${irq} of "${this.device.address.toString()}" into domain ${domid}: errno ${pirq}`,
        );
        return pirq;
      }
    }
    return { allocation, domid };
  }

  /** Unmaps and frees the recorded vectors; `dev->irq` returns to the legacy IRQ. */
  #release(): void {
    const e = this.#enabled;
    if (e === undefined) return;
    for (const irq of e.irqs) this.#pirqs.unmap(irq);
    this.#irqs.freeMsi(e.irqs);
    this.#enabled = undefined;
    if (e.kind === 'msi') this.device.setMsiIrq(undefined);
  }

  /** Drops a record whose enable bit the hardware has lost (a reset). */
  #releaseStale(): void {
    const e = this.#enabled;
    if (e === undefined) return;
    const on = e.kind === 'msi' ? this.msiEnabled() : this.msixEnabled();
    if (!on) this.#release();
  }

  /** A flag of a capability's control register, false without the capability. */
  #flagBit(capId: number, flagsOffset: number, bit: number): boolean {
    const cap = findCapability(this.#reader, capId);
    if (cap === undefined) return false;
    const flags = this.device.readConfig(cap + flagsOffset, 2);
    return flags.err === 0 && (flags.value & bit) !== 0;
  }

  #read(byteOffset: number, sizeBytes: 2 | 4): number {
    return this.device.readConfig(byteOffset, sizeBytes).value;
  }

  #write(byteOffset: number, sizeBytes: 2 | 4, value: number): void {
    this.device.writeConfig(byteOffset, sizeBytes, value >>> 0);
  }
}
