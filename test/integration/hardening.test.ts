import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { signLocalToken } from '../../infra/local/issuer';
import { LOCAL_ISSUER, type LocalStack } from '../../infra/local/stack';
import WebSocket from 'ws';
import { keys, shardFor } from '../../shared/adapters/dynamo/keys';
import { DynamoSharedRateCounter } from '../../shared/adapters/dynamo/rate-counter';
import { RateLimitedError } from '../../shared/domain/errors';
import { DEFAULT_CREATOR_SHARDS } from '../../shared/config';
import { UserRateLimiter } from '../../shared/http/rate-limit';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { paymentIdempotencyKey } from '../../shared/adapters/payments';
import { rechargeIdFor } from '../../shared/usecases/recharge';
import { tryUpgrade } from '../support/fuzz';
import { ADULT, goLive, ledgerFor, seedCoins } from '../support/ledger';
import { apiClient, expectBooksBalance, RecordingSocket, startTestStack, type ApiClient } from '../support/local-stack';

/*
 * Issue 17: the flaws a security sweep found, each replayed through the real gateway.
 */

/** Small limits, so a flood is quick to show: writes 10 then 1/s, reads 20 then 1/s. */
const WRITE_BURST = 10;
const READ_BURST = 20;

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  stack = await startTestStack({
    RATE_LIMIT_PER_SECOND: '1',
    RATE_LIMIT_BURST: String(WRITE_BURST),
    RATE_LIMIT_READ_PER_SECOND: '1',
    RATE_LIMIT_READ_BURST: String(READ_BURST),
  });
  api = apiClient(stack.httpUrl);
  ({ dynamo, store } = ledgerFor(stack));
});
afterAll(async () => {
  dynamo?.destroy();
  await stack?.stop();
});

/** A token straight from the issuer's key: /dev/tokens refuses subs an identity provider may still issue. */
async function issuerToken(sub: string, claims: Record<string, unknown> = ADULT): Promise<string> {
  const file = process.env.LOCAL_ISSUER_KEY_FILE;
  if (!file) throw new Error('LOCAL_ISSUER_KEY_FILE is not set: start the stack first');
  return signLocalToken(file, LOCAL_ISSUER, { sub, ...claims });
}

async function rechargeAndSucceed(token: string, key: string): Promise<string> {
  const created = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId: 'coins_100' },
    headers: { 'idempotency-key': key },
  });
  if (created.status !== 201) throw new Error(`recharge: ${created.status} ${JSON.stringify(created.body)}`);
  const succeeded = await api.request('POST', `/dev/payments/${String(created.body.payment.paymentIntentId)}/succeed`);
  if (succeeded.status !== 200) throw new Error(`succeed: ${succeeded.status}`);
  return String(created.body.rechargeId);
}

async function waitForCoins(token: string, coins: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const wallet = await api.request('GET', '/v1/wallet', { token });
    if (wallet.body?.coins === coins) return;
    if (Date.now() > deadline) throw new Error(`wallet never reached ${coins}: ${JSON.stringify(wallet.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a sub containing # names no other user’s items', () => {
  it('"<creator>#E<k>" can neither read the creator’s gift history nor write into it', async () => {
    const creator = 'key-creator';
    const { token: creatorToken, streamId } = await goLive(api, creator);
    await seedCoins(store, 'key-fan', 100);
    const fanToken = await api.token({ sub: 'key-fan', ...ADULT });
    const sent = await api.request('POST', `/v1/streams/${streamId}/gifts`, {
      token: fanToken,
      body: { giftId: 'rose', quantity: 1 },
      headers: { 'idempotency-key': 'key-gift' },
    });
    expect(sent.status).toBe(201);
    const shard = shardFor(String(sent.body.giftTxId), DEFAULT_CREATOR_SHARDS);
    const creatorNotifications = await api.request('GET', '/v1/notifications', { token: creatorToken });
    expect(creatorNotifications.body.items.map((item: { id: string }) => item.id)).toEqual([sent.body.giftTxId]);

    // The attacker's sub is exactly the creator's shard partition name without its prefix.
    const attackerToken = await issuerToken(`${creator}#E${shard}`);
    const read = await api.request('GET', '/v1/wallet/transactions', { token: attackerToken });
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ items: [], nextCursor: null });

    // Its own recharge lands in its own history, not in the creator's shard partition.
    const rechargeId = await rechargeAndSucceed(attackerToken, 'key-attacker-buy');
    await waitForCoins(attackerToken, 100);
    const own = await api.request('GET', '/v1/wallet/transactions', { token: attackerToken });
    expect(own.body.items).toEqual([
      expect.objectContaining({ type: 'recharge', coins: 100, ref: expect.objectContaining({ rechargeId }) }),
    ]);

    const after = await api.request('GET', '/v1/notifications', { token: creatorToken });
    expect(after.status).toBe(200);
    expect(after.body.items.map((item: { id: string }) => item.id)).toEqual([sent.body.giftTxId]);
    const creatorHistory = await api.request('GET', '/v1/wallet/transactions', { token: creatorToken });
    expect(creatorHistory.body.items.map((item: { type: string }) => item.type)).toEqual(['gift_received']);
    const creatorWallet = await api.request('GET', '/v1/wallet', { token: creatorToken });
    expect(creatorWallet.body).toMatchObject({ coins: 0, diamonds: 1 });
    await expectBooksBalance(stack);
  });
});

