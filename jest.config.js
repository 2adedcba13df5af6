/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022' } }],
    // jose and middy ship ESM only; jest on Node 20 loads CommonJS, so they are compiled like our code.
    '^.+/node_modules/(jose|@middy)/.+\\.js$': [
      '@swc/jest',
      { jsc: { target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose|@middy)/)'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Integration tests share one DynamoDB Local JVM started by the global setup.
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
};
