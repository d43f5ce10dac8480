import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the tests that need no service (no RabbitMQ, no
 * Docker, no Git host): the core, and the flow stages on in-memory doubles.
 * Short timeouts: nothing here waits on real time.
 */
export default defineConfig({
  test: {
    include: ['test/core/**/*.test.ts', 'test/unit/**/*.test.ts', 'test/push/**/*.test.ts'],
    testTimeout: 10_000,
    hookTimeout: 10_000,
    reporters: ['default'],
  },
});
