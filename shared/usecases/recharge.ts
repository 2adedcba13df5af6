import * as z from 'zod';
import { conditions } from '../adapters/dynamo/conditions';
import { keys, shardFor } from '../adapters/dynamo/keys';
import { derivedIdHex } from '../domain/derived-id';
import type { Item, LedgerStore, WriteOp } from '../adapters/dynamo/ledger-store';
import type { CancelOutcome, Payments } from '../adapters/payments';
import { findPackage, PACKAGE_COINS, packageId as packageIdFor, currencyForCountry } from '../domain/catalog';
import {
  BudgetExceededError,
  IdempotencyKeyReusedError,
  InvariantViolation,
  NotFoundError,
  RegionUnavailableError,
  TransientDependencyError,
  ValidationError,
  WalletLockedError,
} from '../domain/errors';
import { assertMaySpend, type Caller } from '../domain/identity';
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

/** API.md: a recharge still pending after 24 hours expires. */
export const RECHARGE_PENDING_LIFETIME_SECONDS = 24 * 60 * 60;
/**
 * Pending recharges are listed in the sparse `byStatus` index under this many partitions, so the
 * index has no single hot key when many people open payments at once; the expiry sweep reads each.
 */
export const PENDING_RECHARGE_BUCKETS = 8;
/** One sweep run expires at most this many, so it stays far inside its Lambda timeout; the next run takes the rest. */
export const MAX_EXPIRED_PER_RUN = 100;
/** Items read per index page by the sweep. */
export const EXPIRY_PAGE_SIZE = 50;
/** A state-changing write on a recharge retries this often when a concurrent write got there first. */
export const MAX_RECHARGE_WRITE_ATTEMPTS = 8;

export const IDEMPOTENCY_SCOPE_RECHARGE = 'recharge';
const PACKAGE_IDS = PACKAGE_COINS.map(packageIdFor);

export function pendingStatusPk(rechargeId: string): string {
  return `RECHARGE_PENDING#${shardFor(rechargeId, PENDING_RECHARGE_BUCKETS)}`;
}

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
  /** Set when the payment succeeded but the budget could not hold it: refunded, never credited. */
  overBudgetRefund: z.object({ decidedAt: z.string(), limitMinor: wholeNumber.nullable() }).optional(),
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
  recharge: Pick<RechargeRecord, 'coins' | 'priceMinor' | 'refundedMinor' | 'disputes' | 'wonDisputes'>,
): number {
  if (recharge.priceMinor === 0) return 0;
  const disputedMinor = Object.entries(recharge.disputes).reduce(
    (sum, [disputeId, amount]) => (recharge.wonDisputes[disputeId] ? sum : sum + amount),
    0,
  );
  const takenMinor = Math.min(recharge.priceMinor, recharge.refundedMinor + disputedMinor);
  return Math.floor((recharge.coins * takenMinor) / recharge.priceMinor);
}

export interface RechargeCreated {
  rechargeId: string;
  status: 'pending';
  coins: number;
  price: Money;
  payment: { provider: 'stripe'; paymentIntentId: string; clientSecret: string };
}

export interface RechargeView {
  rechargeId: string;
  status: RechargeStatus;
  coins: number;
  price: Money;
  createdAt: string;
}

export interface RechargeDeps {
  store: LedgerStore;
  payments: Pick<Payments, 'createPaymentIntent'>;
  now: () => Date;
}

export interface CreateRechargeInput {
  packageId: string;
  country?: string | undefined;
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
        return await openRecharge(deps, caller, input.packageId, request, now);
      } catch (error) {
        if (!(error instanceof ConcurrentChange)) throw error;
      }
    }
    throw new TransientDependencyError('the budget kept changing while the recharge was created; try again');
  });
}

