import * as z from 'zod';
import { shardFor, type ItemKey } from '../adapters/dynamo/keys';
import { leaderboardItems } from '../adapters/dynamo/leaderboard-items';
import { LIVE_STATUS_PK, RECENTLY_ENDED_STATUS_PK, streamItems } from '../adapters/dynamo/stream-items';
import { MAX_TRANSACTION_ITEMS, type Item, type LedgerStore, type WriteOp } from '../ports/ledger-store';
import type { ConnectionsStore } from '../ports/connections-store';
import { metrics } from '../observability/metrics';
import { postToAll, type ConnectionPoster, type PostOutcome } from '../adapters/connections-api';
import { profileItems } from '../adapters/dynamo/profile-items';
import {
  COUNTERS_BUCKET_MS,
  countersNudge,
  foldDueNudge,
  foldNudge,
  walletNudge,
  type GiftEventPublisher,
  type OutgoingNudge,
} from '../adapters/gift-events';
import { TransientDependencyError } from '../domain/errors';
import { logger } from '../logger';
import {
  encodeEventBatch,
  readEventRange,
  readStream,
  RECENTLY_ENDED_SWEEP_MS,
  streamFromItem,
  unsentPartitionCount,
  unsentPartitionsFor,
  type GiftEvent,
  type StreamRecord,
} from './streams';
import { buildFrame, type RoomMessage } from './frames';
import { publishToRoomChannel, type RoomChannelDeps } from './room-channel';

/**
 * The broadcaster: one sequencer per stream (DESIGN.md, Live fan-out).
 *
 * The gift-events FIFO queue groups nudges by stream, so for a given stream exactly one
 * invocation runs at a time, in order. Gifts nudge once per stream and time bucket (the rest of
 * the bucket's nudges are deduplicated away), so an invocation keeps collecting until its
 * buckets are over: every gift whose nudge was dropped committed before that. Each run waits
 * until the room's window has passed since its last frame, takes every gift record still marked
 * UNSENT, numbers them with one conditional counter write per chunk (not per gift), stores them
 * for catch-up, and posts ONE frame per viewer connection: the window's gifts (and a
 * giftSummary for what does not fit 32 KB), the room's counters at most once a second, and
 * `streamEnded` after the last gifts. A quiet room's first gift goes out at once; a busy room
 * gets at most one frame per window, so @connections calls grow with viewers x frames, not
 * viewers x gifts. The leaderboard is folded every few seconds, not per frame.
 */

/** API.md: frames at least 500 ms apart, so a viewer gets at most two broadcast frames a second per room. */
export const BROADCAST_WINDOW_MS = 500;
/**
 * Pending gifts read per run, over all of the stream's unsent partitions (at least
 * MIN_UNSENT_PAGE each); a longer backlog takes another run. 1,600 records of about 450 bytes
 * stay well under a query page's 1 MB even on one partition.
 */
export const UNSENT_PER_RUN = 1_600;
export const MIN_UNSENT_PAGE = 25;
/** Runs per stream per invocation; a backlog longer than that is handed to a fresh nudge. */
export const MAX_RUNS_PER_INVOCATION = 40;
/** Stop starting runs when less than this is left of the invocation's time. */
export const MIN_REMAINING_MS_FOR_RUN = 5_000;
/**
 * After a nudge's bucket ends, the broadcaster collects once more this much later: the byStatus
 * index lags its table by a little. A gift the index shows later still is found by the sweeper.
 */
export const INDEX_LAG_MARGIN_MS = 200;
/** API.md: `room` at most once a second; the creator's wallet push likewise. */
export const ROOM_INTERVAL_MS = 1_000;
export const CREATOR_WALLET_INTERVAL_MS = 1_000;
/**
 * Leaderboard totals are folded from the catch-up log, not per frame: once LEADERBOARD_FOLD_GIFTS
 * gifts are unfolded, or LEADERBOARD_FOLD_INTERVAL_MS after the last fold. Each fold writes one
 * item per sender of the period, so a busy room's leaderboard keys take a few writes per 500
 * gifts, far below DynamoDB's 1,000 a second per key at any gift rate (README, hot keys).
 */
