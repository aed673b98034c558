// SPDX-License-Identifier: MIT
/**
 * Config-space dump formats: the text `lspci -x`/`-xxx`/`-xxxx` prints (and reads back
 * with `lspci -F`), optionally interleaved with `lspci -vvv` decode, and raw binary
 * images as read from sysfs `config` files.
 *
 * The text grammar follows pciutils' own reader (`lib/dump.c`): a device starts at a
 * header line `[DDDD:]BB:DD.F description`, its data lines are `OFF: XX XX ...` (hex
 * offset, then hex bytes), an empty line ends the device, and every other line (the
 * indented `-vvv` text) is ignored, except the `Region N:` and `Expansion ROM at` lines
 * whose `[size=...]` gives the BAR sizes.
 */
import { PciAddress, PciAddressError } from './address.js';
import { isConfigSpaceSize } from './config-space.js';
import {
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_STD_HEADER_SIZEOF,
} from '../abi/pci-regs.js';
import { PCI_ROM_RESOURCE } from './resource.js';

/** One device read from a dump. */
export interface DeviceDump {
  /** Where the device sits (domain 0 when the dump has no domain prefix). */
  readonly address: PciAddress;
  /** True when the header line carried the `DDDD:` domain prefix. */
  readonly hasDomain: boolean;
  /** The header line after the address (lspci's class and name), or a generated one. */
  readonly description: string;
  /** The config image: 64, 256 or 4096 bytes. */
  readonly config: Uint8Array;
  /**
   * BAR sizes from the `-vvv` text: region index 0..5, 6 for the expansion ROM. Only
   * regions whose line carries `[size=...]` have an entry.
   */
  readonly barSizes: ReadonlyMap<number, bigint>;
}

/** A dump that does not follow the format; `line` is 1-based when the error has one. */
export class DumpSyntaxError extends SyntaxError {
  /** The 1-based line of a text dump the error is about, if any. */
  readonly line: number | undefined;

