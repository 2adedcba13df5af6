import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { keys } from '../../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { entryItem } from '../../../shared/adapters/dynamo/items';
import { reconcileLedger } from '../../../shared/ops/reconcile';
import { freshLedger } from './recharge-fixtures';

/**
 * `npm run reconcile` tells bonus coins from bought ones and holds each credited bonus to its
 * offer's: ledgers written by hand the way a defect would leave them must each be flagged.
 */
let store: DynamoLedgerStore;
let client: DynamoDBClient;

beforeEach(async () => {
  ({ store, client } = await freshLedger());
});
afterEach(() => client.destroy());

const AT = '2026-04-01T10:00:00.000Z';

/** A credited recharge of 100 coins whose offer gave `offerBonus`, and `bonusEntries` bonus entries of `entryBonus`. */
async function ledger(offerBonus: number, bonusEntries: number, entryBonus: number): Promise<void> {
  const userId = 'bonus-user';
  const rechargeId = 'rc_bonus';
  const base = { userId, owedCoins: 0, diamonds: 0, pendingDiamonds: 0, createdAt: AT };
  const ref = { rechargeId, paymentIntentId: 'pi_bonus' };
  const ops = [
    store.put('recharge', {
      ...keys.recharge(rechargeId),
      rechargeId,
      userId,
      status: 'succeeded',
      coins: 100,
      bonusCoins: offerBonus,
      priceMinor: 129,
      currency: 'USD',
      budgetMonth: '2026-04',
      creditedAt: AT,
    }),
    store.put('wallet', { ...keys.wallet(userId), coins: 100 + bonusEntries * entryBonus }),
    store.put(
      'entry',
      entryItem(keys.entry(userId, AT, 'txn_r'), { ...base, id: 'txn_r', type: 'recharge', coins: 100, ref }),
    ),
  ];
  for (let index = 0; index < bonusEntries; index += 1) {
    const id = `txn_b${index}`;
    ops.push(
      store.put(
        'bonus',
        entryItem(keys.entry(userId, AT, id), { ...base, id, type: 'recharge_bonus', coins: entryBonus, ref }),
      ),
    );
  }
  await store.transactWrite(ops);
}

test('a bonus credited once, as its offer said, balances and is counted apart', async () => {
  await ledger(20, 1, 20);
  const report = await reconcileLedger(client, store.tableName);
  expect(report.discrepancies).toEqual([]);
  expect([report.totals.coinsMinted, report.totals.bonusCoinsMinted, report.totals.coinsHeld]).toEqual([100, 20, 120]);
});

test.each([
  ['never credited', 20, 0, 0, /never credited/],
  ['credited twice', 20, 2, 20, /credited 2 times/],
  ['more than the offer gave', 20, 1, 25, /25 bonus coins credited, its offer gave 20/],
  ['without an offer', 0, 1, 20, /without an offer's bonus/],
])('a bonus %s is flagged', async (_name, offerBonus, entries, amount, message) => {
  await ledger(offerBonus, entries, amount);
  const report = await reconcileLedger(client, store.tableName);
  expect(report.ok).toBe(false);
  expect(report.discrepancies.join('\n')).toMatch(message);
});
