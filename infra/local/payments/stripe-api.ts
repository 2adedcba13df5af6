import { ownEntry } from './state';
import * as z from 'zod';
import type { FormObject, FormValue } from './form';
import {
  newId,
  randomAlphanumeric,
  unixSeconds,
  type Account,
  type PaymentIntent,
  type State,
  type Transfer,
} from './state';
import type { WebhookDispatcher } from './webhooks';
import { applyRefund } from './operations';

/*
 * The Stripe endpoints the app calls, as plain synchronous functions over the in-memory state:
 * no await between reading and changing the state, so concurrent requests cannot interleave.
 * The HTTP layer (index.ts) does auth, idempotency, faults and persistence around them.
 */

export type StripeErrorType = 'invalid_request_error' | 'idempotency_error' | 'api_error' | 'rate_limit_error';

export interface StripeErrorBody {
  error: { type: StripeErrorType; code?: string; param?: string; message: string };
}

export class StripeApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: StripeErrorType,
    message: string,
    readonly details: {
      code?: string;
      param?: string;
      /** Stripe stores no idempotent result when a request fails validation before the endpoint runs. */
      storable?: boolean;
    } = {},
  ) {
    super(message);
    this.name = 'StripeApiError';
  }

  get storable(): boolean {
    return this.details.storable ?? true;
  }

  body(): StripeErrorBody {
    const { code, param } = this.details;
    return {
      error: {
        type: this.type,
        ...(code === undefined ? {} : { code }),
        ...(param === undefined ? {} : { param }),
        message: this.message,
      },
    };
  }
}

function resourceMissing(status: 400 | 404, objectName: string, id: string, param?: string): StripeApiError {
  return new StripeApiError(status, 'invalid_request_error', `No such ${objectName}: '${id}'`, {
    code: 'resource_missing',
    ...(param === undefined ? {} : { param }),
  });
}

// ---- parameter parsing ---------------------------------------------------------------------

/** Stripe's amount limit: eight digits in the smallest currency unit. */
const MAX_AMOUNT_MINOR = 99_999_999;
/** Stripe's metadata limits. */
const MAX_METADATA_KEYS = 50;
const MAX_METADATA_KEY_LENGTH = 40;
const MAX_METADATA_VALUE_LENGTH = 500;
/** Stripe's list pages: 10 by default, at most 100. */
const DEFAULT_LIST_LIMIT = 10;
const MAX_LIST_LIMIT = 100;
/** Account links expire after a few minutes at Stripe. */
const ACCOUNT_LINK_LIFETIME_SECONDS = 300;
/** Stripe's client secrets end in 25 random characters. */
const CLIENT_SECRET_RANDOM_CHARS = 25;

const integerParam = z.string().regex(/^\d+$/, 'must be an integer').transform(Number);
const amountParam = integerParam.pipe(z.number().int().min(1).max(MAX_AMOUNT_MINOR));
const currencyParam = z
  .string()
  .regex(/^[A-Za-z]{3}$/, 'must be a three-letter ISO currency code')
  .transform((currency) => currency.toLowerCase());
const booleanParam = z.enum(['true', 'false']).transform((value) => value === 'true');
const textParam = z.string().max(5000);
// An empty metadata value means "no such key" at Stripe.
const metadataParam = z
  .record(z.string().min(1).max(MAX_METADATA_KEY_LENGTH), z.string().max(MAX_METADATA_VALUE_LENGTH))
  .refine((metadata) => Object.keys(metadata).length <= MAX_METADATA_KEYS, `at most ${MAX_METADATA_KEYS} keys`)
  .transform((metadata) => Object.fromEntries(Object.entries(metadata).filter(([, value]) => value !== '')))
  .optional();
const expandParam = z.array(z.string()).optional();
/** Nested option hashes the stand-in accepts and ignores (they change nothing it simulates). */
const ignoredHash = z.record(z.string(), z.custom<FormValue>()).optional();

