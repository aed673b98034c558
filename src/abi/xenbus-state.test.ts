// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ORACLES_DIR } from '../../test/support/paths.js';
import { XENBUS_STATE, isXenbusState, xenbusStateName } from './xenbus-state.js';

const oracle = JSON.parse(readFileSync(join(ORACLES_DIR, 'xen-abi.json'), 'utf8')) as Record<
  string,
  Record<string, unknown> | undefined
>;

test('XENBUS_STATE has the names and values of enum xenbus_state in the oracle', () => {
  const sec = oracle['enum xenbus_state'];
  assert.ok(sec);
  assert.deepEqual(
    Object.keys(sec),
    Object.keys(XENBUS_STATE).map((k) => `XenbusState${k}`),
  );
  for (const [name, value] of Object.entries(XENBUS_STATE)) {
    assert.equal(value, sec[`XenbusState${name}`], name);
  }
});

test('isXenbusState() accepts 0 to 8 and nothing else', () => {
  for (const v of Object.values(XENBUS_STATE)) assert.ok(isXenbusState(v));
  for (const v of [-1, 9, 4.5, '4', undefined]) assert.ok(!isXenbusState(v), String(v));
});

test('xenbusStateName() names every state and returns undefined for others', () => {
  for (const [name, value] of Object.entries(XENBUS_STATE)) {
    assert.equal(xenbusStateName(value), name);
  }
  assert.equal(xenbusStateName(9), undefined);
  assert.equal(xenbusStateName(-1), undefined);
});
