import { openPayoutsQuery, payoutItems } from '../../adapters/dynamo/payout-items';
import type { LedgerStore, PageKey } from '../../ports/ledger-store';
import type { PayoutQueue } from '../../adapters/payout-queue';
import { logger } from '../../logger';
import { type Payout, payoutFromItem } from './record';

/** The sweeper: sends open payouts again when nothing moved them for a while. */

/** Index page size, most items read and most messages sent per run (bounded work per schedule tick). */
export const SWEEP_PAGE_SIZE = 100;
export const SWEEP_MAX_EXAMINED = 2_000;
export const SWEEP_MAX_RESENT = 500;
/** A payout the sweeper already re-sent waits twice as long each time, up to 2^5 times the threshold. */
export const SWEEP_MAX_BACKOFF_DOUBLINGS = 5;

export interface SweepDeps {
  store: LedgerStore;
  queue: PayoutQueue;
  now: () => Date;
  requestedAfterSeconds: number;
  processingAfterSeconds: number;
}

export interface SweepResult {
  examined: number;
  resent: number;
  sendFailures: number;
}

/** Someone moved the payout since the index was read. */
class PayoutMoved extends Error {}

async function sweepOne(deps: SweepDeps, payout: Payout, now: Date, result: SweepResult): Promise<void> {
  if (payout.status !== 'requested' && payout.status !== 'processing') return;
  const touchedAt = payout.statusSk ?? payout.updatedAt;
  const thresholdSeconds = payout.status === 'requested' ? deps.requestedAfterSeconds : deps.processingAfterSeconds;
  const backoffSeconds = thresholdSeconds * 2 ** Math.min(payout.sweeps ?? 0, SWEEP_MAX_BACKOFF_DOUBLINGS);
  if (Date.parse(touchedAt) + backoffSeconds * 1000 > now.getTime()) return;
  try {
    await deps.store.transactWrite([
      payoutItems.swept(
        deps.store,
        { payoutId: payout.payoutId, status: payout.status, touchedAt },
        now.toISOString(),
        () => new PayoutMoved(),
      ),
    ]);
  } catch (error) {
    if (error instanceof PayoutMoved) return;
    throw error;
  }
  const sweeps = (payout.sweeps ?? 0) + 1;
  if (sweeps > SWEEP_MAX_BACKOFF_DOUBLINGS) {
    // Still retried (the diamonds stay pending, never lost), but a human should look: Stripe down
    // for long, a DLQ filling up, or a payout the worker cannot settle.
    logger.error('payout still open after many re-sends', {
      payoutId: payout.payoutId,
      status: payout.status,
      sweeps,
      attempts: payout.attempts ?? 0,
    });
  }
  try {
    await deps.queue.send(payout.payoutId);
    result.resent += 1;
    logger.info('payout re-sent by the sweeper', { payoutId: payout.payoutId, status: payout.status, sweeps });
  } catch (error) {
    // Claimed but not sent: the next run after the (longer) wait tries again.
    result.sendFailures += 1;
    logger.warn('sweeper could not send a payout', {
      payoutId: payout.payoutId,
      error: error instanceof Error ? error : String(error),
    });
  }
}

/**
 * Finds open payouts nothing has moved for a while and sends them again: `requested` ones whose
 * message was lost (a crash before SendMessage, a queue that lost it) and `processing` ones whose
 * delivery died. Each resend is claimed with a conditional write first, so overlapping runs send
 * once, and a payout re-sent before waits twice as long the next time (bounded), so a long Stripe
 * outage costs a message every few minutes per payout, not every tick.
 */
export async function sweepPayouts(deps: SweepDeps): Promise<SweepResult> {
  const now = deps.now();
  const nowMs = now.getTime();
  const cutoff = new Date(
    nowMs - Math.min(deps.requestedAfterSeconds, deps.processingAfterSeconds) * 1000,
  ).toISOString();
  const result: SweepResult = { examined: 0, resent: 0, sendFailures: 0 };
  let startKey: PageKey | undefined;
  do {
    // Oldest first. A claimed payout moves past the cutoff, so it does not come back this run.
    const page = await deps.store.query(openPayoutsQuery(cutoff, SWEEP_PAGE_SIZE, startKey));
    for (const item of page.items) {
      if (result.examined >= SWEEP_MAX_EXAMINED || result.resent >= SWEEP_MAX_RESENT) return result;
      result.examined += 1;
      await sweepOne(deps, payoutFromItem(item), now, result);
    }
    startKey = page.lastEvaluatedKey;
  } while (startKey && result.examined < SWEEP_MAX_EXAMINED && result.resent < SWEEP_MAX_RESENT);
  return result;
}
