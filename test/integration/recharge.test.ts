import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import type { LocalStack } from '../../infra/local/stack';
import { keys } from '../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { entryItem } from '../../shared/adapters/dynamo/items';
import { paymentIdempotencyKey } from '../../shared/adapters/payments';
import { apiClient, RecordingSocket, startTestStack, type ApiClient } from '../support/local-stack';
import { ADULT, ledgerFor } from '../support/ledger';

/**
 * The recharge path over real HTTP, the real stripe SDK against the payments stand-in, signed
 * webhooks and DynamoDB Local.
 */
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
  dynamo.destroy();
  await stack.stop();
});

async function tokenFor(
  sub: string,
  claims: { birthdate?: string; country?: string; parentalConsent?: boolean } = ADULT,
): Promise<string> {
  return api.token({ sub, ...claims });
}

async function buy(token: string, packageId = 'coins_500', key = `key-${randomBytes(6).toString('hex')}`) {
  const response = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId },
    headers: { 'idempotency-key': key },
  });
  if (response.status !== 201) throw new Error(`recharge: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as {
    rechargeId: string;
    coins: number;
    price: { amount: number };
    payment: { paymentIntentId: string };
  };
}

async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Posts an event to the webhook route signed as Stripe signs it (or deliberately not). */
async function postEvent(
  event: unknown,
  options: { secret?: string; timestamp?: number; tamper?: (body: string) => string } = {},
) {
  const payload = JSON.stringify(event);
  const secret = options.secret ?? String(process.env.STRIPE_WEBHOOK_SECRET);
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(options.timestamp !== undefined && { timestamp: options.timestamp }),
  });
  const body = options.tamper ? options.tamper(payload) : payload;
  return api.request('POST', '/v1/webhooks/stripe', {
    rawBody: body,
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
  });
}

const stripeEvent = (type: string, object: Record<string, unknown>, id = `evt_${randomBytes(8).toString('hex')}`) => ({
  id,
  object: 'event',
  api_version: Stripe.API_VERSION,
  created: Math.floor(Date.now() / 1000),
  livemode: false,
  type,
  data: { object },
});

describe('recharge through Stripe, end to end', () => {
  it('credits on /dev/payments/.../succeed, once, and pushes the wallet', async () => {
    const token = await tokenFor('e2e-buyer');
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${token}`);
    const key = 'first-purchase';
    const created = await api.request('POST', '/v1/recharges', {
      token,
      body: { packageId: 'coins_500' },
      headers: { 'idempotency-key': key },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      rechargeId: expect.any(String),
      status: 'pending',
      coins: 500,
      price: { amount: 599, currency: 'USD' },
      payment: {
        provider: 'stripe',
        paymentIntentId: expect.stringMatching(/^pi_/),
        clientSecret: expect.stringMatching(/_secret_/),
      },
    });
    const { rechargeId, payment } = created.body;
    expect(stack.payments.requestCountByIdempotencyKey(paymentIdempotencyKey('e2e-buyer', key))).toBe(1);
    const replay = await api.request('POST', '/v1/recharges', {
      token,
      body: { packageId: 'coins_500' },
      headers: { 'idempotency-key': key },
    });
    expect([replay.status, replay.body]).toEqual([201, created.body]);
    const reused = await api.request('POST', '/v1/recharges', {
      token,
      body: { packageId: 'coins_100' },
      headers: { 'idempotency-key': key },
    });
    expect([reused.status, reused.body.error.code]).toEqual([422, 'IDEMPOTENCY_KEY_REUSED']);
    expect((await api.request('GET', `/v1/recharges/${rechargeId}`, { token })).body).toMatchObject({
      rechargeId,
      status: 'pending',
      coins: 500,
    });

    // How fast is the benchmark's business; here only that it is credited, once.
    const succeeded = await api.request('POST', `/dev/payments/${payment.paymentIntentId}/succeed`);
    expect(succeeded.status).toBe(200);
    const wallet = await waitUntil(
      () => api.request('GET', '/v1/wallet', { token }),
      (response) => response.body.coins === 500,
    );
    expect(wallet.body).toMatchObject({
      coins: 500,
      owedCoins: 0,
      locked: false,
      budget: { monthlyLimit: null, spentThisMonth: { amount: 599, currency: 'USD' } },
    });
    await socket.waitFor((messages) => messages.some((message) => message.type === 'wallet' && message.coins === 500));
    expect(socket.messages().find((message) => message.type === 'wallet')).toEqual({
      type: 'wallet',
      coins: 500,
      diamonds: 0,
      pendingDiamonds: 0,
    });

    // The same event again (Stripe's retry: same event id) credits nothing.
    const again = await api.request('POST', `/dev/payments/${payment.paymentIntentId}/succeed`);
    expect(again.body.eventId).toBe(succeeded.body.eventId);
    expect((await api.request('GET', '/v1/wallet', { token })).body.coins).toBe(500);
    const history = await api.request('GET', '/v1/wallet/transactions', { token });
    expect(history.body.items).toHaveLength(1);
    expect(history.body.items[0]).toMatchObject({ type: 'recharge', coins: 500, diamonds: 0 });
    expect((await api.request('GET', `/v1/recharges/${rechargeId}`, { token })).body).toMatchObject({
      status: 'succeeded',
    });
    // Someone else's recharge does not exist for them.
    expect(
      (await api.request('GET', `/v1/recharges/${rechargeId}`, { token: await tokenFor('e2e-other') })).status,
    ).toBe(404);
    await socket.close();
  });

  it('dispute through the stand-in: coins taken back as far as the balance allows, rest owed, wallet locked for good', async () => {
    const token = await tokenFor('e2e-disputed');
    const { payment } = await buy(token, 'coins_1000');
    await api.request('POST', `/dev/payments/${payment.paymentIntentId}/succeed`);
    await waitUntil(
      () => api.request('GET', '/v1/wallet', { token }),
      (response) => response.body.coins === 1000,
    );
    // 400 coins spent (as a gift would: balance and entry together) before the dispute arrives.
    const spentAt = new Date().toISOString();
    await store.transactWrite([
      store.update('spend', keys.wallet('e2e-disputed'), {
        expression: 'SET coins = coins - :c',
        condition: 'coins >= :c',
        values: { ':c': 400 },
      }),
      store.put(
        'gift entry',
        entryItem(keys.entry('e2e-disputed', spentAt, 'gift-1'), {
          id: 'gift-1',
          userId: 'e2e-disputed',
          type: 'gift_sent',
          coins: -400,
          owedCoins: 0,
          diamonds: 0,
          pendingDiamonds: 0,
          createdAt: spentAt,
          ref: {},
        }),
      ),
    ]);
    const dispute = await api.request('POST', `/dev/payments/${payment.paymentIntentId}/dispute`);
    expect(dispute.status).toBe(200);
    const wallet = await waitUntil(
      () => api.request('GET', '/v1/wallet', { token }),
      (response) => response.body.locked === true,
    );
    expect(wallet.body).toMatchObject({ coins: 0, owedCoins: 400, locked: true });
    // The same dispute again (same event id) takes nothing more.
    const repeat = await api.request('POST', `/dev/payments/${payment.paymentIntentId}/dispute`);
    expect(repeat.body.eventId).toBe(dispute.body.eventId);
    const unlock = await api.request('PUT', '/v1/wallet/lock', { token, body: { locked: false } });
    expect([unlock.status, unlock.body.error.code]).toEqual([423, 'WALLET_LOCKED']);
    const refused = await api.request('POST', '/v1/recharges', {
      token,
      body: { packageId: 'coins_100' },
      headers: { 'idempotency-key': 'after-dispute' },
    });
    expect([refused.status, refused.body.error.code]).toEqual([423, 'WALLET_LOCKED']);
    const history = await api.request('GET', '/v1/wallet/transactions', { token });
    expect(
      history.body.items.map((item: { type: string; coins: number; owedCoins: number }) => [
        item.type,
        item.coins,
        item.owedCoins,
      ]),
    ).toEqual([
      ['chargeback', -600, 400],
      ['gift_sent', -400, 0],
      ['recharge', 1000, 0],
    ]);
  });

  it('takes back a partial refund in proportion, rounded down', async () => {
    const token = await tokenFor('e2e-refund');
    const { payment } = await buy(token, 'coins_100');
    await api.request('POST', `/dev/payments/${payment.paymentIntentId}/succeed`);
    await waitUntil(
      () => api.request('GET', '/v1/wallet', { token }),
      (response) => response.body.coins === 100,
    );
    const refund = await api.request('POST', `/dev/payments/${payment.paymentIntentId}/refund`, {
      body: { amount: 64 },
    });
    expect(refund.status).toBe(200);
    // floor(100 * 64 / 129) = 49 taken back.
    const wallet = await waitUntil(
      () => api.request('GET', '/v1/wallet', { token }),
      (response) => response.body.locked === true,
    );
    expect(wallet.body).toMatchObject({ coins: 51, owedCoins: 0 });
  });
});

