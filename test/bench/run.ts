import { type AttributeValue, DynamoDBClient, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { Worker } from 'node:worker_threads';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { startLocalStack, type LocalStack } from '../../infra/local/stack';
import { dynamoClient } from '../../shared/adapters/clients';
import { newId } from '../../shared/adapters/ids';
import { keys } from '../../shared/adapters/dynamo/keys';
import { ensureTable } from '../../shared/adapters/dynamo/create-tables';
import { DynamoLedgerStore } from '../../shared/adapters/dynamo/ledger-store';
import { CONNECTIONS_TABLE, LEDGER_TABLE, type TableDefinition } from '../../shared/adapters/dynamo/schema';
import { DEFAULT_ECONOMY, diamondsForCoins } from '../../shared/domain/economy';
import { reconcileLedger } from '../../shared/ops/reconcile';
import { GIFT_IDEMPOTENCY_SCOPE, giftFingerprint, giftOps } from '../../shared/usecases/gifts';
import { readStream, unsentPartitionsFor } from '../../shared/usecases/streams';
import { giftEventsSqsClient } from '../../shared/adapters/gift-events';
import { measureBundles, type BundleFigure } from './bundles';
import { runStorm } from './storm';
import { runEventApiBench } from './event-api';
import { currentInvocation } from '../../shared/observability/invocation';
import { HTTP_ROUTES } from '../../infra/routes';
import { costFigures } from './cost';
import { CapacityModel, withKeys, writesOf, type CapturedWrite } from './capacity';

/**
 * `npm run bench -- --out FILE`: the gift path against its floor and against AWS's limits.
 * It starts the local stack on fresh data (in-memory DynamoDB Local), funds users
 * through the real recharge path, runs the scenarios, checks the books, prints a table and
 * writes the JSON. `--url` (a running stack) is not supported: the capacity figures come from
 * middleware on the functions' own DynamoDB client, which only exists in this process.
 */

// ---- sizes of the run (kept small enough for 3-5 minutes on a shared 2-core machine) ----
const SERIAL_ROUNDS = 4;
const SERIAL_GIFTS_PER_ROUND = 50;
const PARALLEL = 16;
const PARALLEL_ROUNDS = 4;
const PARALLEL_GIFTS_PER_ROUND = 240;
const WARMUP_GIFTS = 40;
// 3,000 gifts put about 47 on each of 64 entry partitions: enough that the busiest one, scaled to
// 10,000 gifts/s, measures the design rather than the luck of a small sample.
const HOT_GIFTS = 3_000;
// 10,000 gifts/s from 200 viewers is 50 a second each: the per-user write limit. Fewer viewers
// would scale each sender's own partition past what the limiter lets one user send.
const HOT_VIEWERS = 200;
const HOT_CONCURRENCY = 16;
const SCALE_GIFTS_PER_S = 10_000;
const FANOUT_VIEWERS = 1_000;
/** Issue 15: a room's channel on the Event API stand-in, subscribers in another process. */
const EVENT_API_SUBSCRIBERS = 5_000;
const FANOUT_VIEWER_USERS = 20;
/** The function whose reads the viewer count costs: GET /v1/streams/{streamId}. */
const STREAMS_GET_FUNCTION =
  HTTP_ROUTES.find((route) => route.method === 'GET' && route.path === '/v1/streams/{streamId}')?.name ?? '';
const FANOUT_REPEATS = 10;
const FANOUT_PAUSE_MS = 600;
const OPEN_CONCURRENCY = 50;
/** The fan-out storm: posts per viewer per second at a busy room's gift rate. */
const FANOUT_STORM_GIFTS_PER_S = 100;
const FANOUT_STORM_SECONDS = 5;
/** The delivery storm: one viewer, 50 gifts a second for 60 seconds. */
const STORM_GIFTS_PER_S = 50;
const STORM_SECONDS = 60;
const STORM_SENDERS = 5;
const STORM_DRAIN_TIMEOUT_MS = 30_000;
/** The gift route's function: only its invocations' calls are the gift's critical path. */
const GIFT_FUNCTION_NAME =
  HTTP_ROUTES.find((route) => route.method === 'POST' && route.path === '/v1/streams/{streamId}/gifts')?.name ?? '';
/** Serial gifts whose DynamoDB calls are traced for the critical path's round trips. */
const ROUND_TRIP_GIFTS = 10;
const FUND_CONCURRENCY = 8;
/** Package bought by every sender: 10,000 coins covers every rose it sends. */
const FUND_PACKAGE = 'coins_10000';
const FUND_COINS = 10_000;
const GIFT = { giftId: 'rose', quantity: 1 } as const;
const GIFT_COINS = 1;
const HIGH_RATE_LIMIT = '100000';
const WAIT_MS = 60_000;
const ADULT = { birthdate: '1990-01-01', country: 'US' };

/** Issue 12's bars, by JSON field. */
const TARGETS = {
  p50RatioMin: 0.95,
  p50Ratio: 2.0,
  roundTrips: 2,
  throughputRatio: 0.5,
  giftWcu: 12,
  maxKeyWcuPerS: 1_000,
  stormWorstSecondP95Ms: 1_000,
  stormDrainedMs: 1_000,
  sqsMessagesPerGift: 0.2,
  fanoutP99Ms: 1_000,
  eventApiP99Ms: 1_000,
  postsPerViewerPerS: 2,
  maxFrameBytes: 32_768,
  rcuPerRead: 2,
  usdPerMillionGifts: 16,
  bundles: 6,
  bundleBytes: 1024 * 1024,
  bundleInitMs: 200,
};

// ---- arguments ----
function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
const outFile = argument('--out');
if (argument('--url') !== undefined || process.argv.includes('--url')) {
  process.stderr.write(
    "--url is not supported: the capacity and per-key figures need the functions' DynamoDB client in this process. Run without it.\n",
  );
  process.exit(2);
}

const log = (line: string) => process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const percentile = (samples: number[], p: number): number => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
};
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

async function pool<T>(count: number, concurrency: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (;;) {
        const index = next++;
        if (index >= count) return;
        results[index] = await work(index);
      }
    }),
  );
  return results;
}

// ---- the capture on the functions' DynamoDB client ----
const WRITE_COMMANDS = new Set([
  'TransactWriteItemsCommand',
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'BatchWriteItemCommand',
]);
const READ_COMMANDS = new Set([
  'GetItemCommand',
  'QueryCommand',
  'BatchGetItemCommand',
  'ScanCommand',
  'TransactGetItemsCommand',
]);
const capture = {
  writes: false,
  reads: false,
  writeLog: [] as Array<{ command: string; input: unknown }>,
  readUnits: 0,
  readLog: [] as string[],
  /** Every call with its start and end, while tracing the gift's critical path. */
  trace: false,
  calls: [] as Array<{ command: string; input: string; start: number; end: number; fn: string }>,
};

