import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { keys } from '../../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { DomainError } from '../../../shared/domain/errors';
import { clawbackTarget, createRecharge, holdsBudget, readRecharge } from '../../../shared/usecases/recharge';
import { handleStripeEvent } from '../../../shared/usecases/stripe-webhook';
import { adult, entriesOf, events, FakePayments, freshLedger, spendCoins, webhookDeps } from './recharge-fixtures';

/**
 * The money rules as a property: random sequences of recharges, payment outcomes, duplicate and
 * concurrent deliveries, disputes, partial refunds and spending, for several users. After each
 * sequence: every wallet's entries sum to its balances, no balance is negative, each recharge is
 * credited exactly when a `succeeded` was delivered and then exactly once, every dispute/refund
 * claim is fully booked, and coins are conserved: minted = held + gifted + clawed back.
 */

const USERS = 2;
const PACKAGES = ['coins_100', 'coins_500', 'coins_1000'] as const;
/** Enough runs to hit the out-of-order and concurrent cases, few enough to stay fast on DynamoDB Local. */
const RUNS = 30;
const MIN_STEPS = 12;
const MAX_STEPS = 30;

type Step =
  | { kind: 'recharge'; user: number; pkg: number }
  | { kind: 'succeed'; target: number; copies: number }
  | { kind: 'fail'; target: number }
  | { kind: 'dispute'; target: number }
  | { kind: 'refund'; target: number; shareBps: number }
  | { kind: 'redeliver'; target: number }
  | { kind: 'spend'; user: number; shareBps: number }
  | { kind: 'supportUnlock'; user: number };

