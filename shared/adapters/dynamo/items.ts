import { InvariantViolation } from '../../domain/errors';
import { ENTRY_TYPES, type EntryType, type LedgerEntry, type LockReason, type Wallet } from '../../domain/ledger';
import { CURRENCIES, type Currency } from '../../domain/money';
import type { Item, ItemKey } from '../../ports/ledger-store';

/**
 * How wallets and entries are laid out as ledger items, both ways. Plain data only: the use
 * cases build their writes with these, so nothing here may import the AWS SDK.
 */

export function wholeNumber(value: unknown, name: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new InvariantViolation(`${name} is not an integer: ${String(value)}`);
  return value;
}

export function walletFromItem(userId: string, item: Item): Wallet {
  const currency = item.monthlyLimitCurrency;
  const limit = item.monthlyLimitAmount;
  const lockReason =
    item.lockReason === 'owner' || item.lockReason === 'dispute' ? (item.lockReason as LockReason) : null;
  return {
    userId,
    coins: wholeNumber(item.coins, 'coins'),
    owedCoins: wholeNumber(item.owedCoins, 'owedCoins'),
    diamonds: wholeNumber(item.diamonds, 'diamonds'),
    pendingDiamonds: wholeNumber(item.pendingDiamonds, 'pendingDiamonds'),
    locked: item.locked === true,
    lockReason: item.locked === true ? lockReason : null,
    monthlyLimit:
      typeof limit === 'number' && typeof currency === 'string' && (CURRENCIES as readonly string[]).includes(currency)
        ? { amount: limit, currency: currency as Currency }
        : null,
    creatorShards: wholeNumber(item.creatorShards, 'creatorShards'),
    appConsent: item.appConsent === 'granted' || item.appConsent === 'revoked' ? item.appConsent : null,
    budgetSetBy: item.budgetSetBy === 'guardian' ? 'guardian' : null,
  };
}

export function entryFromItem(item: Item): LedgerEntry {
  const type = item.entryType;
  if (typeof type !== 'string' || !(ENTRY_TYPES as readonly string[]).includes(type)) {
    throw new InvariantViolation(`ledger entry ${String(item.sk)} has unknown type ${String(type)}`);
  }
  const ref = item.ref;
  return {
    id: String(item.entryId),
    userId: String(item.userId),
    type: type as EntryType,
    coins: wholeSigned(item.coins),
    owedCoins: wholeSigned(item.owedCoins),
    diamonds: wholeSigned(item.diamonds),
    pendingDiamonds: wholeSigned(item.pendingDiamonds),
    createdAt: String(item.createdAt),
    ref: typeof ref === 'object' && ref !== null ? (ref as Record<string, string | number>) : {},
  };
}

function wholeSigned(value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new InvariantViolation(`entry amount is not an integer: ${String(value)}`);
  return value;
}

/** The attributes of an entry item, ready for `LedgerStore.put`. */
export function entryItem(key: ItemKey, entry: LedgerEntry, extra: Item = {}): Item {
  return {
    ...key,
    entryId: entry.id,
    userId: entry.userId,
    entryType: entry.type,
    coins: entry.coins,
    owedCoins: entry.owedCoins,
    diamonds: entry.diamonds,
    pendingDiamonds: entry.pendingDiamonds,
    createdAt: entry.createdAt,
    ref: entry.ref,
    ...extra,
  };
}
