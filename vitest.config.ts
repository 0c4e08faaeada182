import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // No test may touch the developer's real home (~/.keyway): see the file.
    setupFiles: ['test/setup/isolated-home.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real proxies and servers; two cores do not gain from more workers.
    maxWorkers: 2,
  },
});
