import { type ChildProcess, spawn } from 'node:child_process';
import { resolve as resolvePath } from 'node:path';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { QueueDefinition } from '../../routes';
import { PortInUseError } from '../ports';

/*
 * The local stand-in for SQS: fauxqs in a child process, with the route table's queues.
 *
 * fauxqs is ESM-only (its package exports have no `require` condition), and this project compiles
 * to CommonJS: jest (@swc/jest) cannot load it in-process without --experimental-vm-modules. So
 * fauxqs runs in a small child Node process, listening on loopback only, and everything here talks
 * to it over the SQS protocol, exactly as the Lambda code talks to SQS on AWS.
 */

/** Any queue name: the route table's, or a test's own. */
export type LocalQueueDefinition = QueueDefinition<string>;

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
export const FIFO_SUFFIX = '.fifo';
const DLQ_SUFFIX = '-dlq';
/** A DLQ keeps its messages as long as SQS allows (14 days), so nothing is lost while someone looks. */
const DLQ_RETENTION_SECONDS = 1_209_600;

/** A fresh Node process importing fastify + fauxqs is ready in well under a second; a loaded CI box needs more. */
const FAUXQS_STARTUP_TIMEOUT_MS = 15_000;
/** fauxqs closes at once; SIGKILL after this if it does not. */
const FAUXQS_STOP_TIMEOUT_MS = 5_000;
const STDERR_TAIL_CHARS = 4_000;
export const DEFAULT_REGION = 'us-east-1';
export const LOCAL_ACCOUNT_ID = '000000000000';
/** fauxqs accepts any credentials; fixed ones keep the SDK from searching the environment for real ones. */
const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
/** The repository root: the child resolves the bare specifier `fauxqs` from here, honouring its exports map. */
const REPO_ROOT = resolvePath(__dirname, '..', '..', '..');

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
export function queueNameFor(definition: LocalQueueDefinition): string {
  return definition.logicalName + (definition.fifo ? FIFO_SUFFIX : '');
}

/** Every queue has a dead-letter queue `<name>-dlq` (`<name>-dlq.fifo` for FIFO: a FIFO queue's DLQ must be FIFO). */
export function deadLetterQueueNameFor(definition: LocalQueueDefinition): string {
  return definition.logicalName + DLQ_SUFFIX + (definition.fifo ? FIFO_SUFFIX : '');
}

function validateDefinitions(definitions: LocalQueueDefinition[]): void {
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

/** The port in the child's ready line `{"port":1234}`, or undefined when the line is anything else. */
function readyPort(line: string): number | undefined {
  let ready: unknown;
  try {
    ready = JSON.parse(line);
  } catch {
    return undefined;
  }
  const port = typeof ready === 'object' && ready !== null && 'port' in ready ? ready.port : undefined;
  return typeof port === 'number' ? port : undefined;
}

/**
 * The child must not keep the parent alive: a forgotten stop() would hang jest or `npm start`.
 * It still dies with the parent, through its stdin.
 */
function detach(child: ChildProcess): void {
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr])
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
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
      const listening = readyPort(stdout.slice(0, newline));
      if (listening === undefined) {
        fail(new Error(`fauxqs answered an unexpected ready line: ${stdout.slice(0, newline)}`));
        return;
      }
      detach(child);
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
  definitions: LocalQueueDefinition[],
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

export function required<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new Error(message);
  return value;
}
