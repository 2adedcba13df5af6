import { profileItems } from '../adapters/dynamo/profile-items';
import { type CreatorProfile, readProfiles } from './creator-profiles';
import * as z from 'zod';
import { ENTRY_PREFIX_END, EVENT_LOG_PARTITIONS, keys } from '../adapters/dynamo/keys';
import { leaderboardItems } from '../adapters/dynamo/leaderboard-items';
import { streamItems } from '../adapters/dynamo/stream-items';
import { MAX_TRANSACTION_ITEMS, type Item, type LedgerStore } from '../ports/ledger-store';
import type { ConnectionsStore } from '../ports/connections-store';
import type { GiftEventPublisher } from '../adapters/gift-events';
import { ForbiddenError, InvariantViolation, NotFoundError, ValidationError } from '../domain/errors';
import { assertAdult, assertLiveCountry, type Caller } from '../domain/identity';
import { logger } from '../logger';
import { reportOutcomeSchema } from './desk-cases';
import { decodeCursor, encodeCursor } from './wallet';

/**
 * Live streams: going live, ending, reading a stream, its leaderboard, its broadcast events for
 * catch-up, the live list, and a creator's gift notifications.
 *
 * The stream item is never written per gift (it would be a hot key: one item takes ~500
 * transactional writes a second). Its `seq`, `giftCoins` and `lastFrameAt` are written by the
 * broadcaster once per batch of gifts (shared/usecases/broadcast.ts).
 */

/**
 * The stream item's layout: its status index partitions (live, recently ended), the unsent
 * index partitions of its gifts and the gift fence's attribute. They live with its ops in the
 * DynamoDB adapter; gifts.ts and the tests read them from here.
 */
export {
  LIVE_STATUS_PK,
  liveFenceAttribute,
  RECENTLY_ENDED_STATUS_PK,
  unsentStatusPk,
} from '../adapters/dynamo/stream-items';

/** How long an ended stream is still swept for gifts not yet broadcast. */
export const RECENTLY_ENDED_SWEEP_MS = 10 * 60 * 1000;

/**
 * A stream's gifts not yet broadcast are spread over `unsentPartitions` index partitions, and
 * the broadcaster queries every one of them on every run. A quiet room starts on one (one query
 * a run); the broadcaster raises the count as the room's gift rate rises (unsentPartitionsFor),
 * never lowers it, and never past the creator's shards. Gifts read the count from a stream item
 * up to STREAM_CACHE_TTL_MS old, so they may land on a partition below the current count, never
 * above it: every partition a gift can use is one the broadcaster reads. Streams from before
 * this attribute have none and use one partition per creator shard, as they always did.
 */
export const INITIAL_UNSENT_PARTITIONS = 1;
/**
 * Each gift writes its partition twice (the gift record enters the index, the numbering takes it
 * out), both transactional at up to 1 KB: 4 write units. DynamoDB allows 1,000 a second per
 * partition key; 100 gifts a second per partition is 400, room for hash imbalance and for the
 * rate to double before the broadcaster's next run raises the count.
 */
export const UNSENT_PARTITION_GIFTS_PER_S = 100;

/** The partitions a room at this gift rate needs: a power of two, at most the creator's shards. */
export function unsentPartitionsFor(giftsPerS: number, creatorShards: number): number {
  let partitions = INITIAL_UNSENT_PARTITIONS;
  while (partitions * UNSENT_PARTITION_GIFTS_PER_S < giftsPerS && partitions < creatorShards) partitions *= 2;
  return Math.min(partitions, creatorShards);
}

/** How many unsent partitions the broadcaster reads for this stream. */
export function unsentPartitionCount(stream: Pick<StreamRecord, 'unsentPartitions' | 'creatorShards'>): number {
  return stream.unsentPartitions ?? stream.creatorShards;
}

/** The unsent partition of a gift on this creator shard. */
export function unsentPartitionOf(shard: number, partitions: number): number {
  return shard % partitions;
}

export const MAX_TITLE_LENGTH = 140;
export const DEFAULT_STREAM_PAGE_SIZE = 20;
export const MAX_STREAM_PAGE_SIZE = 100;
export const DEFAULT_LEADERBOARD_SIZE = 10;
export const MAX_LEADERBOARD_SIZE = 100;
export const MAX_EVENTS_PAGE_SIZE = 100;
/** Creating a stream retries the creator-shards raise if another request raised it meanwhile. */
const CREATE_STREAM_ATTEMPTS = 3;

