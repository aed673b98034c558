// SPDX-License-Identifier: MIT
// Lint gate. The core folders never touch Node: they get platform services through
// constructor parameters (DESIGN.md §1, STYLE.md "Layout shows the architecture").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const coreFolders = [
  'src/abi/**',
  'src/pci/**',
  'src/devices/**',
  'src/pciback/**',
  'src/pcifront/**',
  'src/toolstack/**',
  'src/xenstore/protocol/**',
  'src/xenstore/store/**',
  'src/xenstore/server/**',
  'src/xenstore/client/**',
  'src/xenstore/ring/**',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
    },
  },
  {
    files: coreFolders
      .map((f) => `${f}/*.ts`)
      .concat(coreFolders.map((f) => f.replace('/**', '/*.ts'))),
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['node:*'], message: 'Core modules never import node:*.' }] },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: 'Use Uint8Array/DataView in the core.' },
        { name: 'process', message: 'The core receives its environment through parameters.' },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: globals.node,
    },
  },
);
