// SPDX-License-Identifier: MIT
/**
 * Guest program `attack:xsa155` (XSA-155 / CVE-2015-8550, spec §10 and pciback-fixes
 * P2): a double-fetch attempt. A worker has one thread, so the second "thread" is the
 * wait loop itself: right after setting `XEN_PCIF_active` and notifying, the program
 * rewrites `cmd`/`size`/`offset`/`value` in the shared page in a tight loop until the
 * backend answers. A backend that snapshots the op once answers consistently with one
 * version of it, writes back only `err`/`value`/vectors, and keeps serving.
 */
import { SH_INFO_MAX_VEC, XEN_PCI_OP, XEN_PCI_OP_OFFSET, type PciOpInit } from '../../abi/pciif.js';
import { PCI_CAP_ID } from '../../abi/pci-regs.js';
import type { GuestPciDevice } from '../enumerate.js';
import type { PciOpReply } from '../pcifront.js';
import { ProgramLog, capabilityOf, enableDevice, scan } from './common.js';
import type { GuestProgramEnv, ProgramReport } from './types.js';

const LE = true;

/** One race and what came back. */
export interface Xsa155Case {
  name: string;
  target: string;
  /** Page rewrites done while the op was pending. */
  rewrites: number;
  answered: boolean;
  err: number;
  value: number;
  /** Fields the backend must never write that were found changed (empty = good). */
  clobbered: string[];
  /** Vectors written back (entries whose vector is no longer 0xffff). */
  vectorsReturned: number;
  pass: boolean;
  note: string;
}

interface Race {
  name: string;
  op: PciOpInit;
  /** Rewrites the page; `i` counts iterations. */
  mutate: (view: DataView, i: number) => void;
  /** Checks the answer against the page as the attacker left it. */
  check: (reply: PciOpReply) => { clobbered: string[]; note: string };
  cleanup?: () => void;
}

function u32(view: DataView, field: keyof typeof XEN_PCI_OP_OFFSET, value: number): void {
  view.setUint32(XEN_PCI_OP_OFFSET[field], value >>> 0, LE);
}

function entriesUntouched(reply: PciOpReply, count: number): string[] {
  const bad: string[] = [];
  for (let i = 0; i < count; i++) {
    if (reply.msixEntries[i]?.entry !== i) bad.push(`msix_entries[${i}].entry`);
  }
  return bad;
}

function addressUntouched(reply: PciOpReply, device: GuestPciDevice): string[] {
  const bad: string[] = [];
  if (reply.domain !== device.domain) bad.push('domain');
  if (reply.bus !== device.bus) bad.push('bus');
  if (reply.devfn !== device.devfn) bad.push('devfn');
  return bad;
}

function races(env: GuestProgramEnv, device: GuestPciDevice, hasMsix: boolean): Race[] {
  const addr = { domain: device.domain, bus: device.bus, devfn: device.devfn };
  const list: Race[] = [];
  if (hasMsix) {
    list.push({
      name: 'enable_msix nvec 128, value rewritten to 100000',
      op: {
        cmd: XEN_PCI_OP.enable_msix,
        ...addr,
        value: SH_INFO_MAX_VEC,
        msixEntries: Array.from({ length: SH_INFO_MAX_VEC }, (_, entry) => ({
          entry,
          vector: 0xffff,
        })),
      },
      // Mostly the huge count, with 128 coming back now and then so a backend that
      // re-reads after its check sees both values.
      mutate: (view, i) => {
        u32(view, 'value', i % 8 === 7 ? SH_INFO_MAX_VEC : 100000);
      },
      check: (reply) => {
        const clobbered = [
          ...entriesUntouched(reply, SH_INFO_MAX_VEC),
          ...addressUntouched(reply, device),
        ];
        if (reply.cmd !== XEN_PCI_OP.enable_msix) clobbered.push('cmd');
        return {
          clobbered,
          note: 'err 0 (nvec 128 seen) or -22 (100000 seen) are both consistent',
        };
      },
      cleanup: () => env.front.disableMsix(addr),
    });
  }
  list.push({
    name: 'conf_read dword at 0, size/offset rewritten (3, 0x1001, 1)',
    op: { cmd: XEN_PCI_OP.conf_read, ...addr, offset: 0, size: 4 },
    mutate: (view, i) => {
      const k = i % 3;
      u32(view, 'size', k === 0 ? 3 : k === 1 ? 1 : 4);
      u32(view, 'offset', k === 0 ? 0x1001 : k === 1 ? 2 : 0);
    },
    check: (reply) => {
      const clobbered = addressUntouched(reply, device);
      if (reply.cmd !== XEN_PCI_OP.conf_read) clobbered.push('cmd');
      return { clobbered, note: 'err 0 with a register value or -2 are both consistent' };
    },
  });
  list.push({
    name: 'cmd flipped between conf_read and enable_msi',
    op: { cmd: XEN_PCI_OP.conf_read, ...addr, offset: 0, size: 4 },
    mutate: (view, i) => {
      u32(view, 'cmd', i % 2 === 0 ? XEN_PCI_OP.enable_msi : XEN_PCI_OP.conf_read);
    },
    check: (reply) => ({
      clobbered: addressUntouched(reply, device),
      note: 'answered as one of the two commands',
    }),
    cleanup: () => env.front.disableMsi(addr),
  });
  list.push({
    name: 'cmd flipped to an unknown command (0xdeadbeef)',
    op: { cmd: XEN_PCI_OP.conf_read, ...addr, offset: 0, size: 4 },
    mutate: (view, i) => {
      u32(view, 'cmd', i % 2 === 0 ? 0xdeadbeef : XEN_PCI_OP.conf_read);
    },
    check: (reply) => ({
      clobbered: addressUntouched(reply, device),
      note: 'err 0 (conf_read seen) or -4 (unknown seen) are both consistent',
    }),
  });
  return list;
}

