import { defineConfig } from 'vitest/config';

// `npm run test:dropin`: real *-dkms packages through dpkg in throwaway copies
// of the machine, with Debian's dkms and with kbundle as dkms. Each test
// builds for every installed kernel twice, so files run one at a time.
export default defineConfig({
  test: {
    include: ['test/dropin/**/*.test.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
