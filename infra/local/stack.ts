import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { join } from 'node:path';
import { ensureTable } from '../../shared/adapters/dynamo/create-tables';
import { TABLES } from '../../shared/adapters/dynamo/schema';
import { forgetConfig } from '../../shared/config';
import { forgetJwks } from '../../shared/auth/jwt';
import { startDynamoDbLocal, type LocalDynamoDb } from './dynamodb';
import { startGateway, type LocalGateway, type StaticRoute } from './gateway';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  EVENT_API_AUTHORIZER,
  QUEUE_CONSUMERS,
  QUEUES,
  queueUrlEnvVar,
  SCHEDULES,
  STRIPE_WEBHOOK_PATH,
} from '../routes';
import { lambdaContext, loadFunction } from './lambda-runtime';
import { logThrough, startEventSourceMapping, startLocalQueues, type LocalQueues, type SqsHandler } from './queues';
import { logger } from '../../shared/logger';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as z from 'zod';
import { forgetStripeClient } from '../../shared/adapters/stripe-client';
import { startPaymentsStandIn, type PaymentsStandIn } from './payments';
import { ensureIssuerKey, LOCAL_AUDIENCE } from './issuer';
import { freePort } from './ports';
import { startEventApiStandIn, type EventApiStandIn } from './event-api';
import { forgetRoomChannelPublisher } from '../../shared/events/publisher';
import type { EventApiAuthorizerResult } from '../../shared/events/authorize';

/** The local issuer's name; fixed, so tokens outlive a restart on other ports. */
export const LOCAL_ISSUER = 'https://issuer.local.live-gifting';

export interface LocalStackOptions {
  /** The Event API stand-in's port (0: any free one). */
  eventsPort?: number;
  /** Keeps DynamoDB's data and the stand-ins' state here; without it, DynamoDB runs in memory. */
  dataDir: string;
  /** Reuse a running DynamoDB Local (the tests share one JVM); otherwise one is started. */
  dynamoEndpoint?: string;
  /** Keep DynamoDB's data on disk under dataDir (npm start) or in memory (tests). */
  persistDynamo: boolean;
  httpPort: number;
  wsPort: number;
  /** Table names are `<prefix>Ledger` and `<prefix>Connections`. */
  tablePrefix?: string;
  /** Extra environment for the functions (configuration overrides). */
  env?: Record<string, string>;
  /** Run the route table's schedules on their timers (tests may prefer to call runSchedule). */
  schedules?: boolean;
  /** Start the queue consumers (tests of redelivery may drive the queues themselves). */
  consumers?: boolean;
  /** Tests: the gateway answers 500 when a success answer is not what its route publishes. */
  checkAnswers?: boolean;
}

