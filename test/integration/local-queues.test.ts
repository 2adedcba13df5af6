import { createHash } from 'node:crypto';
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  startEventSourceMapping,
  startLocalQueues,
  withLaterGroupItemsFailed,
  type EventSourceMapping,
  type EventSourceMappingOptions,
  type LocalQueues,
  type LogLine,
  type LocalQueueDefinition,
} from '../../infra/local/queues';
import { freePort } from '../../infra/local/ports';

/*
 * The local SQS (fauxqs) and the Lambda event source mapping stand-in, end to end over the SQS
 * protocol. Each case has its own queues so cases cannot see each other's messages. Visibility
 * timeouts are 1 s where a case waits for redelivery, to keep the file fast.
 */

const REGION = 'us-east-1';
/** How long a case waits for something that should happen within a few visibility timeouts. */
const WAIT_TIMEOUT_MS = 10_000;
const WAIT_INTERVAL_MS = 25;

const definitions: LocalQueueDefinition[] = [
  { logicalName: 'batches', fifo: false, visibilityTimeoutSeconds: 5, deadLetter: { maxReceiveCount: 5 } },
  { logicalName: 'poison', fifo: false, visibilityTimeoutSeconds: 1, deadLetter: { maxReceiveCount: 3 } },
  { logicalName: 'failing', fifo: false, visibilityTimeoutSeconds: 1, deadLetter: { maxReceiveCount: 6 } },
  { logicalName: 'ordered', fifo: true, visibilityTimeoutSeconds: 1, deadLetter: { maxReceiveCount: 5 } },
  { logicalName: 'slow-group', fifo: true, visibilityTimeoutSeconds: 1, deadLetter: { maxReceiveCount: 5 } },
  { logicalName: 'draining', fifo: false, visibilityTimeoutSeconds: 5, deadLetter: { maxReceiveCount: 5 } },
];

let queues: LocalQueues;
let sqs: SQSClient;
const mappings: EventSourceMapping[] = [];

beforeAll(async () => {
  queues = await startLocalQueues(definitions, { region: REGION });
  sqs = new SQSClient({
    endpoint: queues.endpoint,
    region: REGION,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});

afterEach(async () => {
  await Promise.all(mappings.splice(0).map((mapping) => mapping.stop()));
});

afterAll(async () => {
  sqs?.destroy();
  await queues?.stop();
});

function urlsOf(logicalName: string): { queueUrl: string; deadLetterQueueUrl: string; queueArn: string } {
  const urls = queues.urls[logicalName];
  if (urls === undefined) throw new Error(`no queue ${logicalName}`);
  return urls;
}

function map(options: Omit<EventSourceMappingOptions, 'sqs'> & { logs?: LogLine[] }): EventSourceMapping {
  const { logs, ...rest } = options;
  const mapping = startEventSourceMapping({ sqs, log: (line) => logs?.push(line), ...rest });
  mappings.push(mapping);
  return mapping;
}

async function send(queueUrl: string, entries: Array<Omit<SendMessageBatchRequestEntry, 'Id'>>): Promise<void> {
  for (let start = 0; start < entries.length; start += 10) {
    const chunk = entries.slice(start, start + 10).map((entry, index) => ({ Id: `e${index}`, ...entry }));
    const answer = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk }));
    expect(answer.Failed ?? []).toEqual([]);
  }
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(WAIT_INTERVAL_MS);
  }
}

async function countMessages(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const answer = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(answer.Attributes?.ApproximateNumberOfMessages),
    inFlight: Number(answer.Attributes?.ApproximateNumberOfMessagesNotVisible),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const md5 = (text: string): string => createHash('md5').update(text).digest('hex');
const receiveCount = (record: SQSRecord): number => Number(record.attributes.ApproximateReceiveCount);

test('creates every queue with its dead-letter queue and redrive policy', async () => {
  const payouts = urlsOf('poison');
  expect(queues.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(payouts.deadLetterQueueUrl).toMatch(/\/poison-dlq$/);
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: payouts.queueUrl, AttributeNames: ['All'] }),
  );
  expect(attributes.Attributes?.VisibilityTimeout).toBe('1');
  expect(JSON.parse(attributes.Attributes?.RedrivePolicy ?? '{}')).toEqual({
    deadLetterTargetArn: `arn:aws:sqs:${REGION}:000000000000:poison-dlq`,
    maxReceiveCount: 3,
  });

  const ordered = urlsOf('ordered');
  expect(ordered.queueUrl).toMatch(/\/ordered\.fifo$/);
  expect(ordered.deadLetterQueueUrl).toMatch(/\/ordered-dlq\.fifo$/);
  const fifo = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: ordered.deadLetterQueueUrl, AttributeNames: ['FifoQueue'] }),
  );
  expect(fifo.Attributes?.FifoQueue).toBe('true');
});

