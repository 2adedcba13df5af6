import * as z from 'zod';
import { keys } from '../adapters/dynamo/keys';
import { offerItems } from '../adapters/dynamo/offer-items';
import {
  PENDING_RECHARGE_BUCKETS,
  pendingBeforeQuery,
  pendingStatusPk,
  rechargeItems,
} from '../adapters/dynamo/recharge-items';
import { derivedIdHex } from '../domain/derived-id';
import type { Item, LedgerStore, WriteOp } from '../ports/ledger-store';
import { walletFromItem } from '../adapters/dynamo/items';
import type { CancelOutcome, CreatedPaymentIntent, Payments } from '../adapters/payments';
import { emptyWallet } from '../domain/ledger';
import { type Offer, offerCoversCountry, offerIsOpen, offerTerms } from '../domain/offers';
import { type Confirmation, METHOD_CONFIRMATION, PAYMENT_METHODS, type PaymentMethod } from '../domain/payment-methods';
import { DEFAULT_PRICING, type PriceBreakdown, type PricingConfig, quote } from '../domain/pricing';
import { readOffer } from './offers';
import {
  type CoinPackage,
  currencyForCountry,
  findPackage,
  PACKAGE_COINS,
  packageId as packageIdFor,
} from '../domain/catalog';
import {
  AgeRestrictedError,
  BudgetExceededError,
  IdempotencyKeyReusedError,
  InvariantViolation,
  NotFoundError,
  OfferUnavailableError,
  PriceChangedError,
  RegionUnavailableError,
  TransientDependencyError,
  ValidationError,
  WalletLockedError,
} from '../domain/errors';
import { assertMaySpend, type Caller } from '../domain/identity';
import { consentCondition, consentHolds, type ConsentCondition } from './consent-condition';
import { CURRENCIES, type Money } from '../domain/money';
import { logger } from '../logger';
import { once, recordAnswerOp, type IdempotentRequest, type StoredAnswer } from './idempotency';
import { spentThisMonth, utcMonth } from './wallet';

/**
 * Recharges: a user buys a coin package. Creating one only opens a Stripe PaymentIntent and
 * records the recharge as pending; coins are minted by the verified `payment_intent.succeeded`
 * webhook alone (stripe-webhook.ts). A pending recharge counts toward the month's budget until it
 * fails or expires, so a user cannot open many payments at once to get around the budget.
 */

export const RECHARGE_STATUSES = ['pending', 'succeeded', 'failed', 'disputed'] as const;
export type RechargeStatus = (typeof RECHARGE_STATUSES)[number];

/** docs/API.md: a recharge still pending after 24 hours expires. */
export const RECHARGE_PENDING_LIFETIME_SECONDS = 24 * 60 * 60;
/** The expiry index's layout lives with the recharge item; desk.ts and the webhook name a recharge's bucket. */
export { PENDING_RECHARGE_BUCKETS, pendingStatusPk };
/** One sweep run expires at most this many, so it stays far inside its Lambda timeout; the next run takes the rest. */
export const MAX_EXPIRED_PER_RUN = 100;
/** Items read per index page by the sweep. */
export const EXPIRY_PAGE_SIZE = 50;
/** A state-changing write on a recharge retries this often when a concurrent write got there first. */
export const MAX_RECHARGE_WRITE_ATTEMPTS = 8;

export const IDEMPOTENCY_SCOPE_RECHARGE = 'recharge';
const PACKAGE_IDS = PACKAGE_COINS.map(packageIdFor);

/**
 * The recharge id is derived from the user and their Idempotency-Key, so two identical requests
 * racing each other agree on it, and so on the PaymentIntent's metadata (Stripe then sees the same
 * parameters under the same key and returns the same PaymentIntent).
 */
export function rechargeIdFor(userId: string, idempotencyKey: string): string {
  return `rc_${derivedIdHex(userId, idempotencyKey).slice(0, 32)}`;
}

