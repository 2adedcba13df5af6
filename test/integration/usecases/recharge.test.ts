import { newId } from '../../../shared/adapters/ids';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { keys } from '../../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { paymentIdempotencyKey } from '../../../shared/adapters/payments';
import {
  BudgetExceededError,
  DomainError,
  IdempotencyKeyReusedError,
  NotFoundError,
  ValidationError,
  WalletLockedError,
} from '../../../shared/domain/errors';
import type { Caller } from '../../../shared/domain/identity';
import {
  clawbackTarget,
  createRecharge,
  expirePendingRecharges,
  getRecharge,
  rechargeIdFor,
} from '../../../shared/usecases/recharge';
import { handleStripeEvent } from '../../../shared/usecases/stripe-webhook';
import { reportTransaction, setBudget, setLock } from '../../../shared/usecases/wallet-settings';
import { getWallet } from '../../../shared/usecases/wallet';
import { adult, entriesOf, events, FakePayments, freshLedger, webhookDeps } from './recharge-fixtures';

let store: DynamoLedgerStore;
let client: DynamoDBClient;
const NOW = new Date('2026-03-10T12:00:00.000Z');

beforeAll(async () => {
  ({ store, client } = await freshLedger());
});
afterAll(() => client.destroy());

function deps(payments: FakePayments, now: Date = NOW) {
  return { store, payments, now: () => now };
}
const idem = (key: string, fingerprint = `fp-${key}`) => ({ key, fingerprint });

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('POST /v1/recharges (use case)', () => {
  it('opens a PaymentIntent with a derived key and metadata, and records a pending recharge', async () => {
    const payments = new FakePayments();
    const caller = adult('buyer-1');
    const answer = await createRecharge(deps(payments), caller, { packageId: 'coins_500' }, idem('k1'));
    expect(answer.status).toBe(201);
    expect(answer.replayed).toBe(false);
    const rechargeId = rechargeIdFor('buyer-1', 'k1');
    expect(answer.body).toEqual({
      rechargeId,
      status: 'pending',
      coins: 500,
      price: { amount: 599, currency: 'USD' },
      payment: {
        provider: 'stripe',
        paymentIntentId: expect.stringMatching(/^pi_/),
        clientSecret: expect.stringContaining('_secret_'),
      },
    });
    expect(payments.createCalls).toEqual([
      {
        userId: 'buyer-1',
        clientKey: 'k1',
        rechargeId,
        packageId: 'coins_500',
        coins: 500,
        price: { amount: 599, currency: 'USD' },
      },
    ]);
    expect(paymentIdempotencyKey('buyer-1', 'k'.repeat(255)).length).toBeLessThanOrEqual(255);
    expect(await getRecharge({ store }, caller, rechargeId)).toEqual({
      rechargeId,
      status: 'pending',
      coins: 500,
      price: { amount: 599, currency: 'USD' },
      createdAt: NOW.toISOString(),
    });
    const mapping = await store.getItem(keys.paymentIntent(answer.body.payment.paymentIntentId));
    expect(mapping).toMatchObject({ rechargeId, userId: 'buyer-1' });
    // Pending recharges count toward the month's budget.
    expect((await getWallet({ store, now: () => NOW }, caller)).budget.spentThisMonth).toEqual({
      amount: 599,
      currency: 'USD',
    });
    // Someone else's recharge does not exist for them.
    await expect(getRecharge({ store }, adult('other'), rechargeId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(getRecharge({ store }, caller, 'rc_nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('replays the same key, refuses the same key with another body, and does the work once under a race', async () => {
    const payments = new FakePayments();
    const caller = adult('buyer-2');
    const first = await createRecharge(deps(payments), caller, { packageId: 'coins_100' }, idem('same'));
    const replay = await createRecharge(deps(payments), caller, { packageId: 'coins_100' }, idem('same'));
    expect(replay).toEqual({ ...first, replayed: true });
    expect(payments.createCalls).toHaveLength(1);
    await expect(
      createRecharge(deps(payments), caller, { packageId: 'coins_500' }, idem('same', 'other')),
    ).rejects.toBeInstanceOf(IdempotencyKeyReusedError);

    const racing = await Promise.all(
      Array.from({ length: 5 }, () =>
        createRecharge(deps(payments), caller, { packageId: 'coins_1000' }, idem('race')),
      ),
    );
    const bodies = new Set(racing.map((answer) => JSON.stringify([answer.status, answer.body])));
    expect(bodies.size).toBe(1);
    expect(racing.filter((answer) => !answer.replayed)).toHaveLength(1);
    // 129 + 1149: the raced recharge counted once.
    expect((await getWallet({ store, now: () => NOW }, caller)).budget.spentThisMonth.amount).toBe(129 + 1149);
  });

  it('refuses in the contract order, each before any PaymentIntent is created', async () => {
    const payments = new FakePayments();
    const create = (caller: Caller, input: { packageId: string; country?: string }, key: string) =>
      codeOf(createRecharge(deps(payments), caller, input, idem(key)));

    // Validation first: an unknown package, or a body country that is not the token's, even when everything else would refuse too.
    await setLock({ store, now: () => NOW }, adult('locked-kid', 'JP'), true);
    const lockedKidJapan: Caller = {
      userId: 'locked-kid',
      birthdate: '2015-01-01',
      country: 'JP',
      parentalConsent: false,
    };
    expect(await create(lockedKidJapan, { packageId: 'coins_7' }, 'v1')).toBe('VALIDATION_FAILED');
    expect(await create(adult('someone'), { packageId: 'coins_100', country: 'GB' }, 'v2')).toBe('VALIDATION_FAILED');
    // Lock before age, age before region.
    expect(await create(lockedKidJapan, { packageId: 'coins_100' }, 'l1')).toBe('WALLET_LOCKED');
    const kidJapan: Caller = { userId: 'kid-jp', birthdate: '2015-01-01', country: 'JP', parentalConsent: true };
    expect(await create(kidJapan, { packageId: 'coins_100' }, 'a1')).toBe('AGE_RESTRICTED');
    const teenNoConsent: Caller = { userId: 'teen', birthdate: '2010-06-01', country: 'US', parentalConsent: false };
    expect(await create(teenNoConsent, { packageId: 'coins_100' }, 'a2')).toBe('AGE_RESTRICTED');
    const eighteenInKorea: Caller = { userId: 'kr-18', birthdate: '2007-06-01', country: 'KR', parentalConsent: false };
    expect(await create(eighteenInKorea, { packageId: 'coins_100' }, 'a3')).toBe('AGE_RESTRICTED');
    expect(await create(adult('jp-adult', 'JP'), { packageId: 'coins_100' }, 'r1')).toBe('REGION_UNAVAILABLE');
    expect(
      await create(
        { userId: 'nowhere', birthdate: '1990-01-01', parentalConsent: false },
        { packageId: 'coins_100' },
        'r2',
      ),
    ).toBe('REGION_UNAVAILABLE');
    // Budget last: 10 EUR allows 1,000 coins (10.79 EUR) not at all, 500 coins (5.59) once.
    const frugal = adult('frugal', 'DE');
    await setBudget({ store, now: () => NOW, newId }, frugal, { amount: 1000, currency: 'EUR' });
    expect(await create(frugal, { packageId: 'coins_1000' }, 'b1')).toBe('BUDGET_EXCEEDED');
    expect(payments.createCalls).toHaveLength(0);
    await createRecharge(deps(payments), frugal, { packageId: 'coins_500' }, idem('b2'));
    expect(payments.createCalls).toHaveLength(1);
    expect(await create(frugal, { packageId: 'coins_500' }, 'b3')).toBe('BUDGET_EXCEEDED');
    expect(payments.createCalls).toHaveLength(1);
    // A teen with consent may buy.
    const teenWithConsent: Caller = { ...teenNoConsent, userId: 'teen-ok', parentalConsent: true };
    expect((await createRecharge(deps(payments), teenWithConsent, { packageId: 'coins_100' }, idem('t1'))).status).toBe(
      201,
    );
  });

  it("refuses a teenager's recharge when their guardian's revocation commits after the request's read", async () => {
    const teen: Caller = { userId: 'teen-racing', birthdate: '2010-06-01', country: 'US', parentalConsent: true };
    const revokingPayments = new FakePayments();
    const createIntent = revokingPayments.createPaymentIntent.bind(revokingPayments);
    // The revocation lands while the PaymentIntent is being created: after the read, before the transaction.
    revokingPayments.createPaymentIntent = async (input) => {
      await store.transactWrite([
        store.update('revoke consent', keys.wallet(teen.userId), {
          expression: 'SET appConsent = :revoked',
          values: { ':revoked': 'revoked' },
        }),
      ]);
      return createIntent(input);
    };
    expect(await codeOf(createRecharge(deps(revokingPayments), teen, { packageId: 'coins_100' }, idem('race')))).toBe(
      'AGE_RESTRICTED',
    );
    // Nothing was recorded: no recharge, so nothing can ever be credited for it.
    expect(await store.getItem(keys.recharge(rechargeIdFor(teen.userId, 'race')))).toBeUndefined();
  });

  it('lets only as many concurrent recharges through as the budget holds', async () => {
    const payments = new FakePayments();
    const caller = adult('budget-race', 'GB');
    await setBudget({ store, now: () => NOW, newId }, caller, { amount: 1000, currency: 'GBP' });
    // 4.99 GBP each: two fit in 10 GBP, the other four must be refused whatever the interleaving.
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, index) =>
        createRecharge(deps(payments), caller, { packageId: 'coins_500' }, idem(`br-${index}`)),
      ),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(2);
    for (const result of results)
      if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(BudgetExceededError);
    expect((await getWallet({ store, now: () => NOW }, caller)).budget.spentThisMonth).toEqual({
      amount: 998,
      currency: 'GBP',
    });
  });

  it('keeps counting a declined recharge (it can still be paid), and credits its retried payment within the budget', async () => {
    const payments = new FakePayments();
    const caller = adult('retrier');
    await setBudget({ store, now: () => NOW, newId }, caller, { amount: 1200, currency: 'USD' });
    const first = await createRecharge(deps(payments), caller, { packageId: 'coins_1000' }, idem('x1'));
    const webhook = webhookDeps(store, () => NOW, payments);
    expect(await handleStripeEvent(webhook, events.failed(first.body.payment.paymentIntentId))).toBe('declined');
    expect((await getRecharge({ store }, caller, first.body.rechargeId)).status).toBe('failed');
    // Declined is not cancelled: the price still counts, so no second recharge passes the budget.
    expect((await getWallet(webhook, caller)).budget.spentThisMonth.amount).toBe(1149);
    expect(await codeOf(createRecharge(deps(payments), caller, { packageId: 'coins_100' }, idem('x2')))).toBe(
      'BUDGET_EXCEEDED',
    );
    expect(await handleStripeEvent(webhook, events.succeeded(first.body.payment.paymentIntentId))).toBe('credited');
    const wallet = await getWallet(webhook, caller);
    expect(wallet.coins).toBe(1000);
    expect(wallet.budget.spentThisMonth.amount).toBe(1149);
    expect(payments.refundCalls).toHaveLength(0);
  });

  it('expires recharges pending for 24 hours: PaymentIntent cancelled, recharge failed, budget freed', async () => {
    const payments = new FakePayments();
    const caller = adult('sleeper');
    const old = new Date(NOW.getTime() - 25 * 60 * 60 * 1000);
    const stale = await createRecharge(deps(payments, old), caller, { packageId: 'coins_100' }, idem('old'));
    const paidMeanwhile = await createRecharge(deps(payments, old), caller, { packageId: 'coins_500' }, idem('paid'));
    const fresh = await createRecharge(deps(payments, NOW), caller, { packageId: 'coins_1000' }, idem('new'));
    payments.cancelOutcomes.set(paidMeanwhile.body.payment.paymentIntentId, 'succeeded');

    const result = await expirePendingRecharges({ store, payments, now: () => NOW });
    expect(result).toEqual({ expired: 1, skipped: 1, refunded: 0 });
    expect(payments.cancelCalls.sort()).toEqual(
      [stale.body.payment.paymentIntentId, paidMeanwhile.body.payment.paymentIntentId].sort(),
    );
    expect((await getRecharge({ store }, caller, stale.body.rechargeId)).status).toBe('failed');
    expect((await getRecharge({ store }, caller, paidMeanwhile.body.rechargeId)).status).toBe('pending');
    expect((await getRecharge({ store }, caller, fresh.body.rechargeId)).status).toBe('pending');
    // The canceled event Stripe then sends changes nothing more.
    expect(
      await handleStripeEvent(
        webhookDeps(store, () => NOW, payments),
        events.canceled(stale.body.payment.paymentIntentId),
      ),
    ).toBe('ignored');
    const spent = (await getWallet({ store, now: () => NOW }, caller)).budget.spentThisMonth.amount;
    // The stale ones were made in the same month (25 h earlier), so only the 100-coin price left it.
    expect(spent).toBe(599 + 1149);
  });
});

describe('wallet settings', () => {
  const settings = () => ({ store, now: () => NOW, newId });

  it('sets and clears a budget in the price-list currency only', async () => {
    const caller = adult('budgeter', 'FR');
    const wallet = await setBudget(settings(), caller, { amount: 5000, currency: 'EUR' });
    expect(wallet.budget).toEqual({
      monthlyLimit: { amount: 5000, currency: 'EUR' },
      spentThisMonth: { amount: 0, currency: 'EUR' },
    });
    await expect(setBudget(settings(), caller, { amount: 5000, currency: 'USD' })).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect((await setBudget(settings(), caller, null)).budget.monthlyLimit).toBeNull();
  });

  it('locks and unlocks for the owner; a dispute lock stays (423)', async () => {
    const caller = adult('locker');
    expect((await setLock(settings(), caller, true)).locked).toBe(true);
    expect((await setLock(settings(), caller, false)).locked).toBe(false);
    await store.transactWrite([
      store.update('dispute lock', keys.wallet('locker'), {
        expression: 'SET locked = :t, lockReason = :d',
        values: { ':t': true, ':d': 'dispute' },
      }),
    ]);
    // Locking again keeps the dispute reason; unlocking is refused.
    expect((await setLock(settings(), caller, true)).locked).toBe(true);
    await expect(setLock(settings(), caller, false)).rejects.toBeInstanceOf(WalletLockedError);
    expect((await getWallet(settings(), caller)).locked).toBe(true);
  });

  it('reports a transaction of the caller (locking the wallet) and NOT_FOUND for anyone else’s', async () => {
    const payments = new FakePayments();
    const caller = adult('reporter');
    const recharge = await createRecharge(deps(payments), caller, { packageId: 'coins_100' }, idem('rep'));
    await handleStripeEvent(
      webhookDeps(store, () => NOW, payments),
      events.succeeded(recharge.body.payment.paymentIntentId),
    );
    const [entry] = await entriesOf(store, 'reporter');
    const entryId = String(entry?.entryId);
    await expect(reportTransaction(settings(), adult('stranger'), entryId, 'not mine')).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(reportTransaction(settings(), caller, 'txn_unknown', 'what')).rejects.toBeInstanceOf(NotFoundError);
    const report = await reportTransaction(settings(), caller, entryId, 'I did not buy this');
    expect(report.reportId).toMatch(/^rpt_/);
    const wallet = await store.readWallet('reporter', { consistent: true });
    expect(wallet).toMatchObject({ locked: true, lockReason: 'owner', coins: 100 });
    expect(await codeOf(createRecharge(deps(payments), caller, { packageId: 'coins_100' }, idem('after-report')))).toBe(
      'WALLET_LOCKED',
    );
  });
});

describe('clawbackTarget', () => {
  it('takes the same share of coins as of money, rounded down, never more than the package', () => {
    const base = { coins: 100, priceMinor: 129, refundedMinor: 0, disputes: {}, wonDisputes: {} };
    expect(clawbackTarget(base)).toBe(0);
    expect(clawbackTarget({ ...base, refundedMinor: 64 })).toBe(49);
    expect(clawbackTarget({ ...base, refundedMinor: 129 })).toBe(100);
    expect(clawbackTarget({ ...base, refundedMinor: 100, disputes: { dp_1: 129 } })).toBe(100);
  });

  it('no longer counts a dispute the platform won', () => {
    const base = { coins: 100, priceMinor: 200, refundedMinor: 0, disputes: { dp_1: 100, dp_2: 50 }, wonDisputes: {} };
    expect(clawbackTarget(base)).toBe(75);
    expect(clawbackTarget({ ...base, wonDisputes: { dp_1: true as const } })).toBe(25);
    expect(clawbackTarget({ ...base, wonDisputes: { dp_1: true as const, dp_2: true as const } })).toBe(0);
  });
});
