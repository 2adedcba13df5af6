import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import type { LocalStack } from '../../infra/local/stack';
import { keys } from '../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { reconcileLedger } from '../../shared/ops/reconcile';
import { readRecharge } from '../../shared/usecases/recharge';
import { apiClient, startTestStack, type ApiClient } from '../support/local-stack';
import { ADULT, goLive, ledgerFor } from '../support/ledger';

/**
 * Disputes over real HTTP: the payments stand-in disputes part of a charge and closes the
 * dispute as the card network decides, with signed webhooks into the local stack. And events
 * from Stripe's other mode, acknowledged and ignored. The books must balance at the end.
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
  try {
    const report = await reconcileLedger(dynamo, stack.tableNames.ledger);
    if (!report.ok) throw new Error(`the books do not balance:\n${report.discrepancies.join('\n')}`);
  } finally {
    dynamo.destroy();
    await stack.stop();
  }
});

interface WalletBody {
  coins: number;
  owedCoins: number;
  locked: boolean;
}
interface HistoryItem {
  type: string;
  coins: number;
  owedCoins: number;
}

async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const wallet = async (token: string): Promise<WalletBody> =>
  (await api.request('GET', '/v1/wallet', { token })).body as WalletBody;
const waitForWallet = (token: string, done: (body: WalletBody) => boolean) => waitUntil(() => wallet(token), done);
async function history(token: string): Promise<Array<[string, number, number]>> {
  const response = await api.request('GET', '/v1/wallet/transactions', { token });
  return (response.body.items as HistoryItem[]).map((item) => [item.type, item.coins, item.owedCoins]);
}

/** A paid coins_500 (5.99 USD) recharge, credited. */
async function paidRecharge(userId: string): Promise<{ token: string; rechargeId: string; paymentIntentId: string }> {
  const token = await api.token({ sub: userId, ...ADULT });
  const created = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId: 'coins_500' },
    headers: { 'idempotency-key': `buy-${userId}` },
  });
  expect([created.status, created.body.price]).toEqual([201, { amount: 599, currency: 'USD' }]);
  const paymentIntentId = String(created.body.payment.paymentIntentId);
  expect((await api.request('POST', `/dev/payments/${paymentIntentId}/succeed`)).status).toBe(200);
  await waitForWallet(token, (body) => body.coins === 500);
  return { token, rechargeId: String(created.body.rechargeId), paymentIntentId };
}

/** Posts an event to the webhook route signed with the stack's secret, as Stripe signs it. */
async function postEvent(event: unknown) {
  const payload = JSON.stringify(event);
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: String(process.env.STRIPE_WEBHOOK_SECRET),
  });
  return api.request('POST', '/v1/webhooks/stripe', {
    rawBody: payload,
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
  });
}

const stripeEvent = (type: string, object: Record<string, unknown>, livemode = false) => ({
  id: `evt_${randomBytes(8).toString('hex')}`,
  object: 'event',
  api_version: Stripe.API_VERSION,
  created: Math.floor(Date.now() / 1000),
  livemode,
  type,
  data: { object },
});

