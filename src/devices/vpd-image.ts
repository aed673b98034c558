// SPDX-License-Identifier: MIT
/**
 * Builds VPD ROM contents in the PCI 3.0 Appendix I format: an Identifier String large
 * resource (tag 0x82), a VPD-R list (tag 0x90) of keyword fields ending with the RV
 * checksum field, and the End tag (0x78).
 */

/** Large resource tags and the small End tag. */
const TAG_ID_STRING = 0x82;
const TAG_VPD_R = 0x90;
const TAG_END = 0x78;

/** Contents of a VPD ROM. */
export interface VpdContents {
  /** Product name (the Identifier String). */
  readonly identifier: string;
  /** Read-only keyword fields, e.g. `['PN', 'X520-DA2']`; keys are two ASCII characters. */
  readonly fields?: readonly (readonly [string, string])[];
  /** ROM size in bytes (the rest reads 0); at least the encoded length. */
  readonly sizeBytes?: number;
}

/**
 * Encodes VPD. The RV field makes the sum of all bytes from the start through the
 * checksum byte 0 (mod 256), as Appendix I requires.
 *
 * @throws {RangeError} for a key that is not two characters, a non-ASCII value, a
 *   value longer than 255 bytes or a size too small for the encoding.
 *
 * @example
 * buildVpdImage({ identifier: 'Example NIC', fields: [['PN', 'EX-1']] });
 */
export function buildVpdImage(contents: VpdContents): Uint8Array {
  const bytes: number[] = [];
  const ascii = (text: string, what: string): number[] => {
    const codes: number[] = [];
    for (let i = 0; i < text.length; i++) codes.push(text.charCodeAt(i));
    if (codes.some((c) => c > 0x7f)) {
      throw new RangeError(`Cannot encode VPD ${what} "${text}": it must be ASCII`);
    }
    return codes;
  };
  const id = ascii(contents.identifier, 'identifier');
  bytes.push(TAG_ID_STRING, id.length & 0xff, id.length >> 8, ...id);
  const body: number[] = [];
  for (const [key, value] of contents.fields ?? []) {
    if (key.length !== 2)
      throw new RangeError(`Cannot encode VPD keyword "${key}": it must be two characters`);
    const data = ascii(value, `field ${key}`);
    if (data.length > 0xff) {
      throw new RangeError(`Cannot encode VPD field "${key}": ${data.length} bytes is over 255`);
    }
    body.push(...ascii(key, 'keyword'), data.length, ...data);
  }
  // RV: keyword, length 1, checksum byte (its value is fixed up below).
  body.push(...ascii('RV', 'keyword'), 1, 0);
  bytes.push(TAG_VPD_R, body.length & 0xff, body.length >> 8, ...body);
  const sum = bytes.reduce((a, b) => (a + b) & 0xff, 0);
  bytes[bytes.length - 1] = (0x100 - sum) & 0xff;
  bytes.push(TAG_END);
  const size = contents.sizeBytes ?? 256;
  if (size < bytes.length) {
    throw new RangeError(`Cannot fit ${bytes.length} bytes of VPD into a ${size}-byte ROM`);
  }
  const rom = new Uint8Array(size);
  rom.set(bytes);
  return rom;
}