describe('a sub containing : makes no id collide', () => {
  it('("victim:order", "1") and ("victim", "order:1") are two recharges with two PaymentIntents', async () => {
    const attackerToken = await issuerToken('ids-victim:order');
    const victimToken = await issuerToken('ids-victim');
    const first = await api.request('POST', '/v1/recharges', {
      token: attackerToken,
      body: { packageId: 'coins_100' },
      headers: { 'idempotency-key': '1' },
    });
    expect(first.status).toBe(201);
    const victim = await api.request('POST', '/v1/recharges', {
      token: victimToken,
      body: { packageId: 'coins_500' },
      headers: { 'idempotency-key': 'order:1' },
    });
    expect(victim.status).toBe(201);
    expect(victim.body).toMatchObject({ status: 'pending', coins: 500 });
    expect(victim.body.rechargeId).not.toBe(first.body.rechargeId);
    expect(victim.body.payment.paymentIntentId).not.toBe(first.body.payment.paymentIntentId);
    expect(stack.payments.requestCountByIdempotencyKey(paymentIdempotencyKey('ids-victim', 'order:1'))).toBe(1);
    expect(paymentIdempotencyKey('ids-victim', 'order:1')).not.toBe(paymentIdempotencyKey('ids-victim:order', '1'));
    expect(rechargeIdFor('ids-victim', 'order:1')).not.toBe(rechargeIdFor('ids-victim:order', '1'));
  });
});

describe('claims the age and region rules rely on', () => {
  it.each([['0000-00-00'], ['1990-13-45'], ['2023-02-29']])(
    'a birthdate of %s is no age: AGE_RESTRICTED, not an adult',
    async (birthdate) => {
      const token = await issuerToken(`bad-birthdate-${birthdate}`, { birthdate, country: 'US' });
      const live = await api.request('POST', '/v1/streams', { token, body: { title: 'nope' } });
      expect([live.status, live.body.error?.code]).toEqual([403, 'AGE_RESTRICTED']);
      const payoutAccount = await api.request('POST', '/v1/creator/payout-account', { token });
      expect([payoutAccount.status, payoutAccount.body.error?.code]).toEqual([403, 'AGE_RESTRICTED']);
      const wallet = await api.request('GET', '/v1/wallet', { token });
      expect(wallet.status).toBe(200);
      expect((await api.request('GET', '/v1/streams', { token })).body.items).not.toContainEqual(
        expect.objectContaining({ creatorId: `bad-birthdate-${birthdate}` }),
      );
    },
  );

  it('a leap day that exists counts: 2024-02-29 is a birthdate', async () => {
    const token = await issuerToken('leap-day', { birthdate: '2004-02-29', country: 'US' });
    expect((await api.request('POST', '/v1/streams', { token, body: { title: 'leap' } })).status).toBe(201);
    expect(
      (
        await api.request('GET', '/v1/wallet', {
          token: await issuerToken('leap-2024', { birthdate: '2024-02-29', country: 'US' }),
        })
      ).status,
    ).toBe(200);
  });

  it('going live needs a country with a price list; a payout account needs one Stripe Connect pays out to', async () => {
    const swiss = await issuerToken('region-ch', { birthdate: '1990-01-01', country: 'CH' });
    const live = await api.request('POST', '/v1/streams', { token: swiss, body: { title: 'ch' } });
    expect([live.status, live.body.error?.code]).toEqual([403, 'REGION_UNAVAILABLE']);
    expect((await api.request('POST', '/v1/creator/payout-account', { token: swiss })).status).toBe(201);

    const indian = await issuerToken('region-in', { birthdate: '1990-01-01', country: 'IN' });
    const account = await api.request('POST', '/v1/creator/payout-account', { token: indian });
    expect([account.status, account.body.error?.code]).toEqual([403, 'REGION_UNAVAILABLE']);
    expect((await api.request('GET', '/v1/creator/payout-account', { token: indian })).status).toBe(404);
    const noCountry = await issuerToken('region-none', { birthdate: '1990-01-01' });
    expect(
      (await api.request('POST', '/v1/streams', { token: noCountry, body: { title: 'x' } })).body.error?.code,
    ).toBe('REGION_UNAVAILABLE');
    expect((await api.request('POST', '/v1/creator/payout-account', { token: noCountry })).body.error?.code).toBe(
      'REGION_UNAVAILABLE',
    );
  });
});

