import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  GetItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type Update,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import fc from 'fast-check';
import type { ConnectionPoster } from '../../shared/adapters/connections-api';
import { DynamoConnectionsStore } from '../../shared/adapters/dynamo/connections-store';
import { keys, shardFor } from '../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { MAX_TRANSACTION_ITEMS } from '../../shared/ports/ledger-store';
import type { OutgoingNudge } from '../../shared/adapters/gift-events';
import {
  broadcastStream,
  CREATOR_WALLET_INTERVAL_MS,
  chunkForTransactions,
  foldLeaderboard,
  frameSpacingMs,
  newBroadcasterMemory,
  sequenceOps,
  sweepUnsentGifts,
  type BroadcastDeps,
  type PendingGift,
  LEADERBOARD_FOLD_INTERVAL_MS,
  observedGiftsPerS,
  ROOM_TOTAL_QUIET_MS,
} from '../../shared/usecases/broadcast';
import {
  decodeEventBatch,
  LIVE_STATUS_PK,
  RECENTLY_ENDED_STATUS_PK,
  UNSENT_PARTITION_GIFTS_PER_S,
  unsentPartitionsFor,
  unsentStatusPk,
  type GiftEvent,
  type StreamRecord,
} from '../../shared/usecases/streams';

/*
 * The broadcaster without a network: chunking within DynamoDB's 100-item transactions, frame
 * shapes, the exact sequencing transaction, the window, index lag, conflicts, streamEnded order,
 * and the sweeper's choice of streams.
 */

const NOW_MS = Date.parse('2026-03-01T12:00:00.000Z');
const SHARDS = 4;
const STREAM: StreamRecord = {
  streamId: 'st_1',
  creatorId: 'carol',
  title: 'live',
  status: 'live',
  startedAt: '2026-03-01T11:00:00.000Z',
  seq: 0,
  giftCoins: 0,
  creatorShards: SHARDS,
};

function pending(index: number, fromUserId = `u${index}`): PendingGift {
  const at = new Date(NOW_MS - 1000 + index).toISOString();
  return {
    key: { pk: 'USER#carol#E0', sk: `TX#${at}#g${index}` },
    order: `${at}#g${index}`,
    giftTxId: `g${index}`,
    fromUserId,
    giftId: 'rose',
    quantity: 1,
    coins: 1 + index,
    at,
  };
}

describe('chunkForTransactions', () => {
  it('never builds a transaction over 100 items (counter + event batch + gifts) and keeps order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 400 }), (senders) => {
        const gifts = senders.map((sender, index) => pending(index, `u${sender}`));
        const chunks = chunkForTransactions(gifts);
        for (const chunk of chunks) {
          expect(chunk.length).toBeGreaterThan(0);
          expect(2 + chunk.length).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
        }
        expect(chunks.flat()).toEqual(gifts);
      }),
    );
  });

  it('packs 97 gifts into one transaction whoever sent them (counter, event batch and profile take the other 3)', () => {
    expect(
      chunkForTransactions(Array.from({ length: 97 }, (_, index) => pending(index))).map((chunk) => chunk.length),
    ).toEqual([97]);
    expect(
      chunkForTransactions(Array.from({ length: 98 }, (_, index) => pending(index))).map((chunk) => chunk.length),
    ).toEqual([97, 1]);
  });
});

describe('frameSpacingMs', () => {
  it('keeps the window for small rooms and stretches it when viewers x frames would pass the posts budget', () => {
    expect(frameSpacingMs(500, 1_000, 5_000)).toBe(500);
    expect(frameSpacingMs(500, 2_500, 5_000)).toBe(500);
    // 10,000 viewers at a 5,000 posts/s budget: one frame every 2 s, 5,000 posts a second.
    expect(frameSpacingMs(500, 10_000, 5_000)).toBe(2_000);
  });
});

describe('sequenceOps', () => {
  it('numbers a chunk with one conditional counter write, marks each gift once and stores the events (no leaderboard write per frame)', () => {
    const store = new DynamoLedgerStore({ send: jest.fn() }, 'Ledger');
    const gifts = [pending(0, 'alice'), pending(1, 'bob'), pending(2, 'alice')];
    const { ops, events } = sequenceOps(store, { ...STREAM, seq: 7 }, gifts, 8, new Date(NOW_MS));
    const written = ops.map((op) => store.toTransactItem(op));
    expect(events.map((event) => event.seq)).toEqual([8, 9, 10]);
    expect(events[0]).toEqual({
      type: 'gift',
      streamId: 'st_1',
      seq: 8,
      giftTxId: 'g0',
      fromUserId: 'alice',
      giftId: 'rose',
      quantity: 1,
      coins: 1,
      at: gifts[0]?.at,
    });
    expect(ops.map((op) => op.label)).toEqual([
      'stream counter',
      'number gift',
      'number gift',
      'number gift',
      'event batch',
      'creator profile: gifts',
    ]);
    expect(written[0]?.Update).toMatchObject({
      UpdateExpression: 'SET seq = :newSeq, lastFrameAt = :now ADD giftCoins :coins',
      ConditionExpression: 'seq = :oldSeq',
      ExpressionAttributeValues: marshall({ ':newSeq': 10, ':oldSeq': 7, ':now': NOW_MS, ':coins': 6 }),
    });
    expect(written[1]?.Update).toMatchObject({
      UpdateExpression: 'SET seq = :seq REMOVE statusPk, statusSk',
      ConditionExpression: 'attribute_not_exists(seq)',
    });
    const batch = unmarshall(written[4]?.Put?.Item ?? {});
    expect(batch).toMatchObject({ ...keys.streamEventBatch('st_1', 10), firstSeq: 8, lastSeq: 10 });
    // Stored as compact tuples, read back exactly as the API shapes the events.
    expect(decodeEventBatch('st_1', batch.events)).toEqual(events);
    expect(String(batch.events).length).toBeLessThan(JSON.stringify(events).length * 0.7);
    // A batch written before the tuples (the API's objects) still reads.
    expect(decodeEventBatch('st_1', JSON.stringify(events))).toEqual(events);
    expect(decodeEventBatch('st_1', '[[1,"x"]]')).toBeUndefined();
    expect(decodeEventBatch('st_1', 'not json')).toBeUndefined();
    // The profile takes the window's coins in one write, not one per gift.
    expect(written[5]?.Update).toMatchObject({
      ExpressionAttributeValues: expect.objectContaining({
        ':coins': { N: String(gifts.reduce((sum, gift) => sum + gift.coins, 0)) },
      }),
    });
  });
});

