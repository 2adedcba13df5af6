import {
  BatchGetItemCommand,
  GetItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  type AttributeValue,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { keys, shardFor } from '../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import {
  bucketNudge,
  NUDGE_BUCKET_MS,
  SQS_DEDUPLICATION_WINDOW_MS,
  SqsGiftEventPublisher,
  type GiftEventPublisher,
  type OutgoingNudge,
} from '../../shared/adapters/gift-events';
import { DEFAULT_ECONOMY } from '../../shared/domain/economy';
import type { Caller } from '../../shared/domain/identity';
import {
  BALANCE_RACE_MEMORY_MS,
  BalanceRaces,
  giftFingerprint,
  giftOps,
  SENDER_WALLET_MEMORY_MS,
  SenderWallets,
  sendGift,
  StreamCache,
  type SendGiftDeps,
} from '../../shared/usecases/gifts';
import { liveFenceAttribute } from '../../shared/usecases/streams';

/*
 * The gift use case without a network: the exact transaction it sends, what each item costs,
 * and how every refusal maps, in the contract's order.
 */

const NOW = new Date('2026-03-01T12:00:00.000Z');
const SENDER: Caller = { userId: 'alice', birthdate: '1990-01-01', country: 'US', parentalConsent: false };
const STREAM = {
  streamId: 'st_1',
  creatorId: 'carol',
  title: 'hello',
  status: 'live',
  startedAt: '2026-03-01T11:00:00.000Z',
  seq: 0,
  giftCoins: 0,
  creatorShards: 32,
};

/** DynamoDB's item size rule: attribute names plus values (numbers ~1 byte per 2 digits + 1). */
function attributeSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return Math.ceil(value.N.replace(/^-/, '').length / 2) + 1;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.M !== undefined)
    return (
      3 +
      Object.entries(value.M).reduce((sum, [name, inner]) => sum + Buffer.byteLength(name) + attributeSize(inner), 0)
    );
  if (value.L !== undefined) return 3 + value.L.reduce((sum, inner) => sum + 1 + attributeSize(inner), 0);
  throw new Error(`unsized attribute ${JSON.stringify(value)}`);
}
export function itemSize(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + attributeSize(value), 0);
}
/** AWS bills a transactional write 2 units per started KB of the item. */
const transactionalUnits = (bytes: number) => 2 * Math.ceil(bytes / 1024);

/** The written image of a transaction item: a Put's item, or an Update's key plus its values (an upper bound). */
function writtenImage(item: TransactWriteItem): Record<string, AttributeValue> {
  if (item.Put) return item.Put.Item ?? {};
  if (item.Update) return { ...(item.Update.Key ?? {}), ...(item.Update.ExpressionAttributeValues ?? {}) };
  throw new Error('unexpected op');
}

interface FakeWorld {
  items: Map<string, Record<string, unknown>>;
  transactions: TransactWriteItem[][];
  /** Makes the next transaction fail with these cancellation reasons. */
  cancelNext?: Array<{ Code: string; Item?: Record<string, unknown> }>;
}

