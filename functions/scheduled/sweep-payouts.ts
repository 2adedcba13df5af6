import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { payoutQueue } from '../../shared/adapters/payout-queue';
import { payoutsConfig } from '../../shared/config';
import { logger } from '../../shared/logger';
import { sweepPayouts } from '../../shared/usecases/payouts';
import { instrumented } from '../../shared/observability/invocation';

/**
 * The payouts outbox sweeper (a schedule): sends again the payouts left `requested` (the message
 * was never sent, or the queue lost it) or stuck `processing` (the delivery died).
 */
export const handler = instrumented(async (): Promise<void> => {
  const config = payoutsConfig();
  const result = await sweepPayouts({
    store: ledgerStore(),
    queue: payoutQueue(),
    now: () => systemClock.now(),
    requestedAfterSeconds: config.PAYOUT_SWEEP_REQUESTED_AFTER_SECONDS,
    processingAfterSeconds: config.PAYOUT_SWEEP_PROCESSING_AFTER_SECONDS,
  });
  if (result.resent > 0 || result.sendFailures > 0) logger.info('payout sweep', { ...result });
});