/** A recharge as stored; every item read back is parsed, never cast. */
const wholeNumber = z.number().int().nonnegative();
export const rechargeRecord = z.object({
  rechargeId: z.string().min(1),
  userId: z.string().min(1),
  status: z.enum(RECHARGE_STATUSES),
  coins: wholeNumber,
  priceMinor: wholeNumber,
  currency: z.enum(CURRENCIES),
  packageId: z.string().min(1),
  paymentIntentId: z.string().min(1),
  createdAt: z.string().min(1),
  /** The UTC month whose budget this recharge counts toward (YYYY-MM). */
  budgetMonth: z.string().regex(/^\d{4}-\d{2}$/),
  /** Optimistic concurrency: every state change conditions on the version it read. */
  version: wholeNumber,
  /** Coins taken back (or recorded as owed) so far for disputes and refunds of this payment. */
  clawedCoins: wholeNumber.default(0),
  /** The charge's cumulative refunded amount, as the latest `charge.refunded` said. */
  refundedMinor: wholeNumber.default(0),
  /** Dispute id -> disputed amount; a dispute counts once, however often it is delivered. */
  disputes: z.record(z.string(), wholeNumber).default({}),
  /** Disputes closed in the platform's favour: they no longer count toward the clawback. */
  wonDisputes: z.record(z.string(), z.literal(true)).default({}),
  /**
   * Whether the month's budget counts this recharge's price. Absent on items written before the
   * flag existed, when "pending" was the only state that held it (see holdsBudget).
   */
  budgetHeld: z.boolean().optional(),
  /** When `payment_intent.payment_failed` said the card was declined; the payment may still be retried. */
  declinedAt: z.string().optional(),
  creditedAt: z.string().optional(),
  /**
   * Set by the support desk before it asks Stripe to refund this payment (shared/usecases/desk.ts):
   * the refund's `charge.refunded` then knows it as the desk's and does not lock the wallet.
   */
  deskRefund: z.object({ caseId: z.string().min(1), requestedAt: z.string() }).optional(),
  /** Set when the payment succeeded but the budget could not hold it: refunded, never credited. */
  overBudgetRefund: z.object({ decidedAt: z.string(), limitMinor: wholeNumber.nullable() }).optional(),
  // Issue 13. Items written before these fields existed were card payments at the price list's
  // price, with no fee, no offer and no bonus: the defaults say exactly that.
  method: z.enum(PAYMENT_METHODS).default('card'),
  /** The package at the price list's price; absent on older items, where it was the whole price. */
  coinsValueMinor: wholeNumber.optional(),
  discountMinor: wholeNumber.default(0),
  platformFeeMinor: wholeNumber.default(0),
  methodFeeMinor: wholeNumber.default(0),
  /** Bonus coins of the offer this recharge was created under: credited with the coins, as their own entry. */
  bonusCoins: wholeNumber.default(0),
  offerId: z.string().optional(),
  /** Holds the user's first-recharge offer (keys.firstRechargeOffer) until paid, or released on cancel or expiry. */
  firstRechargeOffer: z.boolean().default(false),
  /** Answered with the breakdown (the request named a method or an offer, or a fee applies); else v1's shape. */
  itemized: z.boolean().default(false),
});
export type RechargeRecord = z.infer<typeof rechargeRecord>;

