import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/lab's cache holds installed packages with their own tests; the lab's unit tests run here.
    exclude: ['test/lab/cache/**', 'test/lab/results/**', 'node_modules/**'],
    // Integration suites start real brokers and inotify watchers; give them room on a 2-core machine.
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
