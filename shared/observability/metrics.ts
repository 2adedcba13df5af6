import { currentInvocation } from './invocation';

/**
 * The product's own metrics, written as CloudWatch embedded metric format (EMF) lines to stdout:
 * Lambda ships stdout to CloudWatch Logs, which turns each line into metrics with no API call and
 * no extra permission. Code calls `metrics.count('GiftsSent')`; nothing else knows about EMF.
 *
 * Counts are summed per invocation and written when it ends (one line per dimension set), so a
 * broadcast posting to 1,000 viewers writes one line, not 1,000. Outside an invocation (a script,
 * a unit test calling a use case) each count is written at once.
 */
export const PRODUCT_METRICS = {
  /** A gift sent (HTTP or WebSocket), replays of the same Idempotency-Key not counted again. */
  GiftsSent: [],
  /** Coins created by a credited recharge. */
  CoinsMinted: [],
  /** Bonus coins of offers, credited with their recharges: minted, not bought. */
  BonusCoinsMinted: [],
  /** Coins taken back for a dispute or refund (from the balance or owed). */
  CoinsClawedBack: [],
  /** Coins given back for a dispute the platform won (owed coins forgiven first). */
  CoinsGivenBack: [],
  /** Stripe events whose livemode is not this deployment's: acknowledged, applied to nothing. */
  WebhookLivemodeMismatches: [],
  /** Recharges by outcome: created, credited, declined, canceled, refunded_over_budget, expired. */
  Recharges: ['outcome'],
  /** Stripe webhook events by type and outcome; `signature_failed` has the type `unverified`. */
  WebhookEvents: ['type', 'outcome'],
  PayoutsPaid: [],
  PayoutsFailed: [],
  /** A stream's broadcast that failed (its nudges go back to the queue). */
  BroadcastsFailed: [],
  /** @connections posts still throttled after their retries (the frame is lost for that viewer). */
  ConnectionPostsThrottled: [],
  /** @connections posts that failed for another reason than throttling or a gone connection. */
  ConnectionPostsFailed: [],
  /** Broadcast frames whose gifts did not all fit 32 KB and went partly as a giftSummary. */
  FramesSummarized: [],
  /** @connections posts to a connection that was gone (it is forgotten). */
  ConnectionPostsGone: [],
  /** Frames published to rooms' Event API channels (one request per frame). */
  EventApiPublishes: [],
  /** Event API publishes that failed (subscribers catch up from the events route). */
  EventApiPublishesFailed: [],
} as const satisfies Record<string, readonly string[]>;

export type MetricName = keyof typeof PRODUCT_METRICS;
/** The `type` of a webhook event whose signature failed: its body is not to be trusted. */
export const UNVERIFIED_EVENT_TYPE = 'unverified';
type DimensionsOf<Name extends MetricName> = { [Key in (typeof PRODUCT_METRICS)[Name][number]]: string };

/** CloudWatch takes at most 100 metrics in one EMF record (CloudWatchMetrics[].Metrics). */
export const MAX_METRICS_PER_EMF_RECORD = 100;
/** Where the metrics go when the stack did not say (local runs). */
export const DEFAULT_METRICS_NAMESPACE = 'LiveGifting/local';

export interface BufferedMetric {
  name: MetricName;
  dimensions: Record<string, string>;
  value: number;
}

/** The EMF records for some counts: one per dimension set, at most 100 metrics each. */
export function emfRecords(
  namespace: string,
  counts: readonly BufferedMetric[],
  timestamp: number,
  properties: Record<string, unknown> = {},
): Array<Record<string, unknown>> {
  const groups = new Map<string, { dimensions: Record<string, string>; values: Map<MetricName, number> }>();
  for (const count of counts) {
    const dimensionNames = Object.keys(count.dimensions).sort();
    const key = JSON.stringify(dimensionNames.map((name) => [name, count.dimensions[name]]));
    const group = groups.get(key) ?? { dimensions: count.dimensions, values: new Map<MetricName, number>() };
    group.values.set(count.name, (group.values.get(count.name) ?? 0) + count.value);
    groups.set(key, group);
  }
  const records: Array<Record<string, unknown>> = [];
  for (const { dimensions, values } of groups.values()) {
    const entries = [...values.entries()];
    for (let start = 0; start < entries.length; start += MAX_METRICS_PER_EMF_RECORD) {
      const chunk = entries.slice(start, start + MAX_METRICS_PER_EMF_RECORD);
      records.push({
        _aws: {
          Timestamp: timestamp,
          CloudWatchMetrics: [
            {
              Namespace: namespace,
              Dimensions: [Object.keys(dimensions).sort()],
              Metrics: chunk.map(([name]) => ({ Name: name, Unit: 'Count' })),
            },
          ],
        },
        ...properties,
        ...dimensions,
        ...Object.fromEntries(chunk),
      });
    }
  }
  return records;
}

const buffers = new WeakMap<object, BufferedMetric[]>();

/** Powertools' switch: tests that do not look at metrics keep them out of their output. */
const metricsDisabled = () => process.env.POWERTOOLS_METRICS_DISABLED === 'true';

function write(counts: readonly BufferedMetric[]): void {
  if (counts.length === 0 || metricsDisabled()) return;
  const invocation = currentInvocation();
  const properties = invocation
    ? { function_name: invocation.lambda.functionName, function_request_id: invocation.lambda.awsRequestId }
    : {};
  const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE ?? DEFAULT_METRICS_NAMESPACE;
  const lines = emfRecords(namespace, counts, Date.now(), properties).map((record) => `${JSON.stringify(record)}\n`);
  process.stdout.write(lines.join(''));
}

export const metrics = {
  /** Adds `value` (default 1) to a product metric; zero and negative values are not counted. */
  count<Name extends MetricName>(
    name: Name,
    value = 1,
    ...dimensions: keyof DimensionsOf<Name> extends never ? [] : [DimensionsOf<Name>]
  ): void {
    if (!Number.isFinite(value) || value <= 0) return;
    const metric: BufferedMetric = { name, value, dimensions: { ...(dimensions[0] ?? {}) } };
    const invocation = currentInvocation();
    if (!invocation) {
      write([metric]);
      return;
    }
    let buffer = buffers.get(invocation.finishers);
    if (!buffer) {
      const created: BufferedMetric[] = [];
      buffer = created;
      buffers.set(invocation.finishers, created);
      invocation.finishers.push(() => write(created));
    }
    buffer.push(metric);
  },
};
