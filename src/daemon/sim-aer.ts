// SPDX-License-Identifier: MIT
/**
 * PCIe AER on the simulated host, end to end (spec §6.6, §9): an uncorrectable error is
 * injected into a function's hardware; dom0's AER core (`platform/sim/aer-core.ts`)
 * calls the error handlers of the driver bound to each function of the device, which is
 * pciback for a seized function; pciback forwards each callback to the owning guest
 * through `aer_op` and the guest's pcifront answers with its driver's vote. When a guest
 * cannot take part, pciback writes `aerState` = `aerfail` and the host's toolstack
 * (`watchAerFailures`, already running in `SimHost`) destroys the guest.
 *
 * pciback's AER handlers are one instance per host (their lock is the driver's
 * `pcistub_sem`), with their own dom0 connection to the host's store. Recoveries on one
 * host run one at a time, as Linux's AER core handles one error source at a time.
 */
import { PcibackError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';
import { PcibackAer, xenbusAerLookup, type AerKill } from '../pciback/aer/index.js';
import {
  injectAndRecover,
  type AerCoreFunction,
  type AerRecoveryResult,
} from '../platform/sim/aer-core.js';
import type { Logger } from '../platform/types.js';
import { XsClient } from '../xenstore/client/index.js';
import { connectInProcess } from '../xenstore/server/index.js';
import type { SimHost } from './sim-host.js';

/** What {@link injectAerError} did. */
export interface AerRecoveryReport extends AerRecoveryResult {
  /** `kill_domain_by_device` calls during this recovery (`aerState` = `aerfail`). */
  readonly kills: readonly AerKill[];
  /** What pciback and the AER core logged, one line each (`warn: ...`). */
  readonly log: readonly string[];
}

/** Options of {@link injectAerError}. */
export interface InjectAerErrorOptions {
  /** A fatal error (channel frozen, link reset); default non-fatal. */
  readonly fatal?: boolean;
}

function lineLogger(target: () => string[]): Logger {
  const line =
    (level: string) =>
    (_obj: object, msg?: string): void => {
      target().push(`${level}: ${msg ?? ''}`);
    };
  return { debug: () => undefined, info: line('info'), warn: line('warn'), error: line('error') };
}

/** pciback's AER handlers of one host and its recoveries. */
class HostAer {
  readonly aer: PcibackAer;
  /** Where pciback logs during the current recovery. */
  lines: string[] = [];
  /** One recovery at a time. */
  chain: Promise<unknown> = Promise.resolve();

  constructor(host: SimHost) {
    // dom0's pciback connection to the store; it goes when the host closes its server.
    const xs = new XsClient(connectInProcess(host.server));
    this.aer = new PcibackAer({
      devices: xenbusAerLookup(host.stub, host.backend),
      xs,
      logger: lineLogger(() => this.lines),
    });
  }
}

const HOSTS = new WeakMap<SimHost, HostAer>();

function hostAer(host: SimHost): HostAer {
  let state = HOSTS.get(host);
  if (state === undefined) {
    state = new HostAer(host);
    HOSTS.set(host, state);
  }
  return state;
}

/**
 * Inject an uncorrectable PCIe error into the function at `address` and run dom0's AER
 * recovery over the functions of its device: each seized function's handlers are
 * pciback's, forwarded to the guest that owns it; a function no driver holds votes
 * NO_AER_DRIVER. Resolves with the recovery's result, the kills pciback asked for and
 * its log; the toolstack's destruction of a killed guest follows asynchronously.
 *
 * @throws {PcibackError} `NO_SUCH_DEVICE` when the host has no function at `address`.
 * @example
 * const report = await injectAerError(host, PciAddress.parse('0000:01:00.0'), { fatal: true });
 * report.recovered; // true when the owning guest's driver voted to recover
 * report.calls.map((c) => c.callback); // ['error_detected', 'slot_reset', 'resume']
 */
export async function injectAerError(
  host: SimHost,
  address: PciAddress,
  options: InjectAerErrorOptions = {},
): Promise<AerRecoveryReport> {
  const target = host.hostFunction(address);
  if (target === undefined) {
    throw new PcibackError(
      'NO_SUCH_DEVICE',
      `Cannot inject an AER error into "${address.toString()}": the host has no such function`,
    );
  }
  const state = hostAer(host);
  const run = state.chain.then(async (): Promise<AerRecoveryReport> => {
    const lines: string[] = [];
    state.lines = lines;
    const killsBefore = state.aer.stats().kills.length;
    // The functions below the same port: the functions of this device.
    const affected: AerCoreFunction[] = [];
    for (let fn = 0; fn <= 7; fn++) {
      const at = address.withFunction(fn);
      const found = host.hostFunction(at);
      if (found === undefined) continue;
      affected.push({
        device: found.host,
        // Only pciback has error handlers here: dom0's simulated drivers have none.
        handlers: found.backend === undefined ? undefined : state.aer.handlersFor(at),
      });
    }
    const detecting = affected.find((f) => f.device === target.host) ?? {
      device: target.host,
      handlers: undefined,
    };
    const result = await injectAndRecover(detecting, {
      fatal: options.fatal === true,
      affected,
      logger: lineLogger(() => lines),
    });
    return { ...result, kills: state.aer.stats().kills.slice(killsBefore), log: lines };
  });
  state.chain = run.catch(() => undefined);
  return run;
}
