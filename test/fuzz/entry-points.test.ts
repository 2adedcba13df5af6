import fc from 'fast-check';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { keys } from '../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { entryItem } from '../../shared/adapters/dynamo/items';
import { MAX_BODY_BYTES } from '../../shared/http/route';
import { logger } from '../../shared/logger';
import { signLocalToken } from '../../infra/local/issuer';
import { MAX_WEBSOCKET_MESSAGE_BYTES } from '../../infra/local/gateway';
import { LOCAL_ISSUER, type LocalStack } from '../../infra/local/stack';
import { apiClient, expectBooksBalance, startTestStack, type ApiClient } from '../support/local-stack';
import {
  checkHttpAnswer,
  checkPrototypesUnpolluted,
  checkWsReply,
  closeFuzzAgent,
  DEFAULT_FUZZ_RUNS,
  expectedRequestId,
  frameArbitrary,
  frameData,
  FUZZ_RUNS,
  fuzzParameters,
  HTTP_ROUTES,
  httpCaseArbitrary,
  httpSpecOf,
  jsonSchemaOf,
  materialize,
  ReplyQueue,
  routeLabel,
  sendRaw,
  tryUpgrade,
  upgradeQueryArbitrary,
  validLooking,
  WEBSOCKET_ROUTES,
  wsSpecOf,
  type Caller,
  type FuzzWorld,
} from '../support/fuzz';
import type { HttpRoute, WebSocketRoute } from '../../infra/routes';

/**
 * Issue 8, part 1: every HTTP route and every WebSocket route of the route table, fuzzed
 * through the real local gateway with inputs generated from its own zod schemas and mutated
 * past them. Every answer is under 500, in the contract's error shape, without a stack; no
 * ERROR is logged; and afterwards every balance is what it was and the books balance.
 * FUZZ_RUNS (default 200) cases per route; FUZZ_RUNS=10000 for the long run, FUZZ_SEED to replay.
 *
 * The routes run concurrently (each route's cases in sequence, so fast-check can shrink a
 * failure); each `it` reports one route. The local-only /dev routes drive the in-process
 * stand-ins, so they run last, one at a time. After every case the prototypes are checked for
 * pollution (a `table['__proto__']` write would break every later request of the process).
 */

/**
 * Every route is fuzzed at once, so a route's run ends with about the whole wave (150 to 240 s
 * for 200 cases per route when CI shared the 2 cores with other work; GET /health took 145 s).
 * The first route awaited waits that long, so the timeout is the wave's, not a route's, with
 * room for a loaded machine; it grows with FUZZ_RUNS.
 */
const ROUTE_TIMEOUT_MS = Math.ceil(FUZZ_RUNS / DEFAULT_FUZZ_RUNS) * 360_000;
/** A reply to a WebSocket frame comes within this, or the route is wrong. */
const WS_REPLY_TIMEOUT_MS = 10_000;

const COINS_SEEDED = 5_000;
const COINS_GIFTED_IN_SEED = 1_000;

let stack: LocalStack;
let api: ApiClient;
let store: DynamoLedgerStore;
let dynamo: DynamoDBClient;
/** Shared by every route, so one route's effects (a lock, a budget) meet another's cases. */
let callers: Caller[];
/** Each route also has callers of its own, so a route that locks wallets does not lock everyone. */
const callersByRoute = new Map<string, Caller[]>();
let callerClaims: Array<{ sub: string; birthdate?: string; country?: string; parentalConsent?: boolean }>;
let world: FuzzWorld;
let richTokens: { gifter: string; creator: string };

interface Balances {
  coins: number;
  owedCoins: number;
  diamonds: number;
  pendingDiamonds: number;
}
let walletsBefore: { gifter: Balances; creator: Balances };
let totalsBefore: Record<string, number>;

interface RouteStats {
  cases: number;
  /** Answers by status and error code (`409 INSUFFICIENT_COINS`): how deep the cases reached. */
  answers: Map<string, number>;
  ms: number;
}

