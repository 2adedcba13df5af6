/**
 * The one error table (API.md, "Errors"): every code the API answers, its HTTP status and when.
 * The error classes below take their status from it, and the HTTP answers, the WebSocket
 * answers, the OpenAPI document and the local docs page all read it, so a code cannot carry two
 * statuses. The order is the contract's (the page and the document list codes in this order).
 */
export const ERROR_TABLE = {
  VALIDATION_FAILED: { status: 400, when: 'body, query, path or header is malformed' },
  PAYLOAD_TOO_LARGE: { status: 413, when: 'the body is over 1 MiB' },
  IDEMPOTENCY_KEY_REQUIRED: { status: 400, when: 'a money-moving POST came without Idempotency-Key' },
  UNAUTHORIZED: { status: 401, when: 'missing, malformed, expired or wrongly signed token' },
  FORBIDDEN: { status: 403, when: 'authenticated, but not allowed to act on a resource it can see' },
  AGE_RESTRICTED: {
    status: 403,
    when: 'under 13, or under majority without parental consent, or under majority where majority is required',
  },
  REGION_UNAVAILABLE: { status: 403, when: 'the country has no price list' },
  BUDGET_SET_BY_GUARDIAN: {
    status: 403,
    when: 'a teenager raising or removing the monthly budget their guardian set (lowering it is allowed)',
  },
  NOT_FOUND: { status: 404, when: 'unknown id, or a private resource of someone else (its existence never leaks)' },
  INSUFFICIENT_COINS: { status: 409, when: 'a gift costs more than the spendable balance' },
  INSUFFICIENT_DIAMONDS: { status: 409, when: 'a payout asks for more than the available diamonds' },
  CONFLICT: {
    status: 409,
    when: 'the resource is no longer in a state that allows this (an invite already decided)',
  },
  BUDGET_EXCEEDED: { status: 409, when: "a recharge would pass the user's monthly budget" },
  STREAM_NOT_LIVE: { status: 409, when: 'a gift to a stream that has ended or never started' },
  SELF_GIFT: { status: 409, when: 'a creator gifting to their own stream' },
  PAYOUT_ACCOUNT_MISSING: { status: 409, when: 'payout requested before a linked, payouts-enabled account exists' },
  PAYOUT_LIMIT_EXCEEDED: { status: 409, when: "the payout would pass the creator's daily maximum (UTC day)" },
  PAYMENT_METHOD_UNAVAILABLE: {
    status: 409,
    when: "the payment method is not one this deployment offers in the buyer's country",
  },
  OFFER_UNAVAILABLE: {
    status: 409,
    when: "the offer is not running, not for the buyer's country, or a first-recharge offer already taken",
  },
  PRICE_CHANGED: { status: 409, when: 'the all-in total is not the `expectedTotal` the client showed' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, when: 'the same key was used with a different request' },
  BELOW_MINIMUM_PAYOUT: { status: 422, when: 'the payout is under the minimum, or not a whole number of cents' },
  WALLET_LOCKED: { status: 423, when: 'the wallet is locked (by its owner, or after a dispute)' },
  RATE_LIMITED: { status: 429, when: 'too many requests; Retry-After says when to come back' },
  INTERNAL: { status: 500, when: 'anything unexpected; logged with a correlation id that the body repeats' },
} as const satisfies Record<string, { status: number; when: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

/** The table as rows, in its order: what the document, the page and the fuzzer's checks list. */
export const API_ERRORS: ReadonlyArray<{ code: ErrorCode; status: number; when: string }> = Object.entries(
  ERROR_TABLE,
).map(([code, { status, when }]) => ({ code: code as ErrorCode, status, when }));

/**
 * Every refusal the API can give is a DomainError with the contract's code and status
 * (API.md, "Errors"). Handlers never build error bodies themselves: `shared/http/responses.ts`
 * (HTTP) and `shared/ws/route.ts` (WebSocket) map these in one place each, and anything that is
 * not a DomainError becomes a bare INTERNAL.
 */
export interface ErrorDetail {
  path: string;
  message: string;
}

export abstract class DomainError extends Error {
  /** INTERNAL is never a DomainError: it is what anything else becomes. */
  abstract readonly code: Exclude<ErrorCode, 'INTERNAL'>;
  readonly details?: ErrorDetail[];
  /** Seconds until the client may retry (RATE_LIMITED). */
  readonly retryAfterSeconds?: number;

  constructor(message: string, options?: { details?: ErrorDetail[]; cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.details !== undefined) this.details = options.details;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** The HTTP status of this refusal, read from the one table rather than written again per class. */
  get status(): number {
    return ERROR_TABLE[this.code].status;
  }
}

export class ValidationError extends DomainError {
  readonly code = 'VALIDATION_FAILED';
}
export class PayloadTooLargeError extends DomainError {
  readonly code = 'PAYLOAD_TOO_LARGE';
}
export class IdempotencyKeyRequiredError extends DomainError {
  readonly code = 'IDEMPOTENCY_KEY_REQUIRED';
}
export class UnauthorizedError extends DomainError {
  readonly code = 'UNAUTHORIZED';
}
export class ForbiddenError extends DomainError {
  readonly code = 'FORBIDDEN';
}
/** A guardian set this teenager's budget; the teenager may lower it, never raise or remove it. */
export class BudgetSetByGuardianError extends DomainError {
  readonly code = 'BUDGET_SET_BY_GUARDIAN';
}
/** The request is well formed but the resource is not in a state that allows it (an invite already decided). */
export class ConflictError extends DomainError {
  readonly code = 'CONFLICT';
}
export class AgeRestrictedError extends DomainError {
  readonly code = 'AGE_RESTRICTED';
}
export class RegionUnavailableError extends DomainError {
  readonly code = 'REGION_UNAVAILABLE';
}
export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND';
}
export class InsufficientCoinsError extends DomainError {
  readonly code = 'INSUFFICIENT_COINS';
}
export class InsufficientDiamondsError extends DomainError {
  readonly code = 'INSUFFICIENT_DIAMONDS';
}
export class BudgetExceededError extends DomainError {
  readonly code = 'BUDGET_EXCEEDED';
}
export class StreamNotLiveError extends DomainError {
  readonly code = 'STREAM_NOT_LIVE';
}
export class SelfGiftError extends DomainError {
  readonly code = 'SELF_GIFT';
}
export class PayoutAccountMissingError extends DomainError {
  readonly code = 'PAYOUT_ACCOUNT_MISSING';
}
export class PayoutLimitExceededError extends DomainError {
  readonly code = 'PAYOUT_LIMIT_EXCEEDED';
}
export class IdempotencyKeyReusedError extends DomainError {
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
}
export class BelowMinimumPayoutError extends DomainError {
  readonly code = 'BELOW_MINIMUM_PAYOUT';
}
export class WalletLockedError extends DomainError {
  readonly code = 'WALLET_LOCKED';
}
export class RateLimitedError extends DomainError {
  readonly code = 'RATE_LIMITED';
}

/**
 * A broken invariant or an unexpected state: never shown to a client (it becomes INTERNAL),
 * always logged. Throw it where continuing would move money wrongly.
 */
export class InvariantViolation extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvariantViolation';
  }
}

/** A dependency that failed in a way worth retrying (throttling, timeouts, 5xx). */
export class TransientDependencyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientDependencyError';
  }
}

/** Issue 13: a payment method that this deployment, or the buyer's currency, cannot take. */
export class PaymentMethodUnavailableError extends DomainError {
  readonly code = 'PAYMENT_METHOD_UNAVAILABLE';
}
/** Issue 13: an offer that exists but does not apply (ended, not yet started, another country, already used). */
export class OfferUnavailableError extends DomainError {
  readonly code = 'OFFER_UNAVAILABLE';
}
/** Issue 13: the all-in price is no longer the one the client showed (`expectedTotal`). */
export class PriceChangedError extends DomainError {
  readonly code = 'PRICE_CHANGED';
}