const index = fc.nat({ max: 1000 });
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('recharge' as const),
      user: fc.nat({ max: USERS - 1 }),
      pkg: fc.nat({ max: PACKAGES.length - 1 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('succeed' as const),
      target: index,
      copies: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fail' as const), target: index }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('dispute' as const), target: index }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      target: index,
      shareBps: fc.integer({ min: 1, max: 10_000 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('redeliver' as const), target: index }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('spend' as const),
      user: fc.nat({ max: USERS - 1 }),
      shareBps: fc.integer({ min: 1, max: 10_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('supportUnlock' as const), user: fc.nat({ max: USERS - 1 }) }),
  },
);
/** Each step may run at the same time as the next one. */
const program = fc.array(fc.record({ step, alongsideNext: fc.boolean() }), {
  minLength: MIN_STEPS,
  maxLength: MAX_STEPS,
  size: 'max',
});

let store: DynamoLedgerStore;
let client: DynamoDBClient;
beforeAll(async () => {
  ({ store, client } = await freshLedger());
});
afterAll(() => client.destroy());

interface ModelRecharge {
  userId: string;
  rechargeId: string;
  paymentIntentId: string;
  priceMinor: number;
  succeededDelivered: boolean;
  refundedMinor: number;
}

let run = 0;

it('conserves coins and keeps every wallet equal to its entries, for any sequence', async () => {
  await fc.assert(
    fc.asyncProperty(program, async (steps) => {
      run += 1;
      const users = Array.from({ length: USERS }, (_, user) => `p${run}-u${user}`);
      const payments = new FakePayments();
      const now = () => new Date();
      const recharges: ModelRecharge[] = [];
      const delivered: unknown[] = [];
      const gifted = new Map<string, number>();
      let keySequence = 0;
      const deliver = async (event: unknown) => {
        delivered.push(event);
        await handleStripeEvent(webhookDeps(store, now, payments), event);
      };
      const pick = (target: number) => recharges[target % Math.max(1, recharges.length)];

      const perform = async (current: Step): Promise<void> => {
        switch (current.kind) {
          case 'recharge': {
            keySequence += 1;
            const userId = users[current.user] as string;
            try {
              const answer = await createRecharge(
                { store, payments, now },
                adult(userId),
                { packageId: PACKAGES[current.pkg] as string },
                { key: `k${keySequence}`, fingerprint: 'f' },
              );
              recharges.push({
                userId,
                rechargeId: answer.body.rechargeId,
                paymentIntentId: answer.body.payment.paymentIntentId,
                priceMinor: answer.body.price.amount,
                succeededDelivered: false,
                refundedMinor: 0,
              });
            } catch (error) {
              if (!(error instanceof DomainError) || error.code !== 'WALLET_LOCKED') throw error;
            }
            return;
          }
          case 'succeed': {
            const target = pick(current.target);
            if (!target) return;
            target.succeededDelivered = true;
            const event = events.succeeded(target.paymentIntentId);
            await Promise.all(Array.from({ length: current.copies }, () => deliver(event)));
            return;
          }
          case 'fail': {
            const target = pick(current.target);
            if (target) await deliver(events.failed(target.paymentIntentId));
            return;
          }
          case 'dispute': {
            // A payment has at most one dispute: the same dispute id, as Stripe's retries send it.
            const target = pick(current.target);
            if (target) await deliver(events.dispute(target.paymentIntentId, target.priceMinor));
            return;
          }
          case 'refund': {
            const target = pick(current.target);
            if (!target || target.refundedMinor >= target.priceMinor) return;
            const amount = Math.max(1, Math.floor((target.priceMinor * current.shareBps) / 10_000));
            target.refundedMinor = Math.min(target.priceMinor, target.refundedMinor + amount);
            await deliver(events.refunded(target.paymentIntentId, target.priceMinor, target.refundedMinor));
            return;
          }
          case 'redeliver': {
            const event = delivered[current.target % Math.max(1, delivered.length)];
            if (event !== undefined) await deliver(event);
            return;
          }
          case 'spend': {
            // A share of what the user holds, so spending usually succeeds and disputes find coins gone.
            const userId = users[current.user] as string;
            const { coins: balance } = await store.readWallet(userId, { consistent: true });
            const coins = Math.max(1, Math.floor((balance * current.shareBps) / 10_000));
            if (await spendCoins(store, userId, coins)) gifted.set(userId, (gifted.get(userId) ?? 0) + coins);
            return;
          }
          case 'supportUnlock': {
            const userId = users[current.user] as string;
            await store.transactWrite([
              store.update('support unlock', keys.wallet(userId), {
                expression: 'SET locked = :f REMOVE lockReason',
                values: { ':f': false },
              }),
            ]);
            return;
          }
        }
      };

      for (let position = 0; position < steps.length; position += 1) {
        const current = steps[position];
        if (!current) continue;
        const next = steps[position + 1];
        if (current.alongsideNext && next) {
          await Promise.all([perform(current.step), perform(next.step)]);
          position += 1;
        } else {
          await perform(current.step);
        }
      }

      let minted = 0;
      let held = 0;
      let giftedTotal = 0;
      let clawedBack = 0;
      let claimsBooked = 0;
      let claimsExpected = 0;
      for (const userId of users) {
        const wallet = await store.readWallet(userId, { consistent: true });
        const entries = await entriesOf(store, userId);
        const sum = (field: string) => entries.reduce((total, entry) => total + Number(entry[field] ?? 0), 0);
        expect({ coins: sum('coins'), owedCoins: sum('owedCoins') }).toEqual({
          coins: wallet.coins,
          owedCoins: wallet.owedCoins,
        });
        expect(wallet.coins).toBeGreaterThanOrEqual(0);
        expect(wallet.owedCoins).toBeGreaterThanOrEqual(0);
        held += wallet.coins;
        giftedTotal += gifted.get(userId) ?? 0;
        for (const entry of entries) {
          if (entry.entryType === 'chargeback') {
            clawedBack -= Number(entry.coins);
            claimsBooked += Number(entry.owedCoins) - Number(entry.coins);
          }
          // Owed coins paid from a credit were clawed back too, later.
          if (entry.entryType === 'recharge') clawedBack -= Number(entry.owedCoins);
        }
        const creditsByRecharge = new Map<string, number>();
        for (const entry of entries) {
          if (entry.entryType !== 'recharge') continue;
          const rechargeId = String((entry.ref as { rechargeId?: string }).rechargeId);
          creditsByRecharge.set(rechargeId, (creditsByRecharge.get(rechargeId) ?? 0) + 1);
        }
        for (const model of recharges.filter((candidate) => candidate.userId === userId)) {
          const record = await readRecharge(store, model.rechargeId);
          if (!record) throw new Error(`recharge ${model.rechargeId} is missing`);
          const credited = record.status === 'succeeded' || record.status === 'disputed';
          expect(credited).toBe(model.succeededDelivered);
          expect(creditsByRecharge.get(model.rechargeId) ?? 0).toBe(credited ? 1 : 0);
          if (credited) {
            minted += record.coins;
            expect(record.clawedCoins).toBe(clawbackTarget(record));
            claimsExpected += record.clawedCoins;
            if (record.clawedCoins > 0 || record.refundedMinor > 0 || Object.keys(record.disputes).length > 0)
              expect(record.status).toBe('disputed');
          } else {
            expect(record.clawedCoins).toBe(0);
          }
        }
        // Budget: every recharge counts until it is cancelled or expires (a declined one still counts).
        const budget = await store.getItem(keys.budgetMonth(userId, new Date().toISOString().slice(0, 7)), {
          consistent: true,
        });
        const open = [];
        for (const model of recharges.filter((candidate) => candidate.userId === userId)) {
          const record = await readRecharge(store, model.rechargeId);
          if (record && holdsBudget(record)) open.push(record.priceMinor);
        }
        expect(Number(budget?.spentMinor ?? 0)).toBe(open.reduce((total, price) => total + price, 0));
      }
      expect(minted).toBe(held + giftedTotal + clawedBack);
      expect(claimsBooked).toBe(claimsExpected);
    }),
    // No shrinking: each replay costs real DynamoDB round trips; the seed and path reproduce a failure.
    { numRuns: RUNS, endOnFailure: true },
  );
  // 30 programs of real DynamoDB round trips: give them room on a loaded 2-core machine.
}, 180_000);
