// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PCIBIOS, pcibiosToXenErr } from './pcibios.js';

test('pcibiosToXenErr() maps the five PCIBIOS codes of spec §4.9', () => {
  assert.equal(pcibiosToXenErr(PCIBIOS.SUCCESSFUL), 0);
  assert.equal(pcibiosToXenErr(PCIBIOS.DEVICE_NOT_FOUND), -1);
  assert.equal(pcibiosToXenErr(PCIBIOS.BAD_REGISTER_NUMBER), -2);
  assert.equal(pcibiosToXenErr(PCIBIOS.SET_FAILED), -3);
  assert.equal(pcibiosToXenErr(PCIBIOS.FUNC_NOT_SUPPORTED), -4);
});

test('pcibiosToXenErr() passes errnos and other PCIBIOS codes through unchanged', () => {
  for (const err of [-22, -12, -5, -16, -2, PCIBIOS.BAD_VENDOR_ID, PCIBIOS.BUFFER_TOO_SMALL]) {
    assert.equal(pcibiosToXenErr(err), err);
  }
});
