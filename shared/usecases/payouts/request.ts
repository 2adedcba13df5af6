import { keys } from '../../adapters/dynamo/keys';
import { payoutItems } from '../../adapters/dynamo/payout-items';
import type { CreatorBalance, LedgerStore, WriteOp } from '../../ports/ledger-store';
import type { PayoutQueue } from '../../adapters/payout-queue';
import { type Economy, payoutCents } from '../../domain/economy';
import {
  InsufficientDiamondsError,
  InvariantViolation,
  PayoutAccountMissingError,
  PayoutLimitExceededError,
  TransientDependencyError,
  WalletLockedError,
} from '../../domain/errors';
import { assertAdult, type Caller } from '../../domain/identity';
import type { Money } from '../../domain/money';
import { logger } from '../../logger';
import { once, recordAnswerOp, type IdempotentRequest, type StoredAnswer } from '../idempotency';
import { readPayoutAccount } from '../payout-account';
import { entryOp, type NewId, PAYOUT_CURRENCY, utcDay } from './record';

/** POST /v1/payouts: one transaction moves diamonds from available to pending and writes the payout. */

export const PAYOUT_IDEMPOTENCY_SCOPE = 'payout';

export interface PayoutRequestedBody {
  payoutId: string;
  status: 'requested';
  diamonds: number;
  amount: Money;
}

export interface RequestPayoutDeps {
  store: LedgerStore;
  queue: PayoutQueue;
  economy: Economy;
  now: () => Date;
  /** The payout's id and its entry's. */
  newId: NewId;
}

/** A concurrent payout folded the creator's shards first: read again. */
class FoldRaced extends Error {}

/**
 * The payout's debit, with the creator's shards folded in by the same write (payoutItems.debit):
 * a lock, a concurrent fold and a short balance each fail it with their own error.
 */
function payoutDebitOp(store: LedgerStore, userId: string, balance: CreatorBalance, diamonds: number): WriteOp {
  return payoutItems.debit(store, userId, balance, diamonds, {
    locked: () => new WalletLockedError('The wallet is locked.'),
    foldRaced: () => new FoldRaced(),
    short: () => new InsufficientDiamondsError('Not enough diamonds are available.'),
  });
}

/** A payout's debit is tried again when a concurrent payout folded the shards first, at most this often. */
export const MAX_PAYOUT_DEBIT_ATTEMPTS = 5;

/** What the checks read and decided: the debit is written against exactly this. */
interface CheckedPayout {
  balance: CreatorBalance;
  accountId: string;
  day: string;
  cents: number;
  maxPerDay: number;
}

/** The checks in docs/API.md's order against one consistent read. */
async function checkPayout(
  deps: RequestPayoutDeps,
  caller: Caller,
  diamonds: number,
  now: Date,
): Promise<CheckedPayout> {
  const { userId } = caller;
  const day = utcDay(now);
  const [balance, account, dayItem] = await Promise.all([
    deps.store.readCreatorBalance(userId, { consistent: true }),
    readPayoutAccount(deps.store, userId, { consistent: true }),
    deps.store.getItem(keys.payoutDay(userId, day), { consistent: true }),
  ]);
  const { wallet } = balance;
  if (wallet.locked) throw new WalletLockedError('The wallet is locked.');
  assertAdult(caller, now);
  if (!account?.payoutsEnabled) {
    throw new PayoutAccountMissingError('Link a payout account and finish its onboarding before requesting a payout.');
  }
  const cents = payoutCents(deps.economy, diamonds);
  const maxPerDay = deps.economy.maxPayoutDiamondsPerDay;
  const paidToday = typeof dayItem?.diamonds === 'number' ? dayItem.diamonds : 0;
  if (diamonds > maxPerDay || paidToday + diamonds > maxPerDay) {
    throw new PayoutLimitExceededError(
      `Payouts are at most ${maxPerDay} diamonds a UTC day; ${Math.max(0, maxPerDay - paidToday)} are left today.`,
    );
  }
  if (wallet.diamonds < diamonds)
    throw new InsufficientDiamondsError(`Only ${wallet.diamonds} diamonds are available.`);
  return { balance, accountId: account.accountId, day, cents, maxPerDay };
}

