import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import * as z from 'zod';
import { awsConfig, queuesConfig } from '../config';
import { instrumentAwsClient } from '../observability/tracing';

/**
 * The payouts queue: the worker's inbox. A message only names the payout; everything else is
 * read from the ledger, so a stale or duplicated message can never carry a wrong amount.
 */
export const payoutMessageSchema = z.strictObject({ payoutId: z.string().min(1).max(128) });
export type PayoutMessage = z.infer<typeof payoutMessageSchema>;

export interface PayoutQueue {
  send(payoutId: string): Promise<void>;
}

export class SqsPayoutQueue implements PayoutQueue {
  constructor(
    private readonly sqs: Pick<SQSClient, 'send'>,
    private readonly queueUrl: string,
  ) {}

  async send(payoutId: string): Promise<void> {
    const message: PayoutMessage = { payoutId };
    await this.sqs.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(message) }));
  }
}

let cached: { target: string; sqs: SQSClient; queue: PayoutQueue } | undefined;
/**
 * Built once per cold start; fails fast when the queue URL is not configured. Rebuilt only if the
 * configuration changed (a local stack restarted in the same process gets new queue URLs).
 */
export function payoutQueue(): PayoutQueue {
  const queueUrl = queuesConfig().PAYOUTS_QUEUE_URL;
  if (queueUrl === undefined) throw new Error('Invalid configuration (queues): PAYOUTS_QUEUE_URL is not set');
  const config = awsConfig();
  const target = `${config.SQS_ENDPOINT ?? ''}|${queueUrl}`;
  if (cached?.target !== target) {
    cached?.sqs.destroy();
    const sqs = instrumentAwsClient(
      new SQSClient({
        region: config.AWS_REGION,
        // Locally the queue URLs name a host that does not resolve: the endpoint says where fauxqs is.
        ...(config.SQS_ENDPOINT && { endpoint: config.SQS_ENDPOINT }),
        // Bounded: a lost send is recovered by the sweeper, so the request need not wait long.
        maxAttempts: 3,
      }),
    );
    cached = { target, sqs, queue: new SqsPayoutQueue(sqs, queueUrl) };
  }
  return cached.queue;
}
