import { randomBytes } from 'node:crypto';
import type { LocalStack } from '../../infra/local/stack';
import { apiClient, expectBooksBalance, startTestStack, type ApiClient } from '../support/local-stack';

/**
 * Issue 13, parts 2, 3 and 6 over real HTTP: the package list says which methods a buyer can use
 * and what each adds; PayPal confirms by redirect through the payments stand-in, end to end, with
 * its failure paths (declined, cancelled at the redirect, succeeded late); the receipt repeats the
 * breakdown; bad input is refused and changes nothing.
 */
let stack: LocalStack;
let api: ApiClient;

beforeAll(async () => {
  stack = await startTestStack();
  api = apiClient(stack.httpUrl);
});
afterAll(async () => {
  await stack.stop();
});

const RETURN_URL = 'http://127.0.0.1:9/after-paypal';

async function tokenFor(sub: string, country = 'US'): Promise<string> {
  return api.token({ sub, birthdate: '1990-01-01', country });
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

async function payWithPaypal(token: string, packageId = 'coins_500') {
  const created = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId, method: 'paypal', returnUrl: RETURN_URL },
    headers: { 'idempotency-key': `pp-${randomBytes(6).toString('hex')}` },
  });
  expect(created.status).toBe(201);
  return created.body as {
    rechargeId: string;
    price: { amount: number; currency: string };
    payment: { paymentIntentId: string; confirmation: string; redirectUrl: string };
  };
}

/** Clicks a button on the stand-in's PayPal page; answers where it sends the customer back to. */
async function clickAtPaypal(redirectUrl: string, action: 'approve' | 'approve-late' | 'cancel'): Promise<URL> {
  const page = await fetch(redirectUrl);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain(`data-action="${action}"`);
  const clicked = await fetch(`${redirectUrl}/${action}`, { method: 'POST', redirect: 'manual' });
  expect(clicked.status).toBe(303);
  return new URL(String(clicked.headers.get('location')));
}

const wallet = async (token: string) => (await api.request('GET', '/v1/wallet', { token })).body;
const recharge = async (token: string, id: string) => (await api.request('GET', `/v1/recharges/${id}`, { token })).body;

test('the package list keeps v1 prices and says which methods a buyer can use, with their fees', async () => {
  const us = await api.request('GET', '/v1/packages?country=us');
  expect(us.status).toBe(200);
  expect(us.body.packages.map((pkg: { id: string; price: { amount: number } }) => [pkg.id, pkg.price.amount])).toEqual([
    ['coins_100', 129],
    ['coins_500', 599],
    ['coins_1000', 1149],
    ['coins_5000', 5599],
    ['coins_10000', 10999],
  ]);
  expect(us.body.platformFee).toBeUndefined();
  expect(us.body.methods).toEqual([
    { method: 'card', confirmation: 'card', fee: { amount: 0, currency: 'USD' } },
    { method: 'paypal', confirmation: 'redirect', fee: { amount: 0, currency: 'USD' } },
  ]);
  const gb = await api.request('GET', '/v1/packages?country=GB');
  expect(gb.body.methods.map((method: { method: string }) => method.method)).toEqual(['card', 'paypal']);
});

test('PayPal end to end: the redirect, approval, the webhook credits, the receipt repeats the breakdown', async () => {
  const token = await tokenFor('pp-buyer');
  const created = await payWithPaypal(token);
  expect(created.price).toEqual({ amount: 599, currency: 'USD' });
  expect(created.payment.confirmation).toBe('redirect');
  expect(created.payment.redirectUrl).toMatch(/\/redirect\/paypal\/pi_/);
  const back = await clickAtPaypal(created.payment.redirectUrl, 'approve');
  expect(`${back.origin}${back.pathname}`).toBe(RETURN_URL);
  expect(back.searchParams.get('redirect_status')).toBe('succeeded');
  expect(back.searchParams.get('payment_intent')).toBe(created.payment.paymentIntentId);
  await waitUntil(
    () => wallet(token),
    (body) => body.coins === 500,
  );
  expect(await recharge(token, created.rechargeId)).toMatchObject({
    status: 'succeeded',
    coins: 500,
    method: 'paypal',
    bonusCoins: 0,
    price: { amount: 599, currency: 'USD' },
    breakdown: {
      coins: { amount: 599, currency: 'USD' },
      discount: { amount: 0, currency: 'USD' },
      platformFee: { amount: 0, currency: 'USD' },
      methodFee: { amount: 0, currency: 'USD' },
      total: { amount: 599, currency: 'USD' },
    },
  });
  await expectBooksBalance(stack);
});