/** Rewrites per race at most (the backend normally answers after a few hundred). */
const MAX_REWRITES = 5_000_000;

/**
 * Runs the races against the first function (preferring one with MSI-X for the
 * `enable_msix` race), then checks the backend still answers a plain config read.
 */
export function xsa155Program(env: GuestProgramEnv): Promise<ProgramReport> {
  const log = new ProgramLog(env);
  const scanned = scan(env);
  const device =
    scanned.devices.find((d) => capabilityOf(d, PCI_CAP_ID.MSIX) !== undefined) ??
    scanned.devices[0];
  if (scanned.error !== undefined || device === undefined) {
    const why = scanned.error ?? 'attack:xsa155: no device to attack';
    return Promise.resolve(log.report('attack:xsa155', false, why, { cases: [] }));
  }
  const hasMsix = capabilityOf(device, PCI_CAP_ID.MSIX) !== undefined;
  if (hasMsix) enableDevice(env, device); // MSI-X needs memory decode (XSA-157 (e))
  const cases: Xsa155Case[] = [];
  for (const race of races(env, device, hasMsix)) {
    let rewrites = 0;
    const reply = env.front.doPciOp(race.op, {
      whilePending: (view, i) => {
        if (i < MAX_REWRITES) {
          race.mutate(view, i);
          rewrites += 1;
        }
      },
    });
    const { clobbered, note } = reply.timedOut
      ? { clobbered: [], note: 'no answer' }
      : race.check(reply);
    let vectorsReturned = 0;
    for (let i = 0; i < SH_INFO_MAX_VEC; i++) {
      const v = reply.msixEntries[i]?.vector;
      if (race.op.cmd === XEN_PCI_OP.enable_msix && v !== 0xffff) vectorsReturned += 1;
    }
    const c: Xsa155Case = {
      name: race.name,
      target: device.address,
      rewrites,
      answered: !reply.timedOut,
      err: reply.err,
      value: reply.value,
      clobbered,
      vectorsReturned,
      pass: !reply.timedOut && clobbered.length === 0,
      note,
    };
    cases.push(c);
    log.line(
      `${c.pass ? 'PASS' : 'FAIL'} ${c.name}: ${c.answered ? `err ${c.err} value 0x${(c.value >>> 0).toString(16)}` : 'no answer'}` +
        `, ${rewrites} rewrite(s)${vectorsReturned > 0 ? `, ${vectorsReturned} vector(s) returned` : ''}` +
        (clobbered.length > 0 ? `, backend wrote ${clobbered.join(' ')}` : ''),
    );
    race.cleanup?.();
  }
  // The backend must still be there and sane after the races.
  const health = env.front.readConfig(device, 0, 4);
  const alive =
    !health.timedOut &&
    health.pcibios === 0 &&
    (health.value & 0xffff) === device.vendorId &&
    health.value >>> 16 === device.deviceId;
  log.line(`${alive ? 'PASS' : 'FAIL'} backend still serves config reads after the races`);
  const ok = alive && cases.every((c) => c.pass);
  const passed = cases.filter((c) => c.pass).length;
  return Promise.resolve(
    log.report(
      'attack:xsa155',
      ok,
      `attack:xsa155: ${passed}/${cases.length} race(s) answered consistently, backend ${alive ? 'alive' : 'NOT answering'}`,
      { target: device.address, cases, backendAlive: alive },
    ),
  );
}
