import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { keys } from '../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { entryItem } from '../../shared/adapters/dynamo/items';
import type { LocalStack } from '../../infra/local/stack';
import { reconcileLedger } from '../../shared/ops/reconcile';
import type { ApiClient } from './local-stack';

/** An adult US user's claims, for tokens from /dev/tokens. */
export const ADULT = { birthdate: '1990-01-01', country: 'US' };

/** A DynamoLedgerStore on a test stack's table, for seeding and for reading what the API did. */
export function ledgerFor(stack: LocalStack): { dynamo: DynamoDBClient; store: DynamoLedgerStore } {
  const dynamo = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
  });
  return { dynamo, store: new DynamoLedgerStore(dynamo, stack.tableNames.ledger) };
}

/** Coins the way a recharge credits them: the balance and its entry in one transaction. */
export async function seedCoins(store: DynamoLedgerStore, userId: string, coins: number): Promise<void> {
  const createdAt = new Date().toISOString();
  const id = `seed-${userId}-${randomUUID()}`;
  await store.transactWrite([
    store.update('credit', keys.wallet(userId), { expression: 'ADD coins :coins', values: { ':coins': coins } }),
    store.put(
      'entry',
      entryItem(keys.entry(userId, createdAt, id), {
        id,
        userId,
        type: 'recharge',
        coins,
        owedCoins: 0,
        diamonds: 0,
        pendingDiamonds: 0,
        createdAt,
        ref: { seed: 'test', paymentIntentId: `pi_seed_${id}` },
      }),
    ),
  ]);
}

/** A creator of age goes live; returns their token and the stream id. */
export async function goLive(
  api: ApiClient,
  creatorId: string,
  title = 'live',
): Promise<{ token: string; streamId: string }> {
  const token = await api.token({ sub: creatorId, ...ADULT });
  const created = await api.request('POST', '/v1/streams', { token, body: { title } });
  if (created.status !== 201) throw new Error(`going live failed: ${created.status} ${JSON.stringify(created.body)}`);
  return { token, streamId: String(created.body.streamId) };
}

/**
 * The end of a file that wrote money: the books of its table must balance (npm run reconcile's
 * check), and its client is closed either way.
 */
export async function closeBalancedBooks(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    const report = await reconcileLedger(client, tableName);
    if (!report.ok) throw new Error(`the books do not balance:\n${report.discrepancies.join('\n')}`);
  } finally {
    client.destroy();
  }
}
