// SPDX-License-Identifier: MIT
/**
 * Every real device in the oracles survives the virtualizer: its guest view, written as
 * `lspci -xxxx` text, is decoded by the real `lspci -vvv -F` without error and shows the
 * same vendor, device and class as the original dump.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DUMPS_DIR, CLI_PATH } from '../support/paths.js';
import { parseDumpFile, formatLspciDump, type DeviceDump } from '../../src/pci/dump.js';
import { functionFromDump } from '../../src/devices/from-dump.js';
import { seizeForGuest } from '../../src/cli/device-setup.js';
import { readGuestImage } from '../../src/cli/commands/guest-view.js';

const lspciMissing = spawnSync('lspci', ['--version']).error !== undefined;
const skip = lspciMissing ? 'lspci is not installed (apt-get install pciutils)' : false;

function dumpFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...dumpFiles(path));
    else if (!/COPYING|SOURCE-COMMIT/.test(name)) out.push(path);
  }
  return out;
}

/** `lspci -F FILE -n -vmm`: slot -> "vendor device class". */
function identities(file: string): Map<string, string> {
  const run = spawnSync('lspci', ['-F', file, '-n', '-vmm', '-D'], { encoding: 'utf8' });
  assert.equal(run.status, 0, `lspci -n -vmm -F ${file} failed: ${run.stderr}`);
  const ids = new Map<string, string>();
  for (const block of run.stdout.split('\n\n')) {
    const field = (name: string): string =>
      new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(block)?.[1] ?? '';
    const slot = field('Slot');
    if (slot !== '') ids.set(slot, `${field('Vendor')} ${field('Device')} ${field('Class')}`);
  }
  return ids;
}

const CARDBUS_HEADER = 2;

/** pciback refuses header types other than 0 and 1 at probe (spec §5.5). */
function isSeizable(dump: DeviceDump): boolean {
  return ((dump.config[0x0e] ?? 0) & 0x7f) !== CARDBUS_HEADER;
}

function guestView(dump: DeviceDump): DeviceDump {
  const { host, space } = seizeForGuest(functionFromDump(dump), dump.address);
  return { ...dump, barSizes: new Map(), config: readGuestImage(space, host.configSizeBytes) };
}

const work = mkdtempSync(join(tmpdir(), 'pciback-guest-view-'));

for (const file of dumpFiles(DUMPS_DIR)) {
  const name = relative(DUMPS_DIR, file);
  test(
    `guest view of every device in ${name} decodes with lspci -vvv -F and keeps its IDs`,
    { skip },
    () => {
      const all = parseDumpFile(readFileSync(file), file);
      assert.ok(all.length > 0);
      for (const refused of all.filter((d) => !isSeizable(d))) {
        assert.throws(() => guestView(refused), /unsupported header type 2/);
      }
      const dumps = all.filter(isSeizable);
      const original = join(work, `${name.replace(/\W/g, '_')}.orig.txt`);
      const viewed = join(work, `${name.replace(/\W/g, '_')}.guest.txt`);
      // Always with domains, so addresses compare directly.
      writeFileSync(original, formatLspciDump(dumps, { withDomain: true }));
      writeFileSync(viewed, formatLspciDump(dumps.map(guestView), { withDomain: true }));

      const decode = spawnSync('lspci', ['-vvv', '-F', viewed], { encoding: 'utf8' });
      assert.equal(decode.status, 0, `lspci -vvv -F failed on the guest view: ${decode.stderr}`);
      const errors = decode.stderr.split('\n').filter((l) => l !== '' && !/libkmod/.test(l));
      assert.deepEqual(errors, [], 'lspci complained about the guest view');
      assert.equal(decode.stdout.split('\n\n').filter((b) => b.trim() !== '').length, dumps.length);

      assert.deepEqual(identities(viewed), identities(original));
    },
  );
}

test('pciback guest-view prints a view lspci decodes (CLI end to end)', { skip }, () => {
  const dump = join(DUMPS_DIR, 'curated', 'nvme-samsung-pm174x.txt');
  const run = spawnSync(process.execPath, [CLI_PATH, 'guest-view', '--device', dump], {
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  const out = join(work, 'cli-guest-view.txt');
  writeFileSync(out, run.stdout);
  const decoded = spawnSync('lspci', ['-vvv', '-F', out], { encoding: 'utf8' });
  assert.equal(decoded.status, 0);
  assert.match(decoded.stdout, /Non-Volatile memory controller: Samsung/);
  // The extended space is shown (the device has 4 KiB of config space).
  assert.match(decoded.stdout, /Capabilities: \[100/);
});
