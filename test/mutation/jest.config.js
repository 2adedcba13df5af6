// The tiers that exercise the mutated files, as one jest config for Stryker (it runs jest per
// mutant and cannot pick projects): the unit tier and the use cases on DynamoDB Local. The global
// setup reuses the JVM test/mutation/run.ts started.
const base = require('../../jest.config.js');
const [unit, , integration] = base.projects;

/** @type {import('jest').Config} */
module.exports = {
  ...unit,
  rootDir: require('node:path').resolve(__dirname, '..', '..'),
  roots: ['<rootDir>/test/unit', '<rootDir>/test/integration/usecases'],
  // The use-case tests need DynamoDB Local, so the unit tier's no-network guard does not apply here.
  setupFiles: ['<rootDir>/test/support/quiet-metrics.ts'],
  setupFilesAfterEnv: [],
  globalSetup: integration.globalSetup,
  globalTeardown: integration.globalTeardown,
  testTimeout: base.testTimeout,
};