describe('webhook deliveries in any number, order and concurrency', () => {
  const orders = [
    ['succeeded', 'failed', 'dispute'],
    ['succeeded', 'dispute', 'failed'],
    ['failed', 'succeeded', 'dispute'],
    ['failed', 'dispute', 'succeeded'],
    ['dispute', 'succeeded', 'failed'],
    ['dispute', 'failed', 'succeeded'],
  ];

  it.each(orders.map((order) => [order.join(' -> '), order]))(
    'credits at most once and ends where the money rules say: %s',
    async (_name, order) => {
      const userId = `order-${(order as string[]).map((step) => step[0]).join('')}`;
      const token = await tokenFor(userId);
      const { payment, price, rechargeId } = await buy(token, 'coins_500');
      const paymentIntent = {
        id: payment.paymentIntentId,
        object: 'payment_intent',
        amount: price.amount,
        currency: 'usd',
        status: 'succeeded',
        metadata: { rechargeId },
      };
      const succeeded = stripeEvent('payment_intent.succeeded', paymentIntent);
      const failed = stripeEvent('payment_intent.payment_failed', {
        ...paymentIntent,
        status: 'requires_payment_method',
      });
      const dispute = stripeEvent('charge.dispute.created', {
        id: `dp_${userId}`,
        object: 'dispute',
        amount: price.amount,
        charge: `ch_${userId}`,
        payment_intent: payment.paymentIntentId,
      });
      for (const step of order as string[]) {
        const deliveries =
          step === 'succeeded' ? Array.from({ length: 10 }, () => succeeded) : [step === 'failed' ? failed : dispute];
        const answers = await Promise.all(deliveries.map((event) => postEvent(event)));
        for (const answer of answers) expect([answer.status, answer.body]).toEqual([200, { received: true }]);
      }
      const wallet = await api.request('GET', '/v1/wallet', { token });
      expect(wallet.body).toMatchObject({ coins: 0, owedCoins: 0, locked: true });
      const history = await api.request('GET', '/v1/wallet/transactions', { token });
      expect(history.body.items.map((item: { type: string; coins: number }) => [item.type, item.coins]).sort()).toEqual(
        [
          ['chargeback', -500],
          ['recharge', 500],
        ],
      );
      expect((await api.request('GET', `/v1/recharges/${rechargeId}`, { token })).body.status).toBe('disputed');
      // The budget counts the recharge once (it was paid), whatever happened in between.
      expect(wallet.body.budget.spentThisMonth.amount).toBe(price.amount);
    },
  );

  it('answers 200 for event types it ignores and for payments that are not ours', async () => {
    for (const event of [
      stripeEvent('customer.created', { id: 'cus_1', object: 'customer' }),
      stripeEvent('payment_intent.succeeded', { id: 'pi_unknown', object: 'payment_intent' }),
    ]) {
      const answer = await postEvent(event);
      expect([answer.status, answer.body]).toEqual([200, { received: true }]);
    }
  });

  it('refuses a tampered body, a wrong secret and a stale timestamp with 400, and changes nothing', async () => {
    const token = await tokenFor('forger');
    const { payment, rechargeId } = await buy(token, 'coins_10000');
    const event = stripeEvent('payment_intent.succeeded', { id: payment.paymentIntentId, object: 'payment_intent' });
    const attempts = [
      await postEvent(event, {
        tamper: (body) => body.replace('"object":"payment_intent"', '"object":"payment_intent","x":1'),
      }),
      await postEvent(event, { secret: 'whsec_not_the_right_one' }),
      await postEvent(event, { timestamp: Math.floor(Date.now() / 1000) - 600 }),
      await api.request('POST', '/v1/webhooks/stripe', {
        rawBody: JSON.stringify(event),
        headers: { 'content-type': 'application/json' },
      }),
    ];
    for (const attempt of attempts) {
      expect(attempt.status).toBe(400);
      expect(attempt.body.error.code).toBe('VALIDATION_FAILED');
    }
    expect((await api.request('GET', '/v1/wallet', { token })).body).toMatchObject({ coins: 0, locked: false });
    expect((await api.request('GET', `/v1/recharges/${rechargeId}`, { token })).body.status).toBe('pending');
    expect(await store.getItem(keys.stripeEvent(event.id), { consistent: true })).toBeUndefined();
    // The same event, properly signed, is accepted.
    expect((await postEvent(event)).status).toBe(200);
    expect((await api.request('GET', '/v1/wallet', { token })).body.coins).toBe(10000);
  });
});

