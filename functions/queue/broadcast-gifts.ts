import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { connectionPoster, connectionsStore, ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import type { ItemKey } from '../../shared/adapters/dynamo/keys';
import { giftEventPublisher, giftNudge } from '../../shared/adapters/gift-events';
import { logger } from '../../shared/logger';
import { broadcastConfig } from '../../shared/config';
import {
  type BroadcastDeps,
  broadcastStream,
  BROADCAST_WINDOW_MS,
  newBroadcasterMemory,
} from '../../shared/usecases/broadcast';
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

/** One stream's share of a batch: its messages, and the run they ask for together. */
interface StreamWork {
  records: SQSRecord[];
  named: ItemKey[];
  ended: boolean;
  until: number;
  /** A viewer joined or left: send the room's counters even without a gift. */
  counters: boolean;
  /** A gift run left the creator's wallet push to the room's group. */
  wallet: boolean;
  /** A gift run left the leaderboard fold, due then (epoch ms), to the stream's fold group; 0 if none. */
  foldAt: number;
  /** The fold group's timer ran out: fold now. */
  foldDue: boolean;
  /**
   * Every message was a signal (counters, wallet, fold timer, fold due). A message that is none of
   * these (a gift's, the sweeper's, a hand-over) asks for a look at the stream's pending gifts.
   */
  signalsOnly: boolean;
}

/**
 * Groups a batch's nudges by stream: several nudges of one stream coalesce into one run. A
 * malformed nudge is dropped: it names nothing the sweeper would not find.
 */
function workByStream(records: SQSRecord[]): Map<string, StreamWork> {
  const byStream = new Map<string, StreamWork>();
  for (const record of records) {
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
      wallet: false,
      foldAt: 0,
      foldDue: false,
      signalsOnly: true,
    };
    entry.until = Math.max(entry.until, parsed.data.until ?? 0);
    entry.records.push(record);
    if (parsed.data.gift) entry.named.push(parsed.data.gift);
    if (parsed.data.ended) entry.ended = true;
    if (parsed.data.counters) entry.counters = true;
    if (parsed.data.wallet) entry.wallet = true;
    entry.foldAt = Math.max(entry.foldAt, parsed.data.foldAt ?? 0);
    if (parsed.data.foldDue) entry.foldDue = true;
    const { counters, wallet, foldAt, foldDue } = parsed.data;
    if (!counters && !wallet && foldAt === undefined && !foldDue) entry.signalsOnly = false;
    byStream.set(parsed.data.streamId, entry);
  }
  return byStream;
}

/** The broadcaster's adapters and limits, from this instance's clients and configuration. */
function broadcastDependencies(
  context: Context,
  fanout: ReturnType<typeof broadcastConfig>,
  channelPublisher: ReturnType<typeof roomChannelPublisher>,
): BroadcastDeps {
  return {
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
  };
}

/**
 * Broadcasts one stream's run; false when it failed and its messages must be redelivered. The
 * adapters are built inside the try: a client that cannot be built fails this stream's messages
 * (redelivered), not the whole batch.
 */
async function broadcastOne(dependencies: () => BroadcastDeps, streamId: string, work: StreamWork): Promise<boolean> {
  try {
    const result = await broadcastStream(dependencies(), streamId, {
      namedGifts: work.named,
      ended: work.ended,
      until: work.until,
      counters: work.counters,
      wallet: work.wallet,
      foldAt: work.foldAt,
      foldDue: work.foldDue,
      signalsOnly: work.signalsOnly,
    });
    if (result.events > 0)
      logger.info('gifts broadcast', {
        streamId,
        events: result.events,
        frames: result.frames,
        nudges: work.records.length,
      });
    return true;
  } catch (error) {
    logger.error("broadcast failed; the stream's nudges will be redelivered", {
      streamId,
      error: error instanceof Error ? error : String(error),
    });
    metrics.count('BroadcastsFailed');
    return false;
  }
}

/**
 * The gift-events FIFO consumer. A batch may hold several nudges of one stream (they coalesce
 * into the same run) and nudges of other streams (broadcast side by side). A stream that fails
 * reports all of its messages as failed, so the queue redelivers them, in order; the others are
 * done.
 */
export const handler = instrumented(async function handler(
  event: SQSEvent,
  context: Context,
): Promise<SQSBatchResponse> {
  const streams = [...workByStream(event.Records).entries()];
  const fanout = broadcastConfig();
  const channelPublisher = roomChannelPublisher();
  const dependencies = () => broadcastDependencies(context, fanout, channelPublisher);
  const failed: string[] = [];
  let next = 0;
  // At most STREAMS_IN_PARALLEL workers, each taking the next stream until none is left.
  const worker = async () => {
    while (next < streams.length) {
      const current = streams[next++];
      if (!current) break;
      const [streamId, work] = current;
      if (!(await broadcastOne(dependencies, streamId, work)))
        failed.push(...work.records.map((record) => record.messageId));
    }
  };
  await Promise.all(Array.from({ length: Math.min(STREAMS_IN_PARALLEL, streams.length) }, worker));
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
});
