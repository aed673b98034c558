// SPDX-License-Identifier: MIT
/**
 * One connected frontend's request path (spec §4.1-§4.3, §6.6): the late-EOI event
 * handler, the draining worker and the AER round trip over the shared page.
 *
 * @example
 * import { PcibackChannel } from './pciback/channel/index.js';
 * const chan = new PcibackChannel({ mapping, grantMapper, topology, frontendDomid: 5 });
 * const bound = evtchn.bindInterdomain(5, port, chan.handler, { lateEoi: true });
 * if (bound.ok) chan.attachEventChannel(bound.channel);
 */
export {
  AER_TIMEOUT_MS,
  CHANNEL_ERROR,
  DEFAULT_MAX_OPS_PER_RUN,
  PcibackChannel,
  type AerRequest,
  type ChannelScheduler,
  type ChannelTimer,
  type PcibackChannelOptions,
  type PcibackChannelStats,
} from './pciback-channel.js';
