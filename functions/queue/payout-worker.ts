import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { connectionPoster, connectionsStore, ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { newId } from '../../shared/adapters/ids';
import { pushWallet } from '../../shared/adapters/connections-api';
import { payoutMessageSchema } from '../../shared/adapters/payout-queue';
import { StripeConnectPayouts } from '../../shared/adapters/stripe-connect';
import { logger } from '../../shared/logger';
import { processPayout, UnknownPayoutError, type ProcessPayoutDeps } from '../../shared/usecases/payouts';
import { instrumented, withLogKeys } from '../../shared/observability/invocation';
import { metrics } from '../../shared/observability/metrics';

/**
 * The payouts queue consumer (reportBatchItemFailures). Records run one after another, so an
 * invocation makes at most one Stripe call at a time and the mapping's maxConcurrency bounds the
 * transfer rate (Stripe: 25 requests a second per endpoint). A failed record goes back to the
 * queue alone; after maxReceiveCount receives it lands in the DLQ.
 */

/**
 * A record is not started with less time than this left: a transfer can take the Stripe timeout
 * twice (the SDK's own retry) plus our bounded retries. The rest of the batch goes back unstarted.
 */
export const RECORD_START_BUDGET_MS = 25_000;

let deps: ProcessPayoutDeps | undefined;
function workerDeps(): ProcessPayoutDeps {
  if (!deps) {
    const store = ledgerStore();
    deps = {
      store,
      connect: new StripeConnectPayouts(),
      now: () => systemClock.now(),
      newId,
      notify: async (userId) => {
        const wallet = await store.readWallet(userId, { consistent: true });
        await pushWallet({ connections: connectionsStore(), poster: connectionPoster() }, wallet);
      },
    };
  }
  return deps;
}

export async function handleRecord(body: string, messageId: string): Promise<void> {
  let payoutId: string;
  try {
    payoutId = payoutMessageSchema.parse(JSON.parse(body)).payoutId;
  } catch {
    // A poison message: it can never succeed, so it fails until the DLQ takes it for a human.
    throw new UnknownPayoutError(`(unparseable message ${messageId})`);
  }
  await withLogKeys({ payoutId }, async () => {
    const outcome = await processPayout(workerDeps(), payoutId);
    logger.info('payout message handled', { outcome });
    if (outcome === 'paid') metrics.count('PayoutsPaid');
    if (outcome === 'failed') metrics.count('PayoutsFailed');
  });
}

export const handler = instrumented(async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  const batchItemFailures: SQSBatchItemFailure[] = [];
  for (const record of event.Records) {
    if (context.getRemainingTimeInMillis() < RECORD_START_BUDGET_MS) {
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    await withLogKeys(
      { messageId: record.messageId, receiveCount: record.attributes.ApproximateReceiveCount },
      async () => {
        try {
          await handleRecord(record.body, record.messageId);
        } catch (error) {
          const level = error instanceof UnknownPayoutError ? 'error' : 'warn';
          logger[level]('payout message failed; it goes back to the queue', {
            error: error instanceof Error ? error : String(error),
          });
          batchItemFailures.push({ itemIdentifier: record.messageId });
        }
      },
    );
  }
  return { batchItemFailures };
});