describe('a partial dispute, then won', () => {
  it('takes back floor(500 * 300 / 599) = 250 coins, gives the same 250 back once when won, and keeps the wallet locked', async () => {
    const { token, rechargeId, paymentIntentId } = await paidRecharge('partial-won');

    const disputed = await api.request('POST', `/dev/payments/${paymentIntentId}/dispute`, { body: { amount: 300 } });
    expect(disputed.status).toBe(200);
    expect(await waitForWallet(token, (body) => body.locked)).toMatchObject({ coins: 250, owedCoins: 0, locked: true });
    const recharge = await readRecharge(store, rechargeId);
    const disputeIds = Object.keys(recharge?.disputes ?? {});
    expect(recharge).toMatchObject({ status: 'disputed', clawedCoins: 250 });
    expect(disputeIds).toHaveLength(1);
    expect(recharge?.disputes[disputeIds[0] as string]).toBe(300);

    const won = await api.request('POST', `/dev/payments/${paymentIntentId}/win-dispute`);
    expect(won.status).toBe(200);
    expect(await waitForWallet(token, (body) => body.coins === 500)).toMatchObject({
      coins: 500,
      owedCoins: 0,
      locked: true,
    });

    // Stripe's retry of the same event, and the same closing under a new event id: nothing more.
    const again = await api.request('POST', `/dev/payments/${paymentIntentId}/win-dispute`);
    expect([again.status, again.body.eventId]).toEqual([200, won.body.eventId]);
    const closedAgain = stripeEvent('charge.dispute.closed', {
      id: disputeIds[0],
      object: 'dispute',
      amount: 300,
      status: 'won',
      charge: `ch_${paymentIntentId}`,
      payment_intent: paymentIntentId,
    });
    expect([(await postEvent(closedAgain)).status]).toEqual([200]);

    expect(await wallet(token)).toMatchObject({ coins: 500, owedCoins: 0, locked: true });
    expect(await history(token)).toEqual([
      ['dispute_won', 250, 0],
      ['chargeback', -250, 0],
      ['recharge', 500, 0],
    ]);
    expect(await readRecharge(store, rechargeId)).toMatchObject({
      clawedCoins: 0,
      wonDisputes: { [disputeIds[0] as string]: true },
    });
    // Won or not, a dispute lock is lifted by support, never by the owner.
    const unlock = await api.request('PUT', '/v1/wallet/lock', { token, body: { locked: false } });
    expect([unlock.status, unlock.body.error.code]).toEqual([423, 'WALLET_LOCKED']);
  });

  it('refuses a dispute larger than the charge and changes nothing', async () => {
    const { token, paymentIntentId } = await paidRecharge('partial-too-large');
    const refused = await api.request('POST', `/dev/payments/${paymentIntentId}/dispute`, { body: { amount: 600 } });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.status).toBeLessThan(500);
    expect(await wallet(token)).toMatchObject({ coins: 500, owedCoins: 0, locked: false });
  });

  it('forgives the debt first when the disputed coins were already spent', async () => {
    const { token, paymentIntentId } = await paidRecharge('partial-spent');
    const { streamId } = await goLive(api, 'partial-spent-creator');
    const gift = await api.request('POST', `/v1/streams/${streamId}/gifts`, {
      token,
      body: { giftId: 'heart', quantity: 80 },
      headers: { 'idempotency-key': 'spend-400' },
    });
    expect(gift.status).toBe(201);
    expect(await wallet(token)).toMatchObject({ coins: 100 });

    // 250 claimed: the 100 left are taken, 150 owed.
    expect(
      (await api.request('POST', `/dev/payments/${paymentIntentId}/dispute`, { body: { amount: 300 } })).status,
    ).toBe(200);
    expect(await waitForWallet(token, (body) => body.locked)).toMatchObject({ coins: 0, owedCoins: 150, locked: true });

    // Won: of the 250 given back, 150 forgive the debt and 100 return to the balance.
    expect((await api.request('POST', `/dev/payments/${paymentIntentId}/win-dispute`)).status).toBe(200);
    expect(await waitForWallet(token, (body) => body.owedCoins === 0)).toMatchObject({
      coins: 100,
      owedCoins: 0,
      locked: true,
    });
    expect((await api.request('POST', `/dev/payments/${paymentIntentId}/win-dispute`)).status).toBe(200);
    expect(await wallet(token)).toMatchObject({ coins: 100, owedCoins: 0, locked: true });
    expect(await history(token)).toEqual([
      ['dispute_won', 100, -150],
      ['chargeback', -100, 150],
      ['gift_sent', -400, 0],
      ['recharge', 500, 0],
    ]);
  });

  it('gives nothing back for a lost dispute', async () => {
    const { token, paymentIntentId } = await paidRecharge('partial-lost');
    expect(
      (await api.request('POST', `/dev/payments/${paymentIntentId}/dispute`, { body: { amount: 100 } })).status,
    ).toBe(200);
    // floor(500 * 100 / 599) = 83
    expect(await waitForWallet(token, (body) => body.locked)).toMatchObject({ coins: 417, owedCoins: 0 });
    expect((await api.request('POST', `/dev/payments/${paymentIntentId}/lose-dispute`)).status).toBe(200);
    expect(await wallet(token)).toMatchObject({ coins: 417, owedCoins: 0, locked: true });
    expect((await history(token)).map(([type]) => type)).toEqual(['chargeback', 'recharge']);
  });
});

describe('events from the other Stripe mode', () => {
  it('acknowledges a signed live-mode event with 200 and changes nothing; the same id in test mode still credits', async () => {
    const token = await api.token({ sub: 'live-mismatch', ...ADULT });
    const created = await api.request('POST', '/v1/recharges', {
      token,
      body: { packageId: 'coins_500' },
      headers: { 'idempotency-key': 'live-mismatch' },
    });
    expect(created.status).toBe(201);
    const { rechargeId, payment } = created.body as { rechargeId: string; payment: { paymentIntentId: string } };
    const paymentIntent = {
      id: payment.paymentIntentId,
      object: 'payment_intent',
      amount: 599,
      currency: 'usd',
      status: 'succeeded',
      metadata: { rechargeId },
    };
    const live = stripeEvent('payment_intent.succeeded', paymentIntent, true);

    const answer = await postEvent(live);
    expect([answer.status, answer.body]).toEqual([200, { received: true }]);
    expect(await wallet(token)).toMatchObject({ coins: 0, owedCoins: 0, locked: false });
    expect((await api.request('GET', `/v1/recharges/${rechargeId}`, { token })).body.status).toBe('pending');
    expect(await store.getItem(keys.stripeEvent(live.id), { consistent: true })).toBeUndefined();
    expect(await history(token)).toEqual([]);

    const sameIdTestMode = await postEvent({ ...live, livemode: false });
    expect([sameIdTestMode.status, sameIdTestMode.body]).toEqual([200, { received: true }]);
    expect(await waitForWallet(token, (body) => body.coins === 500)).toMatchObject({ coins: 500, locked: false });
  });
});
