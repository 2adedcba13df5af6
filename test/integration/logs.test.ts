import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { signLocalToken } from '../../infra/local/issuer';
import { LOCAL_ISSUER, type LocalStack } from '../../infra/local/stack';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { logger } from '../../shared/logger';
import { sendRaw, stripeSignature, tryUpgrade, type RawAnswer } from '../support/fuzz';
import { expectBooksBalance, RecordingSocket, startTestStack } from '../support/local-stack';
import { seedDiamonds } from './usecases/payout-fixtures';

/**
 * Issue 8, part 6: the functions log structured JSON, with a correlation id per request (the
 * one API Gateway returns as `apigw-requestid`, and a 500 repeats in its body) and per queue
 * message; and no token, Stripe secret, webhook signature, client secret or card number ever
 * reaches the logs, at DEBUG level, through a whole session: tokens on HTTP and WebSocket, a
 * recharge paid through a signed webhook, a payout through the queue, refusals, and a 500.
 */

/** docs/API.md: locally a payout is paid within 10 seconds. */
const PAID_WITHIN_MS = 10_000;
const POLL_MS = 100;
/** Test card numbers (Stripe's), sent where a careless handler might log them. */
const CARD_NUMBERS = ['4242424242424242', '4000 0566 5566 5556', '5555-5555-5555-4444'];

let stack: LocalStack;
let dynamo: DynamoDBClient;
let store: DynamoLedgerStore;
const captured: string[] = [];
let restoreWrites: (() => void) | undefined;
/** Every secret handed out or used during the session: none may appear in the logs. */
const secrets = new Map<string, string>();

function remember(what: string, value: string): void {
  secrets.set(value, what);
}

/** Captures everything written to stdout and stderr; log lines are kept out of the test's output. */
function captureOutput(): () => void {
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((stream) => stream.write.bind(stream));
  streams.forEach((stream, index) => {
    const original = originals[index];
    if (!original) return;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
      captured.push(text);
      if (text.trimStart().startsWith('{"level"')) return true;
      return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
  });
  return () =>
    streams.forEach((stream, index) => {
      const original = originals[index];
      if (original) stream.write = original as typeof stream.write;
    });
}

interface LogLine {
  level: string;
  message: string;
  timestamp: string;
  service: string;
  correlationId?: string;
  route?: string;
  messageId?: string;
  [key: string]: unknown;
}