function instrument(client: DynamoDBClient): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      const input = args.input as Record<string, unknown>;
      const readCaptured = capture.reads && READ_COMMANDS.has(command);
      if (readCaptured) input.ReturnConsumedCapacity = 'TOTAL';
      if (capture.writes && WRITE_COMMANDS.has(command)) capture.writeLog.push({ command, input });
      const start = performance.now();
      const result = await next(args);
      if (capture.trace)
        capture.calls.push({
          command,
          input: JSON.stringify(input),
          start,
          end: performance.now(),
          // The function whose invocation made the call: the broadcaster, nudged by the gift, may
          // number it before the answer reaches us, and its calls are not the gift's.
          fn: currentInvocation()?.lambda.functionName ?? '',
        });
      if (readCaptured) {
        const consumed = (
          result.output as { ConsumedCapacity?: { CapacityUnits?: number } | Array<{ CapacityUnits?: number }> }
        ).ConsumedCapacity;
        const unitsRead = Array.isArray(consumed)
          ? consumed.reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0)
          : (consumed?.CapacityUnits ?? 0);
        capture.readUnits += unitsRead;
        // Tagged with the reading function: the broadcaster reads the same stream item meanwhile.
        capture.readLog.push(
          `${command} ${unitsRead} ${JSON.stringify(input)} fn=${currentInvocation()?.lambda.functionName ?? ''}`,
        );
      }
      return result;
    },
    { step: 'initialize', name: 'benchCapacityCapture' },
  );
}

function takeWrites(): CapturedWrite[] {
  const taken = capture.writeLog.splice(0);
  return taken.flatMap(({ command, input }) => writesOf(command, input));
}

// ---- HTTP ----
let baseUrl = '';
async function call(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; key?: string } = {},
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.key) headers['idempotency-key'] = options.key;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

async function tokenFor(sub: string): Promise<string> {
  const response = await call('POST', '/dev/tokens', { body: { sub, ...ADULT } });
  if (response.status !== 200) throw new Error(`token ${sub}: ${response.status}`);
  return String(response.body.token);
}

async function waitFor<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = WAIT_MS,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last ${JSON.stringify(value).slice(0, 300)}`);
    await sleep(everyMs);
  }
}

/** Buys coins the real way: POST /v1/recharges, the stand-in's succeed, the signed webhook credits. */
async function recharge(token: string, userId: string): Promise<{ paymentIntentId: string }> {
  const created = await call('POST', '/v1/recharges', {
    token,
    body: { packageId: FUND_PACKAGE },
    key: `fund-${userId}-${newId('k')}`,
  });
  if (created.status !== 201) throw new Error(`recharge ${userId}: ${created.status} ${JSON.stringify(created.body)}`);
  return { paymentIntentId: String(created.body.payment.paymentIntentId) };
}

async function succeedAndWait(token: string, paymentIntentId: string, coinsBefore: number): Promise<void> {
  const paid = await call('POST', `/dev/payments/${paymentIntentId}/succeed`);
  if (paid.status !== 200) throw new Error(`succeed ${paymentIntentId}: ${paid.status}`);
  await waitFor(
    'the recharge credit',
    () => call('GET', '/v1/wallet', { token }),
    (wallet) => wallet.body?.coins >= coinsBefore + FUND_COINS,
    WAIT_MS,
    10,
  );
}

interface User {
  id: string;
  token: string;
}

async function fundedUsers(prefix: string, count: number): Promise<User[]> {
  return pool(count, FUND_CONCURRENCY, async (index) => {
    const id = `${prefix}-${index}`;
    const token = await tokenFor(id);
    const { paymentIntentId } = await recharge(token, id);
    await succeedAndWait(token, paymentIntentId, 0);
    return { id, token };
  });
}

async function goLive(creatorId: string): Promise<{ token: string; streamId: string }> {
  const token = await tokenFor(creatorId);
  const created = await call('POST', '/v1/streams', { token, body: { title: `bench ${creatorId}` } });
  if (created.status !== 201) throw new Error(`go live: ${created.status} ${JSON.stringify(created.body)}`);
  return { token, streamId: String(created.body.streamId) };
}

async function httpGift(user: User, streamId: string): Promise<{ ms: number; giftTxId: string }> {
  const started = performance.now();
  const answer = await call('POST', `/v1/streams/${streamId}/gifts`, {
    token: user.token,
    body: GIFT,
    key: newId('bench'),
  });
  const ms = performance.now() - started;
  if (answer.status !== 201) throw new Error(`gift: ${answer.status} ${JSON.stringify(answer.body)}`);
  return { ms, giftTxId: String(answer.body.giftTxId) };
}

/** Sets a new stream's unsent partitions to what the broadcaster raises them to at this gift rate. */
async function spreadLikeARoomAt(bareStore: DynamoLedgerStore, streamId: string, giftsPerS: number): Promise<number> {
  const stream = await readStream(bareStore, streamId, { consistent: true });
  if (!stream) throw new Error(`stream ${streamId} not found`);
  const partitions = unsentPartitionsFor(giftsPerS, stream.creatorShards);
  await bareStore.transactWrite([
    bareStore.update('bench: unsent partitions at scale', keys.stream(streamId), {
      expression: 'SET unsentPartitions = :partitions',
      values: { ':partitions': partitions },
    }),
  ]);
  return partitions;
}

/** Waits until the broadcaster has numbered every gift sent to a stream (its counter's giftCoins), so its work stays out of the next timed round. */
async function drained(stream: { token: string; streamId: string }, coinsSent: number): Promise<void> {
  await waitFor(
    'the broadcaster to drain',
    () => call('GET', `/v1/streams/${stream.streamId}`, { token: stream.token }),
    (read) => read.body?.giftCoins >= coinsSent,
    WAIT_MS,
    50,
  );
}

/** Copies the items of users whose ids start with one of `prefixes` (wallets, credit shards) to `to`. */
async function copyUsers(client: DynamoDBClient, from: string, to: string, prefixes: string[]): Promise<void> {
  let startKey: Record<string, AttributeValue> | undefined;
  let copied = 0;
  do {
    const page = await client.send(new ScanCommand({ TableName: from, ExclusiveStartKey: startKey }));
    for (const item of page.Items ?? []) {
      const pk = item.pk?.S ?? '';
      if (!prefixes.some((prefix) => pk.startsWith(`USER#${prefix}`))) continue;
      await client.send(new PutItemCommand({ TableName: to, Item: item }));
      copied += 1;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  if (copied === 0) throw new Error(`no items of ${prefixes.join(', ')} to copy to the floor's table`);
}

