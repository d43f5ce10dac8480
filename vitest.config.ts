import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: the end-to-end files share Docker and RabbitMQ, one file at a time keeps timings honest.
    fileParallelism: false,
    reporters: ['default'],
  },
});