describe('one per-user limit on every door', () => {
  const errorsOf = (socket: RecordingSocket, code: string) =>
    socket.messages().filter((message) => message.type === 'error' && message.error?.code === code);

  it('while a user’s HTTP gifts answer 429, their WebSocket sendGift is RATE_LIMITED too, and the connection stays open', async () => {
    const { streamId } = await goLive(api, 'limit-creator');
    await seedCoins(store, 'limit-fan', 100);
    const token = await api.token({ sub: 'limit-fan', ...ADULT });
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${token}&streamId=${streamId}`);
    try {
      const startedMs = Date.now();
      const answers = await Promise.all(
        Array.from({ length: WRITE_BURST + 5 }, (_, index) =>
          api.request('POST', `/v1/streams/${streamId}/gifts`, {
            token,
            body: { giftId: 'rose', quantity: 1 },
            headers: { 'idempotency-key': `limit-http-${index}` },
          }),
        ),
      );
      const httpAccepted = answers.filter((answer) => answer.status === 201).length;
      expect(answers.filter((answer) => answer.status === 429).length).toBeGreaterThan(0);
      const frames = 8;
      for (let index = 0; index < frames; index += 1)
        socket.send({ action: 'sendGift', requestId: `limit-ws-${index}`, giftId: 'rose', quantity: 1 });
      const answered = () =>
        socket.messages().filter((message) => String(message.requestId ?? '').startsWith('limit-ws-'));
      await socket.waitFor(() => answered().length === frames);
      const elapsedSeconds = (Date.now() - startedMs) / 1000;
      const refusals = answered().filter((message) => message.type === 'error');
      expect(refusals.length).toBeGreaterThan(0);
      for (const refusal of refusals) {
        expect(refusal).toEqual({
          type: 'error',
          requestId: expect.stringMatching(/^limit-ws-/),
          error: { code: 'RATE_LIMITED', message: expect.any(String), retryAfterSeconds: expect.any(Number) },
        });
        expect(refusal.error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      }
      const wsAccepted = frames - refusals.length;
      // HTTP and WebSocket drew from one bucket: together no more than the burst and its refill (1/s).
      expect(httpAccepted + wsAccepted).toBeLessThanOrEqual(WRITE_BURST + Math.ceil(elapsedSeconds) + 1);
      // Still open: a ping is a read, which has its own limit.
      socket.send({ action: 'ping' });
      await socket.waitFor((messages) => messages.some((message) => message.type === 'pong'));
      const wallet = await api.request('GET', '/v1/wallet', { token });
      expect(wallet.body.coins).toBe(100 - httpAccepted - wsAccepted);
      await expectBooksBalance(stack);
    } finally {
      await socket.close();
    }
  });

  it('sendGift without coins and join are limited as well (each costs database reads)', async () => {
    const { streamId } = await goLive(api, 'limit-creator-2');
    const broke = await api.token({ sub: 'limit-broke', ...ADULT });
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${broke}&streamId=${streamId}`);
    try {
      const frames = WRITE_BURST + 10;
      for (let index = 0; index < frames; index += 1)
        socket.send({ action: 'sendGift', requestId: `broke-${index}`, giftId: 'rose', quantity: 1 });
      await socket.waitFor(
        (messages) =>
          messages.filter((message) => String(message.requestId ?? '').startsWith('broke-')).length === frames,
      );
      const limited = errorsOf(socket, 'RATE_LIMITED').length;
      expect(limited).toBeGreaterThan(0);
      expect(errorsOf(socket, 'INSUFFICIENT_COINS').length + limited).toBe(frames);
      // The same user's join frames draw from the same, now empty, bucket.
      const joins = 15;
      for (let index = 0; index < joins; index += 1) socket.send({ action: 'join', streamId });
      await socket.waitFor(
        (messages) =>
          messages.filter((message) => message.type === 'joined' || message.error?.code === 'RATE_LIMITED').length >=
          limited + joins,
      );
      expect(errorsOf(socket, 'RATE_LIMITED').length).toBeGreaterThan(limited);
      expect(socket.socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      await socket.close();
    }
  });

  it('reads have a per-user limit of their own, higher than writes; other users are unaffected', async () => {
    const token = await api.token({ sub: 'limit-reader', ...ADULT });
    const answers = await Promise.all(
      Array.from({ length: READ_BURST + 15 }, () => api.request('GET', '/v1/wallet', { token })),
    );
    const refused = answers.filter((answer) => answer.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(answers.length - refused.length).toBeGreaterThanOrEqual(READ_BURST);
    for (const answer of refused) {
      expect(answer.body.error.code).toBe('RATE_LIMITED');
      expect(answer.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    }
    const leaderboardFlood = await Promise.all(
      Array.from({ length: 5 }, () => api.request('GET', '/v1/streams/st_none/leaderboard', { token })),
    );
    // The leaderboard (a query per shard) draws from the same, now empty, read bucket.
    expect(leaderboardFlood.filter((answer) => answer.status === 429).length).toBeGreaterThan(0);
    const bystander = await api.request('GET', '/v1/wallet', {
      token: await api.token({ sub: 'limit-bystander', ...ADULT }),
    });
    expect(bystander.status).toBe(200);
  });

  it('the ceiling holds across instances: two limiters sharing the DynamoDB counter give one window’s worth', async () => {
    const counter = new DynamoSharedRateCounter(dynamo, stack.tableNames.ledger);
    const clock = () => 1_800_000_000_000;
    const limits = { write: { perSecond: 1, burst: 20 }, read: { perSecond: 1, burst: 20 } };
    const shared = { counter, windowSeconds: 10, batch: 1 };
    const instances = [new UserRateLimiter(limits, shared, clock), new UserRateLimiter(limits, shared, clock)];
    let taken = 0;
    for (let round = 0; round < 80; round += 1) {
      try {
        await instances[round % 2]!.take('limit-spread', 'write');
        taken += 1;
      } catch (error) {
        if (!(error instanceof RateLimitedError)) throw error;
      }
    }
    // Each instance's bucket alone would allow 20 each, 40; the shared window allows 20 + 1 x 10,
    // and the other instance learns the window is full from its own next write: one more.
    expect(taken).toBe(31);
    const item = await store.getItem(keys.rateWindow('limit-spread', 'write', Math.floor(clock() / 1000 / 10)), {
      consistent: true,
    });
    expect(item).toMatchObject({ requests: 30, expiresAt: expect.any(Number) });
    await expectBooksBalance(stack);
  });
});

describe('a cap on WebSocket connections', () => {
  /** The default cap (shared/config.ts, WS_MAX_CONNECTIONS_PER_USER). */
  const CAP = 5;

  it(`one user gets ${CAP} connections at once, even from simultaneous upgrades; the next is refused with 429 until one closes`, async () => {
    const token = await api.token({ sub: 'cap-viewer', ...ADULT });
    const url = `${stack.wsUrl}/?token=${token}`;
    const attempts = await Promise.all(Array.from({ length: 30 }, () => tryUpgrade(url)));
    const open = attempts.filter((attempt) => attempt.status === 101);
    try {
      expect(open).toHaveLength(CAP);
      expect(attempts.filter((attempt) => attempt.status === 429)).toHaveLength(30 - CAP);
      expect((await tryUpgrade(url)).status).toBe(429);
      // Another user is not affected.
      const other = await tryUpgrade(`${stack.wsUrl}/?token=${await api.token({ sub: 'cap-other', ...ADULT })}`);
      expect(other.status).toBe(101);
      other.socket?.close();
      // Closing one frees its slot once $disconnect has run.
      open[0]?.socket?.close();
      const deadline = Date.now() + 10_000;
      let again = await tryUpgrade(url);
      while (again.status === 429 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        again = await tryUpgrade(url);
      }
      expect(again.status).toBe(101);
      open.push(again);
    } finally {
      for (const attempt of open) attempt.socket?.close();
    }
  });

  it('a connection to a stream that does not exist, or has ended, is refused at the upgrade', async () => {
    const token = await api.token({ sub: 'cap-wanderer', ...ADULT });
    const before = new Set(stack.gateway.openConnectionIds());
    expect((await tryUpgrade(`${stack.wsUrl}/?token=${token}&streamId=st_does_not_exist`)).status).toBe(404);
    const { token: creatorToken, streamId } = await goLive(api, 'cap-ending-creator');
    expect((await api.request('POST', `/v1/streams/${streamId}/end`, { token: creatorToken })).status).toBe(200);
    expect((await tryUpgrade(`${stack.wsUrl}/?token=${token}&streamId=${streamId}`)).status).toBe(409);
    expect(stack.gateway.openConnectionIds().filter((id) => !before.has(id))).toEqual([]);
  });

  it('a stream’s viewers are its distinct users: a user’s newer connection takes the room over from the older one', async () => {
    const { streamId } = await goLive(api, 'cap-room-creator');
    const token = await api.token({ sub: 'cap-room-viewer', ...ADULT });
    const url = `${stack.wsUrl}/?token=${token}&streamId=${streamId}`;
    const sockets = [await RecordingSocket.open(url), await RecordingSocket.open(url), await RecordingSocket.open(url)];
    const other = await RecordingSocket.open(
      `${stack.wsUrl}/?token=${await api.token({ sub: 'cap-room-other', ...ADULT })}&streamId=${streamId}`,
    );
    try {
      expect((await api.request('GET', `/v1/streams/${streamId}`, { token })).body.viewers).toBe(2);
      await seedCoins(store, 'cap-room-sender', 10);
      const sender = await api.token({ sub: 'cap-room-sender', ...ADULT });
      const sent = await api.request('POST', `/v1/streams/${streamId}/gifts`, {
        token: sender,
        body: { giftId: 'rose', quantity: 1 },
        headers: { 'idempotency-key': 'cap-room-1' },
      });
      expect(sent.status).toBe(201);
      const newest = sockets[2] as RecordingSocket;
      for (const receiver of [newest, other])
        await receiver.waitFor((messages) => messages.some((message) => message.giftTxId === sent.body.giftTxId));
      // The older connections stay open (wallet pushes, ping) but no longer watch the room.
      for (const older of sockets.slice(0, 2)) {
        older.send({ action: 'ping' });
        await older.waitFor((messages) => messages.some((message) => message.type === 'pong'));
        expect(older.messages().some((message) => message.type === 'gift')).toBe(false);
      }
      // join follows the same rule: the older connection joining takes the room back.
      (sockets[0] as RecordingSocket).send({ action: 'join', streamId });
      await (sockets[0] as RecordingSocket).waitFor((messages) =>
        messages.some((message) => message.type === 'joined'),
      );
      expect((await api.request('GET', `/v1/streams/${streamId}`, { token })).body.viewers).toBe(2);
    } finally {
      await Promise.all([...sockets, other].map((socket) => socket.close()));
    }
  });
});

describe('frames that are not even JSON count too', () => {
  it('a flood of garbage frames is answered RATE_LIMITED past the read burst, on an open connection', async () => {
    const token = await api.token({ sub: 'limit-garbage', ...ADULT });
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${token}`);
    try {
      const frames = READ_BURST + 15;
      for (let index = 0; index < frames; index += 1) socket.send('not json');
      await socket.waitFor((messages) => messages.filter((message) => message.type === 'error').length === frames);
      const codes = socket.messages().map((message) => message.error?.code);
      expect(codes.filter((code) => code === 'RATE_LIMITED').length).toBeGreaterThan(0);
      expect(codes.filter((code) => code === 'VALIDATION_FAILED').length).toBeGreaterThanOrEqual(READ_BURST);
      expect(socket.socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      await socket.close();
    }
  });
});
