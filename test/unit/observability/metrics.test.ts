import {
  emfRecords,
  MAX_METRICS_PER_EMF_RECORD,
  metrics,
  PRODUCT_METRICS,
  type BufferedMetric,
  type MetricName,
} from '../../../shared/observability/metrics';
import { runInvocation } from '../../../shared/observability/invocation';
import type { Context } from 'aws-lambda';

/** Issue 16: product metrics as CloudWatch embedded metric format, summed per invocation. */
const NAMESPACE = 'LiveGifting/Test';

test('counts are summed per dimension set, one record each, in the EMF shape CloudWatch reads', () => {
  const counts: BufferedMetric[] = [
    { name: 'GiftsSent', dimensions: {}, value: 1 },
    { name: 'GiftsSent', dimensions: {}, value: 2 },
    { name: 'CoinsMinted', dimensions: {}, value: 500 },
    { name: 'Recharges', dimensions: { outcome: 'created' }, value: 1 },
    { name: 'Recharges', dimensions: { outcome: 'failed' }, value: 1 },
  ];
  const records = emfRecords(NAMESPACE, counts, 1_700_000_000_000, { function_name: 'GiftsSend' });
  expect(records).toEqual([
    {
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          {
            Namespace: NAMESPACE,
            Dimensions: [[]],
            Metrics: [
              { Name: 'GiftsSent', Unit: 'Count' },
              { Name: 'CoinsMinted', Unit: 'Count' },
            ],
          },
        ],
      },
      function_name: 'GiftsSend',
      GiftsSent: 3,
      CoinsMinted: 500,
    },
    {
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          { Namespace: NAMESPACE, Dimensions: [['outcome']], Metrics: [{ Name: 'Recharges', Unit: 'Count' }] },
        ],
      },
      function_name: 'GiftsSend',
      outcome: 'created',
      Recharges: 1,
    },
    {
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          { Namespace: NAMESPACE, Dimensions: [['outcome']], Metrics: [{ Name: 'Recharges', Unit: 'Count' }] },
        ],
      },
      function_name: 'GiftsSend',
      outcome: 'failed',
      Recharges: 1,
    },
  ]);
});

test(`a record holds at most ${MAX_METRICS_PER_EMF_RECORD} metrics (CloudWatch's limit); more go to a second record`, () => {
  const many = (n: number): BufferedMetric[] =>
    Array.from({ length: n }, (_, index) => ({ name: `M${index}` as MetricName, dimensions: {}, value: 1 }));
  const metricsIn = (records: Array<Record<string, unknown>>) =>
    records.map(
      (record) =>
        (record._aws as { CloudWatchMetrics: Array<{ Metrics: unknown[] }> }).CloudWatchMetrics[0]?.Metrics.length,
    );
  expect(metricsIn(emfRecords(NAMESPACE, many(MAX_METRICS_PER_EMF_RECORD), 0))).toEqual([MAX_METRICS_PER_EMF_RECORD]);
  expect(metricsIn(emfRecords(NAMESPACE, many(MAX_METRICS_PER_EMF_RECORD + 1), 0))).toEqual([
    MAX_METRICS_PER_EMF_RECORD,
    1,
  ]);
  // The product's own metrics fit one record per dimension set.
  expect(Object.keys(PRODUCT_METRICS).length).toBeLessThanOrEqual(MAX_METRICS_PER_EMF_RECORD);
});

test('an invocation writes its counts once, when it ends; concurrent invocations keep their own', async () => {
  const written: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  const previous = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  process.stdout.write = ((chunk: unknown) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  const context = (id: string) => ({ functionName: 'BroadcastGifts', awsRequestId: id }) as Context;
  try {
    await Promise.all([
      runInvocation(context('a'), {}, async () => {
        metrics.count('ConnectionPostsGone');
        await new Promise((resolve) => setTimeout(resolve, 20));
        metrics.count('ConnectionPostsGone');
        // b may have ended meanwhile and written its own; nothing of a's until a ends.
        expect(written.join('')).not.toContain('"function_request_id":"a"');
      }),
      runInvocation(context('b'), {}, async () => {
        metrics.count('ConnectionPostsThrottled', 3);
        metrics.count('BroadcastsFailed', 0);
      }),
    ]);
  } finally {
    process.stdout.write = original as typeof process.stdout.write;
    if (previous === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
    else process.env.POWERTOOLS_METRICS_DISABLED = previous;
  }
  const records = written
    .join('')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(
    records
      .map((record) => [
        record.function_request_id,
        record.ConnectionPostsGone,
        record.ConnectionPostsThrottled,
        record.BroadcastsFailed,
      ])
      .sort(),
  ).toEqual([
    ['a', 2, undefined, undefined],
    ['b', undefined, 3, undefined],
  ]);
});
