/** Errors in words a person understands. */
import { MIN_PAYOUT_DIAMONDS_HINT } from './limits';

const PLAIN_WORDS: Readonly<Record<string, string>> = {
  VALIDATION_FAILED: 'Something in the form is not right.',
  PAYLOAD_TOO_LARGE: 'That is too much to send at once.',
  IDEMPOTENCY_KEY_REQUIRED: 'The page could not send that safely. Please try again.',
  UNAUTHORIZED: 'Your session has expired. Please sign in again.',
  FORBIDDEN: 'You are not allowed to do that.',
  AGE_RESTRICTED: "You're too young for this",
  BUDGET_SET_BY_GUARDIAN: 'Your guardian set this budget: you can lower it, but not raise or remove it.',
  CONFLICT: 'That was already decided.',
  REGION_UNAVAILABLE: 'Coins are not sold in your country yet.',
  NOT_FOUND: 'We could not find that.',
  INSUFFICIENT_COINS: 'Not enough coins — buy more',
  INSUFFICIENT_DIAMONDS: 'You do not have that many diamonds available.',
  BUDGET_EXCEEDED: "You've reached your monthly budget",
  STREAM_NOT_LIVE: 'This stream is not live any more.',
  SELF_GIFT: 'You cannot send gifts to your own stream.',
  PAYOUT_ACCOUNT_MISSING: 'Link a payout account first.',
  PAYOUT_LIMIT_EXCEEDED: 'That is over the daily payout limit. Try a smaller amount, or tomorrow.',
  IDEMPOTENCY_KEY_REUSED: 'That request was already used for something else. Please try again.',
  BELOW_MINIMUM_PAYOUT: `Payouts start at ${MIN_PAYOUT_DIAMONDS_HINT.toLocaleString('en')} diamonds, in whole cents.`,
  WALLET_LOCKED: 'Your wallet is locked.',
  RATE_LIMITED: 'Slow down a little and try again in a moment.',
  INTERNAL: 'Something went wrong on our side. Please try again.',
  NETWORK: 'Cannot reach the server. Check your connection.',
  UNEXPECTED_RESPONSE: 'The server answered something this page does not understand.',
};

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details: ReadonlyArray<{ path: string; message: string }> = [],
    readonly correlationId?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function plainWords(error: unknown): string {
  if (!(error instanceof ApiError)) return PLAIN_WORDS.INTERNAL ?? 'Something went wrong.';
  let text = PLAIN_WORDS[error.code] ?? error.message;
  if (error.code === 'VALIDATION_FAILED' && error.details.length > 0) {
    text += ` ${error.details.map((detail) => `${detail.path.replace(/^(body|query|path)\./, '')}: ${detail.message}`).join('; ')}.`;
  }
  if (error.code === 'RATE_LIMITED' && error.retryAfterSeconds !== undefined)
    text += ` (in ${error.retryAfterSeconds} s)`;
  if (error.code === 'INTERNAL' && error.correlationId) text += ` Reference: ${error.correlationId}.`;
  return text;
}
