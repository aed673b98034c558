// SPDX-License-Identifier: MIT
/**
 * The simulator's interrupt plumbing in one place: dom0's IRQ layer, Xen's pirq spaces,
 * the device-owner registry, and per device its MSI layer and the hooks through which
 * its simulated hardware reports MSI/MSI-X messages and INTx levels.
 *
 * Composition: build the hooks first (the hardware takes them at construction), then
 * attach the host device, which wires its INTx line and creates its MSI layer:
 *
 * ```ts
 * const interrupts = new SimInterrupts(xen.eventArea);
 * const fns = buildCatalogDevice('nic-sriov', { irq: 16, hooks: interrupts.catalogHooks(slot) });
 * const host = new SimHostPciDevice(fns[0].device, { address: slot, irq: 16 });
 * const msi = interrupts.attach(host); // HostMsiControl for pciback
 * ```
 *
 * A message is decoded by its (address, data) as the interrupt controller would, to a
 * dom0 IRQ, then to the (domain, pirq) it is mapped to, then to the port the domain bound
 * to that pirq, which is set pending in the shared event area (waking the guest).
 */
import type { MsiMessage, DeviceHooks } from '../../../devices/hooks.js';
import { PciAddress } from '../../../pci/address.js';
import type { Logger } from '../../types.js';
import { SILENT_LOGGER } from '../../types.js';
import type { SimHostPciDevice } from '../pci-core.js';
import type { EventArea } from '../xen/index.js';
import { SimDeviceOwners } from './device-owners.js';
import { SimIrqLayer, type SimIrqLayerOptions } from './irq-layer.js';
import { SimMsiControl } from './msi-control.js';
import { SimPirqSpace, type SimPirqSpaceOptions } from './pirq-space.js';

/** Message counters of one mechanism of one device. */
export interface MessageCounters {
  /** Messages the function sent. */
  raised: number;
  /** Of those, messages that set a port pending in the owner domain. */
  delivered: number;
  /**
   * Of those, messages that reached nobody: unknown (address, data), IRQ not mapped,
   * domain gone, or no port bound to the pirq.
   */
  undelivered: number;
}

/** Interrupt statistics of one device. */
export interface DeviceInterruptStats {
  /** `pci_name`. */
  readonly device: string;
  readonly msi: Readonly<MessageCounters>;
  readonly msix: Readonly<MessageCounters>;
  /** INTx rising edges the function reported. */
  readonly intxAssertions: number;
  /** The legacy line it is wired to (0: none, or not attached yet). */
  readonly irq: number;
}

/** Options of {@link SimInterrupts}. */
export interface SimInterruptsOptions {
  logger?: Logger;
  /** Options of the IRQ layer (logger aside). */
  irqLayer?: Omit<SimIrqLayerOptions, 'logger'>;
  /** Options of the pirq spaces. */
  pirqs?: SimPirqSpaceOptions;
  /** A registry shared with other parts (default: a new one). */
  owners?: SimDeviceOwners;
}

interface DeviceRecord {
  readonly key: string;
  host: SimHostPciDevice | undefined;
  msiControl: SimMsiControl | undefined;
  /** Line the device is wired to (0 none). */
  irq: number;
  /** Last INTx level the hardware reported. */
  intxLevel: boolean;
  intxAssertions: number;
  readonly msi: MessageCounters;
  readonly msix: MessageCounters;
}

/**
 * The interrupt plumbing of a simulated host.
 *
 * @example
 * const interrupts = new SimInterrupts(xen.eventArea);
 * const hooks = interrupts.deviceHooks(address);
 * const host = new SimHostPciDevice(functionFromDump(dump, { hooks }), { address, irq: 16 });
 * const msi = interrupts.attach(host);
 * interrupts.owners.register(address, guest);
 * msi.enableMsi(1);
 */
export class SimInterrupts {
  /** dom0's IRQ layer (also the `HostIrqLines` pciback uses). */
  readonly irqs: SimIrqLayer;
  /** Xen's pirq mappings. */
  readonly pirqs: SimPirqSpace;
  /** The device-owner registry. */
  readonly owners: SimDeviceOwners;
  readonly #logger: Logger;
  readonly #devices = new Map<string, DeviceRecord>();