test('refuses a mapping Lambda would refuse', () => {
  const base = {
    queueUrl: urlsOf('ordered').queueUrl,
    handler: async () => undefined,
    maxConcurrency: 2,
    reportBatchItemFailures: true,
  };
  expect(() => map({ ...base, batchSize: 11, maximumBatchingWindowMs: 0 })).toThrow(/batchSize/);
  expect(() => map({ ...base, batchSize: 10, maximumBatchingWindowMs: 100 })).toThrow(/batching window/);
});

test('delivers messages in batches as real-shaped SQS events, and deletes them on success', async () => {
  const { queueUrl, queueArn } = urlsOf('batches');
  await send(
    queueUrl,
    Array.from({ length: 10 }, (_, index) => ({
      MessageBody: JSON.stringify({ index }),
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: 'payout' },
        raw: { DataType: 'Binary', BinaryValue: Buffer.from('bytes') },
      },
    })),
  );
  const events: SQSEvent[] = [];
  const contexts: Array<{ requestId: string; remaining: number; functionName: string }> = [];
  const first = map({
    queueUrl,
    batchSize: 10,
    maximumBatchingWindowMs: 0,
    maxConcurrency: 2,
    reportBatchItemFailures: true,
    timeoutMs: 2_000,
    handler: async (event, context) => {
      events.push(event);
      contexts.push({
        requestId: context.awsRequestId,
        remaining: context.getRemainingTimeInMillis(),
        functionName: context.functionName,
      });
    },
  });
  await waitFor('ten records', () => events.flatMap((event) => event.Records).length === 10);
  expect(events).toHaveLength(1); // all ten were waiting: one receive, one invocation

  const record = events[0]?.Records[0];
  expect(record).toMatchObject({
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: REGION,
    body: JSON.stringify({ index: 0 }),
    md5OfBody: md5(JSON.stringify({ index: 0 })),
    attributes: { ApproximateReceiveCount: '1', SenderId: '000000000000' },
    messageAttributes: {
      kind: { stringValue: 'payout', stringListValues: [], binaryListValues: [], dataType: 'String' },
      raw: {
        binaryValue: Buffer.from('bytes').toString('base64'),
        stringListValues: [],
        binaryListValues: [],
        dataType: 'Binary',
      },
    },
  });
  expect(Number(record?.attributes.SentTimestamp)).toBeGreaterThan(Date.now() - 60_000);
  expect(record?.receiptHandle).toEqual(expect.any(String));
  expect(contexts[0]?.remaining).toBeGreaterThan(0);
  expect(contexts[0]?.remaining).toBeLessThanOrEqual(2_000);
  expect(contexts[0]?.functionName).toBe('local-batches-consumer');
  await waitFor('the batch to be deleted', async () => (await countMessages(queueUrl)).inFlight === 0);
  await first.stop();

  // Over ten per batch: several receives within the batching window make one invocation.
  events.length = 0;
  await send(
    queueUrl,
    Array.from({ length: 25 }, (_, index) => ({ MessageBody: `big-${index}` })),
  );
  map({
    queueUrl,
    batchSize: 25,
    maximumBatchingWindowMs: 1_000,
    maxConcurrency: 1,
    reportBatchItemFailures: false,
    handler: async (event) => void events.push(event),
  });
  await waitFor('25 records', () => events.flatMap((event) => event.Records).length === 25);
  expect(events.map((event) => event.Records.length)).toEqual([25]);
  await waitFor('the big batch to be deleted', async () => {
    const counts = await countMessages(queueUrl);
    return counts.visible + counts.inFlight === 0;
  });
});

