// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PciAddressError } from '../pci/index.js';
import { XsError } from '../xenstore/client/index.js';
import {
  errnoOf,
  parseBackendId,
  parseBoundedCount,
  parseVdev,
  parseXenbusState,
  quoteValue,
} from './xenbus-values.js';

test('parseXenbusState() reads 0-8 and anything else as Unknown (0)', () => {
  assert.equal(parseXenbusState('4'), 4);
  assert.equal(parseXenbusState(' 8\n'), 8);
  assert.equal(parseXenbusState('0'), 0);
  for (const bad of [undefined, '', '9', '-1', '4x', '0x4', '44', 'Connected']) {
    assert.equal(parseXenbusState(bad), 0, String(bad));
  }
});

test('parseBoundedCount() accepts decimals up to the limit and names the value it refuses', () => {
  const opts = { what: 'num_devs', limit: 1024 };
  assert.equal(parseBoundedCount('0', opts), 0);
  assert.equal(parseBoundedCount(' 1024 ', opts), 1024);
  assert.throws(() => parseBoundedCount('1025', opts), {
    name: 'RangeError',
    message: 'Invalid num_devs 1025: it is above the limit of 1024',
  });
  for (const bad of ['-1', '+1', '1e3', '0x10', '', '12345678901', '1 2']) {
    assert.throws(() => parseBoundedCount(bad, opts), SyntaxError, bad);
  }
});

test('parseBackendId() accepts a domain id and refuses reserved ids and garbage', () => {
  assert.equal(parseBackendId('0'), 0);
  assert.equal(parseBackendId('32751'), 32751);
  for (const bad of ['32752', '-1', 'dom0', '', '0x0']) {
    assert.throws(() => parseBackendId(bad), SyntaxError, bad);
  }
});

test('parseVdev() reads "%x:%x:%x.%x" with pciback\'s two-digit function', () => {
  assert.equal(parseVdev('0000:00:01.00').toString(), '0000:00:01.0');
  assert.equal(parseVdev('1:2:1f.7').toString(), '0001:02:1f.7');
  // Three fields: sscanf("%x:%x:%x.%x") converts only two.
  assert.throws(() => parseVdev('00:01.0'), SyntaxError);
  assert.throws(() => parseVdev('0000:00:01.0 junk'), SyntaxError);
  assert.throws(
    () => parseVdev('0000:00:20.0'),
    (e: unknown) => {
      return e instanceof PciAddressError && e.component === 'device';
    },
  );
  assert.throws(
    () => parseVdev('0000:00:00.8'),
    (e: unknown) => {
      return e instanceof PciAddressError && e.component === 'function';
    },
  );
});

test('errnoOf() maps xenstore codes, errno properties and parse errors', () => {
  assert.equal(errnoOf(new XsError('ENOENT', 'x')), 2);
  assert.equal(errnoOf(new XsError('EACCES', 'x')), 13);
  assert.equal(errnoOf(new XsError('ETIMEDOUT', 'x')), 110);
  assert.equal(errnoOf(Object.assign(new Error('x'), { errno: -12 })), 12);
  assert.equal(errnoOf(new SyntaxError('x')), 22);
  assert.equal(errnoOf(new RangeError('x')), 22);
  assert.equal(errnoOf(new Error('x')), 5);
  assert.equal(errnoOf('thrown string'), 5);
});

test('quoteValue() cuts long foreign values', () => {
  assert.equal(quoteValue('ab'), '"ab"');
  assert.equal(quoteValue('x'.repeat(100)), `"${'x'.repeat(40)}..."`);
});
