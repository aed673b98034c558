// SPDX-License-Identifier: MIT
/**
 * The per-device backend state pciback keeps for a seized device (`struct
 * xen_pcibk_dev_data`, spec §3.2): the config-space virtualizer, the fake INTx handler
 * for shared level-triggered lines (§4.6) and "make the device safe" (§4.7).
 */
import {
  PCI_REVISION_ID_OFFSET,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_OFFSET,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_NORMAL,
} from '../../abi/pci-regs.js';
import type { PciAddress } from '../../pci/address.js';
import type { HostIrqLines, HostMsiControl, HostPciDevice, Logger } from '../../platform/types.js';
import { SILENT_LOGGER } from '../../platform/types.js';
import {
  VirtualConfigSpace,
  type DevicePolicy,
  type GlobalConfigPolicy,
} from '../confspace/index.js';
import type { TopologyDevice } from '../topology/index.js';
import { createOpCounts, type OpCounts } from './op-counts.js';
import { RateLimiter } from './rate-limit.js';

/**
 * What the ops need of one seized device from the platform: the function itself, its MSI
 * layer, its physical function (for an SR-IOV VF) and the IRQ layer of legacy lines.
 */
export interface BackendDevice {
  /** The function as the PCI core sees it. */
  readonly host: HostPciDevice;
  /** Its MSI/MSI-X layer with Xen's pirq mapping. */
  readonly msi: HostMsiControl;
  /**
   * For an SR-IOV virtual function, its PF (`pci_physfn(dev)`): enable_msix checks the
   * PF's real command register for MEMORY (XSA-157 follow-up "Check PF instead of VF").
   * Undefined for any other function.
   */
  readonly physfn?: HostPciDevice;
  /** Shared INTx lines (`request_irq`/`free_irq`, Xen's "is this line shared" query). */
  readonly irqLines: HostIrqLines;
}

/** How often the fake handler asks Xen whether the line is still shared (§4.6). */
export const FAKE_IRQ_SHARED_CHECK_INTERVAL = 1000;

/** Options of {@link PcibackDevice.create}. */
export interface PcibackDeviceOptions {
  /** Module-wide config policy (`permissive`). */
  readonly global: GlobalConfigPolicy;
  /** This device's policy; all off when omitted. */
  readonly policy?: DevicePolicy;
  readonly logger?: Logger;
  /**
   * Limiter for the guest-triggerable "error enabling MSI" warnings (CVE-2013-0231).
   * Pass one shared instance to bound output across devices, as Linux's per-call-site
   * limit does; default: a limiter of this device with Linux's 10 per 5 s.
   */
  readonly warnLimiter?: RateLimiter;
  /** Bridges above the device, nearest first (for the passthrough topology). */
  readonly upstreamBridges?: readonly PciAddress[];
}

/** A plain snapshot of a device's counters and interrupt state (sim output, sysfs). */
export interface PcibackDeviceStats {
  /** `pci_name`, `DDDD:BB:DD.F`. */
  readonly device: string;
  /** Ops addressed to this device, by command. */
  readonly opsByCmd: Readonly<OpCounts>;
  /** Denied guest writes (sum of the confspace audit counters). */
  readonly deniedWrites: number;
  /** Interrupts claimed by the fake INTx handler (`handled`). */
  readonly handled: number;
  readonly enableIntx: boolean;
  readonly isrOn: boolean;
  readonly ackIntr: boolean;
  /** IRQ the fake handler was installed on (0: none). */
  readonly irq: number;
}

/**
 * `xen_pcibk_dev_data` plus the `pci_dev` it belongs to. Also a {@link TopologyDevice},
 * so a topology can hold it directly.
 *
 * @example
 * const dev = PcibackDevice.create({ host, msi, irqLines }, { global: { permissive: false } });
 * topology.add(dev, 0, publish);
 * dev.controlIsr(false);
 */
