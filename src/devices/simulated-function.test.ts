// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PCI_BIST_CAPABLE,
  PCI_BIST_START,
  PCI_CAP_ID,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_SIG_TARGET_ABORT,
} from '../abi/pci-regs.js';
import { buildCatalogDevice } from './catalog/index.js';
import { msiBody, pcieBody, pmBody } from './capability-bodies.js';
import { ConfigImageBuilder } from './config-image-builder.js';
import { SimulatedFunction } from './simulated-function.js';

/** The value, asserting it is there (tests index arrays and optional results a lot). */
function must<T>(value: T | null | undefined): T {
  assert.ok(value !== undefined && value !== null, 'expected a value');
  return value;
}

function conventionalImage(options: { ioBar?: boolean; bist?: boolean } = {}): ConfigImageBuilder {
  const image = new ConfigImageBuilder(256).identity({
    vendorId: 0x10ec,
    deviceId: 0x8139,
    revision: 0x10,
    classCode: 0x020000,
    headerType: 0,
    subsystemVendorId: 0x10ec,
    subsystemId: 0x8139,
  });
  image.set32(0x10, options.ioBar === true ? 0xc001 : 0xfeb00000);
  image.set8(0x3d, 1);
  image.set8(0x3c, 11);
  if (options.bist === true) image.set8(0x0f, PCI_BIST_CAPABLE);
  image.addCapability(PCI_CAP_ID.PM, pmBody({}));
  image.addCapability(PCI_CAP_ID.MSI, msiBody({ is64: false, maskable: false, vectorsLog2: 0 }));
  return image;
}

function pcieImage(): ConfigImageBuilder {
  const image = conventionalImage();
  image.addCapability(PCI_CAP_ID.EXP, pcieBody({ type: PCI_EXP_TYPE_ENDPOINT, devcap: 0 }));
  return image;
}