function fakeDynamo(world: FakeWorld) {
  return {
    send: jest.fn(async (command: unknown) => {
      if (command instanceof GetItemCommand) {
        const key = unmarshall(command.input.Key ?? {});
        const item = world.items.get(`${String(key.pk)}|${String(key.sk)}`);
        return item ? { Item: marshall(item, { removeUndefinedValues: true }) } : {};
      }
      if (command instanceof BatchGetItemCommand) {
        const found = Object.entries(command.input.RequestItems ?? {}).flatMap(([table, request]) =>
          (request.Keys ?? []).flatMap((marshalled) => {
            const key = unmarshall(marshalled);
            const item = world.items.get(`${String(key.pk)}|${String(key.sk)}`);
            return item ? [{ table, item: marshall(item, { removeUndefinedValues: true }) }] : [];
          }),
        );
        return { Responses: { Ledger: found.map(({ item }) => item) } };
      }
      if (command instanceof TransactWriteItemsCommand) {
        const cancel = world.cancelNext;
        if (cancel) {
          world.cancelNext = undefined;
          throw new TransactionCanceledException({
            message: 'cancelled',
            $metadata: {},
            CancellationReasons: cancel.map((reason) => ({
              Code: reason.Code,
              ...(reason.Item && { Item: marshall(reason.Item) }),
            })),
          });
        }
        // As DynamoDB does: a Put conditioned on its item being new is cancelled when it is not.
        const items = command.input.TransactItems ?? [];
        const existing = items.map((item) => {
          const put = item.Put;
          if (!put?.ConditionExpression?.startsWith('attribute_not_exists')) return undefined;
          const key = unmarshall(put.Item ?? {});
          return world.items.get(`${String(key.pk)}|${String(key.sk)}`);
        });
        if (existing.some((item) => item !== undefined)) {
          throw new TransactionCanceledException({
            message: 'cancelled',
            $metadata: {},
            CancellationReasons: existing.map((item) =>
              item ? { Code: 'ConditionalCheckFailed', Item: marshall(item) } : { Code: 'None' },
            ),
          });
        }
        world.transactions.push(items);
        // Apply the debit so a later read sees the balance move.
        const wallet = world.items.get('USER#alice|WALLET');
        const debit = command.input.TransactItems?.[1]?.Update?.ExpressionAttributeValues?.[':cost']?.N;
        if (wallet && debit) wallet.coins = Number(wallet.coins) - Number(debit);
        return {};
      }
      throw new Error(`unexpected command ${(command as object).constructor.name}`);
    }),
  };
}

function setup(options: { coins?: number; locked?: boolean; stream?: Record<string, unknown> | null } = {}) {
  const world: FakeWorld = { items: new Map(), transactions: [] };
  world.items.set('USER#alice|WALLET', {
    ...keys.wallet('alice'),
    coins: options.coins ?? 100,
    ...(options.locked !== undefined && { locked: options.locked }),
  });
  if (options.stream !== null)
    world.items.set('STREAM#st_1|STREAM', { ...keys.stream('st_1'), ...STREAM, ...options.stream });
  const client = fakeDynamo(world);
  const store = new DynamoLedgerStore(client, 'Ledger', { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 });
  const published: OutgoingNudge[] = [];
  const publisher: GiftEventPublisher = { publish: async (nudges) => void published.push(...nudges) };
  const deps: SendGiftDeps = {
    store,
    publisher,
    now: () => NOW,
    newId: (prefix) => `${prefix}_TX1`,
    economy: DEFAULT_ECONOMY,
  };
  return { world, deps, published, client };
}

const request = { streamId: 'st_1', giftId: 'heart', quantity: 3, idempotencyKey: 'key-1' };

