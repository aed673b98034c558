// SPDX-License-Identifier: MIT
/**
 * A scripted stand-in for pciback's XenBus side (spec/pciback.md §7.2–§7.6), enough for
 * toolstack scenarios against any xenstored: it speaks only xenstore, through our
 * {@link XsClient} on the daemon's Unix socket. Like the fake in
 * src/toolstack/attach.test.ts, for every guest under `backend/pci`:
 *
 * - backend `state` 1 (cold plug) or 7 (hot attach/detach): each device with `state-i` = 1
 *   is exported (`vdev-i` = `0000:00:<i+1>.00`, the root `0000:00` published once as
 *   `root_num`/`root-0`, then `state-i` = 3). Devices in `state-i` = 5 are released
 *   without touching their keys (the real backend does not either). Then 7 → 8, and → 4.
 *
 * It skips the frontend handshake (InitWait/Initialised, attach): there is no pcifront,
 * so it goes straight to Connected as a connected guest would let it.
 */
import { isXsError, XsClient } from '../../src/xenstore/client/index.js';
import { connectXenstored } from './real-xenstored.js';

/** A running backend peer (scripted or real). */
export interface PcibackPeer {
  /** Stop reacting and close its xenstore connection. */
  close(): Promise<void>;
}

/**
 * Starts a pciback peer on the daemon at `socketPath`, serving backend domain
 * `backendDomid`. Scenarios take one of these so a real backend can replace the scripted
 * one without changing the scenario.
 */
export type PcibackPeerFactory = (
  socketPath: string,
  options: { readonly backendDomid: number },
) => Promise<PcibackPeer>;

async function readOptional(xs: XsClient, path: string): Promise<string | undefined> {
  try {
    return await xs.readString(path);
  } catch (e) {
    if (isXsError(e, 'ENOENT')) return undefined;
    throw e;
  }
}

/** {@link PcibackPeerFactory} of the scripted backend described in the module comment. */
export const startScriptedPciback: PcibackPeerFactory = async (socketPath, options) => {
  const xs = new XsClient(await connectXenstored(socketPath), { timeoutMs: 5000 });
  const root = `/local/domain/${options.backendDomid}/backend/pci`;
  let closed = false;
  let queue: Promise<void> = Promise.resolve();
  const errors: unknown[] = [];

  const react = async (domid: string): Promise<void> => {
    const be = `${root}/${domid}/0`;
    const state = await readOptional(xs, `${be}/state`);
    if (state !== '1' && state !== '7') return;
    const num = Number.parseInt((await readOptional(xs, `${be}/num_devs`)) ?? '0', 10);
    for (let i = 0; i < num; i++) {
      if ((await readOptional(xs, `${be}/state-${i}`)) !== '1') continue;
      await xs.write(`${be}/vdev-${i}`, `0000:00:${(i + 1).toString(16).padStart(2, '0')}.00`);
      if ((await readOptional(xs, `${be}/root_num`)) === undefined) {
        await xs.write(`${be}/root-0`, '0000:00');
        await xs.write(`${be}/root_num`, '1');
      }
      await xs.write(`${be}/state-${i}`, '3');
    }
    if (state === '7') await xs.write(`${be}/state`, '8');
    await xs.write(`${be}/state`, '4');
  };

  const enqueue = (domid: string): void => {
    queue = queue
      .then(() => (closed ? undefined : react(domid)))
      .catch((e: unknown) => {
        // A tree removed under our feet (last detach) is normal; keep anything else.
        if (!isXsError(e, 'ENOENT')) errors.push(e);
      });
  };

  await xs.watch(root, 'scripted-pciback', (event) => {
    const rel = event.path.slice(root.length + 1).split('/');
    if (event.path.startsWith(`${root}/`) && rel.length === 3 && rel[1] === '0') {
      if (rel[2] === 'state' && rel[0] !== undefined) enqueue(rel[0]);
    }
  });
  return {
    async close(): Promise<void> {
      closed = true;
      await queue;
      xs.close();
      if (errors.length > 0) {
        throw new AggregateError(errors, 'The scripted pciback failed while reacting');
      }
    },
  };
};
