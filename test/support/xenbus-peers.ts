// SPDX-License-Identifier: MIT
/**
 * The pieces an end-to-end XenBus scenario puts around the real backend
 * (`XenbusBackend`) and the real frontend (`PcifrontXenbus`) when only the hypervisor is
 * missing: a stub pool of real seized `PcibackDevice`s (built as the xenbus unit tests
 * build them), Xen's device-owner registry, a connector that records what the frontend
 * published instead of mapping a page, a guest kernel that records what pcifront asks of
 * it, and a recorder of every `state` write in causal order.
 */
import { PciAddress } from '../../src/pci/index.js';
import { deviceFixture, type DeviceFixture } from '../../src/pciback/device/test-fakes.js';
import { PciDevicePool } from '../../src/pciback/stub/device-pool.js';
import type {
  FrontendConnectResult,
  FrontendEndpoints,
  XenbusChannel,
} from '../../src/pciback/xenbus/index.js';
import type { GuestPciRoot, PcifrontGuestKernel } from '../../src/pcifront/index.js';
import type { DeviceOwnerRegistry, DomId, Logger } from '../../src/platform/types.js';
import type { XsClient } from '../../src/xenstore/client/index.js';
import { createOpCounts } from '../../src/pciback/device/op-counts.js';

/** Xen's device-owner registry, with the platform's return codes. */
export class MapOwnerRegistry implements DeviceOwnerRegistry {
  readonly #owners = new Map<string, DomId>();
  register(address: PciAddress, domid: DomId): number {
    if (this.#owners.has(address.toString())) return -17;
    this.#owners.set(address.toString(), domid);
    return 0;
  }
  find(address: PciAddress): DomId | undefined {
    return this.#owners.get(address.toString());
  }
  unregister(address: PciAddress): number {
    return this.#owners.delete(address.toString()) ? 0 : -2;
  }
}

/** What a {@link SeizedPool} holds. */
export interface SeizedPool {
  readonly pool: PciDevicePool;
  readonly owners: MapOwnerRegistry;
  /** Each seized device's fixture (host registers, fake MSI/INTx) by `DDDD:BB:DD.F`. */
  readonly devices: ReadonlyMap<string, DeviceFixture>;
}

/** The stub's pool with `addresses` seized: real `PcibackDevice`s over memory devices. */
export function seizedPool(addresses: readonly string[], logger: Logger): SeizedPool {
  const owners = new MapOwnerRegistry();
  const pool = new PciDevicePool({ owners, logger });
  const devices = new Map<string, DeviceFixture>();
  for (const text of addresses) {
    const fx = deviceFixture({ address: PciAddress.parse(text) });
    pool.add(fx.dev);
    devices.set(fx.dev.address.toString(), fx);
  }
  return { pool, owners, devices };
}

/** One call of the {@link RecordingConnector}: the frontend's endpoints, as pciback read them. */
export interface ConnectorCall {
  readonly domid: number;
  readonly grantRef: number;
  readonly eventPort: number;
}

/**
 * A `FrontendConnector` with no hypervisor behind it: it records the domain and the
 * grant/port pciback read from the frontend and hands out a channel that counts its
 * disconnects.
 */
export class RecordingConnector {
  readonly calls: ConnectorCall[] = [];
  /** `disconnect()` calls of every channel handed out. */
  disconnects = 0;

  readonly connect = (domid: DomId, endpoints: FrontendEndpoints): FrontendConnectResult => {
    this.calls.push({ domid, grantRef: endpoints.grantRef, eventPort: endpoints.eventPort });
    const channel: XenbusChannel = {
      disconnect: () => {
        this.disconnects++;
      },
      stats: () => ({
        ops: 0,
        opsByCmd: createOpCounts(),
        spuriousKicks: 0,
        irqWhileEoiPending: 0,
        workerRuns: 0,
        budgetYields: 0,
        aerRequests: 0,
        aerTimeouts: 0,
      }),
    };
    return { ok: true, channel };
  };
}

function formatRoots(roots: readonly GuestPciRoot[]): string {
  return roots
    .map((r) => `${r.domain.toString(16).padStart(4, '0')}:${r.bus.toString(16).padStart(2, '0')}`)
    .join(',');
}

/** A guest kernel for `PcifrontXenbus` that records every call as a line. */
export class RecordingGuestKernel implements PcifrontGuestKernel {
  /** `connect 0000:00`, `rescan 0000:00`, `remove 0000:00:0a.0`, `closed`. */
  readonly calls: string[] = [];
  connect(roots: readonly GuestPciRoot[]): void {
    this.calls.push(`connect ${formatRoots(roots)}`);
  }
  removeDevice(vdev: PciAddress): void {
    this.calls.push(`remove ${vdev.toString()}`);
  }
  rescan(roots: readonly GuestPciRoot[]): void {
    this.calls.push(`rescan ${formatRoots(roots)}`);
  }
  closed(): void {
    this.calls.push('closed');
  }
}

/** One write of a {@link StateTimeline}; `tx` is set until its transaction commits. */
interface TimelineEntry {
  readonly text: string;
  readonly who: string;
  tx: number | undefined;
}

/**
 * Every write to the watched `state` nodes, by every recorded client, in causal order:
 * an entry is taken when the client issues the write, before any peer can see it, so a
 * reaction is always recorded after its cause. Writes of a transaction that did not
 * commit (EAGAIN retry, abort) are taken out again: no peer ever saw them.
 *
 * Entries read `<who>: <node>=<value>`, e.g. `pciback: be=4`.
 */
export class StateTimeline {
  readonly #entries: TimelineEntry[] = [];
  readonly #nodes: ReadonlyMap<string, string>;

  /** `nodes`: state path → short name (`be`, `fe`). */
  constructor(nodes: Readonly<Record<string, string>>) {
    this.#nodes = new Map(Object.entries(nodes));
  }

  /** The entries so far. */
  get entries(): string[] {
    return this.#entries.map((e) => e.text);
  }

  /** The entries from index `mark` on (take the mark as `timeline.entries.length`). */
  since(mark: number): string[] {
    return this.entries.slice(mark);
  }

  /** Record the state writes `xs` makes, as `who` (one name per client). */
  record(xs: XsClient, who: string): void {
    const write = xs.write.bind(xs);
    const transactionEnd = xs.transactionEnd.bind(xs);
    const open = (tx: number): TimelineEntry[] =>
      this.#entries.filter((e) => e.who === who && e.tx === tx);
    xs.write = (path, value, options) => {
      const node = this.#nodes.get(path);
      if (node !== undefined) {
        const text = typeof value === 'string' ? value : new TextDecoder().decode(value);
        this.#entries.push({ text: `${who}: ${node}=${text}`, who, tx: options?.tx });
      }
      return write(path, value, options);
    };
    xs.transactionEnd = async (tx, commit, options) => {
      const retract = (): void => {
        for (const e of open(tx)) this.#entries.splice(this.#entries.indexOf(e), 1);
      };
      if (!commit) retract();
      try {
        await transactionEnd(tx, commit, options);
      } catch (e) {
        retract();
        throw e;
      }
      for (const e of open(tx)) e.tx = undefined;
    };
  }
}

/**
 * Poll `check` until it holds; reject after `timeoutMs` naming `what` and, when given,
 * what `describe` reports about the current state.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: { readonly timeoutMs?: number; readonly describe?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  while (!(await check())) {
    if (Date.now() > deadline) {
      const detail = options.describe === undefined ? '' : `: ${options.describe()}`;
      throw new Error(`Timed out waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
