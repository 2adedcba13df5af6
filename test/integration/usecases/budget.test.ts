import { newId } from '../../../shared/adapters/ids';
import { reconcileLedger } from '../../../shared/ops/reconcile';
import { closeBalancedBooks } from '../../support/ledger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { DomainError } from '../../../shared/domain/errors';
import {
  createRecharge,
  expirePendingRecharges,
  getRecharge,
  holdsBudget,
  overBudgetRefundKey,
  readRecharge,
  RECHARGE_PENDING_LIFETIME_SECONDS,
} from '../../../shared/usecases/recharge';
import { handleStripeEvent } from '../../../shared/usecases/stripe-webhook';
import { getWallet } from '../../../shared/usecases/wallet';
import { setBudget } from '../../../shared/usecases/wallet-settings';
import { adult, entriesOf, events, FakePayments, freshLedger, webhookDeps } from './recharge-fixtures';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { keys } from '../../../shared/adapters/dynamo/keys';
import { utcMonth } from '../../../shared/usecases/wallet';

/**
 * The monthly budget against every order of payment events: no recharge is created, and none is
 * credited, past the limit in force. US prices: coins_100 129, coins_500 599, coins_1000 1149.
 */

let store: DynamoLedgerStore;
let client: DynamoDBClient;
let tableName: string;

beforeAll(async () => {
  ({ store, client } = await freshLedger());
  tableName = store.tableName;
});
afterAll(() => closeBalancedBooks(client, tableName));

let sequence = 0;
const nextKey = () => ({ key: `b-${(sequence += 1)}`, fingerprint: `fp-${sequence}` });
const userNamed = (name: string) => `${name}-${(sequence += 1)}`;

async function open(payments: FakePayments, userId: string, packageId: string, now = new Date()) {
  const answer = await createRecharge({ store, payments, now: () => now }, adult(userId), { packageId }, nextKey());
  return {
    rechargeId: answer.body.rechargeId,
    paymentIntentId: answer.body.payment.paymentIntentId,
    priceMinor: answer.body.price.amount,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'none';
  } catch (error) {
    return error instanceof DomainError ? error.code : String(error);
  }
}

async function spent(userId: string): Promise<number> {
  return (await getWallet({ store, now: () => new Date() }, adult(userId), { consistent: true })).budget.spentThisMonth
    .amount;
}

