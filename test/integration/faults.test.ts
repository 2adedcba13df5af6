import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { startLocalStack, type LocalStack } from '../../infra/local/stack';
import { connectionsStore, dynamoClient } from '../../shared/adapters/clients';
import { CONNECTION_SETTLE_MS } from '../../shared/adapters/dynamo/connections-store';
import { TRANSACTION_RETRY } from '../../shared/adapters/dynamo/ledger-store';
import { POST_RETRY } from '../../shared/adapters/connections-api';
import { logger } from '../../shared/logger';
import { apiClient, expectBooksBalance, RecordingSocket, type ApiClient } from '../support/local-stack';

/*
 * Fault injection at each adapter, on the local stack with the real handlers:
 * - DynamoDB: TransactWriteItems cancelled with TransactionConflict, ThrottlingException, and a
 *   TimeoutError raised AFTER the command was sent (committed, answer lost), through a middleware
 *   on the very client the handlers' DynamoLedgerStore uses; throttling past the retry bound.
 * - SQS: the gift-events nudge refused after the gift committed; the sweeper broadcasts it.
 * - Stripe: 500, 429 and timeouts on PaymentIntent creation (the payments stand-in's faults).
 * - @connections: 429 (retried, the frame arrives) and 410 (only that connection is removed).
 * Every outcome is exact: balances, entries, Stripe objects, and the books balance.
 */

const ADULT = { birthdate: '1990-01-01', country: 'US' };
const WAIT_MS = 10_000;
/** The app's Stripe client gives up on a hanging request after this long here (default 10 s). */
const STRIPE_TIMEOUT_MS = 800;
/** shared/usecases/broadcast.ts: the sweeper only nudges gifts older than SWEEP_MIN_AGE_MS (5 s). */
const SWEEP_MIN_AGE_MS = 5_000;
const FAULT_MIDDLEWARE = 'faultInjection';

const dataDir = mkdtempSync(join(tmpdir(), 'faults-it-'));
let stack: LocalStack;
let api: ApiClient;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  const dynamoEndpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!dynamoEndpoint) throw new Error('TEST_DYNAMODB_ENDPOINT is not set: run the tests with jest');
  stack = await startLocalStack({
    dataDir,
    dynamoEndpoint,
    persistDynamo: false,
    httpPort: 0,
    wsPort: 0,
    tablePrefix: `t${randomBytes(4).toString('hex')}-`,
    // Schedules are run by the test (runSchedule), so a timer never races the assertions.
    schedules: false,
    env: { LOG_LEVEL: 'SILENT', STRIPE_TIMEOUT_MS: String(STRIPE_TIMEOUT_MS) },
  });
  api = apiClient(stack.httpUrl);
});
afterAll(async () => {
  dynamoClient().middlewareStack.remove(FAULT_MIDDLEWARE);
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});
afterEach(() => {
  jest.restoreAllMocks();
  dynamoClient().middlewareStack.remove(FAULT_MIDDLEWARE);
  stack.payments.clearFaults();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value).slice(0, 1000)}`);
    await sleep(100);
  }
}

let sequence = 0;
async function user(prefix: string): Promise<{ userId: string; token: string }> {
  sequence += 1;
  const userId = `${prefix}-${sequence}-${randomBytes(3).toString('hex')}`;
  return { userId, token: await api.token({ sub: userId, ...ADULT }) };
}

async function wallet(token: string): Promise<{ coins: number; diamonds: number; pendingDiamonds: number }> {
  const answer = await api.request('GET', '/v1/wallet', { token });
  expect(answer.status).toBe(200);
  return answer.body;
}

async function entries(token: string): Promise<Array<{ type: string; coins: number; diamonds: number }>> {
  const items: Array<{ type: string; coins: number; diamonds: number }> = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: typeof items; nextCursor: string | null } } = await api.request(
      'GET',
      `/v1/wallet/transactions?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
      { token },
    );
    items.push(...page.body.items);
    cursor = page.body.nextCursor;
  } while (cursor);
  return items;
}

