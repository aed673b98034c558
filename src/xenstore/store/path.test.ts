// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalizePath,
  countedPathLength,
  domainPath,
  isValidCanonicalPath,
  parentPath,
} from './path.js';

test('canonicalizePath() prefixes relative paths with the domain home only', () => {
  assert.equal(canonicalizePath('relx', 0), '/local/domain/0/relx');
  assert.equal(canonicalizePath('data/x', 5), '/local/domain/5/data/x');
  assert.equal(canonicalizePath('/abs', 5), '/abs');
  assert.equal(canonicalizePath('@releaseDomain', 5), '@releaseDomain');
  assert.equal(canonicalizePath('', 5), '/local/domain/5/');
});

test('isValidCanonicalPath() rejects the spec §12 test 10 paths and an empty relative path', () => {
  for (const p of ['/t/a.b', '/t/a b', '/t/a/', '/local/domain/0/bad//path', '/local/domain/5/']) {
    assert.equal(isValidCanonicalPath(p), false, p);
  }
  for (const p of ['/', '/t', '/t2/a@b', '/A-z_0/9'])
    assert.equal(isValidCanonicalPath(p), true, p);
  assert.equal(isValidCanonicalPath('relative'), false);
});

test('isValidCanonicalPath() counts only the part after /local/domain/N/ (spec §12 test 12)', () => {
  const p2048 = `/t/${'x'.repeat(2045)}`;
  assert.equal(p2048.length, 2048);
  assert.equal(isValidCanonicalPath(p2048), true);
  assert.equal(isValidCanonicalPath(`${p2048}x`), false);
  const home = `/local/domain/5/${'y'.repeat(2048)}`;
  assert.equal(countedPathLength(home), 2048);
  assert.equal(isValidCanonicalPath(home), true);
  assert.equal(isValidCanonicalPath(`${home}y`), false);
  // Six digits are not a domain prefix: the whole path counts.
  assert.equal(countedPathLength('/local/domain/123456/a'), 22);
});

test('parentPath() and domainPath() follow the C conventions', () => {
  assert.equal(parentPath('/a/b'), '/a');
  assert.equal(parentPath('/a'), '/');
  assert.equal(parentPath('/'), '/');
  assert.equal(domainPath(7), '/local/domain/7');
  assert.equal(domainPath(-1), '/local/domain/4294967295');
});
