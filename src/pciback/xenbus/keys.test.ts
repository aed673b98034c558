// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PciAddress } from '../../pci/index.js';
import { XsError } from '../../xenstore/client/index.js';
import {
  errnoOf,
  formatPciKeyFields,
  formatRoot,
  formatVdev,
  parseInt32,
  parsePciKey,
  parseRootKey,
  parseUint32,
  parseVdevfn,
  quoteForMessage,
  XenbusStepError,
} from './keys.js';

test('parseInt32() reads %d values whole and refuses blanks, trailing text and overflow', () => {
  assert.equal(parseInt32('4'), 4);
  assert.equal(parseInt32('-1'), -1);
  assert.equal(parseInt32('2147483647'), 0x7fffffff);
  for (const bad of ['', ' 4', '4 ', '4x', '+4', '0x4', '2147483648', '-2147483649', '1.5']) {
    assert.equal(parseInt32(bad), undefined, JSON.stringify(bad));
  }
});

test('parseUint32() reads %u values in 0..2^32-1', () => {
  assert.equal(parseUint32('0'), 0);
  assert.equal(parseUint32('4294967295'), 0xffffffff);
  for (const bad of ['-1', '4294967296', 'a', '', '12345678901']) {
    assert.equal(parseUint32(bad), undefined, bad);
  }
});

test('parsePciKey() needs all four %x:%x:%x.%x fields, without range checks', () => {
  assert.deepEqual(parsePciKey('0000:03:00.0'), { domain: 0, bus: 3, slot: 0, func: 0 });
  assert.deepEqual(parsePciKey('0000:00:1f.07'), { domain: 0, bus: 0, slot: 0x1f, func: 7 });
  assert.deepEqual(parsePciKey('1:ff:20.9'), { domain: 1, bus: 0xff, slot: 0x20, func: 9 });
  for (const bad of ['0000:03:00', '03:00.0', '0000:03:00.0 ', 'x:0:0.0', '0:0:0.123456789']) {
    assert.equal(parsePciKey(bad), undefined, bad);
  }
});

test('parseRootKey() needs %x:%x', () => {
  assert.deepEqual(parseRootKey('0000:00'), { domain: 0, bus: 0 });
  assert.deepEqual(parseRootKey('0001:80'), { domain: 1, bus: 0x80 });
  assert.equal(parseRootKey('0000'), undefined);
  assert.equal(parseRootKey('0000:00:00'), undefined);
});

test('parseVdevfn() reads libxl hex devfns; "0" is no request', () => {
  assert.equal(parseVdevfn('40'), 0x40);
  assert.equal(parseVdevfn('ff'), 0xff);
  assert.equal(parseVdevfn('0'), null);
  for (const bad of ['0x40', '100', '', '4 ', 'g']) assert.equal(parseVdevfn(bad), undefined, bad);
});

test('formatVdev() prints the function with two digits, formatRoot() DDDD:BB', () => {
  assert.equal(formatVdev(PciAddress.parse('0000:00:01.0')), '0000:00:01.00');
  assert.equal(formatVdev(PciAddress.parse('0001:0a:1f.7')), '0001:0a:1f.07');
  assert.equal(formatRoot(0, 0), '0000:00');
  assert.equal(formatRoot(1, 0x3), '0001:03');
  assert.equal(formatPciKeyFields({ domain: 0, bus: 7, slot: 0, func: 1 }), '0000:07:00.1');
});

test('errnoOf() maps xenstore errors and step errors to positive errno values', () => {
  assert.equal(errnoOf(new XsError('ENOENT', 'x')), 2);
  assert.equal(errnoOf(new XsError('EACCES', 'x')), 13);
  assert.equal(errnoOf(new XsError('ETIMEDOUT', 'x')), 110);
  assert.equal(errnoOf(new XenbusStepError(34, 'x')), 34);
  assert.equal(errnoOf(new Error('x')), 5);
});

test('quoteForMessage() bounds and flattens what a peer wrote', () => {
  assert.equal(quoteForMessage('6'), '6');
  assert.equal(quoteForMessage('a\nb\0'), 'a?b?');
  assert.equal(quoteForMessage('x'.repeat(100)), `${'x'.repeat(64)}...`);
});
