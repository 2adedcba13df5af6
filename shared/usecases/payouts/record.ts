import * as z from 'zod';
import { payoutItems } from '../../adapters/dynamo/payout-items';
import type { Item, LedgerStore, WriteOp } from '../../ports/ledger-store';
import { InvariantViolation } from '../../domain/errors';
import type { LedgerEntry } from '../../domain/ledger';
import type { Money } from '../../domain/money';

/** The payout record: its item, the view the API answers with, its ledger entries. */

/** The payout item's layout (the open index, the user's list items) is the adapter's; re-exported for the API's cursor. */
export { PAYOUT_OPEN, USER_PAYOUT_PREFIX, USER_PAYOUT_PREFIX_END } from '../../adapters/dynamo/payout-items';
export const PAYOUT_CURRENCY = 'USD';
export const PAYOUT_STATUSES = ['requested', 'processing', 'paid', 'failed'] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];

/** Makes a new id with its type prefix and creation time: the handlers inject the ids adapter's newId. */
export type NewId = (prefix: string, now: Date) => string;

const payoutItemSchema = z.object({
  payoutId: z.string().min(1),
  userId: z.string().min(1),
  accountId: z.string().min(1),
  diamonds: z.number().int().positive(),
  amount: z.object({ amount: z.number().int().nonnegative(), currency: z.literal(PAYOUT_CURRENCY) }),
  status: z.enum(PAYOUT_STATUSES),
  createdAt: z.string().min(1),
  updatedAt: z.string().min(1),
  /** When something last pushed the payout along (request, worker, sweeper); the index sort key. */
  statusSk: z.string().optional(),
  sweeps: z.number().int().nonnegative().optional(),
  attempts: z.number().int().nonnegative().optional(),
  transferId: z.string().optional(),
  failureCode: z.string().optional(),
});
export type Payout = z.infer<typeof payoutItemSchema>;

export function payoutFromItem(item: Item): Payout {
  const parsed = payoutItemSchema.safeParse(item);
  if (!parsed.success)
    throw new InvariantViolation(`payout item ${String(item.pk)} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

export interface PayoutView {
  payoutId: string;
  status: PayoutStatus;
  diamonds: number;
  amount: Money;
  createdAt: string;
  updatedAt: string;
  /** Why Stripe refused the transfer, when the payout failed. */
  failureCode?: string;
}

export function payoutView(payout: Payout): PayoutView {
  return {
    payoutId: payout.payoutId,
    status: payout.status,
    diamonds: payout.diamonds,
    amount: { amount: payout.amount.amount, currency: payout.amount.currency },
    createdAt: payout.createdAt,
    updatedAt: payout.updatedAt,
    ...(payout.status === 'failed' && payout.failureCode !== undefined && { failureCode: payout.failureCode }),
  };
}

export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** An immutable payout entry on the user's main partition; its deltas sum into the wallet's fields. */
export function entryOp(
  store: LedgerStore,
  newId: NewId,
  userId: string,
  type: LedgerEntry['type'],
  now: Date,
  deltas: { diamonds: number; pendingDiamonds: number },
  ref: LedgerEntry['ref'],
): WriteOp {
  const value: LedgerEntry = {
    id: newId('tx', now),
    userId,
    type,
    coins: 0,
    owedCoins: 0,
    diamonds: deltas.diamonds,
    pendingDiamonds: deltas.pendingDiamonds,
    createdAt: now.toISOString(),
    ref,
  };
  return payoutItems.entry(store, value, () => new InvariantViolation('entry id collided'));
}