export type StreamStatus = 'live' | 'ended';

export interface StreamRecord {
  streamId: string;
  creatorId: string;
  title: string;
  status: StreamStatus;
  startedAt: string;
  endedAt?: string;
  /** The last seq assigned to a broadcast event (0: none yet). */
  seq: number;
  /** Coins gifted, as far as broadcast (lags the gifts by a batch). */
  giftCoins: number;
  /** The creator's shard count when the stream started: gifts to it land on these shards. */
  creatorShards: number;
  /** Index partitions of its gifts not yet broadcast (unsentPartitionCount); absent on older streams. */
  unsentPartitions?: number;
  /** Epoch ms of the last frame sent to viewers (the broadcaster's window). */
  lastFrameAt?: number;
  /** The last seq whose gift is folded into the leaderboard (broadcast.ts, foldLeaderboard). */
  lbSeq?: number;
  /** A leaderboard fold in progress up to this seq: a crash mid-fold resumes the same range. */
  lbFoldTo?: number;
  /** Epoch ms of the last leaderboard fold. */
  lbFoldAt?: number;
  /** `streamEnded` was posted: no gift event may follow it (gifts still get numbered for catch-up). */
  endAnnounced?: boolean;
  /** The stream's gift fence is open on every creator shard while it is live (liveFenceAttribute). */
  fenced?: boolean;
}

const nonNegativeInt = z.number().int().nonnegative();
const streamItemSchema = z.object({
  streamId: z.string().min(1),
  creatorId: z.string().min(1),
  title: z.string(),
  status: z.enum(['live', 'ended']),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  seq: nonNegativeInt,
  giftCoins: nonNegativeInt,
  creatorShards: z.number().int().positive(),
  unsentPartitions: z.number().int().positive().optional(),
  lastFrameAt: nonNegativeInt.optional(),
  lbSeq: nonNegativeInt.optional(),
  lbFoldTo: nonNegativeInt.optional(),
  lbFoldAt: nonNegativeInt.optional(),
  endAnnounced: z.boolean().optional(),
  fenced: z.boolean().optional(),
});

/**
 * Going live writes the stream, the creator's profile and one fence per shard (and maybe the shard raise) in one
 * transaction of at most 100 items; a creator with more shards than fit gets no fence, and their
 * gifts read the stream item each time instead of caching it.
 */
export const MAX_FENCED_SHARDS = MAX_TRANSACTION_ITEMS - 3;

/** A stream item as stored; a malformed one is a broken invariant, never shown to a client. */
export function streamFromItem(item: Item): StreamRecord {
  const parsed = streamItemSchema.safeParse(item);
  if (!parsed.success)
    throw new InvariantViolation(`stream item ${String(item.pk)} is malformed: ${parsed.error.message}`);
  const { endedAt, unsentPartitions, lastFrameAt, lbSeq, lbFoldTo, lbFoldAt, endAnnounced, fenced, ...rest } =
    parsed.data;
  // exactOptionalPropertyTypes: an absent attribute stays absent rather than `undefined`.
  return {
    ...rest,
    ...(endedAt !== undefined && { endedAt }),
    ...(unsentPartitions !== undefined && { unsentPartitions }),
    ...(lastFrameAt !== undefined && { lastFrameAt }),
    ...(lbSeq !== undefined && { lbSeq }),
    ...(lbFoldTo !== undefined && { lbFoldTo }),
    ...(lbFoldAt !== undefined && { lbFoldAt }),
    ...(endAnnounced !== undefined && { endAnnounced }),
    ...(fenced !== undefined && { fenced }),
  };
}

export async function readStream(
  store: LedgerStore,
  streamId: string,
  options: { consistent?: boolean } = {},
): Promise<StreamRecord | undefined> {
  const item = await store.getItem(keys.stream(streamId), options);
  return item ? streamFromItem(item) : undefined;
}

async function requireStream(store: LedgerStore, streamId: string, consistent = false): Promise<StreamRecord> {
  const stream = await readStream(store, streamId, { consistent });
  if (!stream) throw new NotFoundError('No such stream.');
  return stream;
}

export interface CreatedStreamView {
  streamId: string;
  creatorId: string;
  title: string;
  status: StreamStatus;
  startedAt: string;
}

