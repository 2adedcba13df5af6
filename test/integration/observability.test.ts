import { randomUUID } from 'node:crypto';
import type { LocalStack } from '../../infra/local/stack';
import { signLocalToken } from '../../infra/local/issuer';
import { LOCAL_ISSUER } from '../../infra/local/stack';
import { logger } from '../../shared/logger';
import { sendRaw, stripeSignature } from '../support/fuzz';
import { startTestStack } from '../support/local-stack';

/**
 * Issue 16: a local run logs with the invocation's context and emits EMF lines. Concurrent
 * requests through the real gateway each log their own correlation id, request id, function name
 * and cold start (a process-wide `appendKeys` mixed them), and the product metrics come out as
 * CloudWatch embedded metric format, counted once per event.
 */
const CONCURRENT_REQUESTS = 40;
const CREDIT_WITHIN_MS = 10_000;

let stack: LocalStack;
const captured: string[] = [];
let restoreWrites: (() => void) | undefined;

/** Keeps every JSON line written to stdout (logs and EMF) out of the test output, for the assertions. */
function captureStdout(): () => void {
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
    if (text.trimStart().startsWith('{')) {
      captured.push(text);
      return true;
    }
    return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  return () => {
    process.stdout.write = original as typeof process.stdout.write;
  };
}