async function fund(token: string, packageId = 'coins_500'): Promise<void> {
  const created = await api.request('POST', '/v1/recharges', {
    token,
    body: { packageId },
    headers: { 'idempotency-key': `fund-${randomBytes(4).toString('hex')}` },
  });
  expect(created.status).toBe(201);
  expect((await api.request('POST', `/dev/payments/${created.body.payment.paymentIntentId}/succeed`)).status).toBe(200);
  await eventually(
    'funded',
    () => wallet(token),
    (current) => current.coins > 0,
  );
}

async function liveStream(): Promise<{ creator: { userId: string; token: string }; streamId: string }> {
  const creator = await user('creator');
  const created = await api.request('POST', '/v1/streams', { token: creator.token, body: { title: 'faults' } });
  expect(created.status).toBe(201);
  return { creator, streamId: String(created.body.streamId) };
}

const gift = (token: string, streamId: string, key: string, quantity = 1) =>
  api.request('POST', `/v1/streams/${streamId}/gifts`, {
    token,
    body: { giftId: 'rose', quantity },
    headers: { 'idempotency-key': key },
  });

type DynamoFault = 'conflict' | 'throttle' | 'timeoutAfterCommit';

/**
 * Fails the next `times` TransactWriteItems that touch `walletPk` (the sender's wallet: the gift's
 * transaction, not the broadcaster's). Added at the initialize step, above the SDK's own retries,
 * so the DynamoLedgerStore's retry loop is what must cope. Returns every ClientRequestToken it saw.
 */
function injectDynamoFault(walletPk: string, kind: DynamoFault, times: number): { tokens: string[] } {
  const seen = { tokens: [] as string[] };
  let remaining = times;
  dynamoClient().middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { TransactItems?: unknown; ClientRequestToken?: string };
      if (
        context.commandName !== 'TransactWriteItemsCommand' ||
        !JSON.stringify(input.TransactItems).includes(`"S":"${walletPk}"`)
      )
        return next(args);
      seen.tokens.push(String(input.ClientRequestToken));
      if (remaining <= 0) return next(args);
      remaining -= 1;
      if (kind === 'conflict') {
        const items = Array.isArray(input.TransactItems) ? input.TransactItems : [];
        throw new TransactionCanceledException({
          message:
            'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict] (injected)',
          $metadata: {},
          CancellationReasons: items.map((_, index) =>
            index === 0
              ? { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' }
              : { Code: 'None' },
          ),
        });
      }
      if (kind === 'throttle')
        throw Object.assign(new Error('Rate of requests exceeds the allowed throughput (injected)'), {
          name: 'ThrottlingException',
          $metadata: {},
        });
      // The command reaches DynamoDB and commits; only the answer is lost on the way back.
      await next(args);
      throw Object.assign(new Error('socket timed out after the request was sent (injected)'), {
        name: 'TimeoutError',
        $metadata: {},
      });
    },
    { step: 'initialize', name: FAULT_MIDDLEWARE },
  );
  return seen;
}