describe('refusals come before any PaymentIntent', () => {
  async function refusal(
    sub: string,
    claims: { birthdate?: string; country?: string; parentalConsent?: boolean },
    body: Record<string, unknown> = { packageId: 'coins_500' },
  ) {
    const token = await tokenFor(sub, claims);
    const key = `refused-${sub}`;
    const response = await api.request('POST', '/v1/recharges', { token, body, headers: { 'idempotency-key': key } });
    // The stand-in never saw a PaymentIntent request under the key this recharge would have used.
    expect(stack.payments.requestCountByIdempotencyKey(paymentIdempotencyKey(sub, key))).toBe(0);
    return { status: response.status, code: response.body?.error?.code as string | undefined, token };
  }

  it('age, region, budget and lock each refuse with their code', async () => {
    expect(await refusal('under-13', { birthdate: '2016-01-01', country: 'US', parentalConsent: true })).toMatchObject({
      status: 403,
      code: 'AGE_RESTRICTED',
    });
    expect(await refusal('teen-no-consent', { birthdate: '2010-01-01', country: 'US' })).toMatchObject({
      status: 403,
      code: 'AGE_RESTRICTED',
    });
    expect(await refusal('japan', { birthdate: '1990-01-01', country: 'JP' })).toMatchObject({
      status: 403,
      code: 'REGION_UNAVAILABLE',
    });
    expect(await refusal('country-mismatch', ADULT, { packageId: 'coins_500', country: 'GB' })).toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    expect(
      (
        await api.request('POST', '/v1/recharges', {
          token: await tokenFor('no-key'),
          body: { packageId: 'coins_500' },
        })
      ).body.error.code,
    ).toBe('IDEMPOTENCY_KEY_REQUIRED');

    const budgetToken = await tokenFor('budgeted');
    const wrongCurrency = await api.request('PUT', '/v1/wallet/budget', {
      token: budgetToken,
      body: { monthlyLimit: { amount: 500, currency: 'EUR' } },
    });
    expect([wrongCurrency.status, wrongCurrency.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    const budget = await api.request('PUT', '/v1/wallet/budget', {
      token: budgetToken,
      body: { monthlyLimit: { amount: 500, currency: 'USD' } },
    });
    expect(budget.status).toBe(200);
    expect(budget.body.budget).toEqual({
      monthlyLimit: { amount: 500, currency: 'USD' },
      spentThisMonth: { amount: 0, currency: 'USD' },
    });
    expect(await refusal('budgeted', ADULT)).toMatchObject({ status: 409, code: 'BUDGET_EXCEEDED' });

    const lockToken = await tokenFor('self-locked');
    const locked = await api.request('PUT', '/v1/wallet/lock', { token: lockToken, body: { locked: true } });
    expect([locked.status, locked.body.locked]).toEqual([200, true]);
    expect(await refusal('self-locked', ADULT)).toMatchObject({ status: 423, code: 'WALLET_LOCKED' });
    const unlocked = await api.request('PUT', '/v1/wallet/lock', { token: lockToken, body: { locked: false } });
    expect([unlocked.status, unlocked.body.locked]).toEqual([200, false]);
  });

  it('reports a transaction: 201, wallet locked; NOT_FOUND for one not in the caller history', async () => {
    const token = await tokenFor('reporter');
    const { payment } = await buy(token, 'coins_100');
    await api.request('POST', `/dev/payments/${payment.paymentIntentId}/succeed`);
    const history = await waitUntil(
      () => api.request('GET', '/v1/wallet/transactions', { token }),
      (response) => response.body.items.length === 1,
    );
    const transactionId = history.body.items[0].id as string;
    const stranger = await api.request('POST', `/v1/wallet/transactions/${transactionId}/report`, {
      token: await tokenFor('stranger'),
      body: { reason: 'hm' },
    });
    expect([stranger.status, stranger.body.error.code]).toEqual([404, 'NOT_FOUND']);
    const report = await api.request('POST', `/v1/wallet/transactions/${transactionId}/report`, {
      token,
      body: { reason: 'I did not make this purchase' },
    });
    expect(report.status).toBe(201);
    expect(report.body).toEqual({ reportId: expect.any(String) });
    expect((await api.request('GET', '/v1/wallet', { token })).body.locked).toBe(true);
  });
});

describe('expiry', () => {
  it('fails a recharge pending for 24 hours and cancels its PaymentIntent', async () => {
    const token = await tokenFor('forgetful');
    const { rechargeId, payment } = await buy(token, 'coins_500');
    // Age it: the sweep finds pending recharges by creation time in the byStatus index.
    const longAgo = new Date(Date.now() - 25 * 60 * 60 * 1000).toISOString();
    await store.transactWrite([
      store.update('age', keys.recharge(rechargeId), {
        expression: 'SET statusSk = :sk',
        values: { ':sk': `${longAgo}#${rechargeId}` },
      }),
    ]);
    await stack.runSchedule('ExpireRecharges');
    expect((await api.request('GET', `/v1/recharges/${rechargeId}`, { token })).body.status).toBe('failed');
    expect((await api.request('GET', '/v1/wallet', { token })).body.budget.spentThisMonth.amount).toBe(0);
    // The PaymentIntent is cancelled at the stand-in: paying it now is refused.
    const late = await api.request('POST', `/dev/payments/${payment.paymentIntentId}/succeed`);
    expect(late.status).toBe(400);
    expect((await api.request('GET', '/v1/wallet', { token })).body.coins).toBe(0);
  });
});
