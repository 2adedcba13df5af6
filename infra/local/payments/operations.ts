import { ownEntry } from './state';
import {
  newId,
  unixSeconds,
  type Account,
  type Charge,
  type Dispute,
  type PaymentIntent,
  type Refund,
  type State,
} from './state';
import type { DeliveryResult, WebhookDispatcher } from './webhooks';

/*
 * What a customer or a creator does on Stripe's side (pays, fails, disputes, is refunded, finishes
 * onboarding), each answered by the signed event Stripe would send. Every function changes the
 * state before its first await, so two concurrent calls see each other's effect.
 */

export class StandInError extends Error {
  constructor(
    readonly statusCode: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
    this.name = 'StandInError';
  }
}

export interface OperationsContext {
  state: State;
  dispatcher: WebhookDispatcher;
}

/** Triggers whose event is sent once and re-sent on repeat, as Stripe's retries re-send one event id. */
const succeededTrigger = (paymentIntentId: string): string => `payment_intent.succeeded:${paymentIntentId}`;
const disputeTrigger = (paymentIntentId: string): string => `charge.dispute.created:${paymentIntentId}`;
const onboardedTrigger = (accountId: string): string => `account.onboarded:${accountId}`;
const closedTrigger = (paymentIntentId: string): string => `charge.dispute.closed:${paymentIntentId}`;

function requirePaymentIntent(state: State, id: string): PaymentIntent {
  const paymentIntent = ownEntry(state.paymentIntents, id);
  if (paymentIntent === undefined) throw new StandInError(404, `No such payment_intent: '${id}'`);
  return paymentIntent;
}

function succeededCharge(state: State, paymentIntent: PaymentIntent, action: string): Charge {
  const charge =
    paymentIntent.latest_charge === null ? undefined : ownEntry(state.charges, paymentIntent.latest_charge);
  if (paymentIntent.status !== 'succeeded' || charge === undefined) {
    throw new StandInError(
      409,
      `Cannot ${action} ${paymentIntent.id}: it has status ${paymentIntent.status}, not succeeded`,
    );
  }
  return charge;
}

function resend(context: OperationsContext, trigger: string): Promise<DeliveryResult> | null {
  const eventId = context.state.eventIdByTrigger[trigger];
  return eventId === undefined ? null : context.dispatcher.deliver(eventId);
}

function emit(
  context: OperationsContext,
  trigger: string | null,
  type: string,
  object: Record<string, unknown>,
  extra?: Parameters<WebhookDispatcher['record']>[2],
): Promise<DeliveryResult> {
  const event = context.dispatcher.record(type, object, extra);
  if (trigger !== null) context.state.eventIdByTrigger[trigger] = event.id;
  return context.dispatcher.deliver(event.id);
}

const CARD_DECLINED = {
  type: 'card_error',
  code: 'card_declined',
  decline_code: 'generic_decline',
  message: 'Your card was declined.',
};

export async function succeedPayment(context: OperationsContext, paymentIntentId: string): Promise<DeliveryResult> {
  const { state } = context;
  const paymentIntent = requirePaymentIntent(state, paymentIntentId);
  if (paymentIntent.status === 'succeeded') {
    const again = resend(context, succeededTrigger(paymentIntentId));
    if (again !== null) return again;
  }
  if (paymentIntent.status === 'canceled') {
    throw new StandInError(409, `Cannot succeed ${paymentIntentId}: it was canceled`);
  }
  const charge: Charge = {
    id: newId('ch'),
    object: 'charge',
    amount: paymentIntent.amount,
    amount_captured: paymentIntent.amount,
    amount_refunded: 0,
    captured: true,
    created: unixSeconds(),
    currency: paymentIntent.currency,
    disputed: false,
    livemode: false,
    metadata: { ...paymentIntent.metadata },
    paid: true,
    payment_intent: paymentIntent.id,
    refunded: false,
    refunds: { object: 'list', data: [], has_more: false, total_count: 0, url: '' },
    status: 'succeeded',
  };
  charge.refunds.url = `/v1/charges/${charge.id}/refunds`;
  state.charges[charge.id] = charge;
  paymentIntent.status = 'succeeded';
  paymentIntent.next_action = null;
  paymentIntent.amount_received = paymentIntent.amount;
  paymentIntent.latest_charge = charge.id;
  paymentIntent.last_payment_error = null;
  paymentIntent.payment_method = newId('pm');
  return emit(context, succeededTrigger(paymentIntentId), 'payment_intent.succeeded', paymentIntent);
}

