import { startDynamoDbLocal } from '../../infra/local/dynamodb';
import { freePort } from '../../infra/local/ports';

/**
 * One in-memory DynamoDB Local JVM for the whole run: starting one costs seconds, and tables
 * are created per test file with unique names, so files never see each other's data.
 */
export default async function globalSetup(): Promise<void> {
  // One started already (test/mutation/run.ts keeps one JVM across Stryker's many jest runs).
  if (process.env.TEST_DYNAMODB_ENDPOINT) return;
  const port = await freePort();
  const dynamo = await startDynamoDbLocal({ port });
  process.env.TEST_DYNAMODB_ENDPOINT = dynamo.endpoint;
  (globalThis as { __dynamo__?: typeof dynamo }).__dynamo__ = dynamo;
}
