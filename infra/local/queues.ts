import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type {
  Context,
  SQSBatchResponse,
  SQSEvent,
  SQSMessageAttributes,
  SQSRecord,
  SQSRecordAttributes,
} from 'aws-lambda';
import { PortInUseError } from './ports';

/*
 * The local stand-in for SQS (fauxqs) and for Lambda's SQS event source mapping.
 *
 * fauxqs is ESM-only (its package exports have no `require` condition), and this project compiles
 * to CommonJS: jest (@swc/jest) cannot load it in-process without --experimental-vm-modules. So
 * fauxqs runs in a small child Node process, listening on loopback only, and everything here talks
 * to it over the SQS protocol, exactly as the Lambda code talks to SQS on AWS.
 */

// ---------------------------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------------------------

export interface QueueDefinition {
  logicalName: string;
  fifo: boolean;
  visibilityTimeoutSeconds: number;
  deadLetter: { maxReceiveCount: number };
}

export interface LocalQueueUrls {
  queueUrl: string;
  deadLetterQueueUrl: string;
  queueArn: string;
  deadLetterQueueArn: string;
}

export interface LocalQueues {
  /** fauxqs address, for `new SQSClient({ endpoint })`. Queue URLs use a `*.localhost` host that does not resolve. */
  endpoint: string;
  /** Region the queues were created in (their ARNs carry it). */
  region: string;
  /** By logicalName. */
  urls: Record<string, LocalQueueUrls>;
  stop(): Promise<void>;
}

export interface LocalQueuesOptions {
  /** 0 or absent: the OS picks a free port. */
  port?: number;
  /** Defaults to AWS_REGION, then us-east-1. fauxqs scopes queues by the region of the signing client. */
  region?: string;
  /** Named in the PortInUseError message when `port` is taken. */
  portVariable?: string;
}

/** AWS queue limits, checked here so a definition that CloudFormation would refuse fails locally too. */
const MAX_QUEUE_NAME_LENGTH = 80;
const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_-]+$/;
const MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200;
const MIN_MAX_RECEIVE_COUNT = 1;
const MAX_MAX_RECEIVE_COUNT = 1_000;
const FIFO_SUFFIX = '.fifo';
const DLQ_SUFFIX = '-dlq';
/** A DLQ keeps its messages as long as SQS allows (14 days), so nothing is lost while someone looks. */
const DLQ_RETENTION_SECONDS = 1_209_600;

/** A fresh Node process importing fastify + fauxqs is ready in well under a second; a loaded CI box needs more. */
const FAUXQS_STARTUP_TIMEOUT_MS = 15_000;
/** fauxqs closes at once; SIGKILL after this if it does not. */
const FAUXQS_STOP_TIMEOUT_MS = 5_000;
const STDERR_TAIL_CHARS = 4_000;
const DEFAULT_REGION = 'us-east-1';
const LOCAL_ACCOUNT_ID = '000000000000';
/** fauxqs accepts any credentials; fixed ones keep the SDK from searching the environment for real ones. */
const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
/** The repository root: the child resolves the bare specifier `fauxqs` from here, honouring its exports map. */
const REPO_ROOT = resolvePath(__dirname, '..', '..');

/**
 * Runs in the child (ESM). buildApp + our own listen() instead of startFauxqs(), because
 * startFauxqs binds 0.0.0.0 and every local port here stays on loopback. The child exits when the
 * parent closes its stdin (the parent died or stopped), so a crashed test run leaves no server.
 */
const FAUXQS_BOOTSTRAP = `
import { buildApp } from 'fauxqs';
const app = buildApp({ logger: false });
let closing = false;
const close = () => {
  if (closing) return;
  closing = true;
  app.close().finally(() => process.exit(0));
};
process.on('SIGTERM', close);
process.on('SIGINT', close);
process.stdin.on('end', close);
process.stdin.on('error', close);
process.stdin.resume();
try {
  await app.listen({ port: Number(process.env.LOCAL_QUEUES_PORT), host: '127.0.0.1' });
} catch (error) {
  process.stderr.write(JSON.stringify({ listenError: error.code ?? error.message }) + '\\n');
  process.exit(2);
}
process.stdout.write(JSON.stringify({ port: app.server.address().port }) + '\\n');
`;

/** The queue name for a definition: FIFO queues must end in `.fifo`. */
export function queueNameFor(definition: QueueDefinition): string {
  return definition.logicalName + (definition.fifo ? FIFO_SUFFIX : '');
}

