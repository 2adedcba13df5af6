import { keys } from '../adapters/dynamo/keys';
import { payoutAccountItems } from '../adapters/dynamo/payout-account-items';
import type { Item, LedgerStore } from '../ports/ledger-store';
import type { ConnectPayouts } from '../adapters/stripe-connect';
import { InvariantViolation, NotFoundError } from '../domain/errors';
import { assertAdult, assertPayoutCountry, type Caller } from '../domain/identity';
import { logger } from '../logger';

/**
 * A creator's payout account: one Stripe Connect (Express) account per user, kept at
 * `USER#<u>`/`PAYOUTACCOUNT` with the reverse mapping `ACCOUNT#<a>` -> user, which the
 * `account.updated` webhook uses to find whose account changed.
 */
export interface PayoutAccount {
  accountId: string;
  payoutsEnabled: boolean;
}

export interface PayoutAccountCreated extends PayoutAccount {
  onboardingUrl: string;
}

/** Thrown inside the create transaction when another request already linked an account. */
class AlreadyLinked extends Error {}

function accountFromItem(item: Item | undefined): PayoutAccount | undefined {
  if (!item) return undefined;
  if (typeof item.accountId !== 'string')
    throw new InvariantViolation(`payout account item ${String(item.pk)} has no accountId`);
  return { accountId: item.accountId, payoutsEnabled: item.payoutsEnabled === true };
}

export async function readPayoutAccount(
  store: LedgerStore,
  userId: string,
  options: { consistent?: boolean } = {},
): Promise<PayoutAccount | undefined> {
  return accountFromItem(await store.getItem(keys.payoutAccount(userId), options));
}

/**
 * POST /v1/creator/payout-account: creates the account once; a second call answers the same
 * account with a fresh onboarding link (Stripe's links expire within minutes). Two concurrent
 * first calls get the same Stripe account (its idempotency key is derived from the user), and
 * the conditional puts keep exactly one mapping.
 */
export async function createPayoutAccount(
  deps: { store: LedgerStore; connect: ConnectPayouts; now: () => Date },
  caller: Caller,
): Promise<PayoutAccountCreated> {
  const now = deps.now();
  // Only adults receive payouts (docs/API.md, Age): linking a bank account is the first step of one.
  assertAdult(caller, now);
  assertPayoutCountry(caller);
  let account = await readPayoutAccount(deps.store, caller.userId, { consistent: true });
  if (!account) {
    const created = await deps.connect.createAccount({
      userId: caller.userId,
      ...(caller.country !== undefined && { country: caller.country }),
    });
    const createdAt = now.toISOString();
    try {
      const ownership = { userId: caller.userId, accountId: created.accountId, createdAt };
      await deps.store.transactWrite([
        payoutAccountItems.linked(
          deps.store,
          { ...ownership, payoutsEnabled: created.payoutsEnabled },
          () => new AlreadyLinked(),
        ),
        // The same account may be mapped again only to the same user (a retried create).
        payoutAccountItems.mapped(
          deps.store,
          ownership,
          (old) =>
            new InvariantViolation(`Connect account ${created.accountId} is already linked to ${String(old?.userId)}`),
        ),
      ]);
      account = created;
    } catch (error) {
      if (!(error instanceof AlreadyLinked)) throw error;
      account = await readPayoutAccount(deps.store, caller.userId, { consistent: true });
      if (!account) throw new InvariantViolation('payout account vanished after a conflicting create');
    }
  }
  const link = await deps.connect.createAccountLink(account.accountId);
  return { accountId: account.accountId, onboardingUrl: link.url, payoutsEnabled: account.payoutsEnabled };
}

/** GET /v1/creator/payout-account. */
export async function getPayoutAccount(deps: { store: LedgerStore }, caller: Caller): Promise<PayoutAccount> {
  const account = await readPayoutAccount(deps.store, caller.userId);
  if (!account) throw new NotFoundError('No payout account is linked yet.');
  return account;
}

/**
 * Stripe's `account.updated` (called by the webhook use case): records whether the account may
 * receive payouts. An account this ledger never linked is ignored (another platform's event, or
 * a test fixture); the webhook still answers 200 so Stripe stops retrying.
 *
 * `now` is optional only because the webhook use case (stripe-webhook.ts, another change's file)
 * does not pass it yet; once it passes `now: deps.now`, make it required and drop the fallback.
 */
export async function applyAccountUpdated(
  deps: { store: LedgerStore; now: () => Date },
  account: { id: string; payoutsEnabled: boolean },
): Promise<void> {
  const mapping = await deps.store.getItem(keys.connectAccount(account.id), { consistent: true });
  if (!mapping || typeof mapping.userId !== 'string') {
    logger.info('account.updated for an account not linked here; ignored', { accountId: account.id });
    return;
  }
  const now = deps.now();
  await deps.store.transactWrite([
    // The account item and its mapping are written together, so it exists; never create a partial one.
    payoutAccountItems.payoutsEnabledSet(
      deps.store,
      { userId: mapping.userId, accountId: account.id, payoutsEnabled: account.payoutsEnabled },
      now.toISOString(),
      () => new InvariantViolation(`account.updated for ${account.id}: the user's payout account is another one`),
    ),
  ]);
}