export interface LocalStack {
  /** The AppSync Events stand-in (room channels). */
  eventApi: EventApiStandIn;
  httpUrl: string;
  wsUrl: string;
  dynamoEndpoint: string;
  tableNames: { ledger: string; connections: string };
  gateway: LocalGateway;
  queues: LocalQueues;
  /** The Stripe stand-in (tests drive payments and inject faults through it). */
  payments: PaymentsStandIn;
  /** The webhook signing secret, as `stripe listen` prints it. */
  webhookSecret: string;
  /** An SQS client pointed at the local queues. */
  sqs: SQSClient;
  /**
   * Runs one of the route table's schedules now, as its timer would. A run of it already in
   * flight (its timer's) may have started before what the caller waits for: this one starts
   * after it.
   */
  runSchedule(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** Things to stop, in reverse order of starting. */
type Stoppers = Array<() => Promise<void>>;

/** The given DynamoDB Local, or one of its own (its data under dataDir when it persists). */
async function startDynamo(options: LocalStackOptions, stoppers: Stoppers): Promise<string> {
  if (options.dynamoEndpoint !== undefined) return options.dynamoEndpoint;
  const dynamo: LocalDynamoDb = await startDynamoDbLocal({
    port: Number(process.env.LOCAL_DYNAMODB_PORT ?? (await freePort())),
    ...(options.persistDynamo && { dataDir: join(options.dataDir, 'dynamodb') }),
  });
  stoppers.push(() => dynamo.stop());
  return dynamo.endpoint;
}

/** The gateway, serving the issuer's JWKS and the demo page besides the route table. */
async function startLocalGateway(
  options: LocalStackOptions,
  keyFile: string,
  isReady: () => boolean,
  eventsHttpUrl: () => string,
  stoppers: Stoppers,
): Promise<LocalGateway> {
  const { publicJwk } = await ensureIssuerKey(keyFile);
  const staticRoutes: StaticRoute[] = [
    {
      path: '/.well-known/jwks.json',
      contentType: 'application/json',
      body: () => JSON.stringify({ keys: [publicJwk] }),
    },
    // The demo page (/, /app.js, /styles.css), /openapi.json and /docs; the page learns the
    // WebSocket URL per request, once the gateway has its port.
    ...(await (await import('./web/build')).webStaticRoutes(() => gateway.wsUrl, eventsHttpUrl)),
  ];
  const gateway = await startGateway({
    httpPort: options.httpPort,
    wsPort: options.wsPort,
    staticRoutes,
    isReady,
    ...(options.checkAnswers !== undefined && { checkAnswers: options.checkAnswers }),
  });
  stoppers.push(() => gateway.stop());
  return gateway;
}

/** The functions' environment, as Lambda would give it, and the tables it names. */
async function configureFunctions(
  options: LocalStackOptions,
  dynamoEndpoint: string,
  gateway: LocalGateway,
  keyFile: string,
): Promise<LocalStack['tableNames']> {
  const prefix = options.tablePrefix ?? 'local-';
  const tableNames = { ledger: `${prefix}Ledger`, connections: `${prefix}Connections` };
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    DYNAMODB_ENDPOINT: dynamoEndpoint,
    LEDGER_TABLE: tableNames.ledger,
    CONNECTIONS_TABLE: tableNames.connections,
    JWT_ISSUER: LOCAL_ISSUER,
    JWT_AUDIENCE: LOCAL_AUDIENCE,
    JWT_JWKS_URL: `${gateway.httpUrl}/.well-known/jwks.json`,
    LOCAL_STACK: 'true',
    LOCAL_ISSUER_KEY_FILE: keyFile,
    WS_MANAGEMENT_ENDPOINT: gateway.managementEndpoint,
    // Card and PayPal, both through the payments stand-in: the local platform plays a Stripe
    // account in Ireland that Stripe approved for PayPal on Connect (docs/PAYMENTS.md).
    PAYMENT_METHODS: process.env.PAYMENT_METHODS ?? 'card,paypal',
    STRIPE_PLATFORM_COUNTRY: process.env.STRIPE_PLATFORM_COUNTRY ?? 'IE',
    STRIPE_PAYPAL_CONNECT_APPROVED: process.env.STRIPE_PAYPAL_CONNECT_APPROVED ?? 'true',
    PAYMENT_RETURN_URL: process.env.PAYMENT_RETURN_URL ?? `${gateway.httpUrl}/`,
    ...options.env,
  });
  forgetConfig();
  forgetJwks();
  // The logger was built at import, before this environment existed: apply its level now.
  const level = process.env.LOG_LEVEL;
  if (level === 'DEBUG' || level === 'INFO' || level === 'WARN' || level === 'ERROR' || level === 'SILENT')
    logger.setLogLevel(level);