/** Every queue has a dead-letter queue `<name>-dlq` (`<name>-dlq.fifo` for FIFO: a FIFO queue's DLQ must be FIFO). */
export function deadLetterQueueNameFor(definition: QueueDefinition): string {
  return definition.logicalName + DLQ_SUFFIX + (definition.fifo ? FIFO_SUFFIX : '');
}

function validateDefinitions(definitions: QueueDefinition[]): void {
  const seen = new Set<string>();
  for (const definition of definitions) {
    const { logicalName, visibilityTimeoutSeconds, deadLetter } = definition;
    const longest = deadLetterQueueNameFor(definition);
    if (!QUEUE_NAME_PATTERN.test(logicalName) || longest.length > MAX_QUEUE_NAME_LENGTH) {
      throw new Error(
        `Queue "${logicalName}": names are letters, digits, - and _, at most ${MAX_QUEUE_NAME_LENGTH} characters with suffixes ("${longest}")`,
      );
    }
    if (seen.has(logicalName)) throw new Error(`Queue "${logicalName}" is defined twice`);
    seen.add(logicalName);
    if (
      !Number.isInteger(visibilityTimeoutSeconds) ||
      visibilityTimeoutSeconds < 0 ||
      visibilityTimeoutSeconds > MAX_VISIBILITY_TIMEOUT_SECONDS
    ) {
      throw new Error(
        `Queue "${logicalName}": visibilityTimeoutSeconds must be an integer 0-${MAX_VISIBILITY_TIMEOUT_SECONDS}`,
      );
    }
    const { maxReceiveCount } = deadLetter;
    if (
      !Number.isInteger(maxReceiveCount) ||
      maxReceiveCount < MIN_MAX_RECEIVE_COUNT ||
      maxReceiveCount > MAX_MAX_RECEIVE_COUNT
    ) {
      throw new Error(
        `Queue "${logicalName}": deadLetter.maxReceiveCount must be an integer ${MIN_MAX_RECEIVE_COUNT}-${MAX_MAX_RECEIVE_COUNT}`,
      );
    }
  }
}

interface FauxqsProcess {
  port: number;
  stop(): Promise<void>;
}

function spawnFauxqs(port: number, portVariable: string): Promise<FauxqsProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '--eval', FAUXQS_BOOTSTRAP], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOCAL_QUEUES_PORT: String(port) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL_CHARS)));
  let exited = child.exitCode !== null;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), FAUXQS_STOP_TIMEOUT_MS);
      await exit;
      clearTimeout(killer);
    })();
    return stopping;
  };

  return new Promise<FauxqsProcess>((resolve, reject) => {
    let stdout = '';
    const fail = (error: Error): void => {
      clearTimeout(timer);
      void stop();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new Error(`fauxqs did not start within ${FAUXQS_STARTUP_TIMEOUT_MS} ms:\n${stderr}`)),
      FAUXQS_STARTUP_TIMEOUT_MS,
    );
    const exitedDuringStartup = (code: number | null): void => {
      if (stderr.includes('EADDRINUSE')) fail(new PortInUseError(port, portVariable));
      else fail(new Error(`fauxqs exited during startup (code ${String(code)}):\n${stderr}`));
    };
    child.once('error', fail);
    child.once('exit', exitedDuringStartup);
    const onData = (chunk: Buffer): void => {
      stdout += chunk.toString();
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      clearTimeout(timer);
      child.off('exit', exitedDuringStartup);
      child.off('error', fail);
      // A later 'error' (a signal that could not be sent) must not crash the parent; stop() still ends by 'exit' or SIGKILL.
      child.on('error', () => undefined);
      child.stdout.off('data', onData);
      // Nothing else is written there; keep the pipe drained anyway.
      child.stdout.resume();
      let ready: unknown;
      try {
        ready = JSON.parse(stdout.slice(0, newline));
      } catch {
        ready = undefined;
      }
      const listening = typeof ready === 'object' && ready !== null && 'port' in ready ? ready.port : undefined;
      if (typeof listening !== 'number') {
        fail(new Error(`fauxqs answered an unexpected ready line: ${stdout.slice(0, newline)}`));
        return;
      }
      // The child must not keep the parent alive: a forgotten stop() would hang jest or `npm start`.
      // It still dies with the parent, through its stdin.
      child.unref();
      for (const stream of [child.stdin, child.stdout, child.stderr])
        (stream as unknown as { unref?: () => void }).unref?.();
      resolve({ port: listening, stop });
    };
    child.stdout.on('data', onData);
  });
}