  constructor(message: string, options: { line?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DumpSyntaxError';
    this.line = options.line;
  }
}

/** Options of {@link parseLspciText}. */
export interface ParseLspciTextOptions {
  /** File name to mention in error messages. */
  readonly name?: string;
}

/** Options of {@link parseBinaryDump}. */
export interface ParseBinaryDumpOptions {
  /** Address of the device (0000:00:00.0 when absent). */
  readonly address?: PciAddress;
  /** Description for the header line (lspci's `Class CCCC: Device VVVV:DDDD` when absent). */
  readonly description?: string;
  /** Whether the address is shown with its domain (default: when the domain is not 0). */
  readonly hasDomain?: boolean;
}

/** Options of {@link formatLspciDump}. */
export interface FormatLspciDumpOptions {
  /**
   * `true` writes `DDDD:BB:DD.F` for every device, `false` writes `BB:DD.F`; absent, each
   * dump's own `hasDomain` decides. A non-zero domain is always written, so the text
   * reads back to the same address.
   */
  readonly withDomain?: boolean;
}

// `[DDDD:]BB:DD.F description`. pciutils accepts 4 to 6 domain digits; one hex digit
// for the function so that `.8` is reported as a bad function, not ignored. The `s`
// flag lets a description hold U+2028 and U+2029, which are not line ends here.
const HEADER_PATTERN =
  /^(?:([0-9a-fA-F]{4,6}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-9a-fA-F])(?:[ \t](.*))?$/s;
// Anything else that starts like a data line (hex digits and a colon at column 0) must
// be one: lspci would silently skip it, losing bytes.
const DATA_PREFIX_PATTERN = /^[0-9a-fA-F]+:/;
const DATA_PATTERN = /^([0-9a-fA-F]{1,8}):((?: [0-9a-fA-F]{2})+)[ \t]*$/;
const REGION_PATTERN = /^Region ([0-5]): .*\[size=(\d+)([KMGT]?)\]\s*$/;
const ROM_PATTERN = /^Expansion ROM at .*\[size=(\d+)([KMGT]?)\]\s*$/;
/** `-vvv` lines of the device itself are indented one tab; capability details deeper. */
const TOP_LEVEL_INDENT_COLUMNS = 8;
const SIZE_SHIFT: Readonly<Record<string, bigint>> = { '': 0n, K: 10n, M: 20n, G: 30n, T: 40n };

interface DeviceBuilder {
  readonly address: PciAddress;
  readonly hasDomain: boolean;
  readonly description: string;
  readonly headerLine: number;
  readonly data: Uint8Array;
  endByte: number;
  readonly barSizes: Map<number, bigint>;
}

/**
 * Parse `lspci -x`, `-xxx` or `-xxxx` text holding one or many devices, with or without
 * the domain prefix and with any interleaved `-vvv` decode.
 *
 * The image of each device is as long as its highest data byte rounded up to 64, 256
 * or 4096 bytes; bytes the text does not give are 0.
 *
 * @throws {DumpSyntaxError} naming the line of a malformed data line, a data line
 *   outside a device, data past 4096 bytes, a bad address or a device with no data.
 *
 * @example
 * const [nic] = parseLspciText('03:00.0 Ethernet controller: X\n00: 86 80 c9 10\n');
 * nic.address.toString(); // '0000:03:00.0'
 * nic.config.length; // 64
 */
export function parseLspciText(text: string, options: ParseLspciTextOptions = {}): DeviceDump[] {
  const where = options.name === undefined ? 'lspci dump' : `lspci dump "${options.name}"`;
  const fail = (line: number, detail: string, cause?: unknown): never => {
    throw new DumpSyntaxError(`Cannot parse ${where} line ${line}: ${detail}`, {
      line,
      ...(cause === undefined ? {} : { cause }),
    });
  };
  const dumps: DeviceDump[] = [];
  let current: DeviceBuilder | undefined;
  const finish = (): void => {
    if (current === undefined) return;
    if (current.endByte === 0) {
      fail(current.headerLine, `device "${current.address.toString()}" has no hex data`);
    }
    dumps.push({
      address: current.address,
      hasDomain: current.hasDomain,
      description: current.description,
      config: current.data.slice(0, roundUpConfigSize(current.endByte)),
      barSizes: current.barSizes,
    });
    current = undefined;
  };

  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    const line = (lines[index] ?? '').replace(/\r$/, '');
    if (line === '') {
      // As in pciutils: an empty line ends the device.
      finish();
      continue;
    }
    const header = HEADER_PATTERN.exec(line);
    if (header !== null) {
      finish();
      const [, domainText, busText, deviceText, fnText, description] = header;
      let address: PciAddress;
      try {
        address = new PciAddress(
          domainText === undefined ? 0 : Number.parseInt(domainText, 16),
          Number.parseInt(busText ?? '', 16),
          Number.parseInt(deviceText ?? '', 16),
          Number.parseInt(fnText ?? '', 16),
        );
      } catch (err) {
        if (!(err instanceof PciAddressError)) throw err;
        return fail(lineNumber, `invalid ${err.component} in "${line}"`, err);
      }
      current = {
        address,
        hasDomain: domainText !== undefined,
        description: description ?? '',
        headerLine: lineNumber,
        data: new Uint8Array(PCI_CFG_SPACE_EXP_SIZE),
        endByte: 0,
        barSizes: new Map(),
      };
      continue;
    }
    if (DATA_PREFIX_PATTERN.test(line)) {
      const data = DATA_PATTERN.exec(line);
      if (data === null) {
        return fail(lineNumber, `expected "OFF: " and two-digit hex bytes, got "${line}"`);
      }
      if (current === undefined) {
        return fail(lineNumber, 'hex data outside a device: a header line must come first');
      }
      const byteOffset = Number.parseInt(data[1] ?? '', 16);
      const tokens = (data[2] ?? '').trim().split(' ');
      if (byteOffset + tokens.length > PCI_CFG_SPACE_EXP_SIZE) {
        return fail(lineNumber, `data at 0x${byteOffset.toString(16)} runs past 4096 bytes`);
      }
      const device = current;
      tokens.forEach((token, i) => {
        device.data[byteOffset + i] = Number.parseInt(token, 16);
      });
      device.endByte = Math.max(device.endByte, byteOffset + tokens.length);
      continue;
    }
    if (
      current !== undefined &&
      /^\s/.test(line) &&
      indentColumns(line) <= TOP_LEVEL_INDENT_COLUMNS
    ) {
      readRegionSize(line.trim(), current.barSizes);
    }
    // Any other line is -vvv decode or commentary: ignored, as lspci -F does.
  }
  finish();
  return dumps;
}