test('PayPal cancelled at the redirect: nothing credited, the recharge shows failed', async () => {
  const token = await tokenFor('pp-canceller');
  const created = await payWithPaypal(token);
  const back = await clickAtPaypal(created.payment.redirectUrl, 'cancel');
  expect(back.searchParams.get('redirect_status')).toBe('failed');
  await waitUntil(
    () => recharge(token, created.rechargeId),
    (body) => body.status === 'failed',
  );
  expect((await wallet(token)).coins).toBe(0);
  // The page is gone once left: a second click changes nothing.
  expect((await fetch(`${created.payment.redirectUrl}/approve`, { method: 'POST', redirect: 'manual' })).status).toBe(
    404,
  );
  expect((await wallet(token)).coins).toBe(0);
});

test('PayPal declined after approval, and PayPal that settles late', async () => {
  const token = await tokenFor('pp-late');
  const late = await payWithPaypal(token, 'coins_100');
  const back = await clickAtPaypal(late.payment.redirectUrl, 'approve-late');
  expect(back.searchParams.get('redirect_status')).toBe('processing');
  // Approved but not settled: still pending, no coins yet.
  expect((await recharge(token, late.rechargeId)).status).toBe('pending');
  expect((await wallet(token)).coins).toBe(0);
  expect((await api.request('POST', `/dev/payments/${late.payment.paymentIntentId}/succeed`)).status).toBe(200);
  await waitUntil(
    () => wallet(token),
    (body) => body.coins === 100,
  );

  const declined = await payWithPaypal(token, 'coins_500');
  expect(
    (await api.request('POST', `/dev/payments/${declined.payment.paymentIntentId}/redirect-approve-late`)).status,
  ).toBe(200);
  expect((await api.request('POST', `/dev/payments/${declined.payment.paymentIntentId}/fail`)).status).toBe(200);
  await waitUntil(
    () => recharge(token, declined.rechargeId),
    (body) => body.status === 'failed',
  );
  expect((await wallet(token)).coins).toBe(100);
  await expectBooksBalance(stack);
});

test('bad input is a clear 4xx and opens no payment: unknown method, no return address, currency mismatch, another total', async () => {
  const token = await tokenFor('pp-bad');
  const cases: Array<[Record<string, unknown>, number, string]> = [
    [{ packageId: 'coins_100', method: 'bitcoin' }, 400, 'VALIDATION_FAILED'],
    [{ packageId: 'coins_100', method: 'paypal', returnUrl: 'javascript:alert(1)' }, 400, 'VALIDATION_FAILED'],
    [{ packageId: 'coins_100', expectedTotal: { amount: 129, currency: 'EUR' } }, 400, 'VALIDATION_FAILED'],
    [{ packageId: 'coins_100', expectedTotal: { amount: 100, currency: 'USD' } }, 409, 'PRICE_CHANGED'],
    [{ packageId: 'coins_100', offerId: 'of_nothing_here' }, 400, 'VALIDATION_FAILED'],
  ];
  for (const [body, status, code] of cases) {
    const refused = await api.request('POST', '/v1/recharges', {
      token,
      body,
      headers: { 'idempotency-key': `bad-${randomBytes(6).toString('hex')}` },
    });
    expect([refused.status, refused.body.error.code]).toEqual([status, code]);
  }
  expect(await wallet(token)).toMatchObject({ coins: 0, budget: { spentThisMonth: { amount: 0 } } });
  const history = await api.request('GET', '/v1/wallet/transactions', { token });
  expect(history.body.items).toEqual([]);
  // The expected total, when it is the one charged, is accepted.
  const accepted = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId: 'coins_100', method: 'card', expectedTotal: { amount: 129, currency: 'USD' } },
    headers: { 'idempotency-key': 'good-total' },
  });
  expect([accepted.status, accepted.body.price.amount, accepted.body.breakdown.total.amount]).toEqual([201, 129, 129]);
});