/**
 * The floor: one bare TransactWriteItems of the three items every gift needs (the
 * sender's conditional debit, the creator's shard credit, the idempotency record), built by the
 * same giftOps, sent straight to the same DynamoDB Local with the same client settings. A gift
 * is at least this plus its reads, so gift p50 / floor p50 is >= 1 by construction.
 */
async function bareGift(
  store: DynamoLedgerStore,
  senderId: string,
  stream: { streamId: string; creatorId: string; creatorShards: number },
): Promise<number> {
  const now = new Date();
  const idempotency = {
    userId: senderId,
    scope: GIFT_IDEMPOTENCY_SCOPE,
    key: newId('bare'),
    fingerprint: giftFingerprint({ streamId: stream.streamId, ...GIFT }),
  };
  const cost = GIFT_COINS * GIFT.quantity;
  const ops = giftOps(store, {
    idempotency,
    senderId,
    creatorId: stream.creatorId,
    streamId: stream.streamId,
    creatorShards: stream.creatorShards,
    unsentPartitions: stream.creatorShards,
    giftId: GIFT.giftId,
    quantity: GIFT.quantity,
    cost,
    diamonds: diamondsForCoins(DEFAULT_ECONOMY, cost),
    giftTxId: newId('gift', now),
    now,
  }).slice(0, 3);
  const started = performance.now();
  await store.transactWrite(ops);
  return performance.now() - started;
}

/** The longest chain of calls each starting after the previous one ended: the critical path's round trips. */
function sequentialRoundTrips(calls: Array<{ start: number; end: number }>): number {
  const sorted = [...calls].sort((a, b) => a.start - b.start);
  const depth: number[] = [];
  sorted.forEach((call, index) => {
    let best = 0;
    for (let before = 0; before < index; before += 1) {
      const earlier = sorted[before];
      if (earlier && earlier.end <= call.start) best = Math.max(best, depth[before] ?? 0);
    }
    depth[index] = best + 1;
  });
  return Math.max(0, ...depth);
}

/** Runs `total` gifts over `concurrency` workers (worker w sends as sender w); latencies and elapsed time. */
async function burst(
  total: number,
  concurrency: number,
  send: (worker: number) => Promise<number>,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let left = total;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (left > 0) {
        left -= 1;
        latencies.push(await send(worker));
      }
    }),
  );
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

// ---- WebSocket viewers, in a worker thread ----
interface ViewerPool {
  opened: Promise<number>;
  /** Resolves when every viewer has the gift: its first and last arrival (epoch ms). */
  complete(giftTxId: string): Promise<{ firstAt: number; lastAt: number }>;
  stats(): Promise<{ covered: number; frames: number; maxFrameBytes: number }>;
  close(): Promise<void>;
}

function viewerPool(urls: string[]): ViewerPool {
  const worker = new Worker(join(__dirname, 'viewers-worker.mjs'), {
    workerData: { urls, openConcurrency: OPEN_CONCURRENCY },
  });
  const completions = new Map<string, { firstAt: number; lastAt: number }>();
  const waiting = new Map<string, (value: { firstAt: number; lastAt: number }) => void>();
  const replies: Array<(message: any) => void> = [];
  worker.on('message', (message: any) => {
    if (message.type === 'complete') {
      const value = { firstAt: message.firstAt, lastAt: message.lastAt };
      completions.set(message.giftTxId, value);
      waiting.get(message.giftTxId)?.(value);
    } else {
      replies.shift()?.(message);
    }
  });
  const ask = (type: string) =>
    new Promise<any>((resolvePromise) => {
      replies.push(resolvePromise);
      worker.postMessage({ type });
    });
  return {
    opened: ask('open').then((message) => Number(message.count)),
    complete: (giftTxId) => {
      const done = completions.get(giftTxId);
      if (done) return Promise.resolve(done);
      return new Promise((resolvePromise, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`gift ${giftTxId} did not reach every viewer in ${WAIT_MS} ms`)),
          WAIT_MS,
        );
        waiting.set(giftTxId, (value) => {
          clearTimeout(timer);
          resolvePromise(value);
        });
      });
    },
    stats: () => ask('stats'),
    close: async () => {
      await ask('close');
      await worker.terminate();
    },
  };
}

const epochNow = () => performance.timeOrigin + performance.now();

// ---- the scenarios ----
const definitions = (stack: LocalStack) =>
  new Map<string, TableDefinition>([
    [stack.tableNames.ledger, LEDGER_TABLE],
    [stack.tableNames.connections, CONNECTIONS_TABLE],
  ]);

async function priceAll(model: CapacityModel, writes: CapturedWrite[]) {
  for (const write of writes) model.observe(write);
  return pool(writes.length, 16, (index) => model.price(writes[index] as CapturedWrite));
}