/** A small in-memory ledger + connections table: enough of DynamoDB for the broadcaster's reads and writes. */
function fakeTables() {
  const ledger = new Map<string, Record<string, unknown>>();
  const connections: Array<{ connectionId: string; streamId?: string; userId: string }> = [];
  const transactions: TransactWriteItem[][] = [];
  const queries: string[] = [];
  let cancelNext = 0;
  const put = (item: Record<string, unknown>) => ledger.set(`${String(item.pk)}|${String(item.sk)}`, item);
  type UpdateInput = Partial<
    Pick<Update, 'Key' | 'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeValues'>
  >;
  /** The one condition the leaderboard fold's resumption relies on: the stored item when it fails. */
  const foldConflict = (update: UpdateInput) => {
    if (update.ConditionExpression !== 'attribute_not_exists(lbSeq) OR lbSeq < :to') return undefined;
    const key = unmarshall(update.Key ?? {});
    const stored = ledger.get(`${String(key.pk)}|${String(key.sk)}`);
    const to = Number(unmarshall(update.ExpressionAttributeValues ?? {})[':to']);
    return stored && Number(stored.lbSeq) >= to ? stored : undefined;
  };
  const applyUpdate = (update: UpdateInput) => {
    const key = unmarshall(update.Key ?? {});
    const values = unmarshall(update.ExpressionAttributeValues ?? {});
    const stored = ledger.get(`${String(key.pk)}|${String(key.sk)}`) ?? { ...key };
    if (update.UpdateExpression?.startsWith('SET seq = :newSeq'))
      Object.assign(stored, {
        seq: values[':newSeq'],
        lastFrameAt: values[':now'],
        giftCoins: Number(stored.giftCoins ?? 0) + Number(values[':coins']),
      });
    if (update.UpdateExpression?.startsWith('SET seq = :seq REMOVE')) {
      stored.seq = values[':seq'];
      delete stored.statusPk;
      delete stored.statusSk;
    } else if (!update.UpdateExpression?.startsWith('SET seq = :newSeq')) {
      // Plain `SET a = :x, ... [ADD n :y] [REMOVE b]` updates (leaderboard folds, end announced).
      const [, sets = '', adds = '', removes = ''] =
        /^SET (.*?)(?: ADD (.*?))?(?: REMOVE (.*))?$/.exec(update.UpdateExpression ?? '') ?? [];
      for (const assignment of sets.split(',').filter(Boolean)) {
        const [name = '', value = ''] = assignment.split('=').map((part) => part.trim());
        stored[name] = values[value];
      }
      for (const addition of adds.split(',').filter(Boolean)) {
        const [name = '', value = ''] = addition.trim().split(' ');
        stored[name] = Number(stored[name] ?? 0) + Number(values[value]);
      }
      for (const name of removes.split(',').filter(Boolean)) delete stored[name.trim()];
    }
    put(stored);
  };
  const client = {
    send: jest.fn(async (command: unknown) => {
      if (command instanceof GetItemCommand) {
        const key = unmarshall(command.input.Key ?? {});
        const item = ledger.get(`${String(key.pk)}|${String(key.sk)}`);
        return item ? { Item: marshall(item, { removeUndefinedValues: true }) } : {};
      }
      if (command instanceof BatchGetItemCommand) {
        const request = Object.values(command.input.RequestItems ?? {})[0];
        const found = (request?.Keys ?? [])
          .map((key) => unmarshall(key))
          .flatMap((key) => ledger.get(`${String(key.pk)}|${String(key.sk)}`) ?? []);
        return { Responses: { Ledger: found.map((item) => marshall(item, { removeUndefinedValues: true })) } };
      }
      if (command instanceof QueryCommand) {
        const values = unmarshall(command.input.ExpressionAttributeValues ?? {});
        if (command.input.TableName === 'Connections') {
          const attribute = command.input.IndexName === 'byStream' ? 'streamId' : 'userId';
          return {
            Items: connections
              .filter((connection) => connection[attribute] === values[':value'])
              .map((connection) => marshall({ connectionId: connection.connectionId })),
          };
        }
        if (command.input.KeyConditionExpression === 'pk = :pk AND sk > :after') {
          // The catch-up log, read by the leaderboard fold.
          const rows = [...ledger.values()]
            .filter((item) => item.pk === values[':pk'] && String(item.sk) > String(values[':after']))
            .sort((a, b) => (String(a.sk) < String(b.sk) ? -1 : 1));
          return { Items: rows.map((item) => marshall(item, { removeUndefinedValues: true })) };
        }
        const wanted = String(values[':pk'] ?? values[':statusPk']);
        queries.push(wanted);
        const matches = [...ledger.values()]
          .filter((item) => item.statusPk === wanted)
          .sort((a, b) => (String(a.statusSk) < String(b.statusSk) ? -1 : 1))
          .slice(0, command.input.Limit ?? 1000);
        return { Items: matches.map((item) => marshall(item, { removeUndefinedValues: true })) };
      }
      if (command instanceof UpdateItemCommand) {
        // A lone write (the leaderboard fold's per-sender totals): its condition fails alone.
        const old = foldConflict(command.input);
        if (old) throw new ConditionalCheckFailedException({ message: 'x', $metadata: {}, Item: marshall(old) });
        applyUpdate(command.input);
        return {};
      }
      if (command instanceof TransactWriteItemsCommand) {
        if (cancelNext > 0) {
          cancelNext -= 1;
          throw new TransactionCanceledException({
            message: 'x',
            $metadata: {},
            CancellationReasons: [{ Code: 'ConditionalCheckFailed' }],
          });
        }
        const items = command.input.TransactItems ?? [];
        for (const item of items) {
          const old = item.Update && foldConflict(item.Update);
          if (old) {
            throw new TransactionCanceledException({
              message: 'x',
              $metadata: {},
              CancellationReasons: [{ Code: 'ConditionalCheckFailed', Item: marshall(old) }],
            });
          }
        }
        transactions.push(items);
        for (const item of items) {
          if (item.Put?.Item) put(unmarshall(item.Put.Item));
          if (item.Update) applyUpdate(item.Update);
        }
        return {};
      }
      throw new Error(`unexpected command ${(command as object).constructor.name}`);
    }),
  };
  return {
    ledger,
    connections,
    transactions,
    queries,
    put,
    cancel: (times: number) => (cancelNext = times),
    store: new DynamoLedgerStore(client, 'Ledger', { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 }),
    connectionsStore: new DynamoConnectionsStore(client, 'Connections'),
  };
}

