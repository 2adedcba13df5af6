import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSEvent, SQSRecord, SQSBatchResponse } from 'aws-lambda';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { lambdaContext } from '../../infra/local/lambda-runtime';
import { startEventSourceMapping } from '../../infra/local/queues';
import { startLocalStack, type LocalStack } from '../../infra/local/stack';
import { QUEUE_CONSUMERS, QUEUES } from '../../infra/routes';
import { keys } from '../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { newId } from '../../shared/adapters/ids';
import { StripeConnectPayouts } from '../../shared/adapters/stripe-connect';
import { TransientDependencyError } from '../../shared/domain/errors';
import { logger } from '../../shared/logger';
import { processPayout } from '../../shared/usecases/payouts';
import { handler } from '../../functions/queue/payout-worker';
import { apiClient, expectBooksBalance, type ApiClient } from '../support/local-stack';
import { seedDiamonds, TEST_CREATOR_SHARDS } from './usecases/payout-fixtures';

/**
 * The payout worker's failure modes against the real pieces: DynamoDB Local, the payments
 * stand-in (its idempotency keys and injected faults) and fauxqs. The stack runs without its
 * consumers and timers, so each test decides exactly which deliveries happen.
 */

const POLL_MS = 100;
const WAIT_MS = 15_000;

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  const dynamoEndpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!dynamoEndpoint) throw new Error('TEST_DYNAMODB_ENDPOINT is not set: run the tests with jest');
  stack = await startLocalStack({
    dataDir: mkdtempSync(join(tmpdir(), 'payout-worker-it-')),
    dynamoEndpoint,
    persistDynamo: false,
    httpPort: 0,
    wsPort: 0,
    tablePrefix: `t${randomBytes(4).toString('hex')}-`,
    // Short enough that the timeout test does not wait for Stripe's usual 10 s.
    env: { LOG_LEVEL: 'SILENT', STRIPE_TIMEOUT_MS: '1500' },
    consumers: false,
    schedules: false,
  });
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
afterEach(() => stack.payments.clearFaults());

async function until(what: string, check: () => Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

let sequence = 0;
/** A creator with diamonds, an onboarded account and a requested payout of `diamonds`. */
async function requestedPayout(
  diamonds = 2_000,
  balance = diamonds,
): Promise<{ userId: string; token: string; payoutId: string; accountId: string }> {
  sequence += 1;
  const userId = `worker-creator-${sequence}-${randomBytes(3).toString('hex')}`;
  const token = await api.token({ sub: userId, birthdate: '1990-01-01', country: 'US' });
  await seedDiamonds(store, userId, balance);
  const account = await api.request('POST', '/v1/creator/payout-account', { token });
  await stack.payments.completeOnboarding(account.body.accountId);
  await until(
    'payouts enabled',
    async () => (await api.request('GET', '/v1/creator/payout-account', { token })).body?.payoutsEnabled === true,
  );
  const requested = await api.request('POST', '/v1/payouts', {
    token,
    body: { diamonds },
    headers: { 'idempotency-key': `k-${userId}` },
  });
  expect(requested.status).toBe(202);
  return { userId, token, payoutId: requested.body.payoutId, accountId: account.body.accountId };
}

function record(body: string, messageId = `m-${randomBytes(4).toString('hex')}`): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: '000000000000',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:payouts',
    awsRegion: 'us-east-1',
  };
}

const deliver = (payoutId: string): Promise<SQSBatchResponse> =>
  handler({ Records: [record(JSON.stringify({ payoutId }))] }, lambdaContext('PayoutWorker', 60_000));

async function payoutEntries(userId: string, type: string) {
  const { entries } = await store.listEntries(userId, { limit: 100, creatorShards: TEST_CREATOR_SHARDS });
  return entries.filter((entry) => entry.type === type);
}

const transfersOf = (payoutId: string) =>
  stack.payments.transfers().filter((transfer) => transfer.transfer_group === payoutId);
const statusOf = async (payoutId: string) => (await store.getItem(keys.payout(payoutId), { consistent: true }))?.status;

