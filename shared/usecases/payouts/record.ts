import * as z from 'zod';
import { newId } from '../../adapters/ids';
import { conditions } from '../../adapters/dynamo/conditions';
import { keys } from '../../adapters/dynamo/keys';
import type { Item, LedgerStore, WriteOp } from '../../ports/ledger-store';
import { entryItem } from '../../adapters/dynamo/items';
import { InvariantViolation } from '../../domain/errors';
import type { LedgerEntry } from '../../domain/ledger';
import type { Money } from '../../domain/money';

/** The payout record: its item, the view the API answers with, its ledger entries. */

/** The sparse index partition of payouts not yet settled. */
export const PAYOUT_OPEN = 'PAYOUT_OPEN';
export const PAYOUT_CURRENCY = 'USD';
export const PAYOUT_STATUSES = ['requested', 'processing', 'paid', 'failed'] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];

export const USER_PAYOUT_PREFIX = 'PAYOUT#';
export const USER_PAYOUT_PREFIX_END = 'PAYOUT$';

export const STATUS_NAMES = { '#status': 'status' } as const;

/** Every write that changes a wallet's diamonds or pending diamonds on the main item bumps this (see readCreatorBalance). */
export const BUMP_DIAMONDS_VERSION = 'diamondsVersion = if_not_exists(diamondsVersion, :zero) + :one';

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
  userId: string,
  type: LedgerEntry['type'],
  now: Date,
  deltas: { diamonds: number; pendingDiamonds: number },
  ref: LedgerEntry['ref'],
): WriteOp {
  const createdAt = now.toISOString();
  const value: LedgerEntry = {
    id: newId('tx', now),
    userId,
    type,
    coins: 0,
    owedCoins: 0,
    diamonds: deltas.diamonds,
    pendingDiamonds: deltas.pendingDiamonds,
    createdAt,
    ref,
  };
  return store.put(
    `${type} entry`,
    entryItem(keys.entry(userId, createdAt, value.id), value),
    { expression: conditions.isNew },
    () => new InvariantViolation('entry id collided'),
  );
}