export function parseRecharge(item: Item): RechargeRecord {
  const parsed = rechargeRecord.safeParse(item);
  if (!parsed.success)
    throw new InvariantViolation(`recharge item ${String(item.pk)} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

/** Credited recharges: their coins were minted. */
export function isCredited(recharge: RechargeRecord): boolean {
  return recharge.status === 'succeeded' || recharge.status === 'disputed';
}

/**
 * Whether the month's budget counts this recharge: from its creation until its PaymentIntent is
 * cancelled or expires (a declined payment can still be retried at Stripe, so it keeps counting),
 * and for good once credited. Items from before `budgetHeld` existed held it while pending.
 */
export function holdsBudget(recharge: RechargeRecord): boolean {
  if (isCredited(recharge)) return true;
  return recharge.budgetHeld ?? recharge.status === 'pending';
}

/**
 * The coins to take back for what has been disputed or refunded of this payment so far: the
 * same share of the package as of the money, rounded down (a partial refund in proportion,
 * rounded down), never more than the package. A dispute the platform won no longer counts. Computed from cumulative amounts, so
 * a late, duplicate or out-of-order event can only raise it to the same figure.
 */
export function clawbackTarget(
  recharge: Pick<RechargeRecord, 'coins' | 'priceMinor' | 'refundedMinor' | 'disputes' | 'wonDisputes'> &
    Partial<Pick<RechargeRecord, 'bonusCoins'>>,
): number {
  const parts = clawbackParts(recharge);
  return parts.coins + parts.bonusCoins;
}

/**
 * The same, split: base coins and bonus coins are each taken back in the money's proportion,
 * each rounded down (docs/API.md, Stripe webhook). Neither part can pass what was credited of it.
 */
export function clawbackParts(
  recharge: Pick<RechargeRecord, 'coins' | 'priceMinor' | 'refundedMinor' | 'disputes' | 'wonDisputes'> &
    Partial<Pick<RechargeRecord, 'bonusCoins'>>,
): { coins: number; bonusCoins: number } {
  if (recharge.priceMinor === 0) return { coins: 0, bonusCoins: 0 };
  const disputedMinor = Object.entries(recharge.disputes).reduce(
    (sum, [disputeId, amount]) => (recharge.wonDisputes[disputeId] ? sum : sum + amount),
    0,
  );
  const takenMinor = Math.min(recharge.priceMinor, recharge.refundedMinor + disputedMinor);
  return {
    coins: Math.floor((recharge.coins * takenMinor) / recharge.priceMinor),
    bonusCoins: Math.floor(((recharge.bonusCoins ?? 0) * takenMinor) / recharge.priceMinor),
  };
}

/** The receipt's extra fields, on itemized recharges only (see `itemized`). */
export interface RechargeReceipt {
  method: PaymentMethod;
  bonusCoins: number;
  offerId?: string;
  breakdown: PriceBreakdown;
}

export type RechargeCreated = {
  rechargeId: string;
  status: 'pending';
  coins: number;
  /** The all-in amount charged: the breakdown's total. */
  price: Money;
  payment: {
    provider: 'stripe';
    paymentIntentId: string;
    clientSecret: string;
    confirmation?: Confirmation;
    redirectUrl?: string;
  };
} & Partial<RechargeReceipt>;

export type RechargeView = {
  rechargeId: string;
  status: RechargeStatus;
  coins: number;
  price: Money;
  createdAt: string;
} & Partial<RechargeReceipt>;

export interface RechargeDeps {
  store: LedgerStore;
  payments: Pick<Payments, 'createPaymentIntent'>;
  now: () => Date;
  /** Methods and fees; the defaults (card, no fees) when absent. */
  pricing?: PricingConfig;
  /** Where a redirect method returns to when the request names no `returnUrl`. */
  defaultReturnUrl?: string | undefined;
}

export interface CreateRechargeInput {
  packageId: string;
  country?: string | undefined;
  method?: PaymentMethod | undefined;
  offerId?: string | undefined;
  returnUrl?: string | undefined;
  /** The all-in total the client showed: another currency is VALIDATION_FAILED, another amount PRICE_CHANGED. */
  expectedTotal?: Money | undefined;
}

/**
 * POST /v1/recharges. Checks in the contract's order (validation, wallet lock, age, region,
 * budget), all before any PaymentIntent exists; then the PaymentIntent (idempotent at Stripe),
 * then one transaction: recharge, PaymentIntent mapping, the month's budget (conditioned on the
 * limit, so concurrent recharges cannot pass it together), and the idempotency record.
 */
export async function createRecharge(
  deps: RechargeDeps,
  caller: Caller,
  input: CreateRechargeInput,
  idempotency: { key: string; fingerprint: string },
): Promise<StoredAnswer<RechargeCreated> & { replayed: boolean }> {
  // Validation. The price list is the token's country's; a body that names another is refused.
  if (!PACKAGE_IDS.includes(input.packageId)) {
    throw new ValidationError('Unknown package.', {
      details: [{ path: 'body.packageId', message: `one of ${PACKAGE_IDS.join(', ')}` }],
    });
  }
  if (input.country !== undefined && input.country.toUpperCase() !== caller.country) {
    throw new ValidationError("The country must be your account's country.", {
      details: [{ path: 'body.country', message: 'differs from the country of your account' }],
    });
  }
  const method = input.method ?? 'card';
  // A request in v1's shape (no method, offer or expected total) is answered in v1's shape.
  const itemize = input.method !== undefined || input.offerId !== undefined || input.expectedTotal !== undefined;
  const returnUrl = input.returnUrl ?? deps.defaultReturnUrl;
  if (METHOD_CONFIRMATION[method] === 'redirect' && returnUrl === undefined) {
    throw new ValidationError(`Paying with ${method} needs a returnUrl.`, {
      details: [{ path: 'body.returnUrl', message: `required with method ${method}` }],
    });
  }
  const now = deps.now();
  const request: IdempotentRequest = {
    userId: caller.userId,
    scope: IDEMPOTENCY_SCOPE_RECHARGE,
    key: idempotency.key,
    fingerprint: idempotency.fingerprint,
  };

  return once(deps.store, request, now, async () => {
    // The limit read here is conditioned on in the transaction: if the owner changes it meanwhile,
    // the checks run again against the new one.
    for (let attempt = 0; attempt < MAX_RECHARGE_WRITE_ATTEMPTS; attempt += 1) {
      try {
        return await openRecharge(deps, caller, { ...input, method, returnUrl, itemize }, request, now);
      } catch (error) {
        if (!(error instanceof ConcurrentChange)) throw error;
      }
    }
    throw new TransientDependencyError('the budget kept changing while the recharge was created; try again');
  });
}

/** What a recharge will be, decided by the checks before anything is written. */
interface PricedRecharge {
  coinPackage: CoinPackage;
  method: PaymentMethod;
  breakdown: PriceBreakdown;
  bonusCoins: number;
  offer: Offer | undefined;
  itemized: boolean;
}

/**
 * The offer and the method, in that order, after region: the offer the request names must exist
 * for this package (VALIDATION_FAILED otherwise), be open and cover the buyer (OFFER_UNAVAILABLE),
 * and a first-recharge offer must not be held or used already; then the method must be one the
 * buyer can pay with (PAYMENT_METHOD_UNAVAILABLE), and the total the one the client expects.
 */
async function priceRecharge(
  deps: RechargeDeps,
  caller: Caller & { country: string },
  input: CreateRechargeInput & { method: PaymentMethod; itemize: boolean },
  wallet: { rechargesCredited: number },
  now: Date,
): Promise<PricedRecharge> {
  const coinPackage = findPackage(caller.country, input.packageId);
  const offer = input.offerId === undefined ? undefined : await readOffer(deps.store, input.offerId);
  if (input.offerId !== undefined && (offer === undefined || offer.packageId !== coinPackage.id)) {
    throw new ValidationError('Unknown offer for this package.', {
      details: [{ path: 'body.offerId', message: `no offer '${input.offerId}' on ${coinPackage.id}` }],
    });
  }
  if (offer !== undefined) await assertOfferApplies(deps.store, offer, caller, wallet, now);
  const terms = offer === undefined ? { discountMinor: 0, bonusCoins: 0 } : offerTerms(offer, coinPackage);
  const pricing = deps.pricing ?? DEFAULT_PRICING;
  const breakdown = quote(pricing, caller.country, coinPackage, input.method, terms.discountMinor);
  if (input.expectedTotal !== undefined) {
    if (input.expectedTotal.currency !== breakdown.total.currency) {
      throw new ValidationError(`The price list of your country is in ${breakdown.total.currency}.`, {
        details: [{ path: 'body.expectedTotal.currency', message: `must be ${breakdown.total.currency}` }],
      });
    }
    if (input.expectedTotal.amount !== breakdown.total.amount)
      throw new PriceChangedError(`The total is now ${breakdown.total.amount} ${breakdown.total.currency}.`);
  }
  const itemized = input.itemize || breakdown.platformFee.amount > 0 || breakdown.methodFee.amount > 0;
  return { coinPackage, method: input.method, breakdown, bonusCoins: terms.bonusCoins, offer, itemized };
}

async function assertOfferApplies(
  store: LedgerStore,
  offer: Offer,
  caller: Caller & { country: string },
  wallet: { rechargesCredited: number },
  now: Date,
): Promise<void> {
  if (!offerIsOpen(offer, now)) throw new OfferUnavailableError('This offer is not running now.');
  if (!offerCoversCountry(offer, caller.country))
    throw new OfferUnavailableError('This offer is not available in your country.');
  if (!offer.firstRechargeOnly) return;
  if (wallet.rechargesCredited > 0) throw new OfferUnavailableError('This offer is for a first recharge only.');
  const claim = await store.getItem(keys.firstRechargeOffer(caller.userId), { consistent: true });
  if (claim?.rechargeId !== undefined)
    throw new OfferUnavailableError('Your first-recharge offer is already taken by another recharge.');
}

/** The month's budget against the total charged; the bound the transaction conditions on, if a limit is set. */
async function checkBudget(
  store: LedgerStore,
  caller: Caller,
  wallet: { monthlyLimit: Money | null },
  total: Money,
  now: Date,
): Promise<number | undefined> {
  if (wallet.monthlyLimit === null) return undefined;
  if (wallet.monthlyLimit.currency !== total.currency) {
    throw new BudgetExceededError(
      `Your monthly budget is set in ${wallet.monthlyLimit.currency}; set it again in ${total.currency}.`,
    );
  }
  const bound = spendBound(wallet.monthlyLimit.amount, total.amount);
  const spentMinor = await spentThisMonth(store, caller.userId, now, true);
  if (bound < 0 || spentMinor > bound) throw budgetExceeded();
  return bound;
}

/** One attempt at the checks and the recharge's transaction, against the wallet as read now. */
async function openRecharge(
  deps: RechargeDeps,
  caller: Caller,
  input: CreateRechargeInput & { method: PaymentMethod; itemize: boolean },
  request: IdempotentRequest,
  now: Date,
): Promise<StoredAnswer<RechargeCreated>> {
  const walletItem = await deps.store.getItem(keys.wallet(caller.userId), { consistent: true });
  const wallet = walletItem ? walletFromItem(caller.userId, walletItem) : emptyWallet(caller.userId);
  if (wallet.locked) throw new WalletLockedError('Your wallet is locked.');
  assertMaySpend(caller, now, wallet.appConsent ?? null);
  const country = caller.country;
  if (country === undefined) throw new RegionUnavailableError('Your account has no country, so no price list applies.');
  currencyForCountry(country);
  const rechargesCredited = typeof walletItem?.rechargesCredited === 'number' ? walletItem.rechargesCredited : 0;
  const priced = await priceRecharge(deps, { ...caller, country }, input, { rechargesCredited }, now);
  const budgetBoundMinor = await checkBudget(deps.store, caller, wallet, priced.breakdown.total, now);

  const rechargeId = rechargeIdFor(caller.userId, request.key);
  const paymentIntent = await deps.payments.createPaymentIntent({
    userId: caller.userId,
    clientKey: request.key,
    rechargeId,
    packageId: priced.coinPackage.id,
    coins: priced.coinPackage.coins,
    price: priced.breakdown.total,
    // Only what differs from a v1 card purchase, so those send Stripe exactly what they always did.
    ...(priced.method !== 'card' && { method: priced.method, returnUrl: input.returnUrl }),
    ...(priced.offer !== undefined && { offerId: priced.offer.offerId, bonusCoins: priced.bonusCoins }),
  });
  const answer = rechargeAnswer(rechargeId, priced, paymentIntent);
  const ops = openRechargeOps(deps.store, { caller, rechargeId, priced, paymentIntent, wallet, now });
  ops.unshift(recordAnswerOp(deps.store, request, answer, now));
  ops.push(
    budgetHoldOp(
      deps.store,
      { userId: caller.userId, budgetMonth: utcMonth(now), priceMinor: priced.breakdown.total.amount },
      priced.breakdown.total.currency,
      budgetBoundMinor,
    ),
  );
  // No fixed ClientRequestToken: a racing duplicate carries another createdAt, and DynamoDB would
  // refuse the same token with another payload; the idempotency record decides between them.
  await deps.store.transactWrite(ops);
  return answer;
}

function rechargeAnswer(
  rechargeId: string,
  priced: PricedRecharge,
  paymentIntent: CreatedPaymentIntent,
): StoredAnswer<RechargeCreated> {
  const payment: RechargeCreated['payment'] = {
    provider: 'stripe',
    paymentIntentId: paymentIntent.paymentIntentId,
    clientSecret: paymentIntent.clientSecret,
  };
  const body: RechargeCreated = {
    rechargeId,
    status: 'pending',
    coins: priced.coinPackage.coins,
    price: priced.breakdown.total,
    payment,
  };
  if (priced.itemized) {
    payment.confirmation = METHOD_CONFIRMATION[priced.method];
    if (paymentIntent.redirectUrl !== undefined) payment.redirectUrl = paymentIntent.redirectUrl;
    Object.assign(body, receiptOf(priced.method, priced.bonusCoins, priced.offer?.offerId, priced.breakdown));
  }
  return { status: 201, body };
}

function receiptOf(
  method: PaymentMethod,
  bonusCoins: number,
  offerId: string | undefined,
  breakdown: PriceBreakdown,
): RechargeReceipt {
  return { method, bonusCoins, ...(offerId !== undefined && { offerId }), breakdown };
}

/** The recharge's transaction, but for the idempotency record and the budget. */
function openRechargeOps(
  store: LedgerStore,
  opening: {
    caller: Caller;
    rechargeId: string;
    priced: PricedRecharge;
    paymentIntent: CreatedPaymentIntent;
    wallet: { monthlyLimit: Money | null };
    now: Date;
  },
): WriteOp[] {
  const { caller, rechargeId, priced, paymentIntent, now } = opening;
  const { breakdown, offer } = priced;
  const createdAt = now.toISOString();
  const firstRechargeOffer = offer?.firstRechargeOnly === true;
  const keyTaken = () => new IdempotencyKeyReusedError('This Idempotency-Key was already used for another recharge.');
  const recharge = {
    rechargeId,
    userId: caller.userId,
    status: 'pending',
    coins: priced.coinPackage.coins,
    priceMinor: breakdown.total.amount,
    currency: breakdown.total.currency,
    packageId: priced.coinPackage.id,
    paymentIntentId: paymentIntent.paymentIntentId,
    createdAt,
    budgetMonth: utcMonth(now),
    budgetHeld: true,
    version: 0,
    clawedCoins: 0,
    refundedMinor: 0,
    disputes: {},
    wonDisputes: {},
    method: priced.method,
    coinsValueMinor: breakdown.coins.amount,
    discountMinor: breakdown.discount.amount,
    platformFeeMinor: breakdown.platformFee.amount,
    methodFeeMinor: breakdown.methodFee.amount,
    bonusCoins: priced.bonusCoins,
    ...(offer !== undefined && { offerId: offer.offerId }),
    firstRechargeOffer,
    itemized: priced.itemized,
  };
  const ops: WriteOp[] = [
    rechargeItems.opened(store, recharge, keyTaken),
    rechargeItems.paymentIntentLinked(
      store,
      { paymentIntentId: paymentIntent.paymentIntentId, rechargeId, userId: caller.userId },
      keyTaken,
    ),
    walletCheckOp(store, caller.userId, opening.wallet.monthlyLimit, firstRechargeOffer, consentCondition(caller, now)),
  ];
  if (offer !== undefined) ops.push(...offerHoldOps(store, caller.userId, rechargeId, offer, now));
  return ops;
}

/**
 * Unlocked, the same budget as read, a teenager's consent still holding, and for a first-recharge
 * offer, no recharge credited yet.
 */
function walletCheckOp(
  store: LedgerStore,
  userId: string,
  limit: Money | null,
  firstRechargeOffer: boolean,
  consent: ConsentCondition | undefined,
): WriteOp {
  return rechargeItems.walletAllowsRecharge(
    store,
    userId,
    {
      limit,
      firstRechargeOffer,
      consent,
    },
    (old) => {
      if (old?.locked === true) return new WalletLockedError('Your wallet is locked.');
      if (!consentHolds(consent, old))
        return new AgeRestrictedError('Under the age of majority, buying and gifting need parental consent.');
      if (firstRechargeOffer && typeof old?.rechargesCredited === 'number' && old.rechargesCredited > 0)
        return new OfferUnavailableError('This offer is for a first recharge only.');
      return new ConcurrentChange('monthly limit');
    },
  );
}

/**
 * The offer is still not ended when the recharge is written (an operator may end it in between),
 * and a first-recharge offer is reserved for this recharge: of two requests racing for it, the
 * second's transaction fails here and it is told the offer is taken.
 */
function offerHoldOps(store: LedgerStore, userId: string, rechargeId: string, offer: Offer, now: Date): WriteOp[] {
  const ops: WriteOp[] = [
    offerItems.stillRunning(
      store,
      offer.offerId,
      now.toISOString(),
      () => new OfferUnavailableError('This offer has ended.'),
    ),
  ];
  if (offer.firstRechargeOnly) {
    ops.push(
      offerItems.firstRechargeReserved(
        store,
        userId,
        { rechargeId, offerId: offer.offerId },
        () => new OfferUnavailableError('Your first-recharge offer is already taken by another recharge.'),
      ),
    );
  }
  return ops;
}

/** Releases a first-recharge offer this recharge holds (cancelled, expired, or refunded over budget). */
export function offerReleaseOps(store: LedgerStore, recharge: RechargeRecord): WriteOp[] {
  if (!recharge.firstRechargeOffer) return [];
  return [
    // Only if this recharge holds it: another one's reservation is never released here.
    offerItems.firstRechargeReleased(
      store,
      recharge.userId,
      recharge.rechargeId,
      () => new ConcurrentChange('first-recharge offer'),
    ),
  ];
}

/**
 * DynamoDB conditions cannot add, so "spent + price <= limit" becomes "spent <= limit - price".
 * A negative bound means the price alone passes the limit.
 */
export function spendBound(limitMinor: number, priceMinor: number): number {
  return limitMinor - priceMinor;
}

/**
 * Adds a recharge's price to its month. With a bound, the condition is in the write, so
 * concurrent recharges and credits cannot pass the limit together.
 */
export function budgetHoldOp(
  store: LedgerStore,
  recharge: Pick<RechargeRecord, 'userId' | 'budgetMonth' | 'priceMinor'>,
  currency: string,
  boundMinor: number | undefined,
  /** What a month that cannot hold it means here: a refused request, or (for a payment already made) a refund. */
  onFull: () => Error = budgetExceeded,
): WriteOp {
  return rechargeItems.budgetHeld(store, recharge, currency, boundMinor, onFull);
}

export function budgetExceeded(): BudgetExceededError {
  return new BudgetExceededError('This recharge would pass your monthly budget.');
}

export function rechargeView(recharge: RechargeRecord): RechargeView {
  const view: RechargeView = {
    rechargeId: recharge.rechargeId,
    status: recharge.status,
    coins: recharge.coins,
    price: { amount: recharge.priceMinor, currency: recharge.currency },
    createdAt: recharge.createdAt,
  };
  if (!recharge.itemized) return view;
  return { ...view, ...receiptOf(recharge.method, recharge.bonusCoins, recharge.offerId, breakdownOf(recharge)) };
}

/** The recharge's breakdown as it was quoted and charged: the receipt. */
export function breakdownOf(recharge: RechargeRecord): PriceBreakdown {
  const amount = (minor: number): Money => ({ amount: minor, currency: recharge.currency });
  return {
    coins: amount(recharge.coinsValueMinor ?? recharge.priceMinor),
    discount: amount(recharge.discountMinor),
    platformFee: amount(recharge.platformFeeMinor),
    methodFee: amount(recharge.methodFeeMinor),
    total: amount(recharge.priceMinor),
  };
}

/** GET /v1/recharges/{id}: someone else's recharge is NOT_FOUND, so its existence never leaks. */
export async function getRecharge(
  deps: { store: LedgerStore },
  caller: Caller,
  rechargeId: string,
): Promise<RechargeView> {
  const item = await deps.store.getItem(keys.recharge(rechargeId), { consistent: true });
  if (!item) throw new NotFoundError('No such recharge.');
  const recharge = parseRecharge(item);
  if (recharge.userId !== caller.userId) throw new NotFoundError('No such recharge.');
  return rechargeView(recharge);
}

/** Thrown inside a recharge transaction when another write changed the recharge or wallet first. */
export class ConcurrentChange extends Error {
  constructor(what: string) {
    super(`${what} changed concurrently`);
    this.name = 'ConcurrentChange';
  }
}

/** The op that moves a recharge from the version it was read at to its next state. */
export function rechargeTransitionOp(
  store: LedgerStore,
  recharge: RechargeRecord,
  set: Record<string, unknown>,
  options: { leavePendingIndex?: boolean } = {},
): WriteOp {
  return rechargeItems.transition(store, recharge, set, options, () => new ConcurrentChange('recharge'));
}

/** Reads a recharge consistently; undefined when there is none. */
export async function readRecharge(store: LedgerStore, rechargeId: string): Promise<RechargeRecord | undefined> {
  const item = await store.getItem(keys.recharge(rechargeId), { consistent: true });
  return item ? parseRecharge(item) : undefined;
}

/**
 * `payment_intent.payment_failed`: the card was declined. The recharge shows `failed`, but its
 * PaymentIntent can still be paid (Stripe allows a retry from `requires_payment_method`), so its
 * price keeps counting toward the month and it stays in the expiry index until it is cancelled.
 * `extraOps` (the webhook's event marker) ride along. Anything but pending is left as it is.
 */
export async function declineRecharge(
  store: LedgerStore,
  rechargeId: string,
  at: Date,
  extraOps: () => WriteOp[] = () => [],
): Promise<'declined' | 'unchanged'> {
  return transitionRecharge(store, rechargeId, (recharge) => {
    if (recharge.status !== 'pending') return undefined;
    return [
      ...extraOps(),
      rechargeTransitionOp(store, recharge, { status: 'failed', declinedAt: at.toISOString(), budgetHeld: true }),
    ];
  }).then((done) => (done ? 'declined' : 'unchanged'));
}

/**
 * `payment_intent.canceled`, or the expiry after the PaymentIntent was cancelled: a recharge that
 * was never credited becomes failed for good and stops counting toward its month. Idempotent:
 * the price is released once, however often (and in whatever order) this runs.
 */
export async function cancelRecharge(
  store: LedgerStore,
  rechargeId: string,
  extraOps: () => WriteOp[] = () => [],
): Promise<'canceled' | 'unchanged'> {
  return transitionRecharge(store, rechargeId, (recharge) => {
    if (isCredited(recharge) || recharge.overBudgetRefund !== undefined || !holdsBudget(recharge)) return undefined;
    return [
      ...extraOps(),
      rechargeTransitionOp(store, recharge, { status: 'failed', budgetHeld: false }, { leavePendingIndex: true }),
      budgetReleaseOp(store, recharge),
      ...offerReleaseOps(store, recharge),
    ];
  }).then((done) => (done ? 'canceled' : 'unchanged'));
}

/**
 * Reads the recharge, asks `plan` for the transaction that moves it on (undefined: nothing to do),
 * and applies it; a concurrent write to the recharge means read again, a bounded number of times.
 */
async function transitionRecharge(
  store: LedgerStore,
  rechargeId: string,
  plan: (recharge: RechargeRecord) => WriteOp[] | undefined,
): Promise<boolean> {
  for (let attempt = 0; attempt < MAX_RECHARGE_WRITE_ATTEMPTS; attempt += 1) {
    const recharge = await readRecharge(store, rechargeId);
    const ops = recharge && plan(recharge);
    if (!ops) return false;
    try {
      await store.transactWrite(ops);
      return true;
    } catch (error) {
      if (error instanceof ConcurrentChange) continue;
      throw error;
    }
  }
  throw new ConcurrentChange(`recharge ${rechargeId} after ${MAX_RECHARGE_WRITE_ATTEMPTS} attempts`);
}

/** A cancelled or expired recharge, or one refunded over budget, stops counting toward its month. */
export function budgetReleaseOp(store: LedgerStore, recharge: RechargeRecord): WriteOp {
  return rechargeItems.budgetReleased(
    store,
    recharge,
    (old) =>
      new InvariantViolation(
        `budget month ${recharge.budgetMonth} of ${recharge.userId} holds ${String(old?.spentMinor)}, less than recharge ${recharge.rechargeId}`,
      ),
  );
}

const pendingIndexItem = z.object({
  rechargeId: z.string().min(1),
  paymentIntentId: z.string().min(1),
  createdAt: z.string(),
});

export interface ExpiryDeps {
  store: LedgerStore;
  payments: Pick<Payments, 'cancelPaymentIntent' | 'refundPayment'>;
  now: () => Date;
  /** Finishes the refunds a support-desk case still owes (shared/usecases/desk.ts completeDeskRefunds). */
  finishDeskRefund?: (caseId: string) => Promise<void>;
}

/**
 * The expiry sweep (a schedule) over the recharges index, whose entries older than 24 hours are:
 * - pending or declined recharges: the PaymentIntent is cancelled and the recharge fails, which
 *   releases its budget. A PaymentIntent that turns out to be paid is left to its `succeeded`
 *   webhook; one still processing is looked at again on the next run.
 * - over-budget refunds whose `charge.refunded` never came: the refund is asked for again
 *   (idempotent at Stripe), so a crash between the decision and the refund cannot keep the money.
 * - support-desk refunds still owed a day after their case closed (the resolve crashed and was
 *   never sent again): the desk's own completion runs, idempotent like the resolve's replay.
 */
export async function expirePendingRecharges(
  deps: ExpiryDeps,
  limits: { maxPerRun: number } = { maxPerRun: MAX_EXPIRED_PER_RUN },
): Promise<{ expired: number; skipped: number; refunded: number }> {
  const cutoff = new Date(deps.now().getTime() - RECHARGE_PENDING_LIFETIME_SECONDS * 1000).toISOString();
  const tally = { expired: 0, skipped: 0, refunded: 0 };
  let seen = 0;
  for (let bucket = 0; bucket < PENDING_RECHARGE_BUCKETS && seen < limits.maxPerRun; bucket += 1) {
    let startKey: Parameters<LedgerStore['query']>[0]['exclusiveStartKey'];
    do {
      const page = await deps.store.query(
        pendingBeforeQuery(bucket, cutoff, Math.min(EXPIRY_PAGE_SIZE, limits.maxPerRun - seen), startKey),
      );
      startKey = page.lastEvaluatedKey;
      for (const raw of page.items) {
        seen += 1;
        const parsed = pendingIndexItem.safeParse(raw);
        if (!parsed.success) {
          logger.error('malformed pending recharge in the index', { pk: String(raw.pk) });
          tally.skipped += 1;
          continue;
        }
        tally[await expireOne(deps, parsed.data.rechargeId)] += 1;
      }
    } while (startKey && seen < limits.maxPerRun);
  }
  return tally;
}

async function expireOne(deps: ExpiryDeps, rechargeId: string): Promise<'expired' | 'skipped' | 'refunded'> {
  const recharge = await readRecharge(deps.store, rechargeId);
  if (recharge?.deskRefund !== undefined && recharge.refundedMinor < recharge.priceMinor)
    return finishDeskRefund(deps, recharge.deskRefund.caseId);
  if (!recharge || isCredited(recharge)) return 'skipped';
  if (recharge.overBudgetRefund !== undefined) {
    if (recharge.refundedMinor >= recharge.priceMinor) return 'skipped';
    await deps.payments.refundPayment({
      paymentIntentId: recharge.paymentIntentId,
      idempotencyKey: overBudgetRefundKey(recharge.rechargeId),
      reason: 'over_budget',
    });
    return 'refunded';
  }
  const outcome: CancelOutcome = await deps.payments.cancelPaymentIntent(recharge.paymentIntentId);
  if (outcome === 'succeeded' || outcome === 'processing') return 'skipped';
  return (await cancelRecharge(deps.store, rechargeId)) === 'canceled' ? 'expired' : 'skipped';
}

/** One desk refund that Stripe keeps refusing must not stop the sweep's other work: logged, left for the next run. */
async function finishDeskRefund(deps: ExpiryDeps, caseId: string): Promise<'refunded' | 'skipped'> {
  if (!deps.finishDeskRefund) return 'skipped';
  try {
    await deps.finishDeskRefund(caseId);
    return 'refunded';
  } catch (error) {
    logger.error('desk refund still owed', { caseId, error: error instanceof Error ? error.name : String(error) });
    return 'skipped';
  }
}

/** Stripe's idempotency key for a recharge's over-budget refund: one refund, however often it is asked for. */
export function overBudgetRefundKey(rechargeId: string): string {
  return `over-budget-refund-${rechargeId}`;
}