function giftRecord(index: number, streamId = 'st_1', options: { indexed?: boolean; atMs?: number } = {}) {
  const at = new Date(options.atMs ?? NOW_MS - 1000 + index).toISOString();
  const giftTxId = `gift_${String(index).padStart(3, '0')}`;
  const shard = shardFor(giftTxId, SHARDS);
  return {
    ...keys.shardEntry('carol', shard, at, giftTxId),
    entryId: giftTxId,
    userId: 'carol',
    entryType: 'gift_received',
    coins: 0,
    diamonds: 5,
    createdAt: at,
    ref: { streamId, fromUserId: 'alice', giftId: 'heart', quantity: 1, coins: 5 },
    ...(options.indexed !== false && { statusPk: unsentStatusPk(streamId, shard), statusSk: `${at}#${giftTxId}` }),
  };
}

function broadcaster(options: { lastFrameAt?: number } = {}) {
  const tables = fakeTables();
  tables.put({
    ...keys.stream('st_1'),
    ...STREAM,
    ...(options.lastFrameAt !== undefined && { lastFrameAt: options.lastFrameAt }),
  });
  tables.put({ ...keys.wallet('carol'), coins: 0, creatorShards: SHARDS });
  tables.connections.push(
    { connectionId: 'v1', streamId: 'st_1', userId: 'alice' },
    { connectionId: 'v2', streamId: 'st_1', userId: 'bob' },
    { connectionId: 'c1', userId: 'carol' },
  );
  const posts: Array<{ connectionId: string; message: any }> = [];
  const poster: ConnectionPoster = {
    post: async (connectionId, message) => {
      posts.push({ connectionId, message });
      return 'sent';
    },
  };
  const sleeps: number[] = [];
  const published: OutgoingNudge[] = [];
  let clock = NOW_MS;
  const deps: BroadcastDeps = {
    store: tables.store,
    connections: tables.connectionsStore,
    poster,
    publisher: { publish: async (nudges) => void published.push(...nudges) },
    now: () => new Date(clock),
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    windowMs: 300,
    memory: newBroadcasterMemory(),
    remainingMs: () => 30_000,
    fanout: { postsPerSecond: 5_000, concurrency: 10, sliceConnections: 1 },
  };
  const advance = (ms: number) => (clock += ms);
  return { tables, deps, posts, sleeps, published, advance };
}