function logLines(): LogLine[] {
  return captured
    .join('')
    .split('\n')
    .filter((line) => line.trimStart().startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

async function token(
  sub: string,
  claims: { birthdate?: string; country?: string } = { birthdate: '1990-01-01', country: 'US' },
): Promise<string> {
  const keyFile = process.env.LOCAL_ISSUER_KEY_FILE;
  if (!keyFile) throw new Error('LOCAL_ISSUER_KEY_FILE is not set');
  const signed = await signLocalToken(keyFile, LOCAL_ISSUER, { sub, ...claims });
  remember(`the token of ${sub}`, signed);
  // A token cut in half is still a leak: its signature alone is checked too.
  remember(`the signature of ${sub}'s token`, signed.split('.')[2] ?? signed);
  return signed;
}

async function call(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<RawAnswer & { json: any }> {
  const answer = await sendRaw(stack.httpUrl, {
    method,
    path,
    headers: {
      ...(options.token && { authorization: `Bearer ${options.token}` }),
      ...(options.body !== undefined && { 'content-type': 'application/json' }),
      ...options.headers,
    },
    ...(options.body !== undefined && { body: Buffer.from(JSON.stringify(options.body)) }),
  });
  let json: unknown;
  try {
    json = answer.text ? JSON.parse(answer.text) : undefined;
  } catch {
    json = undefined;
  }
  return { ...answer, json };
}

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

beforeAll(async () => {
  restoreWrites = captureOutput();
  stack = await startTestStack({ LOG_LEVEL: 'DEBUG' });
  // The logger was built at import, before the stack set LOG_LEVEL: DEBUG shows the most.
  logger.setLogLevel('DEBUG');
  dynamo = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
  });
  store = new DynamoLedgerStore(dynamo, stack.tableNames.ledger);
  remember('STRIPE_SECRET_KEY', String(process.env.STRIPE_SECRET_KEY));
  remember('STRIPE_WEBHOOK_SECRET', stack.webhookSecret);
  const issuerKey = JSON.parse(readFileSync(String(process.env.LOCAL_ISSUER_KEY_FILE), 'utf8')) as {
    privateJwk: { d: string };
  };
  remember("the issuer's private key", issuerKey.privateJwk.d);
});

afterAll(async () => {
  dynamo?.destroy();
  await stack?.stop();
  restoreWrites?.();
});

describe('a whole session, logged at DEBUG', () => {
  let correlationOf500: string | undefined;
  let webhookRequestId: string | undefined;
  let payoutId: string | undefined;

  it('runs requests with tokens, a paid recharge, a webhook, a WebSocket, a payout and refusals', async () => {
    const alice = await token('log-alice');
    const bob = await token('log-bob');
    expect((await call('GET', '/v1/wallet', { token: alice })).status).toBe(200);
    // Refused tokens: a tampered one and another user's token with a swapped payload.
    expect((await call('GET', '/v1/wallet', { token: `${alice.slice(0, -3)}AAA` })).status).toBe(401);
    expect((await call('GET', '/v1/wallet', { token: 'x'.repeat(40) })).status).toBe(401);

    // Card numbers where a careless handler would log them: bodies, queries, headers, refusals.
    for (const card of CARD_NUMBERS) {
      await call('POST', '/v1/streams', { token: alice, body: { title: `card ${card}` } });
      await call('POST', '/dev/tokens', { body: { sub: card.replace(/\D/g, ' ') } });
      await call('GET', `/v1/wallet/transactions?cursor=${encodeURIComponent(card)}`, { token: alice });
      await call('POST', '/v1/recharges', {
        token: alice,
        body: { packageId: card },
        headers: { 'idempotency-key': card },
      });
    }

    // A recharge paid through the stand-in, which sends Stripe's signed webhook.
    const recharge = await call('POST', '/v1/recharges', {
      token: alice,
      body: { packageId: 'coins_500' },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(recharge.status).toBe(201);
    remember('a PaymentIntent client secret', String(recharge.json.payment.clientSecret));
    const paid = await call(
      'POST',
      `/dev/payments/${encodeURIComponent(String(recharge.json.payment.paymentIntentId))}/succeed`,
    );
    expect(paid.status).toBe(200);
    await until(
      'the coins',
      () => call('GET', '/v1/wallet', { token: alice }),
      (answer) => answer.json?.coins === 500,
    );

    // A webhook we sign ourselves: its Stripe-Signature value is known, and must not be logged.
    const event = Buffer.from(
      JSON.stringify({
        id: `evt_${randomUUID()}`,
        object: 'event',
        livemode: false,
        type: 'customer.created',
        data: { object: { id: 'cus_log', object: 'customer', metadata: { card: CARD_NUMBERS[0] } } },
      }),
    );
    const signature = stripeSignature(stack.webhookSecret, event);
    remember('a Stripe-Signature header', signature);
    remember('a Stripe-Signature v1 value', signature.split('v1=')[1] ?? signature);
    const webhook = await sendRaw(stack.httpUrl, {
      method: 'POST',
      path: '/v1/webhooks/stripe',
      headers: { 'content-type': 'application/json', 'stripe-signature': signature },
      body: event,
    });
    expect(webhook.status).toBe(200);
    webhookRequestId = String(webhook.headers['apigw-requestid']);
    const forged = await sendRaw(stack.httpUrl, {
      method: 'POST',
      path: '/v1/webhooks/stripe',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': stripeSignature('whsec_forged_for_logs', event),
      },
      body: event,
    });
    expect(forged.status).toBe(400);

    // WebSocket: the token travels in the query string; a bad one is refused at the upgrade.
    const socket = await RecordingSocket.open(`${stack.wsUrl}/?token=${encodeURIComponent(bob)}`);
    socket.send({ action: 'ping' });
    socket.send({ action: 'sendGift', requestId: 'log-gift', giftId: 'rose', quantity: 1 });
    socket.send(`{"action":"join","streamId":"${CARD_NUMBERS[0]}"}`);
    await socket.waitFor(
      (messages) =>
        messages.some((message) => message.type === 'pong') &&
        messages.filter((message) => message.type === 'error').length >= 2,
    );
    await socket.close();
    const refused = await tryUpgrade(`${stack.wsUrl}/?token=${encodeURIComponent(`${bob.slice(0, -3)}AAA`)}`);
    expect(refused.status).toBe(401);

    // A payout through the queue: the worker's lines carry the message's id.
    const creator = 'log-creator';
    const creatorToken = await token(creator);
    await seedDiamonds(store, creator, 4_000);
    const account = await call('POST', '/v1/creator/payout-account', { token: creatorToken });
    expect(account.status).toBe(201);
    await stack.payments.completeOnboarding(String(account.json.accountId));
    await until(
      'payouts enabled',
      () => call('GET', '/v1/creator/payout-account', { token: creatorToken }),
      (answer) => answer.json?.payoutsEnabled === true,
    );
    const payout = await call('POST', '/v1/payouts', {
      token: creatorToken,
      body: { diamonds: 2_000 },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(payout.status).toBe(202);
    payoutId = String(payout.json.payoutId);
    await until(
      'the payout paid',
      () => call('GET', `/v1/payouts/${encodeURIComponent(String(payoutId))}`, { token: creatorToken }),
      (answer) => answer.json?.status === 'paid',
    );
    // The worker logs after the settlement and the wallet push: paid can show before its line does.
    await until(
      "the worker's line",
      async () => logLines().filter((line) => line.payoutId === payoutId && line.message === 'payout message handled'),
      (lines) => lines.length > 0,
    );

    // A 500, deterministically: the local payments route pointed at a port where nothing listens.
    const standIn = process.env.PAYMENTS_STANDIN_URL;
    process.env.PAYMENTS_STANDIN_URL = 'http://127.0.0.1:1';
    try {
      const broken = await call('POST', '/dev/payments/pi_for_logs/succeed');
      expect(broken.status).toBe(500);
      expect(broken.json.error.code).toBe('INTERNAL');
      expect(broken.text).not.toMatch(/\n\s+at |Error:|fetch failed|ECONNREFUSED|127\.0\.0\.1/);
      correlationOf500 = String(broken.json.error.correlationId);
      expect(broken.headers['apigw-requestid']).toBe(correlationOf500);
    } finally {
      process.env.PAYMENTS_STANDIN_URL = standIn;
    }
    await expectBooksBalance(stack);
  }, 60_000);

  it('wrote only structured JSON lines, each with level, message, timestamp and service', () => {
    const lines = logLines();
    expect(lines.length).toBeGreaterThan(10);
    // DEBUG really was on: the payments stand-in logs each delivery at DEBUG.
    expect(lines.some((line) => line.level === 'DEBUG')).toBe(true);
    for (const line of lines) {
      expect(typeof line.level).toBe('string');
      expect(typeof line.message).toBe('string');
      expect(typeof line.timestamp).toBe('string');
      expect(line.service).toBe('live-gifting');
    }
  });

  it('logged the 500 at ERROR with the correlation id its body repeats', () => {
    expect(correlationOf500).toBeDefined();
    const errors = logLines().filter((line) => line.level === 'ERROR' && line.correlationId === correlationOf500);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]?.route).toBe('POST /dev/payments/{paymentIntentId}/{action}');
  });

  it('gave every line logged inside a request its correlation id, the one API Gateway answers', () => {
    const lines = logLines();
    const requestLines = lines.filter((candidate) => candidate.route !== undefined);
    // Requests were logged at all: an empty list would pass the loop below without checking anything.
    expect(requestLines.length).toBeGreaterThan(0);
    for (const line of requestLines) expect(typeof line.correlationId).toBe('string');
    const webhookLines = lines.filter((line) => line.correlationId === webhookRequestId);
    expect(webhookLines.map((line) => line.message)).toContain('stripe event');
    expect(webhookLines.every((line) => line.route === 'POST /v1/webhooks/stripe')).toBe(true);
  });

  it("gave the queue worker's lines the message's id", () => {
    const workerLines = logLines().filter(
      (line) => line.payoutId === payoutId && line.message === 'payout message handled',
    );
    expect(workerLines.length).toBeGreaterThanOrEqual(1);
    for (const line of workerLines) expect(typeof (line.correlationId ?? line.messageId)).toBe('string');
  });

  it('never logged a token, a Stripe secret, a webhook signature, a client secret or a card number', () => {
    const text = captured.join('');
    const leaks: string[] = [];
    for (const [value, what] of secrets) if (value.length >= 16 && text.includes(value)) leaks.push(what);
    const patterns: Array<[RegExp, string]> = [
      [/\bsk_(?:test|live)_[A-Za-z0-9_]{8,}/, 'a Stripe API key'],
      [/\bwhsec_[A-Za-z0-9+/=_-]{8,}/, 'a webhook signing secret'],
      [/\bv1=[0-9a-f]{64}\b/, 'a Stripe-Signature value'],
      [/\bpi_[A-Za-z0-9]+_secret_[A-Za-z0-9]+/, 'a PaymentIntent client secret'],
      [/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}/, 'a JWT'],
      [/\b(?:Bearer)\s+[A-Za-z0-9._-]{20,}/i, 'a bearer token'],
    ];
    for (const [pattern, what] of patterns) {
      const match = pattern.exec(text);
      if (match) leaks.push(`${what}: ${match[0].slice(0, 12)}…`);
    }
    for (const card of cardLikeNumbers(text)) leaks.push(`a card-like number ${card.slice(0, 4)}…${card.slice(-4)}`);
    expect(leaks).toEqual([]);
  });
});

/** Digit runs of 13-19 (spaces or dashes between) that pass the Luhn check: card numbers. */
function cardLikeNumbers(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])/g)) {
    const digits = match[0].replace(/\D/g, '');
    if (luhn(digits)) found.push(digits);
  }
  return found;
}

function luhn(digits: string): boolean {
  let sum = 0;
  for (let index = 0; index < digits.length; index += 1) {
    let digit = Number(digits[digits.length - 1 - index]);
    if (index % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}
