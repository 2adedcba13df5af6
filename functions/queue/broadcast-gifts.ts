import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { connectionPoster, connectionsStore, ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import type { ItemKey } from '../../shared/adapters/dynamo/keys';
import { giftEventPublisher, giftNudge } from '../../shared/adapters/gift-events';
import { logger } from '../../shared/logger';
import { broadcastConfig } from '../../shared/config';
import { broadcastStream, BROADCAST_WINDOW_MS, newBroadcasterMemory } from '../../shared/usecases/broadcast';
import { instrumented } from '../../shared/observability/invocation';
import { metrics } from '../../shared/observability/metrics';
import { roomChannelPublisher } from '../../shared/events/publisher';
import { EVENT_API_DELIVERIES_PER_SECOND_PER_ROOM } from '../../shared/usecases/room-channel';

/** Streams of one batch broadcast at once (a FIFO batch holds at most 10 messages). */
const STREAMS_IN_PARALLEL = 10;

/**
 * Each stream's last frame, `room` message and creator wallet push from this instance: with the
 * stream item's lastFrameAt, it spaces a busy stream's frames one window apart. Module scope: it
 * lives as long as the warm instance.
 */
const memory = newBroadcasterMemory();

/**
 * The gift-events FIFO consumer. A batch may hold several nudges of one stream (they coalesce
 * into the same run) and nudges of other streams (broadcast side by side). A stream that fails
 * reports all of its messages as failed, so the queue redelivers them, in order; the others are
 * done. A malformed nudge is dropped: it names nothing the sweeper would not find.
 */
export const handler = instrumented(async function handler(
  event: SQSEvent,
  context: Context,
): Promise<SQSBatchResponse> {
  const byStream = new Map<
    string,
    { records: SQSRecord[]; named: ItemKey[]; ended: boolean; until: number; counters: boolean }
  >();
  for (const record of event.Records) {
    let body: unknown;
    try {
      body = JSON.parse(record.body);
    } catch {
      body = undefined;
    }
    const parsed = giftNudge.safeParse(body);
    if (!parsed.success) {
      logger.error('malformed gift-events message dropped', { messageId: record.messageId });
      continue;
    }
    const entry = byStream.get(parsed.data.streamId) ?? {
      records: [],
      named: [],
      ended: false,
      until: 0,
      counters: false,
    };
    entry.until = Math.max(entry.until, parsed.data.until ?? 0);
    entry.records.push(record);
    if (parsed.data.gift) entry.named.push(parsed.data.gift);
    if (parsed.data.ended) entry.ended = true;
    if (parsed.data.counters) entry.counters = true;
    byStream.set(parsed.data.streamId, entry);
  }

  const failed: string[] = [];
  const fanout = broadcastConfig();
  const channelPublisher = roomChannelPublisher();
  const streams = [...byStream.entries()];
  let next = 0;
  const worker = async () => {
    while (next < streams.length) {
      const current = streams[next++];
      if (!current) break;
      const [streamId, work] = current;
      try {
        const result = await broadcastStream(
          {
            store: ledgerStore(),
            connections: connectionsStore(),
            poster: connectionPoster(),
            publisher: giftEventPublisher(),
            now: () => systemClock.now(),
            sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
            windowMs: BROADCAST_WINDOW_MS,
            memory,
            remainingMs: () => context.getRemainingTimeInMillis(),
            fanout: {
              postsPerSecond: fanout.BROADCAST_POSTS_PER_SECOND,
              concurrency: fanout.BROADCAST_POST_CONCURRENCY,
              sliceConnections: fanout.BROADCAST_SLICE_CONNECTIONS,
            },
            ...(channelPublisher && {
              eventApi: { publisher: channelPublisher, deliveriesPerSecond: EVENT_API_DELIVERIES_PER_SECOND_PER_ROOM },
            }),
          },
          streamId,
          { namedGifts: work.named, ended: work.ended, until: work.until, counters: work.counters },
        );
        if (result.events > 0)
          logger.info('gifts broadcast', {
            streamId,
            events: result.events,
            frames: result.frames,
            nudges: work.records.length,
          });
      } catch (error) {
        logger.error("broadcast failed; the stream's nudges will be redelivered", {
          streamId,
          error: error instanceof Error ? error : String(error),
        });
        failed.push(...work.records.map((record) => record.messageId));
        metrics.count('BroadcastsFailed');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(STREAMS_IN_PARALLEL, streams.length) }, worker));
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
});
