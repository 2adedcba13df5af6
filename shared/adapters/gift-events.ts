import { SendMessageBatchCommand, SQSClient, type SendMessageBatchRequestEntry } from '@aws-sdk/client-sqs';
import * as z from 'zod';
import { awsConfig, queuesConfig } from '../config';
import { logger } from '../logger';
import { instrumentAwsClient } from '../observability/tracing';

/**
 * The gift-events FIFO queue: after a gift commits, a small "nudge" tells the broadcaster that
 * the stream has something to send. MessageGroupId = the stream id, so one stream's nudges are
 * consumed in order and never by two invocations at once: that is what makes the broadcaster
 * the stream's single sequencer (docs/DESIGN.md, Live fan-out). The nudge carries no money and no
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
  /**
   * Epoch ms at which the nudge's time bucket ends. Nudges are deduplicated per stream and bucket,
   * so later gifts of the bucket send no message of their own: the broadcaster that takes this
   * one keeps collecting until after `until` (README, "Nudges per window").
   */
  until: z.number().int().nonnegative().optional(),
  /**
   * A viewer joined or left: the broadcaster sends the room's counters (`room`) even without a
   * gift, so the "watching" count does not wait for the next gift.
   */
  counters: z.literal(true).optional(),
  /**
   * The creator's balance changed within the wallet push interval: push it once the interval is
   * over. Sent to the room's group by a gift run, which does not wait out the interval itself.
   */
  wallet: z.literal(true).optional(),
  /**
   * A timer: the leaderboard fold is due at this epoch ms (foldNudge). Sent to the stream's fold
   * group, which only waits for it, then sends `foldDue`: waiting in the stream's own group held up
   * its next gift nudges for up to the fold interval.
   */
  foldAt: z.number().int().nonnegative().optional(),
  /** The leaderboard fold is due now (foldDueNudge): folded in the stream's own group, like every fold. */
  foldDue: z.literal(true).optional(),
});
export type GiftNudge = z.infer<typeof giftNudge>;

export interface OutgoingNudge {
  nudge: GiftNudge;
  /** FIFO deduplication (5 minutes): the gift id, so a retried send is not a second nudge. */
  deduplicationId: string;
  /** The FIFO message group, when not the stream's own (countersNudge). */
  group?: string;
}

/**
 * One nudge per stream per bucket reaches the broadcaster: its deduplication id names the bucket.
 * Equal to the broadcast window, so a busy stream's queue carries about one message per frame.
 */
export const NUDGE_BUCKET_MS = 500;

/** The nudge a gift committed at `now` sends: deduplicated by stream and time bucket. */
export function bucketNudge(streamId: string, now: Date, gift?: { pk: string; sk: string }): OutgoingNudge {
  const bucket = Math.floor(now.getTime() / NUDGE_BUCKET_MS);
  return {
    nudge: { streamId, until: (bucket + 1) * NUDGE_BUCKET_MS, ...(gift && { gift }) },
    deduplicationId: `b:${streamId}:${bucket}`,
  };
}

/**
 * The nudge a connection joining or leaving a room sends at `now`: one per stream and bucket,
 * like gifts'. It has no `until`: alone, it sends the counters and collects no gift.
 */
export function countersNudge(streamId: string, now: Date): OutgoingNudge {
  const bucket = Math.floor(now.getTime() / COUNTERS_BUCKET_MS);
  // A group of its own: a room's joins send no gift, and their `room` frames (a post per viewer
  // each) must not queue up in front of the stream's gift nudges, which share its group.
  return {
    nudge: { streamId, counters: true },
    deduplicationId: `r:${streamId}:${bucket}`,
    group: `${streamId}:room`,
  };
}

/**
 * A gift run that could not push the creator's wallet within the interval hands the push to the
 * room's group (countersNudge's): waiting there holds up no gift nudge. One per stream and bucket.
 */
export function walletNudge(streamId: string, now: Date): OutgoingNudge {
  const bucket = Math.floor(now.getTime() / COUNTERS_BUCKET_MS);
  return { nudge: { streamId, wallet: true }, deduplicationId: `w:${streamId}:${bucket}`, group: `${streamId}:room` };
}

/**
 * Gifts not yet in the leaderboard, whose fold is due at `dueAt`: the stream's fold group waits
 * for it, then sends foldDueNudge. One per stream and fold (`lbFoldAt`, the last fold's time).
 */
export function foldNudge(streamId: string, dueAt: number, lastFoldAt: number): OutgoingNudge {
  return {
    nudge: { streamId, foldAt: dueAt },
    deduplicationId: `fold:${streamId}:${lastFoldAt}`,
    group: `${streamId}:fold`,
  };
}

/**
 * The fold is due: to the stream's own group, so folds never run beside each other (the fold
 * group only keeps time). One per stream and due time.
 */
