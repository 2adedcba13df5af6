import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { TransientDependencyError } from '../../../shared/domain/errors';
import { createRecharge, getRecharge } from '../../../shared/usecases/recharge';
import { handleStripeEvent, type WebhookDeps } from '../../../shared/usecases/stripe-webhook';
import { setLock } from '../../../shared/usecases/wallet-settings';
import {
  adult,
  entriesOf,
  entrySums,
  events,
  FakePayments,
  freshLedger,
  spendCoins,
  webhookDeps,
} from './recharge-fixtures';

let store: DynamoLedgerStore;
let client: DynamoDBClient;
const payments = new FakePayments();
const pushed: string[] = [];

beforeAll(async () => {
  ({ store, client } = await freshLedger());
});
afterAll(() => client.destroy());

function webhook(): WebhookDeps {
  return webhookDeps(store, () => new Date(), payments, { notifyWallet: async (userId) => void pushed.push(userId) });
}

let keySequence = 0;
async function recharge(userId: string, packageId = 'coins_500', country = 'US') {
  keySequence += 1;
  const answer = await createRecharge(
    { store, payments, now: () => new Date() },
    adult(userId, country),
    { packageId },
    { key: `key-${keySequence}`, fingerprint: `fp-${keySequence}` },
  );
  return {
    rechargeId: answer.body.rechargeId,
    paymentIntentId: answer.body.payment.paymentIntentId,
    priceMinor: answer.body.price.amount,
  };
}

async function expectEntriesMatchWallet(
  userId: string,
): Promise<{ coins: number; owedCoins: number; locked: boolean }> {
  const wallet = await store.readWallet(userId, { consistent: true });
  expect(await entrySums(store, userId)).toEqual({ coins: wallet.coins, owedCoins: wallet.owedCoins });
  expect(wallet.coins).toBeGreaterThanOrEqual(0);
  expect(wallet.owedCoins).toBeGreaterThanOrEqual(0);
  return { coins: wallet.coins, owedCoins: wallet.owedCoins, locked: wallet.locked };
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, index) =>
    permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]),
  );
}

