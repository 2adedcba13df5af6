// StrykerJS (`npm run mutation`, never in npm test: it is slow). Mutates the domain rules and the
// money use cases, and runs against the tiers that exercise them: the unit tier and the use cases
// on DynamoDB Local (test/integration/usecases). test/mutation/run.ts starts the one JVM.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: { projectType: 'custom', configFile: 'test/mutation/jest.config.js', enableFindRelatedTests: true },
  coverageAnalysis: 'perTest',
  mutate: [
    'shared/domain/**/*.ts',
    'shared/usecases/recharge.ts',
    'shared/usecases/stripe-webhook.ts',
    'shared/usecases/gifts.ts',
    'shared/usecases/payouts/**/*.ts',
  ],
  ignorePatterns: ['cdk.out', '.data', 'coverage', 'reports', 'docs', '.ci/node22', '.bench'],
  // Two cores shared with other work: one jest at a time.
  concurrency: 1,
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
};
