import { randomBytes, randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type {
  Context,
  SQSBatchResponse,
  SQSEvent,
  SQSMessageAttributes,
  SQSRecord,
  SQSRecordAttributes,
} from 'aws-lambda';
import { DEFAULT_REGION, FIFO_SUFFIX, LOCAL_ACCOUNT_ID, required } from './sqs';

/** The local stand-in for Lambda's SQS event source mapping: a poller per consumer. */

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

/** One line of the mapping's log: its level and message, and the fields that go with them. */
export type LogLine = { level: 'info' | 'warn' | 'error'; msg: string } & Record<string, unknown>;

/** The part of a logger (Powertools' among them) that the mapping's lines go to. */
export interface LevelledLogger {
  info(message: string, ...extra: Array<Record<string, unknown>>): void;
  warn(message: string, ...extra: Array<Record<string, unknown>>): void;
  error(message: string, ...extra: Array<Record<string, unknown>>): void;
}

/**
 * Sends each line to the logger at the line's own level. `level` is not passed on as a field:
 * Powertools reserves it, drops it with a warning, and would log every line at one level.
 */
export function logThrough(logger: LevelledLogger): (line: LogLine) => void {
  return ({ level, msg, ...fields }) => logger[level](msg, fields);
}

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