/**
 * Starts fauxqs and creates every queue with its dead-letter queue and redrive policy, as the CDK
 * stack does. Queue URLs are `http://sqs.<region>.localhost:<port>/000000000000/<name>`: give
 * every SQSClient `endpoint` (the `*.localhost` host does not resolve here).
 */
export async function startLocalQueues(
  definitions: QueueDefinition[],
  options: LocalQueuesOptions = {},
): Promise<LocalQueues> {
  validateDefinitions(definitions);
  const region = options.region ?? process.env.AWS_REGION ?? DEFAULT_REGION;
  const fauxqs = await spawnFauxqs(options.port ?? 0, options.portVariable ?? 'the SQS port');
  const endpoint = `http://127.0.0.1:${fauxqs.port}`;
  const sqs = new SQSClient({ endpoint, region, credentials: LOCAL_CREDENTIALS });
  const urls: Record<string, LocalQueueUrls> = {};
  try {
    for (const definition of definitions) {
      const fifoAttributes: Record<string, string> = definition.fifo ? { FifoQueue: 'true' } : {};
      const dlq = await sqs.send(
        new CreateQueueCommand({
          QueueName: deadLetterQueueNameFor(definition),
          Attributes: { ...fifoAttributes, MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) },
        }),
      );
      const deadLetterQueueUrl = required(dlq.QueueUrl, 'CreateQueue answered without a QueueUrl');
      const deadLetterQueueArn = await queueArnOf(sqs, deadLetterQueueUrl);
      const queue = await sqs.send(
        new CreateQueueCommand({
          QueueName: queueNameFor(definition),
          Attributes: {
            ...fifoAttributes,
            VisibilityTimeout: String(definition.visibilityTimeoutSeconds),
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: deadLetterQueueArn,
              maxReceiveCount: definition.deadLetter.maxReceiveCount,
            }),
          },
        }),
      );
      const queueUrl = required(queue.QueueUrl, 'CreateQueue answered without a QueueUrl');
      urls[definition.logicalName] = {
        queueUrl,
        deadLetterQueueUrl,
        queueArn: await queueArnOf(sqs, queueUrl),
        deadLetterQueueArn,
      };
    }
  } catch (error) {
    await fauxqs.stop();
    throw error;
  } finally {
    sqs.destroy();
  }
  return { endpoint, region, urls, stop: fauxqs.stop };
}

async function queueArnOf(sqs: SQSClient, queueUrl: string): Promise<string> {
  const answer = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  return required(answer.Attributes?.QueueArn, `no QueueArn for ${queueUrl}`);
}

function required<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new Error(message);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Event source mapping
// ---------------------------------------------------------------------------------------------

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export type LogLine = Record<string, unknown>;

export interface EventSourceMappingOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Looked up with GetQueueAttributes when absent. */
  queueArn?: string;
  handler: SqsHandler;
  /** 1-10 per ReceiveMessage; standard queues up to 100 (several receives within the batching window). FIFO: 1-10. */
  batchSize: number;
  /** 0 = invoke as soon as a receive returns something. Lambda allows no window on FIFO queues. */
  maximumBatchingWindowMs: number;
  /** Concurrent handler invocations (Lambda's ScalingConfig.MaximumConcurrency). */
  maxConcurrency: number;
  reportBatchItemFailures: boolean;
  /** The function's timeout (Lambda's default is 3 s): past it the batch counts as failed. */
  timeoutMs?: number;
  /** Context.functionName; defaults to `local-<queue name>-consumer`. */
  functionName?: string;
  /** One JSON-able object per line; defaults to JSON on stdout. */
  log?: (line: LogLine) => void;
}

export interface EventSourceMapping {
  /** Stops receiving, waits for in-flight invocations (and their deletes), releases messages it held. */
  stop(): Promise<void>;
}

