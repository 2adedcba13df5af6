import { newId } from '../../../shared/adapters/ids';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { keys } from '../../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { paymentIntentParams } from '../../../shared/adapters/payments';
import { ConfigError, pricingConfig, forgetConfig } from '../../../shared/config';
import { countriesWithPriceList, packagesForCountry } from '../../../shared/domain/catalog';
import { DomainError } from '../../../shared/domain/errors';
import { checkPricingConfig, DEFAULT_PRICING, type PricingConfig, quote } from '../../../shared/domain/pricing';
import { createRecharge } from '../../../shared/usecases/recharge';
import { setBudget } from '../../../shared/usecases/wallet-settings';
import { getWallet } from '../../../shared/usecases/wallet';
import { adult, FakePayments, freshLedger } from './recharge-fixtures';

/** Issue 13, parts 2 and 3: fees and methods as configuration, and the quote that is the charge. */

const PAYPAL_IE: PricingConfig = {
  ...DEFAULT_PRICING,
  methods: ['card', 'paypal'],
  platformCountry: 'IE',
  paypalConnectApproved: true,
};

afterEach(() => {
  for (const name of ['PAYMENT_METHODS', 'STRIPE_PLATFORM_COUNTRY', 'STRIPE_PAYPAL_CONNECT_APPROVED', 'PRICING_FEES'])
    delete process.env[name];
  forgetConfig();
});

function configWith(env: Record<string, string>): () => unknown {
  return () => {
    Object.assign(process.env, env);
    forgetConfig();
    return pricingConfig();
  };
}

describe('configuration', () => {
  test('the defaults reproduce every price of every price list, card only, no fees', () => {
    for (const country of countriesWithPriceList()) {
      for (const pkg of packagesForCountry(country).packages) {
        const breakdown = quote(DEFAULT_PRICING, country, pkg, 'card', 0);
        expect(breakdown.total).toEqual(pkg.price);
        expect([breakdown.platformFee.amount, breakdown.methodFee.amount, breakdown.discount.amount]).toEqual([
          0, 0, 0,
        ]);
      }
    }
    expect(pricingConfig().pricing).toEqual(DEFAULT_PRICING);
  });

  test('a card surcharge is refused in the EEA and the UK, and under * (which reaches them); allowed in the US', () => {
    for (const fees of [
      { methods: { card: { DE: 30 } } },
      { methods: { card: { GB: 1 } } },
      { methods: { card: { '*': 25 } } },
      { methods: { card: { NO: 10 } } },
    ])
      expect(configWith({ PRICING_FEES: JSON.stringify(fees) })).toThrow(ConfigError);
    expect(configWith({ PRICING_FEES: JSON.stringify({ methods: { card: { US: 30, DE: 0 } } }) })).not.toThrow();
    expect(configWith({ PRICING_FEES: '{"platform":{"*":1.5}}' })).toThrow(ConfigError);
    expect(configWith({ PRICING_FEES: 'not json' })).toThrow(ConfigError);
  });

  test('PayPal only on a European Stripe account that Stripe approved for Connect', () => {
    expect(configWith({ PAYMENT_METHODS: 'card,paypal' })).toThrow(/EEA, the UK or Switzerland/);
    expect(configWith({ PAYMENT_METHODS: 'card,paypal', STRIPE_PLATFORM_COUNTRY: 'DE' })).toThrow(/approve/);
    expect(
      configWith({
        PAYMENT_METHODS: 'card,paypal',
        STRIPE_PLATFORM_COUNTRY: 'CH',
        STRIPE_PAYPAL_CONNECT_APPROVED: 'true',
      }),
    ).not.toThrow();
    expect(checkPricingConfig({ ...PAYPAL_IE, methods: ['paypal'] })).toEqual([
      'PAYMENT_METHODS: card must stay on (the default method)',
    ]);
  });

  test('the total is the sum of its parts, in integers, for any fees and discount', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...countriesWithPriceList()),
        fc.nat({ max: 4 }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 99 }),
        (country, index, platform, paypal, percent) => {
          const pkg = packagesForCountry(country).packages[index];
          if (pkg === undefined) return;
          const config = {
            ...PAYPAL_IE,
            fees: { platform: { [country]: platform }, methods: { paypal: { '*': paypal } } },
          };
          const discount = Math.floor((pkg.price.amount * percent) / 100);
          const b = quote(config, country, pkg, 'paypal', discount);
          expect(b.total.amount).toBe(b.coins.amount - b.discount.amount + b.platformFee.amount + b.methodFee.amount);
          expect(Number.isSafeInteger(b.total.amount)).toBe(true);
          expect(new Set([b.coins, b.discount, b.platformFee, b.methodFee, b.total].map((m) => m.currency)).size).toBe(
            1,
          );
        },
      ),
    );
  });
});

