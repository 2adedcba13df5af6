import { ledgerDeps } from '../../shared/adapters/clients';
import { stripePayments } from '../../shared/adapters/payments';
import { logger } from '../../shared/logger';
import { completeDeskRefunds } from '../../shared/usecases/desk';
import { expirePendingRecharges } from '../../shared/usecases/recharge';
import { instrumented } from '../../shared/observability/invocation';
import { metrics } from '../../shared/observability/metrics';

/**
 * A schedule (EventBridge on AWS, a timer locally): recharges pending for 24 hours fail and their
 * PaymentIntents are cancelled; refunds still owed (over budget, support desk) are finished. Each
 * run is bounded; what it leaves, the next run takes.
 */
export const handler = instrumented(async (): Promise<{ expired: number; skipped: number }> => {
  const deps = { ...ledgerDeps(), payments: stripePayments() };
  const result = await expirePendingRecharges({
    ...deps,
    finishDeskRefund: (caseId) => completeDeskRefunds(deps, caseId),
  });
  logger.info('pending recharges swept', result);
  metrics.count('Recharges', result.expired, { outcome: 'expired' });
  return result;
});
