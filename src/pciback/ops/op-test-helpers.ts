// SPDX-License-Identifier: MIT
/** Helpers for this folder's tests (not exported from `index.ts`). */
import {
  decodePciOp,
  encodePciOp,
  XEN_PCI_OP_SIZE,
  type PciOp,
  type PciOpInit,
  type PciOpResult,
} from '../../abi/pciif.js';
import {
  deviceFixture,
  type DeviceFixture,
  type DeviceFixtureOptions,
} from '../device/test-fakes.js';
import type { PcibackDevice } from '../device/index.js';
import { createTopology, type Topology } from '../topology/index.js';
import { doOneOp } from './do-one-op.js';

/** Encode then decode, as the snapshot does. */
export function opOf(init: PciOpInit): PciOp {
  const buf = new Uint8Array(XEN_PCI_OP_SIZE);
  const view = new DataView(buf.buffer);
  encodePciOp(view, 0, init);
  return decodePciOp(view, 0);
}

/** One device exported at guest 0000:00:00.0 of a vpci topology. */
export interface OpsFixture extends DeviceFixture {
  readonly topology: Topology<PcibackDevice>;
  /** Run an op on the device at 00:00.0 (address fields filled in). */
  run(init: Omit<PciOpInit, 'domain' | 'bus' | 'devfn'>): PciOpResult;
}

/** A device fixture exported through vpci. */
export function opsFixture(options: DeviceFixtureOptions = {}): OpsFixture {
  const fx = deviceFixture(options);
  const topology = createTopology<PcibackDevice>('vpci');
  topology.add(fx.dev, 0, () => {});
  const { logger } = fx;
  return {
    ...fx,
    topology,
    run: (init) =>
      doOneOp(opOf({ domain: 0, bus: 0, devfn: 0, ...init }), {
        topology,
        frontendDomid: 5,
        logger,
      }),
  };
}
