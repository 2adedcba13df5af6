import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startLocalStack, type LocalStack } from '../../infra/local/stack';

/**
 * Starts the local stack for one test file: the run's shared DynamoDB Local, tables of its own,
 * the gateway on free ports.
 */
export async function startTestStack(env: Record<string, string> = {}): Promise<LocalStack> {
  const dynamoEndpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!dynamoEndpoint)
    throw new Error(
      'TEST_DYNAMODB_ENDPOINT is not set: run the tests with jest (its global setup starts DynamoDB Local)',
    );
  return startLocalStack({
    dataDir: mkdtempSync(join(tmpdir(), 'gifting-test-')),
    dynamoEndpoint,
    persistDynamo: false,
    httpPort: 0,
    wsPort: 0,
    tablePrefix: `t${randomBytes(4).toString('hex')}-`,
    env: { LOG_LEVEL: 'SILENT', ...env },
    // Every success answer of every integration test is held to the schema its route publishes.
    checkAnswers: true,
  });
}

export interface ApiClient {
  request(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  token(claims: {
    sub: string;
    birthdate?: string;
    country?: string;
    parentalConsent?: boolean;
    groups?: string[];
  }): Promise<string>;
}

export function apiClient(baseUrl: string): ApiClient {
  const request: ApiClient['request'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined = options.rawBody;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined && { body }) });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
  return {
    request,
    async token(claims) {
      const response = await request('POST', '/dev/tokens', { body: claims });
      if (response.status !== 200) throw new Error(`token: ${response.status} ${JSON.stringify(response.body)}`);
      return String(response.body.token);
    },
  };
}

/** A WebSocket client that records every message (batch frames unpacked) for assertions. */
export class RecordingSocket {
  readonly frames: any[] = [];
  readonly socket: WebSocket;
  private waiters: Array<() => void> = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static open(url: string): Promise<RecordingSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const recorder = new RecordingSocket(socket);
      socket.once('open', () => resolve(recorder));
      socket.once('error', reject);
    });
  }

  /** Every message, with `batch` frames unpacked into their events. */
  messages(): any[] {
    return this.frames.flatMap((frame) => (frame?.type === 'batch' ? frame.events : [frame]));
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async waitFor(predicate: (messages: any[]) => boolean, timeoutMs = 10_000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.messages())) {
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new Error(`timed out; messages so far: ${JSON.stringify(this.messages()).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.messages();
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.readyState === WebSocket.CLOSED) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}

/** The books of a stack's ledger must balance after every scenario (npm run reconcile's check). */
export async function expectBooksBalance(
  stack: LocalStack,
): Promise<import('../../shared/ops/reconcile').ReconcileReport> {
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { reconcileLedger } = await import('../../shared/ops/reconcile');
  const client = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
  });
  try {
    const report = await reconcileLedger(client, stack.tableNames.ledger);
    if (!report.ok) throw new Error(`the books do not balance:\n${report.discrepancies.join('\n')}`);
    return report;
  } finally {
    client.destroy();
  }
}
