import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { conditions } from '../../shared/adapters/dynamo/conditions';
import { keys } from '../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { entryItem } from '../../shared/adapters/dynamo/items';
import { InsufficientCoinsError } from '../../shared/domain/errors';
import type { LocalStack } from '../../infra/local/stack';
import { apiClient, expectBooksBalance, RecordingSocket, startTestStack, type ApiClient } from '../support/local-stack';

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;

beforeAll(async () => {
  stack = await startTestStack();
  api = apiClient(stack.httpUrl);
  store = new DynamoLedgerStore(
    new DynamoDBClient({
      endpoint: stack.dynamoEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
    }),
    stack.tableNames.ledger,
  );
});
afterAll(async () => stack.stop());

/** Seeds a wallet the way a credit would: the balance and its entry in one transaction. */
async function seedCoins(userId: string, coins: number): Promise<void> {
  const createdAt = new Date().toISOString();
  await store.transactWrite([
    store.update('credit', keys.wallet(userId), { expression: 'ADD coins :coins', values: { ':coins': coins } }),
    store.put(
      'entry',
      entryItem(keys.entry(userId, createdAt, `seed-${userId}`), {
        id: `seed-${userId}`,
        userId,
        type: 'recharge',
        coins,
        owedCoins: 0,
        diamonds: 0,
        pendingDiamonds: 0,
        createdAt,
        ref: { seed: 'test', paymentIntentId: `pi_seed_${userId}_${createdAt}` },
      }),
    ),
  ]);
}