export interface StreamView extends CreatedStreamView {
  endedAt?: string;
  giftCoins: number;
  viewers: number;
}

function createdView(stream: StreamRecord): CreatedStreamView {
  return {
    streamId: stream.streamId,
    creatorId: stream.creatorId,
    title: stream.title,
    status: stream.status,
    startedAt: stream.startedAt,
  };
}

function fullView(stream: StreamRecord, viewers: number): StreamView {
  return {
    ...createdView(stream),
    ...(stream.endedAt !== undefined && { endedAt: stream.endedAt }),
    giftCoins: stream.giftCoins,
    viewers,
  };
}

/** Thrown inside createStream when another request raised the creator's shards meanwhile. */
class ShardsChanged extends Error {}

/**
 * POST /v1/streams: majority only. Also makes sure the creator's wallet spreads gift credits over
 * at least the configured number of shards (never fewer than before: credits already sit on
 * them), and copies that count onto the stream, so every gift to it picks its shard the same way.
 */
export async function createStream(
  deps: { store: LedgerStore; now: () => Date; newId: (prefix: string, now: Date) => string; creatorShards: number },
  caller: Caller,
  input: { title: string },
): Promise<CreatedStreamView> {
  const now = deps.now();
  assertAdult(caller, now);
  assertLiveCountry(caller);
  const streamId = deps.newId('st', now);
  const startedAt = now.toISOString();
  for (let attempt = 1; ; attempt += 1) {
    const walletItem = await deps.store.getItem(keys.wallet(caller.userId), { consistent: true });
    const existing = typeof walletItem?.creatorShards === 'number' ? walletItem.creatorShards : 0;
    const shards = Math.max(existing, deps.creatorShards);
    const fenced = shards <= MAX_FENCED_SHARDS;
    const stream: StreamRecord = {
      streamId,
      creatorId: caller.userId,
      title: input.title,
      status: 'live',
      startedAt,
      seq: 0,
      giftCoins: 0,
      creatorShards: shards,
      unsentPartitions: Math.min(INITIAL_UNSENT_PARTITIONS, shards),
      ...(fenced && { fenced: true }),
    };
    const ops = [];
    if (shards !== existing) {
      // Shards only ever grow: a lower count would hide credits on the shards above it.
      ops.push(streamItems.raiseCreatorShards(deps.store, caller.userId, shards, () => new ShardsChanged()));
    }
    ops.push(
      streamItems.wentLive(deps.store, stream, () => new InvariantViolation(`stream id ${streamId} already exists`)),
      // The profile: one more stream, and the first stream's start is kept.
      profileItems.wentLive(deps.store, caller.userId, startedAt),
      ...(fenced ? streamItems.openFences(deps.store, caller.userId, streamId, shards) : []),
    );
    try {
      await deps.store.transactWrite(ops);
      return createdView(stream);
    } catch (error) {
      if (error instanceof ShardsChanged && attempt < CREATE_STREAM_ATTEMPTS) continue;
      throw error;
    }
  }
}

/**
 * POST /v1/streams/{id}/end: its creator only. The stream leaves the live list at once; viewers
 * get `streamEnded` from the broadcaster, after the gifts that committed before the end, so the
 * order on every connection is the order of the ledger. Ending twice answers the ended stream.
 */
export async function endStream(
  deps: {
    store: LedgerStore;
    connections: ConnectionsStore;
    publisher: GiftEventPublisher;
    /** Used only when the queue cannot be reached: viewers still learn that the stream ended. */
    postStreamEnded: (streamId: string) => Promise<void>;
    now: () => Date;
  },
  caller: Caller,
  streamId: string,
): Promise<StreamView> {
  const stream = await requireStream(deps.store, streamId, true);
  if (stream.creatorId !== caller.userId) throw new ForbiddenError('Only the creator of a stream can end it.');
  if (stream.status === 'live') {
    const endedAt = deps.now().toISOString();
    let endedNow = true;
    try {
      await deps.store.transactWrite([
        streamItems.ended(deps.store, streamId, endedAt, () => new StreamAlreadyEnded()),
        ...(stream.fenced ? streamItems.closeFences(deps.store, stream.creatorId, streamId, stream.creatorShards) : []),
      ]);
    } catch (error) {
      if (!(error instanceof StreamAlreadyEnded)) throw error;
      endedNow = false;
    }
    if (endedNow) {
      try {
        await deps.publisher.publish([{ nudge: { streamId, ended: true }, deduplicationId: `end:${streamId}` }]);
      } catch (error) {
        logger.warn('could not queue streamEnded; posting it directly', {
          streamId,
          error: error instanceof Error ? error.message : String(error),
        });
        await deps.postStreamEnded(streamId);
      }
    }
  }
  const [ended, viewers] = await Promise.all([
    requireStream(deps.store, streamId, true),
    deps.connections.countStreamViewers(streamId),
  ]);
  return fullView(ended, viewers);
}