/**
 * Wrap a raw config image (a sysfs `config` file) as a dump.
 *
 * @throws {DumpSyntaxError} unless `bytes` holds exactly 64, 256 or 4096 bytes.
 *
 * @example
 * const dump = parseBinaryDump(bytes, { address: PciAddress.parse('0000:00:03.0') });
 */
export function parseBinaryDump(
  bytes: Uint8Array,
  options: ParseBinaryDumpOptions = {},
): DeviceDump {
  if (!isConfigSpaceSize(bytes.length)) {
    throw new DumpSyntaxError(
      `Cannot read a binary config dump of ${bytes.length} bytes: it must be 64, 256 or 4096 bytes`,
    );
  }
  const address = options.address ?? new PciAddress(0, 0, 0, 0);
  const config = bytes.slice();
  return {
    address,
    hasDomain: options.hasDomain ?? address.domain !== 0,
    description: options.description ?? defaultDescription(config),
    config,
    barSizes: new Map(),
  };
}

/**
 * Read a dump file of either kind. It is text when it decodes as UTF-8 without NUL
 * bytes and has a header line and a hex data line; otherwise it must be a 64, 256 or
 * 4096-byte binary image. `name` (a path or file name) is used in error messages, and
 * for a binary image an address in it (`0000:00:03.0.config.bin`) becomes the
 * device's address.
 *
 * @throws {DumpSyntaxError} for a malformed text dump, a text file without devices or
 *   bytes of another length.
 */
export function parseDumpFile(bytes: Uint8Array, name?: string): DeviceDump[] {
  const text = decodeText(bytes);
  const where = name === undefined ? 'dump' : `dump "${name}"`;
  if (text !== undefined && looksLikeLspciText(text)) {
    const dumps = parseLspciText(text, name === undefined ? {} : { name });
    if (dumps.length === 0) {
      throw new DumpSyntaxError(`Cannot read ${where}: it holds no device`);
    }
    return dumps;
  }
  if (!isConfigSpaceSize(bytes.length)) {
    throw new DumpSyntaxError(
      `Cannot read ${where}: ${bytes.length} bytes is neither lspci text nor a 64-, 256- or 4096-byte binary image`,
    );
  }
  const address = name === undefined ? undefined : addressInName(name);
  return [
    parseBinaryDump(
      bytes,
      address === undefined ? {} : { address: address.address, hasDomain: address.hasDomain },
    ),
  ];
}

/**
 * Write dumps as `lspci -xxxx` prints them, so that `lspci -F` reads them back: the
 * header line, 16 lowercase hex bytes per line after a `%02x:` offset (three digits
 * from 0x100 on), and an empty line after each device. A 64- or 256-byte image prints
 * 64 or 256 bytes, as lspci does when the rest cannot be read. BAR sizes are not
 * written (`-xxxx` output has none).
 *
 * @throws {RangeError} for an image that is not 64, 256 or 4096 bytes or a description
 *   with a line break.
 *
 * @example
 * formatLspciDump(dump); // '03:00.0 Ethernet controller: ...\n00: 86 80 ...\n...\n\n'
 */
