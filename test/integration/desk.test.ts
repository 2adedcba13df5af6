import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { LocalStack } from '../../infra/local/stack';
import type { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { readRecharge } from '../../shared/usecases/recharge';
import { apiClient, startTestStack, type ApiClient } from '../support/local-stack';
import { ADULT, closeBalancedBooks, ledgerFor } from '../support/ledger';

/**
 * The support desk over real HTTP: the local issuer makes operators, the payments
 * stand-in refunds through the Stripe SDK and sends its signed `charge.refunded` to the webhook
 * (on its own schedule, so it may land before or after the desk applies the refund). Every desk
 * route is 403 to a non-operator, before its input is read. The books balance at the end.
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
    await closeBalancedBooks(dynamo, stack.tableNames.ledger);
  } finally {
    await stack.stop();
  }
});

async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface WalletBody {
  coins: number;
  owedCoins: number;
  locked: boolean;
}
const wallet = async (token: string): Promise<WalletBody> =>
  (await api.request('GET', '/v1/wallet', { token })).body as WalletBody;

/** A paid, credited coins_500 recharge (500 coins for 5.99 USD), then reported by its owner. */
async function reportedPurchase(userId: string) {
  const token = await api.token({ sub: userId, ...ADULT });
  const created = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId: 'coins_500' },
    headers: { 'idempotency-key': `buy-${userId}` },
  });
  expect(created.status).toBe(201);
  const paymentIntentId = String(created.body.payment.paymentIntentId);
  expect((await api.request('POST', `/dev/payments/${paymentIntentId}/succeed`)).status).toBe(200);
  await waitUntil(
    () => wallet(token),
    (body) => body.coins === 500,
  );
  const history = await api.request('GET', '/v1/wallet/transactions', { token });
  const transactionId = String(history.body.items[0].id);
  const reported = await api.request('POST', `/v1/wallet/transactions/${transactionId}/report`, {
    token,
    body: { reason: 'not me' },
  });
  expect(reported.status).toBe(201);
  return { token, rechargeId: String(created.body.rechargeId), reportId: String(reported.body.reportId) };
}

test('a non-operator gets 403 on every desk route, before its input is read; the owner alone reads a report', async () => {
  const viewer = await api.token({ sub: 'desk-viewer', ...ADULT });
  const member = await api.token({ sub: 'desk-support', ...ADULT, groups: ['support'] });
  const calls: Array<[string, string, unknown?]> = [
    ['GET', '/v1/operator/cases'],
    ['GET', '/v1/operator/cases?limit=0'],
    ['GET', '/v1/operator/cases/rpt_x'],
    ['GET', '/v1/operator/cases/bad%20id'],
    ['POST', '/v1/operator/cases/rpt_x/resolve', { lock: 'lift', note: '', reason: 'x' }],
    ['POST', '/v1/operator/cases/rpt_x/resolve', { lock: 'nonsense' }],
  ];
  for (const token of [viewer, member]) {
    for (const [method, path, body] of calls) {
      const response = await api.request(method, path, {
        token,
        ...(body !== undefined && { body }),
        headers: { 'idempotency-key': 'k' },
      });
      expect([method, path, response.status, response.body.error?.code]).toEqual([method, path, 403, 'FORBIDDEN']);
    }
  }
  expect((await api.request('GET', '/v1/operator/cases')).status).toBe(401);

  const { token, reportId } = await reportedPurchase('desk-owner');
  expect((await api.request('GET', `/v1/wallet/reports/${reportId}`, { token })).body).toMatchObject({
    reportId,
    status: 'open',
    outcome: null,
  });
  const stranger = await api.request('GET', `/v1/wallet/reports/${reportId}`, { token: viewer });
  expect([stranger.status, stranger.body.error.code]).toEqual([404, 'NOT_FOUND']);
});