/** WaitTimeSeconds of each long poll: short, so stop() returns within about a second. */
const RECEIVE_WAIT_SECONDS = 1;
/** SQS's MaxNumberOfMessages ceiling, and the DeleteMessageBatch / ChangeMessageVisibilityBatch entry limit. */
const SQS_MAX_BATCH_ENTRIES = 10;
/** The brief's ceiling for standard queues (Lambda allows 10,000; 100 keeps local invocations small). */
const MAX_BATCH_SIZE_STANDARD = 100;
/** Lambda's ceiling for FIFO queues. */
const MAX_BATCH_SIZE_FIFO = 10;
/** Lambda's MaximumBatchingWindowInSeconds ceiling (300 s). */
const MAX_BATCHING_WINDOW_MS = 300_000;
/** Lambda's MaximumConcurrency ceiling (AWS also requires at least 2; 1 is allowed here for deterministic local runs). */
const MAX_CONCURRENCY_LIMIT = 1_000;
/** Lambda's default function timeout, and its ceiling. */
const DEFAULT_FUNCTION_TIMEOUT_MS = 3_000;
const MAX_FUNCTION_TIMEOUT_MS = 900_000;
/** Between short receives inside a batching window: frequent enough to fill a batch, cheap for fauxqs. */
const WINDOW_POLL_INTERVAL_MS = 50;
/** Lambda's synchronous invocation payload limit, and the largest SQS message: stop gathering before the event could overflow. */
const MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024;
const MAX_SQS_MESSAGE_BYTES = 1024 * 1024;
/** Backoff when the endpoint errors: doubles from the first value up to the last. */
const BACKOFF_INITIAL_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/** A delete that keeps failing is given up: the message comes back and is processed again (at least once, as on AWS). */
const DELETE_ATTEMPTS = 3;
/** FIFO messages received while their group is still being processed wait here; past this, receiving pauses. */
const MAX_HELD_MESSAGES = 100;
/** Reported by Context.memoryLimitInMB; nothing enforces it locally. */
const LOCAL_MEMORY_LIMIT_MB = '1024';

class InvocationTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`handler did not finish within ${timeoutMs} ms`);
    this.name = 'InvocationTimeoutError';
  }
}

/** Why a whole batch failed, or the ids that failed. */
type Outcome = { kind: 'items'; failed: Set<string> } | { kind: 'batch'; reason: string };

/**
 * Starts polling `queueUrl` and invoking `handler` the way Lambda's SQS event source mapping does.
 * Throws at once on a configuration Lambda would refuse.
 */
export function startEventSourceMapping(options: EventSourceMappingOptions): EventSourceMapping {
  const poller = new SqsPoller(options);
  return { stop: () => poller.stop() };
}

class SqsPoller {
  private readonly fifo: boolean;
  private readonly queueName: string;
  private readonly timeoutMs: number;
  private readonly functionName: string;
  private queueArn: string | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private readonly loop: Promise<void>;
  private readonly inFlight = new Set<Promise<void>>();
  /** FIFO groups whose messages an invocation holds: no second invocation may take that group. */
  private readonly busyGroups = new Set<string>();
  /** Received, not yet handed to an invocation, in receive order. */
  private pending: Message[] = [];
  private wakeLoop: (() => void) | undefined;
  private readonly sleepers = new Set<() => void>();

  constructor(private readonly options: EventSourceMappingOptions) {
    this.fifo = options.queueUrl.endsWith(FIFO_SUFFIX);
    this.queueName = options.queueUrl.slice(options.queueUrl.lastIndexOf('/') + 1);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS;
    this.functionName = options.functionName ?? `local-${this.queueName.replace(/\.fifo$/, '')}-consumer`;
    this.queueArn = options.queueArn;
    this.validate();
    this.loop = this.run().catch((error: unknown) =>
      this.log({ level: 'error', msg: 'poller stopped on an unexpected error', error: describe(error) }),
    );
  }