export function formatLspciDump(
  dumps: readonly DeviceDump[] | DeviceDump,
  options: FormatLspciDumpOptions = {},
): string {
  const list: readonly DeviceDump[] = isDumpList(dumps) ? dumps : [dumps];
  const out: string[] = [];
  for (const dump of list) {
    const name = dump.address.toString();
    if (!isConfigSpaceSize(dump.config.length)) {
      throw new RangeError(
        `Cannot format dump of "${name}": its config image has ${dump.config.length} bytes, not 64, 256 or 4096`,
      );
    }
    if (/[\r\n]/.test(dump.description)) {
      throw new RangeError(
        `Cannot format dump of "${name}": its description contains a line break`,
      );
    }
    const withDomain = (options.withDomain ?? dump.hasDomain) || dump.address.domain !== 0;
    out.push(`${withDomain ? name : dump.address.toShortString()} ${dump.description}\n`);
    for (let lineStart = 0; lineStart < dump.config.length; lineStart += 16) {
      let line = `${hex(lineStart, 2)}:`;
      for (let i = lineStart; i < lineStart + 16; i++) line += ` ${hex(dump.config[i] ?? 0, 2)}`;
      out.push(`${line}\n`);
    }
    out.push('\n');
  }
  return out.join('');
}

function isDumpList(dumps: readonly DeviceDump[] | DeviceDump): dumps is readonly DeviceDump[] {
  return Array.isArray(dumps);
}

function roundUpConfigSize(endByte: number): number {
  if (endByte <= PCI_STD_HEADER_SIZEOF) return PCI_STD_HEADER_SIZEOF;
  if (endByte <= PCI_CFG_SPACE_SIZE) return PCI_CFG_SPACE_SIZE;
  return PCI_CFG_SPACE_EXP_SIZE;
}

function indentColumns(line: string): number {
  let column = 0;
  for (const char of line) {
    if (char === '\t') column = (Math.floor(column / 8) + 1) * 8;
    else if (char === ' ') column++;
    else break;
  }
  return column;
}

function readRegionSize(text: string, barSizes: Map<number, bigint>): void {
  const region = REGION_PATTERN.exec(text);
  if (region !== null) {
    barSizes.set(Number(region[1]), sizeValue(region[2] ?? '', region[3] ?? ''));
    return;
  }
  const rom = ROM_PATTERN.exec(text);
  if (rom !== null) barSizes.set(PCI_ROM_RESOURCE, sizeValue(rom[1] ?? '', rom[2] ?? ''));
}

/** lspci's `show_size`: a number and a binary suffix (`4K`, `16M`, `8G`). */
function sizeValue(digits: string, suffix: string): bigint {
  return BigInt(digits) << (SIZE_SHIFT[suffix] ?? 0n);
}

/** What lspci prints for a device it has no name for (`-n` style). */
function defaultDescription(config: Uint8Array): string {
  const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
  const classId = view.getUint16(0x0a, true);
  const vendorId = view.getUint16(0x00, true);
  const deviceId = view.getUint16(0x02, true);
  const revision = view.getUint8(0x08);
  const rev = revision === 0 ? '' : ` (rev ${hex(revision, 2)})`;
  return `Class ${hex(classId, 4)}: Device ${hex(vendorId, 4)}:${hex(deviceId, 4)}${rev}`;
}

function decodeText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function looksLikeLspciText(text: string): boolean {
  let sawHeader = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (HEADER_PATTERN.test(line)) sawHeader = true;
    else if (sawHeader && DATA_PREFIX_PATTERN.test(line)) return true;
  }
  return false;
}

function addressInName(name: string): { address: PciAddress; hasDomain: boolean } | undefined {
  const base = name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1);
  const match = /^((?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])(?![0-9a-fA-F])/.exec(
    base,
  );
  if (match?.[1] === undefined) return undefined;
  try {
    return { address: PciAddress.parse(match[1]), hasDomain: match[1].length > 7 };
  } catch {
    // Not an address after all (a bus or device out of range): keep the default.
    return undefined;
  }
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}
