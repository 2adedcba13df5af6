import type { Money } from '../../domain/money';
import type { ConditionFailure, Item, LedgerStore, PageKey, QueryInput, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { ENTRY_PREFIX, keys } from './keys';

/**
 * The wallet item's named writes that are not money moves: locks and the monthly budget. Each
 * carries its key, its condition and the values the condition needs; the use cases compose them
 * into transactions and never see an expression.
 */
export const walletItems = {
  /** The owner locks (also a report's lock). Locks keep the strongest reason: never over a dispute's. */
  lockByOwner(store: LedgerStore, userId: string): WriteOp {
    return store.update('wallet lock', keys.wallet(userId), {
      expression: 'SET locked = :true, lockReason = if_not_exists(lockReason, :owner)',
      values: { ':true': true, ':owner': 'owner' },
    });
  },

  /** The owner unlocks; a wallet locked after a dispute stays locked (`onDisputeLock`). */
  unlockByOwner(store: LedgerStore, userId: string, onDisputeLock: ConditionFailure): WriteOp {
    return store.update(
      'wallet unlock',
      keys.wallet(userId),
      {
        expression: 'SET locked = :false REMOVE lockReason',
        condition: 'attribute_not_exists(lockReason) OR lockReason <> :dispute',
        values: { ':false': false, ':dispute': 'dispute' },
      },
      onDisputeLock,
    );
  },

  /**
   * Lifts any lock, a dispute's included: only an operator's resolution does this. The wallet must
   * exist (`onMissing`): never create a half wallet item without balances.
   */
  unlockByOperator(store: LedgerStore, userId: string, onMissing: ConditionFailure): WriteOp {
    return store.update(
      'wallet unlock',
      keys.wallet(userId),
      {
        expression: 'SET locked = :false REMOVE lockReason',
        condition: conditions.exists,
        values: { ':false': false },
      },
      onMissing,
    );
  },

  /**
   * The owner's monthly budget, or none, as changed at `at`. A budget a guardian set may be
   * lowered, never raised or removed; and a change never lands over a later one (two changes
   * racing commit in the order of their times, the order the budget history is judged in). Both
   * conditions are in the write; `onRefused` tells which failed (`supersededBudgetChange`).
   */
  setOwnBudget(store: LedgerStore, userId: string, change: BudgetChange, onRefused: ConditionFailure): WriteOp {
    return store.update(
      'wallet budget',
      keys.wallet(userId),
      change.limit === null
        ? {
            expression: 'REMOVE monthlyLimitAmount, monthlyLimitCurrency SET budgetChangedAt = :at',
            condition: `attribute_not_exists(budgetSetBy) AND ${LATER_THAN_LAST_BUDGET_CHANGE}`,
            values: { ':at': change.at },
          }
        : {
            expression: 'SET monthlyLimitAmount = :amount, monthlyLimitCurrency = :currency, budgetChangedAt = :at',
            condition: `(attribute_not_exists(budgetSetBy) OR monthlyLimitAmount >= :amount) AND ${LATER_THAN_LAST_BUDGET_CHANGE}`,
            values: { ':amount': change.limit.amount, ':currency': change.limit.currency, ':at': change.at },
          },
      onRefused,
    );
  },

  /**
   * One change of the monthly limit (null: none), beside the wallet: the history `npm run
   * reconcile` checks every credit against the limit in force then. `setBy` names a guardian.
   */
  budgetLimitChanged(
    store: LedgerStore,
    change: {
      userId: string;
      at: string;
      changeId: string;
      limitMinor: number | null;
      currency: string | null;
      setBy?: string;
    },
  ): WriteOp {
    return store.put('budget limit change', {
      ...keys.budgetLimitChange(change.userId, change.at, change.changeId),
      userId: change.userId,
      at: change.at,
      limitMinor: change.limitMinor,
      currency: change.currency,
      ...(change.setBy !== undefined && { setBy: change.setBy }),
    });
  },

  /** A guardian approved: the consent, who gave it, when, and the teenager's country then. */
  grantConsent(
    store: LedgerStore,
    teenId: string,
    consent: { guardianId: string; at: string; country: string | null },
  ): WriteOp {
    return store.update('teen consent', keys.wallet(teenId), {
      expression:
        'SET appConsent = :granted, consentGuardianId = :guardian, consentAt = :at, consentCountry = :country',
      values: {
        ':granted': 'granted',
        ':guardian': consent.guardianId,
        ':at': consent.at,
        ':country': consent.country,
      },
    });
  },

  /** The guardian of record withdraws consent (`onNotGuardian` for anyone else). */
  revokeConsent(
    store: LedgerStore,
    teenId: string,
    revocation: { guardianId: string; at: string },
    onNotGuardian: ConditionFailure,
  ): WriteOp {
    return asGuardianOf(store, 'consent revoked', revocation.guardianId, teenId, onNotGuardian, {
      expression: 'SET appConsent = :revoked, consentAt = :at',
      values: { ':revoked': 'revoked', ':at': revocation.at },
    });
  },

  /**
   * The guardian of record sets the teenager's budget, which the teenager may then only lower.
   * Like the owner's, the change never lands over a later one (`onRefused` for both failures).
   */
  setBudgetAsGuardian(
    store: LedgerStore,
    teenId: string,
    guardianId: string,
    change: BudgetChange & { limit: Money },
    onRefused: ConditionFailure,
  ): WriteOp {
    return store.update(
      'ward budget',
      keys.wallet(teenId),
      {
        expression:
          'SET monthlyLimitAmount = :amount, monthlyLimitCurrency = :currency, budgetSetBy = :setBy, budgetChangedAt = :at',
        condition: `consentGuardianId = :guardian AND ${LATER_THAN_LAST_BUDGET_CHANGE}`,
        values: {
          ':amount': change.limit.amount,
          ':currency': change.limit.currency,
          ':setBy': 'guardian',
          ':at': change.at,
          ':guardian': guardianId,
        },
      },
      onRefused,
    );
  },
};

/** A budget change: the new limit (none: no limit) and when it was made (ISO time, as in its history record). */
export interface BudgetChange {
  limit: Money | null;
  at: string;
}

/** The wallet's last budget change is older than this one (`:at`); a wallet never changed has none. */
const LATER_THAN_LAST_BUDGET_CHANGE = '(attribute_not_exists(budgetChangedAt) OR budgetChangedAt < :at)';

/**
 * Whether a refused budget change lost to a later change (the wallet as it was shows one at or
 * after `at`), rather than to the guardian's rules.
 */
export function supersededBudgetChange(old: Item | undefined, at: string): boolean {
  return typeof old?.budgetChangedAt === 'string' && old.budgetChangedAt >= at;
}

/** A write on the teenager's wallet conditioned on the caller being its guardian of record. */
function asGuardianOf(
  store: LedgerStore,
  label: string,
  guardianId: string,
  teenId: string,
  onNotGuardian: ConditionFailure,
  update: { expression: string; values: Item },
): WriteOp {
  return store.update(
    label,
    keys.wallet(teenId),
    {
      expression: update.expression,
      condition: 'consentGuardianId = :guardian',
      values: { ...update.values, ':guardian': guardianId },
    },
    onNotGuardian,
  );
}

/**
 * What a teenager's spending is conditioned on: the token's consent claim, as long as the app has
 * not recorded a revocation, or the app's own recorded consent. Adults carry no condition.
 */
export type ConsentCondition = 'token-claim-not-revoked' | 'granted-in-app';

/**
 * The consent conditions as expressions on the wallet item, to AND into a write on the teenager's
 * wallet (a gift's debit, a recharge's wallet check): a guardian's revocation that commits between
 * the request's read and its transaction still stops the write.
 */
export const CONSENT_EXPRESSIONS: Record<ConsentCondition, string> = {
  'token-claim-not-revoked': '(attribute_not_exists(appConsent) OR appConsent <> :revoked)',
  'granted-in-app': 'appConsent = :granted',
};

/** The expression values the consent condition names (none without a condition). */
export function consentValues(condition: ConsentCondition | undefined): Record<string, string> {
  if (condition === undefined) return {};
  return condition === 'granted-in-app' ? { ':granted': 'granted' } : { ':revoked': 'revoked' };
}

/**
 * One page of an entry partition, filtered to the entry with this id: a page may hold none and
 * still have more (`lastEvaluatedKey`).
 */
export function entryWithIdQuery(partitionKey: string, entryId: string, startKey?: PageKey): QueryInput {
  return {
    keyCondition: 'pk = :pk AND begins_with(sk, :prefix)',
    filter: 'entryId = :id',
    values: { ':pk': partitionKey, ':prefix': ENTRY_PREFIX, ':id': entryId },
    ...(startKey && { exclusiveStartKey: startKey }),
  };
}
