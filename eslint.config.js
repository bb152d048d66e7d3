// Lint rules: typescript-eslint's recommended set, plus the import direction
// of STYLE.md (protocols/ imports nothing of ours but itself).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'bin/'] },
  ...tseslint.configs.recommended,
  {
    files: ['src/protocols/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['rxjs', 'rxjs/*'], message: 'protocols/ is pure: no rxjs' },
            { group: ['node:net', 'node:dgram', 'node:fs'], message: 'protocols/ does no I/O' },
            {
              group: ['../operators/*', '../streams/*', '../cli/*', '../api/*', '../util/*'],
              message: 'protocols/ imports nothing of ours',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/streams/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../operators/*', '../protocols/*'],
              message: 'streams/ imports neither protocols/ nor operators/',
            },
          ],
        },
      ],
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
);
