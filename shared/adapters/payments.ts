import type Stripe from 'stripe';
import { IdempotencyKeyReusedError, TransientDependencyError, ValidationError } from '../domain/errors';
import type { Money } from '../domain/money';
import { METHOD_CONFIRMATION, type PaymentMethod } from '../domain/payment-methods';
import { derivedIdHex } from '../domain/derived-id';
import { stripeClient, stripeSecrets } from './stripe-client';

/**
 * The payments port: what the recharge use cases need from Stripe, and nothing else. The use
 * cases take it as an argument, so unit tests pass a fake and count its calls.
 */
export interface CreatePaymentIntentInput {
  userId: string;
  /** The client's Idempotency-Key: a duplicate request gets the same PaymentIntent back. */
  clientKey: string;
  rechargeId: string;
  packageId: string;
  coins: number;
  /** The all-in total: what Stripe charges. */
  price: Money;
  /** Absent: a card payment, confirmed by the client with Stripe.js (as before methods existed). */
  method?: PaymentMethod;
  /** Where a redirect method sends the customer back (required with one). */
  returnUrl?: string | undefined;
  offerId?: string;
  bonusCoins?: number;
}

export interface CreatedPaymentIntent {
  paymentIntentId: string;
  clientSecret: string;
  /** A redirect method's page (PayPal's): the client sends the customer there. */
  redirectUrl?: string;
}

/** Where a PaymentIntent stands after a cancel attempt. */
export type CancelOutcome = 'canceled' | 'succeeded' | 'processing' | 'missing';

/** Why the platform gives a payment back (Stripe's refund metadata says it too). */
export type RefundReason = 'over_budget' | 'support_desk';

export interface RefundInput {
  paymentIntentId: string;
  /** The same key always makes the same one refund (Stripe keeps keys 24 hours; after that it refuses a second full refund). */
  idempotencyKey: string;
  reason: RefundReason;
  /** The support-desk case that asked for it, in the refund's metadata for whoever reads Stripe's dashboard. */
  caseId?: string;
}

export interface Payments {
  createPaymentIntent(input: CreatePaymentIntentInput): Promise<CreatedPaymentIntent>;
  /** Refunds a succeeded payment in full; a payment already refunded in full counts as done. */
  refundPayment(input: RefundInput): Promise<'refunded' | 'already_refunded'>;
  /** Cancels a PaymentIntent that was never paid; tells what it is when it cannot be cancelled. */
  cancelPaymentIntent(paymentIntentId: string): Promise<CancelOutcome>;
  /** The event, verified on the raw body; a bad or stale signature is a ValidationError (400). */
  verifyWebhook(rawBody: string, signatureHeader: string | undefined): Promise<unknown>;
}

/**
 * The PaymentIntent's parameters. Every value is derived from the request, so a duplicate sends
 * identical parameters and Stripe replays the first PaymentIntent instead of refusing the key.
 * A card payment is left to the client (Stripe.js confirms it, wallets included); a redirect
 * method is confirmed here, server-side, so the answer carries the page to send the customer to.
 */
export function paymentIntentParams(input: CreatePaymentIntentInput): Stripe.PaymentIntentCreateParams {
  const metadata: Record<string, string> = {
    userId: input.userId,
    rechargeId: input.rechargeId,
    packageId: input.packageId,
    coins: String(input.coins),
    ...(input.offerId !== undefined && { offerId: input.offerId, bonusCoins: String(input.bonusCoins ?? 0) }),
  };
  const base = { amount: input.price.amount, currency: input.price.currency.toLowerCase(), metadata };
  if (input.method === undefined || input.method === 'card')
    return { ...base, automatic_payment_methods: { enabled: true } };
  return {
    ...base,
    allowed_payment_method_types: [input.method],
    payment_method_data: { type: input.method },
    confirm: true,
    ...(input.returnUrl !== undefined && { return_url: input.returnUrl }),
  };
}

/** Stripe's own default tolerance: an event signed more than 5 minutes ago is refused (replay guard). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/**
 * The Stripe idempotency key for a recharge: hashed from the user and the client's key, so it is
 * scoped to the user and always within Stripe's 255 characters, and a duplicate request (even one
 * racing the first) gets the same PaymentIntent.
 */
export function paymentIdempotencyKey(userId: string, clientKey: string): string {
  return `recharge-${derivedIdHex(userId, clientKey)}`;
}

/** Live secret and restricted keys start `sk_live_` / `rk_live_`; test keys `sk_test_` / `rk_test_`. */
export function isLiveSecretKey(secretKey: string): boolean {
  return /^(sk|rk)_live_/.test(secretKey);
}

type StripeErrorLike = { type?: unknown; code?: unknown; statusCode?: unknown };
function stripeErrorOf(error: unknown): StripeErrorLike {
  return typeof error === 'object' && error !== null ? (error as StripeErrorLike) : {};
}