describe('the monthly budget, whatever the order of payment events', () => {
  it('counts a declined recharge until it is cancelled, so decline-then-retry cannot pass the limit', async () => {
    const payments = new FakePayments();
    const userId = userNamed('decliner');
    const hook = webhookDeps(store, () => new Date(), payments);
    await setBudget({ store, now: () => new Date(), newId }, adult(userId), { amount: 1000, currency: 'USD' });
    const first = await open(payments, userId, 'coins_500');
    expect(await handleStripeEvent(hook, events.failed(first.paymentIntentId))).toBe('declined');
    // The reported attack: a second 5.99 after the decline, then the first one retried and paid.
    expect(await codeOf(open(payments, userId, 'coins_500'))).toBe('BUDGET_EXCEEDED');
    expect(await handleStripeEvent(hook, events.succeeded(first.paymentIntentId))).toBe('credited');
    const wallet = await getWallet({ store, now: () => new Date() }, adult(userId), { consistent: true });
    expect(wallet.coins).toBe(500);
    expect(wallet.budget.spentThisMonth.amount).toBe(599);
  });

  it('refunds, once and crediting nothing, a payment that succeeds after the limit was lowered', async () => {
    const payments = new FakePayments();
    const userId = userNamed('lowered');
    const hook = webhookDeps(store, () => new Date(), payments);
    await setBudget({ store, now: () => new Date(), newId }, adult(userId), { amount: 1000, currency: 'USD' });
    const recharge = await open(payments, userId, 'coins_500');
    await setBudget({ store, now: () => new Date(), newId }, adult(userId), { amount: 500, currency: 'USD' });

    const succeeded = events.succeeded(recharge.paymentIntentId);
    expect(await handleStripeEvent(hook, succeeded)).toBe('refunded_over_budget');
    expect(await handleStripeEvent(hook, succeeded)).toBe('duplicate');
    expect(payments.refundCalls.map((call) => call.idempotencyKey)).toEqual([
      overBudgetRefundKey(recharge.rechargeId),
      overBudgetRefundKey(recharge.rechargeId),
    ]);
    expect(payments.refundedKeys.size).toBe(1);

    // The refund's own charge.refunded takes nothing back and locks nothing.
    expect(await handleStripeEvent(hook, events.refunded(recharge.paymentIntentId, 599, 599))).toBe('recorded');
    const wallet = await getWallet({ store, now: () => new Date() }, adult(userId), { consistent: true });
    expect(wallet).toMatchObject({ coins: 0, owedCoins: 0, locked: false });
    expect(wallet.budget.spentThisMonth.amount).toBe(0);
    expect((await getRecharge({ store }, adult(userId), recharge.rechargeId)).status).toBe('failed');
    const types = (await entriesOf(store, userId)).map((entry) => entry.entryType);
    expect(types).toEqual(['over_budget_refund']);
    // Refunded in full: the expiry sweep has nothing left to retry for it.
    const record = await readRecharge(store, recharge.rechargeId);
    expect(record?.overBudgetRefund).toBeDefined();
    expect(
      (await store.getItem({ pk: `RECHARGE#${recharge.rechargeId}`, sk: 'RECHARGE' }, { consistent: true }))?.statusPk,
    ).toBeUndefined();
  });

  it('credits a cancelled recharge that is paid after all only if the month can hold it again', async () => {
    const payments = new FakePayments();
    const userId = userNamed('revived');
    const hook = webhookDeps(store, () => new Date(), payments);
    await setBudget({ store, now: () => new Date(), newId }, adult(userId), { amount: 1200, currency: 'USD' });
    const first = await open(payments, userId, 'coins_500');
    expect(await handleStripeEvent(hook, events.canceled(first.paymentIntentId))).toBe('canceled');
    expect(await handleStripeEvent(hook, events.canceled(first.paymentIntentId))).toBe('ignored');
    expect(await spent(userId)).toBe(0);
    const second = await open(payments, userId, 'coins_500');
    // 599 + 599 <= 1200: the first fits again.
    expect(await handleStripeEvent(hook, events.succeeded(first.paymentIntentId))).toBe('credited');
    expect(await spent(userId)).toBe(1198);
    const third = await open(payments, userId, 'coins_100').catch(() => undefined);
    expect(third).toBeUndefined();
    expect(await handleStripeEvent(hook, events.canceled(second.paymentIntentId))).toBe('canceled');
    expect(await spent(userId)).toBe(599);
    expect(payments.refundCalls).toHaveLength(0);
  });

  it('refunds a cancelled recharge paid after all when the month is full by then', async () => {
    const payments = new FakePayments();
    const userId = userNamed('full-month');
    const hook = webhookDeps(store, () => new Date(), payments);
    await setBudget({ store, now: () => new Date(), newId }, adult(userId), { amount: 700, currency: 'USD' });
    const cancelled = await open(payments, userId, 'coins_500');
    expect(await handleStripeEvent(hook, events.canceled(cancelled.paymentIntentId))).toBe('canceled');
    const paid = await open(payments, userId, 'coins_500');
    expect(await handleStripeEvent(hook, events.succeeded(paid.paymentIntentId))).toBe('credited');
    // 599 + 599 > 700: the cancelled one cannot come back into the month, so it is refunded.
    expect(await handleStripeEvent(hook, events.succeeded(cancelled.paymentIntentId))).toBe('refunded_over_budget');
    expect(payments.refundCalls.map((call) => call.idempotencyKey)).toEqual([
      overBudgetRefundKey(cancelled.rechargeId),
    ]);
    const wallet = await getWallet({ store, now: () => new Date() }, adult(userId), { consistent: true });
    expect(wallet.coins).toBe(500);
    expect(wallet.budget.spentThisMonth.amount).toBe(599);
  });

  it('finishes an over-budget refund that Stripe did not take, on redelivery or from the expiry sweep', async () => {
    const payments = new FakePayments();
    const userId = userNamed('unlucky');
    const decidedAt = new Date(Date.now() - (RECHARGE_PENDING_LIFETIME_SECONDS + 60) * 1000);
    const hook = webhookDeps(store, () => decidedAt, payments);
    await setBudget({ store, now: () => decidedAt, newId }, adult(userId), { amount: 700, currency: 'USD' });
    const recharge = await open(payments, userId, 'coins_500', decidedAt);
    await setBudget({ store, now: () => decidedAt, newId }, adult(userId), { amount: 100, currency: 'USD' });
    payments.failNextRefund = true;
    await expect(handleStripeEvent(hook, events.succeeded(recharge.paymentIntentId))).rejects.toThrow(
      'Stripe did not refund',
    );
    expect(payments.refundedKeys.size).toBe(0);
    // The decision committed before Stripe was asked: nothing is credited, and the sweep finds it.
    expect((await getWallet({ store, now: () => new Date() }, adult(userId), { consistent: true })).coins).toBe(0);
    const swept = await expirePendingRecharges({ store, payments, now: () => new Date() });
    expect(swept.refunded).toBeGreaterThanOrEqual(1);
    expect(payments.refundedKeys.has(overBudgetRefundKey(recharge.rechargeId))).toBe(true);
  });

  it('budget changes land in the order of their stamps: the wallet holds the last limit of its history', async () => {
    // Two changes raced: the later one (by its stamp) committed first. Before, the earlier one then
    // overwrote it: the wallet held 2450 while the history (by time) said 329, and the books
    // judged every credit against the wrong limit. Now it is stamped just after the later one.
    const userId = userNamed('racing-limits');
    const at = Date.now();
    await setBudget({ store, now: () => new Date(at + 5), newId }, adult(userId), { amount: 329, currency: 'USD' });
    await setBudget({ store, now: () => new Date(at), newId }, adult(userId), { amount: 2450, currency: 'USD' });
    // The same instant twice (a frozen clock) is ordered too.
    await setBudget({ store, now: () => new Date(at), newId }, adult(userId), null);
    await setBudget({ store, now: () => new Date(at), newId }, adult(userId), { amount: 700, currency: 'USD' });
    const wallet = await getWallet({ store, now: () => new Date() }, adult(userId), { consistent: true });
    expect(wallet.budget.monthlyLimit).toEqual({ amount: 700, currency: 'USD' });
    const history = await store.query({
      keyCondition: 'pk = :pk AND begins_with(sk, :prefix)',
      values: { ':pk': keys.budgetLimitChange(userId, '', '').pk, ':prefix': 'BUDGETLIMIT#' },
      consistent: true,
    });
    expect(history.items.map((item) => item.limitMinor)).toEqual([329, 2450, null, 700]);
    const stamps = history.items.map((item) => String(item.at));
    expect(new Set(stamps).size).toBe(4);
    expect(stamps[0]).toBe(new Date(at + 5).toISOString());
  });

  it('refuses a recharge at one cent past the limit and takes one at exactly the limit', async () => {
    const payments = new FakePayments();
    const userId = userNamed('exact');
    await setBudget({ store, now: () => new Date(), newId }, adult(userId), { amount: 599 + 128, currency: 'USD' });
    await open(payments, userId, 'coins_500');
    expect(await codeOf(open(payments, userId, 'coins_100'))).toBe('BUDGET_EXCEEDED');
    await setBudget({ store, now: () => new Date(), newId }, adult(userId), { amount: 599 + 129, currency: 'USD' });
    await open(payments, userId, 'coins_100');
    expect(await spent(userId)).toBe(728);
  });
});

