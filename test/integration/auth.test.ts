import fc from 'fast-check';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { exportSPKI, generateKeyPair, importJWK, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from 'jose';
import { LOCAL_AUDIENCE, LOCAL_KEY_ID, signLocalToken } from '../../infra/local/issuer';
import { LOCAL_ISSUER, type LocalStack } from '../../infra/local/stack';
import { HTTP_ROUTES, type HttpRoute } from '../../infra/routes';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { rateLimitConfig, forgetConfig } from '../../shared/config';
import { logger } from '../../shared/logger';
import {
  httpSpecOf,
  jsonSchemaOf,
  sendRaw,
  stripeSignature,
  tryUpgrade,
  validLooking,
  type RawAnswer,
} from '../support/fuzz';
import { apiClient, expectBooksBalance, startTestStack, type ApiClient } from '../support/local-stack';
import { seedDiamonds } from './usecases/payout-fixtures';

/**
 * Issue 8, part 4: forged, expired and misdirected tokens are refused on every JWT route and at
 * the WebSocket upgrade; another user's recharges, payouts and transactions are NOT_FOUND (their
 * existence never leaks); the webhook refuses forged and stale signatures; money routes are rate
 * limited per user. Routes come from the route table: a test for a route not there yet is skipped.
 */

/** Small limits so a burst is quick to exhaust: 8 requests, then one a second. */
const RATE_LIMIT_BURST = 8;
const RATE_LIMIT_PER_SECOND = 1;
/** Stripe's tolerance (shared/adapters/payments.ts) is 300 s; one past it is stale. */
const STALE_SIGNATURE_AGE_SECONDS = 301;
/** jwt.ts tolerates 30 s of clock skew; these tokens are well past it. */
const EXPIRED_AGO_SECONDS = 120;
const PAYOUTS_ENABLED_WITHIN_MS = 10_000;

let stack: LocalStack;
let api: ApiClient;
let dynamo: DynamoDBClient;
let store: DynamoLedgerStore;

const storedKey = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { privateJwk: JWK; publicJwk: JWK };

function keyFile(): string {
  const file = process.env.LOCAL_ISSUER_KEY_FILE;
  if (!file) throw new Error('LOCAL_ISSUER_KEY_FILE is not set: start the stack first');
  return file;
}

const ADULT = { birthdate: '1990-01-01', country: 'US' };
const now = () => Math.floor(Date.now() / 1000);

async function userToken(sub: string): Promise<string> {
  return signLocalToken(keyFile(), LOCAL_ISSUER, { sub, ...ADULT });
}

/** A token signed by the issuer's own key, with the claims and header a test chooses. */
async function issuerSigned(claims: JWTPayload, options: { kid?: string } = {}): Promise<string> {
  const key = await importJWK(storedKey(keyFile()).privateJwk, 'ES256');
  return new SignJWT({ birthdate: ADULT.birthdate, country: ADULT.country, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? LOCAL_KEY_ID, typ: 'JWT' })
    .sign(key);
}

const standardClaims = (overrides: JWTPayload = {}): JWTPayload => ({
  sub: 'mallory',
  iss: LOCAL_ISSUER,
  aud: LOCAL_AUDIENCE,
  iat: now(),
  exp: now() + 3600,
  ...overrides,
});

/** Every way a token can be wrong, each a distinct attack or mistake. */
async function badTokens(): Promise<Array<[string, string]>> {
  const publicJwk = storedKey(keyFile()).publicJwk;
  const publicKey = await importJWK(publicJwk, 'ES256');
  const publicPem = await exportSPKI(publicKey as CryptoKey);
  const strangerEs = await generateKeyPair('ES256');
  const strangerRs = await generateKeyPair('RS256');
  const { sub: _sub, ...withoutSub } = standardClaims();
  const { exp: _exp, ...withoutExp } = standardClaims();
  return [
    ['expired', await issuerSigned(standardClaims({ iat: now() - 7200, exp: now() - EXPIRED_AGO_SECONDS }))],
    ['not yet valid (nbf in an hour)', await issuerSigned(standardClaims({ nbf: now() + 3600 }))],
    ['wrong issuer', await issuerSigned(standardClaims({ iss: 'https://evil.example' }))],
    ['wrong audience', await issuerSigned(standardClaims({ aud: 'some-other-app' }))],
    ['no audience', await issuerSigned({ sub: 'mallory', iss: LOCAL_ISSUER, iat: now(), exp: now() + 3600 })],
    ['alg none', new UnsecuredJWT(standardClaims()).encode()],
    [
      'alg none, signature kept',
      `${new UnsecuredJWT(standardClaims()).encode()}${(await userToken('mallory')).split('.')[2] ?? ''}`,
    ],
    [
      'HS256 with the public JWK as secret',
      await new SignJWT(standardClaims())
        .setProtectedHeader({ alg: 'HS256', kid: LOCAL_KEY_ID })
        .sign(new TextEncoder().encode(JSON.stringify(publicJwk))),
    ],
    [
      'HS256 with the public PEM as secret',
      await new SignJWT(standardClaims())
        .setProtectedHeader({ alg: 'HS256', kid: LOCAL_KEY_ID })
        .sign(new TextEncoder().encode(publicPem)),
    ],
    [
      'a key the issuer never had (same kid)',
      await new SignJWT(standardClaims())
        .setProtectedHeader({ alg: 'ES256', kid: LOCAL_KEY_ID })
        .sign(strangerEs.privateKey),
    ],
    [
      'a key the issuer never had (own kid)',
      await new SignJWT(standardClaims())
        .setProtectedHeader({ alg: 'ES256', kid: 'attacker-1' })
        .sign(strangerEs.privateKey),
    ],
    [
      'an RS256 key the issuer never had',
      await new SignJWT(standardClaims())
        .setProtectedHeader({ alg: 'RS256', kid: LOCAL_KEY_ID })
        .sign(strangerRs.privateKey),
    ],
    ['no sub', await issuerSigned(withoutSub)],
    ['empty sub', await issuerSigned(standardClaims({ sub: '' }))],
    ['no exp', await issuerSigned(withoutExp)],
    [
      'payload swapped under a valid signature',
      swapPayload(await userToken('mallory'), standardClaims({ sub: 'victim' })),
    ],
    ['garbage', 'not.a.token'],
  ];
}

/** A valid token's header and signature around another payload. */
function swapPayload(token: string, payload: JWTPayload): string {
  const [header, , signature] = token.split('.');
  return `${header ?? ''}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${signature ?? ''}`;
}

/** A path of the route with every parameter filled, e.g. /v1/payouts/no-such-id. */
function concretePath(route: HttpRoute, id = 'no-such-id'): string {
  return route.path.replace(/\{[A-Za-z0-9_]+\}/g, id);
}

function expectError(answer: { status: number; body: unknown }, status: number, code: string): void {
  expect({
    status: answer.status,
    code: (answer.body as { error?: { code?: string } } | undefined)?.error?.code,
  }).toEqual({ status, code });
}

beforeAll(async () => {
  stack = await startTestStack({
    RATE_LIMIT_PER_SECOND: String(RATE_LIMIT_PER_SECOND),
    RATE_LIMIT_BURST: String(RATE_LIMIT_BURST),
  });
  logger.setLogLevel('SILENT');
  api = apiClient(stack.httpUrl);
  dynamo = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
  });
  store = new DynamoLedgerStore(dynamo, stack.tableNames.ledger);
});
afterAll(async () => {
  dynamo.destroy();
  await stack.stop();
});