describe('DynamoDB faults on the gift transaction', () => {
  it.each<[DynamoFault, number]>([
    ['conflict', 2],
    ['throttle', 2],
    ['timeoutAfterCommit', 1],
    ['timeoutAfterCommit', 2],
  ])('%s x%i: the gift applies exactly once, retried under one ClientRequestToken', async (kind, times) => {
    const { creator, streamId } = await liveStream();
    const sender = await user('sender');
    await fund(sender.token);
    const before = await wallet(sender.token);

    const seen = injectDynamoFault(`USER#${sender.userId}`, kind, times);
    const answer = await gift(sender.token, streamId, 'fault-gift', 3);
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ coinsSpent: 3, wallet: { coins: before.coins - 3 } });
    // One attempt per fault, then the one that succeeds; every attempt carried the same token.
    expect(seen.tokens).toHaveLength(times + 1);
    expect(new Set(seen.tokens).size).toBe(1);
    dynamoClient().middlewareStack.remove(FAULT_MIDDLEWARE);

    const replay = await gift(sender.token, streamId, 'fault-gift', 3);
    expect(replay.status).toBe(201);
    expect(replay.body.giftTxId).toBe(answer.body.giftTxId);
    expect((await wallet(sender.token)).coins).toBe(before.coins - 3);
    expect((await entries(sender.token)).filter((entry) => entry.type === 'gift_sent')).toEqual([
      expect.objectContaining({ coins: -3 }),
    ]);
    expect((await wallet(creator.token)).diamonds).toBe(3);
    expect((await entries(creator.token)).filter((entry) => entry.type === 'gift_received')).toEqual([
      expect.objectContaining({ diamonds: 3 }),
    ]);
    await expectBooksBalance(stack);
  });

  it('throttling that outlasts the retry bound fails the request after a bounded number of attempts, moves nothing, and the same key then succeeds once', async () => {
    const { creator, streamId } = await liveStream();
    const sender = await user('sender');
    await fund(sender.token);
    const before = await wallet(sender.token);

    const seen = injectDynamoFault(`USER#${sender.userId}`, 'throttle', 1_000);
    const started = Date.now();
    const failed = await gift(sender.token, streamId, 'throttled-gift', 2);
    expect(failed.status).toBe(500);
    expect(failed.body.error).toMatchObject({ code: 'INTERNAL', correlationId: expect.any(String) });
    expect(JSON.stringify(failed.body)).not.toMatch(/Throttling|at .*\.ts/);
    expect(seen.tokens).toHaveLength(TRANSACTION_RETRY.maxAttempts);
    // Backoff is capped: the whole bounded loop waits at most the sum of its ceilings.
    let ceilingSum = 0;
    for (let attempt = 0; attempt + 1 < TRANSACTION_RETRY.maxAttempts; attempt += 1)
      ceilingSum += Math.min(TRANSACTION_RETRY.maxDelayMs, TRANSACTION_RETRY.baseDelayMs * 2 ** attempt);
    expect(Date.now() - started).toBeLessThan(ceilingSum + 3_000);
    dynamoClient().middlewareStack.remove(FAULT_MIDDLEWARE);
    expect((await wallet(sender.token)).coins).toBe(before.coins);
    expect((await wallet(creator.token)).diamonds).toBe(0);

    const retried = await gift(sender.token, streamId, 'throttled-gift', 2);
    expect(retried.status).toBe(201);
    expect((await wallet(sender.token)).coins).toBe(before.coins - 2);
    expect((await wallet(creator.token)).diamonds).toBe(2);
    expect((await entries(sender.token)).filter((entry) => entry.type === 'gift_sent')).toHaveLength(1);
    await expectBooksBalance(stack);
  });
});