describe('broadcastStream', () => {
  it("sends a quiet stream's gifts at once: one frame per viewer, then the creator's wallet", async () => {
    const { tables, deps, posts, sleeps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    for (const index of [2, 0, 1]) tables.put(giftRecord(index));
    const result = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 });
    expect(result).toEqual({ events: 3, frames: 1 });
    expect(sleeps).toEqual([]);
    const toViewers = posts.filter((post) => post.connectionId !== 'c1');
    expect(toViewers.map((post) => post.connectionId).sort()).toEqual(['v1', 'v2']);
    const frame = toViewers[0]?.message;
    expect(frame.type).toBe('batch');
    // The gifts in seq order, then the room's counters riding in the same frame.
    expect(frame.events.map((event: GiftEvent) => [event.type, event.seq, event.giftTxId])).toEqual([
      ['gift', 1, 'gift_000'],
      ['gift', 2, 'gift_001'],
      ['gift', 3, 'gift_002'],
      ['room', undefined, undefined],
    ]);
    expect(frame.events[3]).toEqual({ type: 'room', streamId: 'st_1', viewers: 0, giftCoins: 15 });
    expect(posts.filter((post) => post.connectionId === 'c1').map((post) => post.message)).toEqual([
      { type: 'wallet', coins: 0, diamonds: 0, pendingDiamonds: 0 },
    ]);
    // One transaction numbered all three: one counter write for the batch, not one per gift.
    const numbering = tables.transactions.filter((items) =>
      items.some((item) => item.Update?.UpdateExpression?.startsWith('SET seq = :newSeq')),
    );
    expect(numbering).toHaveLength(1);
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ seq: 3, giftCoins: 15 });
    // Every UNSENT shard partition was read, none was scanned.
    expect(new Set(tables.queries)).toEqual(
      new Set(Array.from({ length: SHARDS }, (_, shard) => unsentStatusPk('st_1', shard))),
    );
  });

  it("waits out the window since the stream's last frame before taking a busy stream's gifts", async () => {
    const { tables, deps, sleeps } = broadcaster({ lastFrameAt: NOW_MS - 120 });
    tables.put(giftRecord(0));
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 });
    expect(sleeps).toEqual([180]);
    // This instance remembers its own frame too.
    expect(deps.memory.lastFrames.get('st_1')).toBe(NOW_MS + 180);
  });

  it('reads a named gift the index does not show yet (GSI lag) and sends it', async () => {
    const { tables, deps, posts } = broadcaster();
    const lagging = giftRecord(5, 'st_1', { indexed: false });
    // On the table it is marked unsent; the index has not caught up.
    tables.put({ ...lagging, statusPk: 'not-yet-in-the-index-in-this-fake', statusSk: 'x' });
    const result = await broadcastStream(deps, 'st_1', {
      namedGifts: [{ pk: lagging.pk, sk: lagging.sk }],
      ended: false,
      until: 0,
    });
    expect(result.events).toBe(1);
    expect(posts.find((post) => post.connectionId === 'v1')?.message.events[0]).toMatchObject({
      type: 'gift',
      seq: 1,
      giftTxId: 'gift_005',
    });
  });

  it('does not count a look whose gifts a conflict kept from being numbered: their redelivered nudge sends them', async () => {
    const { tables, deps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put(giftRecord(0));
    // The bucket is long over, so any complete look of this run would cover it.
    const bucket = { namedGifts: [], ended: false, until: NOW_MS - 1_000 };
    tables.cancel(3);
    await expect(broadcastStream(deps, 'st_1', bucket)).rejects.toThrow(/another sequencer/);
    expect(await broadcastStream(deps, 'st_1', bucket)).toMatchObject({ events: 1 });
  });

  it('does nothing for a nudge whose gifts another run already sent', async () => {
    const { tables, deps, posts } = broadcaster();
    const sent = { ...giftRecord(1), seq: 1 };
    delete (sent as Record<string, unknown>).statusPk;
    tables.put(sent);
    await expect(
      broadcastStream(deps, 'st_1', { namedGifts: [{ pk: sent.pk, sk: sent.sk }], ended: false, until: 0 }),
    ).resolves.toEqual({ events: 0, frames: 0 });
    expect(posts).toEqual([]);
    expect(tables.transactions).toHaveLength(0);
  });

  it('reads the stream again after a sequencer conflict, and gives up after a bounded number', async () => {
    const retried = broadcaster();
    retried.tables.put(giftRecord(0));
    retried.tables.cancel(1);
    await expect(broadcastStream(retried.deps, 'st_1', { namedGifts: [], ended: false, until: 0 })).resolves.toEqual({
      events: 1,
      frames: 1,
    });

    const stuck = broadcaster();
    stuck.tables.put(giftRecord(0));
    stuck.tables.cancel(10);
    await expect(broadcastStream(stuck.deps, 'st_1', { namedGifts: [], ended: false, until: 0 })).rejects.toThrow(
      /another sequencer/,
    );
  });

  it('tells viewers the stream ended in the same frame as its last gifts, and sends no gift after it', async () => {
    const { tables, deps, posts } = broadcaster();
    const endedAt = new Date(NOW_MS - 1_000).toISOString();
    tables.put({ ...keys.stream('st_1'), ...STREAM, status: 'ended', endedAt });
    tables.put(giftRecord(0));
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: true, until: 0 });
    const toViewer = posts.filter((post) => post.connectionId === 'v1').map((post) => post.message);
    expect(toViewer).toHaveLength(1);
    expect(toViewer[0].events.map((event: { type: string }) => event.type)).toEqual(['gift', 'room', 'streamEnded']);
    expect(toViewer[0].events[2]).toEqual({ type: 'streamEnded', streamId: 'st_1' });
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ endAnnounced: true });

    // A gift that reaches the index later (the sweeper nudges it) is numbered for catch-up, never posted.
    posts.length = 0;
    tables.put(giftRecord(1));
    const late = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 });
    expect(late).toEqual({ events: 1, frames: 0 });
    expect(posts.filter((post) => post.connectionId !== 'c1')).toEqual([]);
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ seq: 2 });
  });

  it('after a join or a leave, sends the room counters alone, without a gift, and only when they changed', async () => {
    const { deps, posts, tables } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    // A gift whose nudge was lost is left to the sweeper: a join does not collect it.
    tables.put(giftRecord(0));
    const joined = { namedGifts: [], ended: false, until: 0, counters: true };
    await expect(broadcastStream(deps, 'st_1', joined)).resolves.toEqual({ events: 0, frames: 1 });
    const toViewers = posts.filter((post) => post.connectionId !== 'c1');
    expect(toViewers.map((post) => post.connectionId).sort()).toEqual(['v1', 'v2']);
    const messages = (frame: { type: string; events?: unknown[] }) => (frame.type === 'batch' ? frame.events : [frame]);
    expect(messages(toViewers[0]?.message)).toEqual([{ type: 'room', streamId: 'st_1', viewers: 0, giftCoins: 0 }]);
    expect(tables.transactions).toHaveLength(0);

    // The same counters again: nothing to say.
    posts.length = 0;
    await expect(broadcastStream(deps, 'st_1', joined)).resolves.toEqual({ events: 0, frames: 0 });
    expect(posts).toEqual([]);
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ seq: 0 });
  });

  it('after a join right behind another room message, waits out the room interval and then sends the new count', async () => {
    const { deps, posts, sleeps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    // A `room` message with other counters went out 200 ms ago: docs/API.md allows one a second.
    deps.memory.rooms.set('st_1', { at: NOW_MS - 200, viewers: 5, giftCoins: 0 });
    const result = await broadcastStream(deps, 'st_1', {
      namedGifts: [],
      ended: false,
      until: 0,
      counters: true,
    });
    expect(result).toEqual({ events: 0, frames: 1 });
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeGreaterThanOrEqual(800);
    const toViewer = posts.filter((post) => post.connectionId === 'v1');
    expect(toViewer).toHaveLength(1);
  });

  it('after a leave, still sends the new count when another run sends stale counters while it waits', async () => {
    const { deps, posts, sleeps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    deps.memory.rooms.set('st_1', { at: NOW_MS - 200, viewers: 5, giftCoins: 0 });
    // The stream's gift run, holding an audience read from before the leave, sends `room` with
    // the old count 600 ms into this run's wait: the interval starts again from there.
    const originalSleep = deps.sleep;
    deps.sleep = async (ms) => {
      await originalSleep(ms);
      if (sleeps.length === 1) deps.memory.rooms.set('st_1', { at: deps.now().getTime(), viewers: 5, giftCoins: 0 });
    };
    const result = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, counters: true });
    expect(result).toEqual({ events: 0, frames: 1 });
    const toViewer = posts.filter((post) => post.connectionId === 'v1').map((post) => post.message);
    expect(toViewer).toHaveLength(1);
    expect(toViewer[0].events ?? [toViewer[0]]).toEqual([{ type: 'room', streamId: 'st_1', viewers: 0, giftCoins: 0 }]);
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeGreaterThanOrEqual(1_000 + sleeps[0]!);
  });

  it('a changed gift total alone waits until the room has been quiet for its interval, then goes out', async () => {
    // A gift frame went out 300 ms ago, without `room` (one had gone out 700 ms before it).
    const { tables, deps, posts, sleeps } = broadcaster({ lastFrameAt: NOW_MS - 300 });
    tables.put({ ...keys.stream('st_1'), ...STREAM, giftCoins: 10, lastFrameAt: NOW_MS - 300 });
    deps.memory.rooms.set('st_1', { at: NOW_MS - 1_000, viewers: 0, giftCoins: 5 });
    const result = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, counters: true });
    expect(result).toEqual({ events: 0, frames: 1 });
    const toViewer = posts.filter((post) => post.connectionId === 'v1').map((post) => post.message);
    expect(toViewer.flatMap((message) => message.events ?? [message])).toEqual([
      { type: 'room', streamId: 'st_1', viewers: 0, giftCoins: 10 },
    ]);
    // Not at the frame spacing (300 ms after the gift frame) but once the room was quiet.
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeGreaterThanOrEqual(ROOM_TOTAL_QUIET_MS - 300);
  });

  it('a changed gift total that the next gift frame carries is not sent again on its own', async () => {
    const { tables, deps, posts, sleeps } = broadcaster({ lastFrameAt: NOW_MS - 300 });
    tables.put({ ...keys.stream('st_1'), ...STREAM, giftCoins: 10, lastFrameAt: NOW_MS - 300 });
    deps.memory.rooms.set('st_1', { at: NOW_MS - 1_000, viewers: 0, giftCoins: 5 });
    // 700 ms in, the stream's gift run sends a frame whose `room` carries the new total.
    const originalSleep = deps.sleep;
    deps.sleep = async (ms) => {
      await originalSleep(ms);
      if (sleeps.length === 1) {
        const at = deps.now().getTime();
        deps.memory.rooms.set('st_1', { at, viewers: 0, giftCoins: 10 });
        deps.memory.lastFrames.set('st_1', at);
      }
    };
    const result = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, counters: true });
    expect(result).toEqual({ events: 0, frames: 0 });
    expect(posts).toEqual([]);
  });

  it('after a join, still sends a leave later in the same bucket, whose nudge was deduplicated into its own', async () => {
    const { deps, posts, sleeps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    let watching = 2;
    jest.spyOn(deps.connections, 'countStreamViewers').mockImplementation(async () => watching);
    // The run sends the join's count at once; a viewer leaves 300 ms later, in the same bucket.
    const originalSleep = deps.sleep;
    deps.sleep = async (ms) => {
      await originalSleep(ms);
      if (sleeps.length === 1) watching = 1;
    };
    const result = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, counters: true });
    expect(result).toEqual({ events: 0, frames: 2 });
    const rooms = posts
      .filter((post) => post.connectionId === 'v1')
      .flatMap((post) => post.message.events ?? [post.message])
      .map((message: { viewers: number }) => message.viewers);
    expect(rooms).toEqual([2, 1]);
    // Once a second: the second count waited out the interval.
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeGreaterThanOrEqual(1_000);
  });

  it('keeps collecting until its nudge bucket is over, so gifts whose nudges were deduplicated away still go out', async () => {
    const { tables, deps, posts, sleeps, published } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put(giftRecord(0));
    // A second gift commits in the same bucket after the first frame: its nudge was dropped as a duplicate.
    const originalSleep = deps.sleep;
    deps.sleep = async (ms) => {
      if (sleeps.length === 0) tables.put(giftRecord(1));
      await originalSleep(ms);
    };
    const result = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: NOW_MS + 400 });
    expect(result).toEqual({ events: 2, frames: 2 });
    const messagesTo = (connectionId: string) =>
      posts
        .filter((post) => post.connectionId === connectionId)
        .flatMap((post) => (post.message.type === 'batch' ? post.message.events : [post.message]));
    expect(
      messagesTo('v1')
        .filter((event: { type: string }) => event.type === 'gift')
        .map((event: GiftEvent) => event.seq),
    ).toEqual([1, 2]);
    // The frames are one window apart.
    expect(sleeps[0]).toBe(300);
    // The second frame came within a second of the first `room` (API.md: once a second), so its
    // counters are handed to the room's counters group instead of holding up the gift nudges.
    const handedOver = published.filter((entry) => entry.nudge.counters === true);
    expect(handedOver).toEqual([
      expect.objectContaining({ group: 'st_1:room', nudge: { streamId: 'st_1', counters: true } }),
    ]);
    posts.length = 0;
    // The counters group's run, a second later.
    await deps.sleep(1_000);
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, counters: true });
    expect(messagesTo('v1')).toEqual([{ type: 'room', streamId: 'st_1', viewers: 0, giftCoins: 10 }]);
  });

  it('still looks once more after a frame that took until past the bucket, so a gift committed meanwhile goes out', async () => {
    const { tables, deps, posts, advance } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put(giftRecord(0));
    // Sending the first frame is slow (a loaded machine): the bucket's second gift commits while it
    // goes out, its nudge deduplicated away, and the frame is done after the bucket and its margin.
    const post = deps.poster.post.bind(deps.poster);
    let slowed = false;
    deps.poster = {
      post: async (connectionId, message, encoded) => {
        if (!slowed) {
          slowed = true;
          tables.put(giftRecord(1));
          advance(1_000);
        }
        return post(connectionId, message, encoded);
      },
    };
    const result = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: NOW_MS + 400 });
    expect(result.events).toBe(2);
    const seqsTo = (connectionId: string) =>
      posts
        .filter((entry) => entry.connectionId === connectionId && entry.message.type === 'batch')
        .flatMap((entry) => entry.message.events)
        .filter((event: { type: string }) => event.type === 'gift')
        .map((event: GiftEvent) => event.seq);
    expect(seqsTo('v1')).toEqual([1, 2]);
    expect(seqsTo('v2')).toEqual([1, 2]);
  });

  it('answers a nudge whose bucket a complete look already covered with one read of the gift it names', async () => {
    const { tables, deps, posts } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    const first = giftRecord(0);
    tables.put(first);
    const bucket = { ended: false, until: NOW_MS + 400 };
    expect(await broadcastStream(deps, 'st_1', { ...bucket, namedGifts: [] })).toMatchObject({ events: 1 });
    // A backlog's stale nudge of the same bucket: no look over the unsent partitions, no frame.
    const looks = tables.queries.length;
    const frames = posts.length;
    const named = (record: { pk: string; sk: string }) => [{ pk: record.pk, sk: record.sk }];
    expect(await broadcastStream(deps, 'st_1', { ...bucket, namedGifts: named(first) })).toEqual({
      events: 0,
      frames: 0,
    });
    expect(tables.queries.length).toBe(looks);
    expect(posts.length).toBe(frames);
    // A gift it names that is still pending (an index slower than its margin) is sent all the same.
    const late = giftRecord(1);
    tables.put(late);
    expect(await broadcastStream(deps, 'st_1', { ...bucket, namedGifts: named(late) })).toMatchObject({ events: 1 });
    // A later bucket's nudge looks again.
    tables.put(giftRecord(2));
    const later = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: NOW_MS + 60_000 });
    expect(later).toMatchObject({ events: 1 });
  });

  it("pushes the creator's balance at most once a second, and the last change of a burst once the second is over", async () => {
    const { tables, deps, posts, sleeps, published } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put(giftRecord(0));
    const originalSleep = deps.sleep;
    deps.sleep = async (ms) => {
      if (sleeps.length === 0) tables.put(giftRecord(1));
      await originalSleep(ms);
    };
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: NOW_MS + 400 });
    const pushes = () => posts.filter((post) => post.connectionId === 'c1').map((post) => post.message.type);
    // The second frame's push fell within the second: the gift run did not wait it out (that would
    // hold up the stream's next gift nudges) but handed it to the room's group.
    expect(pushes()).toEqual(['wallet']);
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeLessThan(CREATOR_WALLET_INTERVAL_MS);
    const handedOver = published.filter((entry) => entry.nudge.wallet === true);
    expect(handedOver).toEqual([
      expect.objectContaining({ group: 'st_1:room', nudge: { streamId: 'st_1', wallet: true } }),
    ]);
    // The room group's run waits for the second to be over, then pushes: the last change is not lost.
    const waitedBefore = sleeps.reduce((sum, ms) => sum + ms, 0);
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, wallet: true });
    expect(pushes()).toEqual(['wallet', 'wallet']);
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeGreaterThanOrEqual(CREATOR_WALLET_INTERVAL_MS);
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeGreaterThan(waitedBefore);
  });
});

