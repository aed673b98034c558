// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GuestPciDevice } from './enumerate.js';
import { diffEnumerations } from './xenbus-rescan-diff.js';

function device(bus: number, devfn: number, vendorId = 0x8086, deviceId = 0x10d3): GuestPciDevice {
  const address = `0000:${bus.toString(16).padStart(2, '0')}:${(devfn >> 3)
    .toString(16)
    .padStart(2, '0')}.${devfn & 7}`;
  return {
    address,
    domain: 0,
    bus,
    devfn,
    vendorId,
    deviceId,
    revision: 0,
    classCode: 0x020000,
    headerType: 0,
    multiFunction: false,
    command: 0,
    status: 0,
    interruptPin: 1,
    interruptLine: 0,
    bars: [],
    capabilities: [],
    extendedCapabilities: [],
    configSizeBytes: 256,
  };
}

test('diffEnumerations() lists added and removed addresses, sorted by bus and devfn', () => {
  const before = { devices: [device(0, 0x08), device(0, 0x00), device(1, 0x00)] };
  const after = { devices: [device(0, 0x10), device(0, 0x00), device(0, 0x01)] };
  assert.deepEqual(diffEnumerations(before, after), {
    added: ['0000:00:00.1', '0000:00:02.0'],
    removed: ['0000:00:01.0', '0000:01:00.0'],
    replaced: [],
  });
});

test('diffEnumerations() reports another function at the same address as replaced', () => {
  const before = { devices: [device(0, 0x00, 0x8086, 0x10d3)] };
  const after = { devices: [device(0, 0x00, 0x1af4, 0x1041)] };
  assert.deepEqual(diffEnumerations(before, after), {
    added: [],
    removed: [],
    replaced: ['0000:00:00.0'],
  });
});

test('diffEnumerations() of identical scans is empty and leaves its inputs alone', () => {
  const devices = [device(0, 0x08), device(0, 0x00)];
  const before = { devices };
  const copy = [...devices];
  assert.deepEqual(diffEnumerations(before, { devices: [device(0, 0x00), device(0, 0x08)] }), {
    added: [],
    removed: [],
    replaced: [],
  });
  assert.deepEqual(devices, copy);
});