class StreamAlreadyEnded extends Error {}

/** GET /v1/streams/{id}: totals as far as broadcast, and the connections watching it now. */
export async function getStream(
  deps: { store: LedgerStore; connections: ConnectionsStore },
  streamId: string,
): Promise<StreamView> {
  const [stream, viewers] = await Promise.all([
    requireStream(deps.store, streamId),
    deps.connections.countStreamViewers(streamId),
  ]);
  return fullView(stream, viewers);
}

const streamCursorSchema = z.object({ startedAt: z.string().min(1).max(64), streamId: z.string().min(1).max(128) });

export function encodeStreamCursor(stream: { startedAt: string; streamId: string }): string {
  return Buffer.from(JSON.stringify({ startedAt: stream.startedAt, streamId: stream.streamId }), 'utf8').toString(
    'base64url',
  );
}

export function decodeStreamCursor(cursor: string): { startedAt: string; streamId: string } | undefined {
  try {
    const parsed = streamCursorSchema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** GET /v1/streams: live streams, newest first, from the sparse byStatus index (no Scan). */
export async function listLiveStreams(
  deps: { store: LedgerStore },
  page: { limit: number; cursor?: string },
): Promise<{
  items: Array<CreatedStreamView & { giftCoins: number; creator: CreatorProfile | null }>;
  nextCursor: string | null;
}> {
  const after = page.cursor === undefined ? undefined : decodeStreamCursor(page.cursor);
  if (page.cursor !== undefined && after === undefined) {
    throw new ValidationError('The cursor is not one this API gave out.', {
      details: [{ path: 'query.cursor', message: 'unknown cursor' }],
    });
  }
  const result = await deps.store.query(streamItems.liveStreamsQuery(page.limit, after));
  const streams = result.items.map(streamFromItem);
  const last = streams[streams.length - 1];
  // The creators' profiles, so a viewer can check a creator before joining: one BatchGetItem.
  const profiles = await readProfiles(
    deps.store,
    streams.map((stream) => stream.creatorId),
  );
  return {
    items: streams.map((stream) => ({
      ...createdView(stream),
      giftCoins: stream.giftCoins,
      creator: profiles.get(stream.creatorId) ?? null,
    })),
    nextCursor: result.lastEvaluatedKey && last ? encodeStreamCursor(last) : null,
  };
}

/**
 * GET /v1/streams/{id}/leaderboard: the top of each leaderboard shard (GSI ordered by coins),
 * merged. A gifter's total lives on exactly one shard, so the merge is exact.
 */
export async function streamLeaderboard(
  deps: { store: LedgerStore },
  streamId: string,
  limit: number,
): Promise<{ items: Array<{ userId: string; coins: number }> }> {
  const stream = await requireStream(deps.store, streamId);
  const pages = await Promise.all(
    Array.from({ length: stream.creatorShards }, (_, shard) =>
      deps.store.query(leaderboardItems.topQuery(streamId, shard, limit)),
    ),
  );
  const entries = pages
    .flatMap((page) => page.items)
    .map((item) => ({ userId: String(item.userId), coins: typeof item.lbCoins === 'number' ? item.lbCoins : 0 }))
    .sort((a, b) => b.coins - a.coins || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  return { items: entries.slice(0, limit) };
}

export const giftEventSchema = z.object({
  type: z.literal('gift'),
  streamId: z.string(),
  seq: z.number().int().positive(),
  giftTxId: z.string(),
  fromUserId: z.string(),
  giftId: z.string(),
  quantity: z.number().int().positive(),
  coins: z.number().int().nonnegative(),
  at: z.string(),
});
export type GiftEvent = z.infer<typeof giftEventSchema>;

/**
 * A batch's events as stored: one tuple per event, without what the batch already says (`type`,
 * `streamId`). About half the bytes of the API's objects, and every byte is written twice (the
 * batch goes in the numbering transaction): the catch-up log was the hot creator's hottest key.
 */
const storedEvent = z.tuple([
  giftEventSchema.shape.seq,
  giftEventSchema.shape.giftTxId,
  giftEventSchema.shape.fromUserId,
  giftEventSchema.shape.giftId,
  giftEventSchema.shape.quantity,
  giftEventSchema.shape.coins,
  giftEventSchema.shape.at,
]);
/** Batches written before the tuples held the API's objects; both are read. */
const storedEvents = z.union([z.array(storedEvent), z.array(giftEventSchema)]);

/** The `events` attribute of an event batch item. */
export function encodeEventBatch(events: GiftEvent[]): string {
  return JSON.stringify(
    events.map((event) => [
      event.seq,
      event.giftTxId,
      event.fromUserId,
      event.giftId,
      event.quantity,
      event.coins,
      event.at,
    ]),
  );
}

/** The events of a stored batch, as the API shapes them; undefined when it is malformed. */
export function decodeEventBatch(streamId: string, stored: unknown): GiftEvent[] | undefined {
  if (typeof stored !== 'string') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(stored);
  } catch {
    return undefined;
  }
  const parsed = storedEvents.safeParse(raw);
  if (!parsed.success) return undefined;
  return parsed.data.map((event) =>
    Array.isArray(event)
      ? {
          type: 'gift' as const,
          streamId,
          seq: event[0],
          giftTxId: event[1],
          fromUserId: event[2],
          giftId: event[3],
          quantity: event[4],
          coins: event[5],
          at: event[6],
        }
      : event,
  );
}

/**
 * GET /v1/streams/{id}/events?after=&limit=: the events broadcast after `after`, in seq order.
 * Events are stored one item per broadcast batch, keyed by the batch's last seq, so the first
 * batch whose last seq is past `after` is where the page starts. `nextSeq` is what to pass as
 * `after` for the next page (the last seq returned, or `after` when there is nothing newer).
 *
 * The broadcaster commits batches while this reads. The answer is what is committed, in seq
 * order, without a gap: it stops before the first seq it did not see (a batch committed, or
 * become visible, on one log partition but not yet on another), and the client's next page
 * starts there. It never compares against the stream item's counter, which is read at another
 * moment and may be behind or ahead of the batches.
 */
export async function streamEvents(
  deps: { store: LedgerStore },
  streamId: string,
  page: { after: number; limit: number },
  options: { consistent?: boolean } = {},
): Promise<{ items: GiftEvent[]; nextSeq: number }> {
  // The log is spread over EVENT_LOG_PARTITIONS keys. Each partition's batches are disjoint,
  // increasing seq ranges, so its first `limit` batches past `after` hold every one of its
  // events among the first `limit` overall: one query per partition, then a merge by seq.
  const [, partitions] = await Promise.all([
    requireStream(deps.store, streamId),
    Promise.all(
      Array.from({ length: EVENT_LOG_PARTITIONS }, (_, partition) =>
        deps.store.query(
          streamItems.eventBatchesAfterQuery(streamId, partition, {
            afterSeq: page.after,
            limit: page.limit,
            consistent: options.consistent === true,
          }),
        ),
      ),
    ),
  ]);
  const events: GiftEvent[] = [];
  for (const batch of partitions.flatMap((result) => result.items)) {
    const decoded = decodeEventBatch(streamId, batch.events);
    if (!decoded) throw new InvariantViolation(`event batch ${String(batch.sk)} of stream ${streamId} is malformed`);
    for (const event of decoded) if (event.seq > page.after) events.push(event);
  }
  events.sort((a, b) => a.seq - b.seq);
  const items: GiftEvent[] = [];
  for (const event of events) {
    if (items.length >= page.limit || event.seq !== page.after + items.length + 1) break;
    items.push(event);
  }
  const last = items[items.length - 1];
  return { items, nextSeq: last ? last.seq : page.after };
}

/** Every event with `after` < seq <= `upTo`, read consistently from the catch-up log; undefined when part of it is not there yet. */
export async function readEventRange(
  store: LedgerStore,
  streamId: string,
  after: number,
  upTo: number,
): Promise<GiftEvent[] | undefined> {
  const events: GiftEvent[] = [];
  let cursor = after;
  while (cursor < upTo) {
    const page = await streamEvents(
      { store },
      streamId,
      { after: cursor, limit: MAX_EVENTS_PAGE_SIZE },
      { consistent: true },
    );
    if (page.items.length === 0) return undefined;
    events.push(...page.items.filter((event) => event.seq <= upTo));
    cursor = page.nextSeq;
  }
  return events;
}

export type NotificationView =
  | {
      id: string;
      type: 'gift_received';
      streamId: string;
      fromUserId: string;
      giftId: string;
      quantity: number;
      diamonds: number;
      createdAt: string;
    }
  | {
      id: string;
      type: 'report_resolved';
      reportId: string;
      outcome: z.infer<typeof reportOutcomeSchema>;
      createdAt: string;
    };

const reportResolvedItem = z.object({
  notificationId: z.string(),
  notificationType: z.literal('report_resolved'),
  reportId: z.string(),
  outcome: reportOutcomeSchema,
  createdAt: z.string(),
});

function notificationView(item: Item): NotificationView {
  if (item.notificationType === 'report_resolved') {
    const parsed = reportResolvedItem.safeParse(item);
    if (!parsed.success) throw new InvariantViolation(`notification ${String(item.sk)} is malformed`);
    const { notificationId, reportId, outcome, createdAt } = parsed.data;
    return { id: notificationId, type: 'report_resolved', reportId, outcome, createdAt };
  }
  const parsed = giftReceivedItem.safeParse(item);
  if (!parsed.success) throw new InvariantViolation(`gift_received entry ${String(item.sk)} is malformed`);
  const entry = parsed.data;
  return {
    id: entry.entryId,
    type: 'gift_received',
    streamId: entry.ref.streamId,
    fromUserId: entry.ref.fromUserId,
    giftId: entry.ref.giftId,
    quantity: entry.ref.quantity,
    diamonds: entry.diamonds,
    createdAt: entry.createdAt,
  };
}

const giftReceivedItem = z.object({
  entryId: z.string(),
  entryType: z.literal('gift_received'),
  diamonds: z.number().int(),
  createdAt: z.string(),
  sk: z.string(),
  ref: z.object({ streamId: z.string(), fromUserId: z.string(), giftId: z.string(), quantity: z.number().int() }),
});

/**
 * GET /v1/notifications: the caller's gift_received entries and report_resolved notices, newest
 * first. Gifts live on the creator's shard entry partitions (keys.shardEntryPartition), notices
 * on a partition of their own (keys.notificationPartition), so a page merges one query per
 * partition; the cursor is the last sort key returned, which orders them all.
 */
export async function listNotifications(
  deps: { store: LedgerStore },
  caller: Caller,
  page: { limit: number; cursor?: string },
): Promise<{ items: NotificationView[]; nextCursor: string | null }> {
  const walletItem = await deps.store.getItem(keys.wallet(caller.userId));
  const shards = typeof walletItem?.creatorShards === 'number' ? walletItem.creatorShards : 0;
  const upper = page.cursor === undefined ? ENTRY_PREFIX_END : decodeCursor(page.cursor);
  if (upper === undefined) {
    throw new ValidationError('The cursor is not one this API gave out.', {
      details: [{ path: 'query.cursor', message: 'unknown cursor' }],
    });
  }
  // The creator's entry shards, and the partition of notifications that are not entries (report_resolved).
  const partitions = [
    ...Array.from({ length: shards }, (_, shard) => keys.shardEntryPartition(caller.userId, shard)),
    keys.notificationPartition(caller.userId),
  ];
  const pages = await Promise.all(
    partitions.map((pk) =>
      deps.store.query(
        // One extra to know whether a next page exists, one more because BETWEEN includes the cursor.
        streamItems.notificationsQuery(pk, upper, page.limit + (page.cursor === undefined ? 1 : 2)),
      ),
    ),
  );
  const merged = pages
    .flatMap((result) => result.items)
    .filter((item) => typeof item.sk === 'string' && item.sk < upper)
    .sort((a, b) => (String(b.sk) < String(a.sk) ? -1 : String(b.sk) > String(a.sk) ? 1 : 0));
  const pageItems = merged.slice(0, page.limit);
  const items = pageItems.map(notificationView);
  const last = pageItems[pageItems.length - 1];
  return { items, nextCursor: merged.length > page.limit && last ? encodeCursor(String(last.sk)) : null };
}