describe('payout worker against the stand-in', () => {
  it('the same message delivered three times at once: one transfer at the stand-in, one payout_paid entry', async () => {
    const { userId, payoutId } = await requestedPayout();
    const answers = await Promise.all([deliver(payoutId), deliver(payoutId), deliver(payoutId)]);
    expect(answers).toEqual([1, 2, 3].map(() => ({ batchItemFailures: [] })));
    expect(transfersOf(payoutId)).toHaveLength(1);
    expect(await payoutEntries(userId, 'payout_paid')).toHaveLength(1);
    expect(await statusOf(payoutId)).toBe('paid');
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 0, pendingDiamonds: 0 });
  });

  it('the worker killed after the transfer and before the ledger update: the redelivery gets the same transfer, paid once', async () => {
    const { userId, payoutId } = await requestedPayout();
    const dying = new StripeConnectPayouts();
    const realTransfer = dying.createTransfer.bind(dying);
    let made: string | undefined;
    dying.createTransfer = async (request) => {
      made = (await realTransfer(request)).transferId;
      throw new Error('killed after the transfer');
    };
    await expect(processPayout({ store, connect: dying, now: () => new Date(), newId }, payoutId)).rejects.toThrow(
      'killed',
    );
    expect(await statusOf(payoutId)).toBe('processing');
    expect(transfersOf(payoutId)).toHaveLength(1);

    expect(await deliver(payoutId)).toEqual({ batchItemFailures: [] });
    expect(stack.payments.requestCountByIdempotencyKey(payoutId)).toBe(2);
    expect(transfersOf(payoutId)).toHaveLength(1);
    expect((await store.getItem(keys.payout(payoutId), { consistent: true }))?.transferId).toBe(made);
    expect(await payoutEntries(userId, 'payout_paid')).toHaveLength(1);
  });

  it('Stripe answering 500, then 429, then success: paid once', async () => {
    const { userId, payoutId } = await requestedPayout();
    stack.payments.injectFault({ path: '/v1/transfers', method: 'POST', kind: 'http500', times: 1 });
    stack.payments.injectFault({ path: '/v1/transfers', method: 'POST', kind: 'http429', times: 1 });
    expect(await deliver(payoutId)).toEqual({ batchItemFailures: [] });
    expect(await statusOf(payoutId)).toBe('paid');
    expect(stack.payments.requestCountByIdempotencyKey(payoutId)).toBe(3);
    expect(transfersOf(payoutId)).toHaveLength(1);
    expect(await payoutEntries(userId, 'payout_paid')).toHaveLength(1);
  });

  it('a Stripe timeout is transient: the delivery fails, the payout stays processing, the next delivery pays', async () => {
    const { payoutId } = await requestedPayout();
    // Both tries of one attempt (the SDK retries once) time out; one attempt keeps the test short.
    stack.payments.injectFault({ path: '/v1/transfers', method: 'POST', kind: 'timeout', times: 2 });
    const oneAttempt = { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 };
    await expect(
      processPayout(
        { store, connect: new StripeConnectPayouts(), now: () => new Date(), newId, transferRetry: oneAttempt },
        payoutId,
      ),
    ).rejects.toBeInstanceOf(TransientDependencyError);
    expect(await statusOf(payoutId)).toBe('processing');
    stack.payments.clearFaults();
    expect(await deliver(payoutId)).toEqual({ batchItemFailures: [] });
    expect(await statusOf(payoutId)).toBe('paid');
    expect(transfersOf(payoutId)).toHaveLength(1);
  });

  it('a rejected destination: failed and reversed, the diamonds back', async () => {
    const { userId, token, payoutId } = await requestedPayout(2_000, 5_000);
    stack.payments.injectFault({ path: '/v1/transfers', method: 'POST', kind: 'rejectDestination', times: 1 });
    expect(await deliver(payoutId)).toEqual({ batchItemFailures: [] });
    const payout = await api.request('GET', `/v1/payouts/${payoutId}`, { token });
    expect(payout.body).toMatchObject({ payoutId, status: 'failed', failureCode: 'account_invalid', diamonds: 2_000 });
    expect(transfersOf(payoutId)).toHaveLength(0);
    expect(await store.readWallet(userId, { consistent: true })).toMatchObject({ diamonds: 5_000, pendingDiamonds: 0 });
    expect(await payoutEntries(userId, 'payout_reversed')).toEqual([
      expect.objectContaining({ diamonds: 2_000, pendingDiamonds: -2_000 }),
    ]);
    // A later delivery of the same message changes nothing.
    expect(await deliver(payoutId)).toEqual({ batchItemFailures: [] });
    expect(await payoutEntries(userId, 'payout_reversed')).toHaveLength(1);
  });

  it('a batch of ten with one poison message: nine settle, one goes back, and after maxReceiveCount it is in the DLQ', async () => {
    const definition = QUEUES.find((queue) => queue.logicalName === 'payouts');
    const consumer = QUEUE_CONSUMERS.find((candidate) => candidate.queue === 'payouts');
    if (!definition || !consumer) throw new Error('the route table has no payouts queue or consumer');
    // The route table's redrive policy and batch size, with a 1 s visibility timeout so that the
    // five receives take seconds, not 5 x 6 minutes.
    const suffix = randomBytes(3).toString('hex');
    const dlq = await stack.sqs.send(new CreateQueueCommand({ QueueName: `payouts-poison-${suffix}-dlq` }));
    const dlqArn = (
      await stack.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    const queue = await stack.sqs.send(
      new CreateQueueCommand({
        QueueName: `payouts-poison-${suffix}`,
        Attributes: {
          VisibilityTimeout: '1',
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqArn,
            maxReceiveCount: definition.deadLetter.maxReceiveCount,
          }),
        },
      }),
    );
    const queueUrl = queue.QueueUrl ?? '';

    const payouts: Array<Awaited<ReturnType<typeof requestedPayout>>> = [];
    for (let index = 0; index < 9; index += 1) payouts.push(await requestedPayout());
    const bodies = payouts.map(({ payoutId }) => JSON.stringify({ payoutId }));
    bodies.splice(4, 0, JSON.stringify({ payoutId: 'po_does_not_exist' }));
    await stack.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.map((body, index) => ({ Id: `e${index}`, MessageBody: body })),
      }),
    );

    const batchSizes: number[] = [];
    const poisonReceives: string[] = [];
    const mapping = startEventSourceMapping({
      sqs: stack.sqs,
      queueUrl,
      batchSize: consumer.batchSize,
      maximumBatchingWindowMs: 0,
      maxConcurrency: 1,
      reportBatchItemFailures: true,
      timeoutMs: consumer.timeoutSeconds * 1000,
      log: () => undefined,
      handler: async (event: SQSEvent, context) => {
        batchSizes.push(event.Records.length);
        for (const one of event.Records)
          if (one.body.includes('po_does_not_exist')) poisonReceives.push(one.attributes.ApproximateReceiveCount);
        return handler(event, context);
      },
    });
    try {
      await until('nine paid', async () =>
        (await Promise.all(payouts.map(({ payoutId }) => statusOf(payoutId)))).every((status) => status === 'paid'),
      );
      await until(
        'the poison message in the DLQ',
        async () =>
          Number(
            (
              await stack.sqs.send(
                new GetQueueAttributesCommand({
                  QueueUrl: dlq.QueueUrl,
                  AttributeNames: ['ApproximateNumberOfMessages'],
                }),
              )
            ).Attributes?.ApproximateNumberOfMessages,
          ) === 1,
        20_000,
      );
    } finally {
      await mapping.stop();
    }
    expect(batchSizes[0]).toBe(10);
    expect(poisonReceives).toEqual(['1', '2', '3', '4', '5']);
    for (const { payoutId, userId } of payouts) {
      expect(transfersOf(payoutId)).toHaveLength(1);
      expect(await payoutEntries(userId, 'payout_paid')).toHaveLength(1);
    }
    const dead = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq.QueueUrl }));
    expect(JSON.parse(dead.Messages?.[0]?.Body ?? '{}')).toEqual({ payoutId: 'po_does_not_exist' });
  }, 90_000);

  it('keeps the books balanced (reconcile)', async () => {
    await expectBooksBalance(stack);
  });
});
