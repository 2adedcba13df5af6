/**
 * Named condition expressions: every money write says, by name, what must hold for it to apply.
 * A failed condition is turned into the domain error it means by the op that carries it.
 */
export const conditions = {
  /** The sender's balance pays for the gift: checked in the write, never by a read before it. */
  coinsCoverCost: 'coins >= :cost',
  walletUnlocked: '(attribute_not_exists(locked) OR locked = :false)',
  diamondsCoverPayout: 'diamonds >= :diamonds',
  pendingCoversSettlement: 'pendingDiamonds >= :diamonds',
  /** An idempotency record, event marker or entry is written once. */
  isNew: 'attribute_not_exists(pk)',
  exists: 'attribute_exists(pk)',
} as const;

export const FALSE = { BOOL: false } as const;
