import { randomBytes } from 'node:crypto';
import type { LocalStack } from '../../infra/local/stack';
import { apiClient, expectBooksBalance, startTestStack, type ApiClient } from '../support/local-stack';

/**
 * Issue 13, parts 1, 4 and 6 over real HTTP: operators create, list and end offers, each change
 * in the audit trail; the catalog shows them; a recharge keeps its offer's terms; a first-recharge
 * offer is granted once, also to two requests at the same moment, and released on cancellation;
 * bonus coins are their own entry and the books balance; bad input changes nothing.
 */
let stack: LocalStack;
let api: ApiClient;
let operator: string;

beforeAll(async () => {
  stack = await startTestStack();
  api = apiClient(stack.httpUrl);
  operator = await api.token({ sub: 'op-offers', groups: ['operators'] });
});
afterAll(async () => {
  await stack.stop();
});

const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();
const key = () => `k-${randomBytes(6).toString('hex')}`;

async function buyer(sub: string, country = 'US'): Promise<string> {
  return api.token({ sub, birthdate: '1990-01-01', country });
}

async function createOffer(body: Record<string, unknown>) {
  const created = await api.request('POST', '/v1/operator/offers', { token: operator, body });
  if (created.status !== 201) throw new Error(`offer: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body as { offerId: string; endsAt: string };
}

async function recharge(token: string, body: Record<string, unknown>, idempotencyKey = key()) {
  return api.request('POST', '/v1/recharges', { token, body, headers: { 'idempotency-key': idempotencyKey } });
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

const wallet = async (token: string) => (await api.request('GET', '/v1/wallet', { token })).body;
const history = async (token: string) =>
  (await api.request('GET', '/v1/wallet/transactions', { token })).body.items as Array<{
    type: string;
    coins: number;
    owedCoins: number;
    ref: Record<string, unknown>;
  }>;
const pay = (paymentIntentId: string) => api.request('POST', `/dev/payments/${paymentIntentId}/succeed`);

test('a discount offer: in the catalog with its end, charged at its price, ended by an operator, all audited', async () => {
  const endsAt = inMinutes(60);
  const offer = await createOffer({
    packageId: 'coins_1000',
    kind: 'discount',
    discountPercent: 2,
    countries: ['US'],
    endsAt,
  });
  const us = (await api.request('GET', '/v1/packages?country=US')).body;
  const listed = us.packages.find((pkg: { id: string }) => pkg.id === 'coins_1000');
  expect(listed).toEqual({
    id: 'coins_1000',
    coins: 1000,
    price: { amount: 1149, currency: 'USD' },
    offer: {
      offerId: offer.offerId,
      kind: 'discount',
      price: { amount: 1149 - 22, currency: 'USD' },
      bonusCoins: 0,
      endsAt,
      firstRechargeOnly: false,
    },
  });
  // Another country's catalog does not show it.
  const de = (await api.request('GET', '/v1/packages?country=DE')).body;
  expect(de.packages.find((pkg: { id: string }) => pkg.id === 'coins_1000').offer).toBeUndefined();

  const token = await buyer('disc-buyer');
  const created = await recharge(token, { packageId: 'coins_1000', offerId: offer.offerId, method: 'card' });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ coins: 1000, bonusCoins: 0, offerId: offer.offerId, price: { amount: 1127 } });
  expect(created.body.breakdown.discount).toEqual({ amount: 22, currency: 'USD' });

  // Ended meanwhile: the open recharge keeps its terms; new ones are refused.
  const ended = await api.request('POST', `/v1/operator/offers/${offer.offerId}/end`, { token: operator });
  expect(ended.status).toBe(200);
  expect(ended.body.endedAt).toEqual(expect.any(String));
  const late = await recharge(token, { packageId: 'coins_1000', offerId: offer.offerId });
  expect([late.status, late.body.error.code]).toEqual([409, 'OFFER_UNAVAILABLE']);
  expect((await pay(created.body.payment.paymentIntentId)).status).toBe(200);
  await waitUntil(
    () => wallet(token),
    (body) => body.coins === 1000,
  );
  expect((await wallet(token)).budget.spentThisMonth).toEqual({ amount: 1127, currency: 'USD' });

  const audit = (await api.request('GET', '/v1/operator/audit?limit=100', { token: operator })).body.items;
  const mine = audit.filter((record: { target: string }) => record.target === `offer:${offer.offerId}`);
  expect(mine.map((record: { action: string; operatorId: string }) => [record.action, record.operatorId])).toEqual([
    ['offer.end', 'op-offers'],
    ['offer.create', 'op-offers'],
  ]);
  expect(mine[1].details).toMatchObject({ packageId: 'coins_1000', discountPercent: 2, endsAt });
  const listedByOperator = await api.request('GET', '/v1/operator/offers', { token: operator });
  expect(listedByOperator.body.items.map((item: { offerId: string }) => item.offerId)).toContain(offer.offerId);
});

test('a first-recharge bonus: granted once to two requests at once, credited as its own entry, refunded in proportion', async () => {
  const offer = await createOffer({
    packageId: 'coins_10000',
    kind: 'bonus',
    bonusCoins: 1000,
    firstRechargeOnly: true,
    endsAt: inMinutes(60),
  });
  const token = await buyer('bonus-buyer');
  const racing = await Promise.all(
    [1, 2, 3].map(() => recharge(token, { packageId: 'coins_10000', offerId: offer.offerId })),
  );
  const statuses = racing.map((answer) => answer.status).sort();
  expect(statuses).toEqual([201, 409, 409]);
  for (const refused of racing.filter((answer) => answer.status === 409))
    expect(refused.body.error.code).toBe('OFFER_UNAVAILABLE');
  const won = racing.find((answer) => answer.status === 201)?.body;
  expect(won).toMatchObject({ coins: 10000, bonusCoins: 1000, price: { amount: 10999 } });
  // Only the winner counts toward the month.
  expect((await wallet(token)).budget.spentThisMonth.amount).toBe(10999);

  expect((await pay(won.payment.paymentIntentId)).status).toBe(200);
  await waitUntil(
    () => wallet(token),
    (body) => body.coins === 11000,
  );
  const entries = await history(token);
  expect(entries.map((entry) => [entry.type, entry.coins]).sort()).toEqual([
    ['recharge', 10000],
    ['recharge_bonus', 1000],
  ]);
  // Used: no second first-recharge offer, even after the first is paid.
  const again = await recharge(token, { packageId: 'coins_10000', offerId: offer.offerId });
  expect([again.status, again.body.error.code]).toEqual([409, 'OFFER_UNAVAILABLE']);

  // A quarter refunded: a quarter of the base and a quarter of the bonus come back.
  const quarter = Math.floor(10999 / 4);
  const refund = await api.request('POST', `/dev/payments/${won.payment.paymentIntentId}/refund`, {
    body: { amount: quarter },
  });
  expect(refund.status).toBe(200);
  const expected = Math.floor((10000 * quarter) / 10999) + Math.floor((1000 * quarter) / 10999);
  await waitUntil(
    () => wallet(token),
    (body) => body.coins === 11000 - expected,
  );
  const chargeback = (await history(token)).find((entry) => entry.type === 'chargeback');
  expect(chargeback?.ref).toMatchObject({
    coinsClaimed: expected,
    bonusCoinsClaimed: Math.floor((1000 * quarter) / 10999),
  });
  const report = await expectBooksBalance(stack);
  expect(report.totals.bonusCoinsMinted).toBeGreaterThanOrEqual(1000);
});

test('a first-recharge offer is released when its recharge is cancelled, and then granted to the next', async () => {
  const offer = await createOffer({
    packageId: 'coins_5000',
    kind: 'bonus',
    bonusCoins: 100,
    firstRechargeOnly: true,
    countries: ['GB'],
    endsAt: inMinutes(60),
  });
  const token = await buyer('released-buyer', 'GB');
  const first = await recharge(token, { packageId: 'coins_5000', offerId: offer.offerId });
  expect(first.status).toBe(201);
  expect((await recharge(token, { packageId: 'coins_5000', offerId: offer.offerId })).status).toBe(409);
  expect((await api.request('POST', `/dev/payments/${first.body.payment.paymentIntentId}/cancel`)).status).toBe(200);
  const second = await waitUntil(
    () => recharge(token, { packageId: 'coins_5000', offerId: offer.offerId }),
    (answer) => answer.status === 201,
  );
  expect(second.body).toMatchObject({ bonusCoins: 100, price: { amount: 4699, currency: 'GBP' } });
  // Not in another country.
  const us = await recharge(await buyer('us-buyer'), { packageId: 'coins_5000', offerId: offer.offerId });
  expect([us.status, us.body.error.code]).toEqual([409, 'OFFER_UNAVAILABLE']);
});

test('operators only; offers that break the per-coin order, overlap, or are malformed are refused and change nothing', async () => {
  const viewer = await buyer('not-an-operator');
  const before = (await api.request('GET', '/v1/operator/offers', { token: operator })).body.items.length;
  // Up to 14 bonus coins keep 500 coins dearer per coin than 1,000 in every currency (GBP is the tightest).
  const good = { packageId: 'coins_500', kind: 'bonus', bonusCoins: 14, endsAt: inMinutes(30) };
  const forbidden = await api.request('POST', '/v1/operator/offers', { token: viewer, body: good });
  expect([forbidden.status, forbidden.body.error.code]).toEqual([403, 'FORBIDDEN']);
  expect((await api.request('GET', '/v1/operator/offers', { token: viewer })).status).toBe(403);
  expect((await api.request('POST', '/v1/operator/offers/of_x/end', { token: viewer })).status).toBe(403);

  const refusals: Array<Record<string, unknown>> = [
    // 15 bonus coins on 500 would make 515 coins for 4.99 GBP: cheaper per coin than 1,000 for 9.69.
    { ...good, bonusCoins: 15 },
    { packageId: 'coins_100', kind: 'discount', discountPercent: 20, endsAt: inMinutes(30) },
    { ...good, endsAt: new Date(Date.now() - 1000).toISOString() },
    { ...good, countries: ['JP'] },
    { ...good, packageId: 'coins_7' },
    { ...good, kind: 'discount' },
    { ...good, endsAt: inMinutes(60 * 24 * 91) },
  ];
  for (const body of refusals) {
    const refused = await api.request('POST', '/v1/operator/offers', { token: operator, body });
    expect([refused.status, refused.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
  }
  const accepted = await createOffer(good);
  const overlapping = await api.request('POST', '/v1/operator/offers', {
    token: operator,
    body: { ...good, countries: ['US'] },
  });
  expect([overlapping.status, overlapping.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
  expect((await api.request('GET', '/v1/operator/offers', { token: operator })).body.items.length).toBe(before + 1);
  expect((await api.request('POST', '/v1/operator/offers/of_unknown/end', { token: operator })).status).toBe(404);

  // Bad input on the buyer's side: an offer for another package, and one not started yet.
  const token = await buyer('offer-misuser');
  const wrongPackage = await recharge(token, { packageId: 'coins_1000', offerId: accepted.offerId });
  expect([wrongPackage.status, wrongPackage.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
  const future = await createOffer({
    packageId: 'coins_5000',
    kind: 'discount',
    discountPercent: 1,
    countries: ['FR'],
    startsAt: inMinutes(30),
    endsAt: inMinutes(90),
  });
  const early = await recharge(await buyer('fr-buyer', 'FR'), { packageId: 'coins_5000', offerId: future.offerId });
  expect([early.status, early.body.error.code]).toEqual([409, 'OFFER_UNAVAILABLE']);
  expect(await wallet(token)).toMatchObject({ coins: 0, budget: { spentThisMonth: { amount: 0 } } });
  await expectBooksBalance(stack);
});
