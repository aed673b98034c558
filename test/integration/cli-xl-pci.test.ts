// SPDX-License-Identifier: MIT
/**
 * `pciback attach|detach|list` (xl's grammar and output) against a xenstore daemon on a
 * Unix socket. No backend serves the daemon here, so a cold attach lands in xenstore and
 * fails to confirm the export, and a detach, which waits for the backend as libxl does,
 * times out with a clear error;
 * the full hot-plug flow runs against the simulator in sim-hotplug tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serveXenstoreUnixSocket } from '../../src/xenstore/transport/unix-socket.js';
import { XsClient } from '../../src/xenstore/client/index.js';
import { connectXenstoreUnixSocket } from '../../src/xenstore/transport/unix-socket-client.js';
import { CLI_PATH } from '../support/paths.js';

const execFileAsync = promisify(execFile);

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(socket: string, ...args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      [CLI_PATH, ...args, '--socket', socket],
      { timeout: 20_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test('attach, list and detach follow xl against a daemon with no backend', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-xl-pci-'));
  const xsd = await serveXenstoreUnixSocket(join(dir, 'socket'));
  const client = new XsClient(await connectXenstoreUnixSocket(xsd.path));
  try {
    // The frontend directory is owned by the guest: C xenstored wants it introduced.
    await client.introduce(7, { gfn: 0, port: 1 });
    await client.write('/local/domain/7/name', 'web');

    // Nobody serves the backend: attach says so (beyond xl, which returns blind), and the
    // device stays written, as xl leaves it.
    const attached = await cli(
      xsd.path,
      'attach',
      'web',
      '03:00.0@08,permissive=1',
      '--timeout-ms',
      '300',
    );
    assert.deepEqual(
      [attached.code, attached.stderr],
      [
        1,
        'pciback: Cannot confirm PCI device "0000:03:00.0" on domain 7: no PCI backend took "/local/domain/0/backend/pci/7/0" within 300 ms (its state is still 1): is pciback running for this xenstore? The device stays written there\n',
      ],
    );
    const be = '/local/domain/0/backend/pci/7/0';
    assert.equal(await client.readString(`${be}/dev-0`), '0000:03:00.0');
    assert.equal(await client.readString(`${be}/vdevfn-0`), '40');
    assert.equal(await client.readString(`${be}/domain`), 'web');

    // By name and by domid: xl's header and `%02x.%01x %04x:%02x:%02x.%01x` rows.
    for (const who of ['web', '7']) {
      const listed = await cli(xsd.path, 'list', who);
      assert.deepEqual([listed.code, listed.stdout], [0, 'Vdev Device\n08.0 0000:03:00.0\n']);
    }

    // libxl waits for the backend to be Connected before a detach; nobody answers here.
    const detached = await cli(xsd.path, 'detach', 'web', '03:00.0', '--timeout-ms', '300');
    assert.equal(detached.code, 1);
    assert.match(
      detached.stderr,
      /^pciback: Cannot use PCI backend ".*\/pci\/7\/0": its state stayed "1", not 4, for 300 ms\n$/,
    );
  } finally {
    client.close();
    await xsd.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('attach, list and detach refuse unknown domains and bad arguments with exit 1 or 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-xl-pci-'));
  const xsd = await serveXenstoreUnixSocket(join(dir, 'socket'));
  try {
    const unknown = await cli(xsd.path, 'list', 'nobody');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Cannot find domain "nobody": no domain has that name/);

    const missing = await cli(xsd.path, 'list', '42');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Cannot find domain 42: it does not exist/);

    const badSpec = await cli(xsd.path, 'attach', '0', '03:00.0@zz');
    assert.equal(badSpec.code, 1);
    assert.match(badSpec.stderr, /^pciback: .*vslot|^pciback: .*"zz"/m);

    const usage = await cli(xsd.path, 'detach', 'web');
    assert.equal(usage.code, 2);

    const noDaemon = await cli(join(dir, 'absent.sock'), 'list', 'web');
    assert.equal(noDaemon.code, 1);
    assert.match(noDaemon.stderr, /Cannot reach xenstored at ".*absent\.sock"/);
  } finally {
    await xsd.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
