// SPDX-License-Identifier: MIT
/**
 * Guest programs `aer` and `aer-silent`: a guest driver with PCIe error handlers
 * (`struct pci_error_handlers`), which pcifront's AER service calls when dom0's pciback
 * forwards an AER request (spec §9 "AER service", §6.6).
 *
 * pcifront takes its AER handler when it is created, before any program runs (as a
 * driver's handlers are known when it binds), so each program here comes with a
 * {@link GuestAerDriver}: the guest kernel builds the handler from it and gives it to
 * `Pcifront.create`. The program itself binds to the devices (enables them) and reports;
 * with `stayAlive` the kernel keeps answering AER requests afterwards, and each callback
 * is one line on the guest's console.
 */
import { PCI_EXT_CAP_ID } from '../../abi/pci-regs.js';
import { PCI_CHANNEL_IO, PCI_ERS_RESULT } from '../../abi/pciif.js';
import { formatGuestAddress } from '../enumerate.js';
import type { AerHandler, AerRequest, Pcifront } from '../pcifront.js';
import { ProgramLog, enableDevice, scan } from './common.js';
import type { GuestProgramEnv, ProgramReport } from './types.js';

/** What the guest kernel gives a driver's error handlers. */
export interface GuestAerEnv {
  /** One line of the guest's console. */
  log(line: string): void;
  /** The pcifront connection (created with the handler; only called from the handler). */
  front(): Pcifront;
}

/** Builds the AER handler pcifront calls for the devices of a program's driver. */
export type GuestAerDriver = (env: GuestAerEnv) => AerHandler;

const ERS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(PCI_ERS_RESULT).map(([name, value]) => [value, name]),
);
const CHANNEL_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(PCI_CHANNEL_IO).map(([name, value]) => [value, name]),
);

function ersName(result: number): string {
  return ERS_NAMES[result] ?? String(result);
}

/** `aer: 0000:00:00.0 error_detected(frozen) -> NEED_RESET`. */
function callbackLine(request: AerRequest, result: number | undefined, detail = ''): string {
  const where = formatGuestAddress(request);
  const args =
    request.kind === 'error_detected'
      ? `(${CHANNEL_NAMES[request.channelState] ?? String(request.channelState)})`
      : '()';
  const answer = result === undefined ? '' : ` -> ${ersName(result)}`;
  return `aer: ${where} ${request.kind}${args}${answer}${detail}`;
}

/**
 * The handlers of a driver that recovers: like most Linux drivers, `error_detected`
 * asks for a reset when the channel is frozen, disconnects on a permanent failure and
 * otherwise can recover; `mmio_enabled` recovers; `slot_reset` checks that the device
 * answers config reads again (through pcifront, while dom0 waits) and recovers, or
 * disconnects when it reads all-ones; `resume` logs (pcifront answers NONE to it anyway).
 */
export const recoveringAerDriver: GuestAerDriver = (env) => (request) => {
  switch (request.kind) {
    case 'error_detected': {
      const result =
        request.channelState === PCI_CHANNEL_IO.perm_failure
          ? PCI_ERS_RESULT.DISCONNECT
          : request.channelState === PCI_CHANNEL_IO.frozen
            ? PCI_ERS_RESULT.NEED_RESET
            : PCI_ERS_RESULT.CAN_RECOVER;
      env.log(callbackLine(request, result));
      return result;
    }
    case 'mmio_enabled':
      env.log(callbackLine(request, PCI_ERS_RESULT.RECOVERED));
      return PCI_ERS_RESULT.RECOVERED;
    case 'slot_reset': {
      const ids = env.front().readConfig(request, 0, 4);
      const alive = ids.pcibios === 0 && ids.value !== 0xffffffff;
      const result = alive ? PCI_ERS_RESULT.RECOVERED : PCI_ERS_RESULT.DISCONNECT;
      const seen = alive
        ? `${(ids.value & 0xffff).toString(16).padStart(4, '0')}:${(ids.value >>> 16).toString(16).padStart(4, '0')}`
        : 'no answer';
      env.log(callbackLine(request, result, ` (device ${seen})`));
      return result;
    }
    case 'resume':
      env.log(callbackLine(request, undefined));
      return PCI_ERS_RESULT.RECOVERED;
  }
};