test('a poison message reported in batchItemFailures is redelivered until it lands in the DLQ; the other nine are deleted', async () => {
  const { queueUrl, deadLetterQueueUrl } = urlsOf('poison');
  await send(
    queueUrl,
    Array.from({ length: 10 }, (_, index) => ({ MessageBody: index === 4 ? 'poison' : `ok-${index}` })),
  );
  const batchSizes: number[] = [];
  const handled: string[] = [];
  const poisonReceiveCounts: number[] = [];
  const logs: LogLine[] = [];
  map({
    queueUrl,
    batchSize: 10,
    maximumBatchingWindowMs: 0,
    maxConcurrency: 2,
    reportBatchItemFailures: true,
    timeoutMs: 1_000,
    logs,
    handler: async (event): Promise<SQSBatchResponse> => {
      batchSizes.push(event.Records.length);
      const failures: SQSBatchResponse['batchItemFailures'] = [];
      for (const record of event.Records) {
        if (record.body === 'poison') {
          poisonReceiveCounts.push(receiveCount(record));
          failures.push({ itemIdentifier: record.messageId });
        } else handled.push(record.body);
      }
      return { batchItemFailures: failures };
    },
  });

  // fauxqs moves the message on the receive after the third (count would become 4 > 3).
  await waitFor('the poison message in the DLQ', async () => (await countMessages(deadLetterQueueUrl)).visible === 1);
  expect(batchSizes[0]).toBe(10);
  expect(handled.sort()).toEqual(['ok-0', 'ok-1', 'ok-2', 'ok-3', 'ok-5', 'ok-6', 'ok-7', 'ok-8', 'ok-9']);
  expect(poisonReceiveCounts).toEqual([1, 2, 3]);
  expect(await countMessages(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  expect(logs).toContainEqual(
    expect.objectContaining({ level: 'warn', msg: expect.stringContaining('batch item failures') }),
  );

  const dead = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: deadLetterQueueUrl, MessageSystemAttributeNames: ['All'] }),
  );
  expect(dead.Messages?.[0]?.Body).toBe('poison');
  // The count travels with the message: 4 when moved, 5 after this receive from the DLQ.
  expect(dead.Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe('5');
});

test('a throw, an invalid batch response or a timeout fails the whole batch, which comes back; the poller survives', async () => {
  const { queueUrl } = urlsOf('failing');
  const all = ['m-0', 'm-1', 'm-2', 'm-3', 'm-4'];
  await send(
    queueUrl,
    all.map((body) => ({ MessageBody: body })),
  );
  const invocations: Array<{ bodies: string[]; counts: number[] }> = [];
  const failures: string[] = [];
  const logs: LogLine[] = [];
  map({
    queueUrl,
    batchSize: 10,
    maximumBatchingWindowMs: 0,
    maxConcurrency: 1,
    reportBatchItemFailures: true,
    timeoutMs: 300,
    logs,
    // SQS may hand back messages that became visible together in several receives, so the failure
    // mode follows the batch's receive count, not the invocation number: each message meets a throw,
    // then an invalid response, then a timeout, before it is processed.
    handler: async (event): Promise<SQSBatchResponse | void> => {
      const counts = event.Records.map(receiveCount);
      invocations.push({ bodies: event.Records.map((record) => record.body), counts });
      switch (Math.min(...counts)) {
        case 1:
          failures.push('throw');
          throw new Error('downstream unavailable');
        case 2:
          failures.push('invalid');
          return { batchItemFailures: [{ itemIdentifier: 'not-a-message-of-this-batch' }] };
        case 3:
          failures.push('timeout');
          await sleep(600); // past timeoutMs
          return;
        default:
          return { batchItemFailures: [] };
      }
    },
  });

  await waitFor('every message processed', () =>
    all.every((body) => invocations.some((call) => call.bodies.includes(body) && Math.min(...call.counts) >= 4)),
  );
  await waitFor('the batch to be deleted', async () => {
    const counts = await countMessages(queueUrl);
    return counts.visible + counts.inFlight === 0;
  });
  // Every failed invocation gave its whole batch back: each message came back once per failure,
  // with its receive count one higher each time, and none was lost or delivered after it succeeded.
  for (const body of all) {
    const seen = invocations.flatMap((call) => call.counts.filter((_, index) => call.bodies[index] === body));
    expect({ body, seen }).toEqual({ body, seen: seen.map((_, index) => index + 1) });
    expect(seen.length).toBeGreaterThanOrEqual(4);
  }
  expect(new Set(failures)).toEqual(new Set(['throw', 'invalid', 'timeout']));
  expect(logs).toContainEqual(
    expect.objectContaining({
      level: 'error',
      msg: expect.stringContaining('handler threw'),
      error: { name: 'Error', message: 'downstream unavailable' },
    }),
  );
  expect(logs).toContainEqual(
    expect.objectContaining({ level: 'error', msg: expect.stringContaining('invalid batch response') }),
  );
  expect(logs).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringContaining('timed out') }));
});