  constructor(events: EventArea, options: SimInterruptsOptions = {}) {
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.irqs = new SimIrqLayer({ ...options.irqLayer, logger: this.#logger });
    this.pirqs = new SimPirqSpace(events, options.pirqs);
    this.owners = options.owners ?? new SimDeviceOwners();
  }

  /**
   * The hooks for the function at `address`: its MSI/MSI-X messages are delivered and
   * counted, its INTx level drives its legacy line once {@link attach}ed. Calling it
   * again for the same address gives hooks feeding the same counters.
   */
  deviceHooks(address: PciAddress): DeviceHooks {
    const record = this.#record(address.toString());
    return {
      onMessage: (message) => {
        this.#onMessage(record, message);
      },
      onIntx: (asserted) => {
        this.#onIntx(record, asserted);
      },
    };
  }

  /**
   * Hooks for a catalog device in slot `slot` (the catalog's per-function form): function
   * `fn` gets the hooks of `slot` with that function number.
   */
  catalogHooks(slot: PciAddress): (fn: number) => DeviceHooks {
    return (fn) => this.deviceHooks(new PciAddress(slot.domain, slot.bus, slot.device, fn));
  }

  /**
   * Attaches a host device: wires its legacy IRQ (if any) as an INTx source and creates
   * its MSI layer. Attaching the same device again returns the same layer.
   *
   * @throws {RangeError} when another device object is already attached at the address.
   */
  attach(host: SimHostPciDevice): SimMsiControl {
    const key = host.address.toString();
    const record = this.#record(key);
    if (record.host !== undefined && record.msiControl !== undefined) {
      if (record.host === host) return record.msiControl;
      throw new RangeError(`Cannot attach device "${key}": another device is attached there`);
    }
    record.host = host;
    const msiControl = new SimMsiControl(host, {
      irqs: this.irqs,
      pirqs: this.pirqs,
      owners: this.owners,
      logger: this.#logger,
    });
    record.msiControl = msiControl;
    const irq = host.legacyIrq;
    if (irq !== 0 && this.irqs.connectIntx(irq, key) === 0) {
      record.irq = irq;
      if (record.intxLevel) this.irqs.setIntxLevel(irq, key, true);
    }
    return msiControl;
  }

  /** Detaches a device: MSI/MSI-X released, INTx unwired. Counters stay readable. */
  detach(address: PciAddress): void {
    const record = this.#devices.get(address.toString());
    if (record === undefined) return;
    record.msiControl?.dispose();
    if (record.irq !== 0) this.irqs.disconnectIntx(record.irq, record.key);
    record.host = undefined;
    record.msiControl = undefined;
    record.irq = 0;
  }

  /** The MSI layer of an attached device. */
  msiControl(address: PciAddress): SimMsiControl | undefined {
    return this.#devices.get(address.toString())?.msiControl;
  }

  /** Interrupt statistics of a device that has hooks or was attached. */
  deviceStats(address: PciAddress): DeviceInterruptStats | undefined {
    const record = this.#devices.get(address.toString());
    return record === undefined ? undefined : snapshot(record);
  }

  /** Statistics of every known device, by address. */
  allDeviceStats(): DeviceInterruptStats[] {
    return [...this.#devices.values()].map(snapshot);
  }

  #record(key: string): DeviceRecord {
    let record = this.#devices.get(key);
    if (record === undefined) {
      record = {
        key,
        host: undefined,
        msiControl: undefined,
        irq: 0,
        intxLevel: false,
        intxAssertions: 0,
        msi: { raised: 0, delivered: 0, undelivered: 0 },
        msix: { raised: 0, delivered: 0, undelivered: 0 },
      };
      this.#devices.set(key, record);
    }
    return record;
  }

  /** Runs inside the hardware's config/MMIO write: only atomics, no handlers. */
  #onMessage(record: DeviceRecord, message: MsiMessage): void {
    const counters = message.source === 'msix' ? record.msix : record.msi;
    counters.raised++;
    const irq = this.irqs.irqOfMessage(message.address, message.data);
    if (irq !== undefined && this.pirqs.deliver(irq)) counters.delivered++;
    else counters.undelivered++;
  }

  #onIntx(record: DeviceRecord, asserted: boolean): void {
    if (asserted && !record.intxLevel) record.intxAssertions++;
    record.intxLevel = asserted;
    if (record.irq !== 0) this.irqs.setIntxLevel(record.irq, record.key, asserted);
  }
}

function snapshot(record: DeviceRecord): DeviceInterruptStats {
  return {
    device: record.key,
    msi: { ...record.msi },
    msix: { ...record.msix },
    intxAssertions: record.intxAssertions,
    irq: record.irq,
  };
}