export function foldDueNudge(streamId: string, dueAt: number): OutgoingNudge {
  return { nudge: { streamId, foldDue: true }, deduplicationId: `folddue:${streamId}:${dueAt}` };
}

/** Joins and leaves of one room nudge at most once per this bucket (docs/API.md: `room` at most once a second). */
export const COUNTERS_BUCKET_MS = 1_000;

export interface GiftEventPublisher {
  publish(nudges: OutgoingNudge[]): Promise<void>;
}

/** SQS FIFO drops a message whose deduplication id it saw in the last 5 minutes. */
export const SQS_DEDUPLICATION_WINDOW_MS = 5 * 60 * 1000;
/** Deduplication ids remembered per warm instance before the oldest are forgotten. */
const MAX_REMEMBERED_IDS = 10_000;

export class SqsGiftEventPublisher implements GiftEventPublisher {
  /**
   * Deduplication ids this instance has sent, and when. SQS would accept and drop a second send
   * of one within 5 minutes; skipping it keeps one stream's SendMessage calls to about one per
   * bucket per warm instance, inside FIFO's per-group rates (README, "Nudges per window").
   */
  private readonly sent = new Map<string, number>();

  constructor(
    private readonly sqs: Pick<SQSClient, 'send'>,
    private readonly queueUrl: string,
    private readonly now: () => number = Date.now,
  ) {}

  async publish(all: OutgoingNudge[]): Promise<void> {
    const now = this.now();
    const nudges = all.filter(
      (entry) => now - (this.sent.get(entry.deduplicationId) ?? -Infinity) >= SQS_DEDUPLICATION_WINDOW_MS,
    );
    for (let start = 0; start < nudges.length; start += SQS_MAX_BATCH_ENTRIES) {
      const chunk = nudges.slice(start, start + SQS_MAX_BATCH_ENTRIES);
      const entries: SendMessageBatchRequestEntry[] = chunk.map(({ nudge, deduplicationId, group }, index) => ({
        Id: String(index),
        MessageBody: JSON.stringify(nudge),
        MessageGroupId: (group ?? nudge.streamId).slice(0, SQS_MAX_ID_LENGTH),
        MessageDeduplicationId: deduplicationId.slice(0, SQS_MAX_ID_LENGTH),
      }));
      const answer = await this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
      const failed = answer.Failed ?? [];
      if (failed.length > 0) {
        throw new Error(
          `gift-events queue refused ${failed.length} nudge(s): ${failed.map((entry) => entry.Code ?? 'unknown').join(', ')}`,
        );
      }
      for (const entry of chunk) this.remember(entry.deduplicationId, now);
    }
  }

  private remember(deduplicationId: string, now: number): void {
    if (this.sent.size >= MAX_REMEMBERED_IDS) {
      for (const [id, at] of this.sent) if (now - at >= SQS_DEDUPLICATION_WINDOW_MS) this.sent.delete(id);
      if (this.sent.size >= MAX_REMEMBERED_IDS) this.sent.clear();
    }
    this.sent.set(deduplicationId, now);
  }
}

let publisher: GiftEventPublisher | undefined;
let publisherClient: SQSClient | undefined;

/** The publisher's SQS client once built (the benchmark counts its sends with middleware). */
export function giftEventsSqsClient(): SQSClient | undefined {
  return publisherClient;
}

/**
 * $connect and $disconnect: tell the broadcaster the room's audience changed. Best effort: a
 * nudge that cannot be sent only leaves the count to the next gift's frame, and never refuses
 * or fails a connection.
 */
export async function announceRoomCounters(streamId: string, now: Date): Promise<void> {
  try {
    await giftEventPublisher().publish([countersNudge(streamId, now)]);
  } catch (error) {
    logger.warn('room counters nudge not sent', {
      streamId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Built once per cold start, at first use. Fails fast, naming the variable, when the queue is not
 * configured: each call reads it again, so locally a handler whose access does not send to the
 * queue fails as on AWS. Rebuilt only if the queue changed (a local stack restarted in one process).
 */
let publisherQueueUrl: string | undefined;
export function giftEventPublisher(): GiftEventPublisher {
  const queueUrl = queuesConfig().GIFT_EVENTS_QUEUE_URL;
  if (queueUrl === undefined) throw new Error('Invalid configuration (queues): GIFT_EVENTS_QUEUE_URL is not set');
  if (!publisher || publisherQueueUrl !== queueUrl) {
    const aws = awsConfig();
    const sqs = instrumentAwsClient(
      new SQSClient({
        region: aws.AWS_REGION,
        ...(aws.SQS_ENDPOINT && { endpoint: aws.SQS_ENDPOINT }),
        // Bounded: a nudge that cannot be sent is left to the sweeper, not retried for long.
        maxAttempts: 2,
      }),
    );
    publisherClient = sqs;
    publisherQueueUrl = queueUrl;
    publisher = new SqsGiftEventPublisher(sqs, queueUrl);
  }
  return publisher;
}