export async function failPayment(context: OperationsContext, paymentIntentId: string): Promise<DeliveryResult> {
  const paymentIntent = requirePaymentIntent(context.state, paymentIntentId);
  if (paymentIntent.status === 'canceled') {
    throw new StandInError(409, `Cannot fail ${paymentIntentId}: it was canceled`);
  }
  if (paymentIntent.status === 'succeeded') {
    // Stripe's events arrive in any order: this is an earlier attempt's failure landing after the
    // success. The PaymentIntent stays succeeded; only the event says otherwise, as it would then.
    const earlierAttempt: PaymentIntent = {
      ...structuredClone(paymentIntent),
      status: 'requires_payment_method',
      amount_received: 0,
      latest_charge: null,
      payment_method: null,
      last_payment_error: CARD_DECLINED,
    };
    return emit(context, null, 'payment_intent.payment_failed', earlierAttempt);
  }
  // A redirect payment declined at the method (or after it settled late) needs a new attempt, as Stripe has it.
  paymentIntent.status = 'requires_payment_method';
  paymentIntent.next_action = null;
  paymentIntent.last_payment_error = CARD_DECLINED;
  paymentIntent.payment_method = null;
  return emit(context, null, 'payment_intent.payment_failed', paymentIntent);
}

/** What Stripe reports when the customer leaves PayPal's page without approving. */
const REDIRECT_CANCELLED = {
  type: 'invalid_request_error',
  code: 'payment_intent_payment_attempt_failed',
  message: 'The customer cancelled the payment at the redirect.',
};

function requireAtRedirect(context: OperationsContext, paymentIntentId: string): PaymentIntent {
  const paymentIntent = requirePaymentIntent(context.state, paymentIntentId);
  if (paymentIntent.status !== 'requires_action')
    throw new StandInError(409, `${paymentIntentId} is not waiting at a redirect (status ${paymentIntent.status})`);
  return paymentIntent;
}

/** The customer approves at the method's page: the payment succeeds at once. */
export async function approveAtRedirect(context: OperationsContext, paymentIntentId: string): Promise<DeliveryResult> {
  requireAtRedirect(context, paymentIntentId);
  return succeedPayment(context, paymentIntentId);
}

/**
 * The customer approves, but the money settles later: the PaymentIntent is `processing`
 * (`payment_intent.processing`), and `succeed` (or `fail`) settles it afterwards.
 */
export async function approveAtRedirectLate(
  context: OperationsContext,
  paymentIntentId: string,
): Promise<DeliveryResult> {
  const paymentIntent = requireAtRedirect(context, paymentIntentId);
  paymentIntent.status = 'processing';
  paymentIntent.next_action = null;
  return emit(context, null, 'payment_intent.processing', paymentIntent);
}

/** The customer cancels at the method's page: the attempt fails and the PaymentIntent waits for another. */
export async function cancelAtRedirect(context: OperationsContext, paymentIntentId: string): Promise<DeliveryResult> {
  const paymentIntent = requireAtRedirect(context, paymentIntentId);
  paymentIntent.status = 'requires_payment_method';
  paymentIntent.next_action = null;
  paymentIntent.payment_method = null;
  paymentIntent.last_payment_error = REDIRECT_CANCELLED;
  return emit(context, null, 'payment_intent.payment_failed', paymentIntent);
}

export async function disputePayment(
  context: OperationsContext,
  paymentIntentId: string,
  amountMinor?: number,
): Promise<DeliveryResult> {
  const { state } = context;
  const paymentIntent = requirePaymentIntent(state, paymentIntentId);
  const charge = succeededCharge(state, paymentIntent, 'dispute');
  const again = resend(context, disputeTrigger(paymentIntentId));
  if (again !== null) return again;
  const amount = amountMinor ?? charge.amount;
  if (!Number.isSafeInteger(amount) || amount < 1 || amount > charge.amount) {
    throw new StandInError(400, `Dispute amount must be an integer from 1 to ${charge.amount}, got ${amount}`);
  }
  const dispute: Dispute = {
    id: newId('dp'),
    object: 'dispute',
    amount,
    charge: charge.id,
    created: unixSeconds(),
    currency: charge.currency,
    is_charge_refundable: false,
    livemode: false,
    metadata: {},
    payment_intent: paymentIntent.id,
    reason: 'fraudulent',
    status: 'needs_response',
  };
  state.disputes[dispute.id] = dispute;
  charge.disputed = true;
  return emit(context, disputeTrigger(paymentIntentId), 'charge.dispute.created', dispute);
}

/**
 * Closes the payment's dispute as the card network decided: `won` (the platform keeps the money)
 * or `lost`. Closing it again re-sends the same event, as Stripe's retries do.
 */