function jsonLines(): Array<Record<string, unknown>> {
  return captured
    .join('')
    .split('\n')
    .filter((line) => line.trimStart().startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

interface EmfRecord {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  [key: string]: unknown;
}
const emfRecords = () => jsonLines().filter((line): line is EmfRecord => typeof line._aws === 'object');

/** The sum of a metric over every EMF record whose dimensions are exactly `dimensions`. */
function metricSum(name: string, dimensions: Record<string, string> = {}): number {
  let sum = 0;
  for (const record of emfRecords()) {
    for (const directive of record._aws.CloudWatchMetrics) {
      if (!directive.Metrics.some((metric) => metric.Name === name)) continue;
      const names = directive.Dimensions[0] ?? [];
      const matches =
        names.length === Object.keys(dimensions).length &&
        names.every((dimension) => record[dimension] === dimensions[dimension]);
      if (matches) sum += Number(record[name]);
    }
  }
  return sum;
}

async function postEvent(event: Record<string, unknown>, secret = stack.webhookSecret) {
  const body = Buffer.from(JSON.stringify(event));
  return sendRaw(stack.httpUrl, {
    method: 'POST',
    path: '/v1/webhooks/stripe',
    headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(secret, body) },
    body,
  });
}

const ignoredEvent = (id: string) => ({
  id,
  object: 'event',
  type: 'customer.created',
  livemode: false,
  data: { object: { id: `cus_${id}`, object: 'customer' } },
});

beforeAll(async () => {
  restoreWrites = captureStdout();
  stack = await startTestStack({ LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false' });
  logger.setLogLevel('INFO');
});

afterAll(async () => {
  await stack?.stop();
  restoreWrites?.();
});

describe("logs carry the invocation's context", () => {
  it("concurrent requests never share keys: every line has its own request's correlation id, request id, function and cold start", async () => {
    const warmUp = await postEvent(ignoredEvent(`evt_warm_${randomUUID()}`));
    expect(warmUp.status).toBe(200);

    const eventIds = Array.from(
      { length: CONCURRENT_REQUESTS },
      (_, index) => `evt_concurrent_${index}_${randomUUID()}`,
    );
    const answers = await Promise.all(eventIds.map((id) => postEvent(ignoredEvent(id))));
    const correlationByEvent = new Map<string, string>();
    answers.forEach((answer, index) => {
      expect(answer.status).toBe(200);
      correlationByEvent.set(eventIds[index] ?? '', String(answer.headers['apigw-requestid']));
    });
    expect(new Set(correlationByEvent.values()).size).toBe(CONCURRENT_REQUESTS);

    const lines = jsonLines().filter(
      (line) => line.message === 'stripe event' && correlationByEvent.has(String(line.eventId)),
    );
    expect(lines).toHaveLength(CONCURRENT_REQUESTS);
    const requestIds = new Set<string>();
    for (const line of lines) {
      expect([line.eventId, line.correlationId]).toEqual([line.eventId, correlationByEvent.get(String(line.eventId))]);
      expect(line.route).toBe('POST /v1/webhooks/stripe');
      expect(line.function_name).toBe('StripeWebhook');
      expect(line.cold_start).toBe(false);
      expect(typeof line.function_request_id).toBe('string');
      requestIds.add(String(line.function_request_id));
    }
    expect(requestIds.size).toBe(CONCURRENT_REQUESTS);

    // The first invocation of the function in this process was its cold start.
    const first = jsonLines().find((line) => line.message === 'stripe event' && line.function_name === 'StripeWebhook');
    expect(first?.cold_start).toBe(true);
  });

  it("a line logged outside any invocation carries no request's keys", async () => {
    await Promise.all([
      postEvent(ignoredEvent(`evt_${randomUUID()}`)),
      Promise.resolve(logger.info('between invocations')),
    ]);
    const outside = jsonLines().filter((line) => line.message === 'between invocations');
    expect(outside).toHaveLength(1);
    expect(outside[0]?.correlationId).toBeUndefined();
    expect(outside[0]?.function_request_id).toBeUndefined();
  });
});

describe('EMF metrics', () => {
  it('count webhook events by type and outcome, signature failures included', async () => {
    const before = metricSum('WebhookEvents', { type: 'customer.created', outcome: 'ignored' });
    const id = `evt_metric_${randomUUID()}`;
    expect((await postEvent(ignoredEvent(id))).status).toBe(200);
    expect(metricSum('WebhookEvents', { type: 'customer.created', outcome: 'ignored' })).toBe(before + 1);

    const forged = await postEvent(ignoredEvent(`evt_forged_${randomUUID()}`), 'whsec_not_the_secret');
    expect(forged.status).toBe(400);
    expect(metricSum('WebhookEvents', { type: 'unverified', outcome: 'signature_failed' })).toBe(1);

    const record = emfRecords().find((candidate) => candidate.WebhookEvents !== undefined);
    expect(record?._aws.CloudWatchMetrics[0]?.Namespace).toBe('LiveGifting/local');
    expect(record?._aws.CloudWatchMetrics[0]?.Metrics).toEqual([{ Name: 'WebhookEvents', Unit: 'Count' }]);
    expect(typeof record?.function_request_id).toBe('string');
  });

  it('a paid recharge counts once: created, credited, and the coins minted', async () => {
    const token = await signLocalToken(String(process.env.LOCAL_ISSUER_KEY_FILE), LOCAL_ISSUER, {
      sub: `metrics-${randomUUID()}`,
      birthdate: '1990-01-01',
      country: 'US',
    });
    const headers = {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'idempotency-key': randomUUID(),
    };
    const body = Buffer.from(JSON.stringify({ packageId: 'coins_500' }));
    const created = await sendRaw(stack.httpUrl, { method: 'POST', path: '/v1/recharges', headers, body });
    expect(created.status).toBe(201);
    // The same Idempotency-Key again: a replay, not a second recharge.
    expect((await sendRaw(stack.httpUrl, { method: 'POST', path: '/v1/recharges', headers, body })).status).toBe(201);
    expect(metricSum('Recharges', { outcome: 'created' })).toBe(1);

    const paymentIntentId = String(
      (JSON.parse(created.text) as { payment: { paymentIntentId: string } }).payment.paymentIntentId,
    );
    expect(
      (await sendRaw(stack.httpUrl, { method: 'POST', path: `/dev/payments/${paymentIntentId}/succeed`, headers: {} }))
        .status,
    ).toBe(200);
    const deadline = Date.now() + CREDIT_WITHIN_MS;
    while (metricSum('CoinsMinted') === 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(metricSum('CoinsMinted')).toBe(500);
    expect(metricSum('Recharges', { outcome: 'credited' })).toBe(1);
    expect(metricSum('WebhookEvents', { type: 'payment_intent.succeeded', outcome: 'credited' })).toBe(1);
    expect(metricSum('CoinsClawedBack')).toBe(0);
  });
});
