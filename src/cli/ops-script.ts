// SPDX-License-Identifier: MIT
/**
 * The ops language of `pciback confspace --ops`: one op per line,
 * `read OFF SIZE`, `write OFF SIZE VALUE`, `hw-read OFF SIZE`; numbers hex (`0x..`) or
 * decimal; `#` starts a comment; blank lines are ignored.
 */

/** One parsed op. Offsets may be negative or out of range: the virtualizer judges them. */
export type ScriptOp =
  | { readonly op: 'read'; readonly offset: number; readonly size: number; readonly line: number }
  | {
      readonly op: 'hw-read';
      readonly offset: number;
      readonly size: number;
      readonly line: number;
    }
  | {
      readonly op: 'write';
      readonly offset: number;
      readonly size: number;
      readonly value: number;
      readonly line: number;
    };

const NUMBER = /^-?(0x[0-9a-f]+|\d+)$/i;

function parseNumber(text: string, what: string, lineNo: number): number {
  if (!NUMBER.test(text)) {
    throw new SyntaxError(`Cannot parse ops line ${lineNo}: ${what} "${text}" is not a number`);
  }
  const negative = text.startsWith('-');
  const digits = negative ? text.slice(1) : text;
  const value = Number(digits); // Number() reads both 0x.. and decimal
  if (!Number.isSafeInteger(value) || value > 0xffffffff) {
    throw new SyntaxError(`Cannot parse ops line ${lineNo}: ${what} "${text}" is out of range`);
  }
  return negative ? -value : value;
}

/** Parse an ops script; errors name the line. */
export function parseOpsScript(text: string): ScriptOp[] {
  const ops: ScriptOp[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const lineNo = index + 1;
    const hash = raw.indexOf('#');
    const words = (hash >= 0 ? raw.slice(0, hash) : raw).trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) continue;
    const [verb, ...args] = words;
    const expected = verb === 'write' ? 3 : 2;
    if (verb !== 'read' && verb !== 'write' && verb !== 'hw-read') {
      throw new SyntaxError(
        `Cannot parse ops line ${lineNo}: unknown op "${verb ?? ''}" (expected read, write or hw-read)`,
      );
    }
    if (args.length !== expected) {
      throw new SyntaxError(
        `Cannot parse ops line ${lineNo}: "${verb}" takes ${expected} arguments, got ${args.length}`,
      );
    }
    const offset = parseNumber(args[0] ?? '', 'offset', lineNo);
    const size = parseNumber(args[1] ?? '', 'size', lineNo);
    if (verb === 'write') {
      const value = parseNumber(args[2] ?? '', 'value', lineNo);
      if (value < 0) {
        throw new SyntaxError(
          `Cannot parse ops line ${lineNo}: value "${args[2] ?? ''}" is negative`,
        );
      }
      ops.push({ op: 'write', offset, size, value, line: lineNo });
    } else {
      ops.push({ op: verb, offset, size, line: lineNo });
    }
  }
  return ops;
}

/** `0x` + zero-padded hex of `2 * size` digits (8 for an invalid size). */
export function formatHex(value: number, size: number): string {
  const digits = size === 1 || size === 2 || size === 4 ? size * 2 : 8;
  return '0x' + (value >>> 0).toString(16).padStart(digits, '0');
}

/** An offset as the output shows it: `0x10`, `-0x4`. */
export function formatOffset(offset: number): string {
  return (offset < 0 ? '-0x' : '0x') + Math.abs(offset).toString(16).padStart(2, '0');
}
