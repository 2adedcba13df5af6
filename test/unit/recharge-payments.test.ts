import Stripe from 'stripe';
import { paymentIdempotencyKey, StripePayments, WEBHOOK_TOLERANCE_SECONDS } from '../../shared/adapters/payments';
import { IdempotencyKeyReusedError, TransientDependencyError, ValidationError } from '../../shared/domain/errors';

/** The Stripe adapter against a Stripe double (no network): exact parameters, keys and error mapping. */
const SECRET = 'whsec_unit_test_secret';

function stripeDouble(overrides: { create?: jest.Mock; cancel?: jest.Mock; retrieve?: jest.Mock } = {}) {
  const paymentIntents = {
    create: overrides.create ?? jest.fn(async () => ({ id: 'pi_123', client_secret: 'pi_123_secret_abc' })),
    cancel: overrides.cancel ?? jest.fn(async () => ({ id: 'pi_123', status: 'canceled' })),
    retrieve: overrides.retrieve ?? jest.fn(async () => ({ id: 'pi_123', status: 'succeeded' })),
  };
  // The real webhooks helper: verification is exactly the SDK's.
  const client = { paymentIntents, webhooks: Stripe.webhooks } as unknown as Stripe;
  return {
    paymentIntents,
    payments: new StripePayments(
      async () => client,
      async () => [SECRET],
    ),
  };
}

function stripeError(type: string, code?: string): Error {
  return Object.assign(new Error(type), { type, ...(code !== undefined && { code }) });
}

describe('StripePayments.createPaymentIntent', () => {
  it('sends the amount, currency, metadata and a hashed per-user idempotency key', async () => {
    const { paymentIntents, payments } = stripeDouble();
    const created = await payments.createPaymentIntent({
      userId: 'user-1',
      clientKey: 'client-key',
      rechargeId: 'rc_1',
      packageId: 'coins_500',
      coins: 500,
      price: { amount: 599, currency: 'USD' },
    });
    expect(created).toEqual({ paymentIntentId: 'pi_123', clientSecret: 'pi_123_secret_abc' });
    expect(paymentIntents.create).toHaveBeenCalledWith(
      {
        amount: 599,
        currency: 'usd',
        automatic_payment_methods: { enabled: true },
        metadata: { userId: 'user-1', rechargeId: 'rc_1', packageId: 'coins_500', coins: '500' },
      },
      { idempotencyKey: paymentIdempotencyKey('user-1', 'client-key') },
    );
    expect(paymentIdempotencyKey('user-1', 'client-key')).not.toBe(paymentIdempotencyKey('user-2', 'client-key'));
    expect(paymentIdempotencyKey('user-1', 'x'.repeat(255)).length).toBeLessThanOrEqual(255);
  });

  it('maps an idempotency error to IDEMPOTENCY_KEY_REUSED and anything else to a transient failure', async () => {
    const input = {
      userId: 'u',
      clientKey: 'k',
      rechargeId: 'rc',
      packageId: 'coins_100',
      coins: 100,
      price: { amount: 129, currency: 'USD' as const },
    };
    const reused = stripeDouble({ create: jest.fn(async () => Promise.reject(stripeError('StripeIdempotencyError'))) });
    await expect(reused.payments.createPaymentIntent(input)).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    const down = stripeDouble({ create: jest.fn(async () => Promise.reject(stripeError('StripeAPIError'))) });
    await expect(down.payments.createPaymentIntent(input)).rejects.toBeInstanceOf(TransientDependencyError);
  });
});

describe('StripePayments.cancelPaymentIntent', () => {
  it('cancels, and says what a PaymentIntent is when it can no longer be cancelled', async () => {
    expect(await stripeDouble().payments.cancelPaymentIntent('pi_1')).toBe('canceled');
    const paid = stripeDouble({
      cancel: jest.fn(async () =>
        Promise.reject(stripeError('StripeInvalidRequestError', 'payment_intent_unexpected_state')),
      ),
    });
    expect(await paid.payments.cancelPaymentIntent('pi_1')).toBe('succeeded');
    const missing = stripeDouble({
      cancel: jest.fn(async () => Promise.reject(stripeError('StripeInvalidRequestError', 'resource_missing'))),
    });
    expect(await missing.payments.cancelPaymentIntent('pi_1')).toBe('missing');
  });
});

describe('StripePayments.verifyWebhook', () => {
  const payload = JSON.stringify({
    id: 'evt_1',
    object: 'event',
    type: 'payment_intent.succeeded',
    data: { object: { id: 'pi_1' } },
  });
  const { payments } = stripeDouble();

  it('accepts a body signed with the secret within the tolerance', async () => {
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
    expect(await payments.verifyWebhook(payload, header)).toMatchObject({
      id: 'evt_1',
      type: 'payment_intent.succeeded',
    });
  });

  it('refuses a tampered body, a wrong secret, a stale timestamp and a missing header', async () => {
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
    await expect(payments.verifyWebhook(payload.replace('pi_1', 'pi_2'), header)).rejects.toBeInstanceOf(
      ValidationError,
    );
    const wrongSecret = Stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_other' });
    await expect(payments.verifyWebhook(payload, wrongSecret)).rejects.toBeInstanceOf(ValidationError);
    const stale = Stripe.webhooks.generateTestHeaderString({
      payload,
      secret: SECRET,
      timestamp: Math.floor(Date.now() / 1000) - WEBHOOK_TOLERANCE_SECONDS - 60,
    });
    await expect(payments.verifyWebhook(payload, stale)).rejects.toBeInstanceOf(ValidationError);
    await expect(payments.verifyWebhook(payload, undefined)).rejects.toBeInstanceOf(ValidationError);
    await expect(payments.verifyWebhook(payload, 'garbage')).rejects.toBeInstanceOf(ValidationError);
  });
});
