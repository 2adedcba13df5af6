import * as z from 'zod';
import { conditions } from '../adapters/dynamo/conditions';
import { keys, shardFor, type ItemKey } from '../adapters/dynamo/keys';
import { MAX_TRANSACTION_ITEMS, type Item, type LedgerStore, type WriteOp } from '../adapters/dynamo/ledger-store';
import type { ConnectionsStore } from '../adapters/dynamo/connections-store';
import { postToAll, type ConnectionPoster } from '../adapters/connections-api';
import type { GiftEventPublisher, OutgoingNudge } from '../adapters/gift-events';
import { TransientDependencyError } from '../domain/errors';
import { logger } from '../logger';
import {
  leaderboardPartition,
  LIVE_STATUS_PK,
  readStream,
  RECENTLY_ENDED_STATUS_PK,
  RECENTLY_ENDED_SWEEP_MS,
  streamFromItem,
  unsentStatusPk,
  type GiftEvent,
  type StreamRecord,
} from './streams';

/**
 * The broadcaster: one sequencer per stream (DESIGN.md, Live fan-out).
 *
 * The gift-events FIFO queue groups nudges by stream, so for a given stream exactly one
 * invocation runs at a time, in order. Each run waits until the stream's window has passed since
 * its last frame, takes every gift record still marked UNSENT, numbers them with one conditional
 * counter write per chunk (not per gift), stores them for catch-up, and posts ONE frame per
 * viewer connection. A quiet stream's first gift goes out at once; a busy stream sends at most
 * one frame per window, so @connections calls grow with viewers x frames, not viewers x gifts.
 */

/** DESIGN.md: coalesce a busy stream's events within a 250-500 ms window. */
export const BROADCAST_WINDOW_MS = 300;
/** Pending gifts read per UNSENT shard partition per run; a longer backlog takes another run. */
export const UNSENT_PAGE_PER_SHARD = 25;
/** Events per frame: ~250 bytes each keeps a frame far under API Gateway's 128 KB message limit. */
export const MAX_EVENTS_PER_FRAME = 200;
/** Runs per stream per invocation; a backlog longer than that is handed to a fresh nudge. */
export const MAX_RUNS_PER_INVOCATION = 20;
/** Stop starting runs when less than this is left of the invocation's time. */
export const MIN_REMAINING_MS_FOR_RUN = 5_000;
/** Another sequencer for the same stream (a zombie after a visibility timeout) wins this often before we give up. */
const SEQUENCER_CONFLICT_LIMIT = 3;
/** A transaction carries the stream counter and the event-batch item besides gifts and leaderboard items. */
const FIXED_ITEMS_PER_CHUNK = 2;

/** The sweeper nudges streams whose oldest unsent gift is older than this (its own nudge was lost). */
export const SWEEP_MIN_AGE_MS = 5_000;
/** Streams checked at once by the sweeper. */
export const SWEEP_CONCURRENCY = 8;
/** Stream index pages the sweeper reads per status per run (100 streams each). */
const SWEEP_MAX_PAGES = 100;
const SWEEP_PAGE_SIZE = 100;
/** Sweep nudges for one stream within this bucket are one message (FIFO deduplication). */
const SWEEP_DEDUP_BUCKET_MS = 10_000;

export class SequencerConflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SequencerConflict';
  }
}

const pendingGiftItem = z.object({
  pk: z.string(),
  sk: z.string(),
  entryId: z.string().min(1),
  createdAt: z.string(),
  statusPk: z.string().optional(),
  statusSk: z.string().optional(),
  seq: z.number().optional(),
  ref: z.object({
    streamId: z.string(),
    fromUserId: z.string(),
    giftId: z.string(),
    quantity: z.number().int().positive(),
    coins: z.number().int().nonnegative(),
  }),
});

export interface PendingGift {
  key: ItemKey;
  order: string;
  giftTxId: string;
  fromUserId: string;
  giftId: string;
  quantity: number;
  coins: number;
  at: string;
}