describe('giftOps: one transaction of five small items', () => {
  const store = new DynamoLedgerStore({ send: jest.fn() }, 'Ledger');
  const ops = giftOps(store, {
    idempotency: { userId: 'alice', scope: 'gift', key: 'k'.repeat(255), fingerprint: giftFingerprint(request) },
    senderId: 'u'.repeat(128),
    creatorId: 'c'.repeat(128),
    streamId: 's'.repeat(128),
    creatorShards: 256,
    unsentPartitions: 256,
    giftId: 'ice_cream',
    quantity: 99,
    cost: 990,
    diamonds: 990,
    giftTxId: 'gift_01M8BFS3SEGAP9TRQS89XR6HXH',
    now: NOW,
  });
  const written = ops.map((op) => store.toTransactItem(op));

  it('puts the idempotency record first, then the debit, the shard credit and both entries', () => {
    expect(ops.map((op) => op.label)).toEqual([
      'idempotency gift',
      'debit sender',
      'credit creator shard',
      'gift_sent entry',
      'gift_received entry',
    ]);
    const debit = written[1]?.Update;
    expect(debit?.UpdateExpression).toBe('SET coins = coins - :cost');
    expect(debit?.ConditionExpression).toBe('coins >= :cost AND (attribute_not_exists(locked) OR locked = :false)');
    expect(debit?.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD');
    expect(written[2]?.Update?.UpdateExpression).toBe('ADD diamonds :diamonds');
    // No condition on the creator's side: credits never fail, and nothing there is a hot key.
    expect(written[2]?.Update?.ConditionExpression).toBeUndefined();
  });

  it('keeps every item under 1 KB even with the longest ids, so the gift costs 10 write units plus its index write', () => {
    const sizes = written.map((item) => itemSize(writtenImage(item)));
    for (const size of sizes) expect(size).toBeLessThan(1024);
    const tableUnits = sizes.reduce((sum, size) => sum + transactionalUnits(size), 0);
    expect(tableUnits).toBe(10);
    // The gift_received record is the only item in an index (byStatus, projection ALL): one more KB-sized write.
    const indexed = written.filter((item) => item.Put?.Item?.statusPk !== undefined);
    expect(indexed).toHaveLength(1);
    const indexUnits = transactionalUnits(itemSize(writtenImage(indexed[0]!)));
    expect(tableUnits + indexUnits).toBeLessThanOrEqual(14);
  });

  it("marks the creator entry as the stream's unsent gift record on the gift's shard", () => {
    const shard = shardFor('gift_01M8BFS3SEGAP9TRQS89XR6HXH', 256);
    const record = unmarshall(written[4]?.Put?.Item ?? {});
    expect(record).toMatchObject({
      pk: `USER#${'c'.repeat(128)}#E${shard}`,
      entryType: 'gift_received',
      coins: 0,
      diamonds: 990,
      statusPk: `UNSENT#${'s'.repeat(128)}#${shard}`,
      statusSk: `${NOW.toISOString()}#gift_01M8BFS3SEGAP9TRQS89XR6HXH`,
      ref: { streamId: 's'.repeat(128), fromUserId: 'u'.repeat(128), giftId: 'ice_cream', quantity: 99, coins: 990 },
    });
    expect(written[2]?.Update?.Key).toEqual(marshall(keys.walletShard('c'.repeat(128), shard)));
    expect(unmarshall(written[3]?.Put?.Item ?? {})).toMatchObject({
      pk: `USER#${'u'.repeat(128)}`,
      entryType: 'gift_sent',
      coins: -990,
      diamonds: 0,
    });
  });
});

describe('giftOps: the unsent partition', () => {
  it("puts the record on its creator shard but indexes it on the shard's partition among the stream's unsent partitions", () => {
    const store = new DynamoLedgerStore({ send: jest.fn() }, 'Ledger');
    const giftTxId = 'gift_01M8BFS3SEGAP9TRQS89XR6HXH';
    const shard = shardFor(giftTxId, 64);
    const record = (unsentPartitions: number) => {
      const ops = giftOps(store, {
        idempotency: { userId: 'alice', scope: 'gift', key: 'k', fingerprint: giftFingerprint(request) },
        senderId: 'alice',
        creatorId: 'carol',
        streamId: 'st_1',
        creatorShards: 64,
        unsentPartitions,
        giftId: 'heart',
        quantity: 1,
        cost: 5,
        diamonds: 5,
        giftTxId,
        now: NOW,
      });
      return unmarshall(store.toTransactItem(ops[4]!).Put?.Item ?? {});
    };
    expect(record(1)).toMatchObject({ pk: `USER#carol#E${shard}`, statusPk: 'UNSENT#st_1#0' });
    expect(record(4)).toMatchObject({ pk: `USER#carol#E${shard}`, statusPk: `UNSENT#st_1#${shard % 4}` });
    expect(record(64)).toMatchObject({ statusPk: `UNSENT#st_1#${shard}` });
  });
});

describe('sendGift', () => {
  it('commits one transaction conditioned on the balance it read, answers the new balance without another read, and nudges the stream once per bucket', async () => {
    const { deps, world, published, client } = setup({ coins: 100 });
    const answer = await sendGift(deps, SENDER, request);
    expect(answer).toEqual({ giftTxId: 'gift_TX1', coinsSpent: 15, wallet: { coins: 85 }, replayed: false });
    expect(world.transactions).toHaveLength(1);
    expect(world.transactions[0]?.[1]?.Update).toMatchObject({
      UpdateExpression: 'SET coins = :newCoins',
      ConditionExpression: 'coins = :seen AND coins >= :cost AND (attribute_not_exists(locked) OR locked = :false)',
      ExpressionAttributeValues: marshall({ ':newCoins': 85, ':seen': 100, ':cost': 15, ':false': false }),
    });
    // Two round trips: the reads at once (the consistent balance, the stream), then the transaction. The idempotency
    // record is not read: the transaction writes it on condition that it is new.
    const commands = client.send.mock.calls.map(([command]) => (command as object).constructor.name);
    expect(commands).toEqual(['GetItemCommand', 'GetItemCommand', 'TransactWriteItemsCommand']);
    const walletRead = client.send.mock.calls[0]?.[0] as GetItemCommand;
    expect(unmarshall(walletRead.input.Key ?? {})).toEqual(keys.wallet('alice'));
    expect(walletRead.input.ConsistentRead).toBe(true);
    const shard = shardFor('gift_TX1', 32);
    const bucket = Math.floor(NOW.getTime() / NUDGE_BUCKET_MS);
    expect(published).toEqual([
      {
        nudge: {
          streamId: 'st_1',
          until: (bucket + 1) * NUDGE_BUCKET_MS,
          gift: keys.shardEntry('carol', shard, NOW.toISOString(), 'gift_TX1'),
        },
        deduplicationId: `b:st_1:${bucket}`,
      },
    ]);
  });

  it('when another debit moved the balance between its read and its commit, subtracts instead and reads the balance after', async () => {
    const { deps, world } = setup({ coins: 100 });
    world.cancelNext = [
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Item: { ...keys.wallet('alice'), coins: 90 } },
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'None' },
    ];
    world.items.set('USER#alice|WALLET', { ...keys.wallet('alice'), coins: 100 });
    await expect(sendGift(deps, SENDER, request)).resolves.toMatchObject({
      giftTxId: 'gift_TX1',
      wallet: { coins: 85 },
    });
    expect(world.transactions).toHaveLength(1);
    expect(world.transactions[0]?.[1]?.Update).toMatchObject({
      UpdateExpression: 'SET coins = coins - :cost',
      ConditionExpression: 'coins >= :cost AND (attribute_not_exists(locked) OR locked = :false)',
    });
  });

  it("after losing a balance race, the same sender's next gifts subtract at once (no doomed conditioned attempt) until the memory lapses", async () => {
    const { deps, world } = setup({ coins: 100 });
    let now = NOW.getTime();
    deps.now = () => new Date(now);
    deps.balanceRaces = new BalanceRaces();
    const debitOf = (index: number) => world.transactions[index]?.[1]?.Update?.UpdateExpression;
    world.cancelNext = [
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Item: { ...keys.wallet('alice'), coins: 90 } },
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'None' },
    ];
    await sendGift(deps, SENDER, request);
    expect(debitOf(0)).toBe('SET coins = coins - :cost');
    // The next gift goes straight to the subtracting debit: one transaction, no cancelled one.
    const second = await sendGift(deps, SENDER, { ...request, idempotencyKey: 'key-2' });
    expect(second.wallet.coins).toBe(70);
    expect(world.items.get('USER#alice|WALLET')?.coins).toBe(70);
    expect(world.transactions).toHaveLength(2);
    expect(debitOf(1)).toBe('SET coins = coins - :cost');
    // Another sender is not affected.
    expect(deps.balanceRaces.racing('bob', now)).toBe(false);
    // Once the memory lapses, gifts are conditioned on the balance read again (two round trips).
    now += BALANCE_RACE_MEMORY_MS;
    await sendGift(deps, SENDER, { ...request, idempotencyKey: 'key-3' });
    expect(debitOf(2)).not.toBe('SET coins = coins - :cost');
    expect(world.transactions[2]?.[1]?.Update?.ConditionExpression).toContain(':seen');
  });

  describe("a sender's wallet remembered by the instance", () => {
    const walletReads = (client: ReturnType<typeof setup>['client']) =>
      client.send.mock.calls.filter(
        ([command]) =>
          command instanceof GetItemCommand && unmarshall(command.input.Key ?? {}).pk === keys.wallet('alice').pk,
      ).length;
    const debitOf = (world: ReturnType<typeof setup>['world'], index: number) => world.transactions[index]?.[1]?.Update;

    it("conditions the next gift's debit on the balance the last one left, without reading it: one round trip", async () => {
      const { deps, world, client } = setup({ coins: 100 });
      deps.senderWallets = new SenderWallets();
      await sendGift(deps, SENDER, request);
      const second = await sendGift(deps, SENDER, { ...request, idempotencyKey: 'key-2' });
      expect(second.wallet.coins).toBe(70);
      expect(world.items.get('USER#alice|WALLET')?.coins).toBe(70);
      expect(walletReads(client)).toBe(1);
      expect(debitOf(world, 1)?.ExpressionAttributeValues).toMatchObject(marshall({ ':seen': 85, ':newCoins': 70 }));
    });

    it('reads again once the memory lapses', async () => {
      const { deps, client } = setup({ coins: 100 });
      let now = NOW.getTime();
      deps.now = () => new Date(now);
      deps.senderWallets = new SenderWallets();
      await sendGift(deps, SENDER, request);
      now += SENDER_WALLET_MEMORY_MS;
      await sendGift(deps, SENDER, { ...request, idempotencyKey: 'key-2' });
      expect(walletReads(client)).toBe(2);
    });

    it('a balance that moved elsewhere cancels the transaction; the gift is tried again on a read, not counted as a race', async () => {
      const { deps, world, client } = setup({ coins: 100 });
      deps.senderWallets = new SenderWallets();
      deps.balanceRaces = new BalanceRaces();
      await sendGift(deps, SENDER, request);
      // A recharge credits the wallet through another function: the remembered 85 is stale.
      world.items.set('USER#alice|WALLET', { ...keys.wallet('alice'), coins: 1_085 });
      world.cancelNext = [
        { Code: 'None' },
        { Code: 'ConditionalCheckFailed', Item: { ...keys.wallet('alice'), coins: 1_085 } },
        { Code: 'None' },
        { Code: 'None' },
        { Code: 'None' },
      ];
      const second = await sendGift(deps, SENDER, { ...request, idempotencyKey: 'key-2' });
      expect(second).toMatchObject({ wallet: { coins: 1_070 }, replayed: false });
      expect(world.items.get('USER#alice|WALLET')?.coins).toBe(1_070);
      expect(walletReads(client)).toBe(2);
      // Still conditioned on the balance read, not a subtraction: no race was lost.
      expect(debitOf(world, 1)?.ExpressionAttributeValues).toMatchObject(marshall({ ':seen': 1_085 }));
      expect(deps.balanceRaces.racing('alice', NOW.getTime())).toBe(false);
    });

    it('never refuses on memory: a remembered lock is read again, and the gift goes through', async () => {
      const { deps, world, client } = setup({ coins: 100 });
      deps.senderWallets = new SenderWallets();
      deps.senderWallets.remember('alice', { ...keys.wallet('alice'), coins: 100, locked: true }, NOW.getTime());
      await expect(sendGift(deps, SENDER, request)).resolves.toMatchObject({ wallet: { coins: 85 } });
      expect(walletReads(client)).toBe(1);
      expect(world.transactions).toHaveLength(1);
    });

    it('a refused gift whose key already succeeded replays the stored answer, read only on the refusal', async () => {
      const { deps, world } = setup({ coins: 100, stream: { status: 'ended' } });
      const record = keys.idempotency('alice', 'gift', 'key-1');
      world.items.set(`${record.pk}|${record.sk}`, {
        ...record,
        fingerprint: giftFingerprint(request),
        status: 201,
        answer: JSON.stringify({ giftTxId: 'gift_FIRST', coinsSpent: 15 }),
        expiresAt: Math.floor(NOW.getTime() / 1000) + 60,
      });
      await expect(sendGift(deps, SENDER, request)).resolves.toMatchObject({ giftTxId: 'gift_FIRST', replayed: true });
      await expect(sendGift(deps, SENDER, { ...request, idempotencyKey: 'key-9' })).rejects.toMatchObject({
        code: 'STREAM_NOT_LIVE',
      });
      expect(world.transactions).toHaveLength(0);
    });
  });

  it("conditions a teenager's debit on their consent, so a guardian's revocation that commits after the read still stops the gift", async () => {
    const teen: Caller = { userId: 'alice', birthdate: '2011-01-01', country: 'US', parentalConsent: true };
    const { deps, world } = setup({ coins: 100 });
    // The read saw no decision in the app (the token's claim counts); the revocation commits before the transaction.
    world.cancelNext = [
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Item: { ...keys.wallet('alice'), coins: 100, appConsent: 'revoked' } },
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'None' },
    ];
    await expect(sendGift(deps, teen, request)).rejects.toMatchObject({ code: 'AGE_RESTRICTED' });
    expect(world.transactions).toHaveLength(0);

    // Granted in the app (no claim in the token): the debit requires the grant to still be there.
    world.items.set('USER#alice|WALLET', { ...keys.wallet('alice'), coins: 100, appConsent: 'granted' });
    await sendGift(deps, { ...teen, parentalConsent: false }, { ...request, idempotencyKey: 'key-2' });
    expect(world.transactions[0]?.[1]?.Update?.ConditionExpression).toContain('appConsent = :granted');
    // An adult's debit carries no consent condition.
    await sendGift(deps, SENDER, { ...request, idempotencyKey: 'key-3' });
    expect(world.transactions[1]?.[1]?.Update?.ConditionExpression).not.toContain('appConsent');
  });

  it('gifts that miss the stream cache together share one read of the stream', async () => {
    const { deps, client } = setup({ stream: { fenced: true } });
    deps.streamCache = new StreamCache();
    let key = 0;
    await Promise.all(
      Array.from({ length: 5 }, () => sendGift(deps, SENDER, { ...request, idempotencyKey: `key-${(key += 1)}` })),
    );
    const streamReads = client.send.mock.calls.filter(
      ([command]) => command instanceof GetItemCommand && unmarshall(command.input.Key ?? {}).pk === 'STREAM#st_1',
    );
    expect(streamReads).toHaveLength(1);
  });

  it('conditions a fenced stream\'s credit on its fence, so a gift after the end\'s commit is STREAM_NOT_LIVE even from a cached "live"', async () => {
    const { deps, world, client } = setup({ stream: { fenced: true } });
    deps.streamCache = new StreamCache();
    await sendGift(deps, SENDER, request);
    expect(world.transactions[0]?.[2]?.Update).toMatchObject({
      ConditionExpression: 'attribute_exists(#live)',
      ExpressionAttributeNames: { '#live': liveFenceAttribute('st_1') },
    });
    // The second gift reads no stream item: the cache answers.
    const streamReads = () =>
      client.send.mock.calls.filter(
        ([command]) => command instanceof GetItemCommand && unmarshall(command.input.Key ?? {}).pk === 'STREAM#st_1',
      ).length;
    expect(streamReads()).toBe(1);
    // The end closed the fence meanwhile: the cached "live" does not let the gift in.
    world.cancelNext = [
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Item: { ...keys.walletShard('carol', 0), diamonds: 5 } },
      { Code: 'None' },
      { Code: 'None' },
    ];
    await expect(sendGift(deps, SENDER, { ...request, idempotencyKey: 'key-2' })).rejects.toMatchObject({
      code: 'STREAM_NOT_LIVE',
    });
    expect(streamReads()).toBe(1);
    expect(world.transactions).toHaveLength(1);
  });

  it('still answers when the nudge cannot be sent (the sweeper broadcasts it later)', async () => {
    const { deps, world } = setup();
    deps.publisher = {
      publish: async () => {
        throw new Error('queue down');
      },
    };
    await expect(sendGift(deps, SENDER, request)).resolves.toMatchObject({ giftTxId: 'gift_TX1' });
    expect(world.transactions).toHaveLength(1);
  });

  it.each([
    ['an unknown gift', { giftId: 'nope' }, {}, 'VALIDATION_FAILED'],
    ['a quantity of 100', { quantity: 100 }, {}, 'VALIDATION_FAILED'],
    ['a locked wallet, before age and stream', {}, { locked: true, stream: { status: 'ended' } }, 'WALLET_LOCKED'],
    ['an ended stream', {}, { stream: { status: 'ended' } }, 'STREAM_NOT_LIVE'],
    ['an unknown stream', {}, { stream: null }, 'STREAM_NOT_LIVE'],
    ["the creator's own stream", {}, { stream: { creatorId: 'alice' } }, 'SELF_GIFT'],
  ])('refuses %s', async (_, change, world, code) => {
    const { deps, world: state } = setup(world as Parameters<typeof setup>[0]);
    await expect(sendGift(deps, SENDER, { ...request, ...change })).rejects.toMatchObject({ code });
    expect(state.transactions).toHaveLength(0);
  });

  it('checks age after the lock and before the stream', async () => {
    const { deps } = setup({ stream: { status: 'ended' } });
    const child: Caller = { userId: 'alice', birthdate: '2016-01-01', country: 'US', parentalConsent: false };
    await expect(sendGift(deps, child, request)).rejects.toMatchObject({ code: 'AGE_RESTRICTED' });
  });

  it("maps the debit's failed condition from the old item: locked is WALLET_LOCKED, otherwise INSUFFICIENT_COINS", async () => {
    const poor = setup();
    poor.world.cancelNext = [
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Item: { ...keys.wallet('alice'), coins: 2 } },
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'None' },
    ];
    await expect(sendGift(poor.deps, SENDER, request)).rejects.toMatchObject({
      code: 'INSUFFICIENT_COINS',
      message: 'This gift costs 15 coins; your balance is 2.',
    });

    const lockedMeanwhile = setup();
    lockedMeanwhile.world.cancelNext = [
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Item: { ...keys.wallet('alice'), coins: 500, locked: true } },
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'None' },
    ];
    await expect(sendGift(lockedMeanwhile.deps, SENDER, request)).rejects.toMatchObject({ code: 'WALLET_LOCKED' });

    const neverRecharged = setup();
    neverRecharged.world.items.delete('USER#alice|WALLET');
    neverRecharged.world.cancelNext = [
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed' },
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'None' },
    ];
    await expect(sendGift(neverRecharged.deps, SENDER, request)).rejects.toMatchObject({ code: 'INSUFFICIENT_COINS' });
  });

  it('replays a stored answer with the balance as it is now: its transaction is cancelled on the record, and nothing is written', async () => {
    const { deps, world, published } = setup({ coins: 70 });
    const record = keys.idempotency('alice', 'gift', 'key-1');
    world.items.set(`${record.pk}|${record.sk}`, {
      ...record,
      fingerprint: giftFingerprint(request),
      status: 201,
      answer: JSON.stringify({ giftTxId: 'gift_FIRST', coinsSpent: 15 }),
      expiresAt: Math.floor(NOW.getTime() / 1000) + 60,
    });
    await expect(sendGift(deps, SENDER, request)).resolves.toEqual({
      giftTxId: 'gift_FIRST',
      coinsSpent: 15,
      wallet: { coins: 70 },
      replayed: true,
    });
    expect(world.transactions).toHaveLength(0);
    const bucket = Math.floor(NOW.getTime() / NUDGE_BUCKET_MS);
    expect(published).toEqual([
      { nudge: { streamId: 'st_1', until: (bucket + 1) * NUDGE_BUCKET_MS }, deduplicationId: `b:st_1:${bucket}` },
    ]);
    await expect(sendGift(deps, SENDER, { ...request, quantity: 4 })).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
  });

  it('replays the winner when a concurrent duplicate loses on the idempotency record', async () => {
    const { deps, world } = setup();
    world.cancelNext = [
      {
        Code: 'ConditionalCheckFailed',
        Item: {
          fingerprint: giftFingerprint(request),
          status: 201,
          answer: JSON.stringify({ giftTxId: 'gift_WINNER', coinsSpent: 15 }),
          expiresAt: Math.floor(NOW.getTime() / 1000) + 60,
        },
      },
      // The winner also spent the coins: the idempotency record comes first, so this is a replay, not a refusal.
      { Code: 'ConditionalCheckFailed', Item: { coins: 0 } },
      { Code: 'None' },
      { Code: 'None' },
      { Code: 'None' },
    ];
    await expect(sendGift(deps, SENDER, request)).resolves.toMatchObject({
      giftTxId: 'gift_WINNER',
      coinsSpent: 15,
      replayed: true,
    });
  });
});

