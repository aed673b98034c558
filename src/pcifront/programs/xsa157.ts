// SPDX-License-Identifier: MIT
/**
 * Guest program `attack:xsa157` (XSA-157 / CVE-2015-8551, CVE-2015-8552): the op
 * sequences of pciback-fixes P3 rows (a)-(g), sent as raw ops so the backend's own codes
 * are visible (the MSI hooks would fold them into -EINVAL). Each row reports the
 * expected and observed codes and pass / fail / inconclusive / skipped. Host-side
 * effects (no IRQ handler installed, one platform call, a bounded log) are not visible
 * from a guest; the rows say so and the dom0 tests check them.
 */
import { SH_INFO_MAX_VEC, XEN_PCI_ERR, XEN_PCI_OP, type PciOpInit } from '../../abi/pciif.js';
import { PCI_CAP_ID, PCI_COMMAND_MEMORY, PCI_COMMAND_OFFSET } from '../../abi/pci-regs.js';
import type { GuestPciDevice } from '../enumerate.js';
import type { PciOpReply } from '../pcifront.js';
import { ProgramLog, capabilityOf, enableDevice, scan } from './common.js';
import type { GuestProgramEnv, ProgramReport } from './types.js';

/** -EALREADY */
const EALREADY = -114;
/** -ENXIO */
const ENXIO = -6;
/** -EINVAL */
const EINVAL = -22;

/** Outcome of one row. */
export type RowStatus = 'pass' | 'fail' | 'inconclusive' | 'skipped';

/** One row of the XSA-157 table. */
export interface Xsa157Row {
  row: string;
  attack: string;
  target: string | null;
  expected: string;
  observed: string;
  status: RowStatus;
  /** What only dom0 can check. */
  hostSide?: string;
}

/** Repeated enables in row (f). */
export const XSA157_REPEATS = 1000;

function fmt(r: PciOpReply): string {
  return r.timedOut ? 'no answer' : `err ${r.err} value ${r.value | 0}`;
}

/**
 * Runs rows (g), (e), (d), (a), (c), (b), (f) in that order: the order keeps each row's
 * precondition (nothing enabled, memory decode off for (e)) as long as possible.
 */
