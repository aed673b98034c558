// SPDX-License-Identifier: MIT
/**
 * The xenstore wire protocol, transport-free: whole-message codec, stream framer and the
 * payload encodings of every message type (spec/xenstore.md §1, §9, §11.1). Header layout
 * and constants come from `src/abi/xs-wire.ts`.
 */
export * from './result.js';
export * from './message.js';
export * from './framer.js';
export * from './permissions.js';
export * from './payload.js';
export {
  atoi,
  concatBytes,
  decodeExactStrings,
  decodeNulStrings,
  decodeOneArg,
  encodeNulStrings,
  splitNulFields,
  strtol,
  utf8Decode,
  utf8Encode,
  type NulFields,
  type StrtolResult,
} from './strings.js';