export async function closeDispute(
  context: OperationsContext,
  paymentIntentId: string,
  outcome: 'won' | 'lost',
): Promise<DeliveryResult> {
  const { state } = context;
  const disputeEventId = state.eventIdByTrigger[disputeTrigger(paymentIntentId)];
  const disputeEvent = disputeEventId === undefined ? undefined : ownEntry(state.events, disputeEventId);
  const disputeId = disputeEvent === undefined ? undefined : String((disputeEvent.data.object as { id?: unknown }).id);
  const dispute = disputeId === undefined ? undefined : ownEntry(state.disputes, disputeId);
  if (dispute === undefined) throw new StandInError(409, `Cannot close a dispute of ${paymentIntentId}: it has none`);
  const again = resend(context, closedTrigger(paymentIntentId));
  if (again !== null) return again;
  if (dispute.status === 'won' || dispute.status === 'lost')
    throw new StandInError(409, `The dispute of ${paymentIntentId} is already ${dispute.status}`);
  const previousAttributes = { status: dispute.status };
  dispute.status = outcome;
  return emit(context, closedTrigger(paymentIntentId), 'charge.dispute.closed', dispute, { previousAttributes });
}

/** Cancels a payment that was never paid, as the customer abandoning checkout would; Stripe sends `payment_intent.canceled`. */
export async function cancelPayment(context: OperationsContext, paymentIntentId: string): Promise<DeliveryResult> {
  const paymentIntent = requirePaymentIntent(context.state, paymentIntentId);
  if (paymentIntent.status !== 'requires_payment_method' && paymentIntent.status !== 'requires_action') {
    throw new StandInError(409, `Cannot cancel ${paymentIntentId}: it has status ${paymentIntent.status}`);
  }
  paymentIntent.status = 'canceled';
  paymentIntent.next_action = null;
  paymentIntent.canceled_at = unixSeconds();
  paymentIntent.cancellation_reason = 'abandoned';
  return emit(context, null, 'payment_intent.canceled', paymentIntent);
}

/**
 * Refunds part or the rest of a succeeded charge, synchronously (the API route and the control
 * route both use it); the caller sends the `charge.refunded` event it returns the pieces of.
 */
export function applyRefund(
  state: State,
  paymentIntent: PaymentIntent,
  options: { amountMinor?: number | undefined; reason?: string | null; metadata?: Record<string, string> },
): { charge: Charge; refund: Refund; previousAttributes: Record<string, unknown> } {
  const charge = succeededCharge(state, paymentIntent, 'refund');
  const refundableMinor = charge.amount - charge.amount_refunded;
  if (refundableMinor === 0) throw new StandInError(409, `Cannot refund ${paymentIntent.id}: it is fully refunded`);
  const amount = options.amountMinor ?? refundableMinor;
  if (!Number.isSafeInteger(amount) || amount < 1 || amount > refundableMinor) {
    throw new StandInError(400, `Refund amount must be an integer from 1 to ${refundableMinor}, got ${amount}`);
  }
  const refund: Refund = {
    id: newId('re'),
    object: 'refund',
    amount,
    charge: charge.id,
    created: unixSeconds(),
    currency: charge.currency,
    metadata: options.metadata ?? {},
    payment_intent: paymentIntent.id,
    reason: options.reason ?? null,
    status: 'succeeded',
  };
  const previousAttributes = { amount_refunded: charge.amount_refunded, refunded: charge.refunded };
  charge.refunds.data.unshift(refund); // Stripe lists newest first
  charge.refunds.total_count += 1;
  charge.amount_refunded += amount;
  charge.refunded = charge.amount_refunded === charge.amount;
  return { charge, refund, previousAttributes };
}

export async function refundPayment(
  context: OperationsContext,
  paymentIntentId: string,
  amountMinor?: number,
): Promise<DeliveryResult> {
  const paymentIntent = requirePaymentIntent(context.state, paymentIntentId);
  const { charge, previousAttributes } = applyRefund(context.state, paymentIntent, { amountMinor });
  return emit(context, null, 'charge.refunded', charge, { previousAttributes });
}

export async function completeOnboarding(context: OperationsContext, accountId: string): Promise<DeliveryResult> {
  const account: Account | undefined = ownEntry(context.state.accounts, accountId);
  if (account === undefined) throw new StandInError(404, `No such account: '${accountId}'`);
  if (account.payouts_enabled) {
    const again = resend(context, onboardedTrigger(accountId));
    if (again !== null) return again;
  }
  const previousAttributes = {
    capabilities: structuredClone(account.capabilities),
    charges_enabled: account.charges_enabled,
    details_submitted: account.details_submitted,
    payouts_enabled: account.payouts_enabled,
    requirements: structuredClone(account.requirements),
  };
  account.capabilities.transfers = 'active';
  account.charges_enabled = true;
  account.details_submitted = true;
  account.payouts_enabled = true;
  account.requirements = { currently_due: [], disabled_reason: null };
  return emit(context, onboardedTrigger(accountId), 'account.updated', account, {
    account: accountId,
    previousAttributes,
  });
}
