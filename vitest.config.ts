import { defineConfig } from 'vitest/config';

// Real kernel builds take seconds each; tests share kernel headers but never
// roots, so files run in parallel processes.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the drop-in suite is its own step (npm run test:dropin, its own config)
    exclude: ['test/dropin/**', 'node_modules/**'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