function count(routeStats: RouteStats, answer: string): void {
  routeStats.answers.set(answer, (routeStats.answers.get(answer) ?? 0) + 1);
}

/** ` CODE` or ` VALIDATION_FAILED <first path>`, for the summary. */
function errorCodeOf(text: string): string {
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown; details?: Array<{ path?: unknown }> } } | null)
      ?.error;
    if (typeof error?.code !== 'string') return '';
    const path = error.code === 'VALIDATION_FAILED' ? error.details?.[0]?.path : undefined;
    return ` ${error.code}${typeof path === 'string' ? ` ${path.split('.').slice(0, 2).join('.')}` : ''}`;
  } catch {
    return '';
  }
}
const stats = new Map<string, RouteStats>();
const runs = new Map<string, Promise<void>>();
const errorLogLines: string[] = [];
let restoreWrites: (() => void) | undefined;

async function callersFor(label: string): Promise<Caller[]> {
  const slug = label
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
  const own = await Promise.all(
    callerClaims.map(async (claim) => ({
      label: `${claim.sub}-${slug}`,
      token: await token({ ...claim, sub: `${claim.sub}-${slug}` }),
    })),
  );
  callersByRoute.set(label, own);
  return [...callers, ...own];
}

function yearsAgo(years: number): string {
  const date = new Date();
  date.setUTCFullYear(date.getUTCFullYear() - years);
  date.setUTCDate(date.getUTCDate() - 1);
  return date.toISOString().slice(0, 10);
}

async function token(claims: {
  sub: string;
  birthdate?: string;
  country?: string;
  parentalConsent?: boolean;
}): Promise<string> {
  const keyFile = process.env.LOCAL_ISSUER_KEY_FILE;
  if (!keyFile) throw new Error('LOCAL_ISSUER_KEY_FILE is not set: start the stack first');
  return signLocalToken(keyFile, LOCAL_ISSUER, claims);
}

/** Keeps every ERROR line the functions log during the run (passing them through). */
function captureErrorLogs(): () => void {
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((stream) => stream.write.bind(stream));
  streams.forEach((stream, index) => {
    const original = originals[index];
    if (!original) return;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
      for (const line of text.split('\n'))
        if (line.includes('"level":"ERROR"')) errorLogLines.push(line.slice(0, 2000));
      return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
  });
  return () =>
    streams.forEach((stream, index) => {
      const original = originals[index];
      if (original) stream.write = original as typeof stream.write;
    });
}

async function walletOf(bearer: string): Promise<Balances> {
  const answer = await api.request('GET', '/v1/wallet', { token: bearer });
  if (answer.status !== 200) throw new Error(`wallet: ${answer.status} ${JSON.stringify(answer.body)}`);
  const { coins, owedCoins, diamonds, pendingDiamonds } = answer.body as Balances;
  return { coins, owedCoins, diamonds, pendingDiamonds };
}

async function moneyTotals(): Promise<Record<string, number>> {
  const { totals } = await expectBooksBalance(stack);
  // Wallet items may appear (a lock, a budget); money may not move, nor entries appear.
  const { wallets: _wallets, ...money } = totals;
  return money;
}