export class StripePayments implements Payments {
  constructor(
    private readonly client: () => Promise<Stripe> = stripeClient,
    /**
     * The endpoint secrets to accept: Stripe signs Connect events (`account.updated`) for a
     * connected-accounts endpoint with a secret of its own, so there may be two.
     */
    private readonly webhookSecrets: () => Promise<string[]> = async () => {
      const secrets = await stripeSecrets();
      return [secrets.webhookSecret, ...(secrets.connectWebhookSecret ? [secrets.connectWebhookSecret] : [])];
    },
  ) {}

  async createPaymentIntent(input: CreatePaymentIntentInput): Promise<CreatedPaymentIntent> {
    const stripe = await this.client();
    try {
      const paymentIntent = await stripe.paymentIntents.create(paymentIntentParams(input), {
        idempotencyKey: paymentIdempotencyKey(input.userId, input.clientKey),
      });
      if (!paymentIntent.client_secret)
        throw new TransientDependencyError('Stripe returned a PaymentIntent without a client secret');
      const redirectUrl = paymentIntent.next_action?.redirect_to_url?.url ?? undefined;
      if (input.method !== undefined && METHOD_CONFIRMATION[input.method] === 'redirect' && !redirectUrl)
        throw new TransientDependencyError(`Stripe returned no redirect for a ${input.method} payment`);
      return {
        paymentIntentId: paymentIntent.id,
        clientSecret: paymentIntent.client_secret,
        ...(redirectUrl && { redirectUrl }),
      };
    } catch (error) {
      if (stripeErrorOf(error).type === 'StripeIdempotencyError') {
        throw new IdempotencyKeyReusedError('This Idempotency-Key was used with a different request.', {
          cause: error,
        });
      }
      if (error instanceof TransientDependencyError) throw error;
      throw new TransientDependencyError('Stripe did not create the PaymentIntent', { cause: error });
    }
  }

  async cancelPaymentIntent(paymentIntentId: string): Promise<CancelOutcome> {
    const stripe = await this.client();
    try {
      await stripe.paymentIntents.cancel(paymentIntentId, { cancellation_reason: 'abandoned' });
      return 'canceled';
    } catch (error) {
      const { code } = stripeErrorOf(error);
      if (code === 'resource_missing') return 'missing';
      if (code !== 'payment_intent_unexpected_state')
        throw new TransientDependencyError('Stripe did not cancel the PaymentIntent', { cause: error });
    }
    // It could not be cancelled: say why, from what it is now.
    const current = await stripe.paymentIntents.retrieve(paymentIntentId);
    if (current.status === 'canceled') return 'canceled';
    if (current.status === 'succeeded') return 'succeeded';
    return 'processing';
  }

  /** Whether this deployment runs on a live key: events whose `livemode` differs are not ours to apply. */
  async livemode(): Promise<boolean> {
    return isLiveSecretKey((await stripeSecrets()).secretKey);
  }

  async refundPayment(input: RefundInput): Promise<'refunded' | 'already_refunded'> {
    const stripe = await this.client();
    try {
      await stripe.refunds.create(
        {
          payment_intent: input.paymentIntentId,
          reason: 'requested_by_customer',
          metadata: { reason: input.reason, ...(input.caseId !== undefined && { caseId: input.caseId }) },
        },
        { idempotencyKey: input.idempotencyKey },
      );
      return 'refunded';
    } catch (error) {
      if (stripeErrorOf(error).code === 'charge_already_refunded') return 'already_refunded';
      throw new TransientDependencyError('Stripe did not refund the payment', { cause: error });
    }
  }

  async verifyWebhook(rawBody: string, signatureHeader: string | undefined): Promise<unknown> {
    if (signatureHeader === undefined || signatureHeader === '') {
      throw new ValidationError('The Stripe-Signature header is missing.', {
        details: [{ path: 'headers.stripe-signature', message: 'required' }],
      });
    }
    // A header without a timestamp and a v1 signature makes the SDK throw a plain Error
    // ("secureCompare must receive two arguments"): refuse it as the bad signature it is.
    if (!STRIPE_SIGNATURE_SHAPE.test(signatureHeader)) throw badSignature();
    const [stripe, secrets] = await Promise.all([this.client(), this.webhookSecrets()]);
    for (const secret of secrets) {
      try {
        return stripe.webhooks.constructEvent(rawBody, signatureHeader, secret, WEBHOOK_TOLERANCE_SECONDS);
      } catch (error) {
        if (stripeErrorOf(error).type !== 'StripeSignatureVerificationError') throw error;
      }
    }
    throw badSignature();
  }
}

/** `t=<unix seconds>` and at least one non-empty `v1=` signature, in any order. */
const STRIPE_SIGNATURE_SHAPE = /^(?=.*(?:^|,)t=\d+(?:,|$))(?=.*(?:^|,)v1=[0-9a-f]+(?:,|$)).{1,4096}$/;

function badSignature(): ValidationError {
  return new ValidationError('The Stripe signature does not match the body, or is too old.', {
    details: [{ path: 'headers.stripe-signature', message: 'signature verification failed' }],
  });
}

let payments: StripePayments | undefined;
/** The Stripe payments adapter, built once per cold start. */
export function stripePayments(): StripePayments {
  payments ??= new StripePayments();
  return payments;
}