test('an operator lists, opens and resolves a report: one refund through Stripe, the lock lifted, the reporter told', async () => {
  const operator = await api.token({ sub: 'desk-op', ...ADULT, groups: ['operators'] });
  const { token, rechargeId, reportId } = await reportedPurchase('desk-reporter');
  expect(await wallet(token)).toMatchObject({ coins: 500, locked: true });

  const listed = await waitUntil(
    () => api.request('GET', '/v1/operator/cases?limit=100', { token: operator }),
    (response) => response.body.items.some((item: { caseId: string }) => item.caseId === reportId),
  );
  const createdAts = listed.body.items.map((item: { createdAt: string }) => item.createdAt);
  expect(createdAts).toEqual([...createdAts].sort());

  const opened = await api.request('GET', `/v1/operator/cases/${reportId}`, { token: operator });
  expect(opened.status).toBe(200);
  expect(opened.body).toMatchObject({
    case: { caseId: reportId, kind: 'report', status: 'open' },
    wallet: { coins: 500, owedCoins: 0, locked: true, lockReason: 'owner' },
    transaction: { type: 'recharge', coins: 500 },
    recharges: [{ rechargeId, refundable: true, price: { amount: 599, currency: 'USD' } }],
  });

  // Bad input: 4xx in the contract's shape, and nothing changes.
  const refusals: Array<[Record<string, unknown>, Record<string, string>, number]> = [
    [{ lock: 'lift', note: '', reason: 'x' }, {}, 400],
    [{ lock: 'open', note: '', reason: 'x' }, { 'idempotency-key': 'bad-1' }, 400],
    [
      { lock: 'lift', note: '', reason: 'x', refunds: [{ rechargeId }, { rechargeId }] },
      { 'idempotency-key': 'bad-2' },
      400,
    ],
    [
      { lock: 'lift', note: '', reason: 'x', refunds: [{ rechargeId: 'rc_someone_else' }] },
      { 'idempotency-key': 'bad-3' },
      400,
    ],
  ];
  for (const [body, headers, status] of refusals) {
    const refused = await api.request('POST', `/v1/operator/cases/${reportId}/resolve`, {
      token: operator,
      body,
      headers,
    });
    expect([refused.status, typeof refused.body.error.code, typeof refused.body.error.message]).toEqual([
      status,
      'string',
      'string',
    ]);
  }
  expect(await wallet(token)).toMatchObject({ coins: 500, locked: true });

  const body = { refunds: [{ rechargeId }], lock: 'lift', note: 'verified with the cardholder', reason: 'stolen card' };
  const resolve = () =>
    api.request('POST', `/v1/operator/cases/${reportId}/resolve`, {
      token: operator,
      body,
      headers: { 'idempotency-key': 'resolve-1' },
    });
  const resolved = await resolve();
  expect([resolved.status, resolved.body.status, resolved.body.resolution.lock]).toEqual([200, 'resolved', 'lift']);
  // The refund's charge.refunded arrives on the stand-in's schedule; whichever of it and the desk
  // came first took the coins (refundedMinor is written with them), the other took nothing.
  await waitUntil(
    async () => (await readRecharge(store, rechargeId))?.refundedMinor,
    (refunded) => refunded === 599,
  );
  const replay = await resolve();
  expect(replay.body).toEqual(resolved.body);
  expect(await wallet(token)).toMatchObject({ coins: 0, owedCoins: 0, locked: false });
  const history = await api.request('GET', '/v1/wallet/transactions', { token });
  expect(history.body.items.map((item: { type: string; coins: number }) => [item.type, item.coins])).toEqual([
    ['chargeback', -500],
    ['recharge', 500],
  ]);

  const report = await api.request('GET', `/v1/wallet/reports/${reportId}`, { token });
  expect(report.body).toMatchObject({
    status: 'resolved',
    outcome: { lock: 'lifted', refundedRechargeIds: [rechargeId] },
  });
  const notifications = await api.request('GET', '/v1/notifications', { token });
  expect(notifications.body.items).toEqual([
    expect.objectContaining({
      type: 'report_resolved',
      reportId,
      outcome: { lock: 'lifted', refundedRechargeIds: [rechargeId] },
    }),
  ]);
  const audit = await api.request('GET', '/v1/operator/audit?limit=100', { token: operator });
  expect(audit.body.items.filter((record: { target: string }) => record.target === `case:${reportId}`)).toEqual([
    expect.objectContaining({
      operatorId: 'desk-op',
      action: 'case.resolve',
      details: expect.objectContaining({
        lock: 'lift',
        note: body.note,
        reason: body.reason,
        refunds: [expect.objectContaining({ rechargeId })],
      }),
    }),
  ]);
  const again = await api.request('GET', '/v1/operator/cases?limit=100', { token: operator });
  expect(again.body.items.some((item: { caseId: string }) => item.caseId === reportId)).toBe(false);
});