describe('SqsGiftEventPublisher', () => {
  it('sends nudges in batches of 10, grouped by stream and deduplicated by gift id', async () => {
    const sent: SendMessageBatchCommand[] = [];
    const publisher = new SqsGiftEventPublisher(
      {
        send: jest.fn(async (command: SendMessageBatchCommand) => {
          sent.push(command);
          return {};
        }),
      } as never,
      'https://queue/giftEvents.fifo',
    );
    await publisher.publish(
      Array.from({ length: 12 }, (_, index) => ({
        nudge: { streamId: `st_${index % 2}` },
        deduplicationId: `gift_${index}`,
      })),
    );
    expect(sent.map((command) => command.input.Entries?.length)).toEqual([10, 2]);
    expect(sent[0]?.input.Entries?.[1]).toEqual({
      Id: '1',
      MessageBody: '{"streamId":"st_1"}',
      MessageGroupId: 'st_1',
      MessageDeduplicationId: 'gift_1',
    });
  });

  it('sends a deduplication id once per warm instance: SQS would drop the second within its 5-minute window anyway', async () => {
    const sent: SendMessageBatchCommand[] = [];
    let clock = 1_000_000;
    const publisher = new SqsGiftEventPublisher(
      {
        send: jest.fn(async (command: SendMessageBatchCommand) => {
          sent.push(command);
          return {};
        }),
      } as never,
      'q',
      () => clock,
    );
    const nudge = bucketNudge('st_1', new Date(clock));
    await publisher.publish([nudge]);
    await publisher.publish([nudge]);
    expect(sent).toHaveLength(1);
    clock += SQS_DEDUPLICATION_WINDOW_MS;
    await publisher.publish([nudge]);
    expect(sent).toHaveLength(2);
  });

  it('fails loudly when SQS refuses an entry', async () => {
    const publisher = new SqsGiftEventPublisher(
      {
        send: jest.fn(async () => ({ Failed: [{ Id: '0', Code: 'InvalidParameterValue', SenderFault: true }] })),
      } as never,
      'q',
    );
    await expect(publisher.publish([{ nudge: { streamId: 'st' }, deduplicationId: 'x' }])).rejects.toThrow(
      /refused 1 nudge/,
    );
  });
});