describe('unsent partitions', () => {
  it('start at one for a quiet room and double up to the creator shards as the gift rate rises', () => {
    expect(unsentPartitionsFor(0, 64)).toBe(1);
    expect(unsentPartitionsFor(UNSENT_PARTITION_GIFTS_PER_S, 64)).toBe(1);
    expect(unsentPartitionsFor(UNSENT_PARTITION_GIFTS_PER_S + 1, 64)).toBe(2);
    expect(unsentPartitionsFor(50, 64)).toBe(1);
    // 10,000 gifts/s to one creator: every shard, 156 gifts/s (625 write units/s) per partition.
    expect(unsentPartitionsFor(10_000, 64)).toBe(64);
    expect(unsentPartitionsFor(10_000, 48)).toBe(48);
    expect(unsentPartitionsFor(10_000, 1)).toBe(1);
  });

  it('a busy run raises the count (never past the shards), and the next run reads the new partitions too', async () => {
    const { tables, deps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put({ ...keys.stream('st_1'), ...STREAM, unsentPartitions: 1, lastFrameAt: NOW_MS - 10_000 });
    // 120 gifts in the last 300 ms: 400 gifts/s, past one partition's 100.
    for (let index = 0; index < 120; index += 1) {
      const record = giftRecord(index, 'st_1', { atMs: NOW_MS - 300 + index * 2 });
      tables.put({ ...record, statusPk: unsentStatusPk('st_1', 0) });
    }
    const first = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 });
    expect(first.events).toBe(120);
    expect(new Set(tables.queries)).toEqual(new Set([unsentStatusPk('st_1', 0)]));
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ unsentPartitions: SHARDS });

    // A gift indexed on the highest partition is found by the next run.
    tables.queries.length = 0;
    const late = giftRecord(200);
    tables.put({ ...late, statusPk: unsentStatusPk('st_1', SHARDS - 1) });
    const second = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 });
    expect(second.events).toBe(1);
    expect(new Set(tables.queries)).toEqual(
      new Set(Array.from({ length: SHARDS }, (_, partition) => unsentStatusPk('st_1', partition))),
    );
  });

  it('a late run does not take its backlog for a rate: 100 gifts sent over 2 s stay on one partition', async () => {
    const { tables, deps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put({ ...keys.stream('st_1'), ...STREAM, unsentPartitions: 1, lastFrameAt: NOW_MS - 10_000 });
    // 50 gifts/s, found at once by a run that comes 2 s late: 100 in one look, the rate still 50.
    for (let index = 0; index < 100; index += 1)
      tables.put({
        ...giftRecord(index, 'st_1', { atMs: NOW_MS - 2_000 + index * 20 }),
        statusPk: unsentStatusPk('st_1', 0),
      });
    const run = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 });
    expect(run.events).toBe(100);
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ unsentPartitions: 1, seq: 100 });
  });

  it('observedGiftsPerS: count over the time since the oldest gift, never over less than the spacing', () => {
    const at = (ms: number) => ({ at: new Date(NOW_MS - ms).toISOString() });
    expect(observedGiftsPerS([], NOW_MS, 500)).toBe(0);
    expect(observedGiftsPerS([at(2_000), at(1_000), at(0)], NOW_MS, 500)).toBe(1.5);
    expect(observedGiftsPerS([at(100), at(0)], NOW_MS, 500)).toBe(4);
  });

  it('a quiet run never lowers the count, and a stream from before the attribute keeps reading every shard', async () => {
    const { tables, deps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put({ ...keys.stream('st_1'), ...STREAM, unsentPartitions: 2, lastFrameAt: NOW_MS - 10_000 });
    tables.put({ ...giftRecord(0), statusPk: unsentStatusPk('st_1', 1) });
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 });
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ unsentPartitions: 2, seq: 1 });
    const raises = tables.transactions.filter((items) =>
      items.some((item) => item.Update?.UpdateExpression?.includes('unsentPartitions')),
    );
    expect(raises).toEqual([]);
  });
});

