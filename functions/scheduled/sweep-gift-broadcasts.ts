import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { giftEventPublisher } from '../../shared/adapters/gift-events';
import { logger } from '../../shared/logger';
import { sweepUnsentGifts } from '../../shared/usecases/broadcast';
import { instrumented } from '../../shared/observability/invocation';

/** Schedule: nudges the broadcaster for streams holding gifts whose own nudge was lost. */
export const handler = instrumented(async function handler(): Promise<{
  streams: number;
  nudged: number;
  retired: number;
}> {
  const result = await sweepUnsentGifts({
    store: ledgerStore(),
    publisher: giftEventPublisher(),
    now: () => systemClock.now(),
  });
  if (result.nudged > 0 || result.retired > 0) logger.info('gift broadcast sweep', result);
  return result;
});
