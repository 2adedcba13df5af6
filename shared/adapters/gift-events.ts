import { SendMessageBatchCommand, SQSClient, type SendMessageBatchRequestEntry } from '@aws-sdk/client-sqs';
import * as z from 'zod';
import { awsConfig, queuesConfig } from '../config';
import { instrumentAwsClient } from '../observability/tracing';

/**
 * The gift-events FIFO queue: after a gift commits, a small "nudge" tells the broadcaster that
 * the stream has something to send. MessageGroupId = the stream id, so one stream's nudges are
 * consumed in order and never by two invocations at once: that is what makes the broadcaster
 * the stream's single sequencer (DESIGN.md, Live fan-out). The nudge carries no money and no
 * event: the gift record in the ledger is the outbox, and a lost nudge only delays the event
 * until the sweeper finds the record.
 */

/** SendMessageBatch takes at most 10 entries (SQS limit). */
export const SQS_MAX_BATCH_ENTRIES = 10;
/** SQS: MessageDeduplicationId and MessageGroupId are at most 128 characters. */
export const SQS_MAX_ID_LENGTH = 128;

export const giftNudge = z.object({
  streamId: z.string().min(1).max(SQS_MAX_ID_LENGTH),
  /**
   * The committed gift's entry key. The broadcaster finds pending gifts through an eventually
   * consistent index; naming the gift lets it read this one directly when the index lags.
   */
  gift: z.object({ pk: z.string().min(1), sk: z.string().min(1) }).optional(),
  /** The stream has ended: after flushing its pending gifts, tell its viewers. */
  ended: z.literal(true).optional(),
});
export type GiftNudge = z.infer<typeof giftNudge>;

export interface OutgoingNudge {
  nudge: GiftNudge;
  /** FIFO deduplication (5 minutes): the gift id, so a retried send is not a second nudge. */
  deduplicationId: string;
}

export interface GiftEventPublisher {
  publish(nudges: OutgoingNudge[]): Promise<void>;
}

export class SqsGiftEventPublisher implements GiftEventPublisher {
  constructor(
    private readonly sqs: Pick<SQSClient, 'send'>,
    private readonly queueUrl: string,
  ) {}

  async publish(nudges: OutgoingNudge[]): Promise<void> {
    for (let start = 0; start < nudges.length; start += SQS_MAX_BATCH_ENTRIES) {
      const entries: SendMessageBatchRequestEntry[] = nudges.slice(start, start + SQS_MAX_BATCH_ENTRIES).map(({ nudge, deduplicationId }, index) => ({
        Id: String(index),
        MessageBody: JSON.stringify(nudge),
        MessageGroupId: nudge.streamId,
        MessageDeduplicationId: deduplicationId.slice(0, SQS_MAX_ID_LENGTH),
      }));
      const answer = await this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
      const failed = answer.Failed ?? [];
      if (failed.length > 0) {
        throw new Error(`gift-events queue refused ${failed.length} nudge(s): ${failed.map((entry) => entry.Code ?? 'unknown').join(', ')}`);
      }
    }
  }
}

let publisher: GiftEventPublisher | undefined;
/** Built once per cold start, at first use. Fails fast, naming the variable, when the queue is not configured. */
export function giftEventPublisher(): GiftEventPublisher {
  if (!publisher) {
    const queueUrl = queuesConfig().GIFT_EVENTS_QUEUE_URL;
    if (queueUrl === undefined) throw new Error('Invalid configuration (queues): GIFT_EVENTS_QUEUE_URL is not set');
    const aws = awsConfig();
    const sqs = instrumentAwsClient(new SQSClient({
      region: aws.AWS_REGION,
      ...(aws.SQS_ENDPOINT && { endpoint: aws.SQS_ENDPOINT }),
      // Bounded: a nudge that cannot be sent is left to the sweeper, not retried for long.
      maxAttempts: 2,
    }));
    publisher = new SqsGiftEventPublisher(sqs, queueUrl);
  }
  return publisher;
}
