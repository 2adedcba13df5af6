import { caseItems } from '../adapters/dynamo/case-items';
import { keys, type ItemKey } from '../adapters/dynamo/keys';
import { entryWithIdQuery, supersededBudgetChange, walletItems } from '../adapters/dynamo/wallet-items';
import type { Item, LedgerStore, PageKey, WriteOp } from '../ports/ledger-store';
import {
  BudgetSetByGuardianError,
  ConflictError,
  NotFoundError,
  ValidationError,
  WalletLockedError,
} from '../domain/errors';
import type { Caller } from '../domain/identity';
import type { Money } from '../domain/money';
import { reportCaseOp } from './desk-cases';
import { callerCurrency, getWallet, type WalletView } from './wallet';

/**
 * What a user sets on their own wallet: a monthly budget, a lock, and reports of transactions
 * they do not recognise (which also lock the wallet, as a bank freezes a card).
 */

/** Pages of a user's history searched for a reported transaction (each page is up to 1 MB). */
export const MAX_REPORT_SEARCH_PAGES = 50;

export interface WalletSettingsDeps {
  store: LedgerStore;
  now: () => Date;
  newId: (prefix: string, now: Date) => string;
}

/** PUT /v1/wallet/budget: the limit is in the caller's price-list currency, or null to remove it. */
export async function setBudget(
  deps: WalletSettingsDeps,
  caller: Caller,
  monthlyLimit: Money | null,
): Promise<WalletView> {
  if (monthlyLimit !== null) {
    const currency = callerCurrency(caller);
    if (monthlyLimit.currency !== currency) {
      throw new ValidationError(`The budget must be in ${currency}, the currency of your price list.`, {
        details: [{ path: 'body.monthlyLimit.currency', message: `must be ${currency}` }],
      });
    }
  }
  await commitBudgetChange(deps.store, deps.now(), (now, onLater) => {
    const at = now.toISOString();
    return [
      // The history of limits, in the same write: `npm run reconcile` checks every credit against the limit in force then.
      walletItems.budgetLimitChanged(deps.store, {
        userId: caller.userId,
        at,
        changeId: deps.newId('blc', now),
        limitMinor: monthlyLimit?.amount ?? null,
        currency: monthlyLimit?.currency ?? null,
      }),
      walletItems.setOwnBudget(
        deps.store,
        caller.userId,
        { limit: monthlyLimit, at },
        (old) =>
          onLater(old) ??
          new BudgetSetByGuardianError('Your guardian set this budget; you can lower it, but not raise or remove it.'),
      ),
    ];
  });
  return getWallet(deps, caller, { consistent: true });
}

/** A budget change is stamped again at most this many times before the caller is told to retry. */
const BUDGET_CHANGE_ATTEMPTS = 5;

/** The wallet already holds a change stamped at or after this one's time (`lastAt`). */
class LaterBudgetChange extends Error {
  constructor(readonly lastAt: string) {
    super('a later budget change is on the wallet');
  }
}

/**
 * Commits a budget change (its history record and the wallet's limit, in one transaction)
 * stamped later than the wallet's last change. When a change stamped later committed first (two
 * racing, or another instance's clock ahead), this one is stamped 1 ms after it and tried again:
 * the changes land in the order of their stamps, which is the order the books judge credits by,
 * so the wallet's limit is always the history's last. `build` gets the stamp and the refusal to
 * return for a wallet that already holds a later change (undefined otherwise).
 */
export async function commitBudgetChange(
  store: LedgerStore,
  now: Date,
  build: (stamp: Date, onLater: (old: Item | undefined) => Error | undefined) => WriteOp[],
): Promise<void> {
  let stamp = now;
  for (let attempt = 1; ; attempt += 1) {
    const at = stamp.toISOString();
    const onLater = (old: Item | undefined) =>
      supersededBudgetChange(old, at) ? new LaterBudgetChange(String(old?.budgetChangedAt)) : undefined;
    try {
      await store.transactWrite(build(stamp, onLater));
      return;
    } catch (error) {
      if (!(error instanceof LaterBudgetChange)) throw error;
      if (attempt >= BUDGET_CHANGE_ATTEMPTS)
        throw new ConflictError('The budget is changing too often at once; read the wallet and try again.');
      stamp = new Date(Math.max(stamp.getTime(), Date.parse(error.lastAt)) + 1);
    }
  }
}

/**
 * PUT /v1/wallet/lock: the owner locks or unlocks. A wallet locked after a dispute stays locked
 * (WALLET_LOCKED): the condition is in the write, so a dispute landing at the same moment wins.
 */
export async function setLock(
  deps: Pick<WalletSettingsDeps, 'store' | 'now'>,
  caller: Caller,
  locked: boolean,
): Promise<WalletView> {
  await deps.store.transactWrite([
    locked
      ? walletItems.lockByOwner(deps.store, caller.userId)
      : walletItems.unlockByOwner(
          deps.store,
          caller.userId,
          () => new WalletLockedError('This wallet was locked after a payment dispute; contact support to unlock it.'),
        ),
  ]);
  return getWallet(deps, caller, { consistent: true });
}

/** Where the caller's ledger entry with this id is stored (creator shards included); undefined if it is not theirs. */
async function findOwnEntry(store: LedgerStore, userId: string, transactionId: string): Promise<ItemKey | undefined> {
  const wallet = await store.readWallet(userId, { consistent: true });
  const partitions = [keys.wallet(userId).pk];
  for (let shard = 0; shard < wallet.creatorShards; shard += 1)
    partitions.push(keys.shardEntryPartition(userId, shard));
  let pagesLeft = MAX_REPORT_SEARCH_PAGES;
  for (const pk of partitions) {
    let startKey: PageKey | undefined;
    do {
      if (pagesLeft-- <= 0) return undefined;
      const page = await store.query(entryWithIdQuery(pk, transactionId, startKey));
      const found = page.items[0];
      if (found) return { pk: String(found.pk), sk: String(found.sk) };
      startKey = page.lastEvaluatedKey;
    } while (startKey);
  }
  return undefined;
}

/**
 * POST /v1/wallet/transactions/{id}/report: records the report and locks the wallet (owner lock)
 * in one transaction, with the support desk's case. An id outside the caller's history is NOT_FOUND, whoever it belongs to.
 */
export async function reportTransaction(
  deps: WalletSettingsDeps,
  caller: Caller,
  transactionId: string,
  reason: string,
): Promise<{ reportId: string }> {
  const transactionKey = await findOwnEntry(deps.store, caller.userId, transactionId);
  if (!transactionKey) throw new NotFoundError('No such transaction.');
  const now = deps.now();
  const reportId = deps.newId('rpt', now);
  await deps.store.transactWrite([
    caseItems.fileReport(deps.store, {
      reportId,
      userId: caller.userId,
      transactionId,
      reason,
      status: 'open',
      createdAt: now.toISOString(),
    }),
    // The support desk's case, in the same write: no report goes unseen by the desk.
    reportCaseOp(deps.store, { reportId, userId: caller.userId, transactionId, transactionKey, reason }, now),
    walletItems.lockByOwner(deps.store, caller.userId),
  ]);
  return { reportId };
}