/** The UTC day's counter takes the payout, on the condition that the day's total stays within the maximum. */
function payoutDayOp(store: LedgerStore, userId: string, checked: CheckedPayout, diamonds: number): WriteOp {
  const { maxPerDay } = checked;
  return payoutItems.dayTaken(
    store,
    userId,
    checked,
    diamonds,
    () => new PayoutLimitExceededError(`Payouts are at most ${maxPerDay} diamonds a UTC day.`),
  );
}

/** The payout item (open, in the sparse index) and the user's index item that lists it. */
function payoutItemOps(
  store: LedgerStore,
  userId: string,
  accountId: string,
  body: PayoutRequestedBody,
  createdAt: string,
): WriteOp[] {
  const { payoutId, diamonds, amount } = body;
  const payout = { payoutId, userId, accountId, diamonds, amount, createdAt };
  const collided = () => new InvariantViolation(`payout id ${payoutId} collided`);
  return [payoutItems.requested(store, payout, collided), payoutItems.listed(store, payout, collided)];
}

/**
 * One attempt: the checks (docs/API.md's order: wallet lock, age, payout account, minimum and whole
 * cents, daily maximum, available diamonds) against one consistent read, then the one
 * transaction. The reads give the right error; the conditions in the transaction make it true
 * under concurrency.
 */
async function debitPayout(
  deps: RequestPayoutDeps,
  caller: Caller,
  diamonds: number,
  request: IdempotentRequest,
  now: Date,
): Promise<StoredAnswer<PayoutRequestedBody>> {
  const { userId } = caller;
  const checked = await checkPayout(deps, caller, diamonds, now);
  const payoutId = deps.newId('po', now);
  const amount: Money = { amount: checked.cents, currency: PAYOUT_CURRENCY };
  const body: PayoutRequestedBody = { payoutId, status: 'requested', diamonds, amount };
  await deps.store.transactWrite([
    // First: a concurrent duplicate must replay the winner's answer, not report the debit's failure.
    recordAnswerOp(deps.store, request, { status: 202, body }, now),
    payoutDebitOp(deps.store, userId, checked.balance, diamonds),
    payoutDayOp(deps.store, userId, checked, diamonds),
    ...payoutItemOps(deps.store, userId, checked.accountId, body, now.toISOString()),
    entryOp(
      deps.store,
      deps.newId,
      userId,
      'payout_requested',
      now,
      { diamonds: -diamonds, pendingDiamonds: diamonds },
      { payoutId },
    ),
  ]);
  return { status: 202, body };
}

export async function requestPayout(
  deps: RequestPayoutDeps,
  caller: Caller,
  input: { diamonds: number },
  idempotency: { key: string; fingerprint: string },
): Promise<StoredAnswer<PayoutRequestedBody> & { replayed: boolean }> {
  const now = deps.now();
  const userId = caller.userId;
  const request: IdempotentRequest = {
    userId,
    scope: PAYOUT_IDEMPOTENCY_SCOPE,
    key: idempotency.key,
    fingerprint: idempotency.fingerprint,
  };
  const answer = await once<PayoutRequestedBody>(deps.store, request, now, async () => {
    for (let attempt = 0; attempt < MAX_PAYOUT_DEBIT_ATTEMPTS; attempt += 1) {
      try {
        return await debitPayout(deps, caller, input.diamonds, request, now);
      } catch (error) {
        if (!(error instanceof FoldRaced)) throw error;
      }
    }
    throw new TransientDependencyError('concurrent payouts kept folding the balance; try again');
  });
  if (!answer.replayed) {
    try {
      await deps.queue.send(answer.body.payoutId);
    } catch (error) {
      // Outbox: the payout is committed; the sweeper sends it when it has sat `requested` too long.
      logger.warn('payout committed but not queued; the sweeper will send it', {
        payoutId: answer.body.payoutId,
        error: error instanceof Error ? error : String(error),
      });
    }
  }
  return answer;
}
