import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startLocalStack, type LocalStack } from '../../infra/local/stack';
import { keys } from '../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { newId } from '../../shared/adapters/ids';
import { SqsPayoutQueue } from '../../shared/adapters/payout-queue';
import { logger } from '../../shared/logger';
import { apiClient, expectBooksBalance, RecordingSocket, type ApiClient } from '../support/local-stack';
import { seedDiamonds } from './usecases/payout-fixtures';

/**
 * Creator payouts end to end on the local stack: HTTP API, the payments stand-in (accounts,
 * onboarding, transfers), fauxqs with the worker's event source mapping, the sweeper schedule,
 * WebSocket wallet pushes, and a restart of the whole stack on the same data.
 */

/** docs/API.md: locally a payout is paid within 10 seconds. */
const PAID_WITHIN_MS = 10_000;
const POLL_MS = 100;

const dataDir = mkdtempSync(join(tmpdir(), 'payouts-it-'));
const tablePrefix = `t${randomBytes(4).toString('hex')}-`;
/** The sweeper re-sends a `requested` payout after 1 s here, so the outbox test needs no long wait. */
const env = {
  LOG_LEVEL: 'SILENT',
  PAYOUT_SWEEP_REQUESTED_AFTER_SECONDS: '1',
  PAYOUT_SWEEP_PROCESSING_AFTER_SECONDS: '2',
};

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;

function start(): Promise<LocalStack> {
  const dynamoEndpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!dynamoEndpoint) throw new Error('TEST_DYNAMODB_ENDPOINT is not set: run the tests with jest');
  // The same data folder and tables on every start: a restart keeps the ledger and the stand-in's state.
  return startLocalStack({ dataDir, dynamoEndpoint, persistDynamo: false, httpPort: 0, wsPort: 0, tablePrefix, env });
}

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  stack = await start();
  api = apiClient(stack.httpUrl);
  dynamo = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
  });
  store = new DynamoLedgerStore(dynamo, stack.tableNames.ledger);
});
afterAll(async () => {
  await stack.stop();
  dynamo.destroy();
});
afterEach(() => jest.restoreAllMocks());

async function until<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = PAID_WITHIN_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

let sequence = 0;
function creatorId(): string {
  sequence += 1;
  return `creator-${sequence}-${randomBytes(3).toString('hex')}`;
}

/** A creator with diamonds and an onboarded account, through the API and the stand-in. */
async function readyCreator(diamonds: number): Promise<{ userId: string; token: string; accountId: string }> {
  const userId = creatorId();
  const token = await api.token({ sub: userId, birthdate: '1990-01-01', country: 'US' });
  await seedDiamonds(store, userId, diamonds);
  const account = await api.request('POST', '/v1/creator/payout-account', { token });
  expect(account.status).toBe(201);
  await stack.payments.completeOnboarding(account.body.accountId);
  await until(
    'payouts enabled',
    () => api.request('GET', '/v1/creator/payout-account', { token }),
    (answer) => answer.body?.payoutsEnabled === true,
  );
  return { userId, token, accountId: account.body.accountId };
}

const payoutRequest = (api: ApiClient, token: string, diamonds: unknown, key = `k-${randomBytes(6).toString('hex')}`) =>
  api.request('POST', '/v1/payouts', { token, body: { diamonds }, headers: { 'idempotency-key': key } });

const statusOf = (api: ApiClient, token: string, payoutId: string) =>
  api.request('GET', `/v1/payouts/${payoutId}`, { token });

