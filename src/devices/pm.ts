// SPDX-License-Identifier: MIT
/**
 * Power Management capability (PCI PM 1.2 §7.3, PCIe 6.0 §7.5.2).
 *
 * PMCSR: PowerState RW (a write of D1 or D2 that PMC does not support is discarded,
 * as §7.3.2 asks), No_Soft_Reset RO, PME_Enable RW and sticky, Data_Select RW,
 * Data_Scale RO, PME_Status RW1C and sticky. PME_Enable/PME_Status are implemented
 * when PMC advertises PME from any state. A D3hot->D0 transition with No_Soft_Reset
 * clear resets the function. The Data register reads what the image holds for every
 * Data_Select value.
 */
import {
  PCI_D0,
  PCI_D1,
  PCI_D2,
  PCI_D3HOT,
  PCI_PM_CAP_D1,
  PCI_PM_CAP_D2,
  PCI_PM_CAP_PME_MASK,
  PCI_PM_CTRL_DATA_SEL_MASK,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_OFFSET,
  PCI_PM_CTRL_PME_ENABLE,
  PCI_PM_CTRL_PME_STATUS,
  PCI_PM_CTRL_STATE_MASK,
  PCI_PM_PMC_OFFSET,
} from '../abi/pci-regs.js';
import { touches, type ConfigWriteAccess } from './access.js';
import type { DeviceFeature, FunctionContext } from './feature.js';

/** The PM capability of one function. */
export class PowerManagementFeature implements DeviceFeature {
  readonly #ctx: FunctionContext;
  readonly #pmcsrOffset: number;
  readonly #pmc: number;
  #state: number;

  constructor(ctx: FunctionContext, capOffset: number) {
    this.#ctx = ctx;
    this.#pmcsrOffset = capOffset + PCI_PM_CTRL_OFFSET;
    this.#pmc = ctx.regs.read(capOffset + PCI_PM_PMC_OFFSET, 2);
    const pmeCapable = (this.#pmc & PCI_PM_CAP_PME_MASK) !== 0;
    const pme = pmeCapable ? PCI_PM_CTRL_PME_ENABLE : 0;
    ctx.regs.setMask(
      'writable',
      this.#pmcsrOffset,
      2,
      PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_DATA_SEL_MASK | pme,
    );
    ctx.regs.setMask('rw1c', this.#pmcsrOffset, 2, pmeCapable ? PCI_PM_CTRL_PME_STATUS : 0);
    ctx.regs.setMask(
      'sticky',
      this.#pmcsrOffset,
      2,
      pmeCapable ? PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS : 0,
    );
    this.#state = this.#readState();
  }

  /** Current power state, 0 (D0) .. 3 (D3hot). */
  powerState(): number {
    return this.#state;
  }

  /** True when PMC says the function supports `state`. */
  supports(state: number): boolean {
    if (state === PCI_D1) return (this.#pmc & PCI_PM_CAP_D1) !== 0;
    if (state === PCI_D2) return (this.#pmc & PCI_PM_CAP_D2) !== 0;
    return state === PCI_D0 || state === PCI_D3HOT;
  }

  /** True when a D3hot->D0 transition resets the function (No_Soft_Reset clear). */
  softResetOnD0(): boolean {
    return (this.#ctx.regs.read(this.#pmcsrOffset, 2) & PCI_PM_CTRL_NO_SOFT_RESET) === 0;
  }

  afterConfigWrite(access: ConfigWriteAccess): void {
    if (!touches(access, { byteOffset: this.#pmcsrOffset, sizeBytes: 2 })) return;
    const previous = this.#state;
    let next = this.#readState();
    if (!this.supports(next)) {
      // PCI PM 1.2 §7.3.2: an unsupported state is discarded, no state change.
      next = previous;
      const pmcsr = this.#ctx.regs.read(this.#pmcsrOffset, 2);
      this.#ctx.regs.set(this.#pmcsrOffset, 2, (pmcsr & ~PCI_PM_CTRL_STATE_MASK) | previous);
    }
    this.#state = next;
    if (previous === PCI_D3HOT && next === PCI_D0 && this.softResetOnD0()) {
      this.#ctx.requestReset('pm');
    }
  }

  afterReset(): void {
    this.#state = this.#readState();
  }

  #readState(): number {
    return this.#ctx.regs.read(this.#pmcsrOffset, 2) & PCI_PM_CTRL_STATE_MASK;
  }
}