describe('DynamoDB faults on the other money moves', () => {
  it('the recharge credit (webhook): a timeout after the commit still credits exactly once', async () => {
    const buyer = await user('buyer');
    const created = await api.request('POST', '/v1/recharges', {
      token: buyer.token,
      body: { packageId: 'coins_100' },
      headers: { 'idempotency-key': 'credit-faults' },
    });
    expect(created.status).toBe(201);
    const seen = injectDynamoFault(`USER#${buyer.userId}`, 'timeoutAfterCommit', 1);
    expect((await api.request('POST', `/dev/payments/${created.body.payment.paymentIntentId}/succeed`)).status).toBe(
      200,
    );
    await eventually(
      'credited',
      () => wallet(buyer.token),
      (current) => current.coins === 100,
    );
    expect(new Set(seen.tokens).size).toBe(1);
    expect(seen.tokens.length).toBeGreaterThanOrEqual(2);
    dynamoClient().middlewareStack.remove(FAULT_MIDDLEWARE);
    // Stripe re-sends the event (same id): still one credit.
    expect((await api.request('POST', `/dev/payments/${created.body.payment.paymentIntentId}/succeed`)).status).toBe(
      200,
    );
    await sleep(200);
    expect((await wallet(buyer.token)).coins).toBe(100);
    expect((await entries(buyer.token)).filter((entry) => entry.type === 'recharge')).toEqual([
      expect.objectContaining({ coins: 100 }),
    ]);
    await expectBooksBalance(stack);
  });

  it('a payout request: timeouts after the commits (shard fold, debit) leave one payout, paid once, with exact diamonds', async () => {
    const { creator, streamId } = await liveStream();
    const patron = await user('patron');
    await fund(patron.token, 'coins_5000');
    expect(
      (
        await api.request('POST', `/v1/streams/${streamId}/gifts`, {
          token: patron.token,
          body: { giftId: 'lion', quantity: 2 },
          headers: { 'idempotency-key': 'lions' },
        })
      ).status,
    ).toBe(201);
    const account = await api.request('POST', '/v1/creator/payout-account', { token: creator.token });
    expect(account.status).toBe(201);
    expect((await fetch(String(account.body.onboardingUrl))).status).toBe(200);
    await eventually(
      'payouts enabled',
      () => api.request('GET', '/v1/creator/payout-account', { token: creator.token }),
      (answer) => answer.body?.payoutsEnabled === true,
    );

    const seen = injectDynamoFault(`USER#${creator.userId}`, 'timeoutAfterCommit', 2);
    const requested = await api.request('POST', '/v1/payouts', {
      token: creator.token,
      body: { diamonds: 2_000 },
      headers: { 'idempotency-key': 'payout-faults' },
    });
    expect(requested.status).toBe(202);
    expect(seen.tokens.length).toBeGreaterThanOrEqual(3);
    dynamoClient().middlewareStack.remove(FAULT_MIDDLEWARE);
    const replay = await api.request('POST', '/v1/payouts', {
      token: creator.token,
      body: { diamonds: 2_000 },
      headers: { 'idempotency-key': 'payout-faults' },
    });
    expect(replay).toMatchObject({ status: 202, body: requested.body });
    const { payoutId } = requested.body;
    await eventually(
      'paid',
      () => api.request('GET', `/v1/payouts/${payoutId}`, { token: creator.token }),
      (answer) => answer.body?.status === 'paid',
    );
    expect(await wallet(creator.token)).toMatchObject({ diamonds: 0, pendingDiamonds: 0 });
    const history = await entries(creator.token);
    expect(history.filter((entry) => entry.type === 'payout_requested')).toHaveLength(1);
    expect(history.filter((entry) => entry.type === 'payout_paid')).toHaveLength(1);
    expect(stack.payments.transfers().filter((transfer) => transfer.transfer_group === payoutId)).toEqual([
      expect.objectContaining({ amount: 1_000 }),
    ]);
    await expectBooksBalance(stack);
  });
});