describe('recharges under fees and methods (DynamoDB Local)', () => {
  let store: DynamoLedgerStore;
  let client: DynamoDBClient;
  const NOW = new Date('2026-05-10T12:00:00.000Z');
  beforeAll(async () => {
    ({ store, client } = await freshLedger());
  });
  afterAll(() => client.destroy());
  const idem = (key: string) => ({ key, fingerprint: `fp-${key}` });

  test('the amount quoted is the amount charged, and the budget counts it', async () => {
    const payments = new FakePayments();
    const pricing: PricingConfig = {
      ...PAYPAL_IE,
      fees: { platform: { US: 25 }, methods: { paypal: { US: 40 } } },
    };
    const caller = adult('fee-payer');
    const answer = await createRecharge(
      { store, payments, now: () => NOW, pricing, defaultReturnUrl: 'https://app.example/back' },
      caller,
      { packageId: 'coins_500', method: 'paypal' },
      idem('fees-1'),
    );
    expect(answer.body.price).toEqual({ amount: 599 + 25 + 40, currency: 'USD' });
    expect(answer.body.breakdown).toEqual({
      coins: { amount: 599, currency: 'USD' },
      discount: { amount: 0, currency: 'USD' },
      platformFee: { amount: 25, currency: 'USD' },
      methodFee: { amount: 40, currency: 'USD' },
      total: { amount: 664, currency: 'USD' },
    });
    // What Stripe is asked to charge is the quote's total, with PayPal confirmed by redirect.
    const call = payments.createCalls[0];
    expect(call?.price).toEqual({ amount: 664, currency: 'USD' });
    expect(call && paymentIntentParams(call)).toMatchObject({
      amount: 664,
      allowed_payment_method_types: ['paypal'],
      confirm: true,
      return_url: 'https://app.example/back',
    });
    expect((await getWallet({ store, now: () => NOW }, caller)).budget.spentThisMonth).toEqual({
      amount: 664,
      currency: 'USD',
    });
    // The stored recharge repeats it as the receipt.
    const stored = await store.getItem(keys.recharge(answer.body.rechargeId), { consistent: true });
    expect(stored).toMatchObject({ priceMinor: 664, coinsValueMinor: 599, platformFeeMinor: 25, methodFeeMinor: 40 });
  });

  test('a budget that holds the price list price but not the fees refuses the recharge', async () => {
    const payments = new FakePayments();
    const caller = adult('tight-budget');
    await setBudget({ store, now: () => NOW, newId }, caller, { amount: 600, currency: 'USD' });
    const pricing: PricingConfig = { ...DEFAULT_PRICING, fees: { platform: { US: 5 }, methods: {} } };
    await expect(
      createRecharge({ store, payments, now: () => NOW, pricing }, caller, { packageId: 'coins_500' }, idem('tight')),
    ).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
    expect(payments.createCalls).toHaveLength(0);
  });

  test('a method that is not on is refused with 409 before any payment is opened, and nothing is written', async () => {
    const payments = new FakePayments();
    const caller = adult('no-paypal');
    const refusal = await createRecharge(
      { store, payments, now: () => NOW, defaultReturnUrl: 'https://app.example/back' },
      caller,
      { packageId: 'coins_100', method: 'paypal' },
      idem('np'),
    ).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(DomainError);
    expect(refusal).toMatchObject({ code: 'PAYMENT_METHOD_UNAVAILABLE', status: 409 });
    expect(payments.createCalls).toHaveLength(0);
    expect((await getWallet({ store, now: () => NOW }, caller)).budget.spentThisMonth.amount).toBe(0);
    // A redirect method without a return address is a validation error, checked first.
    await expect(
      createRecharge(
        { store, payments, now: () => NOW, pricing: PAYPAL_IE },
        caller,
        { packageId: 'coins_100', method: 'paypal' },
        idem('nr'),
      ),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
