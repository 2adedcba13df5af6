/**
 * The broadcaster's metrics, written as CloudWatch Embedded Metric Format lines: Lambda ships
 * stdout to CloudWatch Logs, which turns each line into metric data points (no API call, no
 * extra permission). Everything goes through this one function so it can be swapped for the
 * project's metrics library without touching the broadcaster.
 */
export const BROADCAST_METRICS_NAMESPACE = 'LiveGifting/Broadcast';

export type BroadcastMetric =
  /** @connections posts still throttled (429) after their retries: those viewers missed a frame and catch up. */
  | 'PostsThrottled'
  /** Posts that failed for any other reason. */
  | 'PostsFailed'
  /** Frames whose gifts did not all fit 32 KB and went partly as a giftSummary. */
  | 'FramesSummarized';

export type MetricSink = (line: string) => void;

let sink: MetricSink = (line) => process.stdout.write(`${line}\n`);

/** Tests capture the lines here. */
export function setBroadcastMetricSinkForTests(next: MetricSink): void {
  sink = next;
}

export function emitBroadcastMetric(name: BroadcastMetric, value: number, now: Date = new Date()): void {
  if (value <= 0) return;
  sink(
    JSON.stringify({
      _aws: { Timestamp: now.getTime(), CloudWatchMetrics: [{ Namespace: BROADCAST_METRICS_NAMESPACE, Dimensions: [[]], Metrics: [{ Name: name, Unit: 'Count' }] }] },
      [name]: value,
    }),
  );
}
