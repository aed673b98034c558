// SPDX-License-Identifier: MIT
/** Our xenstore client against our daemon over a real Unix socket. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveXenstoreUnixSocket } from '../../src/xenstore/transport/unix-socket.js';
import { connectXenstoreUnixSocket } from '../../src/xenstore/transport/unix-socket-client.js';
import { XsClient, isXsError } from '../../src/xenstore/client/index.js';

test(
  'XsClient talks to pciback xenstored: write, read, watch, transactions with a conflict retried',
  { timeout: 20_000 },
  async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pciback-xs-')), 'socket');
    const daemon = await serveXenstoreUnixSocket(path);
    const a = new XsClient(await connectXenstoreUnixSocket(path));
    const b = new XsClient(await connectXenstoreUnixSocket(path));
    try {
      await a.write('/local/domain/5/device/pci/0/state', '1');
      assert.equal(await a.readString('/local/domain/5/device/pci/0/state'), '1');
      await assert.rejects(
        a.read('/nope'),
        (err: unknown) => isXsError(err) && err.code === 'ENOENT',
      );

      const seen: string[] = [];
      await b.watch('/local/domain/5/device', 'tok', (event) => {
        seen.push(event.path);
      });
      await a.write('/local/domain/5/device/pci/0/state', '3');
      for (let i = 0; i < 50 && !seen.includes('/local/domain/5/device/pci/0/state'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // The initial event on WATCH, then the write's.
      assert.deepEqual(seen.slice(0, 2), [
        '/local/domain/5/device',
        '/local/domain/5/device/pci/0/state',
      ]);

      // A conflicting write between the transaction's read and commit: the body runs again.
      let runs = 0;
      await a.transaction(async (tx) => {
        runs++;
        const value = new TextDecoder().decode(await tx.read('/local/domain/5/device/pci/0/state'));
        if (runs === 1) await b.write('/local/domain/5/device/pci/0/state', '4');
        await tx.write('/local/domain/5/device/pci/0/state', `${value}!`);
      });
      assert.equal(runs, 2);
      assert.equal(await b.readString('/local/domain/5/device/pci/0/state'), '4!');
    } finally {
      a.close();
      b.close();
      await daemon.close();
    }
  },
);