describe('SimulatedFunction config accesses', () => {
  test('IDs, class, header type, subsystem IDs and the capability pointer are read-only', () => {
    const fn = new SimulatedFunction(conventionalImage().build());
    const before = [0x00, 0x08, 0x0c, 0x2c, 0x34].map((o) => fn.configRead(o, 4));
    for (const offset of [0x00, 0x08, 0x2c, 0x34]) fn.configWrite(offset, 4, 0xa5a5a5a5);
    fn.configWrite(0x0e, 1, 0x81);
    const after = [0x00, 0x08, 0x0c, 0x2c, 0x34].map((o) => fn.configRead(o, 4));
    assert.deepEqual(after.slice(0, 2), before.slice(0, 2));
    assert.equal(must(after[2]) & 0x00ff0000, must(before[2]) & 0x00ff0000, 'header type kept');
    assert.deepEqual(after.slice(3), before.slice(3));
  });

  test('misaligned, out-of-range and wrong-sized reads return all-ones', () => {
    const fn = new SimulatedFunction(conventionalImage().build());
    assert.equal(fn.configRead(0x01, 2), 0xffff);
    assert.equal(fn.configRead(0x02, 4), 0xffffffff);
    assert.equal(fn.configRead(0x100, 4), 0xffffffff, '256-byte function');
    assert.equal(fn.configRead(0xff, 1), fn.configRead(0xfc, 4) >>> 24);
    assert.equal(fn.configRead(-4, 4), 0xffffffff);
    assert.equal(fn.configRead(0x00, 3), 0xffffffff);
    assert.equal(fn.configRead(1.5, 1), 0xff);
  });

  test('misaligned and out-of-range writes are dropped', () => {
    const fn = new SimulatedFunction(conventionalImage().build());
    fn.configWrite(0x3c, 4, 0x00000000);
    fn.configWrite(0x3d, 2, 0x0505);
    fn.configWrite(0x100, 4, 0);
    fn.configWrite(0x3c, 3, 0);
    assert.equal(fn.configRead(0x3c, 1), 0, 'the aligned write went through');
    fn.configWrite(0x3b, 2, 0x7777);
    assert.equal(fn.configRead(0x3c, 1), 0);
  });

  test('the command register implements IO only for functions with an I/O BAR', () => {
    const memOnly = new SimulatedFunction(pcieImage().build());
    memOnly.configWrite(0x04, 2, 0xffff);
    assert.equal(
      memOnly.configRead(0x04, 2),
      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | 0x40 | 0x100 | PCI_COMMAND_INTX_DISABLE,
      'PCIe: MEMORY, MASTER, PARITY, SERR, INTX_DISABLE',
    );
    const withIo = new SimulatedFunction(conventionalImage({ ioBar: true }).build());
    withIo.configWrite(0x04, 2, 0xffff);
    assert.equal(withIo.configRead(0x04, 2) & PCI_COMMAND_IO, PCI_COMMAND_IO);
    assert.equal(withIo.configRead(0x04, 2) & 0x10, 0x10, 'conventional PCI has MWI');
  });

  test('status error bits are cleared only by writing 1', () => {
    const fn = new SimulatedFunction(pcieImage().set16(0x06, 0x0810).build());
    assert.equal(fn.configRead(0x06, 2), 0x0810, 'an error bit captured in the image');
    fn.configWrite(0x06, 2, 0);
    assert.equal(fn.configRead(0x06, 2), 0x0810, 'writing 0 keeps RW1C bits');
    fn.configWrite(0x06, 2, PCI_STATUS_SIG_TARGET_ABORT);
    assert.equal(fn.configRead(0x06, 2), 0x0010);
    fn.injectAerError({ uncorrectable: 0x00001000 }); // poisoned TLP: detected parity error
    assert.equal(fn.configRead(0x06, 2), 0x8010);
    fn.configWrite(0x06, 2, 0xffff);
    assert.equal(fn.configRead(0x06, 2), 0x0010, 'only the RO capability-list bit stays');
  });

  test('cache line size and interrupt line are RW, the pin RO, latency RO on PCIe', () => {
    const fn = new SimulatedFunction(pcieImage().build());
    fn.configWrite(0x0c, 4, 0xffffffff);
    assert.equal(fn.configRead(0x0c, 1), 0xff);
    assert.equal(fn.configRead(0x0d, 1), 0x00);
    fn.configWrite(0x3c, 2, 0x0407);
    assert.equal(fn.configRead(0x3c, 2), 0x0107);
    const conventional = new SimulatedFunction(conventionalImage().build());
    conventional.configWrite(0x0d, 1, 0x40);
    assert.equal(conventional.configRead(0x0d, 1), 0x40);
  });

  test('BIST start clears itself on a capable function and is RO 0 otherwise', () => {
    const capable = new SimulatedFunction(conventionalImage({ bist: true }).build());
    capable.configWrite(0x0f, 1, PCI_BIST_START);
    assert.equal(capable.configRead(0x0f, 1), PCI_BIST_CAPABLE);
    const plain = new SimulatedFunction(conventionalImage().build());
    plain.configWrite(0x0f, 1, 0xff);
    assert.equal(plain.configRead(0x0f, 1), 0);
  });

  test('device-specific bytes outside capabilities are RW, capability headers RO', () => {
    const fn = new SimulatedFunction(pcieImage().build());
    fn.configWrite(0xf0, 4, 0xdeadbeef);
    assert.equal(fn.configRead(0xf0, 4), 0xdeadbeef);
    const header = fn.configRead(0x40, 2);
    fn.configWrite(0x40, 2, 0);
    assert.equal(fn.configRead(0x40, 2), header);
    assert.equal(fn.registerMasks(0xf0, 4).writable, 0xffffffff);
  });

  test('registerMasks() refuses a register outside the config space', () => {
    const fn = new SimulatedFunction(conventionalImage().build());
    assert.throws(() => fn.registerMasks(0x100, 4), RangeError);
  });

  test('the constructor refuses images that are not 64, 256 or 4096 bytes', () => {
    assert.throws(() => new SimulatedFunction(new Uint8Array(128)), RangeError);
  });
});

describe('SimulatedFunction bridge header', () => {
  test('bus numbers, windows and bridge control are RW; window type nibbles RO', () => {
    const [port] = buildCatalogDevice('root-port');
    const fn = must(port).device;
    fn.configWrite(0x18, 4, 0x00050403);
    assert.equal(fn.configRead(0x18, 4) & 0x00ffffff, 0x050403);
    fn.configWrite(0x1c, 2, 0xffff);
    assert.equal(fn.configRead(0x1c, 2), 0xf1f1, 'I/O window: 32-bit type nibble kept');
    fn.configWrite(0x20, 4, 0xffffffff);
    assert.equal(fn.configRead(0x20, 4), 0xfff0fff0);
    fn.configWrite(0x24, 4, 0);
    assert.equal(fn.configRead(0x24, 4), 0x00010001, '64-bit prefetchable type kept');
    fn.configWrite(0x28, 4, 0x12345678);
    assert.equal(fn.configRead(0x28, 4), 0x12345678, 'upper 32 bits of a 64-bit window');
    fn.configWrite(0x3e, 2, 0xffff);
    assert.equal(fn.configRead(0x3e, 2), 0x005f);
  });

  test('the secondary bus reset bit is reported through a hook', () => {
    const seen: boolean[] = [];
    const [port] = buildCatalogDevice('root-port', {
      hooks: { onSecondaryBusReset: (a) => seen.push(a) },
    });
    const fn = must(port).device;
    fn.configWrite(0x3e, 2, 0x0040);
    fn.configWrite(0x3e, 2, 0x0040);
    fn.configWrite(0x3e, 2, 0x0000);
    assert.deepEqual(seen, [true, false]);
  });
});

