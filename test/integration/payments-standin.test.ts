import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Stripe from 'stripe';
import { startPaymentsStandIn, type PaymentsStandIn } from '../../infra/local/payments';

const WEBHOOK_SECRET = 'whsec_standin_test_secret';
const API_KEY = 'sk_test_standin';
const WAIT_TIMEOUT_MS = 10_000;

interface Delivery {
  raw: string;
  signature: string;
  event: Stripe.Event;
}

/** A webhook endpoint that verifies each delivery with the real SDK and answers from a script of statuses. */
class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  /** Statuses for the next deliveries, in order; 200 once it runs out. */
  statuses: number[] = [];
  private server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const signature = String(request.headers['stripe-signature']);
      // constructEvent throws on a bad signature: the test then sees no delivery and a 400.
      try {
        const event = Stripe.webhooks.constructEvent(raw, signature, WEBHOOK_SECRET);
        this.deliveries.push({ raw, signature, event });
      } catch {
        response.writeHead(400).end();
        return;
      }
      response.writeHead(this.statuses.shift() ?? 200, { 'content-type': 'application/json' }).end('{"received":true}');
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${address.port}/v1/webhooks/stripe`;
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  ofEvent(eventId: string): Delivery[] {
    return this.deliveries.filter((delivery) => delivery.event.id === eventId);
  }

  async waitFor(predicate: (deliveries: Delivery[]) => boolean): Promise<void> {
    const deadline = Date.now() + WAIT_TIMEOUT_MS;
    while (!predicate(this.deliveries)) {
      if (Date.now() > deadline)
        throw new Error(`timed out; deliveries: ${this.deliveries.map((d) => d.event.type).join(',')}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

