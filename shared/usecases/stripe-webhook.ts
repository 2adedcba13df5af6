import * as z from 'zod';
import { keys } from '../adapters/dynamo/keys';
import { offerItems } from '../adapters/dynamo/offer-items';
import { pendingIndexEntry, rechargeItems } from '../adapters/dynamo/recharge-items';
import type { Item, LedgerStore, WriteOp } from '../ports/ledger-store';
import { entryItem, walletFromItem } from '../adapters/dynamo/items';
import { InvariantViolation, TransientDependencyError } from '../domain/errors';
import type { LedgerEntry } from '../domain/ledger';
import { logger } from '../logger';
import { applyAccountUpdated } from './payout-account';
import type { Payments } from '../adapters/payments';
import { lockCaseOp } from './desk-cases';
import { metrics } from '../observability/metrics';
import {
  budgetHoldOp,
  budgetReleaseOp,
  cancelRecharge,
  clawbackParts,
  clawbackTarget,
  ConcurrentChange,
  declineRecharge,
  holdsBudget,
  isCredited,
  MAX_RECHARGE_WRITE_ATTEMPTS,
  offerReleaseOps,
  overBudgetRefundKey,
  rechargeTransitionOp,
  readRecharge,
  spendBound,
  type RechargeRecord,
} from './recharge';

/**
 * Stripe webhook events, applied to the ledger exactly once. The event arrives already verified
 * (signature and age) by the payments adapter; here it is parsed (only the fields used) and
 * applied. Every effect is one transaction that also writes the event's marker item under
 * "is new", so a redelivered event does nothing; and since Stripe may send events for one
 * PaymentIntent in any order, each transition also conditions on the recharge's version.
 *
 * Coins are minted only here, on `payment_intent.succeeded`, once per PaymentIntent. Disputes and
 * refunds take coins back as far as the balance allows; the rest becomes `owedCoins`, which the
 * next credit pays first; the wallet is locked with reason 'dispute', which its owner cannot undo.
 */

/** Stripe retries an event for up to 3 days; its marker is kept well past that. */
export const EVENT_MARKER_TTL_SECONDS = 30 * 24 * 60 * 60;

export type WebhookOutcome =
  | 'credited'
  | 'declined'
  | 'canceled'
  | 'clawed_back'
  | 'given_back'
  | 'refunded_over_budget'
  | 'recorded'
  | 'account_updated'
  | 'duplicate'
  | 'ignored'
  | 'livemode_mismatch';

export interface WebhookDeps {
  store: LedgerStore;
  /** Refunds a payment the budget cannot hold. */
  payments: Pick<Payments, 'refundPayment'>;
  /** Whether this deployment's Stripe key is a live one: events of the other mode change nothing. */
  livemode: boolean;
  now: () => Date;
  /** Ids of the ledger entries the webhook writes (shared/adapters/ids newId). */
  newId: (prefix: string, now: Date) => string;
  /** After a balance change commits: push the wallet to the user's open connections. Best effort. */
  notifyWallet?: (userId: string) => Promise<void>;
}

const stripeId = z.string().min(1).max(255);
const amountMinor = z.number().int().nonnegative();
/** Expandable references arrive as an id or as the object itself. */
const reference = z
  .union([stripeId, z.object({ id: stripeId })])
  .transform((value) => (typeof value === 'string' ? value : value.id));