export const LEADERBOARD_FOLD_GIFTS = 500;
export const LEADERBOARD_FOLD_INTERVAL_MS = 5_000;
/** Leaderboard items written at once by a fold. */
const LEADERBOARD_FOLD_CONCURRENCY = 16;
/** Another sequencer for the same stream (a zombie after a visibility timeout) wins this often before we give up. */
const SEQUENCER_CONFLICT_LIMIT = 3;
/** A transaction carries the stream counter, the event-batch item and the creator's profile besides the gifts. */
const FIXED_ITEMS_PER_CHUNK = 3;

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
export async function collectPending(
  store: LedgerStore,
  stream: StreamRecord,
  named: ItemKey[],
): Promise<{ gifts: PendingGift[]; more: boolean }> {
  const partitions = unsentPartitionCount(stream);
  const pageSize = Math.max(MIN_UNSENT_PAGE, Math.ceil(UNSENT_PER_RUN / partitions));
  const pages = await Promise.all(
    Array.from({ length: partitions }, (_, partition) =>
      store.query(streamItems.unsentGiftsQuery(stream.streamId, partition, pageSize)),
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

/** Splits gifts into transactions of at most 100 items: counter + event batch + gifts. */
export function chunkForTransactions(gifts: PendingGift[]): PendingGift[][] {
  const perChunk = MAX_TRANSACTION_ITEMS - FIXED_ITEMS_PER_CHUNK;
  const chunks: PendingGift[][] = [];
  for (let start = 0; start < gifts.length; start += perChunk) chunks.push(gifts.slice(start, start + perChunk));
  return chunks;
}

/** The ops that number one chunk of gifts: all or none, so no gift gets two numbers or none. */
export function sequenceOps(
  store: LedgerStore,
  stream: StreamRecord,
  chunk: PendingGift[],
  firstSeq: number,
  now: Date,
): { ops: WriteOp[]; events: GiftEvent[] } {
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
  const conflict = (what: string) => () =>
    new SequencerConflict(`${what} of stream ${stream.streamId} changed under the sequencer`);
  const ops: WriteOp[] = [
    streamItems.counterAdvanced(store, stream.streamId, { firstSeq, lastSeq, coins, at: now }, conflict('seq')),
    ...chunk.map((gift, index) =>
      streamItems.giftNumbered(store, gift.key, firstSeq + index, conflict(`gift ${gift.giftTxId}`)),
    ),
    streamItems.eventBatch(
      store,
      stream.streamId,
      // One JSON string of compact tuples; the catch-up route serves them back as API.md shapes them.
      { firstSeq, lastSeq, encodedEvents: encodeEventBatch(events), createdAt: now.toISOString() },
      conflict(`event batch ${lastSeq}`),
    ),
    // The window's coins on the creator's profile: no condition, so it never fails the numbering.
    profileItems.giftsFolded(store, stream, coins),
  ];
  return { ops, events };
}

/** Numbers the gifts chunk by chunk. A conflict stops it: what was committed before is returned. */
async function sequence(
  store: LedgerStore,
  stream: StreamRecord,
  gifts: PendingGift[],
  now: Date,
): Promise<{ events: GiftEvent[]; conflict: boolean }> {
  const committed: GiftEvent[] = [];
  let seq = stream.seq;
  for (const chunk of chunkForTransactions(gifts)) {
    const { ops, events } = sequenceOps(store, stream, chunk, seq + 1, now);
    try {
      await store.transactWrite(ops);
    } catch (error) {
      if (error instanceof SequencerConflict) {
        logger.warn('sequencer conflict; reading the stream again', {
          streamId: stream.streamId,
          error: error.message,
        });
        return { events: committed, conflict: true };
      }
      throw error;
    }
    committed.push(...events);
    seq += chunk.length;
  }
  return { events: committed, conflict: false };
}

/** What a warm broadcaster instance remembers per stream (the stream item carries lastFrameAt across instances). */
export interface BroadcasterMemory {
  /** Epoch ms of each stream's last frame from this instance. */
  lastFrames: Map<string, number>;
  /** The last `room` message sent, and when. */
  rooms: Map<string, { at: number; viewers: number; giftCoins: number }>;
  /** When the creator's wallet was last pushed. */
  walletPushes: Map<string, number>;
  /** Each room's viewer count and connection ids, read at most once per AUDIENCE_REFRESH_MS. */
  audiences: Map<string, { at: number; viewers: number; ids?: string[] }>;
  /** When this instance's latest look that read every pending gift of the stream began (epoch ms). */
  looks: Map<string, number>;
}

export function newBroadcasterMemory(): BroadcasterMemory {
  return { lastFrames: new Map(), rooms: new Map(), walletPushes: new Map(), audiences: new Map(), looks: new Map() };
}

/**
 * A busy room's audience is read again at most this often, not per frame: two frames a second
 * would otherwise page the connections index twice a second. A viewer who joins meanwhile gets
 * frames from the next refresh on and the gifts before from catch-up (API.md).
 */
export const AUDIENCE_REFRESH_MS = 1_000;
/**
 * A room this small is read afresh for every frame (one index page, at most two frames a second):
 * a viewer who (re)connects and catches up just before a frame would otherwise miss that frame
 * and, with no later frame to show a seq jump, never learn of it.
 */
export const AUDIENCE_ALWAYS_FRESH_MAX = 1_000;

async function roomViewers(deps: BroadcastDeps, streamId: string): Promise<number> {
  const now = deps.now().getTime();
  const known = deps.memory.audiences.get(streamId);
  if (known && now - known.at < AUDIENCE_REFRESH_MS) return known.viewers;
  const viewers = await deps.connections.countStreamViewers(streamId);
  deps.memory.audiences.set(streamId, { at: now, viewers });
  return viewers;
}

async function roomConnectionIds(deps: BroadcastDeps, streamId: string): Promise<string[]> {
  const now = deps.now().getTime();
  const known = deps.memory.audiences.get(streamId);
  if (known?.ids && known.ids.length > AUDIENCE_ALWAYS_FRESH_MAX && now - known.at < AUDIENCE_REFRESH_MS)
    return known.ids;
  const ids = await streamConnectionIds(deps.connections, streamId);
  deps.memory.audiences.set(streamId, {
    at: known && now - known.at < AUDIENCE_REFRESH_MS ? known.at : now,
    viewers: known?.viewers ?? ids.length,
    ids,
  });
  return ids;
}

export interface BroadcastDeps {
  store: LedgerStore;
  connections: ConnectionsStore;
  poster: ConnectionPoster;
  publisher: GiftEventPublisher;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  windowMs: number;
  memory: BroadcasterMemory;
  /** The invocation's remaining time. */
  remainingMs: () => number;
  /** @connections posts a second one room may use, and the fan-out's parallelism. */
  fanout: { postsPerSecond: number; concurrency: number; sliceConnections: number };
  /** The room's Event API channel (room-channel.ts); absent where no Event API is configured. */
  eventApi?: RoomChannelDeps;
}

export interface BroadcastRequest {
  namedGifts: ItemKey[];
  ended: boolean;
  /** The latest bucket end of the nudges taken (epoch ms); 0 for sweeper and hand-over nudges. */
  until: number;
  /** A viewer joined or left (gift-events.ts, countersNudge): send the counters even without a gift. */
  counters?: boolean;
  /** A gift run handed the creator's wallet push over (gift-events.ts, walletNudge). */
  wallet?: boolean;
  /** A gift run handed the leaderboard fold over, due then (gift-events.ts, foldNudge); 0 or absent if none. */
  foldAt?: number;
  /** The fold group's timer ran out (gift-events.ts, foldDueNudge). */
  foldDue?: boolean;
  /**
   * Every nudge taken was a signal (counters, wallet, fold timer, fold due): nothing asks for a
   * look. Absent: judged from the request (no bucket, no named gift, not ended).
   */
  signalsOnly?: boolean;
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

/**
 * The room's frame spacing: the window, or longer when viewers x frames a second would pass the
 * room's share of the account's @connections budget (a big room gets coarser frames, not 429s).
 */
export function frameSpacingMs(windowMs: number, viewers: number, postsPerSecond: number): number {
  return Math.max(windowMs, Math.ceil((viewers * 1000) / postsPerSecond));
}

/**
 * Posts one frame to every viewer: the connections are cut into slices that go out side by
 * side, each with bounded concurrency. Throttled posts are counted: those viewers catch up.
 */
async function fanOut(
  deps: BroadcastDeps,
  streamId: string,
  ids: string[],
  body: unknown,
): Promise<Record<PostOutcome, number>> {
  const slices: string[][] = [];
  for (let start = 0; start < ids.length; start += deps.fanout.sliceConnections)
    slices.push(ids.slice(start, start + deps.fanout.sliceConnections));
  const totals: Record<PostOutcome, number> = { sent: 0, gone: 0, throttled: 0, failed: 0 };
  const gone = new Set<string>();
  const poster: ConnectionPoster = {
    post: async (connectionId, message, encoded) => {
      const outcome = await deps.poster.post(connectionId, message, encoded);
      if (outcome === 'gone') gone.add(connectionId);
      return outcome;
    },
  };
  for (const counts of await Promise.all(
    slices.map((slice) => postToAll(poster, slice, body, deps.fanout.concurrency)),
  )) {
    for (const outcome of Object.keys(totals) as PostOutcome[]) totals[outcome] += counts[outcome];
  }
  // Throttled and gone posts are counted by the poster itself (ConnectionPostsThrottled, ...Gone).
  if (totals.failed > 0) metrics.count('ConnectionPostsFailed', totals.failed);
  // A connection found gone is never posted to again, not even from the cached audience.
  const audience = deps.memory.audiences.get(streamId);
  if (gone.size > 0 && audience?.ids) audience.ids = audience.ids.filter((id) => !gone.has(id));
  return totals;
}

/**
 * Pushes the creator's balance, unless one went out less than CREATOR_WALLET_INTERVAL_MS ago;
 * `waitForInterval` waits that out instead (the last push of a burst). Returns whether it pushed.
 */
async function pushCreatorWallet(deps: BroadcastDeps, creatorId: string, waitForInterval: boolean): Promise<boolean> {
  const last = deps.memory.walletPushes.get(creatorId) ?? 0;
  const waitMs = last + CREATOR_WALLET_INTERVAL_MS - deps.now().getTime();
  if (waitMs > 0 && !waitForInterval) return false;
  if (waitMs > 0) await deps.sleep(waitMs);
  deps.memory.walletPushes.set(creatorId, deps.now().getTime());
  const ids = await deps.connections.userConnectionIds(creatorId);
  if (ids.length === 0) return true;
  const wallet = await deps.store.readWallet(creatorId, { consistent: true });
  // API.md: the wallet message, at most once a second per creator rather than once per gift.
  await postToAll(deps.poster, ids, {
    type: 'wallet',
    coins: wallet.coins,
    diamonds: wallet.diamonds,
    pendingDiamonds: wallet.pendingDiamonds,
  });
  return true;
}

/** The `room` message, when its counters changed and a second has passed since the last one. */
function roomMessage(
  deps: BroadcastDeps,
  stream: StreamRecord,
  viewers: number,
  giftCoins: number,
): RoomMessage | undefined {
  const now = deps.now().getTime();
  const last = deps.memory.rooms.get(stream.streamId);
  if (last && (now - last.at < ROOM_INTERVAL_MS || (last.viewers === viewers && last.giftCoins === giftCoins)))
    return undefined;
  deps.memory.rooms.set(stream.streamId, { at: now, viewers, giftCoins });
  return { type: 'room', streamId: stream.streamId, viewers, giftCoins };
}

/**
 * Folds the gifts numbered since the last fold into the leaderboard: one conditional write per
 * sender, each carrying the seq it folded up to, so a fold that crashed half-way is resumed over
 * the same range (its range is claimed on the stream item first) and counts no gift twice.
 */
export async function foldLeaderboard(
  store: LedgerStore,
  stream: StreamRecord,
  upToSeq: number,
  now: Date,
): Promise<void> {
  const from = stream.lbSeq ?? 0;
  let to = stream.lbFoldTo;
  if (to === undefined) {
    if (upToSeq <= from) return;
    to = upToSeq;
    await store.transactWrite([
      streamItems.foldClaimed(
        store,
        stream.streamId,
        { from, to, at: now },
        () => new SequencerConflict(`leaderboard fold of stream ${stream.streamId} changed under the sequencer`),
      ),
    ]);
  }
  const events = await readEventRange(store, stream.streamId, from, to);
  if (!events)
    throw new TransientDependencyError(`stream ${stream.streamId}: catch-up log (${from}, ${to}] not readable yet`);
  const bySender = new Map<string, number>();
  for (const event of events) bySender.set(event.fromUserId, (bySender.get(event.fromUserId) ?? 0) + event.coins);
  const foldTo = to;
  await forEachBounded([...bySender.entries()], LEADERBOARD_FOLD_CONCURRENCY, async ([userId, coins]) => {
    const shard = shardFor(userId, stream.creatorShards);
    // On its own, not in a transaction: a fold writes one item per sender, on the leaderboard's
    // hottest keys, and a lone write costs half. Its condition makes a repeat harmless.
    await store
      .writeOne(
        leaderboardItems.senderFolded(
          store,
          { streamId: stream.streamId, shard, userId },
          { coins, to: foldTo },
          () => new AlreadyFolded(),
        ),
      )
      .catch((error: unknown) => {
        if (!(error instanceof AlreadyFolded)) throw error;
      });
  });
  await store.transactWrite([
    streamItems.foldFinished(
      store,
      stream.streamId,
      foldTo,
      () => new SequencerConflict(`leaderboard fold of stream ${stream.streamId} finished elsewhere`),
    ),
  ]);
}

/** This sender's total already holds the range being folded (a resumed fold). */
class AlreadyFolded extends Error {}

async function maybeFoldLeaderboard(
  deps: BroadcastDeps,
  stream: StreamRecord,
  seq: number,
  force: boolean,
): Promise<void> {
  const due =
    force ||
    stream.lbFoldTo !== undefined ||
    seq - (stream.lbSeq ?? 0) >= LEADERBOARD_FOLD_GIFTS ||
    deps.now().getTime() - (stream.lbFoldAt ?? 0) >= LEADERBOARD_FOLD_INTERVAL_MS;
  if (!due || seq <= (stream.lbSeq ?? 0)) return;
  try {
    await foldLeaderboard(deps.store, stream, seq, deps.now());
  } catch (error) {
    // Never at the viewers' expense: the next run folds the range again.
    logger.warn('leaderboard fold postponed', {
      streamId: stream.streamId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** One run's frame to every viewer of the room; returns false when nothing was sent. */
async function sendFrame(
  deps: BroadcastDeps,
  stream: StreamRecord,
  events: GiftEvent[],
  viewerIds: string[],
  viewers: number,
  final: boolean,
): Promise<boolean> {
  const giftCoins = stream.giftCoins + events.reduce((sum, event) => sum + event.coins, 0);
  // After streamEnded no gift event goes out: later gifts are numbered for catch-up only.
  const silent = stream.endAnnounced === true;
  const room = silent ? undefined : roomMessage(deps, stream, viewers, giftCoins);
  const frame = silent ? undefined : buildFrame(stream.streamId, events, { ...(room && { room }), ended: final });
  if (!frame) return false;
  if (frame.summarized > 0) metrics.count('FramesSummarized');
  // The same frame on both paths: @connections for joined connections, one publish for the channel.
  await Promise.all([
    fanOut(deps, stream.streamId, viewerIds, frame.body),
    deps.eventApi && publishToRoomChannel(deps.eventApi, stream.streamId, frame.body),
  ]);
  return true;
}

/** Another run raised the count at least as far meanwhile. */
class PartitionsAlreadyRaised extends Error {}

/**
 * The gift rate a look's gifts show: their count over the time since the oldest of them was
 * sent, and never over less than a frame spacing. Dividing by the spacing alone mistook a late
 * run's backlog for a rate: on a loaded machine a run two seconds late at 50 gifts/s saw 200/s,
 * raised the partitions, and every later look paid a query per partition, which made it later
 * still (the storm's first seconds, bench).
 */
export function observedGiftsPerS(
  gifts: Array<Pick<PendingGift, 'at'>>,
  lookedAtMs: number,
  spacingMs: number,
): number {
  if (gifts.length === 0) return 0;
  const oldestMs = Math.min(...gifts.map((gift) => Date.parse(gift.at)));
  const spanMs = Math.max(spacingMs, Number.isFinite(oldestMs) ? lookedAtMs - oldestMs : 0);
  return (gifts.length * 1000) / spanMs;
}

/**
 * Raises the stream's unsent partitions (streams.ts, unsentPartitionsFor) when this look's gifts
 * show a rate the current count cannot take (observedGiftsPerS), or when the look left a backlog
 * behind. The count only grows, so gifts that read an older count still land on partitions this
 * broadcaster reads. Older streams without the attribute read every shard.
 */
async function raiseUnsentPartitions(
  store: LedgerStore,
  stream: StreamRecord,
  giftsPerS: number,
  more: boolean,
): Promise<void> {
  const current = stream.unsentPartitions;
  if (current === undefined) return;
  const wanted = Math.max(
    unsentPartitionsFor(giftsPerS, stream.creatorShards),
    more ? Math.min(current * 2, stream.creatorShards) : current,
  );
  if (wanted <= current) return;
  try {
    await store.transactWrite([
      streamItems.unsentPartitionsRaised(store, stream.streamId, wanted, () => new PartitionsAlreadyRaised()),
    ]);
    logger.info('unsent partitions raised', { streamId: stream.streamId, from: current, to: wanted, giftsPerS });
  } catch (error) {
    if (!(error instanceof PartitionsAlreadyRaised)) throw error;
  }
}

/**
 * A bucket's nudge whose bucket (and the index's lag) ended before a complete look of this
 * instance began: every gift of the bucket committed before that look and was in it. A busy
 * room's backlog of such nudges then costs one read of the gifts they name, not a look over every
 * unsent partition (64 queries for a room at 10,000 gifts/s) and a wait for the frame spacing
 * each. A named gift still pending (an index slower than its margin) makes it a full run.
 */
async function coveredByEarlierLook(
  deps: BroadcastDeps,
  streamId: string,
  request: BroadcastRequest,
): Promise<boolean> {
  if (request.until === 0 || request.ended || request.counters === true) return false;
  const lookedAt = deps.memory.looks.get(streamId);
  if (lookedAt === undefined || lookedAt < request.until + INDEX_LAG_MARGIN_MS) return false;
  if (request.namedGifts.length === 0) return true;
  const named = await deps.store.batchGet(request.namedGifts, { consistent: true });
  return named.every((item) => pendingFromItem(streamId, item) === undefined);
}

/**
 * Until when a run keeps looking: its nudges' buckets, plus the index's lag; after a join or a
 * leave, also one `room` interval, so that the new counters go out even if a `room` message
 * went out just before (API.md: at most once a second).
 */
function collectDeadline(deps: BroadcastDeps, request: BroadcastRequest): number {
  const buckets = request.until > 0 ? request.until + INDEX_LAG_MARGIN_MS : 0;
  // Past the interval by a margin: the last try must come after `room` is allowed again.
  const counters = request.counters === true ? deps.now().getTime() + ROOM_INTERVAL_MS + INDEX_LAG_MARGIN_MS : 0;
  return Math.max(buckets, counters);
}

/**
 * A join or a leave with no gift to carry the counters: a frame of the `room` message alone,
 * when the counters changed and the interval allows (else nothing, and the caller tries again).
 */
async function sendCounters(deps: BroadcastDeps, stream: StreamRecord, viewers: number): Promise<boolean> {
  const viewerIds = await roomConnectionIds(deps, stream.streamId);
  if (!(await sendFrame(deps, stream, [], viewerIds, viewers, false))) return false;
  deps.memory.lastFrames.set(stream.streamId, deps.now().getTime());
  return true;
}

/** A counters run gives up this long after it started, whatever other runs sent meanwhile. */
export const COUNTERS_MAX_WAIT_MS = 3 * ROOM_INTERVAL_MS;
/**
 * When only the gift total changed (the viewers already had those gifts as events), the `room`
 * message alone waits for the room to be this quiet: a frame a second later carries it anyway.
 * Sent at once, it cost a post per viewer per gift frame in a room with a gift a second or so,
 * doubling its posts, and the next gift's frame then waited out the spacing behind it (measured
 * in the fan-out benchmark: two 1,000-post frames per gift, and a gift delayed up to 640 ms).
 * Joins and leaves still go out as soon as the spacing and the room interval allow.
 */
export const ROOM_TOTAL_QUIET_MS = 2 * ROOM_INTERVAL_MS;

/**
 * Until when a counters run keeps trying: one `room` interval past the later of its start and
 * the last `room` message. Another run (the stream's gift run) may send `room` with counts it
 * read before this join or leave; the new counts must still follow once the interval allows,
 * by which time the audience read behind that message has expired (AUDIENCE_REFRESH_MS).
 */
function countersDeadline(deps: BroadcastDeps, streamId: string, startedAt: number, quietFrom: number): number {
  const lastRoomAt = deps.memory.rooms.get(streamId)?.at ?? 0;
  return Math.min(
    startedAt + COUNTERS_MAX_WAIT_MS,
    Math.max(startedAt + ROOM_INTERVAL_MS, lastRoomAt + ROOM_INTERVAL_MS, quietFrom) + INDEX_LAG_MARGIN_MS,
  );
}

/**
 * Only joins and leaves were nudged: the counters alone, once the frame spacing and the `room`
 * interval allow. Gifts are left to their own nudges (and the sweeper), as without a join.
 * Joins and leaves later in the bucket the run started in were deduplicated into its nudge, so
 * it ends only after a look that began once that bucket was over (and found nothing new), or at
 * its deadline. Each look counts the room afresh, not from the audience the frames reuse.
 */
async function broadcastCounters(deps: BroadcastDeps, streamId: string): Promise<BroadcastResult> {
  const startedAt = deps.now().getTime();
  const coveredAfter = (Math.floor(startedAt / COUNTERS_BUCKET_MS) + 1) * COUNTERS_BUCKET_MS + INDEX_LAG_MARGIN_MS;
  let frames = 0;
  for (;;) {
    const lookedAt = deps.now().getTime();
    const stream = await readStream(deps.store, streamId, { consistent: true });
    if (!stream) return { events: 0, frames };
    const viewers = await deps.connections.countStreamViewers(streamId);
    deps.memory.audiences.set(streamId, { at: lookedAt, viewers });
    const last = deps.memory.rooms.get(streamId);
    const viewersChanged = !last || last.viewers !== viewers;
    const changed = viewersChanged || last.giftCoins !== stream.giftCoins;
    if (!changed && lookedAt >= coveredAfter) return { events: 0, frames };
    const lastFrame = Math.max(stream.lastFrameAt ?? 0, deps.memory.lastFrames.get(streamId) ?? 0);
    const spacing = frameSpacingMs(deps.windowMs, viewers, deps.fanout.postsPerSecond);
    const quietFrom = viewersChanged ? 0 : lastFrame + ROOM_TOTAL_QUIET_MS;
    const waitMs = Math.max(lastFrame + spacing, quietFrom) - deps.now().getTime();
    if (changed && waitMs <= 0 && (await sendCounters(deps, stream, viewers))) frames += 1;
    const left = countersDeadline(deps, streamId, startedAt, quietFrom) - deps.now().getTime();
    if (left <= 0) return { events: 0, frames };
    await deps.sleep(Math.min(left, Math.max(waitMs, deps.windowMs)));
  }
}

/**
 * The room's own FIFO group (countersNudge, walletNudge): the counters after joins and leaves,
 * and the creator's wallet push a gift run handed over, each once its interval allows. Waiting
 * here holds up none of the stream's gift nudges.
 */
async function broadcastRoomGroup(
  deps: BroadcastDeps,
  streamId: string,
  request: BroadcastRequest,
): Promise<BroadcastResult> {
  const result = request.counters ? await broadcastCounters(deps, streamId) : { events: 0, frames: 0 };
  if (request.wallet) {
    const stream = await readStream(deps.store, streamId);
    if (stream) await pushCreatorWallet(deps, stream.creatorId, true);
  }
  return result;
}

/**
 * What one batch asked of one stream. A fold timer (foldAt, from the stream's fold group) runs
 * beside the rest: merged into a gift run, it would be lost, since that run's own hand-over of
 * the fold repeats the timer's deduplication id.
 */
export async function broadcastStream(
  deps: BroadcastDeps,
  streamId: string,
  request: BroadcastRequest,
): Promise<BroadcastResult> {
  const timer = (request.foldAt ?? 0) > 0 ? foldTimer(deps, streamId, request.foldAt ?? 0) : undefined;
  const [result] = await Promise.all([broadcastRequested(deps, streamId, request), timer]);
  return result;
}

/**
 * A request of signals alone (counters, wallet, fold timer, fold due) needs no look: they are
 * served here, and undefined means a look was asked. Merged with a look (a sweeper's or a
 * hand-over's nudge in the same batch), they ride in the look's run instead: serving only the
 * signals left that stream's pending gifts to the next sweep.
 */
async function broadcastSignalsOnly(
  deps: BroadcastDeps,
  streamId: string,
  request: BroadcastRequest,
): Promise<BroadcastResult | undefined> {
  const signalsOnly = request.signalsOnly ?? (request.until === 0 && request.namedGifts.length === 0 && !request.ended);
  const signalled = request.counters || request.wallet || request.foldDue || (request.foldAt ?? 0) > 0;
  if (!signalsOnly || !signalled) return undefined;
  const result =
    request.counters || request.wallet ? await broadcastRoomGroup(deps, streamId, request) : { events: 0, frames: 0 };
  if (request.foldDue) await foldNow(deps, streamId);
  return result;
}

/**
 * Broadcasts everything the stream has pending, in runs one window apart, until its nudges'
 * buckets are over and nothing is left; when the stream ended, the last frame carries
 * `streamEnded`. Runs only inside the stream's FIFO group, so it is the stream's only
 * sequencer; the conditions on the counter and the gifts still make a zombie harmless.
 */
async function broadcastRequested(
  deps: BroadcastDeps,
  streamId: string,
  request: BroadcastRequest,
): Promise<BroadcastResult> {
  const signals = await broadcastSignalsOnly(deps, streamId, request);
  if (signals) return signals;
  if (await coveredByEarlierLook(deps, streamId, request)) return { events: 0, frames: 0 };
  const result: BroadcastResult = { events: 0, frames: 0 };
  let named = request.namedGifts;
  let conflicts = 0;
  let walletDue = request.wallet === true;
  let stream: StreamRecord | undefined;
  let countersDue = request.counters === true;
  const collectUntil = collectDeadline(deps, request);
  let handedOver = false;
  for (let run = 0; ; run += 1) {
    if (run > 0 && (run >= MAX_RUNS_PER_INVOCATION || deps.remainingMs() < MIN_REMAINING_MS_FOR_RUN)) {
      await handOver(deps, streamId, request.ended);
      handedOver = true;
      break;
    }
    stream = await readStream(deps.store, streamId, { consistent: true });
    if (!stream) {
      logger.warn('nudge for an unknown stream dropped', { streamId });
      return result;
    }
    const { viewers, spacing, ending } = await waitForRun(deps, stream, request.ended);
    // The deadline is judged by when this look began, not by when its frame went out: a gift of
    // the bucket that committed while a slow frame was being sent has not been seen yet.
    const lookedAt = deps.now().getTime();
    const { gifts, more } = await collectPending(deps.store, stream, named);
    named = [];
    await raiseUnsentPartitions(deps.store, stream, observedGiftsPerS(gifts, lookedAt, spacing), more);
    const final = ending && !more;
    if (gifts.length === 0 && !final) {
      // A look counts as complete (coveredByEarlierLook) once all it found is numbered, not before.
      if (!more) deps.memory.looks.set(streamId, lookedAt);
      if (countersDue && (await sendCounters(deps, stream, viewers))) {
        countersDue = false;
        result.frames += 1;
      }
      if (lookedAt >= collectUntil) break;
      // Idle until the buckets are over, but look again every window: a gift may come meanwhile.
      await deps.sleep(Math.max(0, Math.min(collectUntil - deps.now().getTime(), deps.windowMs)));
      continue;
    }
    const { events, conflict } = await sequence(deps.store, stream, gifts, deps.now());
    if (events.length > 0 || final) {
      const sent = await sendRun(deps, stream, events, viewers, final, conflict);
      result.frames += sent.frames;
      result.events += events.length;
      // A balance change whose push fell inside the interval goes out once the interval is over.
      walletDue = sent.walletPushed ? false : walletDue || events.length > 0;
    }
    if (conflict) {
      conflicts += 1;
      if (conflicts >= SEQUENCER_CONFLICT_LIMIT)
        throw new TransientDependencyError(`stream ${streamId}: another sequencer keeps winning`);
      continue;
    }
    if (!more) deps.memory.looks.set(streamId, lookedAt);
    if (final) {
      await markEndAnnounced(deps.store, streamId);
      logger.info('stream ended broadcast', { streamId, viewers, creatorId: stream.creatorId });
      break;
    }
    // Done when nothing is left and the nudges' buckets are over; otherwise the next window.
    if (!more && !ending && lookedAt >= collectUntil) break;
  }
  await finishInvocation(deps, streamId, { stream, walletDue, handedOver });
  return result;
}

/**
 * After the last run: the creator's held-back wallet push (or its hand-over), then, with one consistent read of the
 * stream, the counters to hand over and the leaderboard fold. After a handover the next
 * invocation does those two: this one is out of runs or of time.
 */
async function finishInvocation(
  deps: BroadcastDeps,
  streamId: string,
  last: { stream: StreamRecord | undefined; walletDue: boolean; handedOver: boolean },
): Promise<void> {
  if (!last.stream) return;
  // A push the interval holds back goes to the room's group, which waits for it instead of us.
  if (last.walletDue && !(await pushCreatorWallet(deps, last.stream.creatorId, false)))
    await deps.publisher.publish([walletNudge(streamId, deps.now())]);
  if (last.handedOver) return;
  const settled = await readStream(deps.store, streamId, { consistent: true });
  if (!settled) return;
  await handOverHeldRoom(deps, settled);
  await settleLeaderboard(deps, settled);
}

/**
 * On the way out: counters whose `room` message the interval held back (a frame went out within
 * a second of the last `room`) are handed to the room's counters group, which sends them once the
 * second is over. Waiting here instead would hold up the stream's next gift nudges by up to a
 * second per invocation; a busy room's next frame usually carries them first anyway.
 */
async function handOverHeldRoom(deps: BroadcastDeps, stream: StreamRecord): Promise<void> {
  const last = deps.memory.rooms.get(stream.streamId);
  if (!last || stream.endAnnounced === true) return;
  const viewers = await roomViewers(deps, stream.streamId);
  if (last.viewers === viewers && last.giftCoins === stream.giftCoins) return;
  await deps.publisher.publish([countersNudge(stream.streamId, deps.now())]);
}

/** Out of runs or time with gifts left: a fresh nudge continues in the next invocation. */
async function handOver(deps: BroadcastDeps, streamId: string, ended: boolean): Promise<void> {
  await deps.publisher.publish([
    {
      nudge: { streamId, ...(ended && { ended: true }) },
      deduplicationId: `more:${streamId}:${deps.now().getTime()}`,
    },
  ]);
}

/**
 * Waits until the room's frame spacing has passed since its last frame (from this instance or,
 * via the stream item, another); an ending stream also waits out the index's lag after its end,
 * since gifts that committed just before the end may still be on their way into the index.
 */
async function waitForRun(
  deps: BroadcastDeps,
  stream: StreamRecord,
  ended: boolean,
): Promise<{ viewers: number; spacing: number; ending: boolean }> {
  const viewers = await roomViewers(deps, stream.streamId);
  const spacing = Math.max(
    frameSpacingMs(deps.windowMs, viewers, deps.fanout.postsPerSecond),
    deps.eventApi ? frameSpacingMs(deps.windowMs, viewers, deps.eventApi.deliveriesPerSecond) : 0,
  );
  const ending = ended && stream.status === 'ended' && stream.endAnnounced !== true;
  const notBefore = Math.max(
    Math.max(stream.lastFrameAt ?? 0, deps.memory.lastFrames.get(stream.streamId) ?? 0) + spacing,
    ending && stream.endedAt ? Date.parse(stream.endedAt) + INDEX_LAG_MARGIN_MS : 0,
  );
  const waitMs = notBefore - deps.now().getTime();
  if (waitMs > 0) await deps.sleep(waitMs);
  return { viewers, spacing, ending };
}

/**
 * Posts a run's frame (its gifts, and `streamEnded` after the last ones), then the creator's
 * wallet (unless one went out within the interval) and, when due, a leaderboard fold.
 */
async function sendRun(
  deps: BroadcastDeps,
  stream: StreamRecord,
  events: GiftEvent[],
  viewers: number,
  final: boolean,
  conflict: boolean,
): Promise<{ frames: number; walletPushed: boolean }> {
  const frameAt = deps.now().getTime();
  const viewerIds = final
    ? await streamConnectionIds(deps.connections, stream.streamId)
    : await roomConnectionIds(deps, stream.streamId);
  let frames = 0;
  if (await sendFrame(deps, stream, events, viewerIds, viewers, final && !conflict)) {
    deps.memory.lastFrames.set(stream.streamId, frameAt);
    frames = 1;
  }
  const walletPushed = events.length > 0 && (await pushCreatorWallet(deps, stream.creatorId, false));
  await maybeFoldLeaderboard(deps, stream, stream.seq + events.length, final);
  return { frames, walletPushed };
}

/**
 * On the way out: gifts not yet in the leaderboard are folded now when a fold is due; otherwise
 * a nudge brings the broadcaster back when it is (it keeps broadcasting until then), so the
 * last gifts of a burst reach the leaderboard within LEADERBOARD_FOLD_INTERVAL_MS.
 */
async function settleLeaderboard(deps: BroadcastDeps, stream: StreamRecord): Promise<void> {
  const streamId = stream.streamId;
  if (stream.seq <= (stream.lbSeq ?? 0)) return;
  const dueAt = (stream.lbFoldAt ?? 0) + LEADERBOARD_FOLD_INTERVAL_MS;
  if (stream.lbFoldTo !== undefined || deps.now().getTime() >= dueAt) {
    await maybeFoldLeaderboard(deps, stream, stream.seq, true);
    return;
  }
  await deps.publisher.publish([foldNudge(streamId, dueAt, stream.lbFoldAt ?? 0)]);
}

/**
 * The stream's fold group keeps time and nothing else: it waits until the fold is due, then asks
 * the stream's own group to fold (foldDueNudge), so no two folds of a stream run side by side and
 * no fold's wait holds up a gift nudge. The wait is at most LEADERBOARD_FOLD_INTERVAL_MS.
 */
async function foldTimer(deps: BroadcastDeps, streamId: string, dueAt: number): Promise<void> {
  const waitMs = Math.min(dueAt - deps.now().getTime(), deps.remainingMs() - MIN_REMAINING_MS_FOR_RUN);
  if (waitMs > 0) await deps.sleep(waitMs);
  await deps.publisher.publish([foldDueNudge(streamId, dueAt)]);
}

/** The fold is due: folded now, or handed on when a gift run folded meanwhile and more gifts came. */
async function foldNow(deps: BroadcastDeps, streamId: string): Promise<void> {
  const stream = await readStream(deps.store, streamId, { consistent: true });
  if (stream) await settleLeaderboard(deps, stream);
}

async function markEndAnnounced(store: LedgerStore, streamId: string): Promise<void> {
  await store.transactWrite([streamItems.endAnnounced(store, streamId)]);
}

async function streamsWithStatus(store: LedgerStore, statusPk: string): Promise<StreamRecord[]> {
  const streams: StreamRecord[] = [];
  let startKey: Awaited<ReturnType<LedgerStore['query']>>['lastEvaluatedKey'];
  for (let page = 0; page < SWEEP_MAX_PAGES; page += 1) {
    const result = await store.query(streamItems.withStatusQuery(statusPk, SWEEP_PAGE_SIZE, startKey));
    streams.push(...result.items.map(streamFromItem));
    startKey = result.lastEvaluatedKey;
    if (!startKey) break;
  }
  return streams;
}

/** The oldest unsent gift's index sort key (`<createdAt>#<giftTxId>`), or undefined when none is pending. */
async function oldestUnsent(store: LedgerStore, stream: StreamRecord): Promise<string | undefined> {
  const pages = await Promise.all(
    Array.from({ length: unsentPartitionCount(stream) }, (_, partition) =>
      store.query(streamItems.unsentGiftsQuery(stream.streamId, partition, 1)),
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
  const [live, ended] = await Promise.all([
    streamsWithStatus(deps.store, LIVE_STATUS_PK),
    streamsWithStatus(deps.store, RECENTLY_ENDED_STATUS_PK),
  ]);
  const nudges: OutgoingNudge[] = [];
  let retired = 0;
  await forEachBounded([...live, ...ended], SWEEP_CONCURRENCY, async (stream) => {
    const oldest = await oldestUnsent(deps.store, stream);
    if (oldest !== undefined && oldest < cutoff) {
      nudges.push({
        nudge: { streamId: stream.streamId },
        deduplicationId: `sweep:${stream.streamId}:${Math.floor(now.getTime() / SWEEP_DEDUP_BUCKET_MS)}`,
      });
    }
    if (
      oldest === undefined &&
      stream.status === 'ended' &&
      stream.endedAt !== undefined &&
      stream.endedAt < retireBefore
    ) {
      await deps.store
        .transactWrite([
          streamItems.retired(
            deps.store,
            stream.streamId,
            () => new SequencerConflict(`stream ${stream.streamId} left the recently-ended list meanwhile`),
          ),
        ])
        .then(
          () => (retired += 1),
          (error: unknown) =>
            logger.warn('could not retire an ended stream from the sweep list', {
              streamId: stream.streamId,
              error: error instanceof Error ? error.message : String(error),
            }),
        );
    }
  });
  if (nudges.length > 0) await deps.publisher.publish(nudges);
  if (nudges.length > 0)
    logger.info('swept streams with unbroadcast gifts', { streams: nudges.map((entry) => entry.nudge.streamId) });
  return { streams: live.length + ended.length, nudged: nudges.length, retired };
}
