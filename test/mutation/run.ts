import { spawn } from 'node:child_process';
import { startDynamoDbLocal } from '../../infra/local/dynamodb';
import { freePort } from '../../infra/local/ports';

/**
 * `npm run mutation`: StrykerJS over shared/domain and the money use cases (stryker.config.mjs),
 * with one DynamoDB Local JVM for the whole run. Stryker runs jest once per mutant; the use-case
 * tests need DynamoDB Local, and starting a JVM per mutant would cost seconds each, so it starts
 * here and the jest global setup reuses it (TEST_DYNAMODB_ENDPOINT). Arguments go to Stryker:
 * `npm run mutation -- --mutate shared/domain/money.ts` mutates one file.
 */
async function main(): Promise<number> {
  const dynamo = await startDynamoDbLocal({ port: await freePort() });
  try {
    const stryker = spawn('npx', ['stryker', 'run', ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, TEST_DYNAMODB_ENDPOINT: dynamo.endpoint },
    });
    return await new Promise<number>((resolve, reject) => {
      stryker.once('error', reject);
      stryker.once('exit', (code) => resolve(code ?? 1));
    });
  } finally {
    await dynamo.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
