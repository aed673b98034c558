// SPDX-License-Identifier: MIT
/** Helpers for this folder's tests (not exported from `index.ts`). */
import type { GrantHandle, GrantMapping } from '../../platform/types.js';
import type { PcibackDevice } from '../device/index.js';
import {
  deviceFixture,
  FakeEventChannel,
  fakeGrantMapper,
  fakeMapping,
  type DeviceFixture,
  type DeviceFixtureOptions,
} from '../device/test-fakes.js';
import { createTopology, type Topology } from '../topology/index.js';
import { PcibackChannel, type PcibackChannelOptions } from './pciback-channel.js';

/** A channel over a fake page with one exported device and a manual scheduler. */
export interface ChannelFixture extends DeviceFixture {
  readonly mapping: GrantMapping;
  readonly evtchn: FakeEventChannel;
  readonly unmaps: GrantHandle[];
  readonly topology: Topology<PcibackDevice>;
  readonly chan: PcibackChannel;
  /** Queued worker jobs (run them with {@link runJobs}). */
  readonly jobs: (() => void)[];
  /** Run queued jobs (including ones queued meanwhile); returns how many ran. */
  runJobs(): number;
  /** The frontend kicks the channel (the hypervisor delivers the event). */
  kick(): void;
}

/** Options of {@link channelFixture}. */
export interface ChannelFixtureOptions extends DeviceFixtureOptions {
  /** Wrap the topology (e.g. to hook lookups). */
  readonly wrapTopology?: (
    t: Topology<PcibackDevice>,
  ) => Pick<Topology<PcibackDevice>, 'get' | 'find'>;
  readonly channel?: Partial<PcibackChannelOptions<PcibackDevice>>;
}

/** Build a {@link ChannelFixture}. */
export function channelFixture(options: ChannelFixtureOptions = {}): ChannelFixture {
  const { wrapTopology, channel, ...deviceOptions } = options;
  const fx = deviceFixture(deviceOptions);
  const topology = createTopology<PcibackDevice>('vpci');
  topology.add(fx.dev, 0, () => {});
  const mapping = fakeMapping();
  const mapper = fakeGrantMapper();
  const evtchn = new FakeEventChannel();
  const jobs: (() => void)[] = [];
  const chan = new PcibackChannel<PcibackDevice>({
    mapping,
    grantMapper: mapper,
    eventChannel: evtchn,
    topology: wrapTopology !== undefined ? wrapTopology(topology) : topology,
    frontendDomid: 5,
    schedule: (job) => jobs.push(job),
    logger: fx.logger,
    ...channel,
  });
  return {
    ...fx,
    mapping,
    evtchn,
    unmaps: mapper.unmaps,
    topology,
    chan,
    jobs,
    runJobs() {
      let n = 0;
      for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) {
        job();
        n++;
      }
      return n;
    },
    kick() {
      chan.handler(evtchn);
    },
  };
}