/** The seed: coins bought by one user, part of them gifted to a creator, in ledger entries as real flows write them. */
async function seedWallets(): Promise<void> {
  const createdAt = new Date().toISOString();
  await store.transactWrite([
    store.update('credit', keys.wallet('rich-gifter'), {
      expression: 'ADD coins :coins',
      values: { ':coins': COINS_SEEDED },
    }),
    store.put(
      'entry',
      entryItem(keys.entry('rich-gifter', createdAt, 'seed-recharge'), {
        id: 'seed-recharge',
        userId: 'rich-gifter',
        type: 'recharge',
        coins: COINS_SEEDED,
        owedCoins: 0,
        diamonds: 0,
        pendingDiamonds: 0,
        createdAt,
        ref: { seed: 'fuzz', paymentIntentId: 'pi_seed_fuzz' },
      }),
    ),
  ]);
  await store.transactWrite([
    store.update('debit', keys.wallet('rich-gifter'), {
      expression: 'ADD coins :coins',
      values: { ':coins': -COINS_GIFTED_IN_SEED },
    }),
    store.put(
      'sent',
      entryItem(keys.entry('rich-gifter', createdAt, 'seed-gift-sent'), {
        id: 'seed-gift-sent',
        userId: 'rich-gifter',
        type: 'gift_sent',
        coins: -COINS_GIFTED_IN_SEED,
        owedCoins: 0,
        diamonds: 0,
        pendingDiamonds: 0,
        createdAt,
        ref: { seed: 'fuzz' },
      }),
    ),
    store.update('credit', keys.wallet('rich-creator'), {
      expression: 'ADD diamonds :diamonds',
      values: { ':diamonds': COINS_GIFTED_IN_SEED },
    }),
    store.put(
      'received',
      entryItem(keys.entry('rich-creator', createdAt, 'seed-gift-received'), {
        id: 'seed-gift-received',
        userId: 'rich-creator',
        type: 'gift_received',
        coins: 0,
        owedCoins: 0,
        diamonds: COINS_GIFTED_IN_SEED,
        pendingDiamonds: 0,
        createdAt,
        ref: { seed: 'fuzz' },
      }),
    ),
  ]);
}

async function fuzzHttpRoute(route: HttpRoute, routeStats: RouteStats): Promise<void> {
  const spec = httpSpecOf(route);
  const started = Date.now();
  const routeCallers = await callersFor(routeLabel(route));
  try {
    await fc.assert(
      fc.asyncProperty(httpCaseArbitrary({ route, spec, callers: routeCallers, world }), async (fuzzed) => {
        const raw = materialize(route, fuzzed);
        const answer = await sendRaw(stack.httpUrl, raw);
        routeStats.cases += 1;
        count(routeStats, `${answer.status}${errorCodeOf(answer.text)}`);
        checkPrototypesUnpolluted();
        checkHttpAnswer(answer);
        // docs/API.md: a body over 1 MiB is 413, unless the token (401) or the path (404) failed first.
        if (fuzzed.body.kind === 'oversized' && ![401, 404, 413].includes(answer.status)) {
          throw new Error(`a body of ${fuzzed.body.bytes} bytes was answered ${answer.status}, not 413`);
        }
        // A missing, malformed or forged token never reaches a JWT route (404: the path matched no route).
        if (route.auth === 'jwt' && fuzzed.tokenValid === false && ![401, 404].includes(answer.status)) {
          throw new Error(`a request without a valid token was answered ${answer.status}, not 401`);
        }
        // The webhook: no case carries a valid signature, so nothing but a refusal.
        if (route.path === '/v1/webhooks/stripe' && ![400, 413].includes(answer.status)) {
          throw new Error(`an unsigned or forged webhook was answered ${answer.status}, not 400`);
        }
      }),
      fuzzParameters(),
    );
  } finally {
    routeStats.ms = Date.now() - started;
  }
}

