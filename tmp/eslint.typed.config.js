import base from '/work/main/eslint.config.js';
import tseslint from 'typescript-eslint';
export default [
  ...base,
  { files: ['**/*.ts'], languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: '/work/main' } }, rules: { '@typescript-eslint/no-floating-promises': 'error' } },
];