test('FIFO: per-group order holds with several groups and maxConcurrency > 1, failures included', async () => {
  const { queueUrl } = urlsOf('ordered');
  const groups = ['g1', 'g2', 'g3', 'g4', 'g5', 'g6'];
  const perGroup = 6;
  for (const group of groups) {
    await send(
      queueUrl,
      Array.from({ length: perGroup }, (_, index) => ({
        MessageBody: `${group}:${index}`,
        MessageGroupId: group,
        MessageDeduplicationId: `${group}-${index}`,
      })),
    );
  }
  const processed = new Map<string, number[]>(groups.map((group) => [group, []]));
  const active = new Map<string, number>();
  const overlaps: string[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  let failedOnce = false;
  let firstRecord: SQSRecord | undefined;
  map({
    queueUrl,
    batchSize: 2,
    maximumBatchingWindowMs: 0,
    maxConcurrency: 3,
    reportBatchItemFailures: true,
    timeoutMs: 1_000,
    handler: async (event): Promise<SQSBatchResponse> => {
      firstRecord ??= event.Records[0];
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      const mine = new Set(event.Records.map((record) => record.attributes.MessageGroupId ?? ''));
      for (const group of mine) {
        if (active.has(group)) overlaps.push(group);
        active.set(group, (active.get(group) ?? 0) + 1);
      }
      await sleep(15 + Math.floor(Math.random() * 25));
      const failures: SQSBatchResponse['batchItemFailures'] = [];
      const failedGroups = new Set<string>();
      for (const record of event.Records) {
        const [group = '', index = ''] = record.body.split(':');
        // One failure, once: g3's third message must come back before g3 moves on.
        if (failedGroups.has(group) || (record.body === 'g3:2' && !failedOnce)) {
          failedOnce = true;
          failedGroups.add(group);
          failures.push({ itemIdentifier: record.messageId });
          continue;
        }
        processed.get(group)?.push(Number(index));
      }
      for (const group of mine) {
        const left = (active.get(group) ?? 1) - 1;
        if (left === 0) active.delete(group);
        else active.set(group, left);
      }
      concurrent--;
      return { batchItemFailures: failures };
    },
  });

  await waitFor('every message', () => [...processed.values()].every((indexes) => indexes.length === perGroup));
  for (const group of groups) expect(processed.get(group)).toEqual([0, 1, 2, 3, 4, 5]);
  expect(overlaps).toEqual([]);
  expect(maxConcurrent).toBeGreaterThanOrEqual(2);
  expect(failedOnce).toBe(true);
  expect(firstRecord?.attributes).toMatchObject({
    MessageGroupId: expect.any(String),
    MessageDeduplicationId: expect.any(String),
    SequenceNumber: expect.any(String),
  });
  await waitFor('the queue to drain', async () => {
    const counts = await countMessages(queueUrl);
    return counts.visible + counts.inFlight === 0;
  });
});

test('FIFO: a message redelivered while its group is still being processed waits for that invocation', async () => {
  const { queueUrl } = urlsOf('slow-group');
  await send(queueUrl, [
    { MessageBody: 'a', MessageGroupId: 'g', MessageDeduplicationId: 'a' },
    { MessageBody: 'b', MessageGroupId: 'g', MessageDeduplicationId: 'b' },
  ]);
  const seen: Array<{ body: string; count: number }> = [];
  let running = 0;
  let overlapped = false;
  map({
    queueUrl,
    batchSize: 1,
    maximumBatchingWindowMs: 0,
    maxConcurrency: 2,
    reportBatchItemFailures: true,
    timeoutMs: 3_000,
    handler: async (event) => {
      running++;
      if (running > 1) overlapped = true;
      const record = event.Records[0];
      if (record !== undefined) seen.push({ body: record.body, count: receiveCount(record) });
      // Longer than the 1 s visibility timeout: fauxqs hands 'a' out again meanwhile.
      if (seen.length === 1) await sleep(1_600);
      running--;
    },
  });
  await waitFor('b', () => seen.some((entry) => entry.body === 'b'));
  expect(overlapped).toBe(false);
  expect(seen).toEqual([
    { body: 'a', count: 1 },
    { body: 'a', count: 2 }, // at least once: the first copy's delete used a stale receipt handle
    { body: 'b', count: 1 },
  ]);
});

test('stop() waits for in-flight invocations and their deletes', async () => {
  const { queueUrl } = urlsOf('draining');
  await send(queueUrl, [{ MessageBody: 'one' }, { MessageBody: 'two' }, { MessageBody: 'three' }]);
  let started = false;
  let finished = false;
  const mapping = map({
    queueUrl,
    batchSize: 10,
    maximumBatchingWindowMs: 0,
    maxConcurrency: 1,
    reportBatchItemFailures: false,
    timeoutMs: 3_000,
    handler: async () => {
      started = true;
      await sleep(700);
      finished = true;
    },
  });
  await waitFor('the invocation to start', () => started);
  const stopping = Date.now();
  await mapping.stop();
  expect(finished).toBe(true);
  expect(Date.now() - stopping).toBeLessThan(3_000);
  expect(await countMessages(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
});

test('backs off while the endpoint is unreachable, and still stops promptly', async () => {
  const closedPort = await freePort(); // nothing listens there: every request is refused at once
  const unreachable = new SQSClient({
    endpoint: `http://127.0.0.1:${closedPort}`,
    region: REGION,
    maxAttempts: 1,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const logs: LogLine[] = [];
  const mapping = startEventSourceMapping({
    sqs: unreachable,
    queueUrl: `http://127.0.0.1:${closedPort}/000000000000/nowhere`,
    batchSize: 1,
    maximumBatchingWindowMs: 0,
    maxConcurrency: 1,
    reportBatchItemFailures: false,
    handler: async () => undefined,
    log: (line) => logs.push(line),
  });
  await sleep(1_000);
  const stopping = Date.now();
  await mapping.stop();
  unreachable.destroy();
  expect(Date.now() - stopping).toBeLessThan(500);
  const backoffs = logs.filter((line) => line.level === 'warn').map((line) => line.backoffMs);
  // 100, 200, 400 ms...: a handful of attempts in a second, not a busy loop.
  expect(backoffs.length).toBeGreaterThanOrEqual(2);
  expect(backoffs.length).toBeLessThanOrEqual(5);
  expect(backoffs.slice(0, 3)).toEqual([100, 200, 400]);
});

test('FIFO: the items after a failed one in the same group count as failed too', () => {
  const record = (messageId: string, group: string): SQSRecord =>
    ({ messageId, attributes: { MessageGroupId: group } }) as unknown as SQSRecord;
  const records = [record('1', 'a'), record('2', 'b'), record('3', 'a'), record('4', 'b'), record('5', 'a')];
  expect([...withLaterGroupItemsFailed(records, new Set(['3']))].sort()).toEqual(['3', '5']);
  expect([...withLaterGroupItemsFailed(records, new Set(['2']))].sort()).toEqual(['2', '4']);
  expect([...withLaterGroupItemsFailed(records, new Set())]).toEqual([]);
});
