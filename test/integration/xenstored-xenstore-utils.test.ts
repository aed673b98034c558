// SPDX-License-Identifier: MIT
/**
 * Debian's libxenstore clients (package xenstore-utils) against our daemon, through
 * `XENSTORED_PATH` (DESIGN.md: dom0 tools reach `pciback xenstored`). libxenstore sends
 * req_id 0 and wraps `xenstore-ls` reads in a transaction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serveXenstoreUnixSocket } from '../../src/xenstore/transport/unix-socket.js';

const run = promisify(execFile);
const haveTools =
  spawnSync('sh', ['-c', 'command -v xenstore-write xenstore-read xenstore-ls']).status === 0;
const skip = haveTools
  ? false
  : 'xenstore-utils is not installed (apt-get install -y xenstore-utils)';

test(
  'xenstore-write, xenstore-read and xenstore-ls work against pciback xenstored',
  { skip },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenstored-utils-'));
    const xsd = await serveXenstoreUnixSocket(join(dir, 'socket'));
    const env = { ...process.env, XENSTORED_PATH: xsd.path };
    const xs = async (tool: string, ...args: string[]): Promise<string> =>
      (await run(tool, args, { env, timeout: 5000 })).stdout;
    try {
      await xs('xenstore-write', '/local/domain/0/name', 'Domain-0', '/vm/a', 'x y');
      assert.equal(await xs('xenstore-read', '/local/domain/0/name'), 'Domain-0\n');
      assert.equal(await xs('xenstore-read', '/vm/a'), 'x y\n');
      const ls = await xs('xenstore-ls', '-fp', '/');
      assert.match(ls, /^\/local\/domain\/0\/name = "Domain-0" {3}\(n0\)$/m);
      assert.match(ls, /^\/vm\/a = "x y" {3}\(n0\)$/m);
      assert.match(ls, /^\/tool\/xenstored = "" {3}\(n0\)$/m);
      await xs('xenstore-rm', '/vm');
      await assert.rejects(xs('xenstore-read', '/vm/a'));
    } finally {
      await xsd.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
