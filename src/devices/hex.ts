// SPDX-License-Identifier: MIT
/** Byte arrays in device state are lowercase hex strings: compact and JSON-safe. */

/** Lowercase hex of bytes (the serialized form of byte arrays in device state). */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * Bytes of a hex string written by {@link toHex}.
 *
 * @throws {SyntaxError} for odd lengths or non-hex characters.
 */
export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new SyntaxError(`Cannot decode hex state "${text.slice(0, 16)}...": it is not hex bytes`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