describe('payment_intent.succeeded', () => {
  it('credits once when delivered 10 times at once, and pushes the wallet once', async () => {
    const { paymentIntentId, rechargeId } = await recharge('burst');
    const event = events.succeeded(paymentIntentId);
    // Nine copies of one event and one other event for the same PaymentIntent, all at once.
    const deliveries = [...Array.from({ length: 9 }, () => event), events.succeeded(paymentIntentId)];
    const outcomes = await Promise.all(deliveries.map((delivery) => handleStripeEvent(webhook(), delivery)));
    expect(outcomes.filter((outcome) => outcome === 'credited')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome !== 'credited').every((outcome) => outcome === 'duplicate')).toBe(true);
    expect(await expectEntriesMatchWallet('burst')).toEqual({ coins: 500, owedCoins: 0, locked: false });
    expect(pushed.filter((userId) => userId === 'burst')).toEqual(['burst']);
    expect((await getRecharge({ store }, adult('burst'), rechargeId)).status).toBe('succeeded');
    const entries = await entriesOf(store, 'burst');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      entryType: 'recharge',
      coins: 500,
      ref: { rechargeId, paymentIntentId, coinsPurchased: 500 },
    });
  });

  it.each(permutations(['succeeded x10', 'failed', 'dispute']).map((order) => [order.join(' -> '), order]))(
    'ends where the money rules say, in the order %s',
    async (_name, order) => {
      const userId = `order-${(order as string[]).join('-').replace(/[^a-z0-9-]/g, '')}`;
      // A balance from an earlier recharge, so the dispute has something it must not take.
      const earlier = await recharge(userId, 'coins_100');
      await handleStripeEvent(webhook(), events.succeeded(earlier.paymentIntentId));
      const { paymentIntentId, rechargeId, priceMinor } = await recharge(userId, 'coins_500');
      const succeeded = events.succeeded(paymentIntentId);
      const dispute = events.dispute(paymentIntentId, priceMinor);
      for (const step of order as string[]) {
        if (step === 'succeeded x10')
          await Promise.all(Array.from({ length: 10 }, () => handleStripeEvent(webhook(), succeeded)));
        if (step === 'failed') await handleStripeEvent(webhook(), events.failed(paymentIntentId));
        if (step === 'dispute') {
          await Promise.all([handleStripeEvent(webhook(), dispute), handleStripeEvent(webhook(), dispute)]);
        }
      }
      // Minted 500 and took 500 back: the earlier 100 remain; locked for the dispute.
      expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 100, owedCoins: 0, locked: true });
      expect((await store.readWallet(userId, { consistent: true })).lockReason).toBe('dispute');
      expect((await getRecharge({ store }, adult(userId), rechargeId)).status).toBe('disputed');
      const entries = (await entriesOf(store, userId)).filter(
        (entry) => (entry.ref as { rechargeId?: string }).rechargeId === rechargeId,
      );
      expect(entries.map((entry) => [entry.entryType, entry.coins]).sort()).toEqual([
        ['chargeback', -500],
        ['recharge', 500],
      ]);
      // Replaying everything once more changes nothing.
      await handleStripeEvent(webhook(), succeeded);
      await handleStripeEvent(webhook(), dispute);
      expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 100, owedCoins: 0, locked: true });
    },
  );

  it('ignores a failure after the success', async () => {
    const { paymentIntentId, rechargeId } = await recharge('late-fail');
    await handleStripeEvent(webhook(), events.succeeded(paymentIntentId));
    expect(await handleStripeEvent(webhook(), events.failed(paymentIntentId))).toBe('ignored');
    expect(await handleStripeEvent(webhook(), events.canceled(paymentIntentId))).toBe('ignored');
    expect((await getRecharge({ store }, adult('late-fail'), rechargeId)).status).toBe('succeeded');
    expect(await expectEntriesMatchWallet('late-fail')).toEqual({ coins: 500, owedCoins: 0, locked: false });
  });

  it('ignores events of other types and of PaymentIntents that are not ours; retries ours not yet recorded', async () => {
    expect(
      await handleStripeEvent(webhook(), {
        id: 'evt_x',
        livemode: false,
        type: 'customer.created',
        data: { object: { id: 'cus_1' } },
      }),
    ).toBe('ignored');
    expect(await handleStripeEvent(webhook(), events.succeeded('pi_foreign'))).toBe('ignored');
    expect(await handleStripeEvent(webhook(), events.dispute('pi_foreign', 100))).toBe('ignored');
    const ours = events.succeeded('pi_not_yet');
    ours.data.object.metadata = { rechargeId: 'rc_pending_commit' };
    await expect(handleStripeEvent(webhook(), ours)).rejects.toBeInstanceOf(TransientDependencyError);
  });
});