/** One attempt at the checks and the recharge's transaction, against the wallet as read now. */
async function openRecharge(
  deps: RechargeDeps,
  caller: Caller,
  packageId: string,
  request: IdempotentRequest,
  now: Date,
): Promise<StoredAnswer<RechargeCreated>> {
  const wallet = await deps.store.readWallet(caller.userId, { consistent: true });
  if (wallet.locked) throw new WalletLockedError('Your wallet is locked.');
  assertMaySpend(caller, now, wallet.appConsent ?? null);
  const country = caller.country;
  if (country === undefined) throw new RegionUnavailableError('Your account has no country, so no price list applies.');
  const currency = currencyForCountry(country);
  const coinPackage = findPackage(country, packageId);
  const priceMinor = coinPackage.price.amount;

  let budgetBoundMinor: number | undefined;
  if (wallet.monthlyLimit !== null) {
    if (wallet.monthlyLimit.currency !== currency) {
      throw new BudgetExceededError(
        `Your monthly budget is set in ${wallet.monthlyLimit.currency}; set it again in ${currency}.`,
      );
    }
    budgetBoundMinor = spendBound(wallet.monthlyLimit.amount, priceMinor);
    const spentMinor = await spentThisMonth(deps.store, caller.userId, now, true);
    if (budgetBoundMinor < 0 || spentMinor > budgetBoundMinor) throw budgetExceeded();
  }

  const rechargeId = rechargeIdFor(caller.userId, request.key);
  const paymentIntent = await deps.payments.createPaymentIntent({
    userId: caller.userId,
    clientKey: request.key,
    rechargeId,
    packageId: coinPackage.id,
    coins: coinPackage.coins,
    price: coinPackage.price,
  });

  const createdAt = now.toISOString();
  const month = utcMonth(now);
  const answer: StoredAnswer<RechargeCreated> = {
    status: 201,
    body: {
      rechargeId,
      status: 'pending',
      coins: coinPackage.coins,
      price: coinPackage.price,
      payment: {
        provider: 'stripe',
        paymentIntentId: paymentIntent.paymentIntentId,
        clientSecret: paymentIntent.clientSecret,
      },
    },
  };
  const keyTaken = () => new IdempotencyKeyReusedError('This Idempotency-Key was already used for another recharge.');
  const limitCondition = monthlyLimitIs(wallet.monthlyLimit);
  const ops: WriteOp[] = [
    // First, so a concurrent duplicate is told AlreadyDone (and replays) rather than anything else.
    recordAnswerOp(deps.store, request, answer, now),
    deps.store.put(
      'recharge',
      {
        ...keys.recharge(rechargeId),
        rechargeId,
        userId: caller.userId,
        status: 'pending',
        coins: coinPackage.coins,
        priceMinor,
        currency,
        packageId: coinPackage.id,
        paymentIntentId: paymentIntent.paymentIntentId,
        createdAt,
        budgetMonth: month,
        budgetHeld: true,
        version: 0,
        clawedCoins: 0,
        refundedMinor: 0,
        disputes: {},
        wonDisputes: {},
        statusPk: pendingStatusPk(rechargeId),
        statusSk: `${createdAt}#${rechargeId}`,
      },
      { expression: conditions.isNew },
      keyTaken,
    ),
    deps.store.put(
      'payment intent mapping',
      {
        ...keys.paymentIntent(paymentIntent.paymentIntentId),
        paymentIntentId: paymentIntent.paymentIntentId,
        rechargeId,
        userId: caller.userId,
      },
      { expression: conditions.isNew },
      keyTaken,
    ),
    deps.store.conditionCheck(
      'wallet unlocked, same budget',
      keys.wallet(caller.userId),
      {
        expression: `${conditions.walletUnlocked} AND ${limitCondition.expression}`,
        values: { ':false': false, ...limitCondition.values },
      },
      (old) =>
        old?.locked === true ? new WalletLockedError('Your wallet is locked.') : new ConcurrentChange('monthly limit'),
    ),
    budgetHoldOp(deps.store, { userId: caller.userId, budgetMonth: month, priceMinor }, currency, budgetBoundMinor),
  ];
  // No fixed ClientRequestToken: a racing duplicate carries another createdAt, and DynamoDB would
  // refuse the same token with another payload; the idempotency record decides between them.
  await deps.store.transactWrite(ops);
  return answer;
}

