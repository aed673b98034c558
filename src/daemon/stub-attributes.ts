// SPDX-License-Identifier: MIT
/**
 * `pciback stub-attr NAME [VALUE]`: pciback's driver attributes (spec §6.5) and the
 * driver core's `bind`/`unbind`, served from our userspace stub ({@link ownStubAttribute})
 * or from the kernel's pciback driver directory in sysfs ({@link kernelStubAttribute}).
 * Both check the attribute's access the way sysfs does (a write-only file cannot be read).
 */
import { PcibackError } from '../errors.js';
import { PciAddress } from '../pci/index.js';
import type { PciStub } from '../pciback/stub/index.js';
import type { PciHostPlatform } from '../platform/pci-host.js';
import type { SysfsIo } from '../platform/linux/index.js';
import type { StubAttribute } from './control/protocol.js';

/** How each attribute may be used (the file modes of `/sys/bus/pci/drivers/pciback`). */
export const STUB_ATTRIBUTE_ACCESS: Readonly<Record<StubAttribute, 'r' | 'w' | 'rw'>> = {
  slots: 'r',
  new_slot: 'w',
  remove_slot: 'w',
  permissive: 'rw',
  allow_interrupt_control: 'rw',
  quirks: 'rw',
  irq_handlers: 'r',
  irq_handler_state: 'w',
  bind: 'w',
  unbind: 'w',
};

/** Refuse a read of a write-only attribute and a write of a read-only one. */
function checkAccess(name: StubAttribute, value: string | undefined): void {
  const access = STUB_ATTRIBUTE_ACCESS[name];
  if (value === undefined && access === 'w') {
    throw new PcibackError('STUB_WRITE_ONLY', `Cannot read "${name}": it is write-only`);
  }
  if (value !== undefined && access === 'r') {
    throw new PcibackError('STUB_READ_ONLY', `Cannot write "${name}": it is read-only`);
  }
}

/** A `bind`/`unbind` value: one full BDF (`DDDD:BB:DD.F`), as the kernel wants it. */
function parseBdfAttribute(name: string, text: string): PciAddress {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(trimmed)) {
    try {
      return PciAddress.parse(trimmed);
    } catch {
      /* reported below */
    }
  }
  throw new PcibackError(
    'STUB_INVALID_ARGUMENT',
    `Cannot write "${text}" to "${name}": give a full address such as 0000:03:00.0`,
  );
}

/** The driver core's `bind`/`unbind` of `driver` on `pci`. */
function bindOrUnbind(
  pci: PciHostPlatform,
  driver: string,
  name: 'bind' | 'unbind',
  value: string,
): void {
  const address = parseBdfAttribute(name, value);
  if (name === 'bind') {
    pci.bind(address, driver);
    return;
  }
  if (pci.info(address)?.driver !== driver) {
    throw new PcibackError(
      'NO_SUCH_DEVICE',
      `Cannot unbind "${address.toString()}" from ${driver}: it is not bound to it`,
    );
  }
  pci.unbind(address);
}

/**
 * One attribute of our userspace stub: read when `value` is undefined (the listing),
 * else written ('' back).
 */
export function ownStubAttribute(
  pci: PciHostPlatform,
  stub: PciStub,
  name: StubAttribute,
  value: string | undefined,
): string {
  checkAccess(name, value);
  const text = value ?? '';
  switch (name) {
    case 'slots':
      return stub.slots();
    case 'irq_handlers':
      return stub.irqHandlers();
    case 'permissive':
      if (value === undefined) return stub.permissive();
      stub.setPermissive(text);
      return '';
    case 'allow_interrupt_control':
      if (value === undefined) return stub.allowInterruptControl();
      stub.setAllowInterruptControl(text);
      return '';
    case 'quirks':
      if (value === undefined) return stub.quirks();
      stub.addQuirk(text);
      return '';
    case 'new_slot':
      stub.newSlot(text);
      return '';
    case 'remove_slot':
      stub.removeSlot(text);
      return '';
    case 'irq_handler_state':
      stub.irqHandlerState(text);
      return '';
    case 'bind':
    case 'unbind':
      bindOrUnbind(pci, stub.driverName, name, text);
      return '';
  }
}

/**
 * One attribute of the kernel's pciback (`/sys/bus/pci/drivers/pciback/NAME` under
 * `io`'s root): the file read or written as is; `bind`/`unbind` through the host so the
 * address is checked first. The kernel's own errors come back with its errno.
 */
export function kernelStubAttribute(
  pci: PciHostPlatform,
  io: SysfsIo,
  name: StubAttribute,
  value: string | undefined,
): string {
  checkAccess(name, value);
  if (value !== undefined && (name === 'bind' || name === 'unbind')) {
    bindOrUnbind(pci, 'pciback', name, value);
    return '';
  }
  const path = `bus/pci/drivers/pciback/${name}`;
  try {
    if (value === undefined) return io.readText(path);
    io.writeText(path, value);
    return '';
  } catch (err) {
    throw new PcibackError(
      'HOST_IO',
      `Cannot ${value === undefined ? 'read' : 'write'} pciback's "${name}": ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}