const createPaymentIntentParams = z.strictObject({
  amount: amountParam,
  currency: currencyParam,
  metadata: metadataParam,
  automatic_payment_methods: z
    .strictObject({ enabled: booleanParam, allow_redirects: z.enum(['always', 'never']).optional() })
    .optional(),
  payment_method_types: z.array(z.string()).optional(),
  // The current API's name for the same list, as the SDK sends it.
  allowed_payment_method_types: z.array(z.string()).optional(),
  payment_method_data: z.strictObject({ type: z.string() }).optional(),
  confirm: booleanParam.optional(),
  return_url: z.string().optional(),
  capture_method: z.enum(['automatic', 'automatic_async', 'manual']).optional(),
  customer: z.string().optional(),
  description: textParam.optional(),
  receipt_email: z.string().optional(),
  statement_descriptor_suffix: z.string().max(22).optional(),
  transfer_group: z.string().optional(),
  expand: expandParam,
});

const cancelPaymentIntentParams = z.strictObject({
  cancellation_reason: z.enum(['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned']).optional(),
  expand: expandParam,
});

const createRefundParams = z.strictObject({
  payment_intent: z.string().min(1),
  amount: amountParam.optional(),
  reason: z.enum(['duplicate', 'fraudulent', 'requested_by_customer']).optional(),
  metadata: metadataParam,
  expand: expandParam,
});

const createAccountParams = z.strictObject({
  type: z.enum(['express', 'standard', 'custom']).optional(),
  country: z
    .string()
    .regex(/^[A-Za-z]{2}$/)
    .optional(),
  email: z.string().optional(),
  business_type: z.enum(['individual', 'company', 'non_profit', 'government_entity']).optional(),
  default_currency: currencyParam.optional(),
  metadata: metadataParam,
  capabilities: z.record(z.string(), z.strictObject({ requested: booleanParam })).optional(),
  controller: ignoredHash,
  business_profile: ignoredHash,
  settings: ignoredHash,
  tos_acceptance: ignoredHash,
  expand: expandParam,
});

const createAccountLinkParams = z.strictObject({
  account: z.string(),
  type: z.enum(['account_onboarding', 'account_update']),
  refresh_url: z.string().optional(),
  return_url: z.string().optional(),
  collect: z.enum(['currently_due', 'eventually_due']).optional(),
  collection_options: ignoredHash,
  expand: expandParam,
});

const createTransferParams = z.strictObject({
  amount: amountParam,
  currency: currencyParam,
  destination: z.string(),
  transfer_group: z.string().optional(),
  metadata: metadataParam,
  description: textParam.optional(),
  source_transaction: z.string().optional(),
  source_type: z.enum(['bank_account', 'card', 'fpx']).optional(),
  expand: expandParam,
});

const listTransfersParams = z.strictObject({
  limit: integerParam.pipe(z.number().int().min(1).max(MAX_LIST_LIMIT)).optional(),
  transfer_group: z.string().optional(),
  destination: z.string().optional(),
  starting_after: z.string().optional(),
  ending_before: z.string().optional(),
  expand: expandParam,
});

const retrieveParams = z.strictObject({ expand: expandParam });

/** `['metadata', 'order']` -> `metadata[order]`, the name Stripe's messages use. */
function paramName(path: readonly PropertyKey[]): string {
  const [head, ...rest] = path.map(String);
  return `${head ?? ''}${rest.map((segment) => `[${segment}]`).join('')}`;
}

function valueAt(params: FormObject, path: readonly PropertyKey[]): FormValue | undefined {
  let value: FormValue | undefined = params;
  for (const segment of path) {
    if (value === undefined || typeof value === 'string') return undefined;
    value = Array.isArray(value) ? value[Number(segment)] : value[String(segment)];
  }
  return value;
}

function parseParams<T extends z.ZodType>(schema: T, params: FormObject): z.output<T> {
  const parsed = schema.safeParse(params);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const storable = false;
  if (issue === undefined) throw new StripeApiError(400, 'invalid_request_error', 'Invalid request', { storable });
  if (issue.code === 'unrecognized_keys') {
    const param = paramName([...issue.path, issue.keys[0] ?? '']);
    throw new StripeApiError(400, 'invalid_request_error', `Received unknown parameter: ${param}`, {
      code: 'parameter_unknown',
      param,
      storable,
    });
  }
  const param = paramName(issue.path);
  if (valueAt(params, issue.path) === undefined) {
    throw new StripeApiError(400, 'invalid_request_error', `Missing required param: ${param}.`, {
      code: 'parameter_missing',
      param,
      storable,
    });
  }
  throw new StripeApiError(400, 'invalid_request_error', `Invalid ${param}: ${issue.message}`, {
    code: 'parameter_invalid',
    param,
    storable,
  });
}