async function main(): Promise<void> {
  const runStarted = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'gifting-bench-'));
  log('starting the local stack (fresh in-memory DynamoDB Local)');
  const stack = await startLocalStack({
    dataDir,
    persistDynamo: false,
    httpPort: 0,
    wsPort: 0,
    // Timers off: the recharge-expiry and sweeper schedules would write into the capture windows.
    schedules: false,
    env: {
      LOG_LEVEL: 'ERROR',
      RATE_LIMIT_PER_SECOND: HIGH_RATE_LIMIT,
      RATE_LIMIT_BURST: HIGH_RATE_LIMIT,
      RATE_LIMIT_READ_PER_SECOND: HIGH_RATE_LIMIT,
      RATE_LIMIT_READ_BURST: HIGH_RATE_LIMIT,
      // The fan-out scenario opens 50 sockets per viewer user on one stream.
      WS_MAX_CONNECTIONS_PER_USER: '1000',
      WS_MAX_CONNECTIONS_PER_USER_PER_STREAM: '1000',
    },
  });
  baseUrl = stack.httpUrl;
  instrument(dynamoClient());
  const bare = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const bareStore = new DynamoLedgerStore(bare, stack.tableNames.ledger);
  // The floor's bare transactions move coins without ledger entries, so they run on a table of
  // their own (same definition, same DynamoDB Local): the books checked at the end stay whole.
  const floorTable = `${stack.tableNames.ledger}-floor`;
  await ensureTable(bare, LEDGER_TABLE, floorTable);
  const floorStore = new DynamoLedgerStore(bare, floorTable);
  const tables = definitions(stack);
  const model = new CapacityModel(tables, bare);
  let viewers: ViewerPool | undefined;
  try {
    // ---------- funding, through the real recharge path ----------
    log('funding senders through POST /v1/recharges + /dev/payments/{pi}/succeed');
    const [httpSenders, bareSenders, hotSenders, stormSenders] = [
      await fundedUsers('http-sender', PARALLEL),
      await fundedUsers('bare-sender', PARALLEL),
      await fundedUsers('hot-viewer', HOT_VIEWERS),
      await fundedUsers('storm-sender', STORM_SENDERS),
    ];
    const httpStream = await goLive('bench-creator');
    const bareStream = await goLive('floor-creator');
    const bareRecord = await readStream(bareStore, bareStream.streamId);
    if (!bareRecord) throw new Error('the floor stream is missing');
    await copyUsers(bare, stack.tableNames.ledger, floorTable, ['bare-sender', 'floor-creator']);

    // ---------- gift vs floor ----------
    log('gift: warm-up');
    let httpCoins = 0;
    const sendHttp = async (user: User) => {
      const { ms } = await httpGift(user, httpStream.streamId);
      httpCoins += GIFT_COINS * GIFT.quantity;
      return ms;
    };
    await burst(WARMUP_GIFTS, 4, (w) => sendHttp(httpSenders[w] as User));
    await drained(httpStream, httpCoins);
    await burst(WARMUP_GIFTS, 4, (w) => bareGift(floorStore, (bareSenders[w] as User).id, bareRecord));

    log(`gift: concurrency 1, ${SERIAL_ROUNDS} interleaved rounds of ${SERIAL_GIFTS_PER_ROUND}`);
    const serialHttp: number[] = [];
    const serialBare: number[] = [];
    for (let roundIndex = 0; roundIndex < SERIAL_ROUNDS; roundIndex += 1) {
      const runHttp = async () => {
        serialHttp.push(...(await burst(SERIAL_GIFTS_PER_ROUND, 1, () => sendHttp(httpSenders[0] as User))).latencies);
        await drained(httpStream, httpCoins);
      };
      const runBare = async () =>
        serialBare.push(
          ...(
            await burst(SERIAL_GIFTS_PER_ROUND, 1, () => bareGift(floorStore, (bareSenders[0] as User).id, bareRecord))
          ).latencies,
        );
      // Alternate which goes first, so drift in the machine's load falls on both alike.
      if (roundIndex % 2 === 0) await runHttp().then(runBare);
      else await runBare().then(runHttp);
    }

    log(`gift: concurrency ${PARALLEL}, ${PARALLEL_ROUNDS} interleaved rounds of ${PARALLEL_GIFTS_PER_ROUND}`);
    const parallel = {
      http: { gifts: 0, seconds: 0, latencies: [] as number[] },
      bare: { gifts: 0, seconds: 0, latencies: [] as number[] },
    };
    for (let roundIndex = 0; roundIndex < PARALLEL_ROUNDS; roundIndex += 1) {
      const runHttp = async () => {
        const result = await burst(PARALLEL_GIFTS_PER_ROUND, PARALLEL, (w) => sendHttp(httpSenders[w] as User));
        parallel.http.gifts += PARALLEL_GIFTS_PER_ROUND;
        parallel.http.seconds += result.seconds;
        parallel.http.latencies.push(...result.latencies);
        // The broadcaster's tail after the burst is not timed, and must not slow the floor's round.
        await drained(httpStream, httpCoins);
      };
      const runBare = async () => {
        const result = await burst(PARALLEL_GIFTS_PER_ROUND, PARALLEL, (w) =>
          bareGift(floorStore, (bareSenders[w] as User).id, bareRecord),
        );
        parallel.bare.gifts += PARALLEL_GIFTS_PER_ROUND;
        parallel.bare.seconds += result.seconds;
        parallel.bare.latencies.push(...result.latencies);
      };
      if (roundIndex % 2 === 0) await runHttp().then(runBare);
      else await runBare().then(runHttp);
    }
    // The gift's critical path: its DynamoDB calls (they name the sender), in sequence or not.
    const tracer = httpSenders[2] as User;
    const roundTrips: number[] = [];
    for (let index = 0; index < ROUND_TRIP_GIFTS; index += 1) {
      capture.calls.length = 0;
      capture.trace = true;
      await sendHttp(tracer);
      capture.trace = false;
      const own = capture.calls.filter(
        (call) =>
          call.fn === GIFT_FUNCTION_NAME &&
          (call.input.includes(tracer.id) ||
            (call.command === 'GetItemCommand' &&
              call.input.includes(`STREAM#${httpStream.streamId}"`) &&
              !call.input.includes('"ConsistentRead":true'))),
      );
      roundTrips.push(sequentialRoundTrips(own));
    }
    await drained(httpStream, httpCoins);
    const giftP50 = percentile(serialHttp, 50);
    const bareP50 = percentile(serialBare, 50);
    const throughput = parallel.http.gifts / parallel.http.seconds;
    const bareThroughput = parallel.bare.gifts / parallel.bare.seconds;
    const gift = {
      p50Ms: round(giftP50),
      p99Ms: round(percentile(serialHttp, 99)),
      throughputPerS: round(throughput, 1),
      bareP50Ms: round(bareP50),
      bareThroughputPerS: round(bareThroughput, 1),
      p50Ratio: round(giftP50 / bareP50),
      roundTrips: Math.max(...roundTrips),
      throughputRatio: round(throughput / bareThroughput),
      floor:
        'one TransactWriteItems of the sender debit, the creator shard credit and the idempotency record (giftOps), same DynamoDB Local, interleaved',
      bareP99Ms: round(percentile(serialBare, 99)),
      concurrency16P50Ms: round(percentile(parallel.http.latencies, 50)),
      bareConcurrency16P50Ms: round(percentile(parallel.bare.latencies, 50)),
      samples: { serial: serialHttp.length, parallel: parallel.http.gifts },
    };
    log(
      `gift: p50 ${gift.p50Ms} ms vs floor ${gift.bareP50Ms} ms; ${gift.throughputPerS}/s vs floor ${gift.bareThroughputPerS}/s; ${gift.roundTrips} round trips`,
    );

    // Let the broadcaster drain before the capacity windows.
    await drained(httpStream, httpCoins);
    await sleep(500);

    // ---------- capacity ----------
    log('capacity: one gift, one recharge, wallet reads');
    // A sender no instance remembers: the units (and the cost) are those of a gift that reads the
    // balance, not the one-round-trip gift of a sender the instance just served.
    const [giftSender] = (await fundedUsers('capacity-sender', 1)) as [User];
    capture.writeLog.length = 0;
    capture.readLog.length = 0;
    capture.writes = true;
    capture.reads = true;
    await sendHttp(giftSender);
    capture.writes = false;
    capture.reads = false;
    // The gift's own reads name its sender (the broadcaster's start as soon as the nudge is out).
    const giftRcu = capture.readLog
      .filter(
        (line) =>
          line.includes(giftSender.id) ||
          (line.startsWith('GetItemCommand') &&
            line.includes(`STREAM#${httpStream.streamId}"`) &&
            !line.includes('"ConsistentRead":true')),
      )
      .reduce((sum, line) => sum + Number(line.split(' ')[1] ?? 0), 0);
    // The broadcaster's writes for this gift must not fall into the recharge's window below.
    await drained(httpStream, httpCoins);
    const senderWallet = keys.wallet(giftSender.id);
    // The gift's own transaction: the one that debits this sender's wallet (the broadcaster's may share the window).
    const giftRequest = capture.writeLog
      .splice(0)
      .find(
        ({ command, input }) =>
          command === 'TransactWriteItemsCommand' &&
          writesOf(command, input).some(
            (write) =>
              write.kind === 'Update' && write.key.pk?.S === senderWallet.pk && write.key.sk?.S === senderWallet.sk,
          ),
      );
    const giftTransaction = giftRequest ? withKeys(writesOf(giftRequest.command, giftRequest.input), tables) : [];
    if (giftTransaction.length !== 5)
      throw new Error(`expected the gift's 5-item transaction, found ${giftTransaction.length} items`);
    model.forgetImages();
    const giftPriced = await priceAll(model, giftTransaction);
    const giftWcu = giftPriced.reduce((sum, priced) => sum + priced.units, 0);

    const recharger = { id: 'capacity-recharger', token: await tokenFor('capacity-recharger') };
    capture.writes = true;
    const { paymentIntentId } = await recharge(recharger.token, recharger.id);
    capture.writes = false;
    const createWrites = withKeys(takeWrites(), tables);
    capture.writes = true;
    await succeedAndWait(recharger.token, paymentIntentId, 0);
    capture.writes = false;
    const creditWrites = withKeys(takeWrites(), tables);
    model.forgetImages();
    const createPriced = await priceAll(model, createWrites);
    const creditPriced = await priceAll(model, creditWrites);
    const rechargeCreateWcu = createPriced.reduce((sum, priced) => sum + priced.units, 0);
    const rechargeWcu = creditPriced.reduce((sum, priced) => sum + priced.units, 0);

    capture.readUnits = 0;
    capture.reads = true;
    const walletRead = await call('GET', '/v1/wallet', { token: giftSender.token });
    capture.reads = false;
    const walletRcu = capture.readUnits;
    capture.readUnits = 0;
    capture.reads = true;
    await call('GET', '/v1/wallet', { token: httpStream.token });
    capture.reads = false;
    const creatorWalletRcu = capture.readUnits;
    if (walletRead.status !== 200) throw new Error(`wallet: ${walletRead.status}`);
    const capacity = {
      giftWcu,
      giftRcu: round(giftRcu, 1),
      rechargeWcu,
      walletRcu: round(walletRcu, 1),
      rechargeCreateWcu,
      creatorWalletRcu: round(creatorWalletRcu, 1),
      method:
        'writes: computed from the captured request items by AWS rule (2 WCU per KB per item in a transaction, 1 outside, index writes priced alike; update sizes from the stored item); reads: ReturnConsumedCapacity',
      giftItems: giftPriced.flatMap((priced) => priced.detail),
      rechargeItems: creditPriced.flatMap((priced) => priced.detail),
    };
    log(
      `capacity: gift ${giftWcu} WCU, recharge credit ${rechargeWcu} WCU (+${rechargeCreateWcu} to create), wallet read ${capacity.walletRcu} RCU`,
    );

    // ---------- hot creator ----------
    log(`hotCreator: ${HOT_GIFTS} gifts from ${HOT_VIEWERS} viewers to one creator, every write captured`);
    const hotStream = await goLive('hot-creator');
    // This machine sends a few hundred gifts a second, not 10,000: the broadcaster would keep the
    // stream on the few unsent partitions that rate needs. Put the stream where the broadcaster
    // puts a 10,000 gifts/s room (unsentPartitionsFor), so the shares below are that room's.
    const hotUnsentPartitions = await spreadLikeARoomAt(bareStore, hotStream.streamId, SCALE_GIFTS_PER_S);
    capture.writeLog.length = 0;
    capture.writes = true;
    const hotStarted = performance.now();
    const hotGiftIds = await pool(
      HOT_GIFTS,
      HOT_CONCURRENCY,
      async (index) => (await httpGift(hotSenders[index % HOT_VIEWERS] as User, hotStream.streamId)).giftTxId,
    );
    const hotSeconds = (performance.now() - hotStarted) / 1000;
    // Keep capturing until the broadcaster has numbered every gift: its writes count too.
    await waitFor(
      'the hot stream to be broadcast',
      () => call('GET', `/v1/streams/${hotStream.streamId}`, { token: hotStream.token }),
      (stream) => stream.body?.giftCoins >= HOT_GIFTS * GIFT_COINS,
      WAIT_MS,
      250,
    );
    await sleep(500);
    capture.writes = false;
    const hotWrites = withKeys(takeWrites(), tables);
    model.forgetImages();
    const hotPriced = await priceAll(model, hotWrites);
    const perKey = new Map<string, number>();
    for (const priced of hotPriced)
      for (const entry of priced.byKey) perKey.set(entry.partition, (perKey.get(entry.partition) ?? 0) + entry.units);
    const ranked = [...perKey.entries()].sort((a, b) => b[1] - a[1]);
    const scale = (unitsOnKey: number) => round((unitsOnKey / hotGiftIds.length) * SCALE_GIFTS_PER_S, 0);
    const hotStreamRecord = await readStream(bareStore, hotStream.streamId);
    const hotTotalUnits = hotPriced.reduce((sum, priced) => sum + priced.units, 0);
    const hotCreator = {
      giftsPerS: SCALE_GIFTS_PER_S,
      maxKeyWcuPerS: scale(ranked[0]?.[1] ?? 0),
      shards: hotStreamRecord?.creatorShards ?? 0,
      unsentPartitions: hotUnsentPartitions,
      gifts: hotGiftIds.length,
      measuredGiftsPerS: round(hotGiftIds.length / hotSeconds, 1),
      wcuPerGiftAllWrites: round(hotTotalUnits / hotGiftIds.length),
      hottestKeys: ranked.slice(0, 8).map(([partition, unitsOnKey]) => ({
        partition: partition.replace(/^[^#/]*(Ledger|Connections)/, '$1'),
        units: unitsOnKey,
        wcuPerSAt10k: scale(unitsOnKey),
      })),
    };
    log(
      `hotCreator: hottest key ${hotCreator.hottestKeys[0]?.partition} -> ${hotCreator.maxKeyWcuPerS} WCU/s at ${SCALE_GIFTS_PER_S} gifts/s`,
    );

    // ---------- storm: one viewer, 50 gifts/s for 60 s ----------
    log(`storm: ${STORM_GIFTS_PER_S} gifts/s for ${STORM_SECONDS} s to one stream, one viewer`);
    const stormStream = await goLive('storm-creator');
    const stormViewer = await tokenFor('storm-viewer');
    const received = { messages: 0 };
    const sent = { entries: 0 };
    let sendCounting = false;
    stack.sqs.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const input = args.input as { QueueUrl?: string };
        const output = result.output as { Messages?: unknown[] };
        if (input.QueueUrl?.includes('giftEvents') && Array.isArray(output.Messages))
          received.messages += output.Messages.length;
        return result;
      },
      { step: 'initialize', name: 'benchGiftEventsReceived' },
    );
    const countSends = () => {
      const client = giftEventsSqsClient();
      if (!client || sendCounting) return;
      sendCounting = true;
      client.middlewareStack.add(
        (next) => async (args) => {
          const entries = (args.input as { Entries?: unknown[] }).Entries;
          if (Array.isArray(entries)) sent.entries += entries.length;
          return next(args);
        },
        { step: 'initialize', name: 'benchGiftEventsSent' },
      );
    };
    countSends();
    const receivedBefore = received.messages;
    const sentBefore = sent.entries;
    const stormFigures = await runStorm({
      wsUrl: stack.wsUrl,
      viewerToken: stormViewer,
      streamId: stormStream.streamId,
      giftsPerS: STORM_GIFTS_PER_S,
      seconds: STORM_SECONDS,
      drainTimeoutMs: STORM_DRAIN_TIMEOUT_MS,
      sendGift: async (index) =>
        (await httpGift(stormSenders[index % STORM_SENDERS] as User, stormStream.streamId)).giftTxId,
    });
    // Gifts whose HTTP send failed (a loaded machine) may or may not have committed.
    await drained(stormStream, (stormFigures.gifts - stormFigures.failedSends) * GIFT_COINS);
    await sleep(1_000);
    const storm = {
      ...stormFigures,
      sqsMessagesPerGift: round((received.messages - receivedBefore) / stormFigures.gifts, 3),
      sqsSendsPerGift: round((sent.entries - sentBefore) / stormFigures.gifts, 3),
    };
    log(
      `storm: worst second p95 ${storm.worstSecondP95Ms} ms (first 5 s ${storm.firstSecondsP95Ms}, last 5 s ${storm.lastSecondsP95Ms}), drained ${storm.drainedMs} ms, ${storm.sqsMessagesPerGift} messages and ${storm.sqsSendsPerGift} sends per gift`,
    );

    // ---------- fan-out: 1,000 viewers in a worker thread ----------
    log(`fanout: opening ${FANOUT_VIEWERS} WebSocket viewers in a worker thread`);
    const fanStream = await goLive('fan-creator');
    const viewerTokens = await Promise.all(
      Array.from({ length: FANOUT_VIEWER_USERS }, (_, index) => tokenFor(`fan-viewer-${index}`)),
    );
    const before = new Set(stack.gateway.openConnectionIds());
    viewers = viewerPool(
      Array.from(
        { length: FANOUT_VIEWERS },
        (_, index) =>
          `${stack.wsUrl}/?token=${viewerTokens[index % FANOUT_VIEWER_USERS]}&streamId=${fanStream.streamId}`,
      ),
    );
    const openedViewers = await viewers.opened;
    const viewerIds = stack.gateway.openConnectionIds().filter((id) => !before.has(id));

    // The viewer count costs the same whatever the number of viewers: a couple of counter items.
    capture.readLog.length = 0;
    capture.reads = true;
    const viewersCounted = (await call('GET', `/v1/streams/${fanStream.streamId}`, { token: fanStream.token })).body
      ?.viewers;
    capture.reads = false;
    // Only the GET's own reads of this stream's item and counters: the broadcaster, sending the
    // joins' counters, reads the same stream item at the same time.
    const streamReadUnits = capture.readLog
      .filter((line) => line.endsWith(` fn=${STREAMS_GET_FUNCTION}`))
      .filter((line) => line.includes(`STREAM#${fanStream.streamId}"`) || line.includes(`ROOM#${fanStream.streamId}#`))
      .reduce((sum, line) => sum + Number(line.split(' ')[1] ?? 0), 0);
    const viewerCount = {
      viewers: Number(viewersCounted),
      rcuPerRead: round(streamReadUnits, 2),
      method: 'ReturnConsumedCapacity of the stream item and viewer-counter reads GET /v1/streams/{id} makes',
    };
    log(
      `fanout: ${openedViewers} sockets open (${viewerIds.length} gateway connections); GET stream reports ${viewersCounted} viewers for ${viewerCount.rcuPerRead} RCU`,
    );

    const fanSender = stormSenders[0] as User;
    const fanLatencies: number[] = [];
    const firstViewerLatencies: number[] = [];
    for (let repeat = 0; repeat < FANOUT_REPEATS; repeat += 1) {
      const sentAt = epochNow();
      const { giftTxId } = await httpGift(fanSender, fanStream.streamId);
      const seen = await viewers.complete(giftTxId);
      fanLatencies.push(seen.lastAt - sentAt);
      firstViewerLatencies.push(seen.firstAt - sentAt);
      await sleep(FANOUT_PAUSE_MS);
    }

    log(`fanout: storm of ${FANOUT_STORM_GIFTS_PER_S} gifts/s for ${FANOUT_STORM_SECONDS} s`);
    const viewerPosts = () => viewerIds.reduce((sum, id) => sum + (stack.gateway.postCounts.get(id) ?? 0), 0);
    const coveredBefore = (await viewers.stats()).covered;
    const stormGifts = FANOUT_STORM_GIFTS_PER_S * FANOUT_STORM_SECONDS;
    const postsAtStart = viewerPosts();
    const samples: number[] = [postsAtStart];
    const stormStarted = performance.now();
    const sampler = setInterval(() => samples.push(viewerPosts()), 1_000);
    const sends: Array<Promise<unknown>> = [];
    for (let index = 0; index < stormGifts; index += 1) {
      const due = stormStarted + (index * 1000) / FANOUT_STORM_GIFTS_PER_S;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      sends.push(httpGift(stormSenders[index % STORM_SENDERS] as User, fanStream.streamId));
    }
    await Promise.all(sends);
    const activePool = viewers;
    // A machine too busy to deliver everything in time still yields the posts-per-second figure.
    const stormDelivered = await waitFor(
      'every viewer to receive the storm',
      async () => (await activePool.stats()).covered,
      (total) => total >= coveredBefore + stormGifts * openedViewers,
      WAIT_MS,
      100,
    ).then(
      () => 1,
      async () => ((await activePool.stats()).covered - coveredBefore) / (stormGifts * openedViewers),
    );
    const stormSeconds = (performance.now() - stormStarted) / 1000;
    clearInterval(sampler);
    const postsTotal = viewerPosts() - postsAtStart;
    samples.push(viewerPosts());
    const perSecond = samples.slice(1).map((value, index) => value - (samples[index] ?? 0));
    const finalStats = await viewers.stats();
    const fanout = {
      viewers: openedViewers,
      p50Ms: round(percentile(fanLatencies, 50), 0),
      p99Ms: round(percentile(fanLatencies, 99), 0),
      postsPerViewerPerS: round(Math.max(...perSecond) / Math.max(viewerIds.length, 1)),
      postsPerViewerPerSAverage: round(
        postsTotal / Math.max(viewerIds.length, 1) / Math.max(stormSeconds, FANOUT_STORM_SECONDS),
      ),
      maxFrameBytes: Math.max(finalStats.maxFrameBytes, storm.maxFrameBytes),
      stormGifts,
      stormDeliveredInS: round(stormSeconds, 1),
      /** Share of the storm's gift events every viewer had within the wait (1: all). */
      stormDelivered: round(stormDelivered, 3),
      repeats: fanLatencies.map((ms) => round(ms, 0)),
      /** Send to the first viewer's receipt: the pipeline (HTTP gift, queue, sequencer) before the posts spread. */
      firstViewerP50Ms: round(percentile(firstViewerLatencies, 50), 0),
      viewersIn: "a worker thread (its own event loop and core), not the broadcaster's",
    };
    log(
      `fanout: last viewer p50 ${fanout.p50Ms} ms, p99 ${fanout.p99Ms} ms; storm peak ${fanout.postsPerViewerPerS} posts/viewer/s; largest frame ${fanout.maxFrameBytes} B`,
    );
    await viewers.close();
    viewers = undefined;

    // ---------- invariants ----------
    await sleep(1_000);
    const report = await reconcileLedger(bare, stack.tableNames.ledger);
    if (!report.ok) log(`RECONCILE FAILED:\n${report.discrepancies.slice(0, 20).join('\n')}`);
    bare.destroy();
    await stack.stop();

    // ---------- bundles (stack stopped: less noise on the imports) ----------
    log('bundles: building every function as the CDK does and importing each in a fresh process');
    const bundles: BundleFigure[] = await measureBundles();

    // ---------- big rooms: one publish per frame to 5,000 channel subscribers in another process ----------
    log('eventApi: 5,000 subscribers of one room channel on the local Event API stand-in');
    const eventApi = await runEventApiBench();
    log(
      `eventApi: p99 ${eventApi.p99Ms} ms to ${eventApi.subscribers} subscribers, ${eventApi.publishesPerFrame} publish per frame`,
    );

    const cost = costFigures({
      giftWcu: capacity.giftWcu,
      broadcastWcuPerGift: Math.max(0, hotCreator.wcuPerGiftAllWrites - capacity.giftWcu),
      giftRcu: capacity.giftRcu,
      giftLambdaMs: gift.p50Ms,
      sqsSendsPerGift: storm.sqsSendsPerGift,
      sqsMessagesPerGift: storm.sqsMessagesPerGift,
      postsPerViewerPerS: fanout.postsPerViewerPerS,
    });
    const result = {
      gift,
      capacity,
      hotCreator,
      storm,
      fanout,
      viewerCount,
      cost,
      bundles,
      eventApi,
      invariantsHold: report.ok,
      targets: targetsMet({
        gift,
        capacity,
        hotCreator,
        storm,
        fanout,
        viewerCount,
        cost,
        bundles,
        eventApi,
        invariantsHold: report.ok,
      }),
      machine: {
        nproc: cpus().length,
        node: process.version,
        cpu: cpuModel(),
        at: new Date().toISOString(),
        runSeconds: Math.round((Date.now() - runStarted) / 1000),
      },
    };
    printTable(result);
    if (outFile) {
      mkdirSync(dirname(resolve(outFile)), { recursive: true });
      writeFileSync(resolve(outFile), `${JSON.stringify(result, null, 2)}\n`);
      log(`wrote ${outFile}`);
    }
  } catch (error) {
    await viewers?.close().catch(() => undefined);
    bare.destroy();
    await stack.stop().catch(() => undefined);
    throw error;
  }
}