async function fuzzWsRoute(route: WebSocketRoute, routeStats: RouteStats): Promise<void> {
  const started = Date.now();
  const routeCallers = await callersFor(`WS ${route.routeKey}`);
  try {
    if (route.routeKey === '$connect' || route.routeKey === '$disconnect') {
      // $connect with every shape of token and stream; each accepted socket is closed at once ($disconnect).
      await fc.assert(
        fc.asyncProperty(
          upgradeQueryArbitrary(routeCallers, world),
          fc.boolean(),
          async ({ query, validToken }, abrupt) => {
            const outcome = await tryUpgrade(`${stack.wsUrl}/?${query}`);
            routeStats.cases += 1;
            count(routeStats, String(outcome.status));
            if (outcome.socket) {
              if (abrupt) outcome.socket.terminate();
              else outcome.socket.close();
            }
            if (!validToken && outcome.status !== 401)
              throw new Error(`a bad token was answered ${outcome.status} at the upgrade (${outcome.error ?? ''})`);
            // 404: no such stream; 409: the stream has ended; 429: the user's connection cap.
            if (![101, 401, 404, 409, 429].includes(outcome.status))
              throw new Error(`the upgrade was answered ${outcome.status} (${outcome.error ?? ''})`);
          },
        ),
        fuzzParameters(),
      );
      return;
    }
    const spec = wsSpecOf(route);
    // One adult caller of the route's own: a route's frames are answered on one socket, in order.
    const caller = callersByRoute.get(`WS ${route.routeKey}`)?.[0];
    if (!caller) throw new Error('no callers');
    const streamId = world.idsByField.streamId?.[0] ?? 'no-such-stream';
    let socket = await ReplyQueue.open(
      `${stack.wsUrl}/?token=${encodeURIComponent(caller.token)}&streamId=${encodeURIComponent(streamId)}`,
    );
    try {
      await fc.assert(
        fc.asyncProperty(frameArbitrary(route, spec, world), async (frame) => {
          if (socket.closed)
            socket = await ReplyQueue.open(
              `${stack.wsUrl}/?token=${encodeURIComponent(caller.token)}&streamId=${encodeURIComponent(streamId)}`,
            );
          const { data, binary } = frameData(frame);
          socket.socket.send(data, { binary });
          const reply = await socket.next(WS_REPLY_TIMEOUT_MS);
          routeStats.cases += 1;
          if (Buffer.byteLength(data) > MAX_WEBSOCKET_MESSAGE_BYTES) {
            // API Gateway's limit: the connection is closed with 1009 (message too big), nothing else.
            count(routeStats, 'close 1009');
            if (socket.closed?.code !== 1009)
              throw new Error(
                `a frame over 128 KB got ${socket.closed ? `close ${socket.closed.code}` : `the reply ${reply ?? 'none'}`}`,
              );
            return;
          }
          if (socket.closed) throw new Error(`the connection was closed (${socket.closed.code}) after a frame`);
          if (reply === undefined) throw new Error('no reply to a frame');
          checkPrototypesUnpolluted();
          checkWsReply(reply, expectedRequestId(frame));
          const message = JSON.parse(reply) as { type?: string; error?: { code?: string } };
          count(
            routeStats,
            message.type === 'error' ? `error ${message.error?.code ?? ''}` : (message.type ?? 'untyped'),
          );
        }),
        fuzzParameters(),
      );
    } finally {
      await socket.close();
    }
  } finally {
    routeStats.ms = Date.now() - started;
  }
}