export class PcibackDevice implements TopologyDevice {
  /** Platform services of the device. */
  readonly backend: BackendDevice;
  /** The config-space virtualizer (`config_fields`). */
  readonly config: VirtualConfigSpace;
  /** `irq_name`: `xen-pciback[DDDD:BB:DD.F]`. */
  readonly irqName: string;
  /** Guest-triggerable warnings go through this limiter. */
  readonly warnLimiter: RateLimiter;
  readonly logger: Logger;
  readonly address: PciAddress;
  readonly classCode: number;
  readonly isVirtualFn: boolean;
  readonly #upstream: readonly PciAddress[];
  readonly #opsByCmd: OpCounts = createOpCounts();
  /** `isr_on`: the fake handler is considered installed. */
  #isrOn = false;
  /** `ack_intr`: the fake handler claims interrupts. */
  #ackIntr = false;
  /** `handled`: never reset while seized. */
  #handled = 0;
  /** `irq`: the Linux IRQ saved when the handler was installed. */
  #irq = 0;
  /** The handler object given to `requestSharedIrq` (identity matters for free). */
  readonly #handler = (): boolean => this.#fakeIrqHandler();

  private constructor(
    backend: BackendDevice,
    config: VirtualConfigSpace,
    options: PcibackDeviceOptions,
  ) {
    this.backend = backend;
    this.config = config;
    this.address = backend.host.address;
    this.irqName = `xen-pciback[${this.address.toString()}]`;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.warnLimiter = options.warnLimiter ?? new RateLimiter();
    const classRev = backend.host.readConfig(PCI_REVISION_ID_OFFSET, 4);
    this.classCode = classRev.err === 0 ? classRev.value >>> 8 : 0;
    this.isVirtualFn = backend.physfn !== undefined;
    this.#upstream = Object.freeze([...(options.upstreamBridges ?? [])]);
  }