describe('foldLeaderboard', () => {
  it("a fold not yet due is timed by the stream's fold group and folded in its own group, without holding up gifts", async () => {
    const { tables, deps, published, sleeps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    // Folded a second ago: the next fold is due in four.
    tables.put({ ...keys.stream('st_1'), ...STREAM, lastFrameAt: NOW_MS - 10_000, lbSeq: 0, lbFoldAt: NOW_MS - 1_000 });
    tables.put(giftRecord(0));
    expect(await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 })).toMatchObject({
      events: 1,
    });
    const dueAt = NOW_MS - 1_000 + LEADERBOARD_FOLD_INTERVAL_MS;
    // Waiting in the stream's own group held up its next gift nudges for up to the fold interval.
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeLessThan(1_000);
    const timers = published.filter((entry) => entry.nudge.foldAt !== undefined);
    expect(timers).toEqual([
      {
        nudge: { streamId: 'st_1', foldAt: dueAt },
        deduplicationId: `fold:st_1:${NOW_MS - 1_000}`,
        group: 'st_1:fold',
      },
    ]);
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ seq: 1, lbSeq: 0 });

    // The fold group only keeps time: it waits, then asks the stream's own group to fold.
    const timer = await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, foldAt: dueAt });
    expect(timer).toEqual({ events: 0, frames: 0 });
    expect(deps.now().getTime()).toBeGreaterThanOrEqual(dueAt);
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ lbSeq: 0 });
    const due = published.filter((entry) => entry.nudge.foldDue === true);
    expect(due).toEqual([{ nudge: { streamId: 'st_1', foldDue: true }, deduplicationId: `folddue:st_1:${dueAt}` }]);

    expect(await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, foldDue: true })).toEqual({
      events: 0,
      frames: 0,
    });
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ seq: 1, lbSeq: 1 });
    const aliceShard = shardFor('alice', SHARDS);
    const entry = keys.leaderboardEntry('st_1', aliceShard, 'alice');
    expect(tables.ledger.get(`${entry.pk}|${entry.sk}`)).toMatchObject({ lbCoins: 5, lbSeq: 1 });
  });

  it("a sweeper's nudge taken with a join's counters nudge still looks: the pending gift goes out", async () => {
    const { tables, deps, posts } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put(giftRecord(0));
    // One batch: the room group's counters nudge and the stream group's sweeper nudge (no bucket).
    const run = await broadcastStream(deps, 'st_1', {
      namedGifts: [],
      ended: false,
      until: 0,
      counters: true,
      signalsOnly: false,
    });
    expect(run.events).toBe(1);
    const toV1 = posts.filter((post) => post.connectionId === 'v1').flatMap((post) => post.message.events ?? []);
    expect(toV1.map((event: { type: string }) => event.type)).toEqual(['gift', 'room']);
  });

  it("a wallet hand-over taken with a look still pushes the creator's balance", async () => {
    const { deps, posts } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, wallet: true, signalsOnly: false });
    expect(posts.filter((post) => post.connectionId === 'c1').map((post) => post.message.type)).toEqual(['wallet']);
  });

  it('a fold timer that arrives with a gift run in one batch still fires', async () => {
    const { tables, deps, published } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    tables.put({ ...keys.stream('st_1'), ...STREAM, lastFrameAt: NOW_MS - 10_000, lbSeq: 0, lbFoldAt: NOW_MS - 1_000 });
    tables.put(giftRecord(0));
    const dueAt = NOW_MS - 1_000 + LEADERBOARD_FOLD_INTERVAL_MS;
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0, foldAt: dueAt });
    expect(published.filter((entry) => entry.nudge.foldDue === true)).toEqual([
      { nudge: { streamId: 'st_1', foldDue: true }, deduplicationId: `folddue:st_1:${dueAt}` },
    ]);
  });

  it("folds each sender's gifts since the last fold into one write, and a resumed fold counts nothing twice", async () => {
    const { tables, deps } = broadcaster({ lastFrameAt: NOW_MS - 10_000 });
    for (const index of [0, 1, 2]) tables.put(giftRecord(index));
    await broadcastStream(deps, 'st_1', { namedGifts: [], ended: false, until: 0 });
    const aliceShard = shardFor('alice', SHARDS);
    const alice = () =>
      tables.ledger.get(
        `${keys.leaderboardEntry('st_1', aliceShard, 'alice').pk}|${keys.leaderboardEntry('st_1', aliceShard, 'alice').sk}`,
      );
    expect(alice()).toMatchObject({ lbCoins: 15, lbSeq: 3, lbPk: `STREAM#st_1#LB${aliceShard}`, userId: 'alice' });
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ lbSeq: 3 });
    expect(tables.ledger.get('STREAM#st_1|STREAM')?.lbFoldTo).toBeUndefined();

    // A fold that crashed after alice's write but before finishing: the range stays claimed.
    const stream = tables.ledger.get('STREAM#st_1|STREAM') ?? {};
    tables.put({ ...stream, lbSeq: 0, lbFoldTo: 3 });
    const { streamFromItem } = await import('../../shared/usecases/streams');
    await foldLeaderboard(
      tables.store,
      streamFromItem(tables.ledger.get('STREAM#st_1|STREAM') ?? {}),
      3,
      new Date(NOW_MS),
    );
    expect(alice()).toMatchObject({ lbCoins: 15, lbSeq: 3 });
    expect(tables.ledger.get('STREAM#st_1|STREAM')).toMatchObject({ lbSeq: 3 });
  });
});