type BudgetStep =
  | { kind: 'open'; pkg: number }
  | { kind: 'succeed' | 'fail' | 'cancel'; target: number; copies: number }
  | { kind: 'limit'; amount: number | null }
  | { kind: 'expire' };

const PACKAGES = ['coins_100', 'coins_500', 'coins_1000'];
const budgetStep: fc.Arbitrary<BudgetStep> = fc.oneof(
  fc.record({ kind: fc.constant('open' as const), pkg: fc.nat(PACKAGES.length - 1) }),
  fc.record({
    kind: fc.constantFrom('succeed' as const, 'fail' as const, 'cancel' as const),
    target: fc.nat(50),
    copies: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    kind: fc.constant('limit' as const),
    amount: fc.option(fc.integer({ min: 0, max: 4000 }), { nil: null }),
  }),
  fc.record({ kind: fc.constant('expire' as const) }),
);

it('never credits past the limit in force, for random sequences of payment events (with reconcile as the judge)', async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(budgetStep, fc.boolean()), { minLength: 4, maxLength: 16 }), async (program) => {
      run += 1;
      const userId = userNamed(`prop${run}`);
      const payments = new FakePayments();
      // Recharges are made "25 hours ago" so the expiry step may cancel any that is still open.
      const past = new Date(Date.now() - (RECHARGE_PENDING_LIFETIME_SECONDS + 3600) * 1000);
      const hook = webhookDeps(store, () => new Date(), payments);
      await setBudget({ store, now: () => new Date(Date.now() - 1000), newId }, adult(userId), {
        amount: 1500,
        currency: 'USD',
      });
      const opened: Array<{ rechargeId: string; paymentIntentId: string }> = [];
      const perform = async (step: BudgetStep): Promise<void> => {
        if (step.kind === 'open') {
          const made = await open(payments, userId, PACKAGES[step.pkg] as string, past).catch((error: unknown) => {
            if (error instanceof DomainError && error.code === 'BUDGET_EXCEEDED') return undefined;
            throw error;
          });
          if (made) opened.push(made);
          return;
        }
        if (step.kind === 'limit') {
          await setBudget(
            { store, now: () => new Date(), newId },
            adult(userId),
            step.amount === null ? null : { amount: step.amount, currency: 'USD' },
          );
          return;
        }
        if (step.kind === 'expire') {
          await expirePendingRecharges({ store, payments, now: () => new Date() });
          return;
        }
        const target = opened[step.target % Math.max(1, opened.length)];
        if (!target) return;
        const event =
          step.kind === 'succeed'
            ? events.succeeded(target.paymentIntentId)
            : step.kind === 'fail'
              ? events.failed(target.paymentIntentId)
              : events.canceled(target.paymentIntentId);
        // A cancelled PaymentIntent cannot be paid at Stripe; the fake says so to the sweep, and events keep their order there.
        if (step.kind === 'cancel') payments.cancelOutcomes.set(target.paymentIntentId, 'canceled');
        if (step.kind === 'succeed') payments.cancelOutcomes.set(target.paymentIntentId, 'succeeded');
        await Promise.all(Array.from({ length: step.copies }, () => handleStripeEvent(hook, event)));
      };
      for (let index = 0; index < program.length; index += 1) {
        const [step, alongsideNext] = program[index] as [BudgetStep, boolean];
        const next = program[index + 1];
        if (alongsideNext && next) {
          await Promise.all([perform(step), perform(next[0])]);
          index += 1;
        } else {
          await perform(step);
        }
      }
      // The month holds exactly the recharges that still count, and each PaymentIntent credited at most once.
      let held = 0;
      for (const { rechargeId } of opened) {
        const record = await readRecharge(store, rechargeId);
        if (record && holdsBudget(record)) held += record.priceMinor;
      }
      const month = await store.getItem(keys.budgetMonth(userId, utcMonth(past)), { consistent: true });
      expect(Number(month?.spentMinor ?? 0)).toBe(held);
      const credits = (await entriesOf(store, userId)).filter((entry) => entry.entryType === 'recharge');
      expect(new Set(credits.map((entry) => (entry.ref as { paymentIntentId: string }).paymentIntentId)).size).toBe(
        credits.length,
      );
      const report = await reconcileLedger(client, tableName);
      expect(report.discrepancies).toEqual([]);
    }),
    { numRuns: 25, endOnFailure: true },
  );
}, 240_000);