  /**
   * Build the backend state of a device being seized: the virtualizer's field list is
   * created now (its init handlers run against the hardware).
   *
   * @throws PcibackError from {@link VirtualConfigSpace.create} (unsupported header,
   *   failed field init).
   */
  static create(backend: BackendDevice, options: PcibackDeviceOptions): PcibackDevice {
    const config = VirtualConfigSpace.create(backend.host, {
      global: options.global,
      ...(options.policy !== undefined ? { policy: options.policy } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
      // No onIntxChange: the op layer compares enable_intx around each op and calls
      // controlIsr only when the op succeeded (§4.3 step 5), once.
    });
    return new PcibackDevice(backend, config, options);
  }

  /** Wrap a virtualizer built elsewhere (it must not call controlIsr through onIntxChange). */
  static fromConfigSpace(
    backend: BackendDevice,
    config: VirtualConfigSpace,
    options: PcibackDeviceOptions,
  ): PcibackDevice {
    return new PcibackDevice(backend, config, options);
  }

  /** {@link TopologyDevice.upstreamBridges}. */
  upstreamBridges(): readonly PciAddress[] {
    return this.#upstream;
  }

  /** `enable_intx`: the guest turned decoding on (kept by the virtualizer). */
  get enableIntx(): boolean {
    return this.config.intxEnabled;
  }

  /** `isr_on`. */
  get isrOn(): boolean {
    return this.#isrOn;
  }

  /** `ack_intr`. */
  get ackIntr(): boolean {
    return this.#ackIntr;
  }

  /** `handled`. */
  get handled(): number {
    return this.#handled;
  }

  /** The IRQ the fake handler is installed on, 0 when none. */
  get irq(): number {
    return this.#irq;
  }

  /**
   * Set `ack_intr` (the MSI ops: 0 on enable, 1 on a disable that disabled; §4.6).
   * Only the op layer and the stub's `irq_handler_state` should call this.
   */
  setAckIntr(ack: boolean): void {
    this.#ackIntr = ack;
  }

  /**
   * The stub's `irq_handler_state` (spec §6.5): flip `isr_on` only (the IRQ is neither
   * requested nor freed); turning it on also sets `ack_intr`. Returns the new `isr_on`.
   */
  toggleIsrOn(): boolean {
    this.#isrOn = !this.#isrOn;
    if (this.#isrOn) this.#ackIntr = true;
    return this.#isrOn;
  }

  /** Count one op addressed to this device. */
  countOp(name: keyof OpCounts): void {
    this.#opsByCmd[name]++;
  }

  /**
   * `xen_pcibk_control_isr` (§4.6): install or remove the fake INTx handler to match
   * `enable_intx`. With `reset`, `enable_intx` and `ack_intr` are cleared first (the
   * handler is removed). Never throws for platform refusals: they are logged.
   */
  controlIsr(reset: boolean): void {
    const host = this.backend.host;
    // Bridges get no fake handler.
    if (host.headerType !== PCI_HEADER_TYPE_NORMAL) return;
    if (reset) {
      this.config.clearIntxEnabled();
      this.#ackIntr = false;
    }
    const enable = this.config.intxEnabled;
    if (!enable && !this.#isrOn) return;
    // Already installed: the original only gets here on a change of enable_intx; a second
    // request_irq with the same cookie would register the handler twice.
    if (enable && this.#isrOn) return;
    // Saved now because enabling MSI later overwrites dev->irq.
    if (enable) this.#irq = host.irq();
    const name = this.address.toString();
    if (this.#irq === 0) {
      // SR-IOV VFs have no legacy IRQ: never request IRQ 0.
      this.logger.info(
        { device: name, enable },
        `Not ${enable ? 'installing' : 'removing'} the fake INTx handler of "${name}": it has no legacy IRQ`,
      );
      return;
    }
    if (enable) {
      // XSA-157 (c): with MSI on, dev->irq is the MSI IRQ; a handler on it makes
      // disable_msi hit BUG_ON(irq_has_action). MSI-X for symmetry.
      const { msi } = this.backend;
      if (msi.msiEnabled() || msi.msixEnabled()) return;
      const err = this.backend.irqLines.requestSharedIrq(this.#irq, this.irqName, this.#handler);
      if (err !== 0) {
        this.logger.error(
          { device: name, irq: this.#irq, err },
          `Cannot install the fake INTx handler of "${name}" on IRQ ${this.#irq}: error ${err}`,
        );
        return;
      }
    } else {
      this.backend.irqLines.freeIrq(this.#irq, this.irqName);
      this.#irq = 0;
    }
    this.#isrOn = enable;
    this.#ackIntr = enable;
  }

  /** `xen_pcibk_guest_interrupt`: claim the interrupt for the guest while acking. */
  #fakeIrqHandler(): boolean {
    if (!this.#isrOn || !this.#ackIntr) return false;
    this.#handled++;
    if (this.#handled % FAKE_IRQ_SHARED_CHECK_INTERVAL === 0) {
      if (!this.backend.irqLines.isSharedWithOtherDomains(this.#irq)) {
        const name = this.address.toString();
        this.logger.info(
          { device: name, irq: this.#irq },
          `IRQ line ${this.#irq} of "${name}" is not shared with other domains: turning ISR off`,
        );
        this.#ackIntr = false;
      }
    }
    return true;
  }

  /**
   * `xen_pcibk_reset_device` (§4.7): remove the fake handler, turn MSI-X/MSI off and
   * drop the enable count (bus mastering goes off in hardware; decode stays on). The
   * command register is never written with 0 (XSA-120 addendum, CVE-2015-8553). For a
   * bridge only MWI (INVALIDATE) is cleared.
   */
  resetDevice(): void {
    this.controlIsr(true);
    const { host, msi } = this.backend;
    if (host.headerType === PCI_HEADER_TYPE_NORMAL) {
      if (msi.msixEnabled()) msi.disableMsix();
      if (msi.msiEnabled()) msi.disableMsi();
      // pci_disable_device clears MASTER and dev->is_busmaster when the count drops to 0.
      if (host.isEnabled()) host.disableDevice();
    } else if (host.headerType === PCI_HEADER_TYPE_BRIDGE) {
      const cmd = host.readConfig(PCI_COMMAND_OFFSET, 2);
      if (cmd.err === 0 && (cmd.value & PCI_COMMAND_INVALIDATE) !== 0) {
        host.writeConfig(PCI_COMMAND_OFFSET, 2, cmd.value & ~PCI_COMMAND_INVALIDATE);
      }
    }
  }

  /** Counters and interrupt state as plain data. */
  stats(): PcibackDeviceStats {
    let denied = 0;
    for (const d of this.config.deniedWrites()) denied += d.count;
    return {
      device: this.address.toString(),
      opsByCmd: { ...this.#opsByCmd },
      deniedWrites: denied,
      handled: this.#handled,
      enableIntx: this.config.intxEnabled,
      isrOn: this.#isrOn,
      ackIntr: this.#ackIntr,
      irq: this.#irq,
    };
  }
}