export function xsa157Program(env: GuestProgramEnv): Promise<ProgramReport> {
  const log = new ProgramLog(env);
  const scanned = scan(env);
  if (scanned.error !== undefined) {
    return Promise.resolve(log.report('attack:xsa157', false, scanned.error, { rows: [] }));
  }
  const msiDev = scanned.devices.find((d) => capabilityOf(d, PCI_CAP_ID.MSI) !== undefined);
  const msixDev = scanned.devices.find((d) => capabilityOf(d, PCI_CAP_ID.MSIX) !== undefined);
  const anyDev = msixDev ?? scanned.devices[0];
  const rows: Xsa157Row[] = [];
  const front = env.front;

  const op = (d: GuestPciDevice, cmd: number, extra: Partial<PciOpInit> = {}): PciOpReply =>
    front.doPciOp({ cmd, domain: d.domain, bus: d.bus, devfn: d.devfn, ...extra });
  const msix = (d: GuestPciDevice, nvec: number): PciOpReply =>
    op(d, XEN_PCI_OP.enable_msix, {
      value: nvec,
      msixEntries: Array.from({ length: Math.min(nvec, SH_INFO_MAX_VEC) }, (_, entry) => ({
        entry,
        vector: 0xffff,
      })),
    });
  const add = (r: Xsa157Row): void => {
    rows.push(r);
    log.line(
      `${r.status.toUpperCase()} (${r.row}) ${r.attack}: expected ${r.expected}, observed ${r.observed}` +
        (r.hostSide !== undefined ? ` [host side: ${r.hostSide}]` : ''),
    );
  };
  const skip = (row: string, attack: string, why: string): void => {
    add({ row, attack, target: null, expected: '-', observed: why, status: 'skipped' });
  };

  // (g) The pre-existing bound: nvec 129 -> -EINVAL before anything else is looked at.
  if (anyDev === undefined) {
    skip('g', 'enable_msix nvec 129', 'no device');
  } else {
    const r = msix(anyDev, SH_INFO_MAX_VEC + 1);
    add({
      row: 'g',
      attack: 'enable_msix nvec 129',
      target: anyDev.address,
      expected: `err ${EINVAL}`,
      observed: fmt(r),
      status: !r.timedOut && r.err === EINVAL ? 'pass' : 'fail',
    });
  }

  // (e) MSI-X with memory decode off -> -ENXIO. The guest can only clear its virtual
  // MEM bit (XSA-120): if the hardware still decodes, the enable is legitimately allowed
  // and the row is inconclusive from the guest side.
  if (msixDev === undefined) {
    skip('e', 'enable_msix with memory decode off', 'no device with MSI-X');
  } else {
    const cmd = front.readConfig(msixDev, PCI_COMMAND_OFFSET, 2);
    if (cmd.pcibios === 0 && (cmd.value & PCI_COMMAND_MEMORY) !== 0) {
      front.writeConfig(msixDev, PCI_COMMAND_OFFSET, 2, cmd.value & ~PCI_COMMAND_MEMORY);
    }
    const r = msix(msixDev, 1);
    const status: RowStatus =
      !r.timedOut && r.err === ENXIO
        ? 'pass'
        : !r.timedOut && r.err === 0
          ? 'inconclusive'
          : 'fail';
    add({
      row: 'e',
      attack: 'enable_msix with memory decode off',
      target: msixDev.address,
      expected: `err ${ENXIO}`,
      observed: fmt(r) + (status === 'inconclusive' ? ' (hardware decode was already on)' : ''),
      status,
    });
    if (r.err === 0) op(msixDev, XEN_PCI_OP.disable_msix);
  }

  // (d) disable while not enabled: err 0, value = pirq of the legacy IRQ (or 0).
  if (msiDev === undefined) {
    skip('d', 'disable_msi while MSI is off', 'no device with MSI');
  } else {
    const r = op(msiDev, XEN_PCI_OP.disable_msi);
    add({
      row: 'd',
      attack: 'disable_msi while MSI is off',
      target: msiDev.address,
      expected: 'err 0, value = legacy pirq',
      observed: fmt(r),
      status: !r.timedOut && r.err === 0 ? 'pass' : 'fail',
      hostSide: 'ack_intr unchanged',
    });
  }

  // (a) enable_msi twice, then disable_msi.
  if (msiDev === undefined) {
    skip('a', 'enable_msi x2 then disable_msi', 'no device with MSI');
  } else {
    const first = op(msiDev, XEN_PCI_OP.enable_msi);
    const second = op(msiDev, XEN_PCI_OP.enable_msi);
    const off = op(msiDev, XEN_PCI_OP.disable_msi);
    const pass =
      first.err === 0 &&
      first.value > 0 &&
      second.err === XEN_PCI_ERR.op_failed &&
      second.value === 0 &&
      off.err === 0 &&
      !off.timedOut;
    add({
      row: 'a',
      attack: 'enable_msi x2 then disable_msi',
      target: msiDev.address,
      expected: `1st err 0 pirq>0; 2nd err ${XEN_PCI_ERR.op_failed} value 0; disable err 0`,
      observed: `1st ${fmt(first)}; 2nd ${fmt(second)}; disable ${fmt(off)}`,
      status: pass ? 'pass' : 'fail',
      hostSide: 'platform enable called once',
    });
  }

  // (c) enable_msi, command write with MEM, disable_msi.
  if (msiDev === undefined) {
    skip('c', 'enable_msi, command MEM write, disable_msi', 'no device with MSI');
  } else {
    const on = op(msiDev, XEN_PCI_OP.enable_msi);
    const cmd = front.readConfig(msiDev, PCI_COMMAND_OFFSET, 2);
    const write = front.writeConfig(
      msiDev,
      PCI_COMMAND_OFFSET,
      2,
      (cmd.pcibios === 0 ? cmd.value : 0) | PCI_COMMAND_MEMORY,
    );
    const off = op(msiDev, XEN_PCI_OP.disable_msi);
    const pass = on.err === 0 && on.value > 0 && write.err === 0 && off.err === 0 && !off.timedOut;
    add({
      row: 'c',
      attack: 'enable_msi, command MEM write, disable_msi',
      target: msiDev.address,
      expected: 'enable err 0; write err 0; disable err 0',
      observed: `enable ${fmt(on)}; write err ${write.err}; disable ${fmt(off)}`,
      status: pass ? 'pass' : 'fail',
      hostSide: 'no INTx handler installed on the MSI IRQ (irq_handlers off)',
    });
  }

  // (b) enable_msix twice (with memory decode on, as a driver would have it).
  if (msixDev === undefined) {
    skip('b', 'enable_msix x2', 'no device with MSI-X');
  } else {
    enableDevice(env, msixDev);
    const first = msix(msixDev, 1);
    const second = msix(msixDev, 1);
    op(msixDev, XEN_PCI_OP.disable_msix);
    const status: RowStatus =
      first.err !== 0
        ? 'inconclusive'
        : second.err === EALREADY && !second.timedOut
          ? 'pass'
          : 'fail';
    add({
      row: 'b',
      attack: 'enable_msix x2',
      target: msixDev.address,
      expected: `1st err 0; 2nd err ${EALREADY}`,
      observed:
        `1st ${fmt(first)}; 2nd ${fmt(second)}` +
        (status === 'inconclusive' ? ' (first enable refused: precondition not met)' : ''),
      status,
    });
  }

  // (f) Many failing enables: one success, then op_failed every time.
  if (msiDev === undefined) {
    skip('f', `enable_msi x${XSA157_REPEATS}`, 'no device with MSI');
  } else {
    const first = op(msiDev, XEN_PCI_OP.enable_msi);
    let failedAsExpected = 0;
    let other = 0;
    let timeouts = 0;
    for (let i = 1; i < XSA157_REPEATS; i++) {
      const r = op(msiDev, XEN_PCI_OP.enable_msi);
      if (r.timedOut) {
        timeouts += 1;
        break; // a dead backend: do not wait 2 s a thousand times
      }
      if (r.err === XEN_PCI_ERR.op_failed && r.value === 0) failedAsExpected += 1;
      else other += 1;
    }
    op(msiDev, XEN_PCI_OP.disable_msi);
    const pass = first.err === 0 && failedAsExpected === XSA157_REPEATS - 1;
    add({
      row: 'f',
      attack: `enable_msi x${XSA157_REPEATS}`,
      target: msiDev.address,
      expected: `1st err 0; ${XSA157_REPEATS - 1}x err ${XEN_PCI_ERR.op_failed} value 0`,
      observed: `1st ${fmt(first)}; ${failedAsExpected}x err -5, ${other} other, ${timeouts} timeout(s)`,
      status: pass ? 'pass' : 'fail',
      hostSide: 'one platform enable call; rate-limited warnings (bounded log)',
    });
  }

  const failed = rows.filter((r) => r.status === 'fail').length;
  const passed = rows.filter((r) => r.status === 'pass').length;
  return Promise.resolve(
    log.report(
      'attack:xsa157',
      failed === 0,
      `attack:xsa157: ${passed} pass, ${failed} fail, ${rows.length - passed - failed} inconclusive/skipped`,
      { rows },
    ),
  );
}