/** Default delay of {@link createSilentAerDriver}: longer than pciback's 300 s AER wait. */
export const SILENT_ANSWER_AFTER_MS = 310_000;

/** Options of {@link createSilentAerDriver}. */
export interface SilentAerDriverOptions {
  /** How long each callback blocks before it answers (default {@link SILENT_ANSWER_AFTER_MS}). */
  readonly answerAfterMs?: number;
  /** Blocks the calling thread for `ms` (default `Atomics.wait` on a private word). */
  readonly sleep?: (ms: number) => void;
}

function blockingSleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A driver stuck in its error handlers: each callback blocks the guest's kernel thread
 * for `answerAfterMs`, then answers as {@link recoveringAerDriver} would (without
 * touching the device). pciback gives up waiting first (its AER timeout) and uses its
 * default result; per spec §6.6 a timeout does *not* kill the guest, only a NONE or
 * DISCONNECT answer (or no handler at all) does. The late answer lands on whatever
 * request is in `aer_op` by then, as on a real host.
 *
 * @throws {RangeError} for a negative or non-finite `answerAfterMs`.
 */
export function createSilentAerDriver(options: SilentAerDriverOptions = {}): GuestAerDriver {
  const delayMs = options.answerAfterMs ?? SILENT_ANSWER_AFTER_MS;
  if (!(Number.isFinite(delayMs) && delayMs >= 0)) {
    throw new RangeError(`Cannot answer AER requests after "${delayMs}" ms: it must be >= 0`);
  }
  const sleep = options.sleep ?? blockingSleep;
  return (env) => (request) => {
    env.log(callbackLine(request, undefined, ` received; answering in ${delayMs} ms`));
    sleep(delayMs);
    const result =
      request.kind === 'error_detected'
        ? request.channelState === PCI_CHANNEL_IO.frozen
          ? PCI_ERS_RESULT.NEED_RESET
          : PCI_ERS_RESULT.CAN_RECOVER
        : PCI_ERS_RESULT.RECOVERED;
    env.log(callbackLine(request, result, ' (late)'));
    return result;
  };
}

/** The driver of `aer-silent`. */
export const silentAerDriver: GuestAerDriver = createSilentAerDriver();

/** Bind to every function: enable it as a driver's probe does, and say so. */
function bindDevices(env: GuestProgramEnv, program: string, how: string): ProgramReport {
  const log = new ProgramLog(env);
  const result = scan(env);
  if (result.error !== undefined) {
    return log.report(program, false, result.error, { devices: [] });
  }
  const bound: string[] = [];
  for (const device of result.devices) {
    const err = enableDevice(env, device);
    if (err !== 0) {
      log.line(`${device.address}: cannot enable the device (err ${err})`);
      continue;
    }
    const aerCap = device.extendedCapabilities.some((c) => c.id === PCI_EXT_CAP_ID.ERR);
    log.line(
      `${device.address}: error handlers registered (${how}; AER capability ${aerCap ? 'visible' : 'not visible'})`,
    );
    bound.push(device.address);
  }
  const ok = bound.length > 0 && bound.length === result.devices.length;
  return log.report(
    program,
    ok,
    `${program}: error handlers on ${bound.length}/${result.devices.length} function(s)`,
    { devices: bound },
  );
}

/**
 * Program `aer`: binds a recovering driver ({@link recoveringAerDriver}) to every
 * function and reports; the callbacks are answered and logged as they come.
 */
export function aerProgram(env: GuestProgramEnv): Promise<ProgramReport> {
  return Promise.resolve(bindDevices(env, 'aer', 'recovering'));
}

/**
 * Program `aer-silent`: binds a driver whose error handlers answer too late
 * ({@link silentAerDriver}), so pciback's AER timeout can be seen.
 */
export function aerSilentProgram(env: GuestProgramEnv): Promise<ProgramReport> {
  return Promise.resolve(bindDevices(env, 'aer-silent', 'answering late'));
}
