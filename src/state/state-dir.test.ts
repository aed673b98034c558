// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultStateDir } from './state-dir.js';

test('defaultStateDir() prefers $PCIBACK_STATE_DIR, resolved against the working directory', () => {
  assert.equal(
    defaultStateDir({ PCIBACK_STATE_DIR: '/srv/pciback', XDG_STATE_HOME: '/x', HOME: '/h' }),
    '/srv/pciback',
  );
  assert.equal(defaultStateDir({ PCIBACK_STATE_DIR: 'rel/dir' }), resolve('rel/dir'));
});

test('defaultStateDir() uses $XDG_STATE_HOME/pciback next', () => {
  assert.equal(defaultStateDir({ XDG_STATE_HOME: '/var/state', HOME: '/h' }), '/var/state/pciback');
  assert.equal(
    defaultStateDir({ PCIBACK_STATE_DIR: '', XDG_STATE_HOME: '/var/state' }),
    '/var/state/pciback',
  );
});

test('defaultStateDir() falls back to ~/.local/state/pciback', () => {
  assert.equal(defaultStateDir({ HOME: '/home/ada' }), '/home/ada/.local/state/pciback');
  // A relative XDG_STATE_HOME is invalid per the XDG specification and ignored.
  assert.equal(
    defaultStateDir({ XDG_STATE_HOME: 'state', HOME: '/home/ada' }),
    '/home/ada/.local/state/pciback',
  );
  assert.equal(
    defaultStateDir({ XDG_STATE_HOME: '', HOME: '/home/ada' }),
    '/home/ada/.local/state/pciback',
  );
  assert.equal(defaultStateDir({}), join(homedir(), '.local', 'state', 'pciback'));
  assert.equal(defaultStateDir({ HOME: '' }), join(homedir(), '.local', 'state', 'pciback'));
});
