// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDomainList } from './xenstored.js';

test('parseDomainList() takes domids and ranges, and names the bad part', () => {
  assert.deepEqual([...parseDomainList('5')], [5]);
  assert.deepEqual(
    [...parseDomainList('1, 5-7,5')].sort((a, b) => a - b),
    [1, 5, 6, 7],
  );
  for (const [text, part] of [
    ['0', '0'],
    ['x', 'x'],
    ['5-3', '5-3'],
    ['1,,2', ''],
    ['32752', '32752'],
  ] as const) {
    assert.throws(
      () => parseDomainList(text),
      (e: Error) => e.message.includes(`at "${part}"`),
      text,
    );
  }
  assert.throws(() => parseDomainList('1-9000'), /at most 4096 ids/);
});