describe('sweepUnsentGifts', () => {
  it('nudges live and recently ended streams whose oldest unsent gift is old, and retires long-ended streams', async () => {
    const tables = fakeTables();
    const stream = (streamId: string, statusPk: string, extra: Record<string, unknown> = {}) =>
      tables.put({ ...keys.stream(streamId), ...STREAM, streamId, statusPk, statusSk: STREAM.startedAt, ...extra });
    stream('st_old', LIVE_STATUS_PK);
    stream('st_fresh', LIVE_STATUS_PK);
    stream('st_quiet', LIVE_STATUS_PK);
    stream('st_ended', RECENTLY_ENDED_STATUS_PK, { status: 'ended', endedAt: new Date(NOW_MS - 60_000).toISOString() });
    stream('st_gone', RECENTLY_ENDED_STATUS_PK, {
      status: 'ended',
      endedAt: new Date(NOW_MS - 3_600_000).toISOString(),
    });
    tables.put(giftRecord(0, 'st_old'));
    tables.put(giftRecord(1, 'st_ended'));
    const fresh = giftRecord(2, 'st_fresh');
    const freshAt = new Date(NOW_MS + 8_000).toISOString(); // 2 s old when the sweep runs
    tables.put({ ...fresh, statusSk: `${freshAt}#${fresh.entryId}` });
    const published: OutgoingNudge[] = [];
    const result = await sweepUnsentGifts(
      {
        store: tables.store,
        publisher: { publish: async (nudges) => void published.push(...nudges) },
        now: () => new Date(NOW_MS + 10_000),
      },
      { minAgeMs: 5_000 },
    );
    expect(published.map((entry) => entry.nudge.streamId).sort()).toEqual(['st_ended', 'st_old']);
    expect(result).toEqual({ streams: 5, nudged: 2, retired: 1 });
    expect(tables.transactions.flat().map((item) => unmarshall(item.Update?.Key ?? {}).pk)).toEqual(['STREAM#st_gone']);
  });
});