function pendingFromItem(streamId: string, item: Item): PendingGift | undefined {
  const parsed = pendingGiftItem.safeParse(item);
  if (!parsed.success) {
    logger.error('malformed gift record left unbroadcast', { streamId, pk: String(item.pk), sk: String(item.sk) });
    return undefined;
  }
  const gift = parsed.data;
  // Already numbered, no longer marked, or another stream's (a nudge naming a wrong key): not ours to send.
  if (gift.seq !== undefined || gift.statusPk === undefined || gift.ref.streamId !== streamId) return undefined;
  return {
    key: { pk: gift.pk, sk: gift.sk },
    order: gift.statusSk ?? `${gift.createdAt}#${gift.entryId}`,
    giftTxId: gift.entryId,
    fromUserId: gift.ref.fromUserId,
    giftId: gift.ref.giftId,
    quantity: gift.ref.quantity,
    coins: gift.ref.coins,
    at: gift.createdAt,
  };
}

/**
 * Every gift of the stream still marked UNSENT, oldest first: one bounded query per shard
 * partition of the sparse index, plus (consistently read) the gifts the nudges named and the
 * index does not show yet, since a GSI lags its table.
 */
export async function collectPending(store: LedgerStore, stream: StreamRecord, named: ItemKey[]): Promise<{ gifts: PendingGift[]; more: boolean }> {
  const pages = await Promise.all(
    Array.from({ length: stream.creatorShards }, (_, shard) =>
      store.query({
        indexName: 'byStatus',
        keyCondition: 'statusPk = :pk',
        values: { ':pk': unsentStatusPk(stream.streamId, shard) },
        ascending: true,
        limit: UNSENT_PAGE_PER_SHARD,
      }),
    ),
  );
  const found = new Map<string, PendingGift>();
  for (const item of pages.flatMap((page) => page.items)) {
    const gift = pendingFromItem(stream.streamId, item);
    if (gift) found.set(`${gift.key.pk}|${gift.key.sk}`, gift);
  }
  const seen = new Set(pages.flatMap((page) => page.items.map((item) => `${String(item.pk)}|${String(item.sk)}`)));
  const missing = named.filter((key) => !seen.has(`${key.pk}|${key.sk}`));
  if (missing.length > 0) {
    for (const item of await store.batchGet(missing, { consistent: true })) {
      const gift = pendingFromItem(stream.streamId, item);
      if (gift) found.set(`${gift.key.pk}|${gift.key.sk}`, gift);
    }
  }
  const gifts = [...found.values()].sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  return { gifts, more: pages.some((page) => page.lastEvaluatedKey !== undefined) };
}