describe('tokens', () => {
  const jwtRoutes = HTTP_ROUTES.filter((route) => route.auth === 'jwt');

  it('accepts the issuer own token (the control)', async () => {
    const token = await userToken('control-user');
    expect((await api.request('GET', '/v1/wallet', { token })).status).toBe(200);
    const upgrade = await tryUpgrade(`${stack.wsUrl}/?token=${encodeURIComponent(token)}`);
    expect(upgrade.status).toBe(101);
    upgrade.socket?.close();
  });

  it('refuses every bad token with 401 UNAUTHORIZED on every JWT route of the route table', async () => {
    const tokens = await badTokens();
    const failures: string[] = [];
    await Promise.all(
      tokens.flatMap(([name, token]) =>
        jwtRoutes.map(async (route) => {
          const answer = await sendRaw(stack.httpUrl, {
            method: route.method,
            path: concretePath(route),
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/json',
              'idempotency-key': randomUUID(),
            },
            body: Buffer.from('{}'),
          });
          const code = (JSON.parse(answer.text || '{}') as { error?: { code?: string } }).error?.code;
          if (answer.status !== 401 || code !== 'UNAUTHORIZED')
            failures.push(`${name} -> ${route.method} ${route.path}: ${answer.status} ${answer.text.slice(0, 200)}`);
        }),
      ),
    );
    expect(failures).toEqual([]);
    expect(jwtRoutes.length).toBeGreaterThan(0);
  });

  it('refuses a missing or malformed Authorization header with 401 on every JWT route', async () => {
    const token = await userToken('header-user');
    const headers: Array<Record<string, string>> = [
      {},
      { authorization: token },
      { authorization: `Basic ${token}` },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${token} extra` },
    ];
    const failures: string[] = [];
    for (const route of jwtRoutes) {
      for (const header of headers) {
        const answer = await sendRaw(stack.httpUrl, {
          method: route.method,
          path: concretePath(route),
          headers: header,
        });
        if (answer.status !== 401)
          failures.push(`${JSON.stringify(header).slice(0, 40)} -> ${route.method} ${route.path}: ${answer.status}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('refuses every bad token with 401 at the WebSocket upgrade', async () => {
    const failures: string[] = [];
    for (const [name, token] of [...(await badTokens()), ['missing', ''] as [string, string]]) {
      const query = token === '' ? '' : `?token=${encodeURIComponent(token)}`;
      const upgrade = await tryUpgrade(`${stack.wsUrl}/${query}`);
      upgrade.socket?.terminate();
      if (upgrade.status !== 401) failures.push(`${name}: ${upgrade.status} ${upgrade.error ?? ''}`);
    }
    expect(failures).toEqual([]);
  });
});

describe("another user's ids are NOT_FOUND, exactly like ids that do not exist", () => {
  /** The same status and body for someone else's id as for an id that never existed: nothing leaks. */
  async function expectSameAsUnknown(
    method: string,
    path: (id: string) => string,
    othersId: string,
    token: string,
    body?: unknown,
  ): Promise<void> {
    const headers = (): Record<string, string> => (body === undefined ? {} : { 'idempotency-key': randomUUID() });
    const theirs = await api.request(method, path(othersId), {
      token,
      ...(body !== undefined && { body }),
      headers: headers(),
    });
    const unknown = await api.request(method, path(`${othersId}x`), {
      token,
      ...(body !== undefined && { body }),
      headers: headers(),
    });
    expectError(theirs, 404, 'NOT_FOUND');
    expect(theirs.body).toEqual(unknown.body);
  }

  it('GET /v1/recharges/{id} of another user', async () => {
    const alice = await userToken('recharge-alice');
    const bob = await userToken('recharge-bob');
    const created = await api.request('POST', '/v1/recharges', {
      token: alice,
      body: { packageId: 'coins_100' },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(created.status).toBe(201);
    const rechargeId = String(created.body.rechargeId);
    expect((await api.request('GET', `/v1/recharges/${rechargeId}`, { token: alice })).status).toBe(200);
    await expectSameAsUnknown('GET', (id) => `/v1/recharges/${encodeURIComponent(id)}`, rechargeId, bob);
  });

  it('GET /v1/payouts/{id} of another user, and GET /v1/payouts does not list it', async () => {
    const creator = 'payout-alice';
    const alice = await userToken(creator);
    const bob = await userToken('payout-bob');
    await seedDiamonds(store, creator, 5_000);
    const account = await api.request('POST', '/v1/creator/payout-account', { token: alice });
    expect(account.status).toBe(201);
    await stack.payments.completeOnboarding(String(account.body.accountId));
    const deadline = Date.now() + PAYOUTS_ENABLED_WITHIN_MS;
    while ((await api.request('GET', '/v1/creator/payout-account', { token: alice })).body?.payoutsEnabled !== true) {
      if (Date.now() > deadline) throw new Error('payouts were not enabled after onboarding');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const payout = await api.request('POST', '/v1/payouts', {
      token: alice,
      body: { diamonds: 2_000 },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(payout.status).toBe(202);
    const payoutId = String(payout.body.payoutId);
    expect((await api.request('GET', `/v1/payouts/${payoutId}`, { token: alice })).status).toBe(200);
    await expectSameAsUnknown('GET', (id) => `/v1/payouts/${encodeURIComponent(id)}`, payoutId, bob);
    const list = await api.request('GET', '/v1/payouts', { token: bob });
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(payoutId);
    await expectBooksBalance(stack);
  });

  it('POST /v1/wallet/transactions/{id}/report on another user entry locks nobody', async () => {
    const alice = await userToken('report-alice');
    const bob = await userToken('report-bob');
    await seedDiamonds(store, 'report-alice', 10);
    const transactions = await api.request('GET', '/v1/wallet/transactions', { token: alice });
    expect(transactions.status).toBe(200);
    const entryId = String(transactions.body.items[0].id);
    await expectSameAsUnknown(
      'POST',
      (id) => `/v1/wallet/transactions/${encodeURIComponent(id)}/report`,
      entryId,
      bob,
      { reason: 'not mine' },
    );
    expect((await api.request('GET', '/v1/wallet', { token: bob })).body.locked).toBe(false);
    expect((await api.request('GET', '/v1/wallet', { token: alice })).body.locked).toBe(false);
    // The owner may report it (the control): 201, and her wallet locks.
    const own = await api.request('POST', `/v1/wallet/transactions/${encodeURIComponent(entryId)}/report`, {
      token: alice,
      body: { reason: 'not me' },
    });
    expect(own.status).toBe(201);
    expect((await api.request('GET', '/v1/wallet', { token: alice })).body.locked).toBe(true);
  });

  it("POST /v1/streams/{id}/end of another creator's stream is FORBIDDEN", async () => {
    const alice = await userToken('stream-alice');
    const bob = await userToken('stream-bob');
    const stream = await api.request('POST', '/v1/streams', { token: alice, body: { title: 'mine' } });
    expect(stream.status).toBe(201);
    const ended = await api.request('POST', `/v1/streams/${encodeURIComponent(String(stream.body.streamId))}/end`, {
      token: bob,
    });
    expectError(ended, 403, 'FORBIDDEN');
    expect(
      (await api.request('GET', `/v1/streams/${encodeURIComponent(String(stream.body.streamId))}`, { token: bob })).body
        .status,
    ).toBe('live');
  });
});

describe('the Stripe webhook refuses what Stripe did not sign', () => {
  /** An event type the handler ignores: a valid signature answers 200 and changes nothing. */
  const event = () =>
    Buffer.from(
      JSON.stringify({
        id: `evt_${randomUUID()}`,
        object: 'event',
        livemode: false,
        type: 'customer.created',
        data: { object: { id: 'cus_1', object: 'customer' } },
      }),
    );
  const post = (body: Buffer, signature?: string): Promise<RawAnswer> =>
    sendRaw(stack.httpUrl, {
      method: 'POST',
      path: '/v1/webhooks/stripe',
      headers: {
        'content-type': 'application/json',
        ...(signature !== undefined && { 'stripe-signature': signature }),
      },
      body,
    });

  it('accepts a fresh event signed with the webhook secret (the control)', async () => {
    const body = event();
    const answer = await post(body, stripeSignature(stack.webhookSecret, body));
    expect(answer.status).toBe(200);
  });

  const forgeries: Array<[string, (body: Buffer) => { body: Buffer; signature?: string }]> = [
    ['no Stripe-Signature header', (body) => ({ body })],
    ['signed with another secret', (body) => ({ body, signature: stripeSignature('whsec_attacker', body) })],
    [
      'stale: signed 301 s ago',
      (body) => ({
        body,
        signature: stripeSignature(
          String(process.env.STRIPE_WEBHOOK_SECRET),
          body,
          now() - STALE_SIGNATURE_AGE_SECONDS,
        ),
      }),
    ],
    [
      'body changed after signing',
      (body) => ({
        body: Buffer.from(body.toString().replace('customer.created', 'payment_intent.succeeded')),
        signature: stripeSignature(String(process.env.STRIPE_WEBHOOK_SECRET), body),
      }),
    ],
    [
      'the signature of another body',
      (body) => ({ body, signature: stripeSignature(String(process.env.STRIPE_WEBHOOK_SECRET), Buffer.from('{}')) }),
    ],
    [
      'only a v0 signature',
      (body) => ({
        body,
        signature: stripeSignature(String(process.env.STRIPE_WEBHOOK_SECRET), body).replace('v1=', 'v0='),
      }),
    ],
    ['an empty v1', (body) => ({ body, signature: `t=${now()},v1=` })],
    ['an empty timestamp and v1', (body) => ({ body, signature: 't=,v1=' })],
    ['garbage', (body) => ({ body, signature: 'garbage' })],
  ];
  for (const [name, forge] of forgeries) {
    it(`answers 400 to ${name}`, async () => {
      const forged = forge(event());
      const answer = await post(forged.body, forged.signature);
      expect({
        status: answer.status,
        code: (JSON.parse(answer.text || '{}') as { error?: { code?: string } }).error?.code,
      }).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
    });
  }
});

describe('per-user rate limiting of money routes', () => {
  it('defaults to 50 requests a second with bursts of 200 (API.md, local stack only)', () => {
    const saved = { perSecond: process.env.RATE_LIMIT_PER_SECOND, burst: process.env.RATE_LIMIT_BURST };
    delete process.env.RATE_LIMIT_PER_SECOND;
    delete process.env.RATE_LIMIT_BURST;
    try {
      forgetConfig();
      expect(rateLimitConfig()).toEqual({ RATE_LIMIT_PER_SECOND: 50, RATE_LIMIT_BURST: 200 });
    } finally {
      if (saved.perSecond !== undefined) process.env.RATE_LIMIT_PER_SECOND = saved.perSecond;
      if (saved.burst !== undefined) process.env.RATE_LIMIT_BURST = saved.burst;
      forgetConfig();
    }
  });

  const limited = HTTP_ROUTES.filter((route) => route.auth === 'jwt')
    .map((route) => ({ route, spec: httpSpecOf(route) }))
    .filter(({ spec }) => spec?.rateLimited === true || spec?.idempotent === true);

  it('covers every idempotent (money-moving) route', () => {
    const idempotent = HTTP_ROUTES.filter((route) => httpSpecOf(route)?.idempotent === true).map(
      (route) => `${route.method} ${route.path}`,
    );
    expect(idempotent.length).toBeGreaterThan(0);
    for (const label of idempotent)
      expect(limited.map(({ route }) => `${route.method} ${route.path}`)).toContain(label);
  });

  it.each(limited.map(({ route, spec }) => [`${route.method} ${route.path}`, route, spec] as const))(
    '%s: 429 RATE_LIMITED with Retry-After past the burst, another user unaffected',
    async (_label, route, spec) => {
      // A request that passes validation (refusals before the limiter take no token).
      const body = spec?.body
        ? fc.sample(
            validLooking(jsonSchemaOf(spec.body), { knownIds: [], idsByField: {} }).filter(
              (value) => spec.body?.safeParse(value).success === true,
            ),
            { numRuns: 1, seed: 7 },
          )[0]
        : undefined;
      const slug = route.path.replace(/[^a-z]/g, '');
      const send = async (sub: string) =>
        sendRaw(stack.httpUrl, {
          method: route.method,
          path: concretePath(route),
          headers: {
            authorization: `Bearer ${await userToken(sub)}`,
            'content-type': 'application/json',
            'idempotency-key': randomUUID(),
          },
          ...(body !== undefined && { body: Buffer.from(JSON.stringify(body)) }),
        });
      const greedy = `greedy-${slug}`;
      const answers = await Promise.all(Array.from({ length: RATE_LIMIT_BURST + 10 }, () => send(greedy)));
      const limitedAnswers = answers.filter((answer) => answer.status === 429);
      expect(limitedAnswers.length).toBeGreaterThan(0);
      expect(answers.length - limitedAnswers.length).toBeGreaterThanOrEqual(RATE_LIMIT_BURST);
      for (const answer of limitedAnswers) {
        expect(JSON.parse(answer.text).error.code).toBe('RATE_LIMITED');
        expect(String(answer.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
      }
      const bystander = await send(`bystander-${slug}`);
      expect(bystander.status).not.toBe(429);
    },
  );
});