/**
 * DynamoDB conditions cannot add, so "spent + price <= limit" becomes "spent <= limit - price".
 * A negative bound means the price alone passes the limit.
 */
export function spendBound(limitMinor: number, priceMinor: number): number {
  return limitMinor - priceMinor;
}

/** The wallet's monthly limit is still the one the budget check used. */
export function monthlyLimitIs(limit: Money | null): { expression: string; values: Item } {
  if (limit === null) return { expression: 'attribute_not_exists(monthlyLimitAmount)', values: {} };
  return {
    expression: 'monthlyLimitAmount = :limitAmount AND monthlyLimitCurrency = :limitCurrency',
    values: { ':limitAmount': limit.amount, ':limitCurrency': limit.currency },
  };
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
  const key = keys.budgetMonth(recharge.userId, recharge.budgetMonth);
  const values = { ':price': recharge.priceMinor, ':currency': currency };
  if (boundMinor === undefined)
    return store.update('budget month', key, { expression: 'ADD spentMinor :price SET currency = :currency', values });
  return store.update(
    'budget month',
    key,
    {
      expression: 'ADD spentMinor :price SET currency = :currency',
      condition: 'attribute_not_exists(spentMinor) OR spentMinor <= :bound',
      values: { ...values, ':bound': boundMinor },
    },
    onFull,
  );
}

export function budgetExceeded(): BudgetExceededError {
  return new BudgetExceededError('This recharge would pass your monthly budget.');
}

export function rechargeView(recharge: RechargeRecord): RechargeView {
  return {
    rechargeId: recharge.rechargeId,
    status: recharge.status,
    coins: recharge.coins,
    price: { amount: recharge.priceMinor, currency: recharge.currency },
    createdAt: recharge.createdAt,
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
  const names: Record<string, string> = { '#version': 'version' };
  const values: Item = { ':read': recharge.version, ':one': 1 };
  const assignments = ['#version = #version + :one'];
  for (const [index, [attribute, value]] of Object.entries(set).entries()) {
    names[`#a${index}`] = attribute;
    values[`:v${index}`] = value;
    assignments.push(`#a${index} = :v${index}`);
  }
  const expression = `SET ${assignments.join(', ')}${options.leavePendingIndex ? ' REMOVE statusPk, statusSk' : ''}`;
  return store.update(
    `recharge ${recharge.rechargeId}`,
    keys.recharge(recharge.rechargeId),
    { expression, condition: '#version = :read', values, names },
    () => new ConcurrentChange('recharge'),
  );
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
  return store.update(
    'budget release',
    keys.budgetMonth(recharge.userId, recharge.budgetMonth),
    {
      expression: 'ADD spentMinor :minus',
      condition: 'spentMinor >= :price',
      values: { ':minus': -recharge.priceMinor, ':price': recharge.priceMinor },
    },
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
}

/**
 * The expiry sweep (a schedule) over the recharges index, whose entries older than 24 hours are:
 * - pending or declined recharges: the PaymentIntent is cancelled and the recharge fails, which
 *   releases its budget. A PaymentIntent that turns out to be paid is left to its `succeeded`
 *   webhook; one still processing is looked at again on the next run.
 * - over-budget refunds whose `charge.refunded` never came: the refund is asked for again
 *   (idempotent at Stripe), so a crash between the decision and the refund cannot keep the money.
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
      const page = await deps.store.query({
        indexName: 'byStatus',
        keyCondition: 'statusPk = :pk AND statusSk < :cutoff',
        values: { ':pk': `RECHARGE_PENDING#${bucket}`, ':cutoff': cutoff },
        limit: Math.min(EXPIRY_PAGE_SIZE, limits.maxPerRun - seen),
        ...(startKey && { exclusiveStartKey: startKey }),
      });
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

/** Stripe's idempotency key for a recharge's over-budget refund: one refund, however often it is asked for. */
export function overBudgetRefundKey(rechargeId: string): string {
  return `over-budget-refund-${rechargeId}`;
}
