import { ADULT, goLive, ledgerFor, seedCoins } from '../support/ledger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { keys } from '../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { newId } from '../../shared/adapters/ids';
import { DEFAULT_ECONOMY } from '../../shared/domain/economy';
import { sendGift } from '../../shared/usecases/gifts';
import type { LocalStack } from '../../infra/local/stack';
import { apiClient, RecordingSocket, startTestStack, type ApiClient } from '../support/local-stack';

/*
 * Gifts through the real gateway, DynamoDB Local and the local FIFO queue + broadcaster:
 * exactness under a race, idempotency on both channels, the contract's refusals in order,
 * and the things that follow a gift (totals, leaderboard, notifications, catch-up, the sweeper).
 */

const WAIT_MS = 10_000;

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  stack = await startTestStack();
  api = apiClient(stack.httpUrl);
  ({ dynamo, store } = ledgerFor(stack));
});
afterAll(async () => {
  dynamo?.destroy();
  await stack?.stop();
});

function gift(token: string, streamId: string, key: string, body: unknown = { giftId: 'rose', quantity: 1 }) {
  return api.request('POST', `/v1/streams/${streamId}/gifts`, { token, body, headers: { 'idempotency-key': key } });
}

async function allTransactions(token: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: any[]; nextCursor: string | null } } = await api.request(
      'GET',
      `/v1/wallet/transactions?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
      { token },
    );
    items.push(...page.body.items);
    cursor = page.body.nextCursor;
  } while (cursor);
  return items;
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms; last value ${JSON.stringify(value).slice(0, 1000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('streams', () => {
  it('goes live (adults only), lists newest first, reads, and ends (creator only)', async () => {
    const teen = await api.token({
      sub: 'teen-creator',
      birthdate: '2012-01-01',
      country: 'US',
      parentalConsent: true,
    });
    const refused = await api.request('POST', '/v1/streams', { token: teen, body: { title: 'x' } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('AGE_RESTRICTED');
    expect((await api.request('POST', '/v1/streams', { token: teen, body: {} })).body.error.code).toBe(
      'VALIDATION_FAILED',
    );

    const first = await goLive(api, 'lister-a', 'first');
    const second = await goLive(api, 'lister-b', 'second');
    const listed = await api.request('GET', '/v1/streams?limit=1', { token: first.token });
    expect(listed.status).toBe(200);
    expect(listed.body.items[0]).toMatchObject({
      streamId: second.streamId,
      title: 'second',
      status: 'live',
      creatorId: 'lister-b',
    });
    const next = await api.request('GET', `/v1/streams?limit=100&cursor=${listed.body.nextCursor}`, {
      token: first.token,
    });
    expect(next.body.items.map((item: { streamId: string }) => item.streamId)).toContain(first.streamId);
    expect(next.body.items.map((item: { streamId: string }) => item.streamId)).not.toContain(second.streamId);

    const read = await api.request('GET', `/v1/streams/${first.streamId}`, { token: second.token });
    expect(read.body).toMatchObject({
      streamId: first.streamId,
      creatorId: 'lister-a',
      title: 'first',
      status: 'live',
      giftCoins: 0,
      viewers: 0,
    });
    expect((await api.request('GET', '/v1/streams/st_nope', { token: first.token })).status).toBe(404);

    const forbidden = await api.request('POST', `/v1/streams/${first.streamId}/end`, { token: second.token });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('FORBIDDEN');
    const ended = await api.request('POST', `/v1/streams/${first.streamId}/end`, { token: first.token });
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ streamId: first.streamId, status: 'ended' });
    const again = await api.request('POST', `/v1/streams/${first.streamId}/end`, { token: first.token });
    expect(again.body.status).toBe('ended');
    const live = await api.request('GET', '/v1/streams?limit=100', { token: first.token });
    expect(live.body.items.map((item: { streamId: string }) => item.streamId)).not.toContain(first.streamId);
  });
});

describe('sending gifts', () => {
  it('50 concurrent gifts against a balance for 20: exactly 20 succeed, and every balance and history agrees', async () => {
    const { token: creatorToken, streamId } = await goLive(api, 'race-creator');
    await seedCoins(store, 'race-sender', 20);
    const token = await api.token({ sub: 'race-sender', ...ADULT });
    const answers = await Promise.all(Array.from({ length: 50 }, (_, index) => gift(token, streamId, `race-${index}`)));
    const succeeded = answers.filter((answer) => answer.status === 201);
    const refused = answers.filter((answer) => answer.status !== 201);
    expect(succeeded).toHaveLength(20);
    expect(refused).toHaveLength(30);
    for (const answer of refused) {
      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe('INSUFFICIENT_COINS');
    }
    expect(new Set(succeeded.map((answer) => answer.body.giftTxId)).size).toBe(20);
    for (const answer of succeeded) {
      expect(answer.body.coinsSpent).toBe(1);
      expect(answer.body.wallet.coins).toBeGreaterThanOrEqual(0);
    }

    const senderWallet = await api.request('GET', '/v1/wallet', { token });
    expect(senderWallet.body.coins).toBe(0);
    const creatorWallet = await api.request('GET', '/v1/wallet', { token: creatorToken });
    expect(creatorWallet.body.diamonds).toBe(20);

    const sent = (await allTransactions(token)).filter((item) => item.type === 'gift_sent');
    expect(sent).toHaveLength(20);
    expect(sent.reduce((sum, item) => sum + item.coins, 0)).toBe(-20);
    const received = (await allTransactions(creatorToken)).filter((item) => item.type === 'gift_received');
    expect(received).toHaveLength(20);
    expect(received.reduce((sum, item) => sum + item.diamonds, 0)).toBe(20);
    expect(new Set(sent.map((item) => item.id))).toEqual(new Set(succeeded.map((answer) => answer.body.giftTxId)));
    expect(new Set(received.map((item) => item.id))).toEqual(new Set(succeeded.map((answer) => answer.body.giftTxId)));

    // Totals and the leaderboard follow once the broadcaster has numbered the gifts.
    const stream = await eventually(
      () => api.request('GET', `/v1/streams/${streamId}`, { token }),
      (answer) => answer.body.giftCoins === 20,
    );
    expect(stream.body.giftCoins).toBe(20);
    // The leaderboard is folded from the catch-up log a few seconds behind the gifts (README).
    const board = await eventually(
      () => api.request('GET', `/v1/streams/${streamId}/leaderboard`, { token }),
      (read) => read.body.items?.[0]?.coins === 20,
    );
    expect(board.body).toEqual({ items: [{ userId: 'race-sender', coins: 20 }] });
    const events = await api.request('GET', `/v1/streams/${streamId}/events?after=0`, { token });
    expect(events.body.items.map((event: { seq: number }) => event.seq)).toEqual(
      Array.from({ length: 20 }, (_, index) => index + 1),
    );
    expect(events.body.nextSeq).toBe(20);
    const later = await api.request('GET', `/v1/streams/${streamId}/events?after=15&limit=3`, { token });
    expect(later.body.items.map((event: { seq: number }) => event.seq)).toEqual([16, 17, 18]);
    expect(later.body.nextSeq).toBe(18);
  });

  it('the same Idempotency-Key twice (one after the other, or at once) spends once and answers the same gift', async () => {
    const { streamId } = await goLive(api, 'idem-creator');
    await seedCoins(store, 'idem-sender', 100);
    const token = await api.token({ sub: 'idem-sender', ...ADULT });
    const first = await gift(token, streamId, 'key-1', { giftId: 'heart', quantity: 2 });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ giftTxId: expect.stringMatching(/^gift_/), coinsSpent: 10, wallet: { coins: 90 } });
    const replay = await gift(token, streamId, 'key-1', { giftId: 'heart', quantity: 2 });
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(first.body);
    const reused = await gift(token, streamId, 'key-1', { giftId: 'heart', quantity: 3 });
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');

    const together = await Promise.all([
      gift(token, streamId, 'key-2'),
      gift(token, streamId, 'key-2'),
      gift(token, streamId, 'key-2'),
    ]);
    for (const answer of together) expect(answer.status).toBe(201);
    expect(new Set(together.map((answer) => answer.body.giftTxId)).size).toBe(1);
    const wallet = await api.request('GET', '/v1/wallet', { token });
    expect(wallet.body.coins).toBe(89);
    expect((await allTransactions(token)).filter((item) => item.type === 'gift_sent')).toHaveLength(2);
    // A replay answers with the balance as it is now.
    expect((await gift(token, streamId, 'key-1', { giftId: 'heart', quantity: 2 })).body).toEqual({
      ...first.body,
      wallet: { coins: 89 },
    });
  });

  it('the same WebSocket requestId twice spends once and acks the same gift', async () => {
    const { streamId } = await goLive(api, 'ws-creator');
    await seedCoins(store, 'ws-sender', 50);
    const token = await api.token({ sub: 'ws-sender', ...ADULT });
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${token}&streamId=${streamId}`);
    try {
      socket.send({ action: 'sendGift', requestId: 'r-1', giftId: 'ice_cream', quantity: 1 });
      socket.send({ action: 'sendGift', requestId: 'r-1', giftId: 'ice_cream', quantity: 1 });
      const messages = await socket.waitFor((all) => all.filter((message) => message.type === 'giftAck').length === 2);
      const acks = messages.filter((message) => message.type === 'giftAck');
      expect(acks[0]).toEqual({
        type: 'giftAck',
        requestId: 'r-1',
        giftTxId: expect.stringMatching(/^gift_/),
        wallet: { coins: 40 },
      });
      expect(acks[1].giftTxId).toBe(acks[0].giftTxId);
      expect((await api.request('GET', '/v1/wallet', { token })).body.coins).toBe(40);
      // The same key over HTTP for the same gift is the same gift.
      const http = await gift(token, streamId, 'r-1', { giftId: 'ice_cream', quantity: 1 });
      expect(http.body.giftTxId).toBe(acks[0].giftTxId);

      socket.send({ action: 'sendGift', requestId: 'r-2', giftId: 'castle', quantity: 1 });
      socket.send({ action: 'sendGift', requestId: 'r-3', giftId: 'rose', quantity: 100 });
      socket.send('not json');
      const errors = (
        await socket.waitFor((all) => all.filter((message) => message.type === 'error').length === 3)
      ).filter((message) => message.type === 'error');
      expect(errors.find((message) => message.requestId === 'r-2')?.error.code).toBe('INSUFFICIENT_COINS');
      expect(errors.find((message) => message.requestId === 'r-3')?.error.code).toBe('VALIDATION_FAILED');
      expect(errors.filter((message) => message.requestId === undefined).map((message) => message.error.code)).toEqual([
        'VALIDATION_FAILED',
      ]);

      // The sender watches the stream too: its own gift arrives as a gift event.
      await socket.waitFor((all) =>
        all.some((message) => message.type === 'gift' && message.giftTxId === acks[0].giftTxId),
      );
    } finally {
      await socket.close();
    }
  });

  it('refuses in the contract order: validation, wallet lock, age, stream live, self gift, coins', async () => {
    const { token: creatorToken, streamId } = await goLive(api, 'order-creator');
    await seedCoins(store, 'order-locked', 100);
    await store.transactWrite([
      store.update('lock', keys.wallet('order-locked'), {
        expression: 'SET locked = :true, lockReason = :owner',
        values: { ':true': true, ':owner': 'owner' },
      }),
    ]);
    const locked = await api.token({ sub: 'order-locked', birthdate: '2015-01-01', country: 'US' });
    const child = await api.token({ sub: 'order-child', birthdate: '2015-01-01', country: 'US' });
    const poor = await api.token({ sub: 'order-poor', ...ADULT });
    const ended = await goLive(api, 'order-ended-creator');
    await api.request('POST', `/v1/streams/${ended.streamId}/end`, { token: ended.token });

    const codeOf = async (answer: Promise<{ status: number; body: any }>) => {
      const { status, body } = await answer;
      return `${status} ${body?.error?.code ?? ''}`;
    };
    expect(await codeOf(gift(locked, streamId, 'o1', { giftId: 'rose', quantity: 0 }))).toBe('400 VALIDATION_FAILED');
    expect(await codeOf(gift(locked, streamId, 'o2', { giftId: 'no-such-gift', quantity: 1 }))).toBe(
      '400 VALIDATION_FAILED',
    );
    expect(
      await codeOf(
        api.request('POST', `/v1/streams/${streamId}/gifts`, { token: poor, body: { giftId: 'rose', quantity: 1 } }),
      ),
    ).toBe('400 IDEMPOTENCY_KEY_REQUIRED');
    expect(await codeOf(gift(locked, ended.streamId, 'o3'))).toBe('423 WALLET_LOCKED');
    expect(await codeOf(gift(child, ended.streamId, 'o4'))).toBe('403 AGE_RESTRICTED');
    expect(await codeOf(gift(poor, ended.streamId, 'o5'))).toBe('409 STREAM_NOT_LIVE');
    expect(await codeOf(gift(poor, 'st_never', 'o6'))).toBe('409 STREAM_NOT_LIVE');
    expect(await codeOf(gift(creatorToken, streamId, 'o7'))).toBe('409 SELF_GIFT');
    expect(await codeOf(gift(poor, streamId, 'o8'))).toBe('409 INSUFFICIENT_COINS');
    // A refusal for the state of the world is not stored: the same key succeeds once coins arrive.
    await seedCoins(store, 'order-poor', 1);
    expect(await codeOf(gift(poor, streamId, 'o8'))).toBe('201 ');
  });

  it('credits the creator, notifies them, and pushes their wallet once per batch', async () => {
    const { token: creatorToken, streamId } = await goLive(api, 'notify-creator');
    const creatorSocket = await RecordingSocket.open(`${stack.wsUrl}/?token=${creatorToken}&streamId=${streamId}`);
    try {
      await seedCoins(store, 'notify-sender', 1000);
      const token = await api.token({ sub: 'notify-sender', ...ADULT });
      const sent = await gift(token, streamId, 'n-1', { giftId: 'star', quantity: 3 });
      expect(sent.status).toBe(201);
      const wallet = await creatorSocket.waitFor((all) =>
        all.some((message) => message.type === 'wallet' && message.diamonds === 297),
      );
      expect(wallet.find((message) => message.type === 'wallet')).toEqual({
        type: 'wallet',
        coins: 0,
        diamonds: 297,
        pendingDiamonds: 0,
      });
      const notifications = await api.request('GET', '/v1/notifications', { token: creatorToken });
      expect(notifications.body).toEqual({
        items: [
          {
            id: sent.body.giftTxId,
            type: 'gift_received',
            streamId,
            fromUserId: 'notify-sender',
            giftId: 'star',
            quantity: 3,
            diamonds: 297,
            createdAt: expect.any(String),
          },
        ],
        nextCursor: null,
      });
      expect((await api.request('GET', '/v1/notifications', { token })).body).toEqual({ items: [], nextCursor: null });
    } finally {
      await creatorSocket.close();
    }
  });

  it('broadcasts a committed gift whose nudge was lost, late, through the sweeper; streamEnded follows the gifts', async () => {
    const { token: creatorToken, streamId } = await goLive(api, 'sweep-creator');
    await seedCoins(store, 'sweep-sender', 10);
    const token = await api.token({ sub: 'sweep-sender', ...ADULT });
    const viewer = await RecordingSocket.open(`${stack.wsUrl}/?token=${token}&streamId=${streamId}`);
    try {
      // The sender's function "dies" after the commit: the queue never hears of this gift. It
      // committed a few seconds ago, as the sweeper would find it.
      const lost = await sendGift(
        {
          store,
          publisher: {
            publish: async () => {
              throw new Error('crashed before the nudge');
            },
          },
          now: () => new Date(Date.now() - 10_000),
          newId,
          economy: DEFAULT_ECONOMY,
        },
        { userId: 'sweep-sender', ...ADULT, parentalConsent: false },
        { streamId, giftId: 'rose', quantity: 1, idempotencyKey: 'lost-1' },
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(viewer.messages().filter((message) => message.type === 'gift')).toHaveLength(0);
      await stack.runSchedule('SweepGiftBroadcasts');
      const messages = await viewer.waitFor((all) => all.some((message) => message.type === 'gift'));
      expect(messages.find((message) => message.type === 'gift')).toEqual({
        type: 'gift',
        streamId,
        seq: 1,
        giftTxId: lost.giftTxId,
        fromUserId: 'sweep-sender',
        giftId: 'rose',
        quantity: 1,
        coins: 1,
        at: expect.any(String),
      });

      const last = await gift(token, streamId, 'after-lost');
      await api.request('POST', `/v1/streams/${streamId}/end`, { token: creatorToken });
      const all = await viewer.waitFor((received) => received.some((message) => message.type === 'streamEnded'));
      const order = all
        .filter((message) => message.type === 'gift' || message.type === 'streamEnded')
        .map((message) => (message.type === 'gift' ? message.giftTxId : message.type));
      expect(order).toEqual([lost.giftTxId, last.body.giftTxId, 'streamEnded']);
      expect(all.find((message) => message.type === 'streamEnded')).toEqual({ type: 'streamEnded', streamId });
    } finally {
      await viewer.close();
    }
  });
});
