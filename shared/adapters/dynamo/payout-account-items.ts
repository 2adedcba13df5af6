import type { ConditionFailure, LedgerStore, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { keys } from './keys';

/**
 * A creator's payout account: `USER#<u>`/`PAYOUTACCOUNT` names their one Stripe Connect account,
 * and `ACCOUNT#<a>` maps the account back to the user for the `account.updated` webhook. The two
 * are written together, so the account item exists whenever its mapping does.
 */
export const payoutAccountItems = {
  /** The user's payout account, linked once (`onAlreadyLinked`: another request linked one first). */
  linked(
    store: LedgerStore,
    account: { userId: string; accountId: string; payoutsEnabled: boolean; createdAt: string },
    onAlreadyLinked: ConditionFailure,
  ): WriteOp {
    return store.put(
      'payout account',
      {
        ...keys.payoutAccount(account.userId),
        userId: account.userId,
        accountId: account.accountId,
        payoutsEnabled: account.payoutsEnabled,
        createdAt: account.createdAt,
        updatedAt: account.createdAt,
      },
      { expression: conditions.isNew },
      onAlreadyLinked,
    );
  },

  /**
   * The Connect account's mapping back to its user. The same account may be mapped again only to
   * the same user (a retried create); `onOtherUser` gets the mapping as it was.
   */
  mapped(
    store: LedgerStore,
    mapping: { accountId: string; userId: string; createdAt: string },
    onOtherUser: ConditionFailure,
  ): WriteOp {
    return store.put(
      'connect account mapping',
      { ...keys.connectAccount(mapping.accountId), userId: mapping.userId, createdAt: mapping.createdAt },
      { expression: `${conditions.isNew} OR userId = :userId`, values: { ':userId': mapping.userId } },
      onOtherUser,
    );
  },

  /**
   * Whether the account may receive payouts, as Stripe last said. Only on the user's account item
   * as it exists and names this account (`onOtherAccount`): never a partial item.
   */
  payoutsEnabledSet(
    store: LedgerStore,
    account: { userId: string; accountId: string; payoutsEnabled: boolean },
    at: string,
    onOtherAccount: ConditionFailure,
  ): WriteOp {
    return store.update(
      'payout account enabled',
      keys.payoutAccount(account.userId),
      {
        expression: 'SET payoutsEnabled = :enabled, updatedAt = :now',
        condition: `${conditions.exists} AND accountId = :accountId`,
        values: { ':enabled': account.payoutsEnabled, ':now': at, ':accountId': account.accountId },
      },
      onOtherAccount,
    );
  },
};