function stripeFor(standIn: PaymentsStandIn, config: Partial<Stripe.StripeConfig> = {}): Stripe {
  return new Stripe(API_KEY, { host: '127.0.0.1', port: standIn.port, protocol: 'http', ...config });
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('payments stand-in against the real stripe SDK', () => {
  let dataDir: string;
  let receiver: WebhookReceiver;
  let standIn: PaymentsStandIn;
  let stripe: Stripe;

  const start = (): Promise<PaymentsStandIn> =>
    startPaymentsStandIn({ port: 0, dataDir, webhookUrl: receiver.url, webhookSecret: WEBHOOK_SECRET });

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'payments-standin-'));
    receiver = new WebhookReceiver();
    await receiver.start();
    standIn = await start();
    stripe = stripeFor(standIn);
  });

  afterEach(async () => {
    await standIn.stop();
    await receiver.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates a PaymentIntent and delivers a signed payment_intent.succeeded the SDK verifies', async () => {
    const created = await stripe.paymentIntents.create({
      amount: 129,
      currency: 'USD',
      metadata: { rechargeId: 'rc_1', userId: 'user 1' },
      automatic_payment_methods: { enabled: true },
    });
    expect(created.id).toMatch(/^pi_/);
    expect(created.status).toBe('requires_payment_method');
    expect(created.client_secret).toMatch(new RegExp(`^${created.id}_secret_`));
    expect(created).toMatchObject({
      amount: 129,
      currency: 'usd',
      livemode: false,
      metadata: { rechargeId: 'rc_1', userId: 'user 1' },
    });

    const result = await standIn.succeedPayment(created.id);
    expect(result).toEqual({ eventId: expect.stringMatching(/^evt_/), delivered: true, status: 200 });
    const [delivery] = receiver.ofEvent(result.eventId);
    expect(delivery?.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(delivery?.event).toMatchObject({
      object: 'event',
      type: 'payment_intent.succeeded',
      livemode: false,
      pending_webhooks: 1,
      api_version: Stripe.API_VERSION,
      request: { id: null, idempotency_key: null },
      data: { object: { id: created.id, object: 'payment_intent', status: 'succeeded', amount_received: 129 } },
    });
    const retrieved = await stripe.paymentIntents.retrieve(created.id);
    expect(retrieved.status).toBe('succeeded');
    expect(retrieved.latest_charge).toMatch(/^ch_/);
    // A tampered body must not verify: the signature really covers the raw bytes.
    expect(() =>
      Stripe.webhooks.constructEvent(`${delivery?.raw} `, delivery?.signature ?? '', WEBHOOK_SECRET),
    ).toThrow();
  });

  it('re-sends the same succeeded event when succeed is called again, and allows succeed after a failure', async () => {
    const paymentIntent = await stripe.paymentIntents.create({ amount: 500, currency: 'eur' });
    const failed = await standIn.failPayment(paymentIntent.id);
    const first = await standIn.succeedPayment(paymentIntent.id);
    const second = await standIn.succeedPayment(paymentIntent.id);
    expect(second.eventId).toBe(first.eventId);
    expect(failed.eventId).not.toBe(first.eventId);
    expect(receiver.ofEvent(first.eventId)).toHaveLength(2);
    expect(receiver.ofEvent(failed.eventId)[0]?.event.type).toBe('payment_intent.payment_failed');
    // A failure reported after the success is a late event: the PaymentIntent stays succeeded.
    const late = await standIn.failPayment(paymentIntent.id);
    expect(receiver.ofEvent(late.eventId)[0]?.event.data.object).toMatchObject({ status: 'requires_payment_method' });
    expect((await stripe.paymentIntents.retrieve(paymentIntent.id)).status).toBe('succeeded');
  });

  it('replays an idempotent create and refuses the key with other params', async () => {
    const key = 'recharge-42';
    const params = { amount: 999, currency: 'usd', metadata: { rechargeId: 'rc_42' } };
    const first = await stripe.paymentIntents.create(params, { idempotencyKey: key });
    const replay = await stripe.paymentIntents.create(
      { metadata: { rechargeId: 'rc_42' }, currency: 'usd', amount: 999 },
      { idempotencyKey: key },
    );
    expect(replay.id).toBe(first.id);
    expect(replay.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(standIn.requestCountByIdempotencyKey(key)).toBe(2);

    const error = await rejectionOf(stripe.paymentIntents.create({ ...params, amount: 1000 }, { idempotencyKey: key }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(standIn.requestCountByIdempotencyKey(key)).toBe(3);
    // Another API key has its own key space.
    const other = await new Stripe('sk_test_other', {
      host: '127.0.0.1',
      port: standIn.port,
      protocol: 'http',
    }).paymentIntents.create(params, {
      idempotencyKey: key,
    });
    expect(other.id).not.toBe(first.id);
  });

  it('executes concurrent creates with one key once', async () => {
    const key = 'concurrent-key';
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        stripe.paymentIntents.create({ amount: 100, currency: 'usd' }, { idempotencyKey: key }),
      ),
    );
    expect(new Set(results.map((paymentIntent) => paymentIntent.id)).size).toBe(1);
    expect(standIn.requestCountByIdempotencyKey(key)).toBe(8);
  });

  it('onboards a Connect account through the account link and sends account.updated', async () => {
    const account = await stripe.accounts.create({
      type: 'express',
      metadata: { creatorId: 'creator-1' },
      capabilities: { transfers: { requested: true } },
    });
    expect(account).toMatchObject({ payouts_enabled: false, details_submitted: false });
    expect(account.id).toMatch(/^acct_/);
    const link = await stripe.accountLinks.create({
      account: account.id,
      type: 'account_onboarding',
      refresh_url: 'http://127.0.0.1:3000/refresh',
      return_url: 'http://127.0.0.1:3000/done?x=<1>',
    });
    expect(link.object).toBe('account_link');
    expect(link.url).toBe(`${standIn.url}/connect/onboarding/${account.id}`);

    const page = await fetch(link.url);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('Onboarding complete');
    expect(html).toContain('href="http://127.0.0.1:3000/done?x=&#60;1&#62;"');
    const updated = receiver.deliveries.find((delivery) => delivery.event.type === 'account.updated');
    expect(updated?.event.account).toBe(account.id);
    expect(updated?.event.data.object).toMatchObject({
      id: account.id,
      payouts_enabled: true,
      details_submitted: true,
    });
    expect((await stripe.accounts.retrieve(account.id)).payouts_enabled).toBe(true);
  });

  it('makes transfers to onboarded accounts only and lists them by transfer_group', async () => {
    const account = await stripe.accounts.create({ type: 'express' });
    const notOnboarded = await rejectionOf(
      stripe.transfers.create({ amount: 1000, currency: 'usd', destination: account.id }),
    );
    expect(notOnboarded).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    await standIn.completeOnboarding(account.id);

    const first = await stripe.transfers.create(
      {
        amount: 1000,
        currency: 'usd',
        destination: account.id,
        transfer_group: 'payout_1',
        metadata: { payoutId: 'payout_1' },
      },
      { idempotencyKey: 'payout_1' },
    );
    const second = await stripe.transfers.create({
      amount: 2000,
      currency: 'usd',
      destination: account.id,
      transfer_group: 'payout_1',
    });
    await stripe.transfers.create({
      amount: 3000,
      currency: 'usd',
      destination: account.id,
      transfer_group: 'payout_2',
    });
    expect(first).toMatchObject({
      object: 'transfer',
      destination: account.id,
      transfer_group: 'payout_1',
      metadata: { payoutId: 'payout_1' },
    });

    const listed = await stripe.transfers.list({ transfer_group: 'payout_1', limit: 10 });
    expect(listed.object).toBe('list');
    expect(listed.has_more).toBe(false);
    expect(listed.data.map((transfer) => transfer.id)).toEqual([second.id, first.id]);
    const firstPage = await stripe.transfers.list({ limit: 1 });
    expect(firstPage.has_more).toBe(true);
    expect(standIn.transfers()).toHaveLength(3);

    const unknown = await rejectionOf(
      stripe.transfers.create({ amount: 1, currency: 'usd', destination: 'acct_missing' }),
    );
    expect(unknown).toMatchObject({
      type: 'StripeInvalidRequestError',
      code: 'resource_missing',
      param: 'destination',
    });
  });

  it('answers injected faults without recording the idempotency key', async () => {
    const noRetry = stripeFor(standIn, { maxNetworkRetries: 0 });
    const account = await noRetry.accounts.create({ type: 'express' });
    await standIn.completeOnboarding(account.id);
    const params = { amount: 1000, currency: 'usd', destination: account.id };

    standIn.injectFault({ path: '/v1/transfers', method: 'POST', kind: 'http500', times: 1 });
    expect(await rejectionOf(noRetry.transfers.create(params, { idempotencyKey: 'fault-500' }))).toMatchObject({
      type: 'StripeAPIError',
      statusCode: 500,
    });
    standIn.injectFault({ path: '/v1/transfers', kind: 'http429', times: 1 });
    const rateLimited = await rejectionOf(noRetry.transfers.create(params, { idempotencyKey: 'fault-500' }));
    expect(rateLimited).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(rateLimited).toMatchObject({ statusCode: 429, headers: { 'retry-after': '1' } });
    standIn.injectFault({ path: '/v1/transfers', kind: 'rejectDestination', times: 1 });
    expect(await rejectionOf(noRetry.transfers.create(params, { idempotencyKey: 'fault-500' }))).toMatchObject({
      type: 'StripeInvalidRequestError',
      code: 'account_invalid',
    });
    // None of the three was stored: the same key now executes.
    const transfer = await noRetry.transfers.create(params, { idempotencyKey: 'fault-500' });
    expect(transfer.id).toMatch(/^tr_/);
    expect(standIn.requestCountByIdempotencyKey('fault-500')).toBe(4);
    expect(standIn.transfers()).toHaveLength(1);

    // The SDK's own retry of a 500 reuses its key and lands once.
    standIn.injectFault({ path: '/v1/transfers', kind: 'http500', times: 1 });
    const retried = await stripeFor(standIn, { maxNetworkRetries: 1 }).transfers.create(params, {
      idempotencyKey: 'sdk-retry',
    });
    expect(retried.id).toMatch(/^tr_/);
    expect(standIn.requestCountByIdempotencyKey('sdk-retry')).toBe(2);
    expect(standIn.transfers()).toHaveLength(2);
  });

  it('hangs on a timeout fault and still stops at once', async () => {
    standIn.injectFault({ path: '/v1/payment_intents', kind: 'timeout', times: 1 });
    const impatient = stripeFor(standIn, { maxNetworkRetries: 0, timeout: 300 });
    const error = await rejectionOf(impatient.paymentIntents.create({ amount: 100, currency: 'usd' }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    const hanging = fetch(`${standIn.url}/v1/payment_intents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}` },
    }).catch(() => 'closed');
    standIn.injectFault({ path: '/v1/payment_intents', kind: 'timeout', times: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const startedMs = Date.now();
    await standIn.stop();
    expect(Date.now() - startedMs).toBeLessThan(1000);
    await hanging;
    standIn = await start(); // afterEach stops it
  });

  it('retries a webhook the receiver refuses, then delivers it', async () => {
    const paymentIntent = await stripe.paymentIntents.create({ amount: 100, currency: 'usd' });
    receiver.statuses = [500];
    const result = await standIn.succeedPayment(paymentIntent.id);
    expect(result).toMatchObject({ delivered: false, status: 500 });
    await receiver.waitFor(() => receiver.ofEvent(result.eventId).length === 2);
    const [first, second] = receiver.ofEvent(result.eventId);
    expect(second?.event.id).toBe(first?.event.id);
  });

  it('disputes once and refunds in parts through the control endpoints', async () => {
    const paymentIntent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    const control = (action: string, body?: unknown): Promise<Response> =>
      fetch(`${standIn.url}/_standin/payments/${paymentIntent.id}/${action}`, {
        method: 'POST',
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });
    expect((await control('dispute')).status).toBe(409);
    expect((await fetch(`${standIn.url}/_standin/payments/pi_missing/succeed`, { method: 'POST' })).status).toBe(404);
    expect(await (await control('succeed')).json()).toMatchObject({ delivered: true, status: 200 });

    const dispute = (await (await control('dispute')).json()) as { eventId: string };
    const again = (await (await control('dispute')).json()) as { eventId: string };
    expect(again.eventId).toBe(dispute.eventId);
    expect(receiver.ofEvent(dispute.eventId)[0]?.event.data.object).toMatchObject({
      object: 'dispute',
      amount: 1000,
      payment_intent: paymentIntent.id,
      reason: 'fraudulent',
      status: 'needs_response',
    });

    const partial = (await (await control('refund', { amount: 300 })).json()) as { eventId: string };
    const rest = await standIn.refundPayment(paymentIntent.id);
    expect(receiver.ofEvent(partial.eventId)[0]?.event.data.object).toMatchObject({
      amount_refunded: 300,
      refunded: false,
    });
    expect(receiver.ofEvent(rest.eventId)[0]?.event.data.object).toMatchObject({
      object: 'charge',
      amount: 1000,
      amount_refunded: 1000,
      refunded: true,
    });
    expect((await control('refund')).status).toBe(409);
    expect((await control('refund', { amount: -1 })).status).toBe(400);
  });

  it('cancels a PaymentIntent and sends payment_intent.canceled', async () => {
    const paymentIntent = await stripe.paymentIntents.create({ amount: 100, currency: 'usd' });
    const canceled = await stripe.paymentIntents.cancel(paymentIntent.id);
    expect(canceled.status).toBe('canceled');
    await receiver.waitFor((deliveries) =>
      deliveries.some((delivery) => delivery.event.type === 'payment_intent.canceled'),
    );
    expect(await rejectionOf(standIn.succeedPayment(paymentIntent.id))).toMatchObject({ statusCode: 409 });
  });

  it('refuses bad auth, unknown ids and unknown params as Stripe does', async () => {
    const unauthenticated = await rejectionOf(
      new Stripe('not_a_key', { host: '127.0.0.1', port: standIn.port, protocol: 'http' }).paymentIntents.retrieve(
        'pi_x',
      ),
    );
    expect(unauthenticated).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(await rejectionOf(stripe.paymentIntents.retrieve('pi_missing'))).toMatchObject({
      type: 'StripeInvalidRequestError',
      statusCode: 404,
      code: 'resource_missing',
    });
    const unknownParam = await rejectionOf(
      stripe.paymentIntents.create({ amount: 100, currency: 'usd', bogus: 'x' } as Stripe.PaymentIntentCreateParams),
    );
    expect(unknownParam).toMatchObject({ code: 'parameter_unknown', param: 'bogus' });
    expect(
      await rejectionOf(stripe.paymentIntents.create({ currency: 'usd' } as Stripe.PaymentIntentCreateParams)),
    ).toMatchObject({
      code: 'parameter_missing',
      param: 'amount',
    });
  });

  it('keeps PaymentIntents, transfers, idempotency keys and pending deliveries across a restart', async () => {
    const paymentIntent = await stripe.paymentIntents.create(
      { amount: 777, currency: 'usd' },
      { idempotencyKey: 'restart-key' },
    );
    const account = await stripe.accounts.create({ type: 'express' });
    await standIn.completeOnboarding(account.id);
    const transfer = await stripe.transfers.create({
      amount: 1000,
      currency: 'usd',
      destination: account.id,
      transfer_group: 'payout_r',
    });
    receiver.statuses = [503];
    const undelivered = await standIn.succeedPayment(paymentIntent.id);
    expect(undelivered.delivered).toBe(false);
    await standIn.stop();

    standIn = await start();
    stripe = stripeFor(standIn);
    expect((await stripe.paymentIntents.retrieve(paymentIntent.id)).status).toBe('succeeded');
    expect(standIn.transfers().map((stored) => stored.id)).toEqual([transfer.id]);
    const listed = await stripe.transfers.list({ transfer_group: 'payout_r' });
    expect(listed.data[0]?.id).toBe(transfer.id);
    const replay = await stripe.paymentIntents.create(
      { amount: 777, currency: 'usd' },
      { idempotencyKey: 'restart-key' },
    );
    expect(replay.id).toBe(paymentIntent.id);
    await receiver.waitFor(() => receiver.ofEvent(undelivered.eventId).length === 2);
    expect((await standIn.succeedPayment(paymentIntent.id)).eventId).toBe(undelivered.eventId);
  });
});
