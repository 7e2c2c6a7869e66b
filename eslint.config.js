// ESLint for the whole repository: typescript-eslint's type-aware recommended rules plus the project's habits
// (no floating promises, type-only imports marked as such). Run by `npm test` through `npm run lint`; zero warnings.
import js from './tools/lint/node_modules/@eslint/js/src/index.js';
import tseslint from './tools/lint/node_modules/typescript-eslint/dist/index.js';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/**', 'deploy/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.lint.json', tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A `let` read by a closure before its one assignment (wiring in main.ts) cannot be a const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // Tests read YAML manifests, JSON answers and fixtures as untyped data and assert on their shape: the no-unsafe-*
    // family would demand a type for every manifest; the assertions are the type check there. Test support modules
    // (fakes, kits, bundle mutators) are included: they edit parsed fixtures the same way.
    // Fakes implement Promise-returning interfaces with `async` methods that need no await (an `async` fake also turns
    // a throw into a rejection, as the real implementation does), and `expect(fake.method)` passes methods unbound
    // on purpose: require-await and unbound-method are wrong there.
    files: [
      '**/*.test.ts',
      'test/**/*.ts',
      'shared/dev/testing/**/*.ts',
      '**/src/testing/**/*.ts',
      '**/test-fakes.ts',
      '**/test-kit.ts',
      '**/bench/**/*.ts',
    ],
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
