import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { keys } from '../../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { entryItem } from '../../../shared/adapters/dynamo/items';
import type { LedgerEntry } from '../../../shared/domain/ledger';
import { reconcileLedger } from '../../../shared/ops/reconcile';
import { freshLedger } from './recharge-fixtures';

/**
 * The books' two checks on recharges, against ledgers written by hand the way a defect would
 * leave them: each must be flagged, and a clean ledger must not be.
 */

let store: DynamoLedgerStore;
let client: DynamoDBClient;

beforeEach(async () => {
  ({ store, client } = await freshLedger());
});
afterEach(() => client.destroy());

/** A credited recharge with its wallet and its entry, as the webhook leaves them. */
async function credited(
  userId: string,
  rechargeId: string,
  paymentIntentId: string,
  priceMinor: number,
  creditedAt: string,
  coins = 100,
): Promise<void> {
  const entry: LedgerEntry = {
    id: `txn_${rechargeId}`,
    userId,
    type: 'recharge',
    coins,
    owedCoins: 0,
    diamonds: 0,
    pendingDiamonds: 0,
    createdAt: creditedAt,
    ref: { rechargeId, paymentIntentId },
  };
  await store.transactWrite([
    store.put('recharge', {
      ...keys.recharge(rechargeId),
      rechargeId,
      userId,
      status: 'succeeded',
      coins,
      priceMinor,
      currency: 'USD',
      budgetMonth: creditedAt.slice(0, 7),
      creditedAt,
    }),
    store.update('wallet', keys.wallet(userId), { expression: 'ADD coins :coins', values: { ':coins': coins } }),
    store.put('entry', entryItem(keys.entry(userId, creditedAt, entry.id), entry)),
  ]);
}

async function limit(userId: string, at: string, limitMinor: number | null): Promise<void> {
  await store.transactWrite([
    store.put('limit', {
      ...keys.budgetLimitChange(userId, at, `blc_${at}`),
      userId,
      at,
      limitMinor,
      currency: limitMinor === null ? null : 'USD',
    }),
  ]);
}

it('passes a month whose credits stay within the limit in force at each credit', async () => {
  await limit('ann', '2026-11-01T00:00:00.000Z', 1000);
  await credited('ann', 'rc_a1', 'pi_a1', 599, '2026-11-02T00:00:00.000Z');
  // The limit was raised before the second credit: 1198 is within it.
  await limit('ann', '2026-11-03T00:00:00.000Z', 1500);
  await credited('ann', 'rc_a2', 'pi_a2', 599, '2026-11-04T00:00:00.000Z');
  const report = await reconcileLedger(client, store.tableName);
  expect(report.discrepancies).toEqual([]);
});

it('flags a recharge credited past the limit in force when it was credited', async () => {
  await limit('bob', '2026-11-01T00:00:00.000Z', 1000);
  await credited('bob', 'rc_b1', 'pi_b1', 599, '2026-11-02T00:00:00.000Z');
  await credited('bob', 'rc_b2', 'pi_b2', 599, '2026-11-03T00:00:00.000Z');
  // Raising the limit afterwards does not excuse the credit.
  await limit('bob', '2026-11-04T00:00:00.000Z', 5000);
  const report = await reconcileLedger(client, store.tableName);
  expect(report.ok).toBe(false);
  expect(report.discrepancies).toEqual([
    expect.stringContaining('recharge rc_b2 of bob credited past the monthly limit in force'),
  ]);
});

it('flags a PaymentIntent credited more than once', async () => {
  await credited('cat', 'rc_c1', 'pi_c1', 129, '2026-11-02T00:00:00.000Z');
  const again: LedgerEntry = {
    id: 'txn_again',
    userId: 'cat',
    type: 'recharge',
    coins: 100,
    owedCoins: 0,
    diamonds: 0,
    pendingDiamonds: 0,
    createdAt: '2026-11-02T00:00:01.000Z',
    ref: { rechargeId: 'rc_c1', paymentIntentId: 'pi_c1' },
  };
  await store.transactWrite([
    store.update('wallet', keys.wallet('cat'), { expression: 'ADD coins :coins', values: { ':coins': 100 } }),
    store.put('entry', entryItem(keys.entry('cat', again.createdAt, again.id), again)),
  ]);
  const report = await reconcileLedger(client, store.tableName);
  expect(report.discrepancies).toContain('PaymentIntent pi_c1 credited 2 times');
});
