// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PcibackError, isPcibackError } from './errors.js';

test('isPcibackError() matches by class and by code', () => {
  const err = new PcibackError('NOT_SEIZED', 'Cannot attach "0000:03:00.0": it is not assignable');
  assert.ok(isPcibackError(err));
  assert.ok(isPcibackError(err, 'NOT_SEIZED'));
  assert.ok(!isPcibackError(err, 'OTHER'));
  assert.ok(!isPcibackError(new Error('x')));
});