  const client = new DynamoDBClient({
    endpoint: dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  for (const table of TABLES) {
    await ensureTable(client, table, table.envVar === 'LEDGER_TABLE' ? tableNames.ledger : tableNames.connections);
  }
  client.destroy();
  return tableNames;
}

/**
 * AppSync Events: the broadcaster publishes each frame to the room's channel with a key only it
 * is given (IAM on AWS); subscribers are decided by the same authorizer the CDK deploys.
 */
async function startRoomChannels(options: LocalStackOptions, stoppers: Stoppers): Promise<EventApiStandIn> {
  const publishKey = randomBytes(24).toString('base64url');
  const eventApi = await startEventApiStandIn({
    port: options.eventsPort ?? 0,
    authorizer: async (event) =>
      (await loadFunction(EVENT_API_AUTHORIZER.handler, EVENT_API_AUTHORIZER.access)(
        event,
        lambdaContext(EVENT_API_AUTHORIZER.name),
      )) as EventApiAuthorizerResult,
    publishKey,
  });
  stoppers.push(() => eventApi.stop());
  const eventApiDir = join(options.dataDir, 'event-api');
  mkdirSync(eventApiDir, { recursive: true });
  writeFileSync(join(eventApiDir, 'certificate.pem'), eventApi.certificate);
  Object.assign(process.env, {
    EVENT_API_HTTP_URL: eventApi.httpUrl,
    EVENT_API_PUBLISH_KEY: publishKey,
    EVENT_API_CA_FILE: join(eventApiDir, 'certificate.pem'),
    ...options.env,
  });
  forgetConfig();
  forgetRoomChannelPublisher();
  return eventApi;
}

/**
 * The payments stand-in: the real stripe SDK is pointed at it; it signs events with the webhook
 * secret and delivers them to our webhook route, as Stripe would.
 */
async function startPayments(
  options: LocalStackOptions,
  gateway: LocalGateway,
  stoppers: Stoppers,
): Promise<{ payments: PaymentsStandIn; webhookSecret: string }> {
  const stripeKeys = localStripeKeys(options.dataDir);
  const payments = await startPaymentsStandIn({
    port: Number(process.env.LOCAL_PAYMENTS_PORT ?? 0),
    dataDir: join(options.dataDir, 'payments'),
    webhookUrl: `${gateway.httpUrl}${STRIPE_WEBHOOK_PATH}`,
    webhookSecret: stripeKeys.webhookSecret,
    log: (line) => logger.debug('payments stand-in', line),
  });
  stoppers.push(() => payments.stop());
  const standInUrl = new URL(payments.url);
  Object.assign(process.env, {
    STRIPE_SECRET_KEY: stripeKeys.secretKey,
    STRIPE_WEBHOOK_SECRET: stripeKeys.webhookSecret,
    STRIPE_API_HOST: standInUrl.hostname,
    STRIPE_API_PORT: standInUrl.port,
    STRIPE_API_PROTOCOL: 'http',
    PAYMENTS_STANDIN_URL: payments.url,
    ...options.env,
  });
  forgetConfig();
  forgetStripeClient();
  return { payments, webhookSecret: stripeKeys.webhookSecret };
}

/**
 * SQS (fauxqs) with every queue of the route table and its DLQ, and a poller per consumer
 * playing Lambda's event source mapping.
 */
async function startQueues(
  options: LocalStackOptions,
  stoppers: Stoppers,
): Promise<{ queues: LocalQueues; sqs: SQSClient }> {
  const queues = await startLocalQueues(QUEUES, { region: 'us-east-1' });
  stoppers.push(() => queues.stop());
  process.env.SQS_ENDPOINT = queues.endpoint;
  for (const queue of QUEUES) {
    const urls = queues.urls[queue.logicalName];
    if (urls) process.env[queueUrlEnvVar(queue.logicalName)] = urls.queueUrl;
  }
  forgetConfig();
  const sqs = new SQSClient({
    endpoint: queues.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  stoppers.push(async () => sqs.destroy());
  if (options.consumers === false) return { queues, sqs };
  for (const consumer of QUEUE_CONSUMERS) {
    const urls = queues.urls[consumer.queue];
    if (!urls) throw new Error(`consumer ${consumer.name} reads queue ${consumer.queue}, which QUEUES does not define`);
    const fifo = QUEUES.find((queue) => queue.logicalName === consumer.queue)?.fifo ?? false;
    const mapping = startEventSourceMapping({
      sqs,
      queueUrl: urls.queueUrl,
      queueArn: urls.queueArn,
      handler: loadFunction(consumer.handler, consumer.access) as SqsHandler,
      batchSize: consumer.batchSize,
      maximumBatchingWindowMs: fifo ? 0 : consumer.maximumBatchingWindowMs,
      maxConcurrency: consumer.maxConcurrency,
      reportBatchItemFailures: true,
      timeoutMs: consumer.timeoutSeconds * 1000,
      functionName: consumer.name,
      log: logThrough(logger),
    });
    stoppers.push(() => mapping.stop());
  }
  return { queues, sqs };
}

/** Schedules (EventBridge rules on AWS): a timer each when `schedules` is on, never two runs of one at once. */
function startSchedules(options: LocalStackOptions, stoppers: Stoppers): LocalStack['runSchedule'] {
  const running = new Map<string, Promise<void>>();
  /** A timer's tick: skipped while a run of the schedule is in flight. */
  const runIfIdle = (name: string): Promise<void> => running.get(name) ?? startRun(name);
  const runSchedule = async (name: string): Promise<void> => {
    for (let inFlight = running.get(name); inFlight; inFlight = running.get(name)) await inFlight;
    return startRun(name);
  };
  const startRun = (name: string): Promise<void> => {
    const schedule = SCHEDULES.find((candidate) => candidate.name === name);
    if (!schedule) return Promise.reject(new Error(`no schedule named ${name}`));
    // Started on the next tick, so the run is in `running` before its `finally` can remove it.
    const run = Promise.resolve().then(async () => {
      try {
        await loadFunction(schedule.handler, schedule.access)(
          { source: 'aws.events', 'detail-type': 'Scheduled Event', time: new Date().toISOString(), detail: {} },
          lambdaContext(schedule.name, schedule.timeoutSeconds * 1000),
        );
      } catch (error) {
        logger.error('scheduled function failed', {
          schedule: name,
          error: error instanceof Error ? error : String(error),
        });
      } finally {
        running.delete(name);
      }
    });
    running.set(name, run);
    return run;
  };
  if (options.schedules === false) return runSchedule;
  for (const schedule of SCHEDULES) {
    const timer = setInterval(() => void runIfIdle(schedule.name), schedule.everySeconds * 1000);
    timer.unref();
    stoppers.push(async () => {
      clearInterval(timer);
      await running.get(schedule.name);
    });
  }
  return runSchedule;
}

/**
 * The whole system on one machine: DynamoDB Local, the local gateway running the route table's
 * handlers in-process, and the local issuer. Handlers read their configuration from the
 * environment, exactly as on Lambda; this function sets it.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const stoppers: Stoppers = [];
  let ready = false;
  try {
    const dynamoEndpoint = await startDynamo(options, stoppers);
    const keyFile = join(options.dataDir, 'issuer', 'key.json');
    let eventsHttpUrl = '';
    const gateway = await startLocalGateway(
      options,
      keyFile,
      () => ready,
      () => eventsHttpUrl,
      stoppers,
    );
    const tableNames = await configureFunctions(options, dynamoEndpoint, gateway, keyFile);
    const { payments, webhookSecret } = await startPayments(options, gateway, stoppers);
    const eventApi = await startRoomChannels(options, stoppers);
    eventsHttpUrl = eventApi.httpUrl;
    const { queues, sqs } = await startQueues(options, stoppers);
    const runSchedule = startSchedules(options, stoppers);
    ready = true;
    return {
      httpUrl: gateway.httpUrl,
      wsUrl: gateway.wsUrl,
      dynamoEndpoint,
      tableNames,
      gateway,
      queues,
      payments,
      webhookSecret,
      sqs,
      runSchedule,
      eventApi,
      async stop() {
        for (const stop of stoppers.reverse()) await stop();
      },
    };
  } catch (error) {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    throw error;
  }
}

const stripeKeysFile = z.object({
  secretKey: z.string().startsWith('sk_test_'),
  webhookSecret: z.string().startsWith('whsec_'),
});

/**
 * The local Stripe API key and webhook secret: generated once and kept under the data folder,
 * so idempotency keys at the stand-in (scoped per API key, as Stripe's are) survive a restart.
 * LOCAL_STRIPE_WEBHOOK_SECRET overrides the webhook secret (to post Stripe CLI events).
 */
function localStripeKeys(dataDir: string): { secretKey: string; webhookSecret: string } {
  const file = join(dataDir, 'stripe-keys.json');
  let keys: z.infer<typeof stripeKeysFile>;
  if (existsSync(file)) {
    keys = stripeKeysFile.parse(JSON.parse(readFileSync(file, 'utf8')));
  } else {
    keys = {
      secretKey: `sk_test_local_${randomBytes(16).toString('hex')}`,
      webhookSecret: `whsec_${randomBytes(24).toString('base64url')}`,
    };
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  }
  const override = process.env.LOCAL_STRIPE_WEBHOOK_SECRET;
  if (override !== undefined) {
    if (!override.startsWith('whsec_')) throw new Error('LOCAL_STRIPE_WEBHOOK_SECRET must be a whsec_... string');
    keys = { ...keys, webhookSecret: override };
  }
  return keys;
}
