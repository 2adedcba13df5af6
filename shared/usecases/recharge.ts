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
});
export type RechargeRecord = z.infer<typeof rechargeRecord>;

export function parseRecharge(item: Item): RechargeRecord {
  const parsed = rechargeRecord.safeParse(item);
  if (!parsed.success) throw new InvariantViolation(`recharge item ${String(item.pk)} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

/** Credited recharges: their coins were minted. */
export function isCredited(recharge: RechargeRecord): boolean {
  return recharge.status === 'succeeded' || recharge.status === 'disputed';
}

/**
 * The coins to take back for what has been disputed or refunded of this payment so far: the
 * same share of the package as of the money, rounded down (API.md: "a partial refund in
 * proportion, rounded down"), never more than the package. Computed from cumulative amounts, so
 * a late, duplicate or out-of-order event can only raise it to the same figure.
 */
export function clawbackTarget(recharge: Pick<RechargeRecord, 'coins' | 'priceMinor' | 'refundedMinor' | 'disputes'>): number {
  if (recharge.priceMinor === 0) return 0;
  const disputedMinor = Object.values(recharge.disputes).reduce((sum, amount) => sum + amount, 0);
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
    throw new ValidationError('Unknown package.', { details: [{ path: 'body.packageId', message: `one of ${PACKAGE_IDS.join(', ')}` }] });
  }
  if (input.country !== undefined && input.country.toUpperCase() !== caller.country) {
    throw new ValidationError("The country must be your account's country.", {
      details: [{ path: 'body.country', message: 'differs from the country of your account' }],
    });
  }
  const now = deps.now();
  const request: IdempotentRequest = { userId: caller.userId, scope: IDEMPOTENCY_SCOPE_RECHARGE, key: idempotency.key, fingerprint: idempotency.fingerprint };

  return once(deps.store, request, now, async () => {
    const wallet = await deps.store.readWallet(caller.userId, { consistent: true });
    if (wallet.locked) throw new WalletLockedError('Your wallet is locked.');
    assertMaySpend(caller, now);
    const country = caller.country;
    if (country === undefined) throw new RegionUnavailableError('Your account has no country, so no price list applies.');
    const currency = currencyForCountry(country);
    const coinPackage = findPackage(country, input.packageId);
    const priceMinor = coinPackage.price.amount;

    let budgetBoundMinor: number | undefined;
    if (wallet.monthlyLimit !== null) {
      if (wallet.monthlyLimit.currency !== currency) {
        throw new BudgetExceededError(`Your monthly budget is set in ${wallet.monthlyLimit.currency}; set it again in ${currency}.`);
      }
      // DynamoDB conditions cannot add, so "spent + price <= limit" becomes "spent <= limit - price".
      budgetBoundMinor = wallet.monthlyLimit.amount - priceMinor;
      const spentMinor = await spentThisMonth(deps.store, caller.userId, now, true);
      if (budgetBoundMinor < 0 || spentMinor > budgetBoundMinor) throw budgetExceeded();
    }

    const rechargeId = rechargeIdFor(caller.userId, idempotency.key);
    const paymentIntent = await deps.payments.createPaymentIntent({
      userId: caller.userId,
      clientKey: idempotency.key,
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
        payment: { provider: 'stripe', paymentIntentId: paymentIntent.paymentIntentId, clientSecret: paymentIntent.clientSecret },
      },
    };
    const keyTaken = () => new IdempotencyKeyReusedError('This Idempotency-Key was already used for another recharge.');
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
          version: 0,
          clawedCoins: 0,
          refundedMinor: 0,
          disputes: {},
          statusPk: pendingStatusPk(rechargeId),
          statusSk: `${createdAt}#${rechargeId}`,
        },
        { expression: conditions.isNew },
        keyTaken,
      ),
      deps.store.put(
        'payment intent mapping',
        { ...keys.paymentIntent(paymentIntent.paymentIntentId), paymentIntentId: paymentIntent.paymentIntentId, rechargeId, userId: caller.userId },
        { expression: conditions.isNew },
        keyTaken,
      ),
      deps.store.conditionCheck(
        'wallet unlocked',
        keys.wallet(caller.userId),
        { expression: conditions.walletUnlocked, values: { ':false': false } },
        () => new WalletLockedError('Your wallet is locked.'),
      ),
      budgetBoundMinor === undefined
        ? deps.store.update('budget month', keys.budgetMonth(caller.userId, month), {
            expression: 'ADD spentMinor :price SET currency = :currency',
            values: { ':price': priceMinor, ':currency': currency },
          })
        : deps.store.update(
            'budget month',
            keys.budgetMonth(caller.userId, month),
            {
              expression: 'ADD spentMinor :price SET currency = :currency',
              condition: 'attribute_not_exists(spentMinor) OR spentMinor <= :bound',
              values: { ':price': priceMinor, ':currency': currency, ':bound': budgetBoundMinor },
            },
            budgetExceeded,
          ),
    ];
    // No fixed ClientRequestToken: a racing duplicate carries another createdAt, and DynamoDB would
    // refuse the same token with another payload; the idempotency record decides between them.
    await deps.store.transactWrite(ops);
    return answer;
  });
}