describe('SQS send failure after a gift commit', () => {
  it('the gift is committed once and still broadcast, by the sweeper', async () => {
    const { creator, streamId } = await liveStream();
    const sender = await user('sender');
    await fund(sender.token);
    const viewer = await user('viewer');
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${viewer.token}&streamId=${streamId}`);
    try {
      const giftEventsQueue = stack.queues.urls.giftEvents?.queueUrl;
      expect(giftEventsQueue).toBeDefined();
      const original = SQSClient.prototype.send;
      let refused = 0;
      jest.spyOn(SQSClient.prototype, 'send').mockImplementation(function (
        this: SQSClient,
        ...args: Parameters<SQSClient['send']>
      ) {
        const command = args[0];
        if (refused === 0 && command instanceof SendMessageBatchCommand && command.input.QueueUrl === giftEventsQueue) {
          refused += 1;
          return Promise.reject(
            Object.assign(new Error('SQS is unavailable (injected)'), { name: 'ServiceUnavailable', $metadata: {} }),
          );
        }
        return (original as (...inner: unknown[]) => Promise<unknown>).apply(this, args);
      } as SQSClient['send']);

      const sent = await gift(sender.token, streamId, 'nudge-lost', 4);
      expect(sent.status).toBe(201);
      expect(refused).toBe(1);
      const giftTxId = String(sent.body.giftTxId);
      // No nudge: nothing is broadcast yet.
      await sleep(500);
      expect(socket.messages().filter((message) => message.type === 'gift')).toEqual([]);

      // Once the gift is older than the sweeper's threshold, the schedule finds the unsent record.
      await sleep(SWEEP_MIN_AGE_MS);
      await stack.runSchedule('SweepGiftBroadcasts');
      await socket.waitFor((messages) =>
        messages.some((message) => message.type === 'gift' && message.giftTxId === giftTxId),
      );
      await stack.runSchedule('SweepGiftBroadcasts');
      await sleep(300);
      expect(socket.messages().filter((message) => message.type === 'gift')).toEqual([
        expect.objectContaining({
          type: 'gift',
          streamId,
          seq: 1,
          giftTxId,
          fromUserId: sender.userId,
          giftId: 'rose',
          quantity: 4,
          coins: 4,
        }),
      ]);
      expect((await wallet(creator.token)).diamonds).toBe(4);
      expect((await entries(sender.token)).filter((entry) => entry.type === 'gift_sent')).toHaveLength(1);
    } finally {
      await socket.close();
    }
    await expectBooksBalance(stack);
  });
});

const standInState = z.object({
  paymentIntents: z.record(z.string(), z.object({ id: z.string(), metadata: z.record(z.string(), z.string()) })),
});

function paymentIntentsFor(rechargeId: string): string[] {
  const state = standInState.parse(
    JSON.parse(readFileSync(join(dataDir, 'payments', 'payments-standin.json'), 'utf8')),
  );
  return Object.values(state.paymentIntents)
    .filter((paymentIntent) => paymentIntent.metadata.rechargeId === rechargeId)
    .map((paymentIntent) => paymentIntent.id);
}

describe('Stripe faults on PaymentIntent creation', () => {
  /** The app's SDK retries once itself, so two faults defeat one request; the caller retries with its key. */
  const BOUNDED_CLIENT_ATTEMPTS = 4;

  it.each<['http500' | 'http429' | 'timeout', number, number]>([
    ['http500', 1, 1],
    ['http500', 2, 2],
    // stripe-node does not retry a 429 (no Stripe-Should-Retry header): each one reaches the caller.
    ['http429', 1, 2],
    ['http429', 2, 3],
    ['timeout', 1, 1],
    ['timeout', 2, 2],
  ])(
    '%s x%i: retrying with the same Idempotency-Key makes exactly one PaymentIntent and one recharge, credited once',
    async (kind, times, expectedRequests) => {
      const buyer = await user('buyer');
      const key = `recharge-${kind}-${times}`;
      stack.payments.injectFault({ path: '/v1/payment_intents', method: 'POST', kind, times });

      const answers: Array<{ status: number; body: any }> = [];
      for (let attempt = 0; attempt < BOUNDED_CLIENT_ATTEMPTS; attempt += 1) {
        const answer = await api.request('POST', '/v1/recharges', {
          token: buyer.token,
          body: { packageId: 'coins_500' },
          headers: { 'idempotency-key': key },
        });
        answers.push(answer);
        if (answer.status === 201) break;
        // A failure is the contract's INTERNAL answer, never a stack or a Stripe message.
        expect(answer.status).toBe(500);
        expect(answer.body.error.code).toBe('INTERNAL');
      }
      const created = answers[answers.length - 1]!;
      expect(created.status).toBe(201);
      // A 500 or a timeout is absorbed once by the SDK's single retry; past that the caller retries with its key.
      expect(answers.length).toBe(expectedRequests);
      expect(created.body).toMatchObject({
        status: 'pending',
        coins: 500,
        payment: { provider: 'stripe', paymentIntentId: expect.stringMatching(/^pi_/) },
      });
      const { rechargeId } = created.body;
      const { paymentIntentId } = created.body.payment;

      const replay = await api.request('POST', '/v1/recharges', {
        token: buyer.token,
        body: { packageId: 'coins_500' },
        headers: { 'idempotency-key': key },
      });
      expect(replay).toMatchObject({ status: 201, body: created.body });
      expect(paymentIntentsFor(rechargeId)).toEqual([paymentIntentId]);
      expect((await api.request('GET', `/v1/recharges/${rechargeId}`, { token: buyer.token })).body).toMatchObject({
        rechargeId,
        status: 'pending',
        coins: 500,
      });

      expect((await api.request('POST', `/dev/payments/${paymentIntentId}/succeed`)).status).toBe(200);
      await eventually(
        'credited',
        () => wallet(buyer.token),
        (current) => current.coins === 500,
      );
      expect((await api.request('POST', `/dev/payments/${paymentIntentId}/succeed`)).status).toBe(200);
      await sleep(200);
      expect((await wallet(buyer.token)).coins).toBe(500);
      expect((await entries(buyer.token)).filter((entry) => entry.type === 'recharge')).toEqual([
        expect.objectContaining({ coins: 500 }),
      ]);
      await expectBooksBalance(stack);
    },
  );
});

describe('@connections faults', () => {
  async function twoViewers(streamId: string) {
    const [first, second] = [await user('viewer'), await user('viewer')];
    const sockets = [
      await RecordingSocket.open(`${stack.wsUrl}/?token=${first.token}&streamId=${streamId}`),
      await RecordingSocket.open(`${stack.wsUrl}/?token=${second.token}&streamId=${streamId}`),
    ];
    await eventually(
      'both viewers registered',
      () => connectionsStore().countStreamViewers(streamId),
      (count) => count === 2,
    );
    return sockets;
  }

  const giftFrames = (socket: RecordingSocket) => socket.messages().filter((message) => message.type === 'gift');

  it(`429: posts are retried with backoff (at most ${POST_RETRY.maxAttempts} attempts) and every frame still arrives`, async () => {
    const { streamId } = await liveStream();
    const sender = await user('sender');
    await fund(sender.token);
    const sockets = await twoViewers(streamId);
    try {
      // Two throttled answers: whichever posts they hit, each post still has an attempt left.
      stack.gateway.injectConnectionsFault({ kind: 'throttle', times: POST_RETRY.maxAttempts - 1 });
      const sent = await gift(sender.token, streamId, 'throttled-frame');
      expect(sent.status).toBe(201);
      for (const socket of sockets) {
        await socket.waitFor((messages) =>
          messages.some((message) => message.type === 'gift' && message.giftTxId === sent.body.giftTxId),
        );
      }
      expect(await connectionsStore().countStreamViewers(streamId)).toBe(2);
      for (const socket of sockets)
        expect(giftFrames(socket)).toEqual([expect.objectContaining({ seq: 1, giftTxId: sent.body.giftTxId })]);
    } finally {
      await Promise.all(sockets.map((socket) => socket.close()));
    }
  });

  it('410: only the connection that is gone is removed; the other keeps receiving', async () => {
    const { streamId } = await liveStream();
    const sender = await user('sender');
    await fund(sender.token);
    const sockets = await twoViewers(streamId);
    try {
      // Past the handshake window, in which a post finding a connection gone leaves it be (removeGone).
      await new Promise((resolve) => setTimeout(resolve, CONNECTION_SETTLE_MS));
      stack.gateway.injectConnectionsFault({ kind: 'gone', times: 1 });
      const first = await gift(sender.token, streamId, 'gone-1');
      expect(first.status).toBe(201);
      await eventually(
        'one viewer forgotten',
        () => connectionsStore().countStreamViewers(streamId),
        (count) => count === 1,
      );
      const receivers = await eventually(
        'the other viewer got the gift',
        async () =>
          sockets.filter((socket) => giftFrames(socket).some((frame) => frame.giftTxId === first.body.giftTxId)),
        (found) => found.length === 1,
      );
      const kept = receivers[0]!;
      const dropped = sockets.find((socket) => socket !== kept)!;

      const second = await gift(sender.token, streamId, 'gone-2');
      expect(second.status).toBe(201);
      await kept.waitFor((messages) =>
        messages.some((message) => message.type === 'gift' && message.giftTxId === second.body.giftTxId),
      );
      expect(giftFrames(kept).map((frame) => frame.seq)).toEqual([1, 2]);
      await sleep(300);
      // The gone connection is no longer posted to (locally its socket is still open, so this shows it).
      expect(giftFrames(dropped)).toEqual([]);
      expect(await connectionsStore().countStreamViewers(streamId)).toBe(1);
    } finally {
      await Promise.all(sockets.map((socket) => socket.close()));
    }
    await expectBooksBalance(stack);
  });
});