// ---- handlers --------------------------------------------------------------------------------

export interface ApiContext {
  state: State;
  dispatcher: WebhookDispatcher;
  /** The stand-in's own base URL, for onboarding links. */
  baseUrl: string;
}

export interface ApiResult {
  status: number;
  body: unknown;
}

type Handler = (context: ApiContext, params: FormObject, pathIds: string[]) => ApiResult;

const ok = (body: unknown): ApiResult => ({ status: 200, body });

function requirePaymentIntent(state: State, id: string): PaymentIntent {
  const paymentIntent = ownEntry(state.paymentIntents, id);
  if (paymentIntent === undefined) throw resourceMissing(404, 'payment_intent', id);
  return paymentIntent;
}

/**
 * The redirect methods the stand-in confirms server-side: the PaymentIntent waits in
 * `requires_action` on the stand-in's page for the method (payments/redirect.ts).
 */
const REDIRECT_METHODS: ReadonlySet<string> = new Set(['paypal']);

function redirectConfirmation(
  params: z.infer<typeof createPaymentIntentParams>,
  baseUrl: string,
  id: string,
): Pick<PaymentIntent, 'status' | 'next_action' | 'payment_method'> | undefined {
  if (params.confirm !== true) return undefined;
  const type = params.payment_method_data?.type;
  if (type === undefined || !REDIRECT_METHODS.has(type))
    throw new StripeApiError(
      400,
      'invalid_request_error',
      'The stand-in confirms only redirect methods (paypal) on creation.',
      {
        param: 'payment_method_data[type]',
      },
    );
  if (params.return_url === undefined || !/^https?:\/\//.test(params.return_url))
    throw new StripeApiError(400, 'invalid_request_error', 'A return_url is required to confirm a redirect payment.', {
      param: 'return_url',
    });
  return {
    status: 'requires_action',
    payment_method: newId('pm'),
    next_action: {
      type: 'redirect_to_url',
      redirect_to_url: { url: `${baseUrl}/redirect/${type}/${id}`, return_url: params.return_url },
    },
  };
}

const createPaymentIntent: Handler = ({ state, baseUrl }, raw) => {
  const params = parseParams(createPaymentIntentParams, raw);
  const id = newId('pi');
  const explicitTypes = params.allowed_payment_method_types ?? params.payment_method_types;
  const confirmation = redirectConfirmation(params, baseUrl, id);
  const paymentIntent: PaymentIntent = {
    id,
    object: 'payment_intent',
    amount: params.amount,
    amount_capturable: 0,
    amount_received: 0,
    // Since 2023-08-16 Stripe turns automatic payment methods on unless types are listed.
    automatic_payment_methods:
      explicitTypes === undefined ? { enabled: params.automatic_payment_methods?.enabled ?? true } : null,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: params.capture_method ?? 'automatic_async',
    client_secret: `${id}_secret_${randomAlphanumeric(CLIENT_SECRET_RANDOM_CHARS)}`,
    confirmation_method: 'automatic',
    created: unixSeconds(),
    currency: params.currency,
    customer: params.customer ?? null,
    description: params.description ?? null,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    metadata: params.metadata ?? {},
    payment_method: null,
    payment_method_types: explicitTypes ?? ['card'],
    receipt_email: params.receipt_email ?? null,
    status: 'requires_payment_method',
    transfer_group: params.transfer_group ?? null,
    next_action: null,
    ...confirmation,
  };
  state.paymentIntents[id] = paymentIntent;
  return ok(paymentIntent);
};

const retrievePaymentIntent: Handler = ({ state }, raw, [id = '']) => {
  parseParams(retrieveParams, raw);
  return ok(requirePaymentIntent(state, id));
};

const cancelPaymentIntent: Handler = ({ state, dispatcher }, raw, [id = '']) => {
  const params = parseParams(cancelPaymentIntentParams, raw);
  const paymentIntent = requirePaymentIntent(state, id);
  if (paymentIntent.status !== 'requires_payment_method' && paymentIntent.status !== 'requires_action') {
    throw new StripeApiError(
      400,
      'invalid_request_error',
      `You cannot cancel this PaymentIntent because it has a status of ${paymentIntent.status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.`,
      { code: 'payment_intent_unexpected_state' },
    );
  }
  paymentIntent.status = 'canceled';
  paymentIntent.next_action = null;
  paymentIntent.canceled_at = unixSeconds();
  paymentIntent.cancellation_reason = params.cancellation_reason ?? null;
  dispatcher.deliverSoon(dispatcher.record('payment_intent.canceled', paymentIntent).id);
  return ok(paymentIntent);
};

/** POST /v1/refunds by payment_intent: whatever is left of the charge, or `amount`; Stripe then sends `charge.refunded`. */
const createRefund: Handler = ({ state, dispatcher }, raw) => {
  const params = parseParams(createRefundParams, raw);
  const paymentIntent = ownEntry(state.paymentIntents, params.payment_intent);
  if (paymentIntent === undefined)
    throw resourceMissing(400, 'payment_intent', params.payment_intent, 'payment_intent');
  const charge =
    paymentIntent.latest_charge === null ? undefined : ownEntry(state.charges, paymentIntent.latest_charge);
  if (paymentIntent.status !== 'succeeded' || charge === undefined) {
    throw new StripeApiError(
      400,
      'invalid_request_error',
      `This PaymentIntent (${paymentIntent.id}) does not have a successful charge to refund.`,
      { code: 'charge_not_refundable' },
    );
  }
  if (charge.amount_refunded >= charge.amount) {
    throw new StripeApiError(400, 'invalid_request_error', `Charge ${charge.id} has already been refunded.`, {
      code: 'charge_already_refunded',
    });
  }
  if (params.amount !== undefined && params.amount > charge.amount - charge.amount_refunded) {
    throw new StripeApiError(
      400,
      'invalid_request_error',
      `Refund amount (${params.amount}) is greater than unrefunded amount on charge.`,
      { code: 'amount_too_large', param: 'amount' },
    );
  }
  const { refund, previousAttributes } = applyRefund(state, paymentIntent, {
    amountMinor: params.amount,
    reason: params.reason ?? null,
    metadata: params.metadata ?? {},
  });
  dispatcher.deliverSoon(dispatcher.record('charge.refunded', charge, { previousAttributes }).id);
  return ok(refund);
};

const createAccount: Handler = ({ state }, raw) => {
  const params = parseParams(createAccountParams, raw);
  const account: Account = {
    id: newId('acct'),
    object: 'account',
    business_type: params.business_type ?? null,
    capabilities: { transfers: 'inactive' },
    charges_enabled: false,
    country: (params.country ?? 'US').toUpperCase(),
    created: unixSeconds(),
    default_currency: params.default_currency ?? 'usd',
    details_submitted: false,
    email: params.email ?? null,
    metadata: params.metadata ?? {},
    payouts_enabled: false,
    requirements: {
      currently_due: ['external_account', 'tos_acceptance.date'],
      disabled_reason: 'requirements.past_due',
    },
    type: params.type ?? 'express',
  };
  state.accounts[account.id] = account;
  return ok(account);
};

const retrieveAccount: Handler = ({ state }, raw, [id = '']) => {
  parseParams(retrieveParams, raw);
  const account = ownEntry(state.accounts, id);
  if (account === undefined) throw resourceMissing(404, 'account', id);
  return ok(account);
};

const createAccountLink: Handler = ({ state, baseUrl }, raw) => {
  const params = parseParams(createAccountLinkParams, raw);
  if (ownEntry(state.accounts, params.account) === undefined)
    throw resourceMissing(400, 'account', params.account, 'account');
  if (params.return_url !== undefined) state.onboardingReturnUrls[params.account] = params.return_url;
  const created = unixSeconds();
  return ok({
    object: 'account_link',
    created,
    expires_at: created + ACCOUNT_LINK_LIFETIME_SECONDS,
    url: `${baseUrl}/connect/onboarding/${encodeURIComponent(params.account)}`,
  });
};

const createTransfer: Handler = ({ state }, raw) => {
  const params = parseParams(createTransferParams, raw);
  const destination = ownEntry(state.accounts, params.destination);
  if (destination === undefined) throw resourceMissing(400, 'destination', params.destination, 'destination');
  if (!destination.payouts_enabled || destination.capabilities.transfers !== 'active') {
    throw new StripeApiError(
      400,
      'invalid_request_error',
      'Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments',
      { code: 'insufficient_capabilities_for_transfer', param: 'destination' },
    );
  }
  const id = newId('tr');
  const transfer: Transfer = {
    id,
    object: 'transfer',
    amount: params.amount,
    amount_reversed: 0,
    created: unixSeconds(),
    currency: params.currency,
    description: params.description ?? null,
    destination: destination.id,
    destination_payment: newId('py'),
    livemode: false,
    metadata: params.metadata ?? {},
    reversals: { object: 'list', data: [], has_more: false, total_count: 0, url: `/v1/transfers/${id}/reversals` },
    reversed: false,
    source_transaction: params.source_transaction ?? null,
    source_type: params.source_type ?? 'card',
    transfer_group: params.transfer_group ?? null,
  };
  state.transfers[id] = transfer;
  return ok(transfer);
};

const retrieveTransfer: Handler = ({ state }, raw, [id = '']) => {
  parseParams(retrieveParams, raw);
  const transfer = ownEntry(state.transfers, id);
  if (transfer === undefined) throw resourceMissing(404, 'transfer', id);
  return ok(transfer);
};

const listTransfers: Handler = ({ state }, raw) => {
  const params = parseParams(listTransfersParams, raw);
  const limit = params.limit ?? DEFAULT_LIST_LIMIT;
  // Newest first, as Stripe lists; the cursors are ids of the previous page's ends.
  let matching = Object.values(state.transfers)
    .reverse()
    .filter((transfer) => params.transfer_group === undefined || transfer.transfer_group === params.transfer_group)
    .filter((transfer) => params.destination === undefined || transfer.destination === params.destination);
  const cursor = params.starting_after ?? params.ending_before;
  if (cursor !== undefined) {
    const index = matching.findIndex((transfer) => transfer.id === cursor);
    if (index === -1)
      throw resourceMissing(
        400,
        'transfer',
        cursor,
        params.starting_after === undefined ? 'ending_before' : 'starting_after',
      );
    matching = params.starting_after === undefined ? matching.slice(0, index) : matching.slice(index + 1);
  }
  const page = params.ending_before === undefined ? matching.slice(0, limit) : matching.slice(-limit);
  return ok({ object: 'list', data: page, has_more: matching.length > page.length, url: '/v1/transfers' });
};

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handler: Handler;
}