  private validate(): void {
    const { batchSize, maximumBatchingWindowMs, maxConcurrency } = this.options;
    const maxBatch = this.fifo ? MAX_BATCH_SIZE_FIFO : MAX_BATCH_SIZE_STANDARD;
    const problems: string[] = [];
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > maxBatch)
      problems.push(`batchSize must be an integer 1-${maxBatch}`);
    if (
      !Number.isInteger(maximumBatchingWindowMs) ||
      maximumBatchingWindowMs < 0 ||
      maximumBatchingWindowMs > MAX_BATCHING_WINDOW_MS
    ) {
      problems.push(`maximumBatchingWindowMs must be an integer 0-${MAX_BATCHING_WINDOW_MS}`);
    }
    if (this.fifo && maximumBatchingWindowMs > 0) problems.push('Lambda supports no batching window on FIFO queues');
    // Lambda: a batch size over 10 needs a batching window, else each receive is its own batch.
    if (batchSize > SQS_MAX_BATCH_ENTRIES && maximumBatchingWindowMs === 0)
      problems.push(`batchSize over ${SQS_MAX_BATCH_ENTRIES} needs maximumBatchingWindowMs > 0`);
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > MAX_CONCURRENCY_LIMIT)
      problems.push(`maxConcurrency must be an integer 1-${MAX_CONCURRENCY_LIMIT}`);
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs < 1 || this.timeoutMs > MAX_FUNCTION_TIMEOUT_MS)
      problems.push(`timeoutMs must be an integer 1-${MAX_FUNCTION_TIMEOUT_MS}`);
    if (problems.length > 0) throw new Error(`Event source mapping for ${this.queueName}: ${problems.join('; ')}`);
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.wake();
    for (const sleeper of [...this.sleepers]) sleeper();
    await this.loop; // at most one long poll (RECEIVE_WAIT_SECONDS) or one backoff sleep
    // Bounded: each invocation ends by its timeout, then a bounded number of delete attempts.
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    // Released only now: a held FIFO message handed back while its group was still being processed
    // could be received by another consumer out of order.
    await this.release(this.pending.splice(0));
    this.log({ level: 'info', msg: 'event source mapping stopped' });
  }

  private async run(): Promise<void> {
    let backoffMs = 0;
    while (!this.stopping && this.queueArn === undefined) {
      try {
        await this.describeQueue();
      } catch (error) {
        backoffMs = nextBackoff(backoffMs);
        this.log({ level: 'warn', msg: 'GetQueueAttributes failed; backing off', error: describe(error), backoffMs });
        await this.sleep(backoffMs);
      }
    }
    backoffMs = 0;
    // Ends only on stop(); every pass either waits for a free slot, long-polls, or sleeps a backoff.
    while (!this.stopping) {
      this.dispatchPending();
      if (this.inFlight.size >= this.options.maxConcurrency || this.pending.length >= MAX_HELD_MESSAGES) {
        await new Promise<void>((resolve) => (this.wakeLoop = resolve));
        continue;
      }
      try {
        const received = await this.collectBatch();
        backoffMs = 0;
        // An empty answer is normal (idle queue; FIFO groups in flight): keep polling.
        this.addPending(received);
      } catch (error) {
        backoffMs = nextBackoff(backoffMs);
        this.log({ level: 'warn', msg: 'ReceiveMessage failed; backing off', error: describe(error), backoffMs });
        await this.sleep(backoffMs);
      }
    }
  }

  private async describeQueue(): Promise<void> {
    const answer = await this.options.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.options.queueUrl,
        AttributeNames: ['QueueArn', 'VisibilityTimeout'],
      }),
    );
    const visibilitySeconds = Number(answer.Attributes?.VisibilityTimeout);
    // CloudFormation refuses a mapping whose queue hides messages for less than the function may run.
    if (visibilitySeconds * 1000 < this.timeoutMs) {
      this.log({
        level: 'warn',
        msg: 'queue visibility timeout is shorter than the function timeout; AWS would refuse this mapping',
        visibilitySeconds,
        timeoutMs: this.timeoutMs,
      });
    }
    this.queueArn = required(answer.Attributes?.QueueArn, `no QueueArn for ${this.options.queueUrl}`);
  }

  /**
   * One long poll; then, with a batching window, more receives until the batch is full, the window
   * has passed, or the event would approach Lambda's payload limit. Errors after the first receive
   * end the window early, so messages already received are not dropped.
   */
  private async collectBatch(): Promise<Message[]> {
    const { batchSize, maximumBatchingWindowMs } = this.options;
    const batch = await this.receive(Math.min(batchSize, SQS_MAX_BATCH_ENTRIES), RECEIVE_WAIT_SECONDS);
    if (batch.length === 0 || maximumBatchingWindowMs === 0) return batch;
    let bytes = batch.reduce((sum, message) => sum + messageBytes(message), 0);
    const deadline = Date.now() + maximumBatchingWindowMs;
    while (
      batch.length < batchSize &&
      Date.now() < deadline &&
      !this.stopping &&
      bytes + MAX_SQS_MESSAGE_BYTES <= MAX_INVOKE_PAYLOAD_BYTES
    ) {
      let more: Message[];
      try {
        more = await this.receive(Math.min(batchSize - batch.length, SQS_MAX_BATCH_ENTRIES), 0);
      } catch (error) {
        this.log({
          level: 'warn',
          msg: 'ReceiveMessage failed inside the batching window; invoking with what arrived',
          error: describe(error),
        });
        break;
      }
      batch.push(...more);
      bytes += more.reduce((sum, message) => sum + messageBytes(message), 0);
      if (more.length === 0) await this.sleep(Math.min(WINDOW_POLL_INTERVAL_MS, Math.max(0, deadline - Date.now())));
    }
    return batch;
  }

  private async receive(maxMessages: number, waitTimeSeconds: number): Promise<Message[]> {
    const answer = await this.options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.options.queueUrl,
        MaxNumberOfMessages: maxMessages,
        WaitTimeSeconds: waitTimeSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    return answer.Messages ?? [];
  }

  private addPending(received: Message[]): void {
    for (const message of received) {
      if (message.MessageId === undefined || message.ReceiptHandle === undefined) {
        this.log({ level: 'warn', msg: 'ignored a message without MessageId or ReceiptHandle' });
        continue;
      }
      // A held FIFO message can come back again (its visibility ran out while we held it): keep the
      // newest copy, whose receipt handle is the one that deletes it.
      const held = this.pending.findIndex((other) => other.MessageId === message.MessageId);
      if (held !== -1) this.pending[held] = message;
      else this.pending.push(message);
    }
    this.dispatchPending();
  }

  /** Starts invocations while slots are free and pending messages can go. */
  private dispatchPending(): void {
    // Bounded: every pass removes at least one message from `pending`, or stops.
    while (!this.stopping && this.inFlight.size < this.options.maxConcurrency && this.pending.length > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.startInvocation(batch);
    }
  }

  /**
   * Standard queue: the oldest `batchSize`. FIFO: in receive order, only messages of groups no
   * invocation holds; a group's messages stay in order because the group becomes busy as soon as
   * this batch starts, so its later messages wait for it.
   */
  private takeBatch(): Message[] {
    const { batchSize } = this.options;
    if (!this.fifo) return this.pending.splice(0, batchSize);
    const batch: Message[] = [];
    const rest: Message[] = [];
    for (const message of this.pending) {
      if (batch.length < batchSize && !this.busyGroups.has(groupOf(message))) batch.push(message);
      else rest.push(message);
    }
    this.pending = rest;
    return batch;
  }

  private startInvocation(batch: Message[]): void {
    const groups = this.fifo ? new Set(batch.map(groupOf)) : new Set<string>();
    for (const group of groups) this.busyGroups.add(group);
    const invocation: Promise<void> = this.invoke(batch)
      .catch((error: unknown) =>
        this.log({ level: 'error', msg: 'invocation bookkeeping failed', error: describe(error) }),
      )
      .finally(() => {
        for (const group of groups) this.busyGroups.delete(group);
        this.inFlight.delete(invocation);
        // Held messages of the groups just freed go now, not after the current long poll.
        this.dispatchPending();
        this.wake();
      });
    this.inFlight.add(invocation);
  }

  private async invoke(batch: Message[]): Promise<void> {
    const records = batch.map((message) => this.toRecord(message));
    const requestId = randomUUID();
    const context = this.createContext(requestId, Date.now() + this.timeoutMs);
    let outcome: Outcome;
    try {
      // `then` also turns a synchronous throw into a rejection.
      const result = await withTimeout(
        Promise.resolve().then(() => this.options.handler({ Records: records }, context)),
        this.timeoutMs,
      );
      outcome = this.interpret(result, records);
    } catch (error) {
      const timedOut = error instanceof InvocationTimeoutError;
      this.log({
        level: 'error',
        msg: timedOut
          ? 'handler timed out; the whole batch will be retried (locally its work keeps running)'
          : 'handler threw; the whole batch will be retried',
        requestId,
        records: records.length,
        error: describe(error),
      });
      outcome = { kind: 'batch', reason: timedOut ? 'timeout' : 'error' };
    }
    let failed: Set<string>;
    if (outcome.kind === 'batch') {
      failed = new Set(records.map((record) => record.messageId));
    } else {
      failed = this.fifo ? withLaterGroupItemsFailed(records, outcome.failed) : outcome.failed;
      if (failed.size > 0) {
        this.log({
          level: 'warn',
          msg: 'batch item failures; left for redelivery',
          requestId,
          records: records.length,
          failed: [...failed],
        });
      }
    }
    await this.deleteMessages(
      batch.filter((message) => message.MessageId !== undefined && !failed.has(message.MessageId)),
    );
  }

  /** Lambda's rules for a handler's answer (docs: "Implementing partial batch responses"). */
  private interpret(result: SQSBatchResponse | void, records: SQSRecord[]): Outcome {
    const answer: unknown = result;
    const none: Outcome = { kind: 'items', failed: new Set() };
    const hasFailures = typeof answer === 'object' && answer !== null && 'batchItemFailures' in answer;
    if (!this.options.reportBatchItemFailures) {
      if (hasFailures)
        this.log({
          level: 'warn',
          msg: 'handler returned batchItemFailures but reportBatchItemFailures is off: the whole batch counts as processed',
        });
      return none;
    }
    // No answer, an empty answer, or a null/empty list: the whole batch succeeded.
    if (answer === undefined || answer === null || answer === '') return none;
    const invalid = (why: string): Outcome => {
      this.log({ level: 'error', msg: `invalid batch response (${why}); the whole batch will be retried` });
      return { kind: 'batch', reason: why };
    };
    if (typeof answer !== 'object') return invalid('not an object');
    const failures: unknown = hasFailures ? (answer as { batchItemFailures: unknown }).batchItemFailures : undefined;
    if (failures === undefined || failures === null) return none;
    if (!Array.isArray(failures)) return invalid('batchItemFailures is not a list');
    const ids = new Set(records.map((record) => record.messageId));
    const failed = new Set<string>();
    for (const failure of failures as unknown[]) {
      const id =
        typeof failure === 'object' && failure !== null && 'itemIdentifier' in failure
          ? failure.itemIdentifier
          : undefined;
      if (typeof id !== 'string' || id === '' || !ids.has(id))
        return invalid(`itemIdentifier ${String(id)} is not a message of this batch`);
      failed.add(id);
    }
    return { kind: 'items', failed };
  }

  /** DeleteMessageBatch in tens, retrying failed entries a bounded number of times. */
  private async deleteMessages(messages: Message[]): Promise<void> {
    for (let start = 0; start < messages.length; start += SQS_MAX_BATCH_ENTRIES) {
      let entries = messages.slice(start, start + SQS_MAX_BATCH_ENTRIES).map((message, index) => ({
        Id: `m${index}`,
        ReceiptHandle: message.ReceiptHandle ?? '',
        messageId: message.MessageId,
      }));
      let backoffMs = 0;
      let lastError: unknown;
      for (let attempt = 1; attempt <= DELETE_ATTEMPTS && entries.length > 0; attempt++) {
        if (backoffMs > 0) await delay(backoffMs);
        try {
          const answer = await this.options.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: this.options.queueUrl,
              Entries: entries.map(({ Id, ReceiptHandle }) => ({ Id, ReceiptHandle })),
            }),
          );
          const failedIds = new Set((answer.Failed ?? []).map((failure) => failure.Id));
          lastError = answer.Failed?.[0];
          entries = entries.filter((entry) => failedIds.has(entry.Id));
        } catch (error) {
          lastError = error;
        }
        backoffMs = nextBackoff(backoffMs);
      }
      if (entries.length > 0) {
        this.log({
          level: 'error',
          msg: 'could not delete processed messages; they will be delivered again',
          messageIds: entries.map((entry) => entry.messageId),
          error: describe(lastError),
        });
      }
    }
  }

  /** Best effort: makes held messages visible at once instead of after their visibility timeout. */
  private async release(messages: Message[]): Promise<void> {
    for (let start = 0; start < messages.length; start += SQS_MAX_BATCH_ENTRIES) {
      const chunk = messages.slice(start, start + SQS_MAX_BATCH_ENTRIES);
      try {
        await this.options.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.options.queueUrl,
            Entries: chunk.map((message, index) => ({
              Id: `m${index}`,
              ReceiptHandle: message.ReceiptHandle ?? '',
              VisibilityTimeout: 0,
            })),
          }),
        );
      } catch (error) {
        this.log({
          level: 'warn',
          msg: 'could not release held messages; they return after their visibility timeout',
          error: describe(error),
        });
      }
    }
  }

  private toRecord(message: Message): SQSRecord {
    const system = message.Attributes ?? {};
    const now = String(Date.now());
    const attributes: SQSRecordAttributes = {
      ApproximateReceiveCount: system.ApproximateReceiveCount ?? '1',
      SentTimestamp: system.SentTimestamp ?? now,
      SenderId: system.SenderId ?? LOCAL_ACCOUNT_ID,
      ApproximateFirstReceiveTimestamp: system.ApproximateFirstReceiveTimestamp ?? now,
    };
    if (system.AWSTraceHeader !== undefined) attributes.AWSTraceHeader = system.AWSTraceHeader;
    if (system.SequenceNumber !== undefined) attributes.SequenceNumber = system.SequenceNumber;
    if (system.MessageGroupId !== undefined) attributes.MessageGroupId = system.MessageGroupId;
    if (system.MessageDeduplicationId !== undefined) attributes.MessageDeduplicationId = system.MessageDeduplicationId;

    // Lambda's shape: camelCase, binary as base64, the reserved list fields present and empty.
    const messageAttributes: SQSMessageAttributes = {};
    for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
      messageAttributes[name] = {
        ...(value.StringValue !== undefined && { stringValue: value.StringValue }),
        ...(value.BinaryValue !== undefined && { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }),
        stringListValues: value.StringListValues ?? [],
        binaryListValues: (value.BinaryListValues ?? []).map((binary) => Buffer.from(binary).toString('base64')),
        dataType: value.DataType ?? 'String',
      };
    }
    const queueArn = this.queueArn ?? '';
    const record: SQSRecord = {
      messageId: message.MessageId ?? '',
      receiptHandle: message.ReceiptHandle ?? '',
      body: message.Body ?? '',
      attributes,
      messageAttributes,
      md5OfBody: message.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: queueArn.split(':')[3] ?? DEFAULT_REGION,
    };
    if (message.MD5OfMessageAttributes !== undefined) record.md5OfMessageAttributes = message.MD5OfMessageAttributes;
    return record;
  }

  private createContext(awsRequestId: string, deadline: number): Context {
    const region = (this.queueArn ?? '').split(':')[3] ?? DEFAULT_REGION;
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
    return {
      callbackWaitsForEmptyEventLoop: true,
      functionName: this.functionName,
      functionVersion: '$LATEST',
      invokedFunctionArn: `arn:aws:lambda:${region}:${LOCAL_ACCOUNT_ID}:function:${this.functionName}`,
      memoryLimitInMB: LOCAL_MEMORY_LIMIT_MB,
      awsRequestId,
      logGroupName: `/aws/lambda/${this.functionName}`,
      logStreamName: `${day}/[$LATEST]${randomBytes(16).toString('hex')}`,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      // Deprecated callback-era methods: async handlers return instead; nothing to do here.
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
  }

  /** Resolves after `ms`, or at once when stop() is called (so a backoff never delays stop). */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.stopping) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  /** Wakes the loop waiting for a free invocation slot. */
  private wake(): void {
    const wake = this.wakeLoop;
    this.wakeLoop = undefined;
    wake?.();
  }

  private log(line: LogLine): void {
    const entry = { component: 'sqs-event-source-mapping', queue: this.queueName, ...line };
    try {
      if (this.options.log) this.options.log(entry);
      else process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
    } catch {
      // A failing logger must not stop the poller.
    }
  }
}

/**
 * FIFO: once an item of a group fails, the later items of that group in the batch are failed too,
 * as Lambda does, so a group is never processed past a message that has not succeeded.
 */
export function withLaterGroupItemsFailed(records: readonly SQSRecord[], failed: ReadonlySet<string>): Set<string> {
  const result = new Set(failed);
  const failedGroups = new Set<string>();
  for (const record of records) {
    const group = record.attributes.MessageGroupId ?? '';
    if (result.has(record.messageId)) failedGroups.add(group);
    else if (failedGroups.has(group)) result.add(record.messageId);
  }
  return result;
}

function groupOf(message: Message): string {
  return message.Attributes?.MessageGroupId ?? '';
}

function messageBytes(message: Message): number {
  return Buffer.byteLength(message.Body ?? '');
}

function nextBackoff(previousMs: number): number {
  return previousMs === 0 ? BACKOFF_INITIAL_MS : Math.min(previousMs * 2, BACKOFF_MAX_MS);
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new InvocationTimeoutError(timeoutMs)), timeoutMs);
  });
  // race attaches a handler to `work`, so a rejection after the timeout is not left unhandled.
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): Record<string, unknown> {
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { message: String(error) };
}
