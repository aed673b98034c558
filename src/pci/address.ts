// SPDX-License-Identifier: MIT
/**
 * A PCI function address (segment/domain, bus, device, function), Linux's `pci_name`
 * format `DDDD:BB:DD.F`.
 */

/** Largest PCI segment (domain) number. */
export const PCI_DOMAIN_MAX = 0xffff;
/** Largest bus number. */
export const PCI_BUS_MAX = 0xff;
/** Largest device (slot) number. */
export const PCI_DEVICE_MAX = 0x1f;
/** Largest function number. */
export const PCI_FUNCTION_MAX = 7;

/** The part of an address a parse error is about. */
export type PciAddressComponent = 'domain' | 'bus' | 'device' | 'function' | 'format';

/** A malformed address; `component` names the part that is wrong. */
export class PciAddressError extends SyntaxError {
  readonly component: PciAddressComponent;

  constructor(component: PciAddressComponent, message: string) {
    super(message);
    this.name = 'PciAddressError';
    this.component = component;
  }
}

const LIMITS = {
  domain: PCI_DOMAIN_MAX,
  bus: PCI_BUS_MAX,
  device: PCI_DEVICE_MAX,
  function: PCI_FUNCTION_MAX,
} as const;

const ADDRESS_PATTERN = /^(?:([0-9a-fA-F]+):)?([0-9a-fA-F]+):([0-9a-fA-F]+)\.([0-9a-fA-F]+)$/;

function checkComponent(text: string, component: keyof typeof LIMITS, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > LIMITS[component]) {
    throw new PciAddressError(
      component,
      `Invalid PCI address "${text}": ${component} 0x${value.toString(16)} is out of range 0-0x${LIMITS[component].toString(16)}`,
    );
  }
  return value;
}

/**
 * An immutable PCI function address.
 *
 * @example
 * const a = PciAddress.parse('0000:03:00.1');
 * a.devfn; // 0x01
 * a.toString(); // '0000:03:00.1'
 */
export class PciAddress {
  readonly domain: number;
  readonly bus: number;
  readonly device: number;
  readonly fn: number;

  constructor(domain: number, bus: number, device: number, fn: number) {
    // Hex, as the address is always written: decimal "0:16:31.0" would read as bus 0x16.
    const text = [domain, bus, device].map((n) => n.toString(16)).join(':') + `.${fn.toString(16)}`;
    this.domain = checkComponent(text, 'domain', domain);
    this.bus = checkComponent(text, 'bus', bus);
    this.device = checkComponent(text, 'device', device);
    this.fn = checkComponent(text, 'function', fn);
  }

  /**
   * Parse `DDDD:BB:DD.F` or `BB:DD.F` (hex; the domain defaults to `defaultDomain`,
   * 0 unless given). Errors name the component that is wrong.
   */
  static parse(text: string, options: { defaultDomain?: number } = {}): PciAddress {
    const match = ADDRESS_PATTERN.exec(text.trim());
    if (match === null) {
      throw new PciAddressError(
        'format',
        `Invalid PCI address "${text}": expected DDDD:BB:DD.F or BB:DD.F in hex`,
      );
    }
    const [, domainText, busText, deviceText, fnText] = match;
    const parsePart = (part: string | undefined, component: keyof typeof LIMITS): number => {
      if (part === undefined) return options.defaultDomain ?? 0;
      // Reject absurdly long digit strings before they lose precision.
      if (part.length > 8) {
        throw new PciAddressError(
          component,
          `Invalid PCI address "${text}": ${component} "${part}" is out of range 0-0x${LIMITS[component].toString(16)}`,
        );
      }
      return checkComponent(text, component, Number.parseInt(part, 16));
    };
    return new PciAddress(
      parsePart(domainText, 'domain'),
      parsePart(busText, 'bus'),
      parsePart(deviceText, 'device'),
      parsePart(fnText, 'function'),
    );
  }

  /** Build from a domain, bus and `devfn = (device << 3) | fn`. */
  static fromDevfn(domain: number, bus: number, devfn: number): PciAddress {
    if (!Number.isInteger(devfn) || devfn < 0 || devfn > 0xff) {
      throw new RangeError(`Invalid devfn 0x${devfn.toString(16)}: it must be 0-0xff`);
    }
    return new PciAddress(domain, bus, devfn >> 3, devfn & 7);
  }

  /** `(device << 3) | function`. */
  get devfn(): number {
    return (this.device << 3) | this.fn;
  }

  /** A copy with another function number (siblings of a multi-function device). */
  withFunction(fn: number): PciAddress {
    return new PciAddress(this.domain, this.bus, this.device, fn);
  }

  /** True when both name the same function. */
  equals(other: PciAddress): boolean {
    return this.key === other.key;
  }

  /** Total order: domain, bus, devfn. */
  compare(other: PciAddress): number {
    return this.key - other.key;
  }

  /** One number that identifies the function (usable as a Map key). */
  get key(): number {
    return this.domain * 0x10000 + ((this.bus << 8) | this.devfn);
  }

  /** `DDDD:BB:DD.F`, lowercase hex, Linux's `pci_name`. */
  toString(): string {
    return `${hex(this.domain, 4)}:${this.toShortString()}`;
  }

  /** `BB:DD.F` (lspci without a domain). */
  toShortString(): string {
    return `${hex(this.bus, 2)}:${hex(this.device, 2)}.${this.fn.toString(16)}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}
