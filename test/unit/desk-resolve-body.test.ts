import { resolveBody } from '../../functions/http/operator-cases-resolve';
import { MAX_TRANSACTION_ITEMS } from '../../shared/ports/ledger-store';
import { MAX_DESK_NOTE_LENGTH, MAX_DESK_REFUNDS } from '../../shared/usecases/desk';

/** The resolve body at its edges: the refunds' count is what one DynamoDB transaction holds. */
const refunds = (count: number) => Array.from({ length: count }, (_, index) => ({ rechargeId: `rc_${index}` }));
const base = { lock: 'keep', note: '', reason: 'checked' };

it('takes MAX_DESK_REFUNDS refunds and refuses one more; the closing transaction stays within DynamoDB', () => {
  expect(resolveBody.safeParse({ ...base, refunds: refunds(MAX_DESK_REFUNDS) }).success).toBe(true);
  expect(resolveBody.safeParse({ ...base, refunds: refunds(MAX_DESK_REFUNDS + 1) }).success).toBe(false);
  // One op per refund, plus case, audit, wallet, report, notification and idempotency record.
  expect(MAX_DESK_REFUNDS + 6).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
});

it('refuses a recharge named twice, an unknown lock decision, unknown fields, no reason, and a note too long', () => {
  expect(resolveBody.safeParse({ ...base, refunds: [{ rechargeId: 'rc_1' }, { rechargeId: 'rc_1' }] }).success).toBe(
    false,
  );
  expect(resolveBody.safeParse({ ...base, lock: 'open' }).success).toBe(false);
  expect(resolveBody.safeParse({ ...base, coins: 5 }).success).toBe(false);
  expect(resolveBody.safeParse({ ...base, refunds: [{ rechargeId: 'rc_1', amount: 1 }] }).success).toBe(false);
  expect(resolveBody.safeParse({ ...base, reason: ' ' }).success).toBe(false);
  expect(resolveBody.safeParse({ ...base, note: 'n'.repeat(MAX_DESK_NOTE_LENGTH) }).success).toBe(true);
  expect(resolveBody.safeParse({ ...base, note: 'n'.repeat(MAX_DESK_NOTE_LENGTH + 1) }).success).toBe(false);
  expect(resolveBody.parse(base).refunds).toEqual([]);
});