const eventEnvelope = z.object({
  id: stripeId,
  type: z.string().min(1),
  livemode: z.boolean(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
const paymentIntentObject = z.object({
  id: stripeId,
  metadata: z.record(z.string(), z.string()).nullish(),
});
const disputeObject = z.object({
  id: stripeId,
  amount: amountMinor,
  payment_intent: reference.nullish(),
  status: z.string().optional(),
});
const chargeObject = z.object({
  id: stripeId,
  amount: amountMinor,
  amount_refunded: amountMinor,
  payment_intent: reference.nullish(),
});
const accountObject = z.object({ id: stripeId, payouts_enabled: z.boolean() });
const paymentIntentMapping = z.object({ rechargeId: z.string().min(1), userId: z.string().min(1) });

function parseObject<T extends z.ZodType>(
  schema: T,
  event: { id: string; type: string; data: { object: unknown } },
): z.infer<T> {
  const parsed = schema.safeParse(event.data.object);
  // The signature was valid, so this is Stripe's event in a shape we do not understand: a 500
  // makes Stripe retry while the alarm on errors gets someone to look.
  if (!parsed.success)
    throw new InvariantViolation(`event ${event.id} (${event.type}) has an unexpected shape: ${parsed.error.message}`);
  return parsed.data;
}

/** Thrown by the marker op when the event was already applied. */
class DuplicateEvent extends Error {
  constructor() {
    super('event already processed');
    this.name = 'DuplicateEvent';
  }
}

function markerOp(deps: WebhookDeps, event: { id: string; type: string }): WriteOp {
  const now = deps.now();
  return rechargeItems.eventProcessed(
    deps.store,
    event,
    { processedAt: now.toISOString(), expiresAt: Math.floor(now.getTime() / 1000) + EVENT_MARKER_TTL_SECONDS },
    () => new DuplicateEvent(),
  );
}

/** Applies one verified event. Unknown types and events for payments that are not ours are ignored. */
export async function handleStripeEvent(deps: WebhookDeps, rawEvent: unknown): Promise<WebhookOutcome> {
  const envelope = eventEnvelope.safeParse(rawEvent);
  if (!envelope.success)
    throw new InvariantViolation(`a verified Stripe event has no id, type or object: ${envelope.error.message}`);
  const event = envelope.data;
  if (event.livemode !== deps.livemode) {
    // A live event reaching a test deployment, or the reverse: acknowledged (a non-2xx would make
    // Stripe retry for days) and counted, but it never touches this deployment's money.
    logger.warn('stripe event from the other mode ignored', {
      eventId: event.id,
      eventType: event.type,
      livemode: event.livemode,
    });
    return 'livemode_mismatch';
  }
  let outcome: WebhookOutcome;
  try {
    switch (event.type) {
      case 'payment_intent.succeeded':
        outcome = await onPaymentSucceeded(deps, event);
        break;
      case 'payment_intent.payment_failed':
      case 'payment_intent.canceled':
        outcome = await onPaymentFailed(deps, event);
        break;
      case 'charge.dispute.created':
        outcome = await onDispute(deps, event);
        break;
      case 'charge.dispute.closed':
        outcome = await onDisputeClosed(deps, event);
        break;
      case 'charge.refunded':
        outcome = await onRefund(deps, event);
        break;
      case 'account.updated': {
        const account = parseObject(accountObject, event);
        await applyAccountUpdated(
          { store: deps.store, now: deps.now },
          { id: account.id, payoutsEnabled: account.payouts_enabled },
        );
        outcome = 'account_updated';
        break;
      }
      default:
        outcome = 'ignored';
    }
  } catch (error) {
    if (!(error instanceof DuplicateEvent)) throw error;
    outcome = 'duplicate';
  }
  logger.info('stripe event', { eventId: event.id, eventType: event.type, outcome });
  return outcome;
}

type ParsedEvent = z.infer<typeof eventEnvelope>;

/** The recharge a PaymentIntent belongs to, through the mapping written with the recharge. */
async function rechargeFor(
  deps: WebhookDeps,
  paymentIntentId: string | null | undefined,
): Promise<{ rechargeId: string; userId: string } | undefined> {
  if (!paymentIntentId) return undefined;
  const item = await deps.store.getItem(keys.paymentIntent(paymentIntentId), { consistent: true });
  if (!item) return undefined;
  const parsed = paymentIntentMapping.safeParse(item);
  if (!parsed.success) throw new InvariantViolation(`PaymentIntent mapping ${paymentIntentId} is malformed`);
  return parsed.data;
}

async function onPaymentSucceeded(deps: WebhookDeps, event: ParsedEvent): Promise<WebhookOutcome> {
  const paymentIntent = parseObject(paymentIntentObject, event);
  const mapping = await rechargeFor(deps, paymentIntent.id);
  if (!mapping) {
    if (paymentIntent.metadata?.rechargeId) {
      // Ours, but its recharge is not visible yet: answer 500 so Stripe delivers it again, since
      // dropping a paid PaymentIntent would lose the customer's money.
      throw new TransientDependencyError(
        `recharge ${paymentIntent.metadata.rechargeId} of ${paymentIntent.id} is not recorded yet`,
      );
    }
    return 'ignored';
  }
  const outcome = await creditRecharge(deps, event, mapping.rechargeId);
  if (outcome === 'credited') await notify(deps, mapping.userId);
  return outcome;
}

async function onPaymentFailed(deps: WebhookDeps, event: ParsedEvent): Promise<WebhookOutcome> {
  const paymentIntent = parseObject(paymentIntentObject, event);
  const mapping = await rechargeFor(deps, paymentIntent.id);
  if (!mapping) return 'ignored';
  const marker = () => [markerOp(deps, event)];
  if (event.type === 'payment_intent.canceled') {
    return (await cancelRecharge(deps.store, mapping.rechargeId, marker)) === 'canceled' ? 'canceled' : 'ignored';
  }
  return (await declineRecharge(deps.store, mapping.rechargeId, deps.now(), marker)) === 'declined'
    ? 'declined'
    : 'ignored';
}

async function onDispute(deps: WebhookDeps, event: ParsedEvent): Promise<WebhookOutcome> {
  const dispute = parseObject(disputeObject, event);
  const mapping = await rechargeFor(deps, dispute.payment_intent);
  if (!mapping) return 'ignored';
  const outcome = await applyClaim(
    deps,
    eventOnce(deps, event),
    mapping.rechargeId,
    { disputeId: dispute.id },
    (recharge) => {
      if (recharge.disputes[dispute.id] !== undefined) return undefined;
      return { disputes: { ...recharge.disputes, [dispute.id]: Math.min(dispute.amount, recharge.priceMinor) } };
    },
  );
  if (outcome === 'clawed_back') await notify(deps, mapping.userId);
  return outcome;
}

/**
 * `charge.dispute.closed`: a dispute the platform won gives back what that dispute took, owed
 * coins first, once (the recharge remembers won disputes, and its version guards the write). A
 * lost dispute changes nothing: its coins were taken when it opened. The wallet stays locked until
 * the owner's support case lifts it.
 */
async function onDisputeClosed(deps: WebhookDeps, event: ParsedEvent): Promise<WebhookOutcome> {
  const dispute = parseObject(disputeObject, event);
  if (dispute.status !== 'won') return 'ignored';
  const mapping = await rechargeFor(deps, dispute.payment_intent);
  if (!mapping) return 'ignored';
  for (let attempt = 0; attempt < MAX_RECHARGE_WRITE_ATTEMPTS; attempt += 1) {
    const recharge = await readRecharge(deps.store, mapping.rechargeId);
    if (!recharge)
      throw new InvariantViolation(`PaymentIntent mapping names recharge ${mapping.rechargeId}, which does not exist`);
    if (recharge.wonDisputes[dispute.id]) return 'duplicate';
    // Recorded as disputed too, so a `created` that arrives after the `closed` takes nothing.
    const change = {
      disputes: {
        ...recharge.disputes,
        [dispute.id]: recharge.disputes[dispute.id] ?? Math.min(dispute.amount, recharge.priceMinor),
      },
      wonDisputes: { ...recharge.wonDisputes, [dispute.id]: true as const },
    };
    const giveBack = isCredited(recharge)
      ? Math.max(0, recharge.clawedCoins - clawbackTarget({ ...recharge, ...change }))
      : 0;
    try {
      if (giveBack === 0) {
        await deps.store.transactWrite([markerOp(deps, event), rechargeTransitionOp(deps.store, recharge, change)]);
        return 'recorded';
      }
      await deps.store.transactWrite(await giveBackOps(deps, event, recharge, change, giveBack, dispute.id));
      metrics.count('CoinsGivenBack', giveBack);
      await notify(deps, mapping.userId);
      return 'given_back';
    } catch (error) {
      if (error instanceof ConcurrentChange) continue;
      throw error;
    }
  }
  throw new TransientDependencyError(
    `recharge ${mapping.rechargeId} kept changing; Stripe will deliver the event again`,
  );
}

/** The give-back's transaction: owed coins forgiven first, the rest back into the balance, and its entry. */
async function giveBackOps(
  deps: WebhookDeps,
  event: ParsedEvent,
  recharge: RechargeRecord,
  change: Pick<RechargeRecord, 'disputes' | 'wonDisputes'>,
  giveBack: number,
  disputeId: string,
): Promise<WriteOp[]> {
  const before = await readBalances(deps.store, recharge.userId);
  const debtForgiven = Math.min(giveBack, before.owedCoins);
  const coinsBack = giveBack - debtForgiven;
  const ref = {
    rechargeId: recharge.rechargeId,
    paymentIntentId: recharge.paymentIntentId,
    disputeId,
    coinsGivenBack: giveBack,
  };
  return [
    markerOp(deps, event),
    rechargeTransitionOp(deps.store, recharge, { ...change, clawedCoins: recharge.clawedCoins - giveBack }),
    rechargeItems.walletGivenBack(
      deps.store,
      recharge.userId,
      { coinsBack, debtForgiven, owedBefore: before.owedCoins },
      () => new ConcurrentChange('wallet'),
    ),
    deps.store.put(
      'dispute won entry',
      entry(deps, recharge.userId, 'dispute_won', deps.now(), { coins: coinsBack, owedCoins: -debtForgiven }, ref),
    ),
  ];
}

async function onRefund(deps: WebhookDeps, event: ParsedEvent): Promise<WebhookOutcome> {
  const charge = parseObject(chargeObject, event);
  const mapping = await rechargeFor(deps, charge.payment_intent);
  if (!mapping) return 'ignored';
  const outcome = await applyClaim(
    deps,
    eventOnce(deps, event),
    mapping.rechargeId,
    { chargeId: charge.id },
    (recharge) => {
      // charge.refunded carries the charge's cumulative refunded amount: an older event that
      // arrives after a newer one says less and changes nothing, and no refund counts twice.
      const refundedMinor = Math.min(charge.amount_refunded, recharge.priceMinor);
      return refundedMinor > recharge.refundedMinor ? { refundedMinor } : undefined;
    },
  );
  if (outcome === 'clawed_back') await notify(deps, mapping.userId);
  return outcome;
}

async function notify(deps: WebhookDeps, userId: string): Promise<void> {
  if (!deps.notifyWallet) return;
  try {
    await deps.notifyWallet(userId);
  } catch (error) {
    // The ledger has committed; a missed push only delays what the client sees until it reads.
    logger.warn('wallet push failed', { userId, error: error instanceof Error ? error.name : String(error) });
  }
}

function whole(value: unknown, name: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new InvariantViolation(`wallet ${name} is not a whole number: ${String(value)}`);
  return value;
}

interface WalletBalances {
  coins: number;
  owedCoins: number;
  monthlyLimit: ReturnType<typeof walletFromItem>['monthlyLimit'];
}

async function readBalances(store: LedgerStore, userId: string): Promise<WalletBalances> {
  const item = await store.getItem(keys.wallet(userId), { consistent: true });
  const limits = item ? walletFromItem(userId, item).monthlyLimit : null;
  return { coins: whole(item?.coins, 'coins'), owedCoins: whole(item?.owedCoins, 'owedCoins'), monthlyLimit: limits };
}

function entry(
  deps: Pick<WebhookDeps, 'newId'>,
  userId: string,
  type: LedgerEntry['type'],
  at: Date,
  amounts: { coins: number; owedCoins: number },
  ref: LedgerEntry['ref'],
): Item {
  const createdAt = at.toISOString();
  const id = deps.newId('txn', at);
  return entryItem(keys.entry(userId, createdAt, id), {
    id,
    userId,
    type,
    coins: amounts.coins,
    owedCoins: amounts.owedCoins,
    diamonds: 0,
    pendingDiamonds: 0,
    createdAt,
    ref,
  });
}

/** Raised by the budget op when the month cannot hold the payment: it is refunded instead. */
class BudgetCannotHold extends Error {
  constructor(why = 'the monthly budget cannot hold this payment') {
    super(why);
    this.name = 'BudgetCannotHold';
  }
}

/**
 * The op that makes the month hold a payment about to be credited, under the limit in force:
 * a recharge that still counts needs the month to be within the limit; one that was released
 * (cancelled, expired) is added back only if it fits. Undefined: nothing to write. Throws
 * BudgetCannotHold when no write could make it fit.
 */
function creditBudgetOp(
  store: LedgerStore,
  recharge: RechargeRecord,
  limit: WalletBalances['monthlyLimit'],
): WriteOp | undefined {
  const held = holdsBudget(recharge);
  if (limit === null) return held ? undefined : budgetHoldOp(store, recharge, recharge.currency, undefined);
  if (limit.currency !== recharge.currency) throw new BudgetCannotHold();
  if (!held) {
    const bound = spendBound(limit.amount, recharge.priceMinor);
    if (bound < 0) throw new BudgetCannotHold();
    return budgetHoldOp(store, recharge, recharge.currency, bound, () => new BudgetCannotHold());
  }
  return rechargeItems.budgetWithinLimit(store, recharge, limit.amount, () => new BudgetCannotHold());
}

/**
 * Credits a recharge once: coins minted, owed coins paid first, and any dispute or refund that
 * arrived before the credit applied in the same transaction. The month's budget, under the limit
 * in force now, must hold the payment (a declined payment retried later, a limit lowered since):
 * if it cannot, the payment is refunded instead and nothing is credited. Condition failures on
 * the recharge or the wallet mean a concurrent write got there first: read again and retry, a
 * bounded number of times.
 */
async function creditRecharge(deps: WebhookDeps, event: ParsedEvent, rechargeId: string): Promise<WebhookOutcome> {
  for (let attempt = 0; attempt < MAX_RECHARGE_WRITE_ATTEMPTS; attempt += 1) {
    const recharge = await readRecharge(deps.store, rechargeId);
    if (!recharge)
      throw new InvariantViolation(`PaymentIntent mapping names recharge ${rechargeId}, which does not exist`);
    if (isCredited(recharge)) return 'duplicate';
    if (recharge.overBudgetRefund !== undefined) {
      await ensureOverBudgetRefund(deps, recharge);
      return 'duplicate';
    }
    const before = await readBalances(deps.store, recharge.userId);
    try {
      const credit = creditOps(deps, event, recharge, before);
      await deps.store.transactWrite(credit.ops);
      metrics.count('CoinsMinted', recharge.coins);
      if (recharge.bonusCoins > 0) metrics.count('BonusCoinsMinted', recharge.bonusCoins);
      metrics.count('CoinsClawedBack', credit.claim);
      return 'credited';
    } catch (error) {
      if (error instanceof BudgetCannotHold)
        return refundOverBudget(deps, event, rechargeId, before.monthlyLimit?.amount ?? null);
      if (error instanceof ConcurrentChange) continue;
      throw error;
    }
  }
  throw new TransientDependencyError(`recharge ${rechargeId} kept changing; Stripe will deliver the event again`);
}

/** What a credit moves: base and bonus coins, debt paid first from each, and the claim it applies at once. */
interface CreditAmounts {
  debtPaid: number;
  net: number;
  bonusDebtPaid: number;
  bonusNet: number;
  claim: number;
  take: number;
  owedAdded: number;
}

function creditAmounts(recharge: RechargeRecord, before: WalletBalances): CreditAmounts {
  const debtPaid = Math.min(recharge.coins, before.owedCoins);
  const net = recharge.coins - debtPaid;
  // Bonus coins pay what debt the base coins left, then land in the balance.
  const bonusDebtPaid = Math.min(recharge.bonusCoins, before.owedCoins - debtPaid);
  const bonusNet = recharge.bonusCoins - bonusDebtPaid;
  const claim = Math.max(0, clawbackTarget(recharge) - recharge.clawedCoins);
  const take = Math.min(before.coins + net + bonusNet, claim);
  return { debtPaid, net, bonusDebtPaid, bonusNet, claim, take, owedAdded: claim - take };
}

/**
 * A recharge created under a first-recharge offer holds the user's reservation; one whose
 * reservation was released (cancelled, then paid after all) takes it again, unless another
 * recharge has it by now: then the payment is refunded like one the budget cannot hold.
 */
function offerClaimOp(store: LedgerStore, recharge: RechargeRecord): WriteOp | undefined {
  if (!recharge.firstRechargeOffer) return undefined;
  return offerItems.firstRechargeHeld(
    store,
    recharge.userId,
    { rechargeId: recharge.rechargeId, offerId: recharge.offerId ?? '' },
    () => new BudgetCannotHold('the first-recharge offer went to another recharge'),
  );
}

/** The credit's transaction, from the recharge and wallet as read, and the coins it claws back. Throws BudgetCannotHold early when no write could fit. */
function creditOps(
  deps: WebhookDeps,
  event: ParsedEvent,
  recharge: RechargeRecord,
  before: WalletBalances,
): { ops: WriteOp[]; claim: number } {
  const budgetOp = creditBudgetOp(deps.store, recharge, before.monthlyLimit);
  const amounts = creditAmounts(recharge, before);
  const disputed = Object.keys(recharge.disputes).length > 0 || recharge.refundedMinor > 0;
  const now = deps.now();
  const ref = {
    rechargeId: recharge.rechargeId,
    paymentIntentId: recharge.paymentIntentId,
    packageId: recharge.packageId,
    coinsPurchased: recharge.coins,
  };
  const ops: WriteOp[] = [
    markerOp(deps, event),
    rechargeTransitionOp(
      deps.store,
      recharge,
      {
        status: disputed ? 'disputed' : 'succeeded',
        creditedAt: now.toISOString(),
        clawedCoins: recharge.clawedCoins + amounts.claim,
        budgetHeld: true,
      },
      { leavePendingIndex: true },
    ),
    walletCreditOp(deps.store, recharge.userId, before, amounts, disputed),
    deps.store.put(
      'recharge entry',
      entry(
        deps,
        recharge.userId,
        'recharge',
        now,
        { coins: amounts.net, owedCoins: -amounts.debtPaid },
        { ...ref, debtPaid: amounts.debtPaid },
      ),
    ),
  ];
  if (recharge.bonusCoins > 0) ops.push(bonusEntryOp(deps, recharge, amounts, now));
  // A claim that arrived before the credit locks the wallet with it: that is a desk case too.
  if (disputed) ops.push(lockCaseOp(deps.store, recharge, event.id, {}, now));
  const claimOp = offerClaimOp(deps.store, recharge);
  if (claimOp) ops.push(claimOp);
  if (budgetOp) ops.push(budgetOp);
  if (amounts.claim > 0) ops.push(creditChargebackEntryOp(deps, recharge, amounts, now));
  return { ops, claim: amounts.claim };
}

/** The chargeback entry of a claim that arrived before the credit and is applied with it. */
function creditChargebackEntryOp(
  deps: Pick<WebhookDeps, 'store' | 'newId'>,
  recharge: RechargeRecord,
  amounts: CreditAmounts,
  creditedAt: Date,
): WriteOp {
  // A millisecond later, so the history lists the chargeback after the credit it corrects.
  const later = new Date(creditedAt.getTime() + 1);
  const { bonusCoins } = clawbackParts(recharge);
  return deps.store.put(
    'chargeback entry',
    entry(
      deps,
      recharge.userId,
      'chargeback',
      later,
      { coins: -amounts.take, owedCoins: amounts.owedAdded },
      {
        rechargeId: recharge.rechargeId,
        paymentIntentId: recharge.paymentIntentId,
        coinsClaimed: amounts.claim,
        ...(recharge.bonusCoins > 0 && { bonusCoinsClaimed: bonusCoins }),
      },
    ),
  );
}

/** Bonus coins are an entry of their own kind (`recharge_bonus`), so the books can tell them from bought coins. */
function bonusEntryOp(
  deps: Pick<WebhookDeps, 'store' | 'newId'>,
  recharge: RechargeRecord,
  amounts: CreditAmounts,
  at: Date,
): WriteOp {
  return deps.store.put(
    'bonus entry',
    entry(
      deps,
      recharge.userId,
      'recharge_bonus',
      at,
      { coins: amounts.bonusNet, owedCoins: -amounts.bonusDebtPaid },
      {
        rechargeId: recharge.rechargeId,
        paymentIntentId: recharge.paymentIntentId,
        offerId: recharge.offerId ?? '',
        bonusCoins: recharge.bonusCoins,
        debtPaid: amounts.bonusDebtPaid,
      },
    ),
  );
}

/** The wallet's side of a credit, conditioned on the balances and the limit it was decided on. */
function walletCreditOp(
  store: LedgerStore,
  userId: string,
  before: WalletBalances,
  amounts: CreditAmounts,
  disputed: boolean,
): WriteOp {
  // The budget decision used the limit read: the wallet write conditions on it, so a limit changed
  // meanwhile makes the credit read again. rechargesCredited counts this credit (recharge.ts's
  // first-recharge offer is only for a wallet that has none).
  return rechargeItems.walletCredited(
    store,
    userId,
    before,
    {
      coinsDelta: amounts.net + amounts.bonusNet - amounts.take,
      owedDelta: amounts.owedAdded - amounts.debtPaid - amounts.bonusDebtPaid,
      takesBack: amounts.claim > 0,
      locks: disputed,
    },
    () => new ConcurrentChange('wallet'),
  );
}

/**
 * The payment succeeded but the budget cannot hold it: decide, once, to refund it. The decision
 * (recharge failed with its refund recorded, the month released, an `over_budget_refund` entry)
 * commits before Stripe is asked, so a crash in between is finished by Stripe's redelivery of the
 * event or, failing that, by the expiry sweep, which finds the recharge in its index.
 */
async function refundOverBudget(
  deps: WebhookDeps,
  event: ParsedEvent,
  rechargeId: string,
  limitMinor: number | null,
): Promise<WebhookOutcome> {
  for (let attempt = 0; attempt < MAX_RECHARGE_WRITE_ATTEMPTS; attempt += 1) {
    const recharge = await readRecharge(deps.store, rechargeId);
    if (!recharge) throw new InvariantViolation(`recharge ${rechargeId} vanished`);
    if (isCredited(recharge)) return 'duplicate';
    if (recharge.overBudgetRefund !== undefined) {
      await ensureOverBudgetRefund(deps, recharge);
      return 'duplicate';
    }
    const decidedAt = deps.now().toISOString();
    const ops: WriteOp[] = [
      markerOp(deps, event),
      rechargeTransitionOp(deps.store, recharge, {
        status: 'failed',
        budgetHeld: false,
        overBudgetRefund: { decidedAt, limitMinor },
        // Back in the expiry index, so the sweep retries the refund if Stripe's never comes.
        ...pendingIndexEntry(rechargeId, decidedAt),
      }),
      deps.store.put(
        'over-budget refund entry',
        entry(
          deps,
          recharge.userId,
          'over_budget_refund',
          new Date(decidedAt),
          { coins: 0, owedCoins: 0 },
          {
            rechargeId,
            paymentIntentId: recharge.paymentIntentId,
            priceMinor: recharge.priceMinor,
            currency: recharge.currency,
          },
        ),
      ),
    ];
    // The budget and a first-recharge offer are held and released together.
    if (holdsBudget(recharge))
      ops.push(budgetReleaseOp(deps.store, recharge), ...offerReleaseOps(deps.store, recharge));
    try {
      await deps.store.transactWrite(ops);
    } catch (error) {
      if (error instanceof ConcurrentChange) continue;
      throw error;
    }
    logger.warn('payment succeeded past the monthly budget; refunding it', {
      rechargeId,
      paymentIntentId: recharge.paymentIntentId,
    });
    await ensureOverBudgetRefund(deps, recharge);
    return 'refunded_over_budget';
  }
  throw new TransientDependencyError(`recharge ${rechargeId} kept changing; Stripe will deliver the event again`);
}

/** Asks Stripe for the over-budget refund unless the charge is already refunded; one refund whatever the number of calls. */
async function ensureOverBudgetRefund(deps: WebhookDeps, recharge: RechargeRecord): Promise<void> {
  if (recharge.refundedMinor >= recharge.priceMinor) return;
  await deps.payments.refundPayment({
    paymentIntentId: recharge.paymentIntentId,
    idempotencyKey: overBudgetRefundKey(recharge.rechargeId),
    reason: 'over_budget',
  });
}

/** The chargeback entry of a dispute or refund on a credited recharge; bonus coins taken are named apart. */
function claimEntryOp(
  deps: Pick<WebhookDeps, 'store' | 'newId'>,
  before: RechargeRecord,
  after: RechargeRecord,
  amounts: { take: number; owedAdded: number; claim: number },
  source: Record<string, string>,
  at: Date,
): WriteOp {
  return deps.store.put(
    'chargeback entry',
    entry(
      deps,
      before.userId,
      'chargeback',
      at,
      { coins: -amounts.take, owedCoins: amounts.owedAdded },
      {
        rechargeId: before.rechargeId,
        paymentIntentId: before.paymentIntentId,
        coinsClaimed: amounts.claim,
        ...(before.bonusCoins > 0 && {
          bonusCoinsClaimed: clawbackParts(after).bonusCoins - clawbackParts(before).bonusCoins,
        }),
        ...source,
      },
    ),
  );
}

/**
 * What makes a claim apply once: the ops that ride in its transaction (the webhook's event
 * marker; the desk's refund has none, the recharge's version and its refundedMinor guard it) and
 * the seed of the support case a locking claim opens.
 */
export interface ClaimOnce {
  ops: () => WriteOp[];
  caseSeed: string;
}

function eventOnce(deps: WebhookDeps, event: ParsedEvent): ClaimOnce {
  return { ops: () => [markerOp(deps, event)], caseSeed: event.id };
}

/**
 * A dispute always locks the wallet, and so does a refund made outside the desk (Stripe's
 * dashboard). A refund the support desk asked for does not: the operator decided the lock when
 * resolving the case, and the desk recorded the refund on the recharge before calling Stripe, so
 * its `charge.refunded` (whether it lands before or after the desk applies the refund) never
 * locks again a wallet the operator unlocked.
 */
export function claimLocks(recharge: RechargeRecord, change: Partial<Pick<RechargeRecord, 'disputes'>>): boolean {
  return change.disputes !== undefined || recharge.deskRefund === undefined;
}

function walletClawbackOp(
  store: LedgerStore,
  userId: string,
  coinsBefore: number,
  amounts: { take: number; owedAdded: number },
  locks: boolean,
): WriteOp {
  // The balance read above, in the write itself: if a gift spent coins in between, read again.
  return rechargeItems.walletClawedBack(
    store,
    userId,
    coinsBefore,
    { ...amounts, locks },
    () => new ConcurrentChange('wallet'),
  );
}

/** What applyClaim needs: the webhook's and the desk's refunds both come through it. */
export type ClaimDeps = Pick<WebhookDeps, 'store' | 'now' | 'newId' | 'notifyWallet'>;

/**
 * Records a dispute or refund on a recharge and, once the recharge is credited, takes back what
 * it now owes: as far as the balance allows (the write conditions on the balance it read), the
 * rest into owedCoins; the wallet is locked for the dispute. Before the credit, only the claim is
 * stored; creditRecharge applies it when the coins land.
 */
export async function applyClaim(
  deps: ClaimDeps,
  once: ClaimOnce,
  rechargeId: string,
  source: Record<string, string>,
  nextClaim: (recharge: RechargeRecord) => Partial<Pick<RechargeRecord, 'disputes' | 'refundedMinor'>> | undefined,
): Promise<WebhookOutcome> {
  for (let attempt = 0; attempt < MAX_RECHARGE_WRITE_ATTEMPTS; attempt += 1) {
    const recharge = await readRecharge(deps.store, rechargeId);
    if (!recharge)
      throw new InvariantViolation(`PaymentIntent mapping names recharge ${rechargeId}, which does not exist`);
    const change = nextClaim(recharge);
    if (change === undefined) return 'duplicate';
    const updated: RechargeRecord = { ...recharge, ...change };
    try {
      if (!isCredited(recharge)) {
        // An over-budget refund's own `charge.refunded`: nothing was credited, so nothing is taken
        // back and nothing locked; once refunded in full, the expiry sweep has nothing left to retry.
        const refundDone = recharge.overBudgetRefund !== undefined && updated.refundedMinor >= recharge.priceMinor;
        await deps.store.transactWrite([
          ...once.ops(),
          rechargeTransitionOp(deps.store, recharge, change, { leavePendingIndex: refundDone }),
        ]);
        return 'recorded';
      }
      const claim = Math.max(0, clawbackTarget(updated) - recharge.clawedCoins);
      const before = await readBalances(deps.store, recharge.userId);
      const take = Math.min(before.coins, claim);
      const owedAdded = claim - take;
      const now = deps.now();
      const locks = claimLocks(recharge, change);
      const ops: WriteOp[] = [
        ...once.ops(),
        rechargeTransitionOp(
          deps.store,
          recharge,
          { ...change, status: 'disputed', clawedCoins: recharge.clawedCoins + claim },
          // A desk refund waits in the expiry index until it is applied, by the desk or by this event.
          { leavePendingIndex: recharge.deskRefund !== undefined && updated.refundedMinor >= updated.priceMinor },
        ),
        walletClawbackOp(deps.store, recharge.userId, before.coins, { take, owedAdded }, locks),
      ];
      // A wallet this claim locks is a case for the support desk (shared/usecases/desk.ts).
      if (locks) ops.push(lockCaseOp(deps.store, recharge, once.caseSeed, source, now));
      const entryDeps = { store: deps.store, newId: deps.newId };
      if (claim > 0) ops.push(claimEntryOp(entryDeps, recharge, updated, { take, owedAdded, claim }, source, now));
      await deps.store.transactWrite(ops);
      metrics.count('CoinsClawedBack', claim);
      return 'clawed_back';
    } catch (error) {
      if (error instanceof ConcurrentChange) continue;
      throw error;
    }
  }
  throw new TransientDependencyError(`recharge ${rechargeId} kept changing; Stripe will deliver the event again`);
}
