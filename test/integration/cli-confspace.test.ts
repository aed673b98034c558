// SPDX-License-Identifier: MIT
/** `pciback confspace` and `pciback demo` driven as a user would, through the compiled CLI. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI_PATH, DUMPS_DIR } from '../support/paths.js';

const NIC = join(DUMPS_DIR, 'curated', 'nic-intel-82576-8086_10c9-sriov-msix.txt');

function pciback(
  args: readonly string[],
  input = '',
): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [CLI_PATH, ...args], { input, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('confspace runs ops from stdin and prints one line per op (XSA-120: decode stays on)', () => {
  const ops = [
    '# enable decode and mastering, then try to turn everything off',
    'write 0x04 2 0x0007',
    'write 0x04 2 0',
    'read 0x04 2',
    'hw-read 0x04 2',
    'read 0x00 4',
    'write 0x10 4 0xffffffff',
    'read 0x10 4',
    'read 0x11 2',
  ].join('\n');
  const run = pciback(['confspace', '--device', NIC], ops);
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.stdout.trim().split('\n'), [
    'write 0x04 2 0x0007 -> ok',
    'write 0x04 2 0x0000 -> ok',
    'read 0x04 2 -> 0x0000 ok',
    // IO and MEM stay on in hardware, MASTER follows the guest; INTX_DISABLE as the dump had it.
    'hw-read 0x04 2 -> 0x0403 ok',
    'read 0x00 4 -> 0x10c98086 ok',
    'write 0x10 4 0xffffffff -> ok',
    // The curated dump has no Region lines: the size is inferred from the BAR value
    // (0xe0800000 is 8 MiB aligned; BAR3 at 0xe0840000 bounds it to 256 KiB; see
    // inferBarSize in devices/bars.ts).
    'read 0x10 4 -> 0xfffc0000 ok',
    'read 0x11 2 -> 0x0000 err -2',
  ]);
});

test('confspace --json gives {op, offset, size, value, result, err} per op', () => {
  const run = pciback(
    ['confspace', '--device', NIC, '--json'],
    'read 0x1000 4\nwrite 0x06 2 0xffff\n',
  );
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), [
    // Beyond the 4 KiB space the platform answers -EINVAL with all-ones (spec §1.4).
    { op: 'read', offset: 0x1000, size: 4, value: 0xffffffff, result: 'err', err: -22 },
    { op: 'write', offset: 6, size: 2, value: 0xffff, result: 'ok', err: 0 },
  ]);
});

test('confspace --permissive lets a status write through; --quirk makes a register pass-through', () => {
  const permissive = pciback(
    ['confspace', '--device', NIC, '--permissive'],
    'write 0xe0 4 0x12345678\nhw-read 0xe0 4\n',
  );
  assert.equal(permissive.status, 0, permissive.stderr);
  assert.match(permissive.stdout, /hw-read 0xe0 4 -> 0x12345678 ok/);
  const strict = pciback(
    ['confspace', '--device', NIC],
    'write 0xe0 4 0x12345678\nhw-read 0xe0 4\n',
  );
  assert.doesNotMatch(strict.stdout, /0x12345678 ok\n$/);
  const quirk = pciback(
    ['confspace', '--device', NIC, '--quirk', '0xe0:4:0xffffffff'],
    'write 0xe0 4 0x12345678\nhw-read 0xe0 4\n',
  );
  assert.match(quirk.stdout, /hw-read 0xe0 4 -> 0x12345678 ok/);
});

test('confspace reports user errors with exit 1 and usage errors with exit 2', () => {
  const badOp = pciback(['confspace', '--device', NIC], 'poke 0 4\n');
  assert.equal(badOp.status, 1);
  assert.match(badOp.stderr, /line 1: unknown op "poke"/);
  const missing = pciback(['confspace', '--device', '/nonexistent/dump.txt'], '');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /Cannot read device dump/);
  const multi = pciback(
    ['confspace', '--device', join(DUMPS_DIR, 'local', 'lspci-xxxx.txt')],
    'read 0 4\n',
  );
  assert.equal(multi.status, 1);
  assert.match(multi.stderr, /pass --bdf/);
  const usage = pciback(['confspace', '--no-such-flag']);
  assert.equal(usage.status, 2);
});

test('confspace --model picks a catalog device and --bdf a function of it', () => {
  const run = pciback(['confspace', '--model', 'gpu', '--bdf', '01:00.1'], 'read 0x08 4\n');
  assert.equal(run.status, 0, run.stderr);
  // HDMI audio: class 04 03 00.
  assert.match(run.stdout, /read 0x08 4 -> 0x040300[0-9a-f]{2} ok/);
});

test('demo shows every catalog function with the XSA-120 defence holding', () => {
  const run = pciback(['demo', '--json']);
  assert.equal(run.status, 0, run.stderr);
  const reports = JSON.parse(run.stdout) as {
    xsa120: { guestCommand: string; hardwareCommand: string };
  }[];
  assert.ok(reports.length >= 6);
  for (const r of reports) {
    assert.equal(r.xsa120.guestCommand, '0x0000');
    // Memory decode (bit 1) stays on in hardware.
    assert.equal(Number.parseInt(r.xsa120.hardwareCommand, 16) & 0x2, 0x2);
  }
});
