// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCatalogDevice } from '../devices/catalog/index.js';
import type { SimulatedFunction } from '../devices/simulated-function.js';
import { DOM0 } from '../platform/types.js';
import { enumerate, parseRoot } from './enumerate.js';
import { formatDevice, formatListing, formatSize } from './listing.js';
import { Pcifront } from './pcifront.js';
import { FakeGuestHypercalls, FakePciBackend } from './test-backend.js';

function bus(): {
  front: Pcifront;
  backend: FakePciBackend;
  gpu: SimulatedFunction[];
  hv: FakeGuestHypercalls;
} {
  const hv = new FakeGuestHypercalls();
  const front = Pcifront.create(hv, { backendDomid: DOM0, clock: hv.clock });
  const backend = new FakePciBackend(hv, front.grantRef);
  const gpu = buildCatalogDevice('gpu').map((f) => {
    backend.add(0, 0, f.fn, f.device);
    return f.device;
  });
  // The NIC alone at function 2 of slot 3: no function 0 in that slot (vpci allows it).
  const [nic] = buildCatalogDevice('nic-sriov');
  if (nic !== undefined) backend.add(0, 0, (3 << 3) | 2, nic.device);
  return { front, backend, gpu, hv };
}

test('parseRoot() reads root-N values and names the bad part', () => {
  assert.deepEqual(parseRoot('0000:00'), { domain: 0, bus: 0 });
  assert.deepEqual(parseRoot('1:a'), { domain: 1, bus: 10 });
  assert.throws(() => parseRoot('0000'), SyntaxError);
  assert.throws(() => parseRoot('0:100'), /bus is out of range/);
});

test('enumerate() finds a multi-function device and a lone non-zero function', () => {
  const { front } = bus();
  const { devices, error, busesScanned } = enumerate(front);
  assert.equal(error, undefined);
  assert.deepEqual(busesScanned, ['0000:00']);
  assert.deepEqual(
    devices.map((d) => d.address),
    ['0000:00:00.0', '0000:00:00.1', '0000:00:03.2'],
  );
  const [vga, audio, nic] = devices;
  assert.ok(vga !== undefined && audio !== undefined && nic !== undefined);
  assert.equal(vga.multiFunction, true);
  assert.deepEqual([vga.vendorId, vga.deviceId, vga.classCode >>> 8], [0x10de, 0x1c82, 0x0300]);
  assert.equal(audio.classCode >>> 8, 0x0403);
  assert.equal(nic.configSizeBytes, 4096);
  assert.deepEqual(
    nic.extendedCapabilities.map((c) => c.id),
    [0x0001, 0x0003, 0x000e, 0x0010],
  );
});

test('enumerate() sizes 64-bit, prefetchable, I/O and ROM BARs and restores them', () => {
  const { front, gpu } = bus();
  const vgaHw = gpu[0];
  assert.ok(vgaHw !== undefined);
  const before = Array.from({ length: 7 }, (_, i) => vgaHw.configRead(0x10 + 4 * i, 4));
  const rom = vgaHw.configRead(0x30, 4);
  const command = vgaHw.configRead(0x04, 2);
  const [vga] = enumerate(front).devices;
  assert.ok(vga !== undefined);
  assert.deepEqual(
    vga.bars.map((b) => [b.index, b.kind, b.is64Bit, b.prefetchable, b.address, b.sizeBytes]),
    [
      [0, 'memory', false, false, 0xf0000000, 16 << 20],
      [1, 'memory', true, true, 0x380000000, 256 << 20],
      [3, 'memory', true, true, 0x390000000, 32 << 20],
      [5, 'io', false, false, 0xe000, 128],
    ],
  );
  assert.deepEqual(vga.rom, { address: 0xf1000000, sizeBytes: 512 << 10, enabled: false });
  assert.deepEqual(
    Array.from({ length: 7 }, (_, i) => vgaHw.configRead(0x10 + 4 * i, 4)),
    before,
    'BARs restored after sizing',
  );
  assert.equal(vgaHw.configRead(0x30, 4), rom);
  assert.equal(vgaHw.configRead(0x04, 2), command, 'decode restored');
});

test('formatDevice() prints an lspci-like listing', () => {
  const { front } = bus();
  const { devices } = enumerate(front);
  const text = formatListing(devices);
  const lines = text.split('\n');
  assert.equal(lines[0], '00:00.0 VGA compatible controller [0300]: Device 10de:1c82 (rev a1)');
  assert.ok(lines.includes('\tRegion 1: Memory at 380000000 (64-bit, prefetchable) [size=256M]'));
  assert.ok(lines.includes('\tRegion 5: I/O ports at e000 [size=128]'));
  assert.ok(lines.includes('\tExpansion ROM at f1000000 [disabled] [size=512K]'));
  assert.ok(lines.includes('\tCapabilities: [40] Power Management version 3'));
  assert.ok(lines.includes('\tCapabilities: [48] MSI: Enable- Count=1/1 Maskable- 64bit+'));
  const nic = devices[2];
  assert.ok(nic !== undefined);
  const nicText = formatDevice(nic);
  assert.match(nicText, /^00:03\.2 Ethernet controller \[0200\]: Device 8086:10fb \(rev 01\)/);
  assert.match(nicText, /\tCapabilities: \[60\] MSI-X: Enable- Count=64 Masked-/);
  assert.match(nicText, /\tCapabilities: \[100 v2\] Advanced Error Reporting/);
  assert.deepEqual([formatSize(32), formatSize(16384), formatSize(1 << 30)], ['32', '16K', '1G']);
  // Plain data: survives JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(devices)), devices);
});

test('enumerate() against a dead backend stops at the first timeout with an error', () => {
  const { front, backend, hv } = bus();
  backend.mode = 'dead';
  const t0 = hv.now;
  const result = enumerate(front);
  assert.deepEqual(result.devices, []);
  assert.match(result.error ?? '', /pciback not responding/);
  assert.equal(front.stats().timeouts, 1);
  assert.ok(hv.now - t0 < 2100);
});

test('enumerate() scans behind a bridge once', () => {
  const hv = new FakeGuestHypercalls();
  const front = Pcifront.create(hv, { backendDomid: DOM0, clock: hv.clock });
  const backend = new FakePciBackend(hv, front.grantRef);
  const [port] = buildCatalogDevice('root-port', { primaryBus: 0, secondaryBus: 2 });
  assert.ok(port !== undefined);
  backend.add(0, 0, 0, port.device);
  const [nvme] = buildCatalogDevice('nvme');
  assert.ok(nvme !== undefined);
  backend.add(0, 2, 0, nvme.device);
  const result = enumerate(front);
  assert.deepEqual(result.busesScanned, ['0000:00', '0000:02']);
  assert.deepEqual(
    result.devices.map((d) => d.address),
    ['0000:00:00.0', '0000:02:00.0'],
  );
  const port0 = result.devices[0];
  assert.ok(port0 !== undefined);
  assert.deepEqual(port0.bridge, { primaryBus: 0, secondaryBus: 2, subordinateBus: 2 });
  assert.match(formatDevice(port0), /Bus: primary=00, secondary=02, subordinate=02/);
  assert.equal(enumerate(front, { scanBridges: false }).devices.length, 1);
});
