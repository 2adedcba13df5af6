import { keys } from '../../adapters/dynamo/keys';
import { userPayoutsQuery } from '../../adapters/dynamo/payout-items';
import type { LedgerStore } from '../../ports/ledger-store';
import { InvariantViolation, NotFoundError } from '../../domain/errors';
import type { Caller } from '../../domain/identity';
import { payoutFromItem, type PayoutView, payoutView, USER_PAYOUT_PREFIX, USER_PAYOUT_PREFIX_END } from './record';

/** The largest page of GET /v1/payouts. */
export const MAX_PAYOUT_PAGE = 100;

/** GET /v1/payouts/{payoutId}: someone else's payout is NOT_FOUND, so its existence never leaks. */
export async function getPayout(deps: { store: LedgerStore }, caller: Caller, payoutId: string): Promise<PayoutView> {
  const item = await deps.store.getItem(keys.payout(payoutId));
  if (!item || item.userId !== caller.userId) throw new NotFoundError('No such payout.');
  return payoutView(payoutFromItem(item));
}

export function encodePayoutCursor(sortKey: string): string {
  return Buffer.from(sortKey, 'utf8').toString('base64url');
}
export function decodePayoutCursor(cursor: string): string | undefined {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  return decoded.startsWith(USER_PAYOUT_PREFIX) ? decoded : undefined;
}

/** GET /v1/payouts: the caller's payouts, newest first, from the per-user index items. */
export async function listPayouts(
  deps: { store: LedgerStore },
  caller: Caller,
  page: { limit: number; cursor?: string },
): Promise<{ items: PayoutView[]; nextCursor: string | null }> {
  const limit = Math.min(Math.max(1, page.limit), MAX_PAYOUT_PAGE);
  const upper = page.cursor === undefined ? USER_PAYOUT_PREFIX_END : decodePayoutCursor(page.cursor);
  if (upper === undefined) throw new InvariantViolation('listPayouts got a cursor the edge should have refused');
  // One more to know whether a next page exists, and one more because BETWEEN includes the cursor.
  const { items } = await deps.store.query(
    userPayoutsQuery(caller.userId, upper, limit + (page.cursor === undefined ? 1 : 2)),
  );
  const index = items.filter((item) => typeof item.sk === 'string' && item.sk < upper);
  const pageItems = index.slice(0, limit);
  const payoutIds = pageItems.map((item) => String(item.payoutId));
  const payouts = new Map(
    (
      await deps.store.batchGet(
        payoutIds.map((payoutId) => keys.payout(payoutId)),
        { consistent: true },
      )
    ).map((item) => {
      const payout = payoutFromItem(item);
      return [payout.payoutId, payout] as const;
    }),
  );
  const views: PayoutView[] = [];
  for (const payoutId of payoutIds) {
    const payout = payouts.get(payoutId);
    if (!payout) throw new InvariantViolation(`user payout index names a missing payout ${payoutId}`);
    views.push(payoutView(payout));
  }
  const last = pageItems[pageItems.length - 1];
  const nextCursor = index.length > limit && last ? encodePayoutCursor(String(last.sk)) : null;
  return { items: views, nextCursor };
}