const ID_SEGMENT = '([^/]+)';
const routes: Route[] = [
  { method: 'POST', pattern: /^\/v1\/payment_intents$/, handler: createPaymentIntent },
  { method: 'GET', pattern: new RegExp(`^/v1/payment_intents/${ID_SEGMENT}$`), handler: retrievePaymentIntent },
  { method: 'POST', pattern: new RegExp(`^/v1/payment_intents/${ID_SEGMENT}/cancel$`), handler: cancelPaymentIntent },
  { method: 'POST', pattern: /^\/v1\/refunds$/, handler: createRefund },
  { method: 'POST', pattern: /^\/v1\/accounts$/, handler: createAccount },
  { method: 'GET', pattern: new RegExp(`^/v1/accounts/${ID_SEGMENT}$`), handler: retrieveAccount },
  { method: 'POST', pattern: /^\/v1\/account_links$/, handler: createAccountLink },
  { method: 'POST', pattern: /^\/v1\/transfers$/, handler: createTransfer },
  { method: 'GET', pattern: /^\/v1\/transfers$/, handler: listTransfers },
  { method: 'GET', pattern: new RegExp(`^/v1/transfers/${ID_SEGMENT}$`), handler: retrieveTransfer },
];

export interface MatchedRoute {
  run(context: ApiContext, params: FormObject): ApiResult;
}

export function matchStripeRoute(method: string, path: string): MatchedRoute | null {
  for (const route of routes) {
    if (route.method !== method) continue;
    const match = route.pattern.exec(path);
    if (match === null) continue;
    let pathIds: string[];
    try {
      pathIds = match.slice(1).map((segment) => decodeURIComponent(segment));
    } catch {
      return null; // malformed percent-encoding names no object
    }
    return { run: (context, params) => route.handler(context, params, pathIds) };
  }
  return null;
}