function budgetExceeded(): BudgetExceededError {
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
export async function getRecharge(deps: { store: LedgerStore }, caller: Caller, rechargeId: string): Promise<RechargeView> {
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
 * Marks a pending recharge failed and takes its price off the month's budget, in one
 * transaction. `extraOps` (the webhook's event marker) ride along. Anything but pending is left
 * as it is: a failure after `succeeded` changes nothing.
 */
export async function markRechargeFailed(
  store: LedgerStore,
  rechargeId: string,
  extraOps: () => WriteOp[] = () => [],
): Promise<'failed' | 'unchanged'> {
  for (let attempt = 0; attempt < MAX_RECHARGE_WRITE_ATTEMPTS; attempt += 1) {
    const recharge = await readRecharge(store, rechargeId);
    if (!recharge || recharge.status !== 'pending') return 'unchanged';
    try {
      await store.transactWrite([
        ...extraOps(),
        rechargeTransitionOp(store, recharge, { status: 'failed' }, { leavePendingIndex: true }),
        budgetReleaseOp(store, recharge),
      ]);
      return 'failed';
    } catch (error) {
      if (error instanceof ConcurrentChange) continue;
      throw error;
    }
  }
  throw new ConcurrentChange(`recharge ${rechargeId} after ${MAX_RECHARGE_WRITE_ATTEMPTS} attempts`);
}

/** A failed or expired recharge stops counting toward the month it was made in. */
export function budgetReleaseOp(store: LedgerStore, recharge: RechargeRecord): WriteOp {
  return store.update(
    'budget release',
    keys.budgetMonth(recharge.userId, recharge.budgetMonth),
    { expression: 'ADD spentMinor :minus', condition: 'spentMinor >= :price', values: { ':minus': -recharge.priceMinor, ':price': recharge.priceMinor } },
    (old) => new InvariantViolation(`budget month ${recharge.budgetMonth} of ${recharge.userId} holds ${String(old?.spentMinor)}, less than recharge ${recharge.rechargeId}`),
  );
}

/** A recharge that failed and then succeeded after all (a retried payment) counts again. */
export function budgetRestoreOp(store: LedgerStore, recharge: RechargeRecord): WriteOp {
  return store.update('budget restore', keys.budgetMonth(recharge.userId, recharge.budgetMonth), {
    expression: 'ADD spentMinor :price',
    values: { ':price': recharge.priceMinor },
  });
}

const pendingIndexItem = z.object({ rechargeId: z.string().min(1), paymentIntentId: z.string().min(1), createdAt: z.string() });

/**
 * The expiry sweep (a schedule): recharges pending for more than 24 hours have their
 * PaymentIntent cancelled and become failed. A PaymentIntent that turns out to be paid is left
 * to its `succeeded` webhook; one still processing is looked at again on the next run.
 */
export async function expirePendingRecharges(
  deps: { store: LedgerStore; payments: Pick<Payments, 'cancelPaymentIntent'>; now: () => Date },
  limits: { maxPerRun: number } = { maxPerRun: MAX_EXPIRED_PER_RUN },
): Promise<{ expired: number; skipped: number }> {
  const cutoff = new Date(deps.now().getTime() - RECHARGE_PENDING_LIFETIME_SECONDS * 1000).toISOString();
  let expired = 0;
  let skipped = 0;
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
          skipped += 1;
          continue;
        }
        const outcome: CancelOutcome = await deps.payments.cancelPaymentIntent(parsed.data.paymentIntentId);
        if (outcome === 'succeeded' || outcome === 'processing') {
          skipped += 1;
          continue;
        }
        if ((await markRechargeFailed(deps.store, parsed.data.rechargeId)) === 'failed') expired += 1;
      }
    } while (startKey && seen < limits.maxPerRun);
  }
  return { expired, skipped };
}