beforeAll(async () => {
  // The fuzzer is one very busy client: lift the per-user rate limit (auth.test.ts covers it).
  // The same for reads and for the per-user connection cap (hardening.test.ts covers them).
  stack = await startTestStack({
    RATE_LIMIT_PER_SECOND: '1000000',
    RATE_LIMIT_BURST: '1000000',
    RATE_LIMIT_READ_PER_SECOND: '1000000',
    RATE_LIMIT_READ_BURST: '1000000',
    WS_MAX_CONNECTIONS_PER_USER: '1000',
  });
  // INFO lines for thousands of refusals are noise; errors are what this test looks for.
  logger.setLogLevel('ERROR');
  restoreWrites = captureErrorLogs();
  api = apiClient(stack.httpUrl);
  dynamo = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
  });
  store = new DynamoLedgerStore(dynamo, stack.tableNames.ledger);
  await seedWallets();
  richTokens = {
    gifter: await token({ sub: 'rich-gifter', birthdate: yearsAgo(30), country: 'US' }),
    creator: await token({ sub: 'rich-creator', birthdate: yearsAgo(30), country: 'US' }),
  };
  // Real ids for valid-looking input: a live stream, another user's recharge and entries.
  const idsByField: Record<string, string[]> = {
    streamId: ['no-such-stream'],
    rechargeId: ['no-such-recharge'],
    transactionId: ['seed-recharge', 'seed-gift-sent', 'seed-gift-received'],
    payoutId: ['no-such-payout'],
    userId: ['rich-gifter', 'rich-creator'],
  };
  const stream = await api.request('POST', '/v1/streams', {
    token: richTokens.creator,
    body: { title: 'fuzz target' },
  });
  if (stream.status === 201 && typeof stream.body?.streamId === 'string')
    idsByField.streamId?.unshift(stream.body.streamId);
  const recharge = await api.request('POST', '/v1/recharges', {
    token: richTokens.gifter,
    body: { packageId: 'coins_100' },
    headers: { 'idempotency-key': 'fuzz-seed' },
  });
  // Its PaymentIntent id stays out of the world: /dev/payments/{id}/succeed would rightly mint coins.
  if (recharge.status === 201 && typeof recharge.body?.rechargeId === 'string')
    idsByField.rechargeId?.unshift(recharge.body.rechargeId);
  world = { knownIds: Object.values(idsByField).flat(), idsByField };
  // Callers own no coins and no diamonds, so even a valid gift or payout cannot move money.
  callerClaims = [
    { sub: 'fuzz-adult-us', birthdate: yearsAgo(30), country: 'US' },
    { sub: 'fuzz-adult-gb', birthdate: yearsAgo(40), country: 'GB' },
    { sub: 'fuzz-adult-de', birthdate: yearsAgo(25), country: 'DE' },
    { sub: 'fuzz-kr-18', birthdate: yearsAgo(18), country: 'KR' },
    { sub: 'fuzz-teen-consent', birthdate: yearsAgo(15), country: 'US', parentalConsent: true },
    { sub: 'fuzz-teen', birthdate: yearsAgo(16), country: 'GB' },
    { sub: 'fuzz-child', birthdate: yearsAgo(10), country: 'US', parentalConsent: true },
    { sub: 'fuzz-jp', birthdate: yearsAgo(30), country: 'JP' },
    { sub: 'fuzz-no-claims' },
  ];
  callers = await Promise.all(callerClaims.map(async (claim) => ({ label: claim.sub, token: await token(claim) })));
  walletsBefore = { gifter: await walletOf(richTokens.gifter), creator: await walletOf(richTokens.creator) };
  expect(walletsBefore.gifter.coins).toBe(COINS_SEEDED - COINS_GIFTED_IN_SEED);
  expect(walletsBefore.creator.diamonds).toBe(COINS_GIFTED_IN_SEED);
  totalsBefore = await moneyTotals();

  // Every route at once; each `it` below waits for its own. The local-only routes drive the
  // in-process stand-ins, so they go last, one at a time: whatever they break is theirs alone.
  const start = (label: string, fuzz: (routeStats: RouteStats) => Promise<void>) => {
    const routeStats: RouteStats = { cases: 0, answers: new Map(), ms: 0 };
    stats.set(label, routeStats);
    const run = fuzz(routeStats);
    run.catch(() => undefined);
    runs.set(label, run);
    return run;
  };
  const firstWave = [
    ...HTTP_ROUTES.filter((route) => !route.localOnly).map((route) =>
      start(routeLabel(route), (routeStats) => fuzzHttpRoute(route, routeStats)),
    ),
    ...WEBSOCKET_ROUTES.map((route) => start(`WS ${route.routeKey}`, (routeStats) => fuzzWsRoute(route, routeStats))),
  ];
  let previous: Promise<unknown> = Promise.allSettled(firstWave);
  for (const route of HTTP_ROUTES.filter((candidate) => candidate.localOnly)) {
    const after = previous;
    previous = start(routeLabel(route), async (routeStats) => {
      await after.catch(() => undefined);
      await fuzzHttpRoute(route, routeStats);
    });
  }
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(runs.values());
  restoreWrites?.();
  const lines = [...stats.entries()].map(([label, routeStats]) => {
    const answers = [...routeStats.answers.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([answer, times]) => `${answer} x${times}`)
      .join(', ');
    return `${label.padEnd(52)} ${String(routeStats.cases).padStart(6)} cases ${String(routeStats.ms).padStart(7)} ms  ${answers}`;
  });
  const total = [...stats.values()].reduce((sum, routeStats) => sum + routeStats.cases, 0);
  process.stdout.write(
    `\nfuzzed ${total} cases over ${stats.size} entry points (FUZZ_RUNS=${FUZZ_RUNS}):\n${lines.join('\n')}\n`,
  );
  closeFuzzAgent();
  dynamo?.destroy();
  await stack?.stop();
});

