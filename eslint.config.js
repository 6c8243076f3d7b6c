// Lint with import-boundary rules: folders are process boundaries (architecture.md, convention 1).
import tseslint from 'typescript-eslint';
import prettierConfig from 'eslint-config-prettier';

const boundary = (patterns, message) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }],
});

export default tseslint.config(
  { ignores: ['node_modules/**', '.dbg/**', 'dist/**', 'out/**', 'renderer/dist/**', 'test-output/**', '**/*.wasm'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  // Formatting is prettier's (npm run lint runs prettier --check); the model code also keeps every line,
  // comments and strings included, within prettier's width.
  prettierConfig,
  {
    files: ['core/model/**/*.ts'],
    rules: { 'max-len': ['error', { code: 130 }] },
  },
  {
    files: ['core/**/*.ts'],
    rules: boundary(
      ['**/electron/**', '**/renderer/**', 'electron', 'react', 'react-dom'],
      'core/ is headless: it never imports electron/ or renderer/.',
    ),
  },
  {
    files: ['core/protocol/**/*.ts'],
    rules: boundary(
      ['../*', '../../*', '@tensorflow/*', 'node:*'],
      'core/protocol/ holds shared types only and imports nothing.',
    ),
  },
  {
    files: [
      'core/model/**/*.ts',
      'core/engine/**/*.ts',
      'core/data/**/*.ts',
      'core/train/**/*.ts',
      'core/eval/**/*.ts',
      'core/registry/**/*.ts',
    ],
    rules: boundary(
      ['**/host/**', '**/electron/**', '**/renderer/**', 'electron', 'react'],
      'Engine layers never import the host (CLI/service) or the UI.',
    ),
  },
  {
    // The doors translate; the use cases are core/app's. A door that reaches into training or
    // evaluation directly could decide something the other door decides differently.
    files: ['core/host/**/*.ts'],
    rules: boundary(
      ['**/train/**', '**/eval/**', '**/electron/**', '**/renderer/**', 'electron', 'react', 'react-dom'],
      'core/host (the CLI and the service) calls core/app for training and evaluation, never core/train or core/eval directly.',
    ),
  },
  {
    files: ['renderer/**/*.ts', 'renderer/**/*.tsx'],
    // The build config runs in Node, not in the page.
    ignores: ['renderer/vite.config.ts'],
    rules: boundary(
      [
        '**/core/engine/**',
        '**/core/model/**',
        '**/core/data/**',
        '**/core/train/**',
        '**/core/registry/**',
        '**/electron/**',
        '@tensorflow/*',
        'node:*',
        'electron',
      ],
      'The renderer talks to the core only through renderer/bridge and core/protocol types.',
    ),
  },
  {
    files: ['electron/**/*.ts'],
    rules: boundary(['**/renderer/**'], 'The Electron main process does not import the renderer.'),
  },
);