describe('creator payouts on the local stack', () => {
  it('links an account through onboarding, pays 2,000 diamonds within seconds with exact balances, and pushes the wallet', async () => {
    const userId = creatorId();
    const token = await api.token({ sub: userId, birthdate: '1990-01-01', country: 'US' });
    await seedDiamonds(store, userId, 3_000);
    await seedDiamonds(store, userId, 2_000);

    expect((await api.request('GET', '/v1/creator/payout-account', { token })).status).toBe(404);
    const created = await api.request('POST', '/v1/creator/payout-account', { token });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      accountId: expect.stringMatching(/^acct_/),
      onboardingUrl: expect.stringMatching(/^http/),
      payoutsEnabled: false,
    });
    const again = await api.request('POST', '/v1/creator/payout-account', { token });
    expect(again.body.accountId).toBe(created.body.accountId);

    // Not onboarded yet: no payout.
    const early = await payoutRequest(api, token, 2_000);
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('PAYOUT_ACCOUNT_MISSING');

    // Opening the link completes onboarding; the stand-in sends account.updated to our webhook.
    const page = await fetch(created.body.onboardingUrl);
    expect(page.status).toBe(200);
    const linked = await until(
      'account.updated',
      () => api.request('GET', '/v1/creator/payout-account', { token }),
      (answer) => answer.body?.payoutsEnabled === true,
    );
    expect(linked.body).toEqual({ accountId: created.body.accountId, payoutsEnabled: true });

    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${token}`);
    try {
      const key = 'payout-1';
      const requested = await payoutRequest(api, token, 2_000, key);
      expect(requested.status).toBe(202);
      expect(requested.body).toEqual({
        payoutId: expect.any(String),
        status: 'requested',
        diamonds: 2_000,
        amount: { amount: 1_000, currency: 'USD' },
      });
      const { payoutId } = requested.body;
      const replay = await payoutRequest(api, token, 2_000, key);
      expect(replay).toMatchObject({ status: 202, body: requested.body });

      const paid = await until(
        'paid',
        () => statusOf(api, token, payoutId),
        (answer) => answer.body?.status === 'paid',
      );
      expect(paid.body).toMatchObject({
        payoutId,
        status: 'paid',
        diamonds: 2_000,
        amount: { amount: 1_000, currency: 'USD' },
      });

      const wallet = await api.request('GET', '/v1/wallet', { token });
      expect(wallet.body).toMatchObject({ diamonds: 3_000, pendingDiamonds: 0 });
      const transactions = await api.request('GET', '/v1/wallet/transactions?limit=10', { token });
      const payoutEntries = transactions.body.items.filter((item: { type: string }) => item.type.startsWith('payout_'));
      expect(
        payoutEntries.map((item: { type: string; diamonds: number; pendingDiamonds: number }) => [
          item.type,
          item.diamonds,
          item.pendingDiamonds,
        ]),
      ).toEqual([
        ['payout_paid', 0, -2_000],
        ['payout_requested', -2_000, 2_000],
      ]);

      const transfers = stack.payments.transfers().filter((transfer) => transfer.transfer_group === payoutId);
      expect(transfers).toEqual([
        expect.objectContaining({
          amount: 1_000,
          currency: 'usd',
          destination: created.body.accountId,
          metadata: { payoutId, userId },
        }),
      ]);
      await socket.waitFor((messages) =>
        messages.some((message) => message.type === 'wallet' && message.pendingDiamonds === 0),
      );
      expect(
        socket
          .messages()
          .filter((message) => message.type === 'wallet')
          .pop(),
      ).toEqual({ type: 'wallet', coins: 0, diamonds: 3_000, pendingDiamonds: 0 });
    } finally {
      await socket.close();
    }

    const list = await api.request('GET', '/v1/payouts', { token });
    expect(list.status).toBe(200);
    expect(list.body.items.map((item: { status: string }) => item.status)).toEqual(['paid']);
    expect(list.body.nextCursor).toBeNull();
    const stranger = await api.token({ sub: 'stranger', birthdate: '1990-01-01', country: 'US' });
    expect((await statusOf(api, stranger, list.body.items[0].payoutId)).status).toBe(404);
  });

  it('refuses bad requests with the contract codes, in its order', async () => {
    const { token } = await readyCreator(3_000);
    const noKey = await api.request('POST', '/v1/payouts', { token, body: { diamonds: 2_000 } });
    expect(noKey.body.error.code).toBe('IDEMPOTENCY_KEY_REQUIRED');
    for (const bad of ['2000', 2_000.5, -1, 0, null]) {
      const refused = await payoutRequest(api, token, bad);
      expect([refused.status, refused.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    }
    for (const [diamonds, status, code] of [
      [1_999, 422, 'BELOW_MINIMUM_PAYOUT'],
      [2_001, 422, 'BELOW_MINIMUM_PAYOUT'],
      [200_002, 409, 'PAYOUT_LIMIT_EXCEEDED'],
      [4_000, 409, 'INSUFFICIENT_DIAMONDS'],
    ] as const) {
      const refused = await payoutRequest(api, token, diamonds);
      expect([diamonds, refused.status, refused.body.error.code]).toEqual([diamonds, status, code]);
    }
    const minor = await api.token({
      sub: 'young-creator',
      birthdate: `${new Date().getUTCFullYear() - 16}-01-01`,
      country: 'US',
      parentalConsent: true,
    });
    const young = await payoutRequest(api, minor, 2_000);
    expect([young.status, young.body.error.code]).toEqual([403, 'AGE_RESTRICTED']);
    expect((await api.request('GET', '/v1/payouts/po_nope', { token })).status).toBe(404);
    expect((await api.request('GET', '/v1/payouts?cursor=bogus', { token })).status).toBe(400);
  });

  it('SendMessage failing after the commit: the sweeper sends it and it is paid', async () => {
    const { userId, token } = await readyCreator(2_000);
    const send = jest
      .spyOn(SqsPayoutQueue.prototype, 'send')
      .mockRejectedValueOnce(new Error('SQS unavailable (injected)'));
    const requested = await payoutRequest(api, token, 2_000);
    expect(requested.status).toBe(202);
    expect(send).toHaveBeenCalledTimes(1);
    send.mockRestore();
    // The commit happened, the message did not: the payout waits in `requested`.
    expect((await store.getItem(keys.payout(requested.body.payoutId), { consistent: true }))?.status).toBe('requested');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await stack.runSchedule('SweepPayouts');
    await until(
      'paid',
      () => statusOf(api, token, requested.body.payoutId),
      (answer) => answer.body?.status === 'paid',
    );
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 0, pendingDiamonds: 0 });
    expect(
      stack.payments.transfers().filter((transfer) => transfer.transfer_group === requested.body.payoutId),
    ).toHaveLength(1);
  });

  it('survives a crash: payouts left requested, or processing with the transfer made, are paid once after the restart', async () => {
    const lost = await readyCreator(2_000);
    const midway = await readyCreator(2_000);
    // One payout never reaches the queue (the crash came right after its commit)...
    jest.spyOn(SqsPayoutQueue.prototype, 'send').mockRejectedValue(new Error('the process died'));
    const lostPayout = (await payoutRequest(api, lost.token, 2_000)).body.payoutId as string;
    // ...and one got as far as the transfer: marked processing, transferred at the stand-in, not settled.
    const midwayPayout = (await payoutRequest(api, midway.token, 2_000)).body.payoutId as string;
    jest.restoreAllMocks();
    const { StripeConnectPayouts } = await import('../../shared/adapters/stripe-connect');
    const { processPayout } = await import('../../shared/usecases/payouts');
    const dying = new StripeConnectPayouts();
    const realTransfer = dying.createTransfer.bind(dying);
    dying.createTransfer = async (request) => {
      await realTransfer(request);
      throw new Error('killed after the transfer');
    };
    await expect(processPayout({ store, connect: dying, now: () => new Date(), newId }, midwayPayout)).rejects.toThrow(
      'killed',
    );
    expect((await store.getItem(keys.payout(midwayPayout), { consistent: true }))?.status).toBe('processing');

    await stack.stop();
    const restartedAt = Date.now();
    stack = await start();
    api = apiClient(stack.httpUrl);

    // The schedule's own timer runs the sweeper; no help from the test.
    for (const [creator, payoutId] of [
      [lost, lostPayout],
      [midway, midwayPayout],
    ] as const) {
      await until(
        'paid after the restart',
        () => statusOf(api, creator.token, payoutId),
        (answer) => answer.body?.status === 'paid',
        60_000,
      );
      expect(stack.payments.transfers().filter((transfer) => transfer.transfer_group === payoutId)).toHaveLength(1);
      expect(await store.readWallet(creator.userId, { consistent: true })).toMatchObject({
        diamonds: 0,
        pendingDiamonds: 0,
      });
    }
    expect(Date.now() - restartedAt).toBeLessThan(60_000);
  }, 120_000);

  it('keeps the books balanced (reconcile)', async () => {
    const report = await expectBooksBalance(stack);
    expect(report.totals.diamondsPaidOut).toBeGreaterThanOrEqual(2_000 * 4);
  });
});
