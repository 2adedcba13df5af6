import { keys } from '../adapters/dynamo/keys';
import type { LedgerStore } from '../ports/ledger-store';
import type { Caller } from '../domain/identity';
import type { LedgerEntry, Wallet } from '../domain/ledger';
import { currencyForCountry } from '../domain/catalog';
import type { Currency, Money } from '../domain/money';

export interface WalletView {
  userId: string;
  coins: number;
  owedCoins: number;
  diamonds: number;
  pendingDiamonds: number;
  locked: boolean;
  budget: { monthlyLimit: Money | null; spentThisMonth: Money };
}

export function utcMonth(now: Date): string {
  return now.toISOString().slice(0, 7);
}

/** The currency the caller pays in: their country's price list, USD where there is none. */
export function callerCurrency(caller: Caller): Currency {
  try {
    return caller.country ? currencyForCountry(caller.country) : 'USD';
  } catch {
    return 'USD';
  }
}

/** What a recharge counts toward this month's budget (docs/API.md: from creation until it fails or expires). */
export async function spentThisMonth(
  store: LedgerStore,
  userId: string,
  now: Date,
  consistent = false,
): Promise<number> {
  const item = await store.getItem(keys.budgetMonth(userId, utcMonth(now)), { consistent });
  return typeof item?.spentMinor === 'number' ? item.spentMinor : 0;
}

export function walletView(wallet: Wallet, spentMinor: number, currency: Currency): WalletView {
  return {
    userId: wallet.userId,
    coins: wallet.coins,
    owedCoins: wallet.owedCoins,
    diamonds: wallet.diamonds,
    pendingDiamonds: wallet.pendingDiamonds,
    locked: wallet.locked,
    budget: {
      monthlyLimit: wallet.monthlyLimit,
      spentThisMonth: { amount: spentMinor, currency: wallet.monthlyLimit?.currency ?? currency },
    },
  };
}

export async function getWallet(
  deps: { store: LedgerStore; now: () => Date },
  caller: Caller,
  options: { consistent?: boolean } = {},
): Promise<WalletView> {
  const now = deps.now();
  const [wallet, spent] = await Promise.all([
    deps.store.readWallet(caller.userId, options),
    spentThisMonth(deps.store, caller.userId, now, options.consistent),
  ]);
  return walletView(wallet, spent, callerCurrency(caller));
}

export interface TransactionView {
  id: string;
  type: LedgerEntry['type'];
  coins: number;
  owedCoins: number;
  diamonds: number;
  pendingDiamonds: number;
  createdAt: string;
  ref: LedgerEntry['ref'];
}

export function transactionView(entry: LedgerEntry): TransactionView {
  return {
    id: entry.id,
    type: entry.type,
    coins: entry.coins,
    owedCoins: entry.owedCoins,
    diamonds: entry.diamonds,
    pendingDiamonds: entry.pendingDiamonds,
    createdAt: entry.createdAt,
    ref: entry.ref,
  };
}

/** Cursors are opaque to clients: the last sort key, base64url-encoded. */
export function encodeCursor(sortKey: string): string {
  return Buffer.from(sortKey, 'utf8').toString('base64url');
}
export function decodeCursor(cursor: string): string | undefined {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  return decoded.startsWith('TX#') ? decoded : undefined;
}

export async function listTransactions(
  deps: { store: LedgerStore },
  caller: Caller,
  page: { limit: number; cursor?: string },
): Promise<{ items: TransactionView[]; nextCursor: string | null }> {
  const wallet = await deps.store.readWallet(caller.userId);
  const cursor = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
  const { entries, nextCursor } = await deps.store.listEntries(caller.userId, {
    limit: page.limit,
    creatorShards: wallet.creatorShards,
    ...(cursor !== undefined && { cursor }),
  });
  return { items: entries.map(transactionView), nextCursor: nextCursor === null ? null : encodeCursor(nextCursor) };
}