describe('SimulatedFunction INTx', () => {
  test('setIntx() sets the status bit and asserts the line while INTx is allowed', () => {
    const levels: boolean[] = [];
    const fn = new SimulatedFunction(pcieImage().build(), {
      hooks: { onIntx: (l) => levels.push(l) },
    });
    fn.setIntx(true);
    assert.equal(fn.configRead(0x06, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    fn.configWrite(0x04, 2, PCI_COMMAND_INTX_DISABLE);
    assert.equal(
      fn.configRead(0x06, 2) & PCI_STATUS_INTERRUPT,
      PCI_STATUS_INTERRUPT,
      'still pending',
    );
    fn.configWrite(0x04, 2, 0);
    fn.setIntx(false);
    assert.deepEqual(levels, [true, false, true, false]);
    assert.equal(fn.configRead(0x06, 2) & PCI_STATUS_INTERRUPT, 0);
  });

  test('INTx is silent while MSI is enabled', () => {
    const levels: boolean[] = [];
    const fn = new SimulatedFunction(pcieImage().build(), {
      hooks: { onIntx: (l) => levels.push(l) },
    });
    const msi = 0x48;
    assert.equal(fn.configRead(msi, 1), PCI_CAP_ID.MSI);
    fn.configWrite(msi + 2, 2, 1);
    fn.setIntx(true);
    assert.deepEqual(levels, []);
    assert.equal(fn.intxOutput(), false);
    fn.configWrite(msi + 2, 2, 0);
    assert.deepEqual(levels, [true]);
  });

  test('a function without an interrupt pin ignores setIntx()', () => {
    const fn = new SimulatedFunction(pcieImage().set8(0x3d, 0).build());
    fn.setIntx(true);
    assert.equal(fn.configRead(0x06, 2) & PCI_STATUS_INTERRUPT, 0);
  });
});

describe('SimulatedFunction state', () => {
  test('fromState(state()) rebuilds an equivalent function', () => {
    const [nic] = buildCatalogDevice('nic-sriov');
    const fn = must(nic).device;
    fn.configWrite(0x04, 2, 0x0006);
    fn.configWrite(0xa8 + 2, 2, 0x0010);
    fn.mmioWrite(0, 0x100, 4, 0xcafef00d);
    fn.mmioWrite(3, 0x10, 4, 0xfee00000);
    fn.injectAerError({ correctable: 1 });
    const state = fn.state();
    const copy = SimulatedFunction.fromState(JSON.parse(JSON.stringify(state)) as typeof state);
    assert.deepEqual(copy.state(), state);
    for (let offset = 0; offset < 4096; offset += 4) {
      assert.equal(
        copy.configRead(offset, 4),
        fn.configRead(offset, 4),
        `offset 0x${offset.toString(16)}`,
      );
    }
    assert.equal(copy.mmioRead(0, 0x100, 4), 0xcafef00d);
    assert.equal(copy.mmioRead(3, 0x10, 4), 0xfee00000);
    copy.functionLevelReset();
    fn.functionLevelReset();
    assert.equal(copy.configRead(0x10, 4), fn.configRead(0x10, 4), 'same power-on values');
  });

  test('fromState() refuses an unknown version and a VF without its PF', () => {
    const fn = new SimulatedFunction(conventionalImage().build());
    const state = fn.state();
    assert.throws(() => SimulatedFunction.fromState({ ...state, version: 2 as 1 }), SyntaxError);
    assert.throws(
      () => SimulatedFunction.fromState({ ...state, virtualFunction: { vfIndex: 0 } }),
      TypeError,
    );
  });
});