describe('walking skeleton over real HTTP, WebSocket and DynamoDB Local', () => {
  it('answers health and the catalogs', async () => {
    expect((await api.request('GET', '/health')).body).toEqual({ status: 'ok' });
    const packages = await api.request('GET', '/v1/packages?country=GB');
    expect(packages.status).toBe(200);
    expect(packages.body.currency).toBe('GBP');
    expect(packages.body.packages).toHaveLength(5);
    const refused = await api.request('GET', '/v1/packages?country=JP');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('REGION_UNAVAILABLE');
    const invalid = await api.request('GET', '/v1/packages');
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('VALIDATION_FAILED');
    expect(invalid.body.error.details[0].path).toBe('query.country');
    const gifts = await api.request('GET', '/v1/gifts');
    expect(gifts.body.gifts[0]).toEqual({ id: 'rose', name: 'Rose', coins: 1 });
  });

  it('gives a new user a wallet of zeros, and refuses a bad token', async () => {
    const token = await api.token({ sub: 'zero-user', birthdate: '1990-01-01', country: 'US' });
    const wallet = await api.request('GET', '/v1/wallet', { token });
    expect(wallet.status).toBe(200);
    expect(wallet.body).toEqual({
      userId: 'zero-user',
      coins: 0,
      owedCoins: 0,
      diamonds: 0,
      pendingDiamonds: 0,
      locked: false,
      budget: { monthlyLimit: null, spentThisMonth: { amount: 0, currency: 'USD' } },
    });
    for (const bad of [undefined, 'garbage', `${token}x`]) {
      const refused = await api.request('GET', '/v1/wallet', bad === undefined ? {} : { token: bad });
      expect(refused.status).toBe(401);
      expect(refused.body.error.code).toBe('UNAUTHORIZED');
    }
  });

  it('pages transactions newest first with an opaque cursor', async () => {
    const userId = 'pager';
    for (let i = 0; i < 5; i += 1) {
      const createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
      await store.transactWrite([
        store.update('credit', keys.wallet(userId), { expression: 'ADD coins :c', values: { ':c': 10 + i } }),
        store.put(
          'entry',
          entryItem(keys.entry(userId, createdAt, `e${i}`), {
            id: `e${i}`,
            userId,
            type: 'recharge',
            coins: 10 + i,
            owedCoins: 0,
            diamonds: 0,
            pendingDiamonds: 0,
            createdAt,
            ref: { paymentIntentId: `pi_seed_${userId}_${i}` },
          }),
        ),
      ]);
    }
    const token = await api.token({ sub: userId, birthdate: '1990-01-01', country: 'US' });
    const first = await api.request('GET', '/v1/wallet/transactions?limit=2', { token });
    expect(first.body.items.map((item: { id: string }) => item.id)).toEqual(['e4', 'e3']);
    const second = await api.request('GET', `/v1/wallet/transactions?limit=2&cursor=${first.body.nextCursor}`, {
      token,
    });
    expect(second.body.items.map((item: { id: string }) => item.id)).toEqual(['e2', 'e1']);
    const third = await api.request('GET', `/v1/wallet/transactions?limit=2&cursor=${second.body.nextCursor}`, {
      token,
    });
    if (!third.body.items) throw new Error(JSON.stringify({ second: second.body, third: third.body }));
    expect(third.body.items.map((item: { id: string }) => item.id)).toEqual(['e0']);
    expect(third.body.nextCursor).toBeNull();
    const wallet = await api.request('GET', '/v1/wallet', { token });
    const sum = [...first.body.items, ...second.body.items, ...third.body.items].reduce(
      (total: number, item: { coins: number }) => total + item.coins,
      0,
    );
    expect(wallet.body.coins).toBe(sum);
    const badCursor = await api.request('GET', '/v1/wallet/transactions?cursor=nonsense', { token });
    expect(badCursor.status).toBe(400);
    const badLimit = await api.request('GET', '/v1/wallet/transactions?limit=101', { token });
    expect(badLimit.status).toBe(400);
  });

  it('lets exactly one of two concurrent debits take the last coins', async () => {
    await seedCoins('racer', 10);
    let attempt = 0;
    const debit = () => {
      const id = `race-${(attempt += 1)}`;
      const createdAt = new Date().toISOString();
      return store.transactWrite([
        store.put(
          'entry',
          entryItem(keys.entry('racer', createdAt, id), {
            id,
            userId: 'racer',
            type: 'gift_sent',
            coins: -10,
            owedCoins: 0,
            diamonds: 0,
            pendingDiamonds: 0,
            createdAt,
            ref: {},
          }),
        ),
        store.update(
          'debit',
          keys.wallet('racer'),
          {
            expression: 'SET coins = coins - :cost',
            condition: `${conditions.coinsCoverCost} AND ${conditions.walletUnlocked}`,
            values: { ':cost': 10, ':false': false },
          },
          () => new InsufficientCoinsError('not enough'),
        ),
      ]);
    };
    const results = await Promise.allSettled([debit(), debit()]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(InsufficientCoinsError);
    expect((await store.readWallet('racer', { consistent: true })).coins).toBe(0);
  });

  it('keeps the books balanced (reconcile)', async () => {
    const report = await expectBooksBalance(stack);
    expect(report.totals.coinsMinted).toBe(10 + (10 + 11 + 12 + 13 + 14));
    expect(report.totals.coinsGifted).toBe(10);
  });

  it('connects a WebSocket with a token, answers ping, refuses a bad token at the upgrade', async () => {
    const token = await api.token({ sub: 'ws-user', birthdate: '1990-01-01', country: 'US' });
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${token}`);
    socket.send({ action: 'ping' });
    socket.send('not json');
    await socket.waitFor((messages) => messages.length >= 2);
    // Like API Gateway, the gateway runs frames concurrently: answers may come in either order.
    expect(socket.messages()).toContainEqual({ type: 'pong' });
    expect(socket.messages().find((m) => m.type === 'error').error.code).toBe('VALIDATION_FAILED');
    expect(stack.gateway.openConnectionIds()).toHaveLength(1);
    await socket.close();
    await expect(RecordingSocket.open(`${stack.wsUrl}/?token=nope`)).rejects.toThrow(/401/);
    await expect(RecordingSocket.open(`${stack.wsUrl}/`)).rejects.toThrow(/401/);
  });
});

describe('reconcile', () => {
  it('names a wallet whose balance disagrees with its entries, and a broken equation', async () => {
    const { reconcileLedger } = await import('../../shared/ops/reconcile');
    // An invented coin: a balance change with no entry (what the money rules forbid).
    await store.transactWrite([
      store.update('invent', keys.wallet('forger'), { expression: 'ADD coins :c', values: { ':c': 7 } }),
    ]);
    const client = new DynamoDBClient({
      endpoint: stack.dynamoEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
    });
    const report = await reconcileLedger(client, stack.tableNames.ledger);
    expect(report.ok).toBe(false);
    expect(report.discrepancies).toContain('wallet forger: coins is 7 but its entries sum to 0');
    expect(report.discrepancies.some((line) => line.startsWith('coins: minted'))).toBe(true);
  });
});
