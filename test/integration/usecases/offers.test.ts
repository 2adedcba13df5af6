import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { keys } from '../../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { newId } from '../../../shared/adapters/ids';
import { countriesWithPriceList, packagesForCountry } from '../../../shared/domain/catalog';
import { type Offer, offerTerms, perCoinOrderProblems } from '../../../shared/domain/offers';
import { createOffer } from '../../../shared/usecases/offers';
import { cancelRecharge, createRecharge } from '../../../shared/usecases/recharge';
import { getWallet } from '../../../shared/usecases/wallet';
import { handleStripeEvent } from '../../../shared/usecases/stripe-webhook';
import { adult, entriesOf, events, FakePayments, freshLedger, webhookDeps } from './recharge-fixtures';

/** Issue 13: offers' rules, and an offer that has expired by the time the recharge is created. */

const OPERATOR = { ...adult('op'), groups: ['operators'] };

test('an offer the rule accepts keeps every larger package no dearer per coin, in every currency', () => {
  const packageIds = packagesForCountry('US').packages.map((pkg) => pkg.id);
  fc.assert(
    fc.property(
      fc.constantFrom(...packageIds),
      fc.boolean(),
      fc.integer({ min: 1, max: 90 }),
      fc.integer({ min: 1, max: 2000 }),
      (packageId, isBonus, percent, bonus) => {
        const offer = {
          packageId,
          kind: isBonus ? ('bonus' as const) : ('discount' as const),
          discountPercent: isBonus ? 0 : percent,
          bonusCoins: isBonus ? bonus : 0,
          countries: null,
        };
        if (perCoinOrderProblems(offer).length > 0) return;
        for (const country of countriesWithPriceList()) {
          const { packages } = packagesForCountry(country);
          const offered = packages.find((pkg) => pkg.id === packageId);
          if (!offered) continue;
          const terms = offerTerms(offer, offered);
          const price = offered.price.amount - terms.discountMinor;
          const coins = offered.coins + terms.bonusCoins;
          for (const larger of packages.filter((pkg) => pkg.coins > offered.coins))
            expect(larger.price.amount / larger.coins).toBeLessThanOrEqual(price / coins);
        }
      },
    ),
  );
});

describe('with DynamoDB Local', () => {
  let store: DynamoLedgerStore;
  let client: DynamoDBClient;
  const T0 = new Date('2026-06-01T10:00:00.000Z');
  const LATER = new Date('2026-06-01T12:00:00.000Z');
  let offer: Offer;

  beforeAll(async () => {
    ({ store, client } = await freshLedger());
    offer = await createOffer({ store, now: () => T0, newId }, OPERATOR, {
      packageId: 'coins_10000',
      kind: 'bonus',
      bonusCoins: 500,
      firstRechargeOnly: true,
      endsAt: '2026-06-01T11:00:00.000Z',
    });
  });
  afterAll(() => client.destroy());

  test('an offer that expired before the recharge is refused with 409, and nothing is opened or counted', async () => {
    const payments = new FakePayments();
    const caller = adult('too-late');
    await expect(
      createRecharge(
        { store, payments, now: () => LATER },
        caller,
        { packageId: 'coins_10000', offerId: offer.offerId },
        { key: 'k', fingerprint: 'f' },
      ),
    ).rejects.toMatchObject({ code: 'OFFER_UNAVAILABLE', status: 409 });
    expect(payments.createCalls).toHaveLength(0);
    expect((await getWallet({ store, now: () => LATER }, caller)).budget.spentThisMonth.amount).toBe(0);
    expect(await store.getItem(keys.firstRechargeOffer(caller.userId), { consistent: true })).toBeUndefined();
  });

  test('a recharge created under a first-recharge offer holds the reservation; cancelling it releases it, once', async () => {
    const payments = new FakePayments();
    const caller = adult('in-time');
    const created = await createRecharge(
      { store, payments, now: () => T0 },
      caller,
      { packageId: 'coins_10000', offerId: offer.offerId },
      { key: 'k2', fingerprint: 'f2' },
    );
    expect(created.body.bonusCoins).toBe(500);
    expect(await store.getItem(keys.firstRechargeOffer(caller.userId), { consistent: true })).toMatchObject({
      rechargeId: created.body.rechargeId,
      offerId: offer.offerId,
    });
    expect(await cancelRecharge(store, created.body.rechargeId)).toBe('canceled');
    const claim = await store.getItem(keys.firstRechargeOffer(caller.userId), { consistent: true });
    expect(claim?.rechargeId).toBeUndefined();
    // Cancelled twice (redelivered): released once, nothing else moves.
    expect(await cancelRecharge(store, created.body.rechargeId)).toBe('unchanged');
  });

  test('a cancelled recharge paid after another recharge took its first-recharge offer is refunded once and credits nothing', async () => {
    const payments = new FakePayments();
    const caller = adult('late-payer');
    const open = (key: string) =>
      createRecharge(
        { store, payments, now: () => T0 },
        caller,
        { packageId: 'coins_10000', offerId: offer.offerId },
        { key, fingerprint: `f-${key}` },
      );
    const first = await open('first');
    expect(await cancelRecharge(store, first.body.rechargeId)).toBe('canceled');
    const second = await open('second');
    const webhook = webhookDeps(store, () => T0, payments);

    // The first payment goes through after all: the offer it was priced with is the second's now.
    await handleStripeEvent(webhook, events.succeeded(first.body.payment.paymentIntentId));
    await handleStripeEvent(webhook, events.succeeded(first.body.payment.paymentIntentId));
    expect(payments.refundCalls.map((call) => call.paymentIntentId)).toEqual([
      first.body.payment.paymentIntentId,
      first.body.payment.paymentIntentId,
    ]);
    expect(new Set(payments.refundCalls.map((call) => call.idempotencyKey)).size).toBe(1);
    expect(payments.refundedKeys.size).toBe(1);
    expect((await getWallet({ store, now: () => T0 }, caller)).coins).toBe(0);
    expect(await store.getItem(keys.firstRechargeOffer(caller.userId), { consistent: true })).toMatchObject({
      rechargeId: second.body.rechargeId,
    });
    const refundEntries = (await entriesOf(store, caller.userId)).filter(
      (item) => item.entryType === 'over_budget_refund',
    );
    expect(refundEntries).toHaveLength(1);
    expect(refundEntries[0]).toMatchObject({ coins: 0, ref: { rechargeId: first.body.rechargeId } });

    // The second, which holds the offer, is credited with its bonus coins.
    await handleStripeEvent(webhook, events.succeeded(second.body.payment.paymentIntentId));
    expect((await getWallet({ store, now: () => T0 }, caller)).coins).toBe(10_000 + 500);
  });
});
