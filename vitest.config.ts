import { defineConfig } from 'vitest/config';

// Real kernel builds take seconds each; tests share kernel headers but never
// roots, so files run in parallel processes.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
