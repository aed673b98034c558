// SPDX-License-Identifier: MIT
/**
 * The config-space virtualizer (spec §5): one {@link VirtualConfigSpace} per seized
 * device, the policy switches it reads, the denied-write audit and the quirk parser.
 *
 * @example
 * import { VirtualConfigSpace } from './pciback/confspace/index.js';
 * const global = { permissive: false };
 * const space = VirtualConfigSpace.create(dev, { global, logger });
 * const { value, err } = space.read(0x10, 4);
 */
export {
  CONFSPACE_ERROR,
  VirtualConfigSpace,
  type VirtualConfigSpaceOptions,
} from './virtual-config-space.js';
export { defaultDevicePolicy, type DevicePolicy, type GlobalConfigPolicy } from './policy.js';
export {
  DENIED_WRITE_REASON,
  OUT_OF_RANGE_OFFSET,
  type DeniedWrite,
  type DeniedWriteReason,
} from './audit.js';
export type { ConfigFieldInfo } from './field.js';
export {
  QUIRK_REG_MAX,
  checkQuirkRegAndMask,
  checkQuirkSize,
  parseQuirkFieldSpec,
  parseQuirkSpec,
  type QuirkField,
  type QuirkFieldSpec,
  type QuirkSpec,
} from './quirks.js';
export { PCIBIOS, pcibiosToXenErr } from '../../abi/pcibios.js';
export { PM_OK_BITS } from './capability-fields.js';