describe('every HTTP route answers hostile input with a contract 4xx', () => {
  it.each(HTTP_ROUTES.map((route) => [routeLabel(route)]))(
    '%s',
    async (label) => {
      const run = runs.get(label);
      if (!run) throw new Error(`${label} was not started`);
      await run;
    },
    ROUTE_TIMEOUT_MS,
  );
});

describe('every WebSocket route answers hostile frames and upgrades within the contract', () => {
  it.each(WEBSOCKET_ROUTES.map((route) => [`WS ${route.routeKey}`]))(
    '%s',
    async (label) => {
      const run = runs.get(label);
      if (!run) throw new Error(`${label} was not started`);
      await run;
    },
    ROUTE_TIMEOUT_MS,
  );
});

describe('after the fuzzing', () => {
  it(
    'logged no ERROR (no unhandled error in any handler, $disconnect included)',
    async () => {
      await Promise.allSettled(runs.values());
      expect(errorLogLines).toEqual([]);
    },
    ROUTE_TIMEOUT_MS,
  );

  it(
    'left every balance as it was, and the books balance',
    async () => {
      await Promise.allSettled(runs.values());
      expect({ gifter: await walletOf(richTokens.gifter), creator: await walletOf(richTokens.creator) }).toEqual(
        walletsBefore,
      );
      for (const caller of [...callers, ...[...callersByRoute.values()].flat()]) {
        const { coins, owedCoins, diamonds, pendingDiamonds } = await store.readWallet(caller.label, {
          consistent: true,
        });
        expect({ caller: caller.label, coins, owedCoins, diamonds, pendingDiamonds }).toEqual({
          caller: caller.label,
          coins: 0,
          owedCoins: 0,
          diamonds: 0,
          pendingDiamonds: 0,
        });
      }
      expect(await moneyTotals()).toEqual(totalsBefore);
    },
    ROUTE_TIMEOUT_MS,
  );
});

describe('the 1 MiB limit, at the byte', () => {
  it.each(HTTP_ROUTES.map((route) => [routeLabel(route), route] as const))(
    '%s: 1 MiB passes the size check, 1 MiB + 1 byte is 413',
    async (_label, route) => {
      const spec = httpSpecOf(route);
      const caller = callers[0];
      if (!caller) throw new Error('no callers');
      const valid = spec?.body
        ? fc.sample(validLooking(jsonSchemaOf(spec.body), world), { numRuns: 1, seed: 1 })[0]
        : {};
      const json = Buffer.from(JSON.stringify(valid ?? {}));
      const path = route.path.replace(/\{[A-Za-z0-9_]+\}/g, 'no-such-id');
      const headers = {
        authorization: `Bearer ${caller.token}`,
        'content-type': 'application/json',
        'idempotency-key': `limit-${Date.now()}-${Math.random()}`,
      };
      const exactly = Buffer.concat([json, Buffer.alloc(MAX_BODY_BYTES - json.length, 0x20)]);
      const over = Buffer.concat([exactly, Buffer.from(' ')]);
      const atLimit = await sendRaw(stack.httpUrl, { method: route.method, path, headers, body: exactly });
      checkHttpAnswer(atLimit);
      expect(atLimit.status).not.toBe(413);
      const overLimit = await sendRaw(stack.httpUrl, { method: route.method, path, headers, body: over });
      expect(overLimit.status).toBe(413);
      expect(JSON.parse(overLimit.text).error.code).toBe('PAYLOAD_TOO_LARGE');
    },
  );
});