describe('disputes and refunds', () => {
  it('takes back what the balance allows, records the rest as owed, and the next credit pays it first', async () => {
    const userId = 'spender';
    const first = await recharge(userId, 'coins_500');
    await handleStripeEvent(webhook(), events.succeeded(first.paymentIntentId));
    expect(await spendCoins(store, userId, 450)).toBe(true);
    expect(await handleStripeEvent(webhook(), events.dispute(first.paymentIntentId, first.priceMinor))).toBe(
      'clawed_back',
    );
    expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 0, owedCoins: 450, locked: true });
    // The owner cannot lift a dispute lock.
    await expect(setLock({ store, now: () => new Date() }, adult(userId), false)).rejects.toMatchObject({
      code: 'WALLET_LOCKED',
    });
    // Support unlocks (outside this API); the next recharge pays the debt first.
    await store.transactWrite([
      store.update(
        'support unlock',
        { pk: `USER#${userId}`, sk: 'WALLET' },
        { expression: 'SET locked = :f REMOVE lockReason', values: { ':f': false } },
      ),
    ]);
    const second = await recharge(userId, 'coins_1000');
    await handleStripeEvent(webhook(), events.succeeded(second.paymentIntentId));
    expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 550, owedCoins: 0, locked: false });
    const credit = (await entriesOf(store, userId)).find(
      (entry) => (entry.ref as { rechargeId?: string }).rechargeId === second.rechargeId,
    );
    expect(credit).toMatchObject({
      entryType: 'recharge',
      coins: 550,
      owedCoins: -450,
      ref: { debtPaid: 450, coinsPurchased: 1000 },
    });
  });

  it('takes back a partial refund in proportion, rounded down, once per refund whatever the order', async () => {
    const userId = 'refunded';
    const { paymentIntentId, priceMinor } = await recharge(userId, 'coins_1000');
    expect(priceMinor).toBe(1149);
    await handleStripeEvent(webhook(), events.succeeded(paymentIntentId));
    const firstRefund = events.refunded(paymentIntentId, 1149, 500);
    const secondRefund = events.refunded(paymentIntentId, 1149, 1149);
    expect(await handleStripeEvent(webhook(), firstRefund)).toBe('clawed_back');
    // floor(1000 * 500 / 1149) = 435
    expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 565, owedCoins: 0, locked: true });
    expect(await handleStripeEvent(webhook(), firstRefund)).toBe('duplicate');
    expect(await handleStripeEvent(webhook(), secondRefund)).toBe('clawed_back');
    expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 0, owedCoins: 0, locked: true });
    // The first refund's event delivered again under a new id (an older snapshot) takes nothing more.
    expect(await handleStripeEvent(webhook(), events.refunded(paymentIntentId, 1149, 500))).toBe('duplicate');
    expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 0, owedCoins: 0, locked: true });
  });

  it('keeps a refund that arrives before the credit and applies it when the coins land', async () => {
    const userId = 'early-refund';
    const { paymentIntentId, rechargeId } = await recharge(userId, 'coins_100');
    expect(await handleStripeEvent(webhook(), events.refunded(paymentIntentId, 129, 64))).toBe('recorded');
    expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 0, owedCoins: 0, locked: false });
    expect(await handleStripeEvent(webhook(), events.succeeded(paymentIntentId))).toBe('credited');
    // 100 minted, floor(100 * 64 / 129) = 49 taken back in the same step.
    expect(await expectEntriesMatchWallet(userId)).toEqual({ coins: 51, owedCoins: 0, locked: true });
    expect((await getRecharge({ store }, adult(userId), rechargeId)).status).toBe('disputed');
  });

  it('never lets spending and a clawback together take a balance below zero', async () => {
    const userId = 'racing-dispute';
    const { paymentIntentId, priceMinor } = await recharge(userId, 'coins_1000');
    await handleStripeEvent(webhook(), events.succeeded(paymentIntentId));
    const gifts = Array.from({ length: 6 }, () => spendCoins(store, userId, 150));
    const [, ...spent] = await Promise.all([
      handleStripeEvent(webhook(), events.dispute(paymentIntentId, priceMinor)),
      ...gifts,
    ]);
    const gifted = spent.filter(Boolean).length * 150;
    const wallet = await expectEntriesMatchWallet(userId);
    expect(wallet.coins).toBe(0);
    // Minted 1,000 = held 0 + gifted + taken back (what the balance allowed) ; the rest is owed.
    const chargebacks = (await entriesOf(store, userId)).filter((entry) => entry.entryType === 'chargeback');
    const takenBack = chargebacks.reduce((sum, entry) => sum - Number(entry.coins), 0);
    expect(gifted + takenBack).toBe(1000);
    expect(wallet.owedCoins).toBe(1000 - takenBack);
  });
});