function cpuModel(): string {
  try {
    return (
      /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown'
    );
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
}

interface Figures {
  gift: { p50Ratio: number; roundTrips: number; throughputRatio: number };
  capacity: { giftWcu: number };
  hotCreator: { maxKeyWcuPerS: number; giftsPerS: number };
  storm: {
    giftsPerS: number;
    seconds: number;
    worstSecondP95Ms: number;
    drainedMs: number;
    sqsMessagesPerGift: number;
  };
  fanout: { p99Ms: number; postsPerViewerPerS: number; viewers: number; maxFrameBytes: number };
  viewerCount: { viewers: number; rcuPerRead: number };
  cost: { usdPerMillionGifts: number };
  bundles: BundleFigure[];
  eventApi: { subscribers: number; p99Ms: number; publishesPerFrame: number };
  invariantsHold: boolean;
}

/** Issue 12's bars, one per JSON field (or pair of fields). */
function targetsMet(figures: Figures): Record<string, boolean> {
  return {
    p50Ratio: figures.gift.p50Ratio >= TARGETS.p50RatioMin && figures.gift.p50Ratio <= TARGETS.p50Ratio,
    roundTrips: figures.gift.roundTrips <= TARGETS.roundTrips,
    throughputRatio: figures.gift.throughputRatio >= TARGETS.throughputRatio,
    giftWcu: figures.capacity.giftWcu <= TARGETS.giftWcu,
    storm:
      figures.storm.giftsPerS >= STORM_GIFTS_PER_S &&
      figures.storm.seconds >= STORM_SECONDS &&
      figures.storm.worstSecondP95Ms <= TARGETS.stormWorstSecondP95Ms &&
      figures.storm.drainedMs <= TARGETS.stormDrainedMs,
    sqsMessagesPerGift: figures.storm.sqsMessagesPerGift <= TARGETS.sqsMessagesPerGift,
    hotCreator:
      figures.hotCreator.maxKeyWcuPerS <= TARGETS.maxKeyWcuPerS && figures.hotCreator.giftsPerS >= SCALE_GIFTS_PER_S,
    fanoutP99: figures.fanout.p99Ms <= TARGETS.fanoutP99Ms && figures.fanout.viewers >= FANOUT_VIEWERS,
    fanoutFrames:
      figures.fanout.postsPerViewerPerS <= TARGETS.postsPerViewerPerS &&
      figures.fanout.maxFrameBytes <= TARGETS.maxFrameBytes,
    viewerCount: figures.viewerCount.rcuPerRead <= TARGETS.rcuPerRead && figures.viewerCount.viewers >= FANOUT_VIEWERS,
    cost: figures.cost.usdPerMillionGifts <= TARGETS.usdPerMillionGifts,
    bundles:
      figures.bundles.length >= TARGETS.bundles &&
      figures.bundles.every((bundle) => bundle.bytes <= TARGETS.bundleBytes && bundle.initMs <= TARGETS.bundleInitMs),
    eventApi:
      figures.eventApi.subscribers >= EVENT_API_SUBSCRIBERS &&
      figures.eventApi.p99Ms <= TARGETS.eventApiP99Ms &&
      figures.eventApi.publishesPerFrame === 1,
    invariants: figures.invariantsHold,
  };
}

function printTable(result: any): void {
  const mark = (ok: boolean | undefined) => (ok ? 'ok' : 'MISSED');
  const t = result.targets as Record<string, boolean>;
  const rows: Array<[string, string, string, string]> = [
    [
      'gift p50 (c=1) vs floor',
      `${result.gift.p50Ms} ms vs ${result.gift.bareP50Ms} ms = ${result.gift.p50Ratio}x`,
      `${TARGETS.p50RatioMin}-${TARGETS.p50Ratio}x`,
      mark(t.p50Ratio),
    ],
    ['gift round trips', `${result.gift.roundTrips}`, `<= ${TARGETS.roundTrips}`, mark(t.roundTrips)],
    [
      'gift throughput (c=16) vs floor',
      `${result.gift.throughputPerS}/s vs ${result.gift.bareThroughputPerS}/s = ${result.gift.throughputRatio}`,
      `>= ${TARGETS.throughputRatio}`,
      mark(t.throughputRatio),
    ],
    [
      'WCU per gift',
      `${result.capacity.giftWcu} (RCU ${result.capacity.giftRcu})`,
      `<= ${TARGETS.giftWcu}`,
      mark(t.giftWcu),
    ],
    [
      'WCU per recharge credit',
      `${result.capacity.rechargeWcu} (+${result.capacity.rechargeCreateWcu} to create)`,
      '-',
      '',
    ],
    [
      'hottest key at 10k gifts/s',
      `${result.hotCreator.maxKeyWcuPerS} WCU/s (${result.hotCreator.hottestKeys[0]?.partition ?? '-'})`,
      `<= ${TARGETS.maxKeyWcuPerS}`,
      mark(t.hotCreator),
    ],
    [
      `storm ${result.storm.giftsPerS}/s x ${result.storm.seconds} s`,
      `worst second p95 ${result.storm.worstSecondP95Ms} ms (first 5 s ${result.storm.firstSecondsP95Ms}, last 5 s ${result.storm.lastSecondsP95Ms}), drained ${result.storm.drainedMs} ms`,
      `<= ${TARGETS.stormWorstSecondP95Ms} / ${TARGETS.stormDrainedMs} ms`,
      mark(t.storm),
    ],
    [
      'queue messages per gift',
      `${result.storm.sqsMessagesPerGift} received (${result.storm.sqsSendsPerGift} sends)`,
      `<= ${TARGETS.sqsMessagesPerGift}`,
      mark(t.sqsMessagesPerGift),
    ],
    [
      'fan-out to last viewer',
      `p50 ${result.fanout.p50Ms} ms, p99 ${result.fanout.p99Ms} ms (${result.fanout.viewers} viewers)`,
      `p99 <= ${TARGETS.fanoutP99Ms} ms`,
      mark(t.fanoutP99),
    ],
    [
      'posts/viewer/s, largest frame',
      `${result.fanout.postsPerViewerPerS}, ${result.fanout.maxFrameBytes} B`,
      `<= ${TARGETS.postsPerViewerPerS}, <= ${TARGETS.maxFrameBytes} B`,
      mark(t.fanoutFrames),
    ],
    [
      'viewer count read',
      `${result.viewerCount.rcuPerRead} RCU at ${result.viewerCount.viewers} viewers`,
      `<= ${TARGETS.rcuPerRead}`,
      mark(t.viewerCount),
    ],
    [
      'cost',
      `${result.cost.usdPerMillionGifts} USD per million gifts, ${result.cost.usdPerViewerHour} USD per viewer-hour`,
      `<= ${TARGETS.usdPerMillionGifts}`,
      mark(t.cost),
    ],
    [
      'bundles: largest / slowest import',
      `${result.bundles.length} bundles, ${Math.max(...result.bundles.map((b: BundleFigure) => b.bytes)).toLocaleString('en-US')} B / ${Math.max(...result.bundles.map((b: BundleFigure) => b.initMs))} ms`,
      '<= 1 MB / 200 ms',
      mark(t.bundles),
    ],
    [
      'room channel (Event API stand-in)',
      `p99 ${result.eventApi.p99Ms} ms to ${result.eventApi.subscribers} subscribers, ${result.eventApi.publishesPerFrame} publish/frame`,
      `p99 <= ${TARGETS.eventApiP99Ms} ms, 1 publish`,
      mark(t.eventApi),
    ],
    ['invariants (reconcile)', String(result.invariantsHold), 'true', mark(t.invariants)],
  ];
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]?.length ?? 0), 6));
  const line = (row: string[]) => `| ${row.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join(' | ')} |`;
  const out = [
    line(['scenario', 'measured', 'target', '']),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    ...rows.map(line),
  ];
  out.push('', `storm per-second p95 (ms): ${result.storm.perSecondP95Ms.join(' ')}`);
  out.push('', 'bundles:');
  for (const bundle of result.bundles as BundleFigure[])
    out.push(
      `  ${bundle.name.padEnd(28)} ${String(bundle.bytes).padStart(9)} B  ${String(bundle.initMs).padStart(6)} ms`,
    );
  out.push(
    '',
    `machine: ${result.machine.nproc} cores, ${result.machine.cpu}, node ${result.machine.node}; run took ${result.machine.runSeconds} s`,
  );
  process.stdout.write(`\n${out.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