/** Splits gifts into transactions of at most 100 items: counter + event batch + gifts + one leaderboard item per sender. */
export function chunkForTransactions(gifts: PendingGift[]): PendingGift[][] {
  const chunks: PendingGift[][] = [];
  let current: PendingGift[] = [];
  let senders = new Set<string>();
  for (const gift of gifts) {
    const newSender = senders.has(gift.fromUserId) ? 0 : 1;
    if (FIXED_ITEMS_PER_CHUNK + current.length + 1 + senders.size + newSender > MAX_TRANSACTION_ITEMS) {
      chunks.push(current);
      current = [];
      senders = new Set();
    }
    current.push(gift);
    senders.add(gift.fromUserId);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** The ops that number one chunk of gifts: all or none, so no gift gets two numbers or none. */
export function sequenceOps(store: LedgerStore, stream: StreamRecord, chunk: PendingGift[], firstSeq: number, now: Date): { ops: WriteOp[]; events: GiftEvent[] } {
  const events: GiftEvent[] = chunk.map((gift, index) => ({
    type: 'gift',
    streamId: stream.streamId,
    seq: firstSeq + index,
    giftTxId: gift.giftTxId,
    fromUserId: gift.fromUserId,
    giftId: gift.giftId,
    quantity: gift.quantity,
    coins: gift.coins,
    at: gift.at,
  }));
  const lastSeq = firstSeq + chunk.length - 1;
  const coins = chunk.reduce((sum, gift) => sum + gift.coins, 0);
  const bySender = new Map<string, number>();
  for (const gift of chunk) bySender.set(gift.fromUserId, (bySender.get(gift.fromUserId) ?? 0) + gift.coins);
  const conflict = (what: string) => () => new SequencerConflict(`${what} of stream ${stream.streamId} changed under the sequencer`);
  const ops: WriteOp[] = [
    store.update(
      'stream counter',
      keys.stream(stream.streamId),
      {
        expression: 'SET seq = :newSeq, lastFrameAt = :now ADD giftCoins :coins',
        condition: 'seq = :oldSeq',
        values: { ':newSeq': lastSeq, ':oldSeq': firstSeq - 1, ':now': now.getTime(), ':coins': coins },
      },
      conflict('seq'),
    ),
    ...chunk.map((gift, index) =>
      store.update(
        'number gift',
        gift.key,
        { expression: 'SET seq = :seq REMOVE statusPk, statusSk', condition: 'attribute_not_exists(seq)', values: { ':seq': firstSeq + index } },
        conflict(`gift ${gift.giftTxId}`),
      ),
    ),
    ...[...bySender.entries()].map(([userId, userCoins]) => {
      const shard = shardFor(userId, stream.creatorShards);
      return store.update('leaderboard', keys.leaderboardEntry(stream.streamId, shard, userId), {
        expression: 'SET lbPk = :lbPk, userId = :userId ADD lbCoins :coins',
        values: { ':lbPk': leaderboardPartition(stream.streamId, shard), ':userId': userId, ':coins': userCoins },
      });
    }),
    store.put(
      'event batch',
      {
        ...keys.streamEventBatch(stream.streamId, lastSeq),
        streamId: stream.streamId,
        firstSeq,
        lastSeq,
        // One JSON string: the events exactly as API.md shapes them, served back by the catch-up route.
        events: JSON.stringify(events),
        createdAt: now.toISOString(),
      },
      { expression: conditions.isNew },
      conflict(`event batch ${lastSeq}`),
    ),
  ];
  return { ops, events };
}

/** Numbers the gifts chunk by chunk. A conflict stops it: what was committed before is returned. */
async function sequence(store: LedgerStore, stream: StreamRecord, gifts: PendingGift[], now: Date): Promise<{ events: GiftEvent[]; conflict: boolean }> {
  const committed: GiftEvent[] = [];
  let seq = stream.seq;
  for (const chunk of chunkForTransactions(gifts)) {
    const { ops, events } = sequenceOps(store, stream, chunk, seq + 1, now);
    try {
      await store.transactWrite(ops);
    } catch (error) {
      if (error instanceof SequencerConflict) {
        logger.warn('sequencer conflict; reading the stream again', { streamId: stream.streamId, error: error.message });
        return { events: committed, conflict: true };
      }
      throw error;
    }
    committed.push(...events);
    seq += chunk.length;
  }
  return { events: committed, conflict: false };
}

export interface BroadcastDeps {
  store: LedgerStore;
  connections: ConnectionsStore;
  poster: ConnectionPoster;
  publisher: GiftEventPublisher;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  windowMs: number;
  /** Epoch ms of each stream's last frame from this instance (the stream item carries it across instances). */
  lastFrames: Map<string, number>;
  /** The invocation's remaining time. */
  remainingMs: () => number;
}

export interface BroadcastResult {
  events: number;
  frames: number;
}

async function streamConnectionIds(connections: ConnectionsStore, streamId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of connections.streamConnectionIds(streamId)) ids.push(...page);
  return ids;
}

/** One frame per viewer connection per MAX_EVENTS_PER_FRAME events: a lone event as itself, several as a batch. */
export function framesFor(events: GiftEvent[]): unknown[] {
  const frames: unknown[] = [];
  for (let start = 0; start < events.length; start += MAX_EVENTS_PER_FRAME) {
    const slice = events.slice(start, start + MAX_EVENTS_PER_FRAME);
    frames.push(slice.length === 1 ? slice[0] : { type: 'batch', events: slice });
  }
  return frames;
}

async function pushCreatorWallet(deps: BroadcastDeps, creatorId: string): Promise<void> {
  const ids = await deps.connections.userConnectionIds(creatorId);
  if (ids.length === 0) return;
  const wallet = await deps.store.readWallet(creatorId, { consistent: true });
  // API.md: the wallet message, once per batch rather than once per gift.
  await postToAll(deps.poster, ids, { type: 'wallet', coins: wallet.coins, diamonds: wallet.diamonds, pendingDiamonds: wallet.pendingDiamonds });
}

/**
 * Broadcasts everything the stream has pending, in runs one window apart, then (when the stream
 * ended) `streamEnded`. Runs only inside the stream's FIFO group, so it is the stream's only
 * sequencer; the conditions on the counter and the gifts still make a zombie harmless.
 */
export async function broadcastStream(deps: BroadcastDeps, streamId: string, request: { namedGifts: ItemKey[]; ended: boolean }): Promise<BroadcastResult> {
  const result: BroadcastResult = { events: 0, frames: 0 };
  let named = request.namedGifts;
  let conflicts = 0;
  let creatorId: string | undefined;
  for (let run = 0; ; run += 1) {
    if (run > 0 && (run >= MAX_RUNS_PER_INVOCATION || deps.remainingMs() < MIN_REMAINING_MS_FOR_RUN)) {
      // Out of runs or time with gifts left: a fresh nudge continues in the next invocation. Never
      // on the first run, so a short timeout cannot turn into nudges that do nothing but re-nudge.
      await deps.publisher.publish([{ nudge: { streamId }, deduplicationId: `more:${streamId}:${deps.now().getTime()}` }]);
      break;
    }
    const stream = await readStream(deps.store, streamId, { consistent: true });
    if (!stream) {
      logger.warn('nudge for an unknown stream dropped', { streamId });
      return result;
    }
    creatorId = stream.creatorId;
    const lastFrameAt = Math.max(stream.lastFrameAt ?? 0, deps.lastFrames.get(streamId) ?? 0);
    const waitMs = lastFrameAt + deps.windowMs - deps.now().getTime();
    if (waitMs > 0) await deps.sleep(waitMs);
    const { gifts, more } = await collectPending(deps.store, stream, named);
    named = [];
    if (gifts.length === 0) break;
    const now = deps.now();
    const { events, conflict } = await sequence(deps.store, stream, gifts, now);
    if (events.length > 0) {
      deps.lastFrames.set(streamId, now.getTime());
      const ids = await streamConnectionIds(deps.connections, streamId);
      for (const frame of framesFor(events)) {
        await postToAll(deps.poster, ids, frame);
        result.frames += 1;
      }
      result.events += events.length;
      await pushCreatorWallet(deps, stream.creatorId);
    }
    if (conflict) {
      conflicts += 1;
      if (conflicts >= SEQUENCER_CONFLICT_LIMIT) throw new TransientDependencyError(`stream ${streamId}: another sequencer keeps winning`);
      continue;
    }
    if (!more) break;
  }
  if (request.ended) {
    const ids = await streamConnectionIds(deps.connections, streamId);
    await postToAll(deps.poster, ids, { type: 'streamEnded', streamId });
    logger.info('stream ended broadcast', { streamId, viewers: ids.length, creatorId });
  }
  return result;
}

async function streamsWithStatus(store: LedgerStore, statusPk: string): Promise<StreamRecord[]> {
  const streams: StreamRecord[] = [];
  let startKey: Awaited<ReturnType<LedgerStore['query']>>['lastEvaluatedKey'];
  for (let page = 0; page < SWEEP_MAX_PAGES; page += 1) {
    const result = await store.query({
      indexName: 'byStatus',
      keyCondition: 'statusPk = :statusPk',
      values: { ':statusPk': statusPk },
      limit: SWEEP_PAGE_SIZE,
      ...(startKey && { exclusiveStartKey: startKey }),
    });
    streams.push(...result.items.map(streamFromItem));
    startKey = result.lastEvaluatedKey;
    if (!startKey) break;
  }
  return streams;
}

/** The oldest unsent gift's index sort key (`<createdAt>#<giftTxId>`), or undefined when none is pending. */
async function oldestUnsent(store: LedgerStore, stream: StreamRecord): Promise<string | undefined> {
  const pages = await Promise.all(
    Array.from({ length: stream.creatorShards }, (_, shard) =>
      store.query({ indexName: 'byStatus', keyCondition: 'statusPk = :pk', values: { ':pk': unsentStatusPk(stream.streamId, shard) }, ascending: true, limit: 1 }),
    ),
  );
  const oldest = pages
    .map((page) => page.items[0]?.statusSk)
    .filter((sortKey): sortKey is string => typeof sortKey === 'string')
    .sort()[0];
  return oldest;
}

async function forEachBounded<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/**
 * The outbox sweeper (a schedule): a gift whose nudge was lost (the sender's function died after
 * the commit, or SQS refused) is still a record marked UNSENT. Streams live, or ended within the
 * last minutes, whose oldest unsent gift is older than `minAgeMs` get a nudge; the broadcaster
 * does the rest. Streams ended long ago with nothing pending leave the index.
 */
export async function sweepUnsentGifts(
  deps: { store: LedgerStore; publisher: GiftEventPublisher; now: () => Date },
  options: { minAgeMs: number } = { minAgeMs: SWEEP_MIN_AGE_MS },
): Promise<{ streams: number; nudged: number; retired: number }> {
  const now = deps.now();
  const cutoff = new Date(now.getTime() - options.minAgeMs).toISOString();
  const retireBefore = new Date(now.getTime() - RECENTLY_ENDED_SWEEP_MS).toISOString();
  const [live, ended] = await Promise.all([streamsWithStatus(deps.store, LIVE_STATUS_PK), streamsWithStatus(deps.store, RECENTLY_ENDED_STATUS_PK)]);
  const nudges: OutgoingNudge[] = [];
  let retired = 0;
  await forEachBounded([...live, ...ended], SWEEP_CONCURRENCY, async (stream) => {
    const oldest = await oldestUnsent(deps.store, stream);
    if (oldest !== undefined && oldest < cutoff) {
      nudges.push({ nudge: { streamId: stream.streamId }, deduplicationId: `sweep:${stream.streamId}:${Math.floor(now.getTime() / SWEEP_DEDUP_BUCKET_MS)}` });
    }
    if (oldest === undefined && stream.status === 'ended' && stream.endedAt !== undefined && stream.endedAt < retireBefore) {
      await deps.store.transactWrite([
        deps.store.update(
          'retire ended stream',
          keys.stream(stream.streamId),
          { expression: 'REMOVE statusPk, statusSk', condition: 'statusPk = :ended', values: { ':ended': RECENTLY_ENDED_STATUS_PK } },
          () => new SequencerConflict(`stream ${stream.streamId} left the recently-ended list meanwhile`),
        ),
      ]).then(
        () => (retired += 1),
        (error: unknown) => logger.warn('could not retire an ended stream from the sweep list', { streamId: stream.streamId, error: error instanceof Error ? error.message : String(error) }),
      );
    }
  });
  if (nudges.length > 0) await deps.publisher.publish(nudges);
  if (nudges.length > 0) logger.info('swept streams with unbroadcast gifts', { streams: nudges.map((entry) => entry.nudge.streamId) });
  return { streams: live.length + ended.length, nudged: nudges.length, retired };
}
