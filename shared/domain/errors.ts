/**
 * Every refusal the API can give is a DomainError with the contract's code and status
 * (API.md, "Errors"). Handlers never build error bodies themselves: `shared/http/errors.ts`
 * maps these in one place, and anything that is not a DomainError becomes a bare 500.
 */
export interface ErrorDetail {
  path: string;
  message: string;
}

export abstract class DomainError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly details?: ErrorDetail[];
  /** Seconds until the client may retry (RATE_LIMITED). */
  readonly retryAfterSeconds?: number;

  constructor(message: string, options?: { details?: ErrorDetail[]; cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.details !== undefined) this.details = options.details;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export class ValidationError extends DomainError {
  readonly code = 'VALIDATION_FAILED';
  readonly status = 400;
}
export class PayloadTooLargeError extends DomainError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  readonly status = 413;
}
export class IdempotencyKeyRequiredError extends DomainError {
  readonly code = 'IDEMPOTENCY_KEY_REQUIRED';
  readonly status = 400;
}
export class UnauthorizedError extends DomainError {
  readonly code = 'UNAUTHORIZED';
  readonly status = 401;
}
export class ForbiddenError extends DomainError {
  readonly code = 'FORBIDDEN';
  readonly status = 403;
}
/** A guardian set this teenager's budget; the teenager may lower it, never raise or remove it. */
export class BudgetSetByGuardianError extends DomainError {
  readonly code = 'BUDGET_SET_BY_GUARDIAN';
  readonly status = 403;
}
/** The request is well formed but the resource is not in a state that allows it (an invite already decided). */
export class ConflictError extends DomainError {
  readonly code = 'CONFLICT';
  readonly status = 409;
}
export class AgeRestrictedError extends DomainError {
  readonly code = 'AGE_RESTRICTED';
  readonly status = 403;
}
export class RegionUnavailableError extends DomainError {
  readonly code = 'REGION_UNAVAILABLE';
  readonly status = 403;
}
export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND';
  readonly status = 404;
}
export class InsufficientCoinsError extends DomainError {
  readonly code = 'INSUFFICIENT_COINS';
  readonly status = 409;
}
export class InsufficientDiamondsError extends DomainError {
  readonly code = 'INSUFFICIENT_DIAMONDS';
  readonly status = 409;
}
export class BudgetExceededError extends DomainError {
  readonly code = 'BUDGET_EXCEEDED';
  readonly status = 409;
}
export class StreamNotLiveError extends DomainError {
  readonly code = 'STREAM_NOT_LIVE';
  readonly status = 409;
}
export class SelfGiftError extends DomainError {
  readonly code = 'SELF_GIFT';
  readonly status = 409;
}
export class PayoutAccountMissingError extends DomainError {
  readonly code = 'PAYOUT_ACCOUNT_MISSING';
  readonly status = 409;
}
export class PayoutLimitExceededError extends DomainError {
  readonly code = 'PAYOUT_LIMIT_EXCEEDED';
  readonly status = 409;
}
export class IdempotencyKeyReusedError extends DomainError {
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  readonly status = 422;
}
export class BelowMinimumPayoutError extends DomainError {
  readonly code = 'BELOW_MINIMUM_PAYOUT';
  readonly status = 422;
}
export class WalletLockedError extends DomainError {
  readonly code = 'WALLET_LOCKED';
  readonly status = 423;
}
export class RateLimitedError extends DomainError {
  readonly code = 'RATE_LIMITED';
  readonly status = 429;
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
  readonly status = 409;
}
/** Issue 13: an offer that exists but does not apply (ended, not yet started, another country, already used). */
export class OfferUnavailableError extends DomainError {
  readonly code = 'OFFER_UNAVAILABLE';
  readonly status = 409;
}
/** Issue 13: the all-in price is no longer the one the client showed (`expectedTotal`). */
export class PriceChangedError extends DomainError {
  readonly code = 'PRICE_CHANGED';
  readonly status = 409;
}
