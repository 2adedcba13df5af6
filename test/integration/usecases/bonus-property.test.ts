import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { newId } from '../../../shared/adapters/ids';
import { reconcileLedger } from '../../../shared/ops/reconcile';
import { clawbackParts, createRecharge, readRecharge } from '../../../shared/usecases/recharge';
import { createOffer } from '../../../shared/usecases/offers';
import { handleStripeEvent } from '../../../shared/usecases/stripe-webhook';
import { adult, entriesOf, events, FakePayments, freshLedger, spendCoins, webhookDeps } from './recharge-fixtures';

/**
 * Issue 13: refunds and disputes take back base and bonus coins in the money's proportion, each
 * rounded down. As a property over random sequences of refunds, disputes opened, won and lost,
 * redeliveries and spending, on a recharge with bonus coins: what the recharge leaves the user
 * (coins credited less coins taken back, owed coins counting as taken) never exceeds what was
 * credited, never goes below zero, and is exactly what the cumulative amounts say; the books balance.
 */

type Step =
  | { kind: 'refund'; bps: number }
  | { kind: 'dispute'; bps: number }
  | { kind: 'close'; dispute: number; won: boolean }
  | { kind: 'redeliver' }
  | { kind: 'spend'; coins: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('refund' as const), bps: fc.integer({ min: 1, max: 6_000 }) }),
  fc.record({ kind: fc.constant('dispute' as const), bps: fc.integer({ min: 1, max: 10_000 }) }),
  fc.record({ kind: fc.constant('close' as const), dispute: fc.nat({ max: 3 }), won: fc.boolean() }),
  fc.record({ kind: fc.constant('redeliver' as const) }),
  fc.record({ kind: fc.constant('spend' as const), coins: fc.integer({ min: 1, max: 4_000 }) }),
);

const BASE = 10_000;
const BONUS = 1_000;
const PRICE = 10_999;
const RUNS = 20;

let store: DynamoLedgerStore;
let client: DynamoDBClient;
let offerId: string;
let run = 0;

beforeAll(async () => {
  ({ store, client } = await freshLedger());
  const now = new Date();
  const offer = await createOffer(
    { store, now: () => now, newId },
    { ...adult('operator'), groups: ['operators'] },
    {
      packageId: 'coins_10000',
      kind: 'bonus',
      bonusCoins: BONUS,
      endsAt: new Date(now.getTime() + 24 * 3600_000).toISOString(),
    },
  );
  offerId = offer.offerId;
});
afterAll(() => client.destroy());

/** Coins the recharge left the user: credited (balance and debt paid) less taken back (balance and owed). */
async function leftByRecharge(userId: string): Promise<number> {
  let left = 0;
  for (const entry of await entriesOf(store, userId)) {
    if (entry.entryType === 'gift_sent') continue;
    left += Number(entry.coins ?? 0) - Number(entry.owedCoins ?? 0);
  }
  return left;
}

test('no sequence of refunds and disputes creates coins, bonus included', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
      run += 1;
      const userId = `bonus-prop-${run}`;
      const payments = new FakePayments();
      const deps = webhookDeps(store, () => new Date(), payments);
      const created = await createRecharge(
        { store, payments, now: () => new Date() },
        adult(userId),
        { packageId: 'coins_10000', offerId },
        { key: `k-${run}`, fingerprint: `f-${run}` },
      );
      const pi = created.body.payment.paymentIntentId;
      expect(created.body.bonusCoins).toBe(BONUS);
      await handleStripeEvent(deps, events.succeeded(pi));
      let refunded = 0;
      const disputes: Array<{ id: string; amount: number }> = [];
      let last: unknown = events.succeeded(pi);
      for (const [index, next] of steps.entries()) {
        if (next.kind === 'refund') {
          refunded = Math.min(PRICE, refunded + Math.max(1, Math.floor((PRICE * next.bps) / 10_000)));
          last = events.refunded(pi, PRICE, refunded);
        } else if (next.kind === 'dispute') {
          const dispute = { id: `dp_${run}_${index}`, amount: Math.max(1, Math.floor((PRICE * next.bps) / 10_000)) };
          disputes.push(dispute);
          last = events.dispute(pi, dispute.amount, dispute.id);
        } else if (next.kind === 'close') {
          const dispute = disputes[next.dispute % Math.max(1, disputes.length)];
          if (dispute === undefined) continue;
          last = events.disputeClosed(pi, dispute.amount, next.won ? 'won' : 'lost', dispute.id);
        } else if (next.kind === 'spend') {
          await spendCoins(store, userId, next.coins);
          continue;
        }
        await handleStripeEvent(deps, last);
        const left = await leftByRecharge(userId);
        const recharge = await readRecharge(store, created.body.rechargeId);
        if (recharge === undefined) throw new Error('recharge vanished');
        const parts = clawbackParts(recharge);
        expect(parts.coins).toBeLessThanOrEqual(BASE);
        expect(parts.bonusCoins).toBeLessThanOrEqual(BONUS);
        expect(left).toBe(BASE + BONUS - parts.coins - parts.bonusCoins);
        expect(left).toBeGreaterThanOrEqual(0);
        expect(left).toBeLessThanOrEqual(BASE + BONUS);
      }
    }),
    { numRuns: RUNS },
  );
  const report = await reconcileLedger(client, store.tableName);
  expect(report.discrepancies).toEqual([]);
  expect(report.totals.bonusCoinsMinted).toBe(BONUS * run);
});
