import type { LocalDynamoDb } from '../../infra/local/dynamodb';

export default async function globalTeardown(): Promise<void> {
  const dynamo = (globalThis as { __dynamo__?: LocalDynamoDb }).__dynamo__;
  await dynamo?.stop();
}
