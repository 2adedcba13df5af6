import type Stripe from 'stripe';
import { InvariantViolation, TransientDependencyError } from '../domain/errors';
import type { Money } from '../domain/money';
import { sha256Hex } from './dynamo/keys';
import { stripeClient } from './stripe-client';

/**
 * The Stripe Connect port: what the payout use cases need from Stripe (a creator's connected
 * account, its onboarding link, and transfers to it), and nothing else. Every error leaves here
 * classified: TransientDependencyError (retry later: 5xx, 429, timeouts, lock conflicts),
 * PermanentTransferError (this transfer can never succeed: the payout fails and is reversed), or
 * InvariantViolation (something that must not happen and must not be guessed about).
 */
export interface ConnectAccount {
  accountId: string;
  payoutsEnabled: boolean;
}

export interface TransferRequest {
  payoutId: string;
  userId: string;
  accountId: string;
  amount: Money;
}

export interface TransferMade {
  transferId: string;
}

export interface ConnectPayouts {
  /** Creates the creator's Express account; the same user gets the same account for Stripe's 24 h key memory. */
  createAccount(input: { userId: string; country?: string }): Promise<ConnectAccount>;
  /** A fresh onboarding link (Stripe's links expire after minutes, so each call makes a new one). */
  createAccountLink(accountId: string): Promise<{ url: string }>;
  /** The payout id is the idempotency key and the transfer group: a repeat can never pay twice. */
  createTransfer(request: TransferRequest): Promise<TransferMade>;
  /** The transfer already made for a payout, for payouts older than Stripe's idempotency memory. */
  findTransferByGroup(payoutId: string): Promise<TransferMade | undefined>;
}

/** The transfer can never succeed as asked (invalid or disabled destination): the payout fails. */
export class PermanentTransferError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PermanentTransferError';
  }
}

/** The idempotency key of a creator's account creation: derived from the user, within Stripe's 255 characters. */
export function accountIdempotencyKey(userId: string): string {
  return `payout-account-${sha256Hex(userId)}`;
}

/** Stripe's list page limit: a payout has one transfer, a few is plenty to see a duplicate. */
const TRANSFER_LOOKUP_LIMIT = 10;

/** Invalid-request codes that are about the platform, not the creator's account: worth retrying later. */
const RETRYABLE_INVALID_REQUEST_CODES = new Set(['balance_insufficient', 'lock_timeout', 'rate_limit']);

export type StripeErrorClass = 'transient' | 'permanent' | 'invariant';

interface StripeErrorShape {
  type?: unknown;
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
}

/**
 * Transient: the request may or may not have run; the same idempotency key retried later is safe.
 * Permanent: Stripe refused the request itself (a 4xx about the destination or the parameters).
 * Invariant: an idempotency conflict (the same payout id with other parameters) or our own
 * credentials refused; neither is the creator's fault, so the payout must not be reversed on it.
 */
export function classifyStripeError(error: unknown): StripeErrorClass {
  const shape: StripeErrorShape = typeof error === 'object' && error !== null ? (error as StripeErrorShape) : {};
  switch (shape.type) {
    case 'StripeAPIError':
    case 'StripeRateLimitError':
    case 'StripeConnectionError':
      return 'transient';
    case 'StripeInvalidRequestError':
    case 'StripeCardError':
      return typeof shape.code === 'string' && RETRYABLE_INVALID_REQUEST_CODES.has(shape.code)
        ? 'transient'
        : 'permanent';
    case 'StripeIdempotencyError':
    case 'StripeAuthenticationError':
    case 'StripePermissionError':
      return 'invariant';
    default:
      // Not a Stripe answer at all (an abort, a socket reset): nothing says the request did not run.
      return 'transient';
  }
}

function rethrowClassified(error: unknown, what: string): never {
  const shape: StripeErrorShape = typeof error === 'object' && error !== null ? (error as StripeErrorShape) : {};
  switch (classifyStripeError(error)) {
    case 'transient':
      throw new TransientDependencyError(`Stripe: ${what} failed for now`, { cause: error });
    case 'permanent':
      throw new PermanentTransferError(
        typeof shape.code === 'string' ? shape.code : 'invalid_request',
        `Stripe refused ${what}`,
        { cause: error },
      );
    case 'invariant':
      throw new InvariantViolation(`Stripe: ${what} refused (${String(shape.type)}); an operator must look`, {
        cause: error,
      });
  }
}

export class StripeConnectPayouts implements ConnectPayouts {
  constructor(
    private readonly client: () => Promise<Pick<Stripe, 'accounts' | 'accountLinks' | 'transfers'>> = stripeClient,
    private readonly onboarding: { returnUrl?: string; refreshUrl?: string } = {},
  ) {}

  async createAccount(input: { userId: string; country?: string }): Promise<ConnectAccount> {
    const stripe = await this.client();
    try {
      const account = await stripe.accounts.create(
        {
          type: 'express',
          // The same parameters on every call, so a retry within 24 h replays the first account.
          ...(input.country !== undefined && { country: input.country }),
          capabilities: { transfers: { requested: true } },
          metadata: { userId: input.userId },
        },
        { idempotencyKey: accountIdempotencyKey(input.userId) },
      );
      return { accountId: account.id, payoutsEnabled: account.payouts_enabled === true };
    } catch (error) {
      return rethrowClassified(error, 'creating the payout account');
    }
  }

  async createAccountLink(accountId: string): Promise<{ url: string }> {
    const stripe = await this.client();
    try {
      const link = await stripe.accountLinks.create({
        account: accountId,
        type: 'account_onboarding',
        ...(this.onboarding.returnUrl !== undefined && { return_url: this.onboarding.returnUrl }),
        ...(this.onboarding.refreshUrl !== undefined && { refresh_url: this.onboarding.refreshUrl }),
      });
      return { url: link.url };
    } catch (error) {
      return rethrowClassified(error, 'creating the onboarding link');
    }
  }

  async createTransfer(request: TransferRequest): Promise<TransferMade> {
    if (request.amount.currency !== 'USD')
      throw new InvariantViolation(`payouts are in USD, got ${request.amount.currency}`);
    const stripe = await this.client();
    try {
      const transfer = await stripe.transfers.create(
        {
          amount: request.amount.amount,
          currency: 'usd',
          destination: request.accountId,
          // The group and metadata find this transfer again after Stripe forgets the key (24 h).
          transfer_group: request.payoutId,
          metadata: { payoutId: request.payoutId, userId: request.userId },
        },
        { idempotencyKey: request.payoutId },
      );
      return { transferId: transfer.id };
    } catch (error) {
      return rethrowClassified(error, `transfer for ${request.payoutId}`);
    }
  }

  async findTransferByGroup(payoutId: string): Promise<TransferMade | undefined> {
    const stripe = await this.client();
    let page: Stripe.ApiList<Stripe.Transfer>;
    try {
      page = await stripe.transfers.list({ transfer_group: payoutId, limit: TRANSFER_LOOKUP_LIMIT });
    } catch (error) {
      // A failed lookup must never turn into a new transfer: whatever the error, try again later.
      throw new TransientDependencyError(`Stripe: looking up the transfer of ${payoutId} failed`, { cause: error });
    }
    // Any transfer of the group is this payout's, reversed or not: a second one is never made.
    if (page.data.length > 1)
      throw new InvariantViolation(`payout ${payoutId} has ${page.data.length} transfers at Stripe`);
    const [transfer] = page.data;
    return transfer ? { transferId: transfer.id } : undefined;
  }
}
